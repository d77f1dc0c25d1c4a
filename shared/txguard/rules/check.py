"""Check a rule before it is saved (and again before a scoring instance applies it).

Refused, each with the position of the problem in the condition:
- what does not parse (txguard.rules.language);
- unknown names (with the closest known ones), wrong types (`amount > "500"`, `type < "x"`,
  `amount && score`), a condition that is not true-or-false;
- rules that can never fire: a comparison outside its name's domain (`amount < 0`, `score > 1`,
  `type == "paymnt"`, `country == "XX"`), or comparisons that contradict each other
  (`amount > 500 && amount < 100`), found by narrowing each name's range (numbers) or set of
  values (text) through `&&`, `||` and `!`;
- rules that fire on every transaction (`amount > 0 || amount <= 0`, `true`): a rule is a condition.

The analysis is sound for what it refuses (a refused rule cannot fire, whatever the data) and
leaves alone what it cannot prove (arithmetic, string methods): those rules are accepted.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from txguard.rules.language import Binary, Bool, Call, ListLit, Node, Num, ParseError, Str, Unary, Var, parse
from txguard.rules.vocabulary import BOOL, LIST, NAMES, NUMBER, TEXT

MAX_ENVS = 64  # branches the never-fires analysis follows before it stops narrowing (accepts)
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_KIND_WORD = {NUMBER: "a number", TEXT: "text", BOOL: "true or false", LIST: "a list"}


class CheckFailed(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Typed:
    kind: str
    element: str | None = None  # LIST: the kind of its items


def check_condition(text: str) -> Node:
    """The checked tree of a condition; raises CheckFailed (message, offset)."""
    try:
        tree = parse(text)
    except ParseError as exc:
        raise CheckFailed(exc.message, exc.offset) from None
    typed = _type(tree)
    if typed.kind != BOOL:
        raise CheckFailed(f"a condition must be true or false, this one is {_KIND_WORD[typed.kind]}", 0)
    _atoms_can_hold(tree)
    culprit: list[int] = []
    if not _sat(tree, {}, culprit):
        offset = culprit[0] if culprit else 0
        raise CheckFailed("this rule can never fire: its comparisons contradict each other", offset)
    if not _sat(_negate(tree), {}, []):
        raise CheckFailed("this rule fires on every transaction: give it a condition that selects some", 0)
    return tree


# Types ---------------------------------------------------------------------------------------------
def _type(node: Node) -> Typed:
    if isinstance(node, Num):
        return Typed(NUMBER)
    if isinstance(node, Str):
        return Typed(TEXT)
    if isinstance(node, Bool):
        return Typed(BOOL)
    if isinstance(node, Var):
        known = NAMES.get(node.name)
        if known is None:
            close = difflib.get_close_matches(node.name, list(NAMES), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else " (see the names in docs/rules.md)"
            raise CheckFailed(f"unknown name {node.name!r}{hint}", node.offset)
        return Typed(known.kind)
    if isinstance(node, ListLit):
        if not node.items:
            raise CheckFailed("an empty list: `x in []` never holds", node.offset)
        kinds = {_type(item).kind for item in node.items}
        for item in node.items:
            if not isinstance(item, Num | Str):
                raise CheckFailed("list items must be numbers or strings written out", item.offset)
        if len(kinds) > 1:
            raise CheckFailed("a list mixes numbers and text", node.offset)
        return Typed(LIST, kinds.pop())
    if isinstance(node, Unary):
        inner = _type(node.operand).kind
        want = BOOL if node.op == "!" else NUMBER
        if inner != want:
            raise CheckFailed(f"{node.op} needs {_KIND_WORD[want]}, not {_KIND_WORD[inner]}", node.offset)
        return Typed(want)
    if isinstance(node, Call):
        for part, what in ((node.target, "called on"), (node.arg, "given")):
            kind = _type(part).kind
            if kind != TEXT:
                raise CheckFailed(f"{node.method} is {what} text, not {_KIND_WORD[kind]}", part.offset)
        return Typed(BOOL)
    if isinstance(node, Binary):
        left, right = _type(node.left), _type(node.right)
        op = node.op
        if op in ("&&", "||"):
            for side, typed in ((node.left, left), (node.right, right)):
                if typed.kind != BOOL:
                    raise CheckFailed(f"{op} joins conditions; this side is {_KIND_WORD[typed.kind]}", side.offset)
            return Typed(BOOL)
        if op in ("+", "-", "*", "/"):
            for side, typed in ((node.left, left), (node.right, right)):
                if typed.kind != NUMBER:
                    raise CheckFailed(f"{op} needs numbers, this side is {_KIND_WORD[typed.kind]}", side.offset)
            return Typed(NUMBER)
        if op == "in":
            if right.kind != LIST:
                raise CheckFailed(f"`in` needs a list on its right, e.g. [\"FR\", \"DE\"], not "
                                  f"{_KIND_WORD[right.kind]}", node.right.offset)
            if left.kind != right.element:
                raise CheckFailed(f"`in` tests {_KIND_WORD[left.kind]} against a list of "
                                  f"{_KIND_WORD[right.element or NUMBER]}", node.offset)
            return Typed(BOOL)
        if op in ("==", "!="):
            if left.kind != right.kind or left.kind == LIST:
                raise CheckFailed(f"{op} compares {_KIND_WORD[left.kind]} with {_KIND_WORD[right.kind]}", node.offset)
            return Typed(BOOL)
        if left.kind != NUMBER or right.kind != NUMBER:
            raise CheckFailed(f"{op} compares numbers; here {_KIND_WORD[left.kind]} and {_KIND_WORD[right.kind]}"
                              + (" (text is tested with ==, != or in)" if TEXT in (left.kind, right.kind) else ""),
                              node.offset)
        return Typed(BOOL)
    raise CheckFailed("unsupported expression", node.offset)  # pragma: no cover - the parser makes no other node


# Domains: can a condition hold? --------------------------------------------------------------------
# An environment maps a name to what it may still be: an interval (low, low_open, high, high_open)
# for a number, a frozenset for text with known values.
Interval = tuple[float, bool, float, bool]
Env = dict[str, object]


def _domain(name: str, env: Env) -> object:
    if name in env:
        return env[name]
    known = NAMES[name]
    if known.kind == NUMBER:
        return (known.low, False, known.high, False)
    return known.values


def _empty(iv: Interval) -> bool:
    low, low_open, high, high_open = iv
    return low > high or (low == high and (low_open or high_open))


def _narrow_number(iv: Interval, op: str, value: float) -> Interval | None:
    low, low_open, high, high_open = iv
    if op == "<" and (value < high or (value == high and not high_open)):
        high, high_open = value, True
    elif op == "<=" and value < high:
        high, high_open = value, False
    elif op == ">" and (value > low or (value == low and not low_open)):
        low, low_open = value, True
    elif op == ">=" and value > low:
        low, low_open = value, False
    elif op == "==":
        if not _contains(iv, value):
            return None
        return (value, False, value, False)
    elif op == "!=" and low == high == value:
        return None
    out = (low, low_open, high, high_open)
    return None if _empty(out) else out


def _contains(iv: Interval, value: float) -> bool:
    low, low_open, high, high_open = iv
    return (low < value or (low == value and not low_open)) and (value < high or (value == high and not high_open))


def _atom(node: Binary) -> tuple[Var, str, Node] | None:
    """`name op literal` (either way round), or None."""
    if isinstance(node.left, Var) and isinstance(node.right, Num | Str | ListLit):
        return node.left, node.op, node.right
    if isinstance(node.right, Var) and isinstance(node.left, Num | Str) and node.op in _FLIP:
        return node.right, _FLIP[node.op], node.left
    return None


def _apply(node: Binary, env: Env) -> Env | None:
    """`env` narrowed by an atom, None when the atom cannot hold there; env itself if it says nothing."""
    atom = _atom(node)
    if atom is None:
        if isinstance(node.left, Num) and isinstance(node.right, Num) and node.op in _FLIP:
            return env if _compare(node.left.value, node.op, node.right.value) else None
        return env
    var, op, literal = atom
    domain = _domain(var.name, env)
    if isinstance(literal, Num) and isinstance(domain, tuple):
        narrowed = _narrow_number(domain, op, literal.value)
        return None if narrowed is None else {**env, var.name: narrowed}
    if isinstance(literal, ListLit) and op == "in":
        values = [item.value for item in literal.items if isinstance(item, Num | Str)]
        if isinstance(domain, tuple):
            return env if any(_contains(domain, float(v)) for v in values) else None
        if isinstance(domain, frozenset):
            kept = domain & frozenset(str(v) for v in values)
            return {**env, var.name: kept} if kept else None
        return env
    if isinstance(literal, Str) and isinstance(domain, frozenset):
        if op == "==":
            return {**env, var.name: frozenset({literal.value})} if literal.value in domain else None
        if op == "!=":
            kept = domain - {literal.value}
            return {**env, var.name: kept} if kept else None
    return env


def _compare(a: float, op: str, b: float) -> bool:
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]


def _sat(node: Node, env: Env, culprit: list[int]) -> list[Env]:
    """The environments in which `node` may hold (empty: it never does); capped at MAX_ENVS."""
    if isinstance(node, Bool):
        return [env] if node.value else []
    if isinstance(node, Binary):
        if node.op == "&&":
            out: list[Env] = []
            lefts = _sat(node.left, env, culprit)
            for left in lefts:
                out.extend(_sat(node.right, left, culprit))
                if len(out) >= MAX_ENVS:
                    return out[:MAX_ENVS]
            if lefts and not out and not culprit:
                culprit.append(node.offset)
            return out
        if node.op == "||":
            return (_sat(node.left, env, culprit) + _sat(node.right, env, culprit))[:MAX_ENVS]
        if node.op in _NEGATE or node.op == "in":
            narrowed = _apply(node, env)
            return [] if narrowed is None else [narrowed]
    if isinstance(node, Unary) and node.op == "!":
        negated = _negate(node.operand)
        if isinstance(negated, Unary) and negated.op == "!":
            return [env]  # nothing to push the negation into: may hold
        return _sat(negated, env, culprit)
    return [env]


def _negate(node: Node) -> Node:
    if isinstance(node, Bool):
        return Bool(node.offset, not node.value)
    if isinstance(node, Unary) and node.op == "!":
        return node.operand
    if isinstance(node, Binary):
        if node.op == "&&":
            return Binary(node.offset, "||", _negate(node.left), _negate(node.right))
        if node.op == "||":
            return Binary(node.offset, "&&", _negate(node.left), _negate(node.right))
        if node.op in _NEGATE:
            return Binary(node.offset, _NEGATE[node.op], node.left, node.right)
        if node.op == "in" and isinstance(node.left, Var) and isinstance(node.right, ListLit):
            domain = _domain(node.left.name, {})
            if isinstance(domain, frozenset):  # not in [..] over a known set: the rest of the set
                rest = sorted(domain - {item.value for item in node.right.items if isinstance(item, Str)})
                if not rest:
                    return Bool(node.offset, False)
                return Binary(node.offset, "in", node.left, ListLit(node.right.offset,
                                                                      tuple(Str(node.offset, v) for v in rest)))
    return Unary(node.offset, "!", node)


def _atoms_can_hold(node: Node) -> None:
    """Each comparison of a name with a literal, alone against the name's domain: a precise message."""
    if isinstance(node, Binary):
        if node.op in _NEGATE or node.op == "in":
            atom = _atom(node)
            if atom is not None and _apply(node, {}) is None:
                var, op, literal = atom
                raise CheckFailed(_never(var.name, op, literal), node.offset)
            return
        _atoms_can_hold(node.left)
        _atoms_can_hold(node.right)
    elif isinstance(node, Unary):
        _atoms_can_hold(node.operand)


def _never(name: str, op: str, literal: Node) -> str:
    known = NAMES[name]
    if known.kind == TEXT:
        shown = ", ".join(sorted(known.values or ())[:8])
        more = ", ..." if known.values and len(known.values) > 8 else ""
        if isinstance(literal, Str):
            close = difflib.get_close_matches(literal.value, sorted(known.values or ()), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"{name} is never {literal.value!r}{hint}: it is one of {shown}{more}"
        return f"{name} is none of these values: it is one of {shown}{more}"
    span = f"from {_fmt(known.low)} to {_fmt(known.high)}"
    if op == "in":
        return f"{name} is none of these values (it ranges {span}): this rule can never fire"
    return f"{name} {op} {_fmt(getattr(literal, 'value', 0.0))} never holds: {name} ranges {span}" + (
        f" ({known.help})" if known.help else "")


def _fmt(value: float) -> str:
    if value in (float("inf"), float("-inf")):
        return "infinity" if value > 0 else "-infinity"
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"
