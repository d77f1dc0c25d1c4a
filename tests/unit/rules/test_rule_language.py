"""The rule language: what it accepts, what it refuses and where, and that compiled rules mean what
the condition says (against a tree-walking reference evaluator, on generated conditions and rows)."""

from __future__ import annotations

import ast
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txguard.contract.errors import RuleCheckError
from txguard.contract.models import RuleSetSpec
from txguard.features.wallet import FEATURE_NAMES
from txguard.rules import compiler
from txguard.rules.check import CheckFailed, check_condition
from txguard.rules.engine import RuleSet
from txguard.rules.language import Binary, Bool, Call, ListLit, Node, Num, Str, Unary, Var, parse
from txguard.rules.vocabulary import NAMES, NUMBER, SCORE, TEXT_FIELDS


class Tx:
    def __init__(self, **fields: str | None) -> None:
        defaults = {"type": "payment", "channel": "app", "country": "FR", "currency": "EUR",
                    "counterparty_id": "m-1", "wallet_id": "w-1", "device_id": None}
        for k, v in {**defaults, **fields}.items():
            setattr(self, k, v)


def one(condition: str, outcome: str = "review") -> RuleSet:
    return RuleSet(RuleSetSpec(rules=[{"name": "r", "condition": condition, "outcome": outcome, "reason": "why"}]))


def row(**values: float) -> list[float]:
    out = [0.0] * len(FEATURE_NAMES)
    for name, value in values.items():
        out[FEATURE_NAMES.index(name)] = value
    return out


@pytest.mark.parametrize(("condition", "fires"), [
    ("amount > 500 && is_new_counterparty == 1 && cp_age_days < 1", True),
    ("amount > 500 && is_new_counterparty == 0", False),
    ("type == 'payment' && country in ['FR', 'DE']", True),
    ("type == \"transfer\" || channel != 'app'", False),
    ("score >= 0.5", True),
    ("amount / amount_mean_30d > 10", True),  # 600 / 0: +inf, as CEL's doubles
    ("counterparty_id.startsWith('m-') && !wallet_id.endsWith('9')", True),
    ("counterparty_id.contains('-1')", True),
    ("device_id == ''", True),
    ("-amount < -599.5", True),
    ("amount * 2 - 100 == 1100", True),
])
def test_conditions_evaluate_as_written(condition: str, fires: bool) -> None:
    rules = one(condition)
    hits = rules.evaluate(row(amount=600.0, is_new_counterparty=1.0, cp_age_days=0.5), 0.7, Tx())
    assert bool(hits) is fires


@pytest.mark.parametrize(("condition", "message", "column"), [
    ("amout > 5", "unknown name 'amout' (did you mean amount", 1),
    ("amount > '5'", "> compares numbers", 8),
    ("type < 'x'", "text is tested with ==, != or in", 6),
    ("amount && score > 0.1", "&& joins conditions", 1),
    ("amount + 1", "must be true or false", 1),
    ("amount < 0", "amount < 0 never holds", 8),
    ("score > 1", "score > 1 never holds", 7),
    ("type == 'paymnt'", "did you mean 'payment'", 6),
    ("country == 'XX'", "country is never 'XX'", 9),
    ("is_new_counterparty == 2", "never holds", 21),
    ("amount > 500 && amount < 100", "can never fire", 14),
    ("hour_of_day > 20 && (hour_of_day < 3 || hour_of_day < 10)", "can never fire", 18),
    ("true", "fires on every transaction", 1),
    ("cp_age_days >= 0", "fires on every transaction", 1),
    ("amount > 5 || amount <= 5", "fires on every transaction", 1),
    ("foo(1)", "unknown function 'foo'", 1),
    ("__import__('os').system('x')", "unknown function '__import__'", 1),
    ("amount.__class__", "unknown method '__class__'", 8),
    ("amount >", "expected a value, found the end", 9),
    ("amount > 5 5", "unexpected '5' after a complete condition", 12),
    ("amount > 1 ? 1 : 2", "?: is not supported", 12),
    ("1 < amount < 5", "join comparisons with && or ||", 12),
    ("amount % 2 == 0", "% is not supported", 8),
    ("amount in ['a']", "tests a number against a list of text", 8),
    ("amount in []", "empty list", 11),
    ("type in ['a', 'b']", "type is none of these values", 6),
    ("country == null", "null is not a value", 12),
    ("amount > 5 && `x`", "unexpected character '`'", 15),
    ("amount > 1e999", "out of range", 10),
    ("amount > 5 &&\n  cp_age_days < -1", "cp_age_days < -1 never holds", 15),
])
def test_refused_with_the_position(condition: str, message: str, column: int) -> None:
    with pytest.raises(RuleCheckError) as caught:
        one(condition)
    problem = caught.value.problems[0]
    assert message in str(problem["message"]), problem
    assert problem["column"] == column, problem
    assert problem["rule"] == "r" and problem["field"] == "condition"
    assert str(problem["message"]) in str(caught.value)


def test_a_multi_line_condition_reports_its_line() -> None:
    with pytest.raises(RuleCheckError) as caught:
        one("amount > 5 &&\n  cp_age_days < -1")
    assert (caught.value.problems[0]["line"], caught.value.problems[0]["column"]) == (2, 15)


def test_every_bad_rule_of_a_set_is_reported() -> None:
    spec = RuleSetSpec(rules=[
        {"name": "ok", "condition": "amount > 5", "outcome": "review", "reason": "x"},
        {"name": "bad_one", "condition": "amout > 5", "outcome": "review", "reason": "x"},
        {"name": "bad_two", "condition": "score > 2", "outcome": "block", "reason": "x"},
    ])
    with pytest.raises(RuleCheckError) as caught:
        RuleSet(spec)
    assert [p["rule"] for p in caught.value.problems] == ["bad_one", "bad_two"]


def test_duplicate_names_are_refused_by_the_contract() -> None:
    with pytest.raises(ValueError, match="two rules are named 'a'"):
        RuleSetSpec(rules=[{"name": "a", "condition": "amount > 5", "outcome": "review", "reason": "x"}] * 2)


def test_generated_source_reads_only_the_row_the_score_and_text_fields() -> None:
    rules = one("amount > 500 && country in ['FR'] && score > 0.2 && device_id.startsWith('d')")
    source = rules.compiled.source
    assert "'FR'" not in source and "import" not in source
    assert rules.compiled.names == {"amount", "country", "score", "device_id"}
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    assert names <= {"r", "s", "x", "h", "n0", "t2", "t6", "_c0", "_c1", "_rules"}


@pytest.mark.parametrize("planted", [
    "def _rules(r, s, x):\n    return __import__('os')\n",
    "def _rules(r, s, x):\n    return x.__class__\n",
    "def _rules(r, s, x):\n    h = []\n    h.append(open('x'))\n    return h\n",
    "def _rules(r, s, x):\n    return r[s]\n",
    "def _rules(r, s, x):\n    return [y for y in r]\n",
    "def _rules(r, s, x):\n    return (lambda: 1)()\n",
])
def test_the_whitelist_refuses_anything_else_in_generated_code(planted: str) -> None:
    with pytest.raises(RuleCheckError, match="refused"):
        compiler._verify(ast.parse(planted), set())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("amount_sc<>=!&|()[]'\". 0123456789+-*/xyz_:?,")), max_size=40))
def test_arbitrary_text_is_either_refused_or_compiled(text: str) -> None:
    try:
        rules = one(text)
    except (RuleCheckError, ValueError):
        return
    assert isinstance(rules.evaluate(row(), 0.5, Tx()), list)


# A reference evaluator over the tree (CEL's meaning), against the compiled function --------------------
def reference(node: Node, values: dict[str, object]) -> object:
    if isinstance(node, Num | Str | Bool):
        return node.value
    if isinstance(node, Var):
        return values[node.name]
    if isinstance(node, ListLit):
        return [reference(i, values) for i in node.items]
    if isinstance(node, Unary):
        inner = reference(node.operand, values)
        return (not inner) if node.op == "!" else -inner  # type: ignore[operator]
    if isinstance(node, Call):
        target, arg = reference(node.target, values), reference(node.arg, values)
        return {"startsWith": str.startswith, "endsWith": str.endswith,
                "contains": lambda a, b: b in a}[node.method](target, arg)
    assert isinstance(node, Binary)
    a = reference(node.left, values)
    if node.op == "&&":
        return bool(a) and bool(reference(node.right, values))
    if node.op == "||":
        return bool(a) or bool(reference(node.right, values))
    b = reference(node.right, values)
    if node.op == "/":
        return a / b if b != 0 else (math.nan if a == 0 else math.copysign(math.inf, a) * math.copysign(1, b))  # type: ignore[operator]
    ops = {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b,  # type: ignore[operator]
           ">": lambda: a > b, ">=": lambda: a >= b, "in": lambda: a in b, "+": lambda: a + b,  # type: ignore[operator]
           "-": lambda: a - b, "*": lambda: a * b}  # type: ignore[operator]
    return ops[node.op]()


NUMS = [n for n, v in NAMES.items() if v.kind == NUMBER][:20] + [SCORE]
ATOMS = st.one_of(
    st.builds(lambda n, op, v: f"{n} {op} {v}", st.sampled_from(NUMS), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
              st.sampled_from(["0.5", "1", "3", "10", "250"])),
    st.builds(lambda n, v: f"{n} == '{v}'", st.sampled_from(["type", "channel"]),
              st.sampled_from(["payment", "transfer", "app", "web"])),
    st.builds(lambda a, b: f"{a} / ({b} + 1) > 2", st.sampled_from(NUMS), st.sampled_from(NUMS)),
    st.just("country in ['FR', 'DE']"),
    st.just("counterparty_id.startsWith('m-')"),
)
CONDITIONS = st.recursive(ATOMS, lambda inner: st.one_of(
    st.builds(lambda a, b: f"({a}) && ({b})", inner, inner),
    st.builds(lambda a, b: f"({a}) || ({b})", inner, inner),
    st.builds(lambda a: f"!({a})", inner)), max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(CONDITIONS, st.integers(0, 2**32 - 1))
def test_compiled_rules_agree_with_the_reference_and_never_fires_is_sound(condition: str, seed: int) -> None:
    rnd = random.Random(seed)
    samples = []
    for _ in range(30):
        values: dict[str, object] = {n: float(rnd.choice([0, 0.5, 1, 2, 3, 10, 250, 1000, rnd.random() * 20]))
                                     for n in FEATURE_NAMES}
        for flag in ("is_transfer", "is_withdrawal", "is_top_up", "has_device", "is_new_counterparty",
                     "country_changed", "device_changed"):
            values[flag] = float(rnd.random() < 0.5)
        values["hour_of_day"] = float(rnd.randint(0, 23))
        values["day_of_week"] = float(rnd.randint(0, 6))
        values["channel_code"] = float(rnd.randint(0, 4))
        values[SCORE] = rnd.random()
        texts = {"type": rnd.choice(["payment", "transfer"]), "channel": rnd.choice(["app", "web"]),
                 "country": rnd.choice(["FR", "US"]), "currency": "EUR",
                 "counterparty_id": rnd.choice(["m-1", "x-1"]), "wallet_id": "w", "device_id": None}
        samples.append((values, texts))
    try:
        tree = check_condition(condition)
    except CheckFailed as exc:
        if "can never fire" in exc.message:
            tree = parse(condition)  # refused as never firing: it must not fire on any sample
            for values, texts in samples:
                assert not reference(tree, {**values, **{k: v or "" for k, v in texts.items()}}), condition
        return
    rules = one(condition)
    for values, texts in samples:
        r = [float(values[n]) for n in FEATURE_NAMES]  # type: ignore[arg-type]
        expected = bool(reference(tree, {**values, **{k: v or "" for k, v in texts.items()}}))
        assert bool(rules.evaluate(r, float(values[SCORE]), Tx(**texts))) is expected, condition  # type: ignore[arg-type]


def test_text_fields_are_the_transaction_fields() -> None:
    from txguard.contract.models import Transaction

    assert set(TEXT_FIELDS) <= set(Transaction.model_fields)
