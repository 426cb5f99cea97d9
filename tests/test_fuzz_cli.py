"""Property-based fuzzing of the command line: whatever is typed, the outcome is clean.

Random formulas (from the grammar and outside it), random option values and
random ``-v`` values (huge, tiny, nan, ragged, invalid UTF-8) are run through
``gradviz render`` and ``gradviz check`` in-process (click's CliRunner, so a
few hundred examples take a minute).  Every run must end with exit status 0, 1
or 2, at most one ``error:`` line, no traceback and no "internal error", and
leave a well-formed SVG, JSON or DOT file, or no file at all, in bounded time.

CI runs 150 examples per test (three tests: 450 runs, about half a minute); a
longer run by hand: ``GRADVIZ_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_cli.py``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gradviz.cli import main  # noqa: E402

EXAMPLES = int(os.environ.get("GRADVIZ_FUZZ_EXAMPLES", "150"))
# CI repeats the same examples (derandomized: a failure is reproducible); a run by hand
# with GRADVIZ_FUZZ_EXAMPLES set explores new ones each time.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize="GRADVIZ_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
SECONDS = 60  # the most any one run may take

NAMES = ["x", "y", "w", "out", "ｘ"]
UNARY = ["sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sum",
         "mean", "max", "min", "norm", "detach", "clone", "transpose", "neg", "evil"]
BINARY_FUNCS = ["dot", "matmul", "where", "concatenate", "stack", "broadcast_to", "reshape",
                "sum", "open", "__import__"]
OPERATORS = ["+", "-", "*", "/", "**", "@", "<", "==", "//", "%", "and"]
METHODS = ["sum()", "T", "sin()", "reshape(-1)", "mean(axis=0)", "__class__", "name('z')"]


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-10 ** 6, 10 ** 6).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["1e308", "1e-320", "9" * 400, "-0.0", "nan", "inf", "0x10", "1_000",
                         "True", "None", "'s'", "1j"]),
    )


def formulas() -> st.SearchStrategy[str]:
    leaves = st.one_of(st.sampled_from(NAMES), numbers(),
                       st.lists(numbers(), max_size=4).map(lambda xs: f"[{', '.join(xs)}]"))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(st.sampled_from(UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(BINARY_FUNCS), inner, inner).map(
                lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            st.tuples(inner, st.sampled_from(OPERATORS), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, st.sampled_from(METHODS)).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(inner, st.sampled_from(["0", "-1", "1:", "::2", "[0, 0]", "None", "x"])
                      ).map(lambda t: f"{t[0]}[{t[1]}]"),
            st.tuples(st.sampled_from(NAMES), inner, inner).map(
                lambda t: f"{t[0]} = {t[1]}; {t[2]}"),
        )
    grammar = st.recursive(leaves, extend, max_leaves=8)
    outside = st.one_of(
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
        st.sampled_from(["lambda: 0", "[x for x in y]", "x.__class__", "f'{x}'", "(x, x)",
                         "sum([x, x] * x)", "exec('1')", "\x00", "\udcff", "sin(x" * 60,
                         "+".join(["x"] * 150), "x" * 20_000, "import os", "x; ;", "#"]),
    )
    return st.one_of(grammar, grammar, outside)


def values() -> st.SearchStrategy[str]:
    shapes = st.lists(st.integers(-2, 40), min_size=1, max_size=3).map(
        lambda s: ", ".join(map(str, s)))
    body = st.one_of(
        numbers(),
        st.lists(numbers(), max_size=5).map(lambda xs: f"[{', '.join(xs)}]"),
        st.sampled_from(["[[1, 2], [3]]", "[]", "[[]]", "[1, [2]]", "arange(1e12)",
                         "ones(100000, 100000)", "randn(30000)", "\udcff", "linspace(0, 1, -5)",
                         "zeros(3, -1)", "arange(4)", "[nan, inf, -inf]", "1e-45", "sin(1)"]),
        st.tuples(st.sampled_from(["ones", "zeros", "randn", "arange"]), shapes).map(
            lambda t: f"{t[0]}({t[1]})"),
        st.text(max_size=15),
    )
    return st.tuples(st.sampled_from(NAMES + ["1x", "", "x y"]), body).map(
        lambda t: f"{t[0]}={t[1]}")


def render_options() -> st.SearchStrategy[list[str]]:
    def option(name: str, strategy: st.SearchStrategy) -> st.SearchStrategy[list[str]]:
        return strategy.map(lambda v: [name, str(v)])

    one = st.one_of(
        option("--max-nodes", st.integers(-5, 20_000)),
        option("--precision", st.integers(-2, 30)),
        option("--max-elems", st.integers(-1, 200)),
        option("--seed", st.one_of(st.integers(), st.text(max_size=5))),
        option("--title", st.text(max_size=60)),
        option("--rankdir", st.sampled_from(["BT", "lr", "XX"])),
        option("--theme", st.sampled_from(["light", "dark", "print", "neon"])),
        option("--show", st.sampled_from(["structure", "values", "all", "none"])),
        option("--edge-labels", st.sampled_from(["auto", "contribution", "jacobian", "none"])),
        option("--dtype", st.sampled_from(["float32", "float64", "int8"])),
        option("--wrt", st.sampled_from(NAMES + ["x,y", "q"])),
        option("--const", st.sampled_from(NAMES + ["x,y", "q"])),
        st.sampled_from([["--roll"], ["--no-legend"], ["--formula"], ["--bogus"], ["-v"]]),
    )
    return st.lists(one, max_size=4).map(lambda xs: [a for x in xs for a in x])


def _check_outcome(result, started: float, written: Path | None, fmt: str | None) -> None:
    assert time.monotonic() - started < SECONDS, "took too long"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: "
                             f"{result.exception}") from result.exception
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    err = result.stderr
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    assert sum(line.startswith("error:") for line in err.splitlines()) <= 1, err
    if result.exit_code == 2:
        assert err.strip().splitlines()[0].startswith("error:") or "Usage:" in err, err
    if written is None:
        return
    if result.exit_code != 0:
        assert not written.exists(), "a failed run left a file"
        return
    data = written.read_bytes() if written.exists() else b""
    assert data, "a successful run wrote nothing"
    if fmt == "svg":
        ET.fromstring(data)
    elif fmt == "json":
        json.loads(data)
    else:
        assert data.startswith(b"digraph")


def grammar_formulas() -> st.SearchStrategy[str]:
    """Formulas of the grammar over x and y only: most of them run and draw."""
    leaves = st.one_of(st.sampled_from(["x", "y", "x", "y", "(2)", "(0.5)", "(-1)", "[1, 2]"]))
    funcs = ["sin", "cos", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sum",
             "mean", "max", "min", "norm", "detach", "clone", "transpose"]

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(st.sampled_from(funcs), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "@"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["dot", "matmul", "stack", "concatenate"]), inner,
                      inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})" if t[0] in ("dot", "matmul")
                                 else f"{t[0]}([{t[1]}, {t[2]}])"),
            st.tuples(inner, st.sampled_from(["[0]", "[1:]", "[::-1]", ".T", ".sum(axis=0)",
                                              ".reshape(-1)"])).map(lambda t: t[0] + t[1]),
        )
    body = st.recursive(leaves, extend, max_leaves=10)
    # Sometimes a statement first, naming a node: "a = ...; a * x".
    return st.one_of(body, st.tuples(body, body).map(lambda t: f"a = {t[0]}; {t[1]} * a"))


def good_values() -> st.SearchStrategy[list[str]]:
    value = st.one_of(
        st.floats(-1e3, 1e3, allow_nan=False).map(repr),
        st.sampled_from(["[1, 2]", "arange(4)", "randn(2, 2)", "[[1, 2], [3, 4]]", "ones(3)",
                         "[0, -1]", "[nan, 1]", "1e-30", "linspace(0, 1, 5)", "randn(30)"]),
    )
    return st.tuples(value, value).map(lambda t: ["-v", f"x={t[0]}", "-v", f"y={t[1]}"])


def good_options() -> st.SearchStrategy[list[str]]:
    one = st.one_of(
        st.integers(2, 50).map(lambda n: ["--max-nodes", str(n)]),
        st.integers(1, 12).map(lambda n: ["--precision", str(n)]),
        st.integers(2, 100).map(lambda n: ["--max-elems", str(n)]),
        st.text(max_size=30).map(lambda t: ["--title", t]),
        st.sampled_from([["--roll"], ["--no-legend"], ["--show", "structure"],
                         ["--show", "values"], ["--edge-labels", "jacobian"],
                         ["--rankdir", "LR"], ["--theme", "print"], ["--dtype", "float64"],
                         ["--wrt", "x"], ["--const", "y"], ["--seed", "3"]]),
    )
    return st.lists(one, max_size=4).map(lambda xs: [a for x in xs for a in x])


@FUZZ
@given(expr=grammar_formulas(), vals=good_values(), options=good_options(),
       fmt=st.sampled_from(["dot", "svg", "json"]), to_stdout=st.booleans())
def test_fuzz_render_from_the_grammar(tmp_path_factory, expr, vals, options, fmt,
                                      to_stdout) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    written = folder / f"out.{fmt}"
    used = set(re.findall(r"\b[xy]\b", expr))  # -v only for the variables used
    vals = [a for name, v in zip("xy", (vals[:2], vals[2:])) if name in used for a in v]
    options = [o for o in options if o not in ("x", "y") or o in used]
    if options and options[-1] in ("--wrt", "--const"):
        options = options[:-1]
    for flag in ("--wrt", "--const"):
        while flag in options and (options.index(flag) + 1 >= len(options)
                                   or options[options.index(flag) + 1].startswith("-")):
            options.remove(flag)
    args = ["render", expr, *vals, *options, "--renderer", "embedded", "-f", fmt,
            "-o", "-" if to_stdout else str(written)]
    started = time.monotonic()
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    _check_outcome(result, started, None if to_stdout else written, fmt)
    if to_stdout and result.exit_code == 0:
        data = result.stdout_bytes
        if fmt == "svg":
            ET.fromstring(data)
        elif fmt == "json":
            json.loads(data)
        else:
            assert data.startswith(b"digraph")
    OUTCOMES[result.exit_code] = OUTCOMES.get(result.exit_code, 0) + 1


OUTCOMES: dict[int, int] = {}


def test_the_grammar_fuzz_mostly_draws() -> None:
    """The well-formed fuzz must reach the renderer, not stop at errors (a harness check)."""
    if not OUTCOMES:
        pytest.skip("run together with test_fuzz_render_from_the_grammar")
    assert OUTCOMES.get(0, 0) >= sum(OUTCOMES.values()) // 5, OUTCOMES


@FUZZ
@given(expr=formulas(), vals=st.lists(values(), max_size=3), options=render_options(),
       fmt=st.sampled_from(["dot", "svg", "json"]))
def test_fuzz_render_hostile(tmp_path_factory, expr, vals, options, fmt) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    written = folder / f"out.{fmt}"
    args = ["render", expr, *[a for v in vals for a in ("-v", v)], *options,
            "-o", str(written), "--renderer", "embedded"]
    started = time.monotonic()
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    _check_outcome(result, started, written, fmt)
    leftovers = [p.name for p in folder.iterdir() if p.name != written.name]
    assert not leftovers, leftovers  # no temporary file left behind


@FUZZ
@given(expr=formulas(), vals=st.lists(values(), max_size=2),
       eps=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4)),
       seed=st.integers(-2 ** 70, 2 ** 70))
def test_fuzz_check(expr, vals, eps, seed) -> None:
    args = ["check", expr, *[a for v in vals for a in ("-v", v)], "--seed", str(seed)]
    if not (isinstance(eps, float) and math.isclose(eps, 0)):
        args += ["--eps", str(eps)]
    started = time.monotonic()
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    _check_outcome(result, started, None, None)
