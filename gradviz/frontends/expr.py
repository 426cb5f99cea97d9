"""The command line's expression language.

``gradviz render "y = x * x; u = detach(y); z = u * x; sum(z)" -v x=arange(4)``
takes a tiny program written in Python syntax.  It is parsed with :mod:`ast`,
checked node by node against a whitelist, and then run by the small
tree-walking interpreter in this module.  The source is never handed to
``eval``, ``exec`` or ``compile``-to-bytecode, so nothing outside the
whitelist can run: no imports, no attribute walks like ``x.__class__``, no
builtins.

The module knows nothing about the autodiff engine.  The caller supplies the
names of the functions (and methods, and attributes) the language may use
when parsing, and the function objects and variable values when evaluating.
Operators are applied with the ordinary Python operators, so the values'
own ``__add__``, ``__matmul__`` ... do the work.

What a program may contain
--------------------------
* statements separated by ``;`` or newlines: ``name = expression`` or a bare
  expression; the last statement is the output: an expression, or an
  assignment whose value is the output (``y = 2 * dot(x, x)``, as pasted
  from a lesson);
* numbers (``3``, ``-2.5``, ``1e-3``), list and tuple literals (nested);
* variable names (never starting with ``__``);
* binary ``+ - * / ** @`` and unary ``-`` / ``+``;
* one comparison ``< <= > >= == !=`` (``where(x > 0, x, 0)``), not chained;
* calls of whitelisted functions, ``f(x, (2, 2), axis=0)``, where keyword
  values are literals: numbers, tuples/lists of numbers, ``True``,
  ``False`` or ``None``; a function may be written behind one of the
  caller's module prefixes (``torch.dot(x, x)`` means ``dot(x, x)``);
* calls of whitelisted methods, ``x.sum(axis=0)``, and whitelisted attributes
  such as ``x.T``;
* indexing with integers, slices and ``...``: ``x[1:3]``, ``x[::-1]``,
  ``X[:, 0]``, ``X[0, -1]``.

Everything else is rejected by :func:`parse` before anything runs, with an
:class:`~gradviz.errors.ExpressionError` naming the offending construct.
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from gradviz.errors import ExpressionError, GradvizError

__all__ = [
    "MAX_DEPTH",
    "MAX_SOURCE_CHARS",
    "Program",
    "evaluate",
    "format_caret",
    "parse",
    "parse_value",
]

#: Longest source :func:`parse` and :func:`parse_value` accept, in characters.
MAX_SOURCE_CHARS = 10_000

#: Deepest expression nesting accepted.  Both the checker and the interpreter
#: recurse once per level, so this keeps them far from Python's recursion
#: limit whatever the caller's own stack depth.
MAX_DEPTH = 100

# Plain Python int arithmetic is done by the interpreter itself (not by the
# engine), so `9 ** 9 ** 9` or repeated squaring would hang or exhaust memory.
# Results are capped at this many bits (about 3000 decimal digits).
_MAX_INT_BITS = 10_000

_BINARY_OPERATORS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Pow: ("**", operator.pow),
    ast.MatMult: ("@", operator.matmul),
}

_UNARY_OPERATORS: dict[type[ast.unaryop], tuple[str, Callable[[Any], Any]]] = {
    ast.USub: ("-", operator.neg),
    ast.UAdd: ("+", operator.pos),
}

# Symbols of the operators we reject, so the message can name them.
_OTHER_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Not: "not",
    ast.Invert: "~",
}

_ALLOWED_OPERATORS = "+ - * / ** @ (and unary -, +)"

_COMPARISONS: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
}

# Human names of the constructs we reject, for the error messages.
_CONSTRUCT_NAMES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.IfExp: "conditional expression (`a if c else b`)",
    ast.BoolOp: "`and` / `or`",
    ast.NamedExpr: "assignment expression (`:=`)",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
    ast.Await: "`await`",
    ast.Yield: "`yield`",
    ast.YieldFrom: "`yield from`",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Starred: "starred argument (`*args`)",
    ast.Slice: "slice outside of `[...]`",
    ast.Import: "`import`",
    ast.ImportFrom: "`import`",
    ast.Delete: "`del`",
    ast.AugAssign: "augmented assignment (`+=`, ...)",
    ast.AnnAssign: "annotated assignment",
    ast.FunctionDef: "function definition (`def`)",
    ast.AsyncFunctionDef: "function definition (`async def`)",
    ast.ClassDef: "class definition",
    ast.Return: "`return`",
    ast.For: "`for` loop",
    ast.AsyncFor: "`async for` loop",
    ast.While: "`while` loop",
    ast.If: "`if` statement",
    ast.With: "`with` statement",
    ast.AsyncWith: "`async with` statement",
    ast.Raise: "`raise`",
    ast.Try: "`try` statement",
    ast.Assert: "`assert`",
    ast.Global: "`global`",
    ast.Nonlocal: "`nonlocal`",
    ast.Pass: "`pass`",
    ast.Break: "`break`",
    ast.Continue: "`continue`",
    ast.Match: "`match` statement",
}
if hasattr(ast, "TryStar"):  # Python 3.11+
    _CONSTRUCT_NAMES[ast.TryStar] = "`try` statement"

_PROGRAM_FORMS = (
    "allowed: numbers, lists, variables, operators + - * / ** @, comparisons like x > 0, "
    "calls of known functions, indexing like x[0, 1:3], and assignments `name = ...`"
)

_VALUE_FORMS = (
    "a value must be a number (`3`, `-2.5`, `1e-3`), a list (`[[1, 2], [3, 4]]`) "
    "or a constructor call with numeric arguments"
)

# Widest source line shown above a caret.
_CARET_WIDTH = 72

_INDEX_FORMS = (
    "indices must be integers, slices like `1:3` or `::-1`, `...`, or a tuple of these like `[:, 0]`"
)


@dataclass(frozen=True)
class Program:
    """A parsed and validated program, ready for :func:`evaluate`.

    Build it with :func:`parse`; a hand-made ``Program`` skips the whitelist.
    """

    #: The source exactly as given.
    source: str
    #: The validated :class:`ast.stmt` nodes (``ast.Assign`` or ``ast.Expr``);
    #: the last one's value is the output.
    statements: tuple[ast.stmt, ...]
    #: Names assigned by the program, each once, in order of first assignment.
    assigned: tuple[str, ...]
    #: Names read before any assignment to them and that are not functions:
    #: the variables the caller must supply, in order of first use.
    free_names: tuple[str, ...]


# ---------------------------------------------------------------------------
# Messages


def format_caret(source: str, lineno: int, col: int) -> str:
    """Return line ``lineno`` of ``source`` with a caret under column ``col``.

    Both numbers are 1-based, as in :class:`SyntaxError` and in our messages.
    Out-of-range positions are clamped rather than rejected, since this is
    only used to decorate an error.  Lines longer than :data:`_CARET_WIDTH`
    are cut to a window around the column, marked with ``...``.  The result
    is two lines, each indented by two spaces, without a trailing newline::

          dot(x, x))
                   ^
    """
    lines = _split_lines(source) or [""]
    line = lines[min(max(lineno, 1), len(lines)) - 1]
    col = min(max(col, 1), len(line) + 1)
    if len(line) > _CARET_WIDTH:
        # Keep the caret about a third of the way into the window.
        start = max(0, min(col - 1 - _CARET_WIDTH // 3, len(line) - _CARET_WIDTH))
        end = start + _CARET_WIDTH
        prefix = "..." if start > 0 else ""
        suffix = "..." if end < len(line) else ""
        col = col - start + len(prefix)
        line = prefix + line[start:end] + suffix
    # Keep tabs in the padding so the caret lines up however tabs render.
    padding = "".join("\t" if char == "\t" else " " for char in line[: col - 1])
    return f"  {line}\n  {padding}^"


def _split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _snippet(node: ast.AST, limit: int = 60) -> str:
    """Short source-like rendering of ``node`` for messages."""
    try:
        text = ast.unparse(node)
    except (RecursionError, ValueError):  # absurdly deep node: fall back to its kind
        return type(node).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _suggest(name: str, known: Collection[str]) -> str:
    """``"did you mean `x`? "`` when a known name is close, else ``""``."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean `{close[0]}`? " if close else ""


def _listing(names: Collection[str]) -> str:
    return ", ".join(sorted(names)) if names else "(none)"


def _is_reserved(name: str) -> bool:
    # Dunder (and name-mangled) identifiers are the usual way out of a sandbox;
    # nothing legitimate here needs them.
    return name.startswith("__")


def _reserved_message(name: str) -> str:
    return f"name `{name}` is not allowed: names starting with `__` are reserved"


# ---------------------------------------------------------------------------
# Parsing


def _parse_source(source: Any, mode: str, what: str) -> ast.AST:
    """Run :func:`ast.parse` on ``source`` within our limits.

    Leading whitespace is stripped from every line first: there are no
    compound statements, so indentation has no meaning, and a stray space in
    a shell argument should not be an "unexpected indent".  Error positions
    and carets refer to this stripped text, which is also what they display.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"{what} must be a string, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(
            f"{what} is too long: {len(source)} characters (the limit is {MAX_SOURCE_CHARS})"
        )
    text = "\n".join(line.lstrip() for line in _split_lines(source))
    bad = next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
    if bad is not None:  # undecodable bytes on the command line arrive as lone surrogates
        raise ExpressionError(f"{what} is not valid UTF-8 text (an undecodable byte at "
                              f"character {bad + 1})")
    if "\0" in text:
        raise ExpressionError(f"{what} contains a NUL character")
    if not text.strip():
        raise ExpressionError(f"{what} is empty; e.g. `{'sum(x * x)' if mode == 'exec' else 'arange(4)'}`")
    try:
        # ast.parse only builds a syntax tree; no code object is ever made.
        tree = ast.parse(text, mode=mode)
    except SyntaxError as exc:
        raise ExpressionError(_syntax_message(text, exc)) from None
    except (RecursionError, MemoryError):
        # CPython's parser gives up on very deep (or long left-nested) input.
        raise _TooDeep(_too_deep_message(what)) from None
    return tree


def _syntax_message(text: str, exc: SyntaxError) -> str:
    lineno = exc.lineno or 1
    col = max(exc.offset or 1, 1)
    where = f"line {lineno}, column {col}" if "\n" in text.strip() else f"column {col}"
    return f"syntax error at {where}: {exc.msg}\n{format_caret(text, lineno, col)}"


class _TooDeep(ExpressionError):
    """Nesting beyond :data:`MAX_DEPTH` (kept apart so it is never reworded)."""


def _too_deep_message(what: str) -> str:
    return (
        f"{what} is nested too deeply (more than {MAX_DEPTH} levels); "
        "split it into steps, e.g. `a = ...; b = f(a); ...`"
    )


class _Checker:
    """Walks a parsed tree and rejects anything outside the whitelist.

    It also records which names are assigned and which are read before being
    assigned (the free variables).  Children are visited in evaluation order
    so that "first use" means what the user expects.
    """

    def __init__(
        self,
        functions: Collection[str],
        methods: Collection[str],
        attributes: Collection[str],
        prefixes: Collection[str] = (),
        constants: Collection[str] = (),
    ) -> None:
        self.functions = frozenset(functions)
        self.methods = frozenset(methods)
        self.attributes = frozenset(attributes)
        self.prefixes = frozenset(prefixes)
        self.constants = frozenset(constants)
        # dicts used as ordered sets
        self.assigned: dict[str, None] = {}
        self.free: dict[str, None] = {}

    # -- statements ---------------------------------------------------------

    def program(self, tree: ast.Module) -> tuple[ast.stmt, ...]:
        statements = tuple(tree.body)
        if not statements:  # only comments
            raise ExpressionError("the expression is empty (only comments); e.g. `sum(x * x)`")
        for statement in statements:
            self.statement(statement)
        return statements

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Expr):
            self.expr(node.value, 1)
        elif isinstance(node, ast.Assign):
            if len(node.targets) != 1:
                raise ExpressionError(
                    "chained assignment (`a = b = ...`) is not allowed; assign one name per statement"
                )
            target = node.targets[0]
            if not isinstance(target, ast.Name):
                raise ExpressionError(
                    f"cannot assign to `{_snippet(target)}`: only a plain name can be assigned, "
                    "e.g. `y = x * x`"
                )
            # The value is evaluated first, so `y = y + 1` reads a free `y`.
            self.expr(node.value, 1)
            name = target.id
            if _is_reserved(name):
                raise ExpressionError(_reserved_message(name))
            if name in self.functions:
                raise ExpressionError(
                    f"cannot assign to `{name}`: it is the name of a function; pick another name"
                )
            self.assigned.setdefault(name, None)
        else:
            construct = _CONSTRUCT_NAMES.get(type(node), f"`{type(node).__name__}` statement")
            raise ExpressionError(
                f"{construct} is not allowed; statements are `name = expression` or an expression"
            )

    # -- expressions --------------------------------------------------------

    def expr(self, node: ast.expr, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooDeep(_too_deep_message("the expression"))
        handler = _EXPRESSION_CHECKS.get(type(node))
        if handler is None:
            self.reject(node)
        handler(self, node, depth)

    def reject(self, node: ast.AST) -> NoReturn:
        construct = _CONSTRUCT_NAMES.get(type(node))
        if construct is not None:
            raise ExpressionError(f"{construct} is not allowed: `{_snippet(node)}`; {_PROGRAM_FORMS}")
        raise ExpressionError(f"`{_snippet(node)}` is not allowed; {_PROGRAM_FORMS}")

    def constant(self, node: ast.Constant, depth: int) -> None:
        if not _is_number(node.value):
            raise ExpressionError(_constant_message(node))

    def name(self, node: ast.Name, depth: int) -> None:
        name = node.id
        if _is_reserved(name):
            raise ExpressionError(_reserved_message(name))
        if name in self.functions:
            raise ExpressionError(f"function `{name}` can only be called, e.g. `{name}(x)`")
        if name in self.prefixes and name not in self.assigned:
            raise ExpressionError(
                f"`{name}` is only a prefix of function calls, e.g. `{name}.dot(x, x)`")
        if name not in self.assigned:
            self.free.setdefault(name, None)

    def sequence(self, node: ast.List | ast.Tuple, depth: int) -> None:
        for element in node.elts:
            self.expr(element, depth + 1)

    def binop(self, node: ast.BinOp, depth: int) -> None:
        # A left-leaning chain (x + x + ... + x) reads flat: its length is not nesting,
        # so it is walked as a loop, each operand one level down.
        rights = []
        while isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY_OPERATORS:
                symbol = _OTHER_OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
                raise ExpressionError(f"operator `{symbol}` is not allowed; allowed: {_ALLOWED_OPERATORS}")
            rights.append(node.right)
            node = node.left
        self.expr(node, depth + 1)
        for right in reversed(rights):
            self.expr(right, depth + 1)

    def unaryop(self, node: ast.UnaryOp, depth: int) -> None:
        if type(node.op) not in _UNARY_OPERATORS:
            symbol = _OTHER_OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise ExpressionError(f"operator `{symbol}` is not allowed; allowed: {_ALLOWED_OPERATORS}")
        self.expr(node.operand, depth + 1)

    def compare(self, node: ast.Compare, depth: int) -> None:
        if len(node.ops) != 1:
            raise ExpressionError(
                f"chained comparison `{_snippet(node)}` is not allowed; compare two values, "
                "e.g. `x > 0`")
        if type(node.ops[0]) not in _COMPARISONS:
            raise ExpressionError(
                f"comparison `{_snippet(node)}` is not allowed; allowed: < <= > >= == !=")
        self.expr(node.left, depth + 1)
        self.expr(node.comparators[0], depth + 1)

    def subscript(self, node: ast.Subscript, depth: int) -> None:
        self.expr(node.value, depth + 1)
        index = node.slice
        parts = index.elts if isinstance(index, ast.Tuple) else [index]
        for part in parts:
            self.index_part(part, depth + 1)

    def index_part(self, node: ast.expr, depth: int) -> None:
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return
        if isinstance(node, ast.Slice):
            bounds = [node.lower, node.upper, node.step]
            if all(bound is None or _is_int_literal(bound) for bound in bounds):
                return
        elif _is_int_literal(node):
            return
        raise ExpressionError(f"index `{_snippet(node)}` is not allowed; {_INDEX_FORMS}")

    def attribute(self, node: ast.Attribute, depth: int) -> None:
        if node.attr not in self.attributes or _is_reserved(node.attr):
            hint = f" (methods must be called: `.{node.attr}()`)" if node.attr in self.methods else ""
            raise ExpressionError(
                f"attribute `.{node.attr}` is not allowed; allowed: "
                f"{_listing(['.' + a for a in self.attributes if not _is_reserved(a)])}{hint}"
            )
        self.expr(node.value, depth + 1)

    def call(self, node: ast.Call, depth: int) -> None:
        callee = node.func
        if (isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name)
                and callee.value.id in self.prefixes and callee.value.id not in self.assigned):
            # `torch.dot(x, x)` pasted from PyTorch code is our `dot(x, x)`: the
            # call is rewritten in the tree, so the interpreter never sees the prefix.
            if callee.attr not in self.functions:
                raise ExpressionError(
                    f"unknown function `{callee.value.id}.{callee.attr}`; "
                    f"{_suggest(callee.attr, self.functions)}"
                    f"known functions: {_listing(self.functions)}")
            callee = node.func = ast.copy_location(ast.Name(id=callee.attr, ctx=ast.Load()), callee)
        if isinstance(callee, ast.Name):
            self.callee_name(callee.id)
        elif isinstance(callee, ast.Attribute):
            self.callee_method(callee.attr)
            self.expr(callee.value, depth + 1)
        else:
            raise ExpressionError(
                f"cannot call `{_snippet(callee)}`: only functions named directly can be called, "
                "e.g. `sum(x)`, or methods like `x.sum()`"
            )
        for k, argument in enumerate(node.args):
            if isinstance(argument, ast.Starred):
                raise ExpressionError(f"starred argument `{_snippet(argument)}` is not allowed")
            if isinstance(argument, ast.Constant) and argument.value in (True, False, None) \
                    and not _is_number(argument.value):
                continue  # a flag, as in x.requires_grad_(True)
            named = self.named_constant(argument)
            if named is not None:
                node.args[k] = named
                continue
            self.expr(argument, depth + 1)
        seen: set[str] = set()
        for keyword in node.keywords:
            if keyword.arg is None:
                raise ExpressionError(f"`**` argument unpacking is not allowed: `{_snippet(keyword)}`")
            if _is_reserved(keyword.arg):
                raise ExpressionError(_reserved_message(keyword.arg))
            if keyword.arg in seen:  # ast.parse lets `f(a=1, a=2)` through
                raise ExpressionError(f"keyword argument `{keyword.arg}` is repeated")
            seen.add(keyword.arg)
            named = self.named_constant(keyword.value)
            if named is not None:
                keyword.value = named
                continue
            _check_literal(keyword.value, depth + 1, flags=True, context=f"keyword argument `{keyword.arg}`")

    def named_constant(self, node: ast.expr) -> ast.Name | None:
        """``float64`` or ``torch.float64`` as an argument: the constant's name, else None."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in self.prefixes and node.value.id not in self.assigned:
            if node.attr in self.constants:
                return ast.copy_location(ast.Name(id=node.attr, ctx=ast.Load()), node)
            return None
        if isinstance(node, ast.Name) and node.id in self.constants and node.id not in self.assigned:
            return node
        return None

    def callee_name(self, name: str) -> None:
        if _is_reserved(name):
            raise ExpressionError(_reserved_message(name))
        if name in self.functions:
            return
        if name in self.assigned:
            kind = f"`{name}` is a variable, not a function"
        else:
            kind = f"unknown function `{name}`"
        raise ExpressionError(
            f"{kind}; {_suggest(name, self.functions)}known functions: {_listing(self.functions)}"
        )

    def callee_method(self, name: str) -> None:
        if name in self.methods and not _is_reserved(name):
            return
        allowed = _listing(["." + m + "()" for m in self.methods if not _is_reserved(m)])
        suggestion = _suggest(name, self.methods) if not _is_reserved(name) else ""
        raise ExpressionError(f"method `.{name}()` is not allowed; {suggestion}allowed methods: {allowed}")


_EXPRESSION_CHECKS: dict[type[ast.AST], Callable[[_Checker, Any, int], None]] = {
    ast.Constant: _Checker.constant,
    ast.Name: _Checker.name,
    ast.List: _Checker.sequence,
    ast.Tuple: _Checker.sequence,
    ast.BinOp: _Checker.binop,
    ast.UnaryOp: _Checker.unaryop,
    ast.Compare: _Checker.compare,
    ast.Subscript: _Checker.subscript,
    ast.Attribute: _Checker.attribute,
    ast.Call: _Checker.call,
}


def _is_number(value: Any) -> bool:
    # bool is an int subclass; True/False are not numbers here.
    return type(value) in (int, float)


def _is_int_literal(node: ast.expr) -> bool:
    """``3``, ``-1``, ``+2`` (not floats, not bools, at most one sign)."""
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPERATORS:
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def _constant_message(node: ast.Constant) -> str:
    value = node.value
    if isinstance(value, str):
        kind = "strings are"
    elif isinstance(value, bytes):
        kind = "bytes literals are"
    elif isinstance(value, complex):
        kind = "complex numbers are"
    elif value is True or value is False or value is None:
        return f"`{value!r}` is only allowed as a keyword argument value, e.g. `keepdims=True`"
    elif value is Ellipsis:
        return "`...` is only allowed inside indexing, e.g. `x[..., 0]`"
    else:
        kind = f"`{type(value).__name__}` constants are"
    return f"{kind} not allowed: `{_snippet(node)}`; use numbers, lists and variables"


def _check_literal(node: ast.expr, depth: int, *, flags: bool, context: str) -> None:
    """Accept a literal: a number, ``-number``, or a tuple/list of literals.

    With ``flags``, ``True``, ``False`` and ``None`` are accepted too (they are
    useful as keyword values: ``keepdims=True``, ``axis=None``).
    """
    if depth > MAX_DEPTH:
        raise _TooDeep(_too_deep_message("the expression"))
    if isinstance(node, ast.Constant):
        value = node.value
        if _is_number(value) or (flags and (value is True or value is False or value is None)):
            return
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPERATORS:
        # One sign only: literals need no more, and the interpreter recurses
        # once per sign without the depth check expressions get.
        operand = node.operand
        if isinstance(operand, ast.Constant) and _is_number(operand.value):
            return
    elif isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            _check_literal(element, depth + 1, flags=flags, context=context)
        return
    flag_forms = ", True, False, None" if flags else ""
    raise ExpressionError(
        f"{context}: `{_snippet(node)}` is not allowed; "
        f"use a literal: a number, a tuple or list of numbers{flag_forms}"
    )


def parse(
    source: str,
    functions: Collection[str],
    methods: Collection[str],
    attributes: Collection[str] = ("T",),
    prefixes: Collection[str] = (),
    constants: Collection[str] = (),
) -> Program:
    """Parse and validate ``source``; nothing is evaluated.

    ``functions`` are the names callable as ``f(...)``, ``methods`` the names
    callable as ``value.m(...)`` and ``attributes`` the names readable as
    ``value.a``.  ``prefixes`` are module names a function call may be written
    behind (with ``"torch"``, ``torch.dot(x, x)`` is ``dot(x, x)``), unless
    the program assigns that name.  ``constants`` are names that may be given
    as arguments, bare or behind a prefix (``dtype=torch.float64``); their
    values are looked up among the variables given to :func:`evaluate`.
    Names starting with ``__`` are refused even if listed.

    Raises :class:`~gradviz.errors.ExpressionError` for syntax errors (with
    the line and a caret), for any construct outside the whitelist, for sources longer than
    :data:`MAX_SOURCE_CHARS` and for nesting deeper than :data:`MAX_DEPTH`.
    """
    tree = _parse_source(source, "exec", "the expression")
    checker = _Checker(functions, methods, attributes, prefixes, constants)
    try:
        statements = checker.program(tree)  # type: ignore[arg-type]
    except RecursionError:
        # Only reachable if the caller is itself already deep in the stack.
        raise _TooDeep(_too_deep_message("the expression")) from None
    return Program(
        source=source,
        statements=statements,
        assigned=tuple(checker.assigned),
        free_names=tuple(checker.free),
    )


# ---------------------------------------------------------------------------
# Evaluation


class _Interpreter:
    """Evaluates validated expression nodes.

    It re-checks only what keeps it safe on its own (node kinds, no ``__``
    attributes); the full whitelist was enforced by :func:`parse`.
    """

    def __init__(self, functions: Mapping[str, Callable[..., Any]], env: dict[str, Any]) -> None:
        self.functions = functions
        self.env = env

    def value_of(self, node: ast.expr) -> Any:
        handler = _INTERPRETER_HANDLERS.get(type(node))
        if handler is None:
            raise ExpressionError(f"`{_snippet(node)}` cannot be evaluated (not produced by parse())")
        try:
            return handler(self, node)
        except (GradvizError, RecursionError):
            # Ours already (engine errors keep their type: callers catch them
            # by type), or too deep, which the callers report themselves.
            raise
        except Exception as exc:
            # Python's or numpy's own complaint about the user's text (a bad
            # index, a wrong argument count, a negative size...): the first
            # handler to see it is the innermost node, the most precise snippet.
            raise _foreign_error(node, exc) from exc

    def constant(self, node: ast.Constant) -> Any:
        return node.value

    def name(self, node: ast.Name) -> Any:
        try:
            return self.env[node.id]
        except KeyError:
            raise ExpressionError(
                f"unknown variable `{node.id}`; {_suggest(node.id, self.env)}"
                f"give it a value (e.g. `-v {node.id}=arange(3)`) or assign it before use"
            ) from None

    def list(self, node: ast.List) -> list[Any]:
        return [self.value_of(element) for element in node.elts]

    def tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self.value_of(element) for element in node.elts)

    def binop(self, node: ast.BinOp) -> Any:
        # Left-leaning chains in a loop, not by recursion (see _Checker.binop).
        spine = []
        while isinstance(node, ast.BinOp):
            spine.append(node)
            node = node.left
        left = self.value_of(node)
        for step in reversed(spine):
            right = self.value_of(step.right)
            try:
                left = self._apply(step, left, right)
            except (GradvizError, RecursionError):
                raise
            except Exception as exc:  # as value_of does for its node
                raise _foreign_error(step, exc) from exc
        return left

    def _apply(self, node: ast.BinOp, left: Any, right: Any) -> Any:
        symbol, function = _BINARY_OPERATORS[type(node.op)]
        _refuse_sequence_arithmetic(symbol, left, right)
        if _is_plain_number(left) and _is_plain_number(right):
            # Python numbers: the interpreter does this arithmetic itself, so
            # it guards the result size and reports errors as ours.
            _guard_int_size(node, left, right)
            try:
                return function(left, right)
            except ArithmeticError as exc:
                raise ExpressionError(f"`{_snippet(node)}`: {exc}") from exc
        return function(left, right)

    def unaryop(self, node: ast.UnaryOp) -> Any:
        _, function = _UNARY_OPERATORS[type(node.op)]
        return function(self.value_of(node.operand))

    def compare(self, node: ast.Compare) -> Any:
        _, function = _COMPARISONS[type(node.ops[0])]
        return function(self.value_of(node.left), self.value_of(node.comparators[0]))

    def subscript(self, node: ast.Subscript) -> Any:
        value = self.value_of(node.value)
        return value[self.value_of(node.slice)]

    def slice(self, node: ast.Slice) -> slice:
        def bound(part: ast.expr | None) -> Any:
            return None if part is None else self.value_of(part)

        return slice(bound(node.lower), bound(node.upper), bound(node.step))

    def attribute(self, node: ast.Attribute) -> Any:
        return getattr(self.value_of(node.value), _safe_attribute(node.attr))

    def call(self, node: ast.Call) -> Any:
        callee = node.func
        if isinstance(callee, ast.Name):
            try:
                function = self.functions[callee.id]
            except KeyError:
                raise ExpressionError(
                    f"unknown function `{callee.id}`; known functions: {_listing(self.functions)}"
                ) from None
        elif isinstance(callee, ast.Attribute):
            function = getattr(self.value_of(callee.value), _safe_attribute(callee.attr))
        else:
            raise ExpressionError(f"cannot call `{_snippet(callee)}`")
        args = [self.value_of(argument) for argument in node.args]
        kwargs = {_safe_keyword(k.arg): self.value_of(k.value) for k in node.keywords}
        return function(*args, **kwargs)


_INTERPRETER_HANDLERS: dict[type[ast.AST], Callable[[_Interpreter, Any], Any]] = {
    ast.Constant: _Interpreter.constant,
    ast.Name: _Interpreter.name,
    ast.List: _Interpreter.list,
    ast.Tuple: _Interpreter.tuple,
    ast.BinOp: _Interpreter.binop,
    ast.UnaryOp: _Interpreter.unaryop,
    ast.Compare: _Interpreter.compare,
    ast.Subscript: _Interpreter.subscript,
    ast.Slice: _Interpreter.slice,
    ast.Attribute: _Interpreter.attribute,
    ast.Call: _Interpreter.call,
}


def _safe_attribute(name: str) -> str:
    if _is_reserved(name):
        raise ExpressionError(f"attribute `.{name}` is not allowed")
    return name


def _safe_keyword(name: str | None) -> str:
    if name is None or _is_reserved(name):
        raise ExpressionError("`**` argument unpacking and `__` keyword names are not allowed")
    return name


def _foreign_error(node: ast.AST, exc: Exception) -> ExpressionError:
    """An :class:`ExpressionError` for an exception that is not gradviz's own."""
    # Keep it to one line: the CLI prints errors as a single line.
    message = " ".join(str(exc).split()) or type(exc).__name__
    return ExpressionError(f"`{_snippet(node)}`: {message}")


def _add_note(exc: BaseException, note: str) -> None:
    # BaseException.add_note is Python 3.11+; on 3.10 the note is dropped.
    if hasattr(exc, "add_note"):
        exc.add_note(note)


def _is_plain_number(value: Any) -> bool:
    return isinstance(value, (int, float))


def _refuse_sequence_arithmetic(symbol: str, left: Any, right: Any) -> None:
    """Refuse list/tuple operands where Python would not do arithmetic.

    ``[1, 2] * 3`` repeats and ``[1] + [2]`` concatenates; neither is what a
    user of a tensor language means, and repetition by a huge count would
    exhaust memory.  A sequence with a tensor operand is left to the tensor.
    """
    sequences = (list, tuple)
    if isinstance(left, sequences) or isinstance(right, sequences):
        other = right if isinstance(left, sequences) else left
        if isinstance(other, sequences) or _is_plain_number(other):
            raise ExpressionError(
                f"operator `{symbol}` on a Python list/tuple would not be elementwise arithmetic; "
                "make it a tensor first (pass it to a constructor function)"
            )


def _guard_int_size(node: ast.BinOp, left: Any, right: Any) -> None:
    if not (type(left) is int and type(right) is int):
        return
    if isinstance(node.op, ast.Pow):
        if right <= 0 or abs(left) <= 1:
            return
        # right is compared first so a huge exponent cannot overflow the product
        bits = right * abs(left).bit_length() if right <= _MAX_INT_BITS else _MAX_INT_BITS + 1
    elif isinstance(node.op, ast.Mult):
        bits = left.bit_length() + right.bit_length()
    else:
        return
    if bits > _MAX_INT_BITS:
        raise ExpressionError(
            f"`{_snippet(node)}` is too large an integer (over {_MAX_INT_BITS} bits); "
            "use a float such as `2.0` if you meant it"
        )


def evaluate(
    program: Program,
    functions: Mapping[str, Callable[..., Any]],
    variables: Mapping[str, Any],
    *,
    on_assign: Callable[[str, Any], None] | None = None,
) -> Any:
    """Run ``program`` and return the value of its last statement (an expression's
    value, or the value a final assignment binds).

    ``functions`` maps the function names used by the program to callables;
    ``variables`` gives the values of its free names (extra entries are
    ignored).  Operators, indexing, attributes and methods are applied to the
    values with ordinary Python semantics.  ``on_assign(name, value)`` is
    called after each assignment, in program order.

    A free name without a value, or a function missing from ``functions``,
    raises :class:`~gradviz.errors.ExpressionError`.  So do arithmetic errors
    and oversized results from plain Python numbers, and any exception that
    is not a :class:`~gradviz.errors.GradvizError` raised by the functions or
    the values' own operators (it becomes the ``__cause__``).  A
    ``GradvizError`` propagates unchanged, with a note naming the statement
    being evaluated.
    """
    env = dict(variables)
    interpreter = _Interpreter(functions, env)
    result: Any = None
    many = len(program.statements) > 1
    for number, statement in enumerate(program.statements, start=1):
        try:
            if isinstance(statement, ast.Assign):
                name = statement.targets[0].id  # type: ignore[attr-defined]
                value = interpreter.value_of(statement.value)
                env[name] = value
                result = value
                if on_assign is not None:
                    on_assign(name, value)
            elif isinstance(statement, ast.Expr):
                result = interpreter.value_of(statement.value)
            else:
                raise ExpressionError(
                    f"`{_snippet(statement)}` cannot be evaluated (not produced by parse())"
                )
        except ExpressionError:
            raise
        except Exception as exc:
            # Engine errors keep their type (callers catch them by type); the
            # note only helps whoever reads the traceback.
            where = f"statement {number} " if many else ""
            _add_note(exc, f"while evaluating {where}`{_snippet(statement)}`")
            raise
    return result


# ---------------------------------------------------------------------------
# Values for `-v NAME=VALUE`


def parse_value(text: str, constructors: Mapping[str, Callable[..., Any]]) -> Any:
    """Turn the text of ``-v NAME=VALUE`` into a value.

    Accepted forms: a number (``3``, ``-2.5``, ``1e-3``), a possibly nested
    list of numbers (``[[1, 2], [3, 4]]``), or a call of one of
    ``constructors`` whose positional arguments are numbers or tuples/lists of
    numbers and whose keyword values may also be ``True``, ``False`` or
    ``None`` (``arange(-2, 2, 0.5)``, ``randn(3, 2)``, ``ones((2, 3))``).
    No other names, no operators except a sign.

    Returns the number, the list, or whatever the constructor returns.
    Raises :class:`~gradviz.errors.ExpressionError` otherwise, also when the
    constructor raises anything but a :class:`~gradviz.errors.GradvizError`
    (``randn(-1)``, ``ones(1.5)``).
    """
    tree = _parse_source(text, "eval", "the value")
    body = tree.body  # type: ignore[attr-defined]
    known = f"constructors: {_listing(constructors)}"
    try:
        if isinstance(body, ast.Call):
            callee = body.func
            if not isinstance(callee, ast.Name) or _is_reserved(callee.id):
                raise ExpressionError(f"cannot call `{_snippet(callee)}`; {_VALUE_FORMS}; {known}")
            if callee.id not in constructors:
                raise ExpressionError(
                    f"unknown constructor `{callee.id}`; {_suggest(callee.id, constructors)}{known}"
                )
            for argument in body.args:
                if isinstance(argument, ast.Starred):
                    raise ExpressionError(f"starred argument `{_snippet(argument)}` is not allowed")
                _check_literal(argument, 2, flags=False, context=f"argument of `{callee.id}`")
            for keyword in body.keywords:
                if keyword.arg is None or _is_reserved(keyword.arg):
                    raise ExpressionError(f"`{_snippet(keyword)}` is not allowed; {_VALUE_FORMS}")
                _check_literal(keyword.value, 2, flags=True, context=f"keyword argument `{keyword.arg}`")
            if len({k.arg for k in body.keywords}) != len(body.keywords):
                raise ExpressionError(f"a keyword argument of `{callee.id}` is repeated")
            interpreter = _Interpreter(constructors, {})
            return interpreter.value_of(body)  # errors not ours become ExpressionError
        if isinstance(body, ast.Tuple):
            raise ExpressionError(f"write a list `[...]` rather than a tuple; {_VALUE_FORMS}")
        try:
            _check_literal(body, 1, flags=False, context="value")
        except _TooDeep:
            raise
        except ExpressionError:
            raise ExpressionError(f"`{_snippet(body)}` is not allowed; {_VALUE_FORMS}; {known}") from None
        return _Interpreter({}, {}).value_of(body)
    except RecursionError:
        raise _TooDeep(_too_deep_message("the value")) from None
