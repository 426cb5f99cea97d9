"""Bigger graphs stay readable: --roll of loop bodies up to 8 ops, --group/--collapse of
user functions, and a terminal summary that shortens long arrays as the boxes do.

Through the CLI (click's CliRunner), with the SVG parsed; numbers are checked
against gradients computed independently with gradviz.grad.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

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


# ---------------------------------------------------------------------------
# --group and --collapse: boxes by user function call
# ---------------------------------------------------------------------------

MLP = (Path(__file__).resolve().parents[1] / "samples" / "mlp_batch.py")


def mlp_reference():
    """The sample's numbers, by hand in numpy from its own inputs (run in-process)."""
    ns: dict = {}
    exec(compile(MLP.read_text(), str(MLP), "exec"), ns)
    W1, b1, W2, b2, X, Y = (ns[k].detach().numpy().astype(np.float64)
                            for k in ("W1", "b1", "W2", "b2", "X", "Y"))
    outs = [W2 @ np.maximum(W1 @ x + b1, 0) + b2 for x in X]
    # loss = sum_i (out_i - y_i)^2 / 4, so d loss / d out_i = (out_i - y_i) / 2
    return ns, outs, [(o - y) / 2 for o, y in zip(outs, Y)]


def clusters(json_bytes: bytes) -> dict[str, dict]:
    """Graphviz's JSON: each cluster by label, with its node names and nested clusters."""
    data = json.loads(json_bytes)
    objects = data["objects"]
    out = {}
    for o in objects:
        if o.get("name", "").startswith("cluster_call"):
            names = {objects[k]["name"] for k in o.get("nodes", [])}
            inner = [objects[k]["label"] for k in o.get("subgraphs", [])]
            out[o["label"]] = {"nodes": names, "inner": inner}
    return out


def test_group_draws_a_labelled_cluster_per_call(tmp_path):
    out = tmp_path / "g.json"
    result = cli("render", str(MLP), "--group", "-o", str(out))
    assert result.exit_code == 0, result.output
    found = clusters(out.read_bytes())
    assert sorted(found) == sorted([f"squared_error() #{k}" for k in range(1, 5)]
                                   + [f"model() #{k}" for k in range(1, 5)]
                                   + [f"linear() #{k}" for k in range(1, 9)])
    # calls nest as in the code: squared_error > model > linear, linear
    assert found["squared_error() #1"]["inner"] == ["model() #1"]
    assert found["model() #2"]["inner"] == ["linear() #3", "linear() #4"]
    assert found["linear() #3"]["nodes"] < found["model() #2"]["nodes"] \
        < found["squared_error() #2"]["nodes"]
    assert len(found["linear() #1"]["nodes"]) == 2        # W @ x, + b
    assert len(found["model() #1"]["nodes"]) == 5         # and relu
    assert not found["linear() #1"]["nodes"] & found["linear() #2"]["nodes"]
    # the numbers are the same as without grouping
    plain = tmp_path / "plain.svg"
    cli("render", str(MLP), "-o", str(plain))
    grouped = tmp_path / "g.svg"
    cli("render", str(MLP), "--group", "-o", str(grouped))
    ns, _, _ = mlp_reference()
    (gW2,) = gv.grad(ns["loss"], ns["W2"])
    for svg in (plain.read_bytes(), grouped.read_bytes()):
        np.testing.assert_allclose(numbers(field(box(svg, "W2"), "∂")),
                                   gW2.detach().numpy().ravel(), rtol=1e-3, atol=1e-6)


def test_collapse_draws_each_call_as_one_box(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", str(MLP), "--collapse", "model", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    every = cli("render", str(MLP), "-o", str(tmp_path / "all.svg"))
    assert len(boxes(svg)) == len(boxes((tmp_path / "all.svg").read_bytes())) - 4 * 4
    _, outs, adjoints = mlp_reference()
    for k in range(1, 5):
        call = box(svg, f"model() #{k}")
        assert call["lines"][0].startswith(f"model() #{k} = model(W1, ")
        assert "collapsed" in call["tooltip"] and "5 nodes" in call["tooltip"]
        np.testing.assert_allclose(numbers(field(call, "value")), outs[k - 1], rtol=1e-3)
        (adjoint,) = [line.split(f"∂loss/∂model() #{k}")[1] for line in call["lines"]
                      if line.startswith("∂loss/∂")]
        np.testing.assert_allclose(numbers(adjoint), adjoints[k - 1], rtol=1e-3)
    assert every.exit_code == 0
    # collapsing a function also clusters the calls around it (--collapse implies --group)
    dot = tmp_path / "g.json"
    cli("render", str(MLP), "--collapse", "linear", "-o", str(dot))
    found = clusters(dot.read_bytes())
    assert "model() #1" in found and not any(k.startswith("linear") for k in found)


def test_collapse_of_a_function_never_called_is_a_clean_error(tmp_path):
    result = cli("render", str(MLP), "--collapse", "lineer", "-o", str(tmp_path / "g.svg"))
    assert result.exit_code == 2
    assert "--collapse lineer" in result.stderr
    assert "linear" in result.stderr and "squared_error" in result.stderr
    assert not (tmp_path / "g.svg").exists()


def test_group_on_a_formula_says_there_is_nothing_to_group(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", "sum(x * x)", "-v", "x=[1, 2]", "--group", "-o", str(out))
    assert result.exit_code == 0
    assert "no box was made inside a user function call" in clean(result.stdout)


def test_group_calls_in_python():
    def linear(x, W, b):
        return W @ x + b

    def net(x):
        return gv.tanh(linear(x, W, b))

    W = gv.ones(2, 2, requires_grad=True).name("W")
    b = gv.zeros(2, requires_grad=True).name("b")
    x = gv.tensor([1.0, 2.0]).name("x")
    outside = (x * 2).sum()
    from gradviz.engine import tensor as engine

    with gv.group_calls() as calls:
        y = net(x)
        loss = (y * y).sum().name("loss")
    assert engine._CallRecorder.note is None           # off again: record() pays nothing
    assert [c.label for c in calls.calls()] == []      # frames released at the end
    assert getattr(outside, "scope", None) is None
    view = gv.draw(loss, group=True).view
    scopes = {v.nodes[-1].op.name: v.scope.label if v.scope else None
              for v in view.nodes if v.nodes[-1].op is not None}
    assert scopes["matmul"] == "test_group_calls_in_python.<locals>.linear() #1"
    assert scopes["add"] == scopes["matmul"]
    assert scopes["tanh"] == "test_group_calls_in_python.<locals>.net() #1"
    assert scopes["mul"] is None and scopes["sum"] is None  # made in the with-block itself
    by_name = {v.scope.qualname.rsplit(".", 1)[-1] for v in view.nodes if v.scope}
    assert by_name == {"linear", "net"}
    collapsed = gv.draw(loss, collapse=["net"]).view
    (box_,) = [v for v in collapsed.nodes if v.call is not None]
    assert box_.repeat == 3 and box_.call.name == "net"
    np.testing.assert_allclose(box_.value, np.tanh(np.array([3.0, 3.0])), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(box_.adjoint), 2 * np.tanh([3.0, 3.0]), rtol=1e-5)


def test_group_calls_nests_and_restores():
    from gradviz.engine import tensor as engine

    def f(x):
        return x * 2

    x = gv.tensor([1.0], requires_grad=True)
    with gv.group_calls() as outer:
        with gv.group_calls():
            a = f(x)
        assert engine._CallRecorder.note == outer._note
        b = f(x)
    assert engine._CallRecorder.note is None and engine._grouping == 0
    assert a.scope.name == b.scope.name == "f"
    assert a.scope is not b.scope


def test_group_calls_is_per_thread():
    """Like grad mode: a recording in one thread notes nothing made in another."""
    import threading

    def f(x):
        return x * 3

    x = gv.tensor([1.0], requires_grad=True)
    made = {}
    with gv.group_calls():
        worker = threading.Thread(target=lambda: made.setdefault("other", f(x)))
        worker.start()
        worker.join()
        mine = f(x)
    assert mine.scope.name == "f"
    assert getattr(made["other"], "scope", None) is None


def test_a_value_computed_before_the_loop_and_read_by_every_step_rolls(tmp_path):
    """`Wt = W.T` once, then `h = tanh(Wt @ h)` in the loop: Wt is shared, like a weight."""
    source = '''\
    import gradviz as gv
    W = gv.tensor([[0.5, -0.2], [0.1, 0.3]], requires_grad=True)
    Wt = W.T
    h = gv.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(7):
        h = gv.tanh(Wt @ h)
    loss = h.sum()
    '''
    svg, stdout, ns = render_script(tmp_path, source, "--roll")
    (loop,) = rolled_boxes(svg)
    assert loop["lines"][0] == "h = [Wt @ · → tanh(·)] ×7"
    (gW,) = gv.grad(ns["loss"], ns["W"])
    np.testing.assert_allclose(numbers(field(box(svg, "W"), "∂")), gW.detach().numpy()[0],
                               rtol=1e-3)
