"""Tests of gradviz.frontends.expr, the command line's expression language.

numpy stands in for the engine: the module only ever calls the functions it
is given and the operands' own operators, so numpy arrays exercise it fully.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradviz.errors import ExpressionError, GradvizError
from gradviz.frontends import expr
from gradviz.frontends.expr import Program, evaluate, format_caret, parse, parse_value


class Arr(np.ndarray):
    """ndarray with a PyTorch-like ``detach`` method."""

    def detach(self) -> Arr:
        return self.copy()


def arr(values) -> Arr:
    return np.asarray(values, dtype=float).view(Arr)


FUNCTIONS = {
    "dot": np.dot,
    "sum": np.sum,
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
    "detach": lambda a: a.copy(),
    "arange": np.arange,
    "reshape": np.reshape,
    "mean": np.mean,
    "array": lambda values: arr(values),
}
METHODS = {"sum", "detach", "mean", "reshape"}


def run(source: str, on_assign=None, attributes=("T",), **variables):
    program = parse(source, FUNCTIONS, METHODS, attributes)
    return evaluate(program, FUNCTIONS, variables, on_assign=on_assign)


def rejected(source: str, *words: str, **kwargs) -> str:
    """Assert that parsing ``source`` fails; return the message."""
    with pytest.raises(ExpressionError) as info:
        parse(source, FUNCTIONS, METHODS, **kwargs)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# ---------------------------------------------------------------------------
# Evaluation


def test_dot_of_a_vector_with_itself():
    assert run("dot(x, x)", x=np.arange(4.0)) == 14.0


def test_multi_statement_program_and_on_assign_order():
    calls = []
    x = arr([1.0, 2.0, 3.0])
    result = run(
        "y = x * x; u = detach(y); z = u * x; sum(z)",
        on_assign=lambda name, value: calls.append((name, value)),
        x=x,
    )
    assert result == 1 + 8 + 27
    assert [name for name, _ in calls] == ["y", "u", "z"]
    np.testing.assert_array_equal(calls[0][1], [1.0, 4.0, 9.0])
    np.testing.assert_array_equal(calls[2][1], [1.0, 8.0, 27.0])


def test_newlines_separate_statements_and_indentation_is_ignored():
    source = """
        y = x + 1   # comments are fine
        z = y * 2
        sum(z)
    """
    assert run(source, x=np.arange(3.0)) == (1 + 2 + 3) * 2


def test_assigned_and_free_names():
    program = parse("y = x * x; z = y * w; sum(z)", FUNCTIONS, METHODS)
    assert isinstance(program, Program)
    assert program.free_names == ("x", "w")
    assert program.assigned == ("y", "z")
    assert program.source == "y = x * x; z = y * w; sum(z)"
    assert isinstance(program.statements[0], ast.Assign)
    assert isinstance(program.statements[-1], ast.Expr)


def test_names_read_before_assignment_are_free():
    program = parse("y = y * x; y = y + 1; y", FUNCTIONS, METHODS)
    assert program.free_names == ("y", "x")
    assert program.assigned == ("y",)  # each name once
    assert evaluate(program, FUNCTIONS, {"x": 3, "y": 2}) == 7


def test_free_names_are_in_first_use_order_and_exclude_functions():
    program = parse("sum(b * a) + dot(a, c)", FUNCTIONS, METHODS)
    assert program.free_names == ("b", "a", "c")


def test_program_is_frozen():
    program = parse("x", FUNCTIONS, METHODS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        program.source = "y"  # type: ignore[misc]


def test_precedence_of_unary_minus_and_power():
    x = np.arange(4.0)
    np.testing.assert_array_equal(run("-x ** 2", x=x), -(x**2))
    assert run("-2 ** 2") == -4
    assert run("2 ** 3 ** 2") == 512
    assert run("1 + 2 * 3 - 4 / 2") == 5.0
    assert run("+x", x=5) == 5


def test_matmul():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(3.0)
    np.testing.assert_array_equal(run("A @ b", A=a, b=b), a @ b)


def test_subscripts():
    x = np.arange(5.0)
    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(run("x[1:3]", x=x), [1.0, 2.0])
    np.testing.assert_array_equal(run("x[::-1]", x=x), x[::-1])
    np.testing.assert_array_equal(run("X[:, 0]", X=X), [0.0, 3.0])
    assert run("X[0, 1]", X=X) == 1.0
    assert run("x[-1]", x=x) == 4.0
    np.testing.assert_array_equal(run("X[..., -1]", X=X), [2.0, 5.0])
    np.testing.assert_array_equal(run("X[1, 0:3:2]", X=X), [3.0, 5.0])


def test_transpose_attribute():
    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(run("X.T", X=X), X.T)
    np.testing.assert_array_equal(run("(X @ X.T)[0]", X=X), (X @ X.T)[0])


def test_extra_attributes_can_be_whitelisted():
    X = np.zeros((2, 3))
    assert run("X.shape", attributes=("T", "shape"), X=X) == (2, 3)
    rejected("X.shape", "attribute `.shape` is not allowed", "allowed: .T")


def test_method_calls():
    x = arr([1.0, 2.0, 3.0])
    assert run("x.sum()", x=x) == 6.0
    y = run("x.detach()", x=x)
    assert isinstance(y, Arr) and y is not x
    np.testing.assert_array_equal(y, x)
    X = arr([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(run("X.sum(axis=0)", X=X), [4.0, 6.0])
    assert run("(X * 2).mean()", X=X) == 5.0


def test_keyword_arguments():
    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(run("sum(X, axis=0)", X=X), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(run("sum(X, axis=-1)", X=X), [3.0, 12.0])
    assert run("sum(X, axis=(0, 1))", X=X) == 15.0
    assert run("sum(X, axis=None, keepdims=True)", X=X).shape == (1, 1)


def test_tuples_and_lists_as_arguments():
    x = np.arange(4.0)
    np.testing.assert_array_equal(run("reshape(x, (2, -1))", x=x), x.reshape(2, 2))
    np.testing.assert_array_equal(run("dot(x, [1, 0, 0, 2])", x=x), 6.0)
    np.testing.assert_array_equal(run("array([[1, 2], [3, -4]])"), [[1, 2], [3, -4]])


def test_assigned_variable_shadows_supplied_one():
    assert run("x = 10; x + 1", x=1) == 11


def test_evaluate_requires_values_for_free_names():
    program = parse("y = x * 2; y + q", FUNCTIONS, METHODS)
    with pytest.raises(ExpressionError, match="unknown variable `q`"):
        evaluate(program, FUNCTIONS, {"x": 1})


def test_evaluate_reports_functions_missing_from_the_mapping():
    program = parse("sin(x)", FUNCTIONS, METHODS)
    with pytest.raises(ExpressionError, match="unknown function `sin`"):
        evaluate(program, {"cos": np.cos}, {"x": 1.0})


def test_gradviz_errors_propagate_with_a_note():
    class EngineError(GradvizError):
        pass

    def boom(value):
        raise EngineError("engine says no")

    program = parse("y = x + 1; boom(y)", {"boom"}, set())
    with pytest.raises(EngineError, match="engine says no") as info:
        evaluate(program, {"boom": boom}, {"x": 1})
    notes = getattr(info.value, "__notes__", [])  # add_note is Python 3.11+
    if hasattr(info.value, "add_note"):
        assert any("statement 2" in note and "boom(y)" in note for note in notes)


def test_foreign_errors_become_expression_errors_naming_the_snippet():
    def boom(value):
        raise ZeroDivisionError("engine says no")

    program = parse("y = x + 1; z = sin(boom(y)); z", {"boom", "sin"}, set())
    with pytest.raises(ExpressionError) as info:
        evaluate(program, {"boom": boom, "sin": np.sin}, {"x": 1})
    # The innermost node that raised, not the whole statement; the original is the cause.
    assert str(info.value) == "`boom(y)`: engine says no"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    "source, variables, needle",
    [
        ("[1, 2][5]", {}, "`[1, 2][5]`: list index out of range"),
        ("[1, 2].sum()", {}, "`[1, 2].sum()`: 'list' object has no attribute 'sum'"),
        ("sin(x, x)", {"x": 1.0}, "`sin(x, x)`:"),
        ("sum(x, foo=1)", {"x": 1.0}, "`sum(x, foo=1)`:"),
        ("dot(x)", {"x": np.ones(4)}, "`dot(x)`:"),
        ("x @ y", {"x": np.ones(3), "y": np.ones(2)}, "`x @ y`:"),
        ("reshape(x, (5, 5))", {"x": np.ones(4)}, "`reshape(x, (5, 5))`:"),
    ],
)
def test_python_and_numpy_errors_are_expression_errors(source, variables, needle):
    with pytest.raises(ExpressionError) as info:
        run(source, **variables)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_errors_without_a_message_name_their_type():
    def boom(value):
        raise MemoryError

    program = parse("boom(x)", {"boom"}, set())
    with pytest.raises(ExpressionError, match="`boom\\(x\\)`: MemoryError"):
        evaluate(program, {"boom": boom}, {"x": 1})


def test_interrupts_are_not_turned_into_expression_errors():
    def stop(value):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(parse("stop(x)", {"stop"}, set()), {"stop": stop}, {"x": 1})


def test_add_note_is_optional():
    """Python 3.10 has no BaseException.add_note; the error still propagates, unannotated."""
    class OldStyleError(GradvizError):
        @property
        def add_note(self):  # as if missing: hasattr() is False
            raise AttributeError("add_note")

    def boom(value):
        raise OldStyleError("no notes here")

    with pytest.raises(OldStyleError, match="no notes here") as info:
        evaluate(parse("boom(x)", {"boom"}, set()), {"boom": boom}, {"x": 1})
    assert not getattr(info.value, "__notes__", None)


def test_plain_number_arithmetic_errors_are_expression_errors():
    with pytest.raises(ExpressionError, match="division by zero"):
        run("1 / 0")
    with pytest.raises(ExpressionError, match="too large"):
        run("9 ** 9 ** 9")
    with pytest.raises(ExpressionError, match="too large"):
        run("a = 2 ** 5000; b = a * a; b * b")
    # floats may overflow but never hang
    with pytest.raises(ExpressionError):
        run("10.0 ** 400")


def test_list_repetition_and_concatenation_are_refused():
    with pytest.raises(ExpressionError, match="list"):
        run("[0] * 1000000000")
    with pytest.raises(ExpressionError, match="list"):
        run("x + [3]", x=[1, 2])
    # ...but a tensor with a list broadcasts as usual
    np.testing.assert_array_equal(run("x + [1, 2]", x=np.zeros(2)), [1.0, 2.0])


# ---------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize(
    "source, word",
    [
        ("__import__('os')", "__import__"),
        ("x.__class__", "__class__"),
        ("x.__class__.__bases__", "__bases__"),
        ("__builtins__", "__builtins__"),
        ("y = x; __y = y; x", "__y"),
        ("sum(x, __k=1)", "__k"),
        ("x.__add__(x)", "__add__"),
        ("(lambda: 1)()", "lambda"),
        ("lambda: 1", "lambda"),
        ("[i for i in x]", "comprehension"),
        ("(i for i in x)", "generator"),
        ("{1: 2}", "dict"),
        ("{1, 2}", "set"),
        ('"abc"', "string"),
        ("b'abc'", "bytes"),
        ("1j", "complex"),
        ('f"{x}"', "f-string"),
        ("x.foo()", "foo"),
        ("x.sum", ".sum()"),
        ("open('f')", "open"),
        ("x if y else z", "conditional"),
        ("a < b < c", "chained comparison"),
        ("a in b", "comparison"),
        ("a is b", "comparison"),
        ("a and b", "and"),
        ("del x", "del"),
        ("import os", "import"),
        ("from os import path; path", "import"),
        ("(y := 2)", ":="),
        ("x // 2", "//"),
        ("x % 2", "%"),
        ("~x", "~"),
        ("not x", "not"),
        ("sum(*x)", "starred"),
        ("sum(**x)", "**"),
        ("sum(x, axis=y)", "literal"),
        ("sum(x, axis=0, axis=1)", "repeated"),
        ("f()()", "cannot call"),
        ("x[0]()", "cannot call"),
        ("y = x; y(2)", "variable, not a function"),
        ("sum = x; x", "function"),
        ("sum", "can only be called"),
        ("s = sum; s(x)", "can only be called"),
        ("a = b = x; a", "chained"),
        ("a, b = x; a", "plain name"),
        ("x[0] = 1; x", "plain name"),
        ("x.T = 1; x", "plain name"),
        ("x += 1; x", "augmented"),
        ("x[None]", "index"),
        ("x[1.5]", "index"),
        ("x[y]", "index"),
        ("x[0:n]", "index"),
        ("x[" + "-" * 300 + "1]", "index"),
        ("sum(x, axis=" + "-" * 300 + "1)", "literal"),
        ("True", "keyword"),
        ("None", "keyword"),
        ("x + ...", "indexing"),
        ("def f(): pass", "def"),
        ("for i in x: i", "for"),
        ("while x: x", "while"),
        ("if x: x", "if"),
        ("assert x", "assert"),
        ("x.T()", ".T()"),
        ("await x", "await"),
        ("", "empty"),
        ("# just a comment", "empty"),
    ],
)
def test_rejected_constructs(source, word):
    rejected(source, word)


def test_last_statement_may_be_an_assignment_whose_value_is_the_output():
    """The lesson's own line `y = 2 * dot(x, x)` draws y."""
    calls = []
    x = np.arange(4.0)
    assert run("y = 2 * dot(x, x)", on_assign=lambda n, v: calls.append(n), x=x) == 28.0
    assert calls == ["y"]
    assert run("x; y = sum(x)", x=x) == 6.0
    assert parse("y = 1", FUNCTIONS, METHODS).free_names == ()


def test_comparisons_apply_the_operands_own_operators():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(run("x > 0", x=x), [False, False, True])
    np.testing.assert_array_equal(run("x <= 0", x=x), [True, True, False])
    np.testing.assert_array_equal(run("x == 0", x=x), [False, True, False])
    np.testing.assert_array_equal(run("0 != x", x=x), [True, False, True])
    np.testing.assert_array_equal(run("x >= 2", x=x), [False, False, True])
    np.testing.assert_array_equal(run("x < x * 0", x=x), [True, False, False])


PREFIXED = {"prefixes": ("torch",)}


def test_torch_prefix_calls_the_function_of_that_name():
    program = parse("y = torch.dot(x, x); torch.sum(y * 2)", FUNCTIONS, METHODS, **PREFIXED)
    assert program.free_names == ("x",)
    assert evaluate(program, FUNCTIONS, {"x": np.arange(4.0)}) == 28.0
    # without the prefix declared, `torch` is an ordinary name and `.dot()` not a method
    rejected("torch.dot(x, x)", "method `.dot()` is not allowed")


@pytest.mark.parametrize("source, words", [
    ("torch", ["only a prefix", "torch.dot(x, x)"]),
    ("torch + 1", ["only a prefix"]),
    ("torch.foo(x)", ["unknown function `torch.foo`", "known functions"]),
    ("torch.sine(x)", ["did you mean `sin`"]),
    ("torch.dot", ["attribute `.dot` is not allowed"]),
    ("torch.linalg.norm(x)", ["is not allowed"]),
    ("np.dot(x, x)", ["method `.dot()` is not allowed"]),
    ("torch.__import__('os')", ["__import__"]),
])
def test_torch_prefix_rejections(source, words):
    rejected(source, *words, **PREFIXED)


def test_named_constants_and_flags_as_arguments():
    functions = {**FUNCTIONS, "kind": lambda value, flag=None, dtype=None: (value, flag, dtype)}
    program = parse("kind(x, True, dtype=torch.float64)", functions, METHODS,
                    prefixes=("torch",), constants=("float64",))
    assert program.free_names == ("x",)
    assert evaluate(program, functions, {"x": 1, "float64": "F64"}) == (1, True, "F64")
    bare = parse("kind(x, dtype=float64)", functions, METHODS, constants=("float64",))
    assert evaluate(bare, functions, {"x": 2, "float64": "F64"}) == (2, None, "F64")
    # only as arguments, and only the names given
    rejected("sum(x, dtype=torch.int8)", "literal", prefixes=("torch",), constants=("float64",))
    rejected("torch.float64 + x", "not allowed", prefixes=("torch",), constants=("float64",))
    rejected("True", "keyword")


def test_an_assigned_prefix_name_is_a_variable():
    # `torch = x` makes torch a variable; then torch.sum() is its method
    program = parse("torch = x; torch.sum()", FUNCTIONS, METHODS, **PREFIXED)
    assert evaluate(program, FUNCTIONS, {"x": arr([1.0, 2.0])}) == 3.0


def test_attribute_message_lists_allowed_attributes():
    assert rejected("x.__class__") == "attribute `.__class__` is not allowed; allowed: .T"


def test_unknown_function_lists_known_functions():
    message = rejected("foo(x)", "unknown function `foo`", "known functions:")
    for name in FUNCTIONS:
        assert name in message
    assert "did you mean `sin`" in rejected("sine(x)")


def test_unknown_method_lists_allowed_methods():
    message = rejected("x.foo()", "method `.foo()` is not allowed")
    assert ".detach()" in message and ".sum()" in message


def test_the_whole_program_is_validated_before_anything_runs():
    calls = []
    functions = {"record": lambda v: calls.append(v) or v}
    with pytest.raises(ExpressionError):
        program = parse("y = record(x); __import__('os')", functions, set())
        evaluate(program, functions, {"x": 1})
    assert calls == []


def test_deep_nesting_is_an_expression_error_not_a_recursion_error():
    rejected("(" * 500 + "x" + ")" * 500)
    rejected("[" * 150 + "1" + "]" * 150, "nested too deeply")
    rejected("-" * 150 + "x", "nested too deeply")
    rejected("sin(" * 150 + "x" + ")" * 150, "nested too deeply")
    rejected("+".join(["x"] * 5000), "nested too deeply")  # CPython's own parser gives up
    rejected("sum(x, axis=" + "(" * 150 + "0" + ",)" * 150 + ")", "nested too deeply")


def test_moderate_nesting_is_fine():
    source = "(" * 40 + "x" + " + 1)" * 40
    assert run(source, x=0) == 40


def test_long_sources_are_refused():
    rejected("x + " * 5000 + "x", "too long", "10000")


def test_non_string_source():
    rejected(b"x", "string")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Syntax errors and carets


def caret_column(message: str) -> tuple[str, int]:
    """The source line shown in ``message`` and the 0-based column of its caret."""
    lines = message.split("\n")
    caret_line = next(line for line in lines if line.strip() == "^")
    source_line = lines[lines.index(caret_line) - 1]
    return source_line, caret_line.index("^")


def test_syntax_error_shows_a_caret_under_the_error():
    message = rejected("dot(x, x))", "syntax error", "column 10")
    assert message.count("\n") == 2
    line, column = caret_column(message)
    assert line == "  dot(x, x))"
    assert line[column] == ")" and column == len(line) - 1


def test_syntax_error_on_a_later_line():
    message = rejected("a = 1\nb = (2 +\nb", "line 2")
    line, column = caret_column(message)
    assert line.strip() == "b = (2 +"
    assert line[column] == "("


def test_syntax_error_with_non_ascii_text():
    message = rejected("é + (")
    line, column = caret_column(message)
    assert line[column] == "("


def test_format_caret():
    assert format_caret("ab\ncdef", 2, 3) == "  cdef\n    ^"
    # positions out of range are clamped
    assert format_caret("ab", 5, 99) == "  ab\n    ^"
    assert format_caret("ab", 0, 0) == "  ab\n  ^"
    # tabs stay tabs so the caret lines up
    assert format_caret("\tx", 1, 2) == "  \tx\n  \t^"


def test_format_caret_windows_long_lines():
    source = "".join(chr(ord("a") + i % 26) for i in range(300))
    shown, caret = format_caret(source, 1, 200).split("\n")
    assert len(shown) < 90
    assert shown[caret.index("^")] == source[199]
    assert shown.startswith("  ...") and shown.endswith("...")


# ---------------------------------------------------------------------------
# Never eval/exec/compile


def test_module_source_names_no_code_execution_builtins():
    tree = ast.parse(pathlib.Path(expr.__file__).read_text())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not names & {"eval", "exec", "compile", "__import__", "literal_eval"}


def test_parse_and_evaluate_never_call_eval_exec_or_compile_to_code(monkeypatch):
    real_compile = builtins.compile
    compile_flags = []

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse is built on compile(..., PyCF_ONLY_AST): that only makes
        # a syntax tree.  Anything that would make a code object fails.
        compile_flags.append(flags)
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("compile to code called")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)

    x = arr([1.0, 2.0])
    assert run("y = x * x; u = y.detach(); z = u * x.T; sum(z[::-1]) + 1", x=x) == 10.0
    assert list(parse_value("arange(3)", {"arange": np.arange})) == [0, 1, 2]
    assert parse_value("[[1, -2]]", {}) == [[1, -2]]
    with pytest.raises(ExpressionError):
        run("__import__('os')")
    with pytest.raises(ExpressionError):
        run("dot(x, x))")
    assert compile_flags and all(flags & ast.PyCF_ONLY_AST for flags in compile_flags)


# ---------------------------------------------------------------------------
# parse_value

CONSTRUCTORS = {
    "arange": np.arange,
    "ones": np.ones,
    "linspace": np.linspace,
    "randn": lambda *shape, seed=0: np.random.default_rng(seed).standard_normal(shape),
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", 3),
        ("-2.5", -2.5),
        ("1e-3", 0.001),
        ("+4", 4),
        ("[[1, 2], [3, 4]]", [[1, 2], [3, 4]]),
        ("[-1, 2.5]", [-1, 2.5]),
        ("  7  ", 7),
    ],
)
def test_parse_value_literals(text, expected):
    value = parse_value(text, CONSTRUCTORS)
    assert value == expected and type(value) is type(expected)


def test_parse_value_constructors():
    np.testing.assert_array_equal(parse_value("arange(4)", CONSTRUCTORS), [0, 1, 2, 3])
    np.testing.assert_array_equal(parse_value("arange(-2, 2, 0.5)", CONSTRUCTORS), np.arange(-2, 2, 0.5))
    np.testing.assert_array_equal(parse_value("ones(3)", CONSTRUCTORS), [1.0, 1.0, 1.0])
    assert parse_value("ones((2, 3))", CONSTRUCTORS).shape == (2, 3)
    assert parse_value("randn(3, 2)", CONSTRUCTORS).shape == (3, 2)
    np.testing.assert_array_equal(
        parse_value("randn(2, seed=1)", CONSTRUCTORS), np.random.default_rng(1).standard_normal((2,))
    )
    np.testing.assert_array_equal(parse_value("linspace(0, 1, 5)", CONSTRUCTORS), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(
        parse_value("linspace(0, 1, 4, endpoint=False)", CONSTRUCTORS), [0, 0.25, 0.5, 0.75]
    )


@pytest.mark.parametrize(
    "text, word",
    [
        ("x", "a value must be"),
        ("1 + 2", "a value must be"),
        ("foo(3)", "unknown constructor `foo`"),
        ("__import__('os')", "__import__"),
        ("arange(x)", "literal"),
        ("arange(1 + 2)", "literal"),
        ("arange(" + "-" * 300 + "1)", "literal"),
        ("-" * 300 + "1", "a value must be"),
        ("ones(*s)", "starred"),
        ("ones(3, **k)", "not allowed"),
        ("ones(3, __k=1)", "not allowed"),
        ("ones(3, a=1, a=2)", "repeated"),
        ("1, 2", "list"),
        ("True", "a value must be"),
        ("'3'", "a value must be"),
        ("arange(3).T", "a value must be"),
        ("arange(3)(1)", "cannot call"),
        ("[1, [2, x]]", "a value must be"),
        ("ones(3); 1", "syntax error"),
        ("arange(4", "syntax error"),
        ("", "empty"),
        ("[" * 150 + "]" * 150, "nested too deeply"),
        ("1" * 20000, "too long"),
    ],
)
def test_parse_value_rejections(text, word):
    with pytest.raises(ExpressionError) as info:
        parse_value(text, CONSTRUCTORS)
    assert word in str(info.value)


@pytest.mark.parametrize(
    "text, word",
    [
        ("ones(3, dtype=1)", "`ones(3, dtype=1)`:"),
        ("randn(-1)", "`randn(-1)`:"),
        ("arange(0, 10, 0)", "`arange(0, 10, 0)`:"),
        ("linspace(0, 1, -1)", "`linspace(0, 1, -1)`:"),
        ("ones(1.5)", "`ones(1.5)`:"),
        ("ones(3, nonsense=1)", "nonsense"),
    ],
)
def test_parse_value_constructor_errors_are_expression_errors(text, word):
    with pytest.raises(ExpressionError) as info:
        parse_value(text, CONSTRUCTORS)
    assert word in str(info.value)
    assert info.value.__cause__ is not None and not isinstance(info.value.__cause__, GradvizError)


def test_parse_value_keeps_gradviz_errors_from_constructors():
    class Refused(GradvizError):
        pass

    def refuse(*args):
        raise Refused("too big")

    with pytest.raises(Refused, match="too big"):
        parse_value("big(3)", {"big": refuse})


def test_parse_value_unknown_constructor_lists_known_ones():
    with pytest.raises(ExpressionError) as info:
        parse_value("arnage(3)", CONSTRUCTORS)
    message = str(info.value)
    assert "did you mean `arange`" in message
    assert all(name in message for name in CONSTRUCTORS)


def test_expression_error_is_a_gradviz_value_error():
    with pytest.raises(GradvizError):
        parse("1 +", FUNCTIONS, METHODS)
    with pytest.raises(ValueError):
        parse("1 +", FUNCTIONS, METHODS)


# ---------------------------------------------------------------------------
# Property: arithmetic on numbers matches Python


def _leaf() -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.integers(0, 20).map(str),
        st.sampled_from(["0.5", "2.5", "1e-3", "3.0", "0.0"]),
        st.sampled_from(["x", "y"]),
    )
    return numbers


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    power = st.tuples(children, st.integers(-2, 3)).map(lambda t: f"{t[0]} ** {t[1]}")
    unary = st.tuples(st.sampled_from(["-", "+"]), children).map(lambda t: f"{t[0]}{t[1]}")
    return st.one_of(binary, power, unary)


EXPRESSIONS = st.recursive(_leaf(), _combine, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(EXPRESSIONS, st.integers(-5, 5), st.floats(-10, 10, allow_nan=False))
def test_number_arithmetic_matches_python(source, x, y):
    variables = {"x": x, "y": y}
    try:
        # Python's own evaluator is the oracle here, in the test only.
        expected = eval(source, {"__builtins__": {}}, dict(variables))
    except ArithmeticError:
        with pytest.raises(ExpressionError):
            run(source, **variables)
        return
    actual = run(source, **variables)
    assert type(actual) is type(expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "x", "y"]), min_size=1, max_size=8))
def test_free_and_assigned_names_property(names):
    # Statement i assigns t{i} from one name; a name is free iff it is read
    # before ever being assigned (the t{i} are assigned before later reads).
    statements = [f"t{i} = {name} * 2" for i, name in enumerate(names)]
    program = parse("; ".join(statements + ["t0"]), FUNCTIONS, METHODS)
    assert program.assigned == tuple(f"t{i}" for i in range(len(names)))
    assert program.free_names == tuple(dict.fromkeys(names))


TOKENS = st.sampled_from(
    [
        "x",
        "y",
        "sum",
        "dot",
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        ";",
        "\n",
        ".",
        "T",
        "detach",
        "__class__",
        "=",
        "+",
        "-",
        "*",
        "**",
        "/",
        "@",
        "1",
        "2.5",
        "'s'",
        "lambda",
        "...",
        "axis",
        "True",
        " ",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(TOKENS, max_size=25).map("".join))
def test_arbitrary_text_only_ever_raises_expression_error(source):
    try:
        program = parse(source, FUNCTIONS, METHODS)
    except ExpressionError:
        return
    # Whatever parses only reaches whitelisted code; when numpy objects, the
    # error is still ours (GradvizError), never a bare TypeError or IndexError.
    variables = dict.fromkeys(program.free_names, arr([1.0, 2.0]))
    try:
        evaluate(program, FUNCTIONS, variables)
    except GradvizError:
        pass
