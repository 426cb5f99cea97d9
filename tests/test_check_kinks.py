"""``gradviz check`` at a kink: "not differentiable here", not WRONG (kinks declared by the ops)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz as gv
from gradviz import ops
from gradviz.cli import main
from gradviz.engine.check import check

NOTE = ("{where} = {value}: at a kink of {op}, not differentiable here (finite differences "
        "straddle it), so it is left out of the comparison")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_relu_at_zero_is_reported_as_a_kink_and_passes():
    result = run("check", "relu(x)", "-v", "x=[0, 1]")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "WRONG" not in result.output
    assert NOTE.format(where="x[0]", value=0, op="relu") in lines
    assert lines[-1] == ("derivatives agree with finite differences wherever they exist "
                         "(1 element at a kink left out)")


def test_relu_away_from_zero_has_no_kink():
    result = run("check", "relu(x)", "-v", "x=[-0.5, 1]")
    assert result.exit_code == 0
    assert "kink" not in result.output
    assert result.output.splitlines()[-1] == "derivatives agree with finite differences"


def test_a_scalar_input_at_a_kink():
    result = run("check", "abs(x) * y", "-v", "x=0", "-v", "y=2")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[1:3]}
    assert rows["x"] == ["—", "—", "at", "a", "kink"]
    assert rows["y"][-1] == "ok"  # y's direction does not move abs's input: no kink for y
    assert NOTE.format(where="x", value=0, op="abs") in result.output.splitlines()


@pytest.mark.parametrize("expr, value, kinked", [
    ("max(x)", "[1, 3, 3]", [1, 2]),
    ("min(x)", "[2, -1, -1, 4]", [1, 2]),
    ("max(x)", "[1, 2, 3]", []),
    ("sum(max(X, axis=1))", "[[1, 5], [2, 2]]", [2, 3]),  # X[1, 0] and X[1, 1] tie
])
def test_max_and_min_ties_are_kinks(expr, value, kinked):
    name = "X" if "X" in expr else "x"
    result = run("check", expr, "-v", f"{name}={value}")
    assert result.exit_code == 0, result.output
    flagged = [line for line in result.output.splitlines() if "at a kink of" in line]
    assert len(flagged) == len(kinked)


def test_a_near_tie_within_eps_is_a_kink_and_beyond_it_is_not():
    near = check(gv.max, np.array([1.0, 1.0 + 5e-7]))
    assert near.kinks == [{0: ["max"], 1: ["max"]}] and near.ok
    far = check(gv.max, np.array([1.0, 1.0 + 1e-3]))
    assert far.kinks == [{}] and far.ok


def test_a_wrong_rule_still_fails_next_to_a_kink():
    # 2x instead of 3x²: wrong at x = 1; x = 0 is relu's kink and is left out.
    cube = gv.defop("cube", lambda x: x ** 3, saves=("x0",),
                    vjps=(lambda g, x: g * 2 * x,), jvps=(lambda t, x: t * 2 * x,))
    result = check(lambda x: cube(gv.relu(x)), np.array([0.0, 1.0]))
    assert not result.ok
    assert result.kinks == [{0: ["relu"]}]
    assert result.reverse_error[0] == pytest.approx(1.0, abs=1e-6)  # |2 - 3| at x = 1


def test_kinks_reached_through_other_ops():
    # relu(W @ v): the first row's product is 0, so every W[0, j] with v[j] != 0 reaches it.
    result = check(lambda W: gv.relu(W @ gv.tensor([1.0, 2.0], dtype=gv.float64)),
                   np.array([[2.0, -1.0], [1.0, 1.0]]))
    assert result.ok and result.kinks == [{0: ["relu"], 1: ["relu"]}]


def test_the_ops_declare_their_kinks_next_to_their_rules():
    x = np.array([-2.0, 0.0, 3.0])
    for op in (ops.relu, ops.abs, ops.sign):
        assert np.array_equal(op.kinks(x)[0], [2.0, 0.0, 3.0])
    assert np.array_equal(ops.max.kinks(np.array([1.0, 4.0, 2.0]), axis=None, keepdims=False)[0],
                          [3.0, 2.0, 2.0])
    assert ops.sin.kinks is None and ops.mul.kinks is None
