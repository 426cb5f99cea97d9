"""``gradviz explain``: the chain rule as a sum over paths, equal to the adjoint."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz as gv
from gradviz.cli import main
from gradviz.frontends.program import as_function
from gradviz.teach.paths import explain


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_paths_of_the_chain_rule_example_with_their_factors():
    x = 0.5
    result = run("explain", "y = x * x; sin(y) * y", "-v", f"x={x}", "--wrt", "x",
                 "--dtype", "float64", "--precision", "12")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "4 paths from x to out" in out
    y = x * x
    # Factors by hand: ∂y/∂x per operand = x, ∂sin(y)/∂y = cos y,
    # ∂(v2·y)/∂v2 = y, ∂(v2·y)/∂y = sin y.
    products = [float(v) for v in re.findall(r"^     = .* = (\S+)$", out, re.M)]
    assert products == pytest.approx([x * np.cos(y) * y, x * np.sin(y)] * 2, rel=1e-11)
    assert "  1. ∂y/∂x (operand 1) · ∂v2/∂y · ∂out/∂v2" in out
    total = 2 * x * (np.cos(y) * y + np.sin(y))
    line = next(line for line in out.splitlines() if line.startswith("sum over the paths"))
    assert float(line.split("= ")[1].split(";")[0]) == pytest.approx(total, rel=1e-11)
    assert line.endswith("✓ equal")
    # The shared form: adj(y) adds both of y's consumers, once.
    assert "  adj(y) = adj(v2) · ∂v2/∂y + adj(out) · ∂out/∂y" in out


def test_more_than_32_paths_are_counted_and_summed_in_the_shared_form():
    result = run("explain", "a = x * x; b = a * a; c = b * b; d = c * c; e = d * d; e * e",
                 "-v", "x=1.01", "--dtype", "float64", "--precision", "10")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "64 paths from x to out" in out and "(more than 32: not listed" in out
    assert " 1. " not in out
    last = out.rstrip().splitlines()[-1]  # adj(x) = ... = 64 x^63
    assert float(last.rsplit("= ", 1)[1]) == pytest.approx(64 * 1.01 ** 63, rel=1e-9)


def test_a_vector_input_is_explained_per_element():
    result = run("explain", "sum(x * x)", "-v", "x=[1, 2, 3]", "--index", "1")
    assert result.exit_code == 0, result.output
    assert "2 paths from x[1] to out" in result.output
    assert "sum over the paths = 4; the backward pass gives ∂out/∂x[1] = 4  ✓ equal" in \
        result.output
    result = run("explain", "sum(W @ v)", "-v", "W=[[1, 2], [3, 4]]", "-v", "v=[5, 6]",
                 "--const", "v", "--index", "1,0")
    assert result.exit_code == 0, result.output
    assert "the backward pass gives ∂out/∂W[1, 0] = 5  ✓ equal" in result.output


@pytest.mark.parametrize("args, message", [
    (["sum(x * x)", "-v", "x=[1, 2, 3]"],
     "x has 3 elements: choose one with --index (0 to 2)"),
    (["sum(x * x)", "-v", "x=[1, 2, 3]", "--index", "3"],
     "--index 3 is outside x, of shape [3]"),
    (["x * x", "-v", "x=[1, 2]", "--index", "0"],
     "explain differentiates a scalar output, and this one has 2 elements: reduce it, "
     "e.g. sum(...)"),
    (["x * y", "-v", "x=1", "-v", "y=2"], "choose one input with --wrt (one of x, y)"),
])
def test_explain_errors_are_one_line(args, message):
    result = run("explain", *args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")


def _random_expression(rng: np.random.Generator) -> str:
    """A small random formula of x and a constant c, with values reused (shared subpaths)."""
    names = ["x"]
    lines = []
    for i in range(int(rng.integers(2, 6))):
        a, b = rng.choice(names, size=2)
        kind = rng.integers(0, 6)
        body = [f"{a} * {b}", f"{a} + {b}", f"sin({a})", f"tanh({a}) * c", f"exp({a} * 0.3)",
                f"{a} - {b} * {b}"][kind]
        names.append(f"v{i}")
        lines.append(f"v{i} = {body}")
    last = names[-1]
    return "; ".join(lines) + f"; sum({last} * {rng.choice(names)})"


@pytest.mark.parametrize("seed", range(25))
def test_path_sum_equals_the_adjoint_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    source = _random_expression(rng)
    x0 = rng.uniform(-1, 1, size=3)
    c = rng.uniform(-1, 1, size=3)
    function = as_function(source, ["x", "c"])
    x = gv.tensor(x0, requires_grad=True, dtype=gv.float64).name("x")
    out = function(x, gv.tensor(c, dtype=gv.float64))
    k = int(rng.integers(0, 3))
    result = explain(out, x, k)
    # Independent oracle: central differences of the formula in float64.
    h = 1e-6
    up, down = x0.copy(), x0.copy()
    up[k] += h
    down[k] -= h
    plain = lambda v: function(gv.tensor(v, dtype=gv.float64), gv.tensor(c, dtype=gv.float64))
    numeric = (plain(up).item() - plain(down).item()) / (2 * h)
    assert result.agrees, source
    assert result.total == pytest.approx(result.engine_adjoint, rel=1e-9, abs=1e-12), source
    assert result.total == pytest.approx(numeric, rel=1e-5, abs=1e-7), source
    if result.paths is not None:
        assert len(result.paths) == result.path_count
        assert sum(result.product(p) for p in result.paths) == pytest.approx(result.total)


def test_random_graph_through_the_cli():
    rng = np.random.default_rng(7)
    source = _random_expression(rng)
    result = run("explain", source, "-v", "x=[0.3, -0.2, 0.5]", "-v", "c=[1, 2, 3]",
                 "--const", "c", "--index", "2", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    assert "✓ equal" in result.output


def test_the_input_itself_is_one_empty_path():
    result = run("explain", "x", "-v", "x=2")
    assert result.exit_code == 0, result.output
    assert "  1. the empty path: x is the output, an empty product = 1" in result.output
    assert "the backward pass gives ∂x/∂x = 1  ✓ equal" in result.output
