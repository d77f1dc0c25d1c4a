"""A checked rule set -> one Python function, generated from the checked tree and verified again.

Why generate code: the fast path has a budget of 5 us for 50 rules (docs/rules.md has the
measurements of the CEL runtimes on PyPI, 36x to 20,000x over it). A Python function whose body
is one `if` per rule, over locals loaded once from the model's input row, runs 50 typical rules
in 2-3 us.

Why it is safe: the text an analyst wrote is never evaluated. It is parsed by our own parser
(txguard.rules.language) into a tree of seven node kinds and checked (txguard.rules.check); the
source is then written from that tree alone: a name becomes a local (`n12`, the model's input row
at index 12, or `t2`, a text field), a number `repr(float)`, a string a constant passed in by
reference (`_c0`), never spliced into the source. Before `compile`, the generated source is parsed
again with Python's `ast` and every node is checked against a whitelist (`_ALLOWED`): names,
attribute reads, calls and operators outside it refuse the set. So the function can only read
the row, the score and the transaction's text fields, compare, and do arithmetic.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from txguard.contract.errors import RuleCheckError
from txguard.contract.models import RuleSetSpec
from txguard.rules.check import CheckFailed, check_condition
from txguard.rules.language import Binary, Bool, Call, ListLit, Node, Num, Str, Unary, Var, position
from txguard.rules.vocabulary import NAMES, NUMBER, SCORE, TEXT_FIELDS

# f(row, score, tx) -> indices of the rules that fired, in order
RuleFunction = Callable[[Sequence[float], float, Any], list[int]]

_PY_OP = {"&&": "and", "||": "or", "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
          "+": "+", "-": "-", "*": "*"}
_METHOD = {"startsWith": "startswith", "endsWith": "endswith"}
_LOCAL = re.compile(r"^(n\d+|t\d+|_c\d+)$")
_FIXED_NAMES = {"r", "s", "x", "h", "_div", "_rules"}
_ALLOWED = (ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Assign, ast.Return, ast.If, ast.Expr,
            ast.Name, ast.Load, ast.Store, ast.Constant, ast.Subscript, ast.Attribute, ast.Call, ast.Compare,
            ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.BinOp, ast.Add, ast.Sub, ast.Mult,
            ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.List, ast.BoolOp)
_ATTRS = set(TEXT_FIELDS) | {"startswith", "endswith", "append"}


@dataclass(frozen=True)
class Compiled:
    function: RuleFunction
    source: str
    names: frozenset[str]  # the vocabulary names the set reads


def _div(a: float, b: float) -> float:
    """CEL's double division: IEEE 754, so x / 0 is +-inf (or NaN), never an exception."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0.0:
            return float("nan")
        return float("inf") if (a > 0) == (str(b)[0] != "-") else float("-inf")


def check_rule_set(spec: RuleSetSpec) -> list[Node]:
    """Every rule's checked tree, or RuleCheckError with every problem found (one per rule)."""
    trees: list[Node] = []
    problems: list[dict[str, object]] = []
    for rule in spec.rules:
        try:
            trees.append(check_condition(rule.condition))
        except CheckFailed as exc:
            line, column = position(rule.condition, exc.offset)
            problems.append({"rule": rule.name, "field": "condition", "offset": exc.offset, "line": line,
                             "column": column, "message": exc.message})
    if problems:
        raise RuleCheckError(problems)
    return trees


class _Writer:
    def __init__(self) -> None:
        self.numbers: dict[str, str] = {}  # vocabulary name -> local
        self.texts: dict[str, str] = {}
        self.constants: dict[str, object] = {}

    def local(self, name: str) -> str:
        if name == SCORE:
            return "s"
        if NAMES[name].kind == NUMBER:
            return self.numbers.setdefault(name, f"n{NAMES[name].index}")
        return self.texts.setdefault(name, f"t{TEXT_FIELDS.index(name)}")

    def constant(self, value: object) -> str:
        key = f"_c{len(self.constants)}"
        self.constants[key] = value
        return key

    def expr(self, node: Node) -> str:
        if isinstance(node, Num):
            return repr(float(node.value))
        if isinstance(node, Str):
            return self.constant(node.value)
        if isinstance(node, Bool):
            return "True" if node.value else "False"
        if isinstance(node, Var):
            return self.local(node.name)
        if isinstance(node, ListLit):
            values = frozenset(item.value if isinstance(item, Str) else float(item.value)  # type: ignore[attr-defined]
                               for item in node.items)
            return self.constant(values)
        if isinstance(node, Unary):
            return f"(not {self.expr(node.operand)})" if node.op == "!" else f"(-{self.expr(node.operand)})"
        if isinstance(node, Call):
            target, arg = self.expr(node.target), self.expr(node.arg)
            if node.method == "contains":
                return f"({arg} in {target})"
            return f"{target}.{_METHOD[node.method]}({arg})"
        if isinstance(node, Binary):
            left, right = self.expr(node.left), self.expr(node.right)
            if node.op == "/":
                return f"_div({left}, {right})"
            if node.op == "in":
                return f"({left} in {right})"
            return f"({left} {_PY_OP[node.op]} {right})"
        raise TypeError(f"unexpected node {node!r}")  # pragma: no cover


def compile_rule_set(spec: RuleSetSpec, label: str = "rules") -> Compiled:
    """Check every rule, then write, verify and compile the one function that evaluates them all."""
    trees = check_rule_set(spec)
    writer = _Writer()
    body = [f"    if {writer.expr(tree)}:\n        h.append({i})" for i, tree in enumerate(trees)]
    prelude = [f"    {local} = r[{NAMES[name].index}]" for name, local in sorted(writer.numbers.items())]
    prelude += [f"    {local} = x.{name}" + (" or ''" if name == "device_id" else "")
                for name, local in sorted(writer.texts.items())]
    source = "\n".join(["def _rules(r, s, x):", *prelude, "    h = []", *body, "    return h", ""])
    tree = ast.parse(source, mode="exec")
    _verify(tree, set(writer.constants))
    namespace: dict[str, Any] = {"__builtins__": {}, "_div": _div, **writer.constants}
    exec(compile(tree, f"<{label}>", "exec"), namespace)  # noqa: S102 - our generated, verified source
    names = frozenset(writer.numbers) | frozenset(writer.texts) | ({SCORE} if "s" in _names_read(tree) else set())
    return Compiled(namespace["_rules"], source, names)


def _names_read(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _verify(tree: ast.AST, constants: set[str]) -> None:
    """Every node of the generated source is of a whitelisted kind, reading only what it may."""
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise RuleCheckError([{"message": f"generated code holds a {type(node).__name__}: refused"}])
        if isinstance(node, ast.Name) and not (node.id in _FIXED_NAMES or _LOCAL.match(node.id)):
            raise RuleCheckError([{"message": f"generated code names {node.id!r}: refused"}])
        if isinstance(node, ast.Name) and node.id.startswith("_c") and node.id not in constants:
            raise RuleCheckError([{"message": f"generated code names {node.id!r}: refused"}])
        if isinstance(node, ast.Attribute) and (node.attr not in _ATTRS or node.attr.startswith("_")):
            raise RuleCheckError([{"message": f"generated code reads .{node.attr}: refused"}])
        if isinstance(node, ast.Subscript) and not (
                isinstance(node.value, ast.Name) and node.value.id == "r" and isinstance(node.slice, ast.Constant)
                and type(node.slice.value) is int):
            raise RuleCheckError([{"message": "generated code indexes something but the row: refused"}])
        if isinstance(node, ast.Constant) and type(node.value) not in (float, int, bool, str):
            raise RuleCheckError([{"message": "generated code holds an unexpected constant: refused"}])
        if isinstance(node, ast.Call):
            func = node.func
            ok = (isinstance(func, ast.Name) and func.id == "_div") or (
                isinstance(func, ast.Attribute) and func.attr in ("startswith", "endswith", "append"))
            if not ok:
                raise RuleCheckError([{"message": "generated code calls something not allowed: refused"}])
