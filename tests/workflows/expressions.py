"""A small evaluator of GitHub Actions expressions (``${{ ... }}``), enough to rehearse our workflows.

Why: the rehearsal runs ``release.yml`` without GitHub, so the wiring between jobs
(``needs.x.outputs.y``, ``steps.x.outputs.y``, ``env.X``, ``vars.X``, ``inputs.X``) and every job and
step condition (``failure()``, ``inputs.refresh_batch``) must be evaluated the way the runner does.
It follows GitHub's documented semantics where they matter for us:

* literals: ``null``, ``true``, ``false``, numbers, ``'strings'`` (``''`` escapes a quote);
* ``a.b``, ``a['b']``, ``a.*.b`` (object filter), with a missing property giving ``null``;
* ``!``, ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, ``&&``, ``||`` with ``&&``/``||`` returning an
  operand (as in JavaScript), loose equality (numbers vs strings coerce, strings ignore case);
* falsy: ``false``, ``0``, ``''``, ``null``, NaN;
* functions ``contains``, ``startsWith``, ``endsWith``, ``format``, ``join``, ``toJSON``, ``fromJSON``
  and the status functions (``success``, ``failure``, ``always``, ``cancelled``) supplied by the
  caller, because only the runner knows the job's state.

An unknown function or a syntax error raises ``ExpressionError``: a workflow that uses something
this evaluator does not know makes the rehearsal fail loudly instead of silently guessing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

StatusFunctions = Mapping[str, Callable[[], bool]]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>0x[0-9a-fA-F]+|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^']|'')*')
    | (?P<op>&&|\|\||==|!=|<=|>=|[!<>()\[\].,*])
    | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)

_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class ExpressionError(ValueError):
    """The expression cannot be parsed or uses something this evaluator does not support."""


@dataclass
class Context:
    """The contexts an expression can read, plus the status functions of the current job or step."""

    values: dict[str, Any] = field(default_factory=dict)
    status: StatusFunctions = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# tokens and parse tree


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot parse expression {text!r} at offset {pos}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Precedence climbing: ``||`` < ``&&`` < ``== !=`` < ``< <= > >=`` < ``!`` < property access."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ExpressionError(f"expected {value or 'a token'} in {self.text!r}")
        self.pos += 1
        return token

    def parse(self) -> tuple:
        node = self.parse_or()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return node

    def parse_or(self) -> tuple:
        node = self.parse_and()
        while self.peek() == ("op", "||"):
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self) -> tuple:
        node = self.parse_equality()
        while self.peek() == ("op", "&&"):
            self.take()
            node = ("and", node, self.parse_equality())
        return node

    def parse_equality(self) -> tuple:
        node = self.parse_comparison()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            node = ("cmp", op, node, self.parse_comparison())
        return node

    def parse_comparison(self) -> tuple:
        node = self.parse_unary()
        while self.peek() in (("op", "<"), ("op", "<="), ("op", ">"), ("op", ">=")):
            op = self.take()[1]
            node = ("cmp", op, node, self.parse_unary())
        return node

    def parse_unary(self) -> tuple:
        if self.peek() == ("op", "!"):
            self.take()
            return ("not", self.parse_unary())
        return self.parse_postfix()

    def parse_postfix(self) -> tuple:
        node = self.parse_primary()
        while True:
            token = self.peek()
            if token == ("op", "."):
                self.take()
                name = self.take()
                if name == ("op", "*"):
                    node = ("star", node)
                elif name[0] == "ident":
                    node = ("get", node, ("lit", name[1]))
                else:
                    raise ExpressionError(f"bad property name {name[1]!r} in {self.text!r}")
            elif token == ("op", "["):
                self.take()
                if self.peek() == ("op", "*"):
                    self.take()
                    node = ("star", node)
                else:
                    node = ("get", node, self.parse_or())
                self.take("]")
            else:
                return node

    def parse_primary(self) -> tuple:
        kind, value = self.take()
        if kind == "number":
            number = int(value, 16) if value.lower().startswith("0x") else float(value)
            return ("lit", int(number) if isinstance(number, float) and number.is_integer() else number)
        if kind == "string":
            return ("lit", value[1:-1].replace("''", "'"))
        if (kind, value) == ("op", "("):
            node = self.parse_or()
            self.take(")")
            return node
        if kind == "ident":
            lowered = value.lower()
            if lowered in ("true", "false"):
                return ("lit", lowered == "true")
            if lowered == "null":
                return ("lit", None)
            if self.peek() == ("op", "("):
                self.take()
                args: list[tuple] = []
                if self.peek() != ("op", ")"):
                    args.append(self.parse_or())
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.parse_or())
                self.take(")")
                return ("call", value, args)
            return ("ctx", value)
        raise ExpressionError(f"unexpected {value!r} in {self.text!r}")


# ---------------------------------------------------------------------------------------------
# semantics


def truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, -0, '', null and NaN are falsy."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def to_string(value: Any) -> str:
    """How a value is rendered inside a string (``env:`` values, ``with:`` inputs, job outputs)."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    return str(value)


def _to_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        a: Any = left.casefold()
        b: Any = right.casefold()
    elif type(left) is type(right) and isinstance(left, (dict, list)):
        if op == "==":
            return left is right
        if op == "!=":
            return left is not right
        return False
    else:
        a, b = _to_number(left), _to_number(right)
        if math.isnan(a) or math.isnan(b):
            return op == "!="
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, Mapping):
        if isinstance(key, str):
            for name, value in obj.items():
                if str(name).casefold() == key.casefold():
                    return value
        return None
    if isinstance(obj, list):
        index = _to_number(key)
        if not math.isnan(index) and 0 <= int(index) < len(obj):
            return obj[int(index)]
        return None
    return None


def _format(template: str, *args: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "{{":
            return "{"
        if match.group(0) == "}}":
            return "}"
        index = int(match.group(1))
        if index >= len(args):
            raise ExpressionError(f"format(): no argument {index} for {template!r}")
        return to_string(args[index])

    return re.sub(r"\{\{|\}\}|\{(\d+)\}", replace, template)


def _call(name: str, args: list[Any], ctx: Context) -> Any:
    lowered = name.lower()
    for status_name, function in ctx.status.items():
        if status_name.lower() == lowered:
            if args:
                raise ExpressionError(f"{name}() takes no arguments")
            return function()
    if lowered == "contains":
        haystack, needle = args
        if isinstance(haystack, list):
            return any(_compare("==", item, needle) for item in haystack)
        return to_string(needle).casefold() in to_string(haystack).casefold()
    if lowered == "startswith":
        return to_string(args[0]).casefold().startswith(to_string(args[1]).casefold())
    if lowered == "endswith":
        return to_string(args[0]).casefold().endswith(to_string(args[1]).casefold())
    if lowered == "format":
        return _format(to_string(args[0]), *args[1:])
    if lowered == "join":
        separator = to_string(args[1]) if len(args) > 1 else ","
        items = args[0] if isinstance(args[0], list) else [args[0]]
        return separator.join(to_string(item) for item in items)
    if lowered == "tojson":
        return json.dumps(args[0], indent=2)
    if lowered == "fromjson":
        return json.loads(to_string(args[0]))
    raise ExpressionError(f"function {name}() is not supported by the rehearsal's evaluator")


def _eval(node: tuple, ctx: Context) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "ctx":
        return _get(ctx.values, node[1])
    if kind == "get":
        key = _eval(node[2], ctx)
        if node[1][0] == "star":  # needs.*.result: the property of every element
            return [_get(item, key) for item in _eval(node[1], ctx)]
        return _get(_eval(node[1], ctx), key)
    if kind == "star":
        base = _eval(node[1], ctx)
        if isinstance(base, Mapping):
            return list(base.values())
        return list(base) if isinstance(base, list) else []
    if kind == "not":
        return not truthy(_eval(node[1], ctx))
    if kind == "and":
        left = _eval(node[1], ctx)
        return _eval(node[2], ctx) if truthy(left) else left
    if kind == "or":
        left = _eval(node[1], ctx)
        return left if truthy(left) else _eval(node[2], ctx)
    if kind == "cmp":
        return _compare(node[1], _eval(node[2], ctx), _eval(node[3], ctx))
    if kind == "call":
        return _call(node[1], [_eval(arg, ctx) for arg in node[2]], ctx)
    raise ExpressionError(f"unknown node {kind}")  # pragma: no cover - parser makes only the above


def evaluate(expression: str, ctx: Context) -> Any:
    """Evaluate one expression (without the ``${{ }}`` wrapper, though it is accepted too)."""
    text = expression.strip()
    whole = _TEMPLATE.fullmatch(text)
    if whole:
        text = whole.group(1)
    tree = _Parser(text).parse()
    return _eval(tree, ctx)


def interpolate(value: Any, ctx: Context) -> Any:
    """Resolve ``${{ }}`` in a workflow value: a string that is one whole expression keeps the
    expression's type (as ``if:`` and boolean inputs need); text around expressions makes a string."""
    if not isinstance(value, str) or "${{" not in value:
        return value
    whole = _TEMPLATE.fullmatch(value.strip())
    if whole and value.strip().count("${{") == 1:
        return evaluate(whole.group(1), ctx)
    return _TEMPLATE.sub(lambda match: to_string(evaluate(match.group(1), ctx)), value)


def condition(value: Any, ctx: Context) -> bool:
    """An ``if:`` value. Like the runner, a condition without a status function is implicitly
    ``success() && (...)``."""
    if value is None:
        return truthy(_call("success", [], ctx))
    if isinstance(value, bool):
        return value and truthy(_call("success", [], ctx))
    text = str(value).strip()
    whole = _TEMPLATE.fullmatch(text)
    if whole:
        text = whole.group(1).strip()
    if not re.search(r"\b(success|failure|always|cancelled)\s*\(", text, re.IGNORECASE):
        text = f"success() && ({text})"
    return truthy(evaluate(text, ctx))
