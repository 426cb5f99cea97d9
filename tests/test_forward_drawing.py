"""``gradviz render --mode forward``: the tangents one forward sweep pushes up, drawn."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz as gv
from gradviz.cli import main
from gradviz.frontends.program import as_function
from gradviz.render import draw
from gradviz.render.model import PRUNED

CLASSIC = "log(x1) + x1 * x2 - sin(x2)"  # the textbook example of the two accumulation modes
RENDERERS = ["embedded", pytest.param("system", marks=pytest.mark.skipif(
    shutil.which("dot") is None, reason="no `dot`"))]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def classic(x1: float = 2.0, x2: float = 5.0):
    a = gv.tensor(x1, requires_grad=True, dtype=gv.float64).name("x1")
    b = gv.tensor(x2, requires_grad=True, dtype=gv.float64).name("x2")
    return as_function(CLASSIC, ["x1", "x2"])(a, b), a, b


def test_each_box_shows_its_tangent_and_what_does_not_depend_on_x_is_pruned():
    out, x1, x2 = classic()
    drawing = draw(out, wrt=[x1], mode="forward")
    tangents = {v.formula or v.name: v.adjoint for v in drawing.view.nodes if v.adjoint is not None}
    # By hand: d log(x1) = 1/x1, d(x1 x2) = x2, the sum 1/x1 + x2; sin(x2) does not move.
    assert tangents == {"x1": 1.0, "log(x1)": 0.5, "x1 * x2": 5.0, "v2 + v3": 5.5,
                        "v4 - v5": 5.5}
    pruned = {v.name: v.reason for v in drawing.view.nodes if v.kind == PRUNED}
    assert set(pruned) == {"x2", "v5"}
    flowed = {(e.src, e.dst): e.contribution for e in drawing.view.edges if not e.pruned}
    assert flowed[("v0", "v3")] == 5.0 and flowed[("v2", "v4")] == 0.5
    assert drawing.notes[0] == "forward mode: tangents ∂v/∂x1 pushed up from x1, one sweep"


@pytest.mark.parametrize("seed", range(8))
def test_the_output_tangent_equals_jvp(seed):
    rng = np.random.default_rng(seed)
    W = gv.tensor(rng.standard_normal((3, 4)), dtype=gv.float64)

    def f(x):
        h = gv.tanh(W @ x)
        return gv.sum(h * gv.sin(x[:3]) + h * h)

    x = gv.tensor(rng.standard_normal(4), requires_grad=True, dtype=gv.float64)
    direction = int(rng.integers(0, 4))
    out = f(x)
    drawing = draw(out, wrt=[x], mode="forward", direction=direction)
    unit = np.eye(4)[direction]
    _, expected = gv.jvp(f, (x.detach(),), (gv.tensor(unit, dtype=gv.float64),))
    assert drawing.adjoint_of(out) == pytest.approx(expected.item(), rel=1e-12)
    ones = draw(out, wrt=[x], mode="forward")  # no direction: all components at once
    _, along_ones = gv.jvp(f, (x.detach(),), (gv.ones(4, dtype=gv.float64),))
    assert ones.adjoint_of(out) == pytest.approx(along_ones.item(), rel=1e-12)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_cli_draws_forward_mode(renderer, tmp_path):
    target = tmp_path / "forward.svg"
    result = run("render", CLASSIC, "-v", "x1=2", "-v", "x2=5", "--mode", "forward", "--wrt",
                 "x1", "-o", str(target), "--renderer", renderer)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "forward mode: tangents ∂v/∂x1 pushed up from x1, one sweep"
    assert lines[1].split() == ["value", "∂·/∂x1"]
    assert lines[2].split() == ["out", "11.6521", "5.5000"]
    svg = ET.parse(target).iter("{http://www.w3.org/2000/svg}text")
    text = " ".join(t.text or "" for t in svg).replace("\xa0", " ")  # Graphviz keeps spaces as nbsp
    assert "∂out/∂x1  5.5" in text and "∂v3/∂x1  5" in text
    assert "what flowed up along the edge" in text


def test_cli_direction_picks_one_component(tmp_path):
    target = tmp_path / "g.dot"
    result = run("render", "y = x * x; sum(y)", "-v", "x=[1, 2, 3]", "--mode", "forward",
                 "--wrt", "x", "--direction", "1", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2].split() == ["out", "14.", "4."]  # ∂Σx²/∂x[1] = 2·2
    source = target.read_text()
    assert "∂y/∂x[1]\\ \\ [0\\ 4\\ 0]" in source


@pytest.mark.parametrize("args, message", [
    (["--mode", "forward"],
     "--mode forward pushes tangents from one input: name it with --wrt NAME"),
    (["--mode", "forward", "--wrt", "x", "--direction", "3"],
     "direction 3: x has 3 components (0 to 2)"),
    (["--direction", "1"], "--direction applies to --mode forward"),
])
def test_cli_forward_mode_errors(args, message, tmp_path):
    result = run("render", "sum(x * x)", "-v", "x=[1, 2, 3]", "-o", str(tmp_path / "g.svg"),
                 *args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")
    assert not (tmp_path / "g.svg").exists()
