"""Bigger graphs stay readable: --roll of loop bodies up to 8 ops, --group/--collapse of
user functions, and a terminal summary that shortens long arrays as the boxes do.

Through the CLI (click's CliRunner), with the SVG parsed; numbers are checked
against gradients computed independently with gradviz.grad.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest

import gradviz as gv
from test_cli import box, boxes, clean, cli, field, numbers, summary_row

RNN = '''\
import gradviz as gv

gv.manual_seed(0)
W = gv.randn(4, 4, requires_grad=True)
U = gv.randn(4, 3, requires_grad=True)
b = gv.zeros(4, requires_grad=True)
xs = [gv.randn(3) for _ in range(20)]
h = gv.zeros(4)
for x in xs:
    h = gv.tanh(W @ h + U @ x + b)
loss = h.sum()
'''


def render_script(tmp_path, source: str, *args: str):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    out = tmp_path / "g.svg"
    result = cli("render", f"{script}", *args, "-o", str(out))
    assert result.exit_code == 0, result.output
    namespace: dict = {}
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # the test's reference
    return out.read_bytes(), clean(result.stdout), namespace


def rolled_boxes(svg: bytes) -> list[dict]:
    return [b for b in boxes(svg).values() if re.search(r"×\d+", b["lines"][0])]


def test_an_rnn_cell_of_five_ops_rolls_into_one_box(tmp_path):
    svg, stdout, ns = render_script(tmp_path, RNN, "--roll")
    (loop,) = rolled_boxes(svg)
    # the block written out, each repetition reading its own x (v…x) and the shared weights
    assert re.fullmatch(r"h = \[tanh\(W @ · \+ U @ v\d+…x \+ b\)\] ×20", loop["lines"][0]), \
        loop["lines"][0]
    assert "TanhBackward0" in loop["lines"]
    np.testing.assert_allclose(numbers(field(loop, "value")), ns["h"].detach().numpy(), atol=1e-3)
    # every weight's adjoint is the gradient through all 20 steps
    grads = gv.grad(ns["loss"], [ns["W"], ns["U"], ns["b"]])
    for name, expected in zip(("W", "U", "b"), grads):
        first_row = expected.detach().numpy()[0] if expected.ndim == 2 else expected.detach().numpy()
        # (a matrix box's ∂ line holds its first row; the others follow on their own lines)
        np.testing.assert_allclose(numbers(field(box(svg, name), "∂")), first_row,
                                   rtol=2e-3, atol=2e-3)
    # 20 x's, h0, W, U, b, the loop and loss: the 100 ops are one box
    assert len(boxes(svg)) == 26
    assert "nothing rolled" not in stdout


def test_without_roll_the_rnn_has_a_box_per_op(tmp_path):
    svg, _, _ = render_script(tmp_path, RNN)
    assert not rolled_boxes(svg)
    assert len(boxes(svg)) == 26 - 1 + 100


@pytest.mark.parametrize("ops, rolls", [(8, True), (9, False)])
def test_loop_bodies_of_up_to_eight_ops_roll(tmp_path, ops, rolls):
    steps = ["y = y * 1.5", "y = gv.sin(y)", "y = y + 0.5", "y = gv.tanh(y)",
             "y = y * 0.9", "y = gv.cos(y)", "y = y - 0.1", "y = gv.sigmoid(y)",
             "y = y * 2.0"][:ops]
    loop = "\n".join("    " + s for s in steps)
    source = f"import gradviz as gv\nx = gv.tensor([0.3, 0.7], requires_grad=True)\ny = x\n" \
             f"for _ in range(6):\n{loop}\nloss = y.sum()\n"
    svg, stdout, ns = render_script(tmp_path, source, "--roll")
    found = rolled_boxes(svg)
    if rolls:
        assert len(found) == 1 and found[0]["lines"][0].endswith("×6")
        assert found[0]["lines"][0].count("→") == ops - 1
        (gx,) = gv.grad(ns["loss"], ns["x"])
        np.testing.assert_allclose(numbers(field(box(svg, "x"), "∂")), gx.detach().numpy(), rtol=1e-3)
    else:
        assert not found
        assert "nothing rolled: the repeated block is 9 ops long (at most 8 roll)" in stdout


def test_nothing_rolls_says_why_when_nothing_repeats(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", "sum(sin(x) * exp(x))", "-v", "x=[1, 2]", "--roll", "-o", str(out))
    assert result.exit_code == 0
    assert "--roll: nothing rolled: no block of up to 8 ops repeats back to back" \
        in clean(result.stdout)
    assert "nothing rolled" in out.read_text().replace("\xa0", " ")  # on the diagram too


def test_nothing_rolls_says_why_when_the_steps_differ(tmp_path):
    source = '''\
    import gradviz as gv
    x = gv.tensor(0.5, requires_grad=True)
    y = x
    for i in range(5):
        y = y * (1.0 + i)
    '''
    _, stdout, _ = render_script(tmp_path, source, "--roll")
    assert "nothing rolled: ops repeat, but with other constants" in stdout


def test_a_value_used_after_the_loop_stays_visible(tmp_path):
    """A step's value read again after the loop cannot hide inside a rolled box."""
    source = '''\
    import gradviz as gv
    x = gv.tensor(0.5, requires_grad=True)
    y = x
    kept = []
    for i in range(6):
        y = gv.sin(y)
        kept.append(y)
    loss = y + kept[2]
    '''
    svg, _, ns = render_script(tmp_path, source, "--roll")
    found = [b["lines"][0] for b in rolled_boxes(svg)]
    # sin ×3 up to kept[2], then sin ×3 after it: never one run over kept[2]
    assert sorted(re.search(r"×(\d+)", t).group(1) for t in found) == ["3", "3"], found
    (gx,) = gv.grad(ns["loss"], ns["x"])
    assert float(field(box(svg, "x"), "∂")) == pytest.approx(float(gx), rel=1e-3)


def test_summary_shortens_long_arrays_like_the_boxes(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", "sum(x * x)", "-v", "x=arange(400)", "-o", str(out))
    assert result.exit_code == 0
    row = summary_row(result.stdout, "x")
    assert "[0 1 2 … 397 398 399]" in row and "[0 2 4 … 794 796 798]" in row
    assert len(result.stdout.split("wrote")[0].splitlines()) == 3  # header, out, x
    assert field(box(out.read_bytes(), "x"), "value") == "[0 1 2 … 397 398 399]"
    # short arrays keep PyTorch's printing
    small = cli("render", "sum(x * x)", "-v", "x=arange(4)", "-o", str(out))
    assert "[0., 2., 4., 6.]" in summary_row(small.stdout, "x")
    # --max-elems and --precision apply to the terminal too; a matrix is one line per shown row
    wide = cli("render", "sum(X * X)", "-v", "X=ones(50, 40)", "--max-elems", "4",
               "-o", str(out))
    lines = [line for line in wide.stdout.splitlines() if "[" in line or "…" in line]
    assert any("[1 1 … 1 1]" in line for line in lines)
    table = wide.stdout.split("wrote")[0].splitlines()
    assert len(table) == 2 + 5  # header, out, and X's 4 shown rows and the … row
