"""gradviz step, as a learner meets it: transcripts, keys, a real terminal, slides.

Every number the stepper prints is checked against the engine: each step's
adjoint and contributions, and the final gradients against what backward()
leaves in .grad (equality, not closeness).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.cells import cell_len

import gradviz as gv
from gradviz.cli import main
from gradviz.frontends.load import load
from gradviz.render.values import format_array
from gradviz.stepper.forward import ForwardSession, forward_transcript
from gradviz.stepper.frames import render_frames, write_frames
from gradviz.stepper.screen import Viewer
from gradviz.stepper.session import Session
from gradviz.stepper.text import Formatter, transcript

REPO = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
CONTROL_FLOW = str(REPO / "samples" / "lesson" / "05_control_flow.py") + ":d"

LESSON = [
    ("dot(x, x)", ["-v", "x=arange(4)"]),
    ("2 * dot(x, x)", ["-v", "x=arange(4)"]),
    ("sum(x * x)", ["-v", "x=arange(4)"]),
    ("y = x * x; u = detach(y); z = u * x; sum(z)", ["-v", "x=arange(4)"]),
    ("norm(X @ w - y) ** 2", ["-v", "X=randn(3, 2)", "-v", "w=[1, -1]", "-v", "y=[0, 1, 2]",
                              "--const", "X,y", "--seed", "0"]),
    (CONTROL_FLOW, []),
]


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def _options(args: list[str]) -> dict:
    values = [args[i + 1] for i, a in enumerate(args) if a == "-v"]
    consts = [args[i + 1] for i, a in enumerate(args) if a == "--const"]
    seed = next((int(args[i + 1]) for i, a in enumerate(args) if a == "--seed"), None)
    return dict(values=values, constants=consts, seed=seed)


def _one(a) -> str:
    return " / ".join(format_array(np.asarray(a), 4, 6).split("\n"))


@pytest.mark.parametrize("expr, args", LESSON, ids=lambda v: v if isinstance(v, str) else "")
def test_transcript_of_the_lessons_examples_matches_the_engine(expr, args):
    result = cli("step", expr, *args, "--no-pause")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "\x1b" not in text  # piped: plain text
    # The same graph, built again, stepped by the engine directly.
    loaded = load(expr, **_options(args))
    session = Session(loaded.output, retain_graph=True, kept=loaded.kept)
    blocks = text.split("\n\nstep ")[1:]
    assert len(blocks) == len(session.steps) > 0
    fmt = Formatter(session)
    for block, step in zip(blocks, session.steps):
        assert block.startswith(f"{step.index + 1} of {len(session)} · {session.tape.id(step.node)}")
        name = session.name(step.node)
        assert f"adjoint    {fmt.bar(name)} = {_one(step.adjoint)}" in block
        for e in step.edges:
            if e.value is not None:
                assert f"= {_one(e.value)}" in block, (block, e)
            else:
                assert f"{session.name(e.input) if e.input in session.tape else ''}: nothing flows" \
                    in block or "nothing flows" in block
    # The end: each input's gradient equals what backward() leaves in .grad, exactly.
    final = session.gradients()
    again = load(expr, **_options(args))
    out = again.output
    if again.script:  # the script ran its own backward(): its leaves hold that .grad
        leaves = [n for n in gv.Tape(out).nodes if n.is_leaf and n.requires_grad]
        assert [label for label, _ in final] == [session.name(n) for n in session.inputs]
        for (label, g), leaf in zip(final, leaves):
            assert f"{label}.grad = {_one(g)}" in text
            assert np.array_equal(np.asarray(g), leaf.grad.data), label
        return
    (out.sum() if out.data.size > 1 else out).backward()
    leaves = [n for n in gv.Tape(out).nodes if n.is_leaf and n.requires_grad]
    assert len(leaves) == len(final) > 0
    for (label, g), leaf in zip(final, leaves):
        assert np.array_equal(np.asarray(g), leaf.grad.data), label
        assert f"{label}.grad = {_one(leaf.grad.data)}" in text


def test_a_value_used_twice_visibly_receives_two_contributions():
    result = cli("step", "sum(x * x)", "-v", "x=[1, 2, 3]", "--no-pause")
    mul = result.stdout.split("\n\nstep ")[2]
    assert "x̄ += v̄1 · ∂v1/∂x  [local Jacobian (3)×(3)] = [1 2 3]   → x̄ = [1 2 3]" in mul
    assert "x̄ += v̄1 · ∂v1/∂x  [local Jacobian (3)×(3)] = [1 2 3]   → x̄ = [2 4 6]" in mul
    assert "(x is used 2 times by v1: its contributions add up)" in mul


def test_scalar_steps_show_the_chain_rule_with_numbers():
    result = cli("step", "sin(a * b)", "-v", "a=2", "-v", "b=3", "--at", "2")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("step 2 of 4 · v2  v2 = a * b")
    assert "ā += v̄2 · ∂v2/∂a = 0.9602 · 3 = 2.881" in text
    assert "b̄ += v̄2 · ∂v2/∂b = 0.9602 · 2 = 1.92" in text


def test_the_table_says_pending_not_reached_and_pruned_with_the_reason():
    text = cli("step", "y = x * x; u = detach(y); z = u * x; sum(z)", "-v", "x=arange(4)",
               "--at", "1").stdout
    rows = {line.split()[1]: line for line in text.splitlines() if re.match(r"\s+v\d", line)}
    assert "pending: complete, waits for its turn" in rows["z"]  # its one consumer is done
    assert "not reached yet" in rows["x"]
    assert "pruned: detach() passes no gradient" in rows["u"]
    assert "[1 1 1 1]" in rows["z"]  # the partial adjoint is shown, not blank


def test_pending_says_whether_other_consumers_are_still_to_come():
    text = cli("step", "a = x * 2; b = x * 3; sum(a * b)", "-v", "x=[1, 2]", "--at", "3").stdout
    rows = {line.split()[1]: line for line in text.splitlines() if re.match(r"\s+v\d", line)}
    assert "pending: partial, waits for its other consumers" in rows["x"]  # a has not sent yet
    assert "[6 12]" in rows["x"]                                             # b's share alone
    assert "pending: complete, waits for its turn" in rows["a"]


def test_memory_is_freed_as_the_pass_goes():
    text = cli("step", "sum(exp(x) * x)", "-v", "x=[1, 2]", "--no-pause").stdout
    lines = [line for line in text.splitlines() if "memory:" in line]
    held = [int(re.search(r"saved for backward (\d+) B held", line).group(1)) for line in lines]
    assert held == sorted(held, reverse=True) and held[0] > 0 and held[-1] == 0


def test_at_counts_from_one_and_from_the_end():
    first = cli("step", "dot(x, x)", "-v", "x=arange(4)", "--at", "1").stdout
    last = cli("step", "dot(x, x)", "-v", "x=arange(4)", "--at", "-1").stdout
    assert first.startswith("step 1 of 2") and last.startswith("step 2 of 2")
    assert "x.grad = [0 2 4 6]" in last


@pytest.mark.parametrize("args, message", [
    (["dot(x, x)", "-v", "x=arange(4)", "--at", "9"], "--at 9: this pass has 2 steps"),
    (["dot(x, x)", "-v", "x=arange(4)", "--at", "0"], "--at counts from 1"),
    (["dot(x, ", "-v", "x=arange(4)"], None),
    (["2 * c", "-v", "c=3", "--const", "c"], "does not require grad"),
    (["sin(x)", "-v", "x=[1, 2]", "--mode", "forward"], "--wrt NAME"),
    (["sin(x)", "-v", "x=[1, 2]", "--mode", "forward", "--wrt", "x", "--direction", "5"],
     "--direction 5"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = subprocess.run([sys.executable, "-m", "gradviz", "step", *args, "--no-pause"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    if message:
        assert proc.stderr.count("error:") == 1 and message in proc.stderr, proc.stderr


def test_python_api_prints_the_transcript_without_a_terminal(capsys):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x).name("y")
    session = gv.step(y)
    out = capsys.readouterr().out
    assert out.startswith("reverse accumulation of y = dot(x, x): 2 steps")
    assert "x.grad = [0 2 4 6]" in out
    assert len(session) == 2
    y.backward()  # the graph is still usable: the stepper retained it
    assert x.grad.tolist() == [0, 2, 4, 6]


# -- the interactive viewer, key by key ----------------------------------------------------------


def _viewer() -> Viewer:
    a = gv.tensor(2.0, requires_grad=True).name("a")
    b = gv.tensor(3.0, requires_grad=True).name("b")
    c = gv.tensor(5.0).name("c")
    z = (gv.sin(a * b) + a * c).name("z")
    s = Session(z, retain_graph=True)
    return Viewer(s, Formatter(s))


def _screen(v: Viewer) -> str:
    from rich.console import Console
    con = Console(width=80, height=24, record=True, force_terminal=False)
    con.print(v.render(80, 24))
    return con.export_text()


def test_keys_next_back_first_last():
    v = _viewer()
    assert v.k == 0
    for key in ("n", " ", "\r", "\x1b[C"):
        v.press(key)
    assert v.k == 4
    v.press("p"); v.press("\x1b[D")
    assert v.k == 2
    v.press("G")
    assert v.k == len(v.session) - 1
    v.press("n")
    assert v.k == len(v.session) - 1 and "last step" in v.message
    v.press("g")
    assert v.k == 0


def test_jump_breakpoints_and_continue():
    v = _viewer()
    for key in "jv3\r":
        v.press(key)
    assert v.session.steps[v.k].node.label is None and v.session.tape.id(v.session.steps[v.k].node) == "v3"
    for key in "jnope\r":
        v.press(key)
    assert "no node 'nope'" in v.message
    for key in "jc\r":  # c is a constant: never visited
        v.press(key)
    assert "never visited" in v.message
    v.press("g")
    for key in "bb\r":
        v.press(key)
    assert "breakpoint at b" in v.message
    v.press("c")
    assert v.session.name(v.session.steps[v.k].node) == "b"
    v.press("c")
    assert v.k == len(v.session) - 1


def test_the_screen_fits_80_by_24_and_explains_the_step():
    v = _viewer()
    v.press("n"); v.press("n")
    screen = _screen(v)
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) <= 24 and max(cell_len(line) for line in lines) <= 80
    assert "step 3/6" in screen and "v4 = sin(v3)" in screen
    assert "v̄3 += v̄4 · ∂v4/∂v3 = 1 · 0.9602 = 0.9602" in screen
    assert "↑ v0 (shared, above)" in screen  # a shared node is drawn once
    assert "pending" in screen and "not reached" in screen
    v.press("?")
    assert "A step" in _screen(v) and "Any key closes" in _screen(v)
    v.press("x")  # any key closes the help
    assert "graph" in _screen(v)
    assert v.press("q") is False


def test_keys_that_arrive_together_are_split():
    from gradviz.stepper.interactive import split_keys
    assert split_keys("jx\r") == ["j", "x", "\r"]
    assert split_keys("\x1b[C\x1b[Dn") == ["\x1b[C", "\x1b[D", "n"]
    assert split_keys("\x1b") == ["\x1b"]


def test_big_graphs_scroll_in_the_terminal():
    x = gv.tensor(0.5, requires_grad=True).name("x")
    h = x
    for _ in range(200):
        h = gv.tanh(h * 1.01)
    s = Session(h, retain_graph=True)
    v = Viewer(s, Formatter(s))
    v.press("G")
    screen = _screen(v)
    assert len(screen.rstrip("\n").split("\n")) <= 24
    assert "more" in screen  # scrolled, saying how many rows are hidden


# -- a real terminal --------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_interactive_stepper_in_a_real_terminal(tmp_path):
    session = f"gvtest{os.getpid()}"
    status = tmp_path / "status"
    cmd = (f"{sys.executable} -m gradviz step 'y = x * x; u = detach(y); z = u * x; sum(z)' "
           f"-v 'x=arange(4)'; echo $? > {status}")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", session)

    def wait_for(*texts: str, timeout: float = 30.0) -> str:
        """The screen once every text is on it (a redraw may be caught half written)."""
        import time
        end = time.time() + timeout
        while time.time() < end:
            shown = screen()
            if all(t in shown for t in texts):
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{texts!r} never all appeared:\n{screen()}")

    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", "bash", "--norc")
    try:
        tmux("send-keys", "-t", session, "clear; echo READY", "Enter")
        wait_for("READY")
        tmux("send-keys", "-t", session, cmd, "Enter")
        wait_for("step 1/3")
        tmux("send-keys", "-t", session, "n")
        wait_for("step 2/3", "z = u * x")
        tmux("send-keys", "-t", session, "p")
        wait_for("step 1/3")
        tmux("send-keys", "-t", session, "j", "x", "Enter")
        wait_for("step 3/3", "x.grad = [0 1 4 9]", "n/→ next")
        tmux("send-keys", "-t", session, "g")
        wait_for("step 1/3")
        tmux("send-keys", "-t", session, "b", "x", "Enter")
        wait_for("breakpoint at x")
        tmux("send-keys", "-t", session, "c")
        wait_for("step 3/3")
        tmux("send-keys", "-t", session, "?")
        wait_for("Any key closes this help")
        tmux("send-keys", "-t", session, "n")
        wait_for("step 3/3")
        tmux("send-keys", "-t", session, "q")
        import time
        end = time.time() + 30
        while not status.exists() and time.time() < end:
            time.sleep(0.2)
        assert status.read_text().strip() == "0"
        shown = screen()
        # The terminal is as it was: the stepper's screen is gone, the prompt is back.
        assert "READY" in shown and "step 3/3" not in shown
        # Again: a resized window is redrawn at its new size, and Ctrl-C quits cleanly.
        status.unlink()
        tmux("send-keys", "-t", session, "clear; echo AGAIN", "Enter")
        wait_for("AGAIN")
        tmux("send-keys", "-t", session, cmd, "Enter")
        wait_for("step 1/3")
        tmux("resize-window", "-t", session, "-x", "100", "-y", "30")
        end = time.time() + 30
        while time.time() < end and not any(len(line.rstrip()) > 80 for line in
                                            screen().splitlines()):
            time.sleep(0.2)
        assert any(len(line.rstrip()) > 80 for line in screen().splitlines()), screen()
        tmux("send-keys", "-t", session, "C-c")
        end = time.time() + 30
        while not status.exists() and time.time() < end:
            time.sleep(0.2)
        assert status.read_text().strip() == "0"
        assert "AGAIN" in screen() and "step 1/3" not in screen()
    finally:
        tmux("kill-session", "-t", session)


# -- slides ------------------------------------------------------------------------------------


def _boxes(svg: bytes) -> dict[str, tuple]:
    root = ET.fromstring(svg)
    out = {}
    for g in root.iter(SVG + "g"):
        shape = next((el for el in g.iter() if el.tag in (SVG + "path", SVG + "polygon")), None)
        if g.get("class") == "node" and shape is not None:
            out[g.get("id")] = (shape.get("d") or shape.get("points"),
                                [(t.get("x"), t.get("y")) for t in g.iter(SVG + "text")])
    return out


@pytest.mark.parametrize("renderer", ["embedded", pytest.param("system", marks=pytest.mark.skipif(
    shutil.which("dot") is None, reason="the system Graphviz is not installed"))])
def test_frames_share_one_layout(tmp_path, renderer):
    target = tmp_path / "slides"
    result = cli("step", "norm(X @ w - y) ** 2", "-v", "X=randn(3, 2)", "-v", "w=[1, -1]",
                 "-v", "y=[0, 1, 2]", "--const", "X,y", "--seed", "0", "--frames", str(target),
                 "--renderer", renderer)
    assert result.exit_code == 0, result.output
    loaded = load("norm(X @ w - y) ** 2", values=["X=randn(3, 2)", "w=[1, -1]", "y=[0, 1, 2]"],
                  constants=["X,y"], seed=0)
    steps = len(Session(loaded.output, retain_graph=True))
    files = sorted(target.glob("step-*.svg"))
    assert len(files) == steps + 1
    layouts = [_boxes(f.read_bytes()) for f in files]
    assert all(layout == layouts[0] for layout in layouts)  # identical node positions
    page = (target / "index.html").read_text()
    for f in files:
        assert f'src="{f.name}"' in page
    assert "http" not in page.replace("http://www.w3.org", "")  # no network
    # the current node is highlighted differently in each frame
    first, last = files[0].read_text(), files[-2].read_text()
    assert "#7c3aed" in first and "#7c3aed" in last and first != last


def test_frames_show_adjoints_as_they_become_known(tmp_path):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = (x * x).sum().name("y")
    s = Session(y, retain_graph=True)
    frames = render_frames(s, renderer="embedded")
    texts = [" ".join(t.replace("\xa0", " ") for t in ET.fromstring(f).itertext()) for f in frames]
    assert "∂y/∂x  not reached yet" in texts[0]
    assert "∂y/∂x so far  [0 2 4 6]" in texts[1]
    assert "∂y/∂x  [0 2 4 6]" in texts[-1] and "not reached" not in texts[-1].split("legend")[0]


def test_frames_never_leave_a_half_written_folder(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = cli("step", "dot(x, x)", "-v", "x=arange(4)", "--frames", str(target))
    assert result.exit_code == 2 and "holds other files" in result.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    # a previous export is replaced
    again = tmp_path / "slides"
    assert cli("step", "dot(x, x)", "-v", "x=arange(4)", "--frames", str(again)).exit_code == 0
    assert cli("step", "sum(x * x)", "-v", "x=arange(4)", "--frames", str(again)).exit_code == 0
    assert len(list(again.glob("step-*.svg"))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "slides"]


# -- forward mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_forward_mode_totals_equal_reverse_gradients(seed):
    rng = np.random.default_rng(seed)
    x = gv.tensor(rng.normal(size=3), requires_grad=True).name("x")
    w = gv.tensor(rng.normal(size=3), requires_grad=True).name("w")
    funcs = [gv.sin, gv.tanh, gv.exp, lambda t: t * t, lambda t: t * w, lambda t: t + w]
    h = x
    for i in rng.integers(0, len(funcs), size=5):
        h = funcs[i](h)
    y = (h * w).sum()
    session = ForwardSession(y, x)
    totals = session.totals()
    g, = gv.grad(y, x, retain_graph=True)
    np.testing.assert_allclose([float(totals[j]) for j in range(3)], g.data, rtol=1e-10)
    text = forward_transcript(session)
    assert "forward mode needed 3 sweep(s)" in text and "the same" in text


def test_forward_mode_through_the_cli():
    result = cli("step", "sum(sin(x) * x)", "-v", "x=[1, 2]", "--mode", "forward", "--wrt", "x",
                 "--no-pause")
    assert result.exit_code == 0, result.output
    assert "sweep 2 of 2 (direction: x[1] = 1)" in result.stdout
    assert "reverse mode needs 1 pass for this scalar output, and gives [1.382 0.077]: the same" \
        in result.stdout


@pytest.mark.parametrize("expr, values, consts", [
    ("y = x * x; u = detach(y); z = u * x; sum(z)", ["x=arange(4)"], []),
    ("norm(X @ w - y) ** 2", ["X=randn(3, 2)", "w=[1, -1]", "y=[0, 1, 2]"], ["X,y"]),
    ("a = x * 2; b = x * 3; sum(a * b) + sin(c)", ["x=[1, 2]", "c=0.5"], []),
])
def test_restyled_frames_equal_views_built_anew(expr, values, consts):
    """Frames restyle one view per step (restate); it must equal building the view again."""
    from gradviz.render.model import restate
    loaded = load(expr, values=values, constants=consts, seed=0)
    session = Session(loaded.output, retain_graph=True)
    prepared = session.prepared
    first = prepared.view(0)
    for k in list(range(len(session))) + [None]:
        fast, built = restate(first, prepared.state(k)), prepared.view(k)
        assert [(v.id, v.state, v.kind, v.reason) for v in fast.nodes] == \
            [(v.id, v.state, v.kind, v.reason) for v in built.nodes]
        for a, b in zip(fast.nodes, built.nodes):
            assert (a.adjoint is None) == (b.adjoint is None)
            if a.adjoint is not None:
                assert np.array_equal(a.adjoint, b.adjoint)
        assert [(e.state, e.pruned, e.contribution is None) for e in fast.edges] == \
            [(e.state, e.pruned, e.contribution is None) for e in built.edges]


# -- found by review: each of these failed before its fix ------------------------------------


def test_frames_refuse_a_users_own_page_and_odd_paths(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>mine</h1>")
    result = cli("step", "dot(x, x)", "-v", "x=arange(4)", "--frames", str(site))
    assert result.exit_code == 2 and "holds other files" in result.stderr
    assert (site / "index.html").read_text() == "<h1>mine</h1>"
    long_name = tmp_path / ("a" * 300)
    proc = subprocess.run([sys.executable, "-m", "gradviz", "step", "dot(x, x)", "-v",
                           "x=arange(4)", "--frames", str(long_name)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing left behind


@pytest.mark.parametrize("extra, message", [
    (["--frames", "out", "--at", "1"], "give one of them"),
    (["--frames", "out", "--mode", "forward", "--wrt", "x"], "forward mode prints"),
    (["--direction", "0"], "add --mode forward"),
    (["--frames", "-"], "needs a folder"),
])
def test_options_that_would_be_ignored_are_errors(tmp_path, extra, message):
    result = CliRunner().invoke(main, ["step", "sum(x * x)", "-v", "x=[1, 2]", *extra])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_control_characters_in_names_are_shown_as_escapes(tmp_path):
    script = tmp_path / "evil.py"
    script.write_text("import gradviz as gv\nx = gv.tensor([1.0, 2.0], requires_grad=True)\n"
                      "x.label = 'ev\\x1b[31mil\\nname\\x07'\ny = (x * x).sum()\n")
    result = cli("step", f"{script}:y", "--no-pause")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "ev\\x1b[31mil\\nname\\x07.grad = [2 4]" in result.stdout


def test_constants_keep_their_precision_in_formulas():
    text = cli("step", "x * 1.0001 + x * 0.99999", "-v", "x=2", "--at", "1").stdout
    assert "x * 1.0001" in text and "x * 0.99999" in text


def test_a_value_saved_twice_is_counted_once():
    text = cli("step", "dot(x, x)", "-v", "x=[1, 2, 3, 4]", "--at", "-1").stdout
    assert "16 B freed" in text  # four float32: x is saved twice by dot, held once


def test_retain_grad_nodes_say_so_and_get_their_gradient():
    x = gv.tensor([1.0, 2.0], requires_grad=True).name("x")
    c = (x * 3.0).name("c")
    c.retain_grad()
    y = (c * c).sum().name("y")
    session = Session(y, retain_graph=True)
    from gradviz.stepper.text import step_text
    block = step_text(session, session.find("c"))
    assert "c keeps its gradient (retain_grad())" in block
    grads = dict(session.gradients())
    np.testing.assert_array_equal(grads["c"], 2 * c.data)  # as PyTorch's c.grad


def test_big_transcripts_list_only_what_changed():
    x = gv.tensor(0.5, requires_grad=True).name("x")
    h = x
    for _ in range(60):
        h = gv.tanh(h * 1.01)
    text = transcript(Session(h, retain_graph=True))
    blocks = text.split("\n\nstep ")[1:]
    assert len(blocks) == 121
    assert all("nodes changed at this step (121 in all" in b for b in blocks)
    assert max(len(b.splitlines()) for b in blocks) < 20


def test_python_at_counts_like_the_cli(capsys):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x).name("y")
    gv.step(y, at=1)
    assert capsys.readouterr().out.startswith("step 1 of 2")
    gv.step(y, at=-1)
    assert capsys.readouterr().out.startswith("step 2 of 2")
    with pytest.raises(gv.GradvizError, match="counts from 1"):
        gv.step(y, at=0)


def test_a_shared_node_is_drawn_under_its_live_consumer():
    from gradviz.stepper.screen import graph_lines
    x = gv.arange(4.0, requires_grad=True).name("x")
    z = (gv.detach(x * x).name("u") * x).name("z")
    s = Session(z.sum(), retain_graph=True)
    lines = [t.plain for t in graph_lines(s, Formatter(s), s.frame(1), False)[0]]
    assert lines[-1].startswith("└── ◐ v0 x  x̄=[0 1 4 9]"), lines
    assert "↑ v0 (shared, below)" in "\n".join(lines)
