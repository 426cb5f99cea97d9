"""A drawing never shows a number that is not the derivative of the drawn output.

Scripts call backward() themselves, several times, on other outputs; the
drawing of one output must still show, in every box, d(sum(output))/d(node)
from one pass run by the drawing, checked here against gradviz.grad on the
same computation run afresh without the script's own backward() calls.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradviz as gv
from gradviz.frontends.load import load
from gradviz.render import draw

REPO = Path(__file__).resolve().parent.parent


def _adjoints(drawing) -> dict[str, object]:
    return {v.name: v.adjoint for v in drawing.view.nodes}


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text("import gradviz as torch\n" + textwrap.dedent(body))
    return path


def test_the_detach_lesson_draws_the_truth_for_z():
    loaded = load(str(REPO / "samples" / "lesson" / "04_detach.py") + ":z")
    adj = _adjoints(draw(loaded.output, kept=loaded.kept))
    np.testing.assert_array_equal(adj["x"], [0, 1, 4, 9])   # u, not the later 2x
    assert adj["y"] is None                                  # no gradient reaches y from z


def test_a_later_pass_on_another_output_does_not_leak_in(tmp_path):
    path = _script(tmp_path, """
        x = torch.arange(4.0, requires_grad=True)
        z = x*x*x
        z.sum().backward()
        x.grad.zero_()
        y = 5*x
        y.sum().backward()
    """)
    loaded = load(f"{path}:z")
    adj = _adjoints(draw(loaded.output, kept=loaded.kept))
    np.testing.assert_array_equal(adj["x"], [0, 3, 12, 27])  # 3x^2, not [5 5 5 5]


def test_the_summary_lists_only_the_drawn_graph(tmp_path):
    from click.testing import CliRunner

    from gradviz.cli import main
    path = _script(tmp_path, """
        x = torch.arange(4.0, requires_grad=True)
        z = (x*x).sum()
        w = (3*x).sum()
        w.backward()
    """)
    result = CliRunner().invoke(main, ["render", f"{path}:z", "-o", str(tmp_path / "g.svg")])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "w" not in rows
    assert rows["x"].split("]")[-2].endswith("[0., 2., 4., 6.")  # 2x, from the drawing's pass


OPS = [
    ("mul", "{a} * {b}"), ("add", "{a} + {b}"), ("sin", "torch.sin({a})"),
    ("tanh", "torch.tanh({a})"), ("sub", "{a} - {b}"), ("sq", "{a} * {a}"),
]


@st.composite
def scripts(draw_):
    """A random script: a few ops on two leaves, with backward() calls of its own in between."""
    lines = ["x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)",
             "w = torch.tensor([1.5, 0.25, -0.75], requires_grad=True)"]
    names = ["x", "w"]
    calls = []
    for i in range(draw_(st.integers(3, 7))):
        _, pattern = draw_(st.sampled_from(OPS))
        a, b = draw_(st.sampled_from(names)), draw_(st.sampled_from(names))
        name = f"t{i}"
        lines.append(f"{name} = {pattern.format(a=a, b=b)}")
        names.append(name)
        if draw_(st.booleans()):  # the script backpropagates something of its own here
            target = draw_(st.sampled_from(names[2:]))
            kind = draw_(st.sampled_from(["sum", "retain", "zero"]))
            call = {"sum": f"{target}.sum().backward()",
                    "retain": f"{target}.sum().backward(retain_graph=True)",
                    "zero": f"{target}.sum().backward(retain_graph=True); x.grad = None"}[kind]
            lines.append(f"try:\n    {call}\nexcept RuntimeError:\n    pass")
            calls.append(call)
    output = draw_(st.sampled_from(names[2:]))
    return "\n".join(lines) + "\n", output


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scripts())
def test_random_scripts_with_interleaved_backward_calls(tmp_path, case):
    text, output = case
    path = tmp_path / "s.py"
    path.write_text("import gradviz as torch\n" + text)
    loaded = load(f"{path}:{output}")
    drawing = draw(loaded.output, kept=loaded.kept)
    # The same computation afresh, without the script's backward() calls (test-made text).
    fresh: dict = {}
    clean = "\n".join(line for line in text.split("\n")
                      if line and not line.startswith(("try:", "    ", "except")))
    exec("import gradviz as torch\n" + clean, fresh)  # noqa: S102 - text made by the test above
    out = fresh[output]
    shown = _adjoints(drawing)
    for name, value in fresh.items():
        if not isinstance(value, gv.Tensor) or name not in shown or not value.requires_grad:
            continue
        if value not in gv.Tape(out):
            continue
        g, = gv.grad(out.sum(), value, retain_graph=True, allow_unused=True)
        if g is None:
            assert shown[name] is None, name
        else:
            np.testing.assert_allclose(np.asarray(shown[name]), g.data, rtol=1e-6, atol=1e-7,
                                       err_msg=f"{name} in\n{text}drawing {output}")
