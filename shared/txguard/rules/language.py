"""The rule language: a subset of the Common Expression Language (CEL), parsed with positions.

What a condition may contain (CEL syntax and meaning, so a rule reads like an IAM condition and
means the same in any CEL runtime):

- names of the vocabulary (txguard.rules.vocabulary): features, text fields, `score`;
- literals: numbers (`500`, `0.5`, `1e3`), strings (`"payment"` or `'payment'`), `true`, `false`,
  lists of literals (`["FR", "DE"]`);
- `||`, `&&`, `!`; `==`, `!=`, `<`, `<=`, `>`, `>=`; `in` a list; `+`, `-`, `*`, `/`, unary `-`;
  parentheses; the string methods `startsWith`, `endsWith`, `contains`.

Nothing else: no other function, field access, macro, map, bytes, or the ternary operator. The
parser is a small recursive descent over CEL's grammar and precedence; every node keeps the
offset of the text it came from, so each error the check finds points at its place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STRING_METHODS = ("startsWith", "endsWith", "contains")
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>!+\-*/%()\[\],.?:])
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
            "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}


class ParseError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, ident, op, end
    text: str
    offset: int


@dataclass(frozen=True)
class Node:
    offset: int = field(compare=False)


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Var(Node):
    name: str


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # || && == != < <= > >= in + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    method: str  # one of STRING_METHODS
    target: Node
    arg: Node


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


def _unquote(token: Token) -> str:
    body, out, i = token.text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise ParseError(f"unsupported escape \\{nxt} in a string", token.offset + 1 + i)
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, *texts: str) -> Token | None:
        if self.tok.kind == "op" and self.tok.text in texts or self.tok.kind == "ident" and self.tok.text in texts:
            return self.take()
        return None

    def expect(self, text: str, what: str) -> Token:
        tok = self.accept(text)
        if tok is None:
            raise ParseError(f"expected {what}, found {_describe(self.tok)}", self.tok.offset)
        return tok

    # Grammar (CEL precedence, lowest first) ------------------------------------------------------
    def expression(self) -> Node:
        node = self.or_()
        if self.tok.kind == "op" and self.tok.text == "?":
            raise ParseError("the conditional operator ?: is not supported: write two rules", self.tok.offset)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while (tok := self.accept("||")) is not None:
            node = Binary(tok.offset, "||", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.relation()
        while (tok := self.accept("&&")) is not None:
            node = Binary(tok.offset, "&&", node, self.relation())
        return node

    def relation(self) -> Node:
        node = self.addition()
        tok = self.accept("==", "!=", "<", "<=", ">", ">=", "in")
        if tok is not None:
            node = Binary(tok.offset, tok.text, node, self.addition())
            if self.tok.text in ("==", "!=", "<", "<=", ">", ">=", "in") and self.tok.kind in ("op", "ident"):
                raise ParseError(f"{self.tok.text!r} after a comparison: join comparisons with && or ||",
                                 self.tok.offset)
        return node

    def addition(self) -> Node:
        node = self.multiplication()
        while (tok := self.accept("+", "-")) is not None:
            node = Binary(tok.offset, tok.text, node, self.multiplication())
        return node

    def multiplication(self) -> Node:
        node = self.unary()
        while (tok := self.accept("*", "/", "%")) is not None:
            if tok.text == "%":
                raise ParseError("% is not supported on numbers of the rule language", tok.offset)
            node = Binary(tok.offset, tok.text, node, self.unary())
        return node

    def unary(self) -> Node:
        tok = self.accept("!", "-")
        if tok is not None:
            operand = self.unary()
            if tok.text == "-" and isinstance(operand, Num):
                return Num(tok.offset, -operand.value)
            return Unary(tok.offset, tok.text, operand)
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while (dot := self.accept(".")) is not None:
            name = self.take()
            if name.kind != "ident":
                raise ParseError(f"expected a method name after '.', found {_describe(name)}", name.offset)
            if name.text not in STRING_METHODS:
                raise ParseError(f"unknown method {name.text!r} (the rule language has "
                                 f"{', '.join(STRING_METHODS)})", name.offset)
            self.expect("(", f"'(' after {name.text}")
            arg = self.expression()
            self.expect(")", f"')' closing {name.text}(")
            node = Call(dot.offset, name.text, node, arg)
        return node

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "number":
            value = float(tok.text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ParseError(f"number {tok.text} is out of range", tok.offset)
            return Num(tok.offset, value)
        if tok.kind == "string":
            return Str(tok.offset, _unquote(tok))
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return Bool(tok.offset, tok.text == "true")
            if tok.text == "null":
                raise ParseError("null is not a value of the rule language (device_id is \"\" without a device)",
                                 tok.offset)
            if tok.text in RESERVED:
                raise ParseError(f"{tok.text!r} is a reserved word", tok.offset)
            if self.tok.kind == "op" and self.tok.text == "(":
                raise ParseError(f"unknown function {tok.text!r} (the rule language has no functions but the "
                                 f"string methods {', '.join(STRING_METHODS)})", tok.offset)
            return Var(tok.offset, tok.text)
        if tok.kind == "op" and tok.text == "(":
            node = self.expression()
            self.expect(")", "')'")
            return node
        if tok.kind == "op" and tok.text == "[":
            items: list[Node] = []
            if self.accept("]") is None:
                items.append(self.expression())
                while self.accept(",") is not None:
                    if self.tok.kind == "op" and self.tok.text == "]":
                        break
                    items.append(self.expression())
                self.expect("]", "',' or ']'")
            return ListLit(tok.offset, tuple(items))
        raise ParseError(f"expected a value, found {_describe(tok)}", tok.offset)


def _describe(tok: Token) -> str:
    return "the end of the condition" if tok.kind == "end" else repr(tok.text)


def parse(text: str) -> Node:
    """The tree of a condition; raises ParseError (message, offset) at the first thing it cannot read."""
    parser = _Parser(text)
    node = parser.expression()
    if parser.tok.kind != "end":
        raise ParseError(f"unexpected {_describe(parser.tok)} after a complete condition", parser.tok.offset)
    return node


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of an offset."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1
