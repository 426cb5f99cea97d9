"""``gradviz cost`` (forward vs reverse, measured) and ``gradviz plot`` (f and df/dx), as used."""

from __future__ import annotations

import csv
import math
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz as gv
from gradviz.cli import main
from gradviz.teach import cost, plot


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def row(output: str, label: str) -> list[str]:
    """The cells of the table row ``label`` (cells are separated by two or more spaces)."""
    line = next(line for line in output.splitlines() if line.startswith(label))
    return re.split(r"\s{2,}", line[len(label):].strip())


def without_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError


# -- cost -------------------------------------------------------------------------------

def test_reverse_wins_for_a_sum_of_1000_inputs():
    result = run("cost", "sum(x * x)", "-v", "x=ones(1000)")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("f: R^1000 -> R^1: n = 1000 input components (x[1000]), "
                          "m = 1 output component")
    assert row(out, "sweeps for the Jacobian") == ["1000 (n)", "1 (m)"]
    # x * x has two JVPs (x used twice) and sum one: per sweep in forward mode, once in reverse.
    assert row(out, "rule evaluations") == ["3000 JVPs", "3 VJPs"]
    # Reverse keeps x (4000 bytes of float32) saved by the multiplication for backward.
    assert row(out, "most bytes held") == ["8.0 kB tangents", "12.0 kB, 4.0 kB saved"]
    assert "Jacobians (1 x 1000): equal (max difference 0)" in out
    assert out.splitlines()[-1].startswith("reverse is cheaper here: one pass per output gives "
                                           "every input's derivative, so m = 1 pass against "
                                           "forward mode's n = 1000 sweeps")


def test_forward_wins_from_one_input_to_1000_outputs():
    result = run("cost", "x * c", "-v", "x=0.5", "-v", "c=linspace(0, 1, 1000)", "--const", "c")
    assert result.exit_code == 0, result.output
    out = result.output
    assert row(out, "sweeps for the Jacobian") == ["1 (n)", "1000 (m)"]
    assert row(out, "rule evaluations") == ["1 JVP", "1000 VJPs"]
    assert "Jacobians (1000 x 1): equal" in out
    assert out.splitlines()[-1].startswith("forward is cheaper here")


def test_both_modes_build_the_true_jacobian_and_the_crossover_is_at_n_equal_m():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((30, 30))
    x = gv.tensor(rng.standard_normal(30), requires_grad=True, dtype=gv.float64)
    report = cost.measure(gv.tensor(A) @ gv.tanh(x), [x], repeats=1)
    expected = A * (1 - np.tanh(x.data) ** 2)  # d(A tanh x)/dx = A diag(1 - tanh²x)
    np.testing.assert_allclose(report.forward.jacobian, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(report.reverse.jacobian, expected, rtol=1e-12, atol=1e-14)
    assert report.jacobians_equal and report.cheaper == "even"
    assert (report.forward.sweeps, report.reverse.sweeps) == (30, 30)

    result = run("cost", "A @ x", "-v", "A=randn(30, 30)", "-v", "x=randn(30)", "--const", "A",
                 "--seed", "1")
    assert result.exit_code == 0, result.output
    assert row(result.output, "sweeps for the Jacobian") == ["30 (n)", "30 (m)"]
    assert result.output.splitlines()[-1].startswith("about even: n = 30 inputs and m = 30 "
                                                     "outputs are close")


def test_memory_counts_what_the_tape_saved():
    x = gv.ones(1000, requires_grad=True)
    out = gv.sum(gv.sin(x) * x)  # sin saves x, mul saves sin(x) and x: x counted once
    assert cost.saved_bytes(out) == 2 * 4000
    report = cost.measure(out, [x], repeats=1)
    assert report.reverse.saved_bytes == 8000
    np.testing.assert_allclose(report.reverse.jacobian[0], np.cos(1.0) + np.sin(1.0), rtol=1e-6)


def test_cost_plot_writes_time_against_n(tmp_path):
    target = tmp_path / "cost.csv"
    result = run("cost", "sum(x * x)", "-v", "x=ones(40)", "--plot", str(target),
                 "--repeats", "1")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(target.open()))
    assert rows[0]["n"] == "1" and rows[-1]["n"] == "40"
    assert len({r["reverse_seconds"] for r in rows}) == 1  # one reverse pass gives all n
    svg = tmp_path / "cost.svg"
    assert run("cost", "sum(x * x)", "-v", "x=ones(8)", "--plot", str(svg)).exit_code == 0
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_cost_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    without_matplotlib(monkeypatch)
    result = run("cost", "sum(x * x)", "-v", "x=ones(8)", "--plot", str(tmp_path / "c.svg"))
    assert result.exit_code == 2
    assert result.output == ("error: --plot needs matplotlib, an optional extra: "
                             "pip install 'gradviz[plot]'\n")
    assert not (tmp_path / "c.svg").exists()


def test_cost_errors_are_one_line():
    result = run("cost", "sum(x * c)", "-v", "x=[1, 2]", "-v", "c=[3, 4]", "--const", "x,c")
    assert (result.exit_code, result.output) == (
        2, "error: no variable requires grad: nothing to differentiate\n")
    result = run("cost", "sum(x)", "-v", "x=[1, 2]", "--wrt", "y")
    assert (result.exit_code, result.output) == (2, "error: --wrt: no variable y (known: x)\n")


# -- plot -------------------------------------------------------------------------------

def test_plot_derivative_of_sin_is_cos(tmp_path):
    target = tmp_path / "sin.csv"
    result = run("plot", "sin(x)", "--x", "-20:20:0.1", "-o", str(target))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(target.open()))
    assert rows[0] == ["x", "f", "df/dx"]
    x, f, dfdx = np.array(rows[1:], dtype=float).T
    assert len(x) == 400 and x[0] == -20 and x[-1] == pytest.approx(19.9)
    np.testing.assert_allclose(f, np.sin(x), atol=1e-12)
    assert np.max(np.abs(dfdx - np.cos(x))) < 1e-6
    assert "400 points from -20 to 19.9" in result.output


def test_plot_takes_formulas_pasted_from_pytorch(tmp_path):
    """plot parses with the same formula language as render (it had its own, without torch.)."""
    target = tmp_path / "sin.csv"
    result = run("plot", "torch.sin(x)", "--x", "0:1:0.25", "-o", str(target))
    assert result.exit_code == 0, result.output
    x, f, dfdx = np.array(list(csv.reader(target.open()))[1:], dtype=float).T
    np.testing.assert_allclose(dfdx, np.cos(x), atol=1e-6)


def test_plot_writes_an_svg_chart(tmp_path):
    target = tmp_path / "sin.svg"
    result = run("plot", "tanh(x) * x", "--x", "-3:3:0.1", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {target}")
    text = target.read_text()
    assert ET.fromstring(text).tag.endswith("svg") and "from the tape" in text


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    without_matplotlib(monkeypatch)
    target = tmp_path / "sin.png"
    result = run("plot", "sin(x)", "--x", "0:1:0.1", "-o", str(target))
    assert result.exit_code == 2
    assert result.output == (f"error: gradviz plot -o {target} (or draw with --terminal) needs "
                             "matplotlib, an optional extra: pip install 'gradviz[plot]'\n")
    assert not target.exists()
    assert run("plot", "sin(x)", "--x", "0:1:0.1", "--terminal").exit_code == 0


def test_plot_in_the_terminal_puts_the_extremes_where_they_are():
    result = run("plot", "sin(x)", "--x", "0:6.3:0.05", "--terminal")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    chart = [line.split("│", 1)[1] for line in lines if "│" in line]
    assert len(chart) == 18 and all(len(c) == 72 for c in chart)
    # sin peaks at π/2, column round(π/2 / 6.25 * 71) ≈ 18; cos (the derivative) at x = 0.
    top, bottom = chart[0], chart[-1]

    def middle(line: str, mark: str) -> float:  # the centre of the run of marks in a row
        cols = [i for i, c in enumerate(line) if c in (mark, "#")]
        return (cols[0] + cols[-1]) / 2

    assert abs(middle(top, "*") - math.pi / 2 / 6.25 * 71) <= 1.5
    assert top[0] in "+#"
    assert abs(middle(bottom, "*") - 3 * math.pi / 2 / 6.25 * 71) <= 1.5
    assert abs(middle(bottom, "+") - math.pi / 6.25 * 71) <= 1.5


@pytest.mark.parametrize("expr, message", [
    ("sum(x)", "plot draws elementwise functions only: f(x) must have one value per point, "
               "but it has shape () for 8 points"),
    ("x * sum(x)", "plot draws elementwise functions only: each f(x)[i] must depend on x[i] "
                   "alone, and this expression mixes the points (sum, mean, dot, @, norm, ...)"),
    ("x * y", "plot draws a function of one variable; the expression uses 2: x, y"),
])
def test_plot_refuses_what_it_cannot_draw(expr, message):
    result = run("plot", expr, "--x", "-2:2:0.5", "--terminal")
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")


def test_plot_range_errors():
    result = run("plot", "sin(x)", "--x", "0:1", "--terminal")
    assert result.output == "error: --x expects START:STOP:STEP, e.g. -20:20:0.1; got '0:1'\n"
    result = run("plot", "sin(x)", "--x", "0:1:0", "--terminal")
    assert result.exit_code == 2 and "STEP not 0" in result.output
    assert np.array_equal(plot.parse_range("-1:1:0.5"), [-1, -0.5, 0, 0.5])
