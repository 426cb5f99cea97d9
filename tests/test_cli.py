"""Tests of the ``gradviz render`` command, as a user meets it.

Most cases run in-process through click's CliRunner; a few run the real
thing in a subprocess (``python -m gradviz``, the ``gradviz`` console script,
``python cli.py`` from the repository root), including with a PATH that has
no Graphviz ``dot``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz as gv
from gradviz.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="the system Graphviz `dot` is not installed")
RENDERERS = ["embedded", pytest.param("system", marks=needs_dot)]

DOT_EXPR = "dot(x, x)"
DETACH_EXPR = "y = x * x; u = detach(y); z = u * x; sum(z)"

LESSON_SCRIPT = '''\
import gradviz as gv


def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


gv.manual_seed({seed})
a = gv.randn(size=(), requires_grad=True)
d = f(a)
message = "not a tensor"
'''


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def cli(*args: str):
    """Run ``gradviz ARGS`` in-process; stdout and stderr are kept apart."""
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def gradviz_cmd(launcher: str) -> list[str]:
    if launcher == "module":
        return [sys.executable, "-m", "gradviz"]
    if launcher == "script":
        return [str(Path(sys.executable).parent / "gradviz")]
    return [sys.executable, str(REPO_ROOT / "cli.py")]


def run(args: list[str], *, launcher: str = "module", env: dict | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(gradviz_cmd(launcher) + args, capture_output=True, timeout=120,
                          env=env, cwd=cwd)


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\xa0", " ")).strip()


def boxes(svg: bytes | str) -> dict[str, dict]:
    """Each node box of the diagram (legend excluded): its text lines and tooltip."""
    root = ET.fromstring(svg.encode() if isinstance(svg, str) else svg)
    out = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") != "node" or g.get("id", "").startswith("legend"):
            continue
        lines = [clean("".join(t.itertext())) for t in g.iter(SVG + "text")]
        tip = next((a.get(XLINK + "title") for a in g.iter(SVG + "a")), "") or ""
        first = next(g.iter(SVG + "text"))
        out[g.get("id")] = {"lines": lines, "tooltip": tip,
                            "x": float(first.get("x")), "y": float(first.get("y")),
                            "dashed": any(el.get("stroke-dasharray") for el in g.iter())}
    return out


def box(svg: bytes | str, name: str) -> dict:
    found = [b for b in boxes(svg).values()
             if b["lines"][0] == name or b["lines"][0].startswith(name + " = ")]
    assert len(found) == 1, [b["lines"][0] for b in boxes(svg).values()]
    return found[0]


def field(b: dict, key: str) -> str | None:
    """The text after ``value`` or after the ``∂out/∂name`` head in a box."""
    for line in b["lines"]:
        head, _, rest = line.partition(" ")
        if head == key or (key == "∂" and head.startswith("∂")):
            return rest
    return None


def texts(svg: bytes | str) -> list[str]:
    root = ET.fromstring(svg.encode() if isinstance(svg, str) else svg)
    return [clean("".join(t.itertext())) for t in root.iter(SVG + "text")]


def numbers(text: str) -> np.ndarray:
    return np.array([float(t) for t in text.replace("[", " ").replace("]", " ").split()])


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_clean_error(result, *needles: str) -> str:
    """Exit status 2, one or two lines on stderr starting 'error:', no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = error_lines(result.stderr)
    assert 1 <= len(lines) <= 2, lines
    assert lines[0].startswith("error:"), lines
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


def summary_row(stdout: str, name: str) -> str:
    rows = [line for line in stdout.splitlines() if line.split()[:1] == [name]]
    assert len(rows) == 1, stdout
    return rows[0]


def env_without_dot(tmp_path: Path) -> dict:
    """An environment whose PATH has python but no Graphviz `dot`."""
    bindir = tmp_path / "bin-without-dot"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    env = dict(os.environ)
    env["PATH"] = str(bindir)
    return env


# ---------------------------------------------------------------------------
# The first command a user types
# ---------------------------------------------------------------------------


def test_render_dot_of_x(tmp_path):
    out = tmp_path / "out.svg"
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    bx, bout = box(svg, "x"), box(svg, "out")
    assert field(bx, "value") == "[0 1 2 3]"
    assert field(bx, "∂") == "[0 2 4 6]"
    assert field(bout, "value") == "14"
    assert bout["lines"][0] == "out = dot(x, x)"
    # The terminal summary: the output value, x's gradient, where the file went.
    assert re.search(r"\b14\b", summary_row(result.stdout, "out"))
    assert "[0., 2., 4., 6.]" in summary_row(result.stdout, "x")
    assert "[0., 1., 2., 3.]" in summary_row(result.stdout, "x")
    assert str(out) in re.sub(r"\s+", "", result.stdout)  # Rich may wrap a long path
    assert result.stderr == ""


@pytest.mark.parametrize("launcher", ["module", "script", "checkout"])
def test_real_processes(tmp_path, launcher):
    out = tmp_path / "out.svg"
    proc = run(["render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(out)], launcher=launcher,
               cwd=REPO_ROOT if launcher == "checkout" else tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert field(box(out.read_bytes(), "x"), "∂") == "[0 2 4 6]"
    assert field(box(out.read_bytes(), "out"), "value") == "14"
    stdout = proc.stdout.decode()
    assert "[0., 2., 4., 6.]" in summary_row(stdout, "x")
    assert b"Traceback" not in proc.stderr
    assert b"Exception ignored" not in proc.stderr


def test_default_output_is_graph_svg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("render", "sum(x * x)", "-v", "x=[1, 2, 3]")
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path) == ["graph.svg"]
    assert field(box((tmp_path / "graph.svg").read_bytes(), "x"), "∂") == "[2 4 6]"


# ---------------------------------------------------------------------------
# Formats and renderers
# ---------------------------------------------------------------------------


def check_format(fmt: str, data: bytes) -> None:
    if fmt == "svg":
        assert field(box(data, "x"), "∂") == "[0 2 4 6]"
    elif fmt == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    elif fmt == "pdf":
        assert data.startswith(b"%PDF-")
    elif fmt == "dot":
        text = data.decode()
        assert text.startswith("digraph")
        assert "∂out/∂x\\ \\ [0\\ 2\\ 4\\ 6]" in text
    elif fmt == "json":
        doc = json.loads(data)
        names = {o.get("name") for o in doc["objects"]}
        assert {"v0", "v1"} <= names
        labels = " ".join(o.get("label", "") for o in doc["objects"])
        assert "[0\\ 2\\ 4\\ 6]" in labels


FORMAT_CASES = [
    pytest.param("svg", "system", marks=needs_dot),
    pytest.param("png", "system", marks=needs_dot),
    pytest.param("pdf", "system", marks=needs_dot),
    ("svg", "embedded"),
    ("png", "embedded"),
    ("pdf", "embedded"),
    pytest.param("dot", "system", marks=needs_dot),
    ("dot", "embedded"),
    pytest.param("json", "system", marks=needs_dot),
    ("json", "embedded"),
]


@pytest.mark.parametrize("fmt, renderer", FORMAT_CASES)
def test_format_from_extension(tmp_path, fmt, renderer):
    out = tmp_path / f"g.{fmt}"
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(out), "--renderer", renderer)
    assert result.exit_code == 0, result.output
    check_format(fmt, out.read_bytes())
    assert f"({fmt}," in result.stdout
    assert os.listdir(tmp_path) == [out.name]


@pytest.mark.parametrize("fmt, renderer", FORMAT_CASES)
def test_format_from_option(tmp_path, fmt, renderer):
    out = tmp_path / "slide.out"
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(out), "-f", fmt,
                 "--renderer", renderer)
    assert result.exit_code == 0, result.output
    check_format(fmt, out.read_bytes())


def test_svg_to_standard_output():
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", "-")
    assert result.exit_code == 0, result.stderr
    data = result.stdout_bytes
    assert data.lstrip().startswith(b"<?xml")
    assert data.rstrip().endswith(b"</svg>")
    assert field(box(data, "x"), "∂") == "[0 2 4 6]"
    # The summary goes to stderr, so stdout is the SVG alone.
    assert "standard output" in result.stderr
    assert "[0., 2., 4., 6.]" in result.stderr


def test_svg_to_standard_output_in_a_real_process(tmp_path):
    proc = run(["render", DOT_EXPR, "-v", "x=arange(4)", "-o", "-"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    ET.fromstring(proc.stdout)
    assert proc.stdout.lstrip().startswith(b"<?xml")
    assert field(box(proc.stdout, "x"), "∂") == "[0 2 4 6]"
    assert os.listdir(tmp_path) == []


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize("fmt", ["png", "pdf"])
@pytest.mark.parametrize("launcher", ["module", "script"])
def test_png_and_pdf_without_dot(tmp_path, fmt, launcher):
    """Right after pip install, with no system Graphviz: PNG and PDF are made in-process."""
    env = env_without_dot(tmp_path)
    out = tmp_path / f"g.{fmt}"
    proc = run(["render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(out)], launcher=launcher,
               env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"({fmt}," in proc.stdout.decode() and "embedded renderer" in proc.stdout.decode()
    check_format(fmt, out.read_bytes())
    assert b"Exception ignored" not in proc.stderr


def test_dpi_sets_the_png_resolution(tmp_path):
    svg, low, high = tmp_path / "g.svg", tmp_path / "low.png", tmp_path / "high.png"
    for target, extra in ((svg, []), (low, ["--dpi", "72"]), (high, [])):
        result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "--renderer", "embedded",
                     "-o", str(target), *extra)
        assert result.exit_code == 0, result.output
    root = ET.fromstring(svg.read_bytes())
    width, height = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
    assert png_size(low.read_bytes()) == (round(width), round(height))        # 1 pt = 1 px
    assert png_size(high.read_bytes()) == (round(width * 192 / 72), round(height * 192 / 72))
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(low), "--dpi", "0")
    assert result.exit_code == 2 and "--dpi" in result.stderr


def test_svg_without_dot_uses_the_embedded_renderer(tmp_path):
    env = env_without_dot(tmp_path)
    out = tmp_path / "g.svg"
    proc = run(["render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(out)], env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "embedded renderer" in proc.stdout.decode()
    assert field(box(out.read_bytes(), "x"), "∂") == "[0 2 4 6]"
    assert b"Exception ignored" not in proc.stderr


# ---------------------------------------------------------------------------
# Bad input: one clear line, exit status 2, no traceback
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("expr, offending", [
    ("x + * y", "*"),
    ("sum(x))", ")"),
    ("y = x * 2; z = y + ; z", ";"),
    ("x ? 2", "?"),
])
def test_syntax_error_has_a_caret(tmp_path, expr, offending):
    out = tmp_path / "g.svg"
    result = cli("render", expr, "-v", "x=1", "-o", str(out))
    assert result.exit_code == 2
    lines = error_lines(result.stderr)
    assert lines[0].startswith("error: syntax error")
    assert "Traceback" not in result.output
    source = next(line for line in lines if line.strip() == expr)
    caret = lines[lines.index(source) + 1]
    assert caret.strip() == "^"
    column = caret.index("^") - source.index(expr)
    assert expr[column] == offending, (expr, column)
    m = re.search(r"column (\d+)", lines[0])
    assert m and int(m.group(1)) == column + 1
    assert not out.exists()


def test_syntax_error_on_a_later_line():
    expr = "y = x * 2\nz = y +\nz"
    result = cli("render", expr, "-v", "x=1", "-o", "-")
    lines = error_lines(result.stderr)
    assert result.exit_code == 2
    assert "line 2" in lines[0]
    assert lines[1].strip() == "z = y +"
    assert lines[2].index("^") - lines[1].index("z") == len("z = y +")
    assert result.stdout == ""


def test_unknown_function_lists_the_known_ones(tmp_path):
    result = cli("render", "frobnicate(x)", "-v", "x=1", "-o", str(tmp_path / "g.svg"))
    err = assert_clean_error(result, "frobnicate")
    for known in ("dot", "sum", "norm", "sin", "detach"):
        assert re.search(rf"\b{known}\b", err), known
    assert os.listdir(tmp_path) == []


def test_unknown_variable_in_wrt(tmp_path):
    result = cli("render", "x * y", "-v", "x=2", "-v", "y=3", "--wrt", "q",
                 "-o", str(tmp_path / "g.svg"))
    assert_clean_error(result, "--wrt", "q", "x, y")
    assert os.listdir(tmp_path) == []


def test_value_for_a_variable_the_expression_lacks(tmp_path):
    result = cli("render", "x * 2", "-v", "x=2", "-v", "q=3", "-o", str(tmp_path / "g.svg"))
    assert_clean_error(result, "'q'", "x")


@pytest.mark.parametrize("expr, needle", [
    ("__import__('os')", "__import__"),
    ("x.__class__", "__class__"),
    ("lambda: 1", "lambda"),
    ("[i for i in x]", "comprehension"),
    ("__import__('os').system('touch PWNED')", "not allowed"),
    ("x.__class__.__init__", "__"),
])
def test_forbidden_constructs_are_rejected_before_running(tmp_path, monkeypatch, expr, needle):
    monkeypatch.chdir(tmp_path)
    result = cli("render", expr, "-v", "x=arange(3)", "-o", str(tmp_path / "g.svg"))
    err = assert_clean_error(result, needle, "not allowed")
    assert os.listdir(tmp_path) == []  # nothing ran, nothing written
    assert "PWNED" not in os.listdir(tmp_path)
    assert err.count("error:") == 1


@pytest.mark.parametrize("expr, op", [("x + y", "add"), ("x @ y", "matmul"), ("x * y", "mul")])
def test_shape_mismatch_names_the_op_and_both_shapes(tmp_path, expr, op):
    result = cli("render", expr, "-v", "x=ones(3)", "-v", "y=ones(2)",
                 "-o", str(tmp_path / "g.svg"))
    err = assert_clean_error(result, op, "(3,)", "(2,)")
    assert err.startswith(f"error: {op}")
    assert os.listdir(tmp_path) == []


def test_unwritable_output_path(tmp_path):
    missing = tmp_path / "no-such-folder" / "g.svg"
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(missing))
    assert_clean_error(result, "cannot write", str(missing))
    assert os.listdir(tmp_path) == []
    # A directory in the way: the temporary file is cleaned up, the directory untouched.
    (tmp_path / "taken.svg").mkdir()
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(tmp_path / "taken.svg"))
    assert_clean_error(result, "cannot write")
    assert os.listdir(tmp_path) == ["taken.svg"]
    assert os.listdir(tmp_path / "taken.svg") == []


def test_failed_render_leaves_the_old_file_alone(tmp_path):
    out = tmp_path / "g.svg"
    out.write_text("previous slide")
    result = cli("render", "x + y", "-v", "x=ones(3)", "-v", "y=ones(2)", "-o", str(out))
    assert result.exit_code == 2
    assert out.read_text() == "previous slide"
    assert os.listdir(tmp_path) == ["g.svg"]


def test_script_that_raises_shows_its_own_traceback(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import gradviz as gv\n"
                      "x = gv.ones(3)\n"
                      "def step():\n"
                      "    raise ValueError('learning rate too high')\n"
                      "step()\n")
    result = cli("render", str(script), "-o", str(tmp_path / "g.svg"))
    assert result.exit_code == 2
    lines = error_lines(result.stderr)
    assert lines[0] == "Traceback (most recent call last):"
    assert "raise ValueError('learning rate too high')" in result.stderr
    assert f'File "{script}", line 4, in step' in result.stderr
    assert f'File "{script}", line 5, in <module>' in result.stderr
    assert "ValueError: learning rate too high" in lines[-2]
    assert lines[-1].startswith("error:") and "learning rate too high" in lines[-1]
    # Only the user's frames: none from gradviz or runpy.
    assert "runpy" not in result.stderr
    assert "gradviz/frontends" not in result.stderr and "gradviz/cli" not in result.stderr
    assert not (tmp_path / "g.svg").exists()


def test_script_name_not_defined_lists_its_tensors(tmp_path):
    script = tmp_path / "lesson.py"
    script.write_text(LESSON_SCRIPT.format(seed=0))
    result = cli("render", f"{script}:loss", "-o", str(tmp_path / "g.svg"))
    err = assert_clean_error(result, "'loss'", "a, d")
    assert "message" not in err  # not a tensor
    assert not (tmp_path / "g.svg").exists()


def test_missing_script(tmp_path):
    result = cli("render", str(tmp_path / "nowhere.py"), "-o", str(tmp_path / "g.svg"))
    assert_clean_error(result, "no such script", "nowhere.py")


# ---------------------------------------------------------------------------
# Variables: random values, --seed, --const, --wrt
# ---------------------------------------------------------------------------


def test_a_variable_without_a_value_is_an_error_naming_it(tmp_path):
    """No silent random scalar: the README's least-squares example once drew X @ w of
    two scalars and failed with `matmul: cannot apply to shapes () and ()`."""
    out = tmp_path / "g.svg"
    result = cli("render", "r = X @ w - y; norm(r) ** 2", "--const", "X,y", "-o", str(out))
    message = assert_clean_error(result, "`X`, `w`, `y` have no value", "-v NAME=VALUE")
    assert "matmul" not in message
    assert not out.exists()
    one = cli("render", "x * y", "-v", "x=2", "-o", str(out))
    assert_clean_error(one, "variable `y` has no value", "-v y=VALUE")
    assert "`x`" not in one.stderr


def test_seed_makes_the_diagram_reproducible(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}.svg"
        result = cli("render", "sin(x) * y", "-v", "x=randn(3)", "-v", "y=randn(3)",
                     "--seed", "3", "-o", str(out))
        assert result.exit_code == 0, result.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    other = tmp_path / "other.svg"
    cli("render", "sin(x) * y", "-v", "x=randn(3)", "-v", "y=randn(3)", "--seed", "4",
        "-o", str(other))
    assert field(box(other.read_bytes(), "x"), "value") != field(box(outs[0], "x"), "value")
    gv.manual_seed(3)
    expected = gv.randn(3)
    np.testing.assert_allclose(numbers(field(box(outs[0], "x"), "value")), expected.numpy(),
                               rtol=1e-3, atol=1e-4)


def test_const_makes_a_constant(tmp_path):
    out = tmp_path / "ls.svg"
    result = cli("render", "norm(X @ w - y) ** 2", "-v", "X=[[1, 2], [3, 4], [5, 6]]",
                 "-v", "w=[0.5, -1.5]", "-v", "y=[0, 1, 2]", "--const", "X", "--const", "y",
                 "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    Xn = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    wn, yn = np.array([0.5, -1.5]), np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(numbers(field(box(svg, "w"), "∂")), 2 * Xn.T @ (Xn @ wn - yn),
                               rtol=1e-4)
    for name in ("X", "y"):
        assert field(box(svg, name), "∂") == "not computed"
        assert "constant" in box(svg, name)["tooltip"]
        assert "constant" in summary_row(result.stdout, name)
    assert "constant" not in summary_row(result.stdout, "w")
    assert "[-123., -156.]" in summary_row(result.stdout, "w")


def test_const_comma_separated(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", "x * y * z", "-v", "x=1", "-v", "y=2", "-v", "z=3",
                 "--const", "x,y", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "constant" in summary_row(result.stdout, "x")
    assert "constant" in summary_row(result.stdout, "y")
    assert field(box(out.read_bytes(), "z"), "∂") == "2"


def test_wrt_prunes_the_other_input(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", "x * y", "-v", "x=2", "-v", "y=3", "--wrt", "x", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    assert field(box(svg, "x"), "∂") == "3"
    assert field(box(svg, "y"), "∂") == "not computed"
    assert "leads to none of the requested inputs" in box(svg, "y")["tooltip"]
    assert "3." in summary_row(result.stdout, "x")
    assert "—" in summary_row(result.stdout, "y")


def test_detach_expression(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", DETACH_EXPR, "-v", "x=arange(4)", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    assert field(box(svg, "x"), "∂") == field(box(svg, "u"), "value") == "[0 1 4 9]"
    assert box(svg, "u")["dashed"] and box(svg, "y")["dashed"]
    assert "detach" in box(svg, "u")["tooltip"]
    assert "[0., 1., 4., 9.]" in summary_row(result.stdout, "x")


# ---------------------------------------------------------------------------
# Scripts: the lesson's control flow
# ---------------------------------------------------------------------------


def lesson_expectation(seed: int):
    """Run the lesson's f(a) in-process with the script's seed: a, d and the doublings."""
    namespace: dict = {}
    exec(compile(LESSON_SCRIPT.format(seed=seed), "<lesson>", "exec"), namespace)
    a, d = namespace["a"], namespace["d"]
    muls = [n for n in gv.tape(d) if n.op is not None and n.op.name == "mul"]
    return a.item(), d.item(), muls


@pytest.mark.parametrize("target", ["{script}:d", "{script}"])
def test_script_control_flow(tmp_path, target):
    script = tmp_path / "lesson.py"
    script.write_text(LESSON_SCRIPT.format(seed=0))
    out = tmp_path / "cf.svg"
    result = cli("render", target.format(script=script), "-o", str(out))
    assert result.exit_code == 0, result.output
    a, d, muls = lesson_expectation(0)
    svg = out.read_bytes()
    assert float(field(box(svg, "a"), "value")) == pytest.approx(a, rel=1e-3)
    assert float(field(box(svg, "d"), "value")) == pytest.approx(d, rel=1e-3)
    assert float(field(box(svg, "a"), "∂")) == pytest.approx(d / a, rel=1e-3)
    assert len([b for b in boxes(svg).values() if "MulBackward0" in b["lines"]]) == len(muls)
    assert "∂d/∂" in result.stdout


def test_script_roll_marks_the_loop(tmp_path):
    script = tmp_path / "lesson.py"
    script.write_text(LESSON_SCRIPT.format(seed=0))
    out = tmp_path / "cf.svg"
    result = cli("render", f"{script}:d", "--roll", "-o", str(out))
    assert result.exit_code == 0, result.output
    a, d, muls = lesson_expectation(0)
    svg = out.read_bytes()
    # The run of `b = b * 2` (and the first a * 2) is one box marked ×N.
    doubling = [m for m in muls if 2.0 in [float(x.data) for x in m.inputs if x.op is None
                                             and not x.requires_grad]]
    marked = [t for t in texts(svg) if re.search(r"×\d+", t)]
    assert marked, texts(svg)
    n = int(re.search(r"×(\d+)", marked[0]).group(1))
    assert n == len(doubling) >= 10
    assert len(boxes(svg)) < len(muls)
    assert float(field(box(svg, "a"), "∂")) == pytest.approx(d / a, rel=1e-3)


# ---------------------------------------------------------------------------
# Help and options
# ---------------------------------------------------------------------------


def test_help_teaches():
    main_help = cli("--help")
    assert main_help.exit_code == 0
    assert "render" in main_help.stdout
    render_help = cli("render", "--help")
    assert render_help.exit_code == 0
    text = render_help.stdout
    for needle in ("EXPR", "-v", "NAME=VALUE", "Examples", "arange(4)", "--const", "--wrt",
                   "--roll", "--renderer", "script.py", "detach"):
        assert needle in text, needle
    bare = cli("render")  # no argument: the usage, not a traceback
    assert "EXPR" in bare.output and "Traceback" not in bare.output


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to check shell syntax")
def test_help_examples_can_be_pasted_into_a_shell():
    """Every example command in `gradviz render --help` is valid shell: a user copies them.

    Unquoted parentheses (`-v x=arange(4)`) are a bash syntax error.
    """
    text = cli("render", "--help").stdout
    commands = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("gradviz render"):
            cmd = line.strip()
            j = i
            while cmd.endswith("\\"):
                j += 1
                cmd = cmd[:-1] + " " + lines[j].strip()
            commands.append(cmd)
    assert len(commands) >= 3
    for cmd in commands:
        check = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        assert check.returncode == 0, f"{cmd!r}: {check.stderr.strip()}"
        argv = shlex.split(cmd)
        assert argv[:2] == ["gradviz", "render"]


def test_show_structure(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "--show", "structure", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    for b in boxes(svg).values():
        assert field(b, "value") is None and field(b, "∂") is None, b["lines"]
    assert box(svg, "x")["lines"] == ["x", "AccumulateGrad", "float32[4]"]
    assert not any("∂" in t for t in texts(svg))


def test_show_values(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "--show", "values", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    assert field(box(svg, "x"), "value") == "[0 1 2 3]"
    assert not any("∂" in t for t in texts(svg))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_theme_print_is_grey(tmp_path, renderer):
    out = tmp_path / "g.svg"
    result = cli("render", DETACH_EXPR, "-v", "x=arange(4)", "--theme", "print",
                 "--renderer", renderer, "-o", str(out))
    assert result.exit_code == 0, result.output
    root = ET.fromstring(out.read_bytes())
    for el in root.iter():
        for attr in ("fill", "stroke"):
            c = (el.get(attr) or "none").lower()
            if c in ("none", "transparent", "black", "white"):
                continue
            assert re.fullmatch(r"#([0-9a-f]{2})\1\1", c), (attr, c)
    assert field(box(out.read_bytes(), "x"), "∂") == "[0 1 4 9]"


@pytest.mark.parametrize("renderer", RENDERERS)
def test_theme_dark(tmp_path, renderer):
    out = tmp_path / "g.svg"
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "--theme", "dark",
                 "--renderer", renderer, "-o", str(out))
    assert result.exit_code == 0, result.output
    root = ET.fromstring(out.read_bytes())
    assert root.find(f"{SVG}g/{SVG}polygon").get("fill") == "#111827"
    assert field(box(out.read_bytes(), "x"), "∂") == "[0 2 4 6]"


def test_rankdir(tmp_path):
    bt, lr = tmp_path / "bt.svg", tmp_path / "lr.svg"
    assert cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(bt)).exit_code == 0
    assert cli("render", DOT_EXPR, "-v", "x=arange(4)", "--rankdir", "LR",
               "-o", str(lr)).exit_code == 0
    x_bt, out_bt = box(bt.read_bytes(), "x"), box(bt.read_bytes(), "out")
    x_lr, out_lr = box(lr.read_bytes(), "x"), box(lr.read_bytes(), "out")
    assert x_bt["y"] > out_bt["y"]  # bottom-up: the input below the output
    assert x_lr["x"] < out_lr["x"]  # left to right
    assert field(x_lr, "∂") == "[0 2 4 6]"
    assert cli("render", DOT_EXPR, "-v", "x=arange(4)", "--rankdir", "lr",
               "-o", str(lr)).exit_code == 0


def test_no_legend(tmp_path):
    with_legend, without = tmp_path / "a.svg", tmp_path / "b.svg"
    cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(with_legend))
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "--no-legend", "-o", str(without))
    assert result.exit_code == 0
    ids = lambda p: {g.get("id") for g in ET.fromstring(p.read_bytes()).iter(SVG + "g")}
    assert "legend_leaf" in ids(with_legend)
    assert not any(i.startswith("legend") for i in ids(without))
    assert field(box(without.read_bytes(), "x"), "∂") == "[0 2 4 6]"


def test_edge_labels_jacobian(tmp_path):
    out = tmp_path / "g.svg"
    result = cli("render", "sum(x * x)", "-v", "x=arange(4)", "--edge-labels", "jacobian",
                 "-o", str(out))
    assert result.exit_code == 0
    assert sum("J (4)×(4)" in t for t in texts(out.read_bytes())) == 2
    assert sum("J ()×(4)" in t for t in texts(out.read_bytes())) == 1


@pytest.mark.parametrize("renderer", RENDERERS)
def test_title_with_awkward_characters(tmp_path, renderer):
    out = tmp_path / "g.svg"
    title = 'loss {w} | <Xw - y> "squared" & done'
    result = cli("render", "loss = sum(x * x); loss", "-v", "x=[1, 2]", "--title", title,
                 "--renderer", renderer, "-o", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    ET.fromstring(data)
    assert title in texts(data)
    assert box(data, "loss")["lines"][0] == "loss = sum(v1)"
    assert field(box(data, "x"), "∂") == "[2 4]"


def test_default_title_is_the_expression(tmp_path):
    out = tmp_path / "g.svg"
    expr = "sum(x * x) / 2"
    assert cli("render", expr, "-v", "x=[1, 2]", "-o", str(out)).exit_code == 0
    assert expr in texts(out.read_bytes())


# ---------------------------------------------------------------------------
# Non-finite values
# ---------------------------------------------------------------------------


def test_non_finite_values_render_with_a_warning(tmp_path):
    out = tmp_path / "g.svg"
    with np.errstate(all="ignore"):
        result = cli("render", "sum(log(x))", "-v", "x=[0, 1]", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    assert field(box(svg, "out"), "value") == "-inf"
    assert field(box(svg, "x"), "∂") == "[inf 1]"
    assert "non-finite" in result.stdout
    assert "warning" in result.stdout


@pytest.mark.parametrize("expr, value, row, expected", [
    ("log(x)", "x=[0, 1]", "x", r"\[inf,\s+1\.\]"),     # x's gradient
    ("sqrt(x)", "x=[-1, 1]", "out", r"\[nan,\s+1\.\]"),  # the output's value
])
def test_summary_shows_non_finite_values(tmp_path, expr, value, row, expected):
    with np.errstate(all="ignore"):
        result = cli("render", expr, "-v", value, "-o", str(tmp_path / "g.svg"))
    assert result.exit_code == 0
    line = summary_row(result.stdout, row)
    assert re.search(expected, line), f"summary row {line!r} lost its non-finite array"


def test_non_finite_values_give_one_warning_line(tmp_path):
    proc = run(["render", "sum(log(x))", "-v", "x=[0, 1]", "-o", str(tmp_path / "g.svg")],
               cwd=tmp_path)
    assert proc.returncode == 0
    stderr = proc.stderr.decode()
    assert "RuntimeWarning" not in stderr, stderr
    warnings = [line for line in proc.stdout.decode().splitlines() if "warning" in line]
    assert len(warnings) == 1 and "non-finite" in warnings[0]


# ---------------------------------------------------------------------------
# Mistakes in the user's text are one error line, never a traceback
# ---------------------------------------------------------------------------


def assert_one_error_line(result, *needles: str) -> str:
    """Exit status 2 and exactly one line on stderr, starting 'error:'."""
    err = assert_clean_error(result, *needles)
    assert len(error_lines(result.stderr)) == 1, result.stderr
    return err


CHECK_SCRIPT = '''\
import gradviz as gv


def cube(x):
    return x * x * x


def notensor(x):
    return 1.5


def scaled(x, y=2.0):
    return x * y


def broken(x):
    return x * undefined_name


cube_op = gv.defop("cube", lambda x: x ** 3, saves=("x0",),
                   vjps=(lambda g, x: g * 3 * x ** 2,))                 # no JVP rule
wrong_op = gv.defop("wrong", lambda x: x ** 3, saves=("x0",),
                    vjps=(lambda g, x: g * 2 * x ** 2,), jvps=(lambda t, x: t * 3 * x ** 2,))
typo_op = gv.defop("typo", lambda x: x ** 3, saves=("x0",),
                   vjps=(lambda g, x: g * three * x ** 2,))
'''


@pytest.fixture
def check_script(tmp_path) -> str:
    path = tmp_path / "ops.py"
    path.write_text(CHECK_SCRIPT)
    return str(path)


@pytest.mark.parametrize("args, needle", [
    (["[1,2][5]"], "`[1, 2][5]`: list index out of range"),
    (["[1,2].sum()"], "`[1, 2].sum()`:"),
    (["sin(x, x)", "-v", "x=1"], "`sin(x, x)`:"),
    (["sum(x, foo=1)", "-v", "x=1"], "`sum(x, foo=1)`:"),
    (["dot(x)", "-v", "x=ones(4)"], "`dot(x)`:"),
    (["x + [[1,2],[3]]", "-v", "x=1"], "different lengths"),
    (["sum(x)", "-v", "x=ones(3, dtype=1)"], "`ones(3, dtype=1)`:"),
    (["sum(x)", "-v", "x=randn(-1)"], "`randn(-1)`: negative dimensions"),
    (["sum(x)", "-v", "x=arange(0,10,0)"], "step must not be 0"),
    (["sum(x)", "-v", "x=linspace(0,1,-1)"], "must not be negative"),
    (["sum(x)", "-v", "x=ones(1.5)"], "`ones(1.5)`:"),
])
def test_render_errors_from_python_are_one_line(tmp_path, args, needle):
    result = cli("render", *args, "-o", str(tmp_path / "g.svg"))
    assert_one_error_line(result, needle)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, needle", [
    (["1 + 2", "-v", "x=1"], "`1 + 2` returned int 3, not a gradviz tensor"),
    (["{script}:notensor", "-v", "x=1"], "notensor returned float 1.5, not a gradviz tensor"),
    (["{script}:cube", "-v", "x=1", "-v", "y=2"], "cube takes 1 input, got 2 -v values"),
    (["{script}:cube_op", "-v", "x=1", "-v", "y=2"], "cube_op takes 1 input, got 2 -v values"),
    (["{script}:scaled", "-v", "x=1", "-v", "y=2", "-v", "z=3"],
     "scaled takes 1 to 2 inputs, got 3 -v values"),
    (["sin(x, x)", "-v", "x=1"], "`sin(x, x)`:"),
    (["x * x", "-v", "x=randn(-1)"], "`randn(-1)`:"),
    (["x * y", "-v", "x=1", "-v", "y=2", "-v", "x=3"], "-v x given twice"),
])
def test_check_errors_are_one_line(check_script, args, needle):
    args = [a.format(script=check_script) for a in args]
    assert_one_error_line(cli("check", *args), needle)


def test_check_script_that_raises_shows_its_own_traceback(check_script):
    for name in ("broken", "typo_op"):  # in the function; in a backward rule
        result = cli("check", f"{check_script}:{name}", "-v", "x=[1, 2]")
        assert result.exit_code == 2
        lines = error_lines(result.stderr)
        assert lines[0] == "Traceback (most recent call last):"
        assert "ops.py" in result.stderr and "gradviz/engine" not in result.stderr
        assert lines[-1].startswith(f"error: {check_script}:{name} raised NameError")


@pytest.mark.parametrize("eps", ["0", "-1e-6"])
def test_check_eps_must_be_positive(eps):
    result = cli("check", "x * x", "-v", "x=1", "--eps", eps)
    assert result.exit_code == 2
    assert "--eps" in result.stderr and "Traceback" not in result.output


def test_check_verdicts_come_from_the_engine(check_script):
    good = cli("check", "tanh(x) * y", "-v", "x=[0.5, -1]", "-v", "y=[2, 3]")
    assert good.exit_code == 0, good.output
    assert summary_row(good.stdout, "x").split()[-1] == "ok"
    assert summary_row(good.stdout, "y").split()[-1] == "ok"
    wrong = cli("check", f"{check_script}:wrong_op", "-v", "x=[1, 2]")
    assert wrong.exit_code == 1
    assert summary_row(wrong.stdout, "x").split()[-1] == "WRONG"


def test_check_forward_column_is_na_without_jvp_rules(check_script):
    result = cli("check", f"{check_script}:cube_op", "-v", "x=[1, 2]")
    assert result.exit_code == 0, result.output
    row = summary_row(result.stdout, "x").split()
    assert row[2] == "n/a" and row[-1] == "ok"
    with_jvp = summary_row(cli("check", "x * x", "-v", "x=[1, 2]").stdout, "x").split()
    assert with_jvp[2] != "n/a"


# ---------------------------------------------------------------------------
# Names given twice, --wrt of a constant
# ---------------------------------------------------------------------------


def test_value_given_twice(tmp_path):
    result = cli("render", "x * y", "-v", "x=1", "-v", "y=2", "-v", "x=3",
                 "-o", str(tmp_path / "g.svg"))
    assert_one_error_line(result, "-v x given twice")
    assert os.listdir(tmp_path) == []


def test_build_rejects_a_name_given_twice():
    from gradviz.errors import ExpressionError
    from gradviz.frontends.program import build

    with pytest.raises(ExpressionError, match="-v x given twice"):
        build("x * 2", [("x", "1"), ("x", "2")])
    assert build("x * 2", {"x": "3"}).output.item() == 6


def test_wrt_a_constant(tmp_path):
    result = cli("render", "x * y", "-v", "x=1", "-v", "y=2", "--wrt", "y", "--const", "y",
                 "-o", str(tmp_path / "g.svg"))
    assert_one_error_line(result, "--wrt y: y is a constant (--const)")
    assert os.listdir(tmp_path) == []


def test_wrt_a_script_tensor_without_grad(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import gradviz as gv\n"
                      "x = gv.tensor([1.0, 2.0], requires_grad=True)\n"
                      "c = gv.tensor([3.0, 4.0])\n"
                      "out = gv.sum(x * c)\n")
    result = cli("render", str(script), "--wrt", "c", "-o", str(tmp_path / "g.svg"))
    assert_one_error_line(result, "--wrt c: c does not require grad")


# ---------------------------------------------------------------------------
# Constructors are capped before they allocate
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "ones(100000, 100000)", "zeros((4000, 4000))", "randn(size=(100000, 100000))",
    "randn(4000, 4000)", "arange(1e12)", "arange(0, 1, 1e-9)", "linspace(0, 1, 100000000)",
    "ones(10000001)", "ones(" + "9" * 400 + ", 1.5)", "linspace(0, 1, 1e999)",
])
def test_constructor_sizes_are_capped(tmp_path, value):
    import tracemalloc

    tracemalloc.start()  # numpy reports its allocations to tracemalloc
    try:
        result = cli("render", "sum(x)", "-v", f"x={value}", "-o", str(tmp_path / "g.svg"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_error_line(result, "the limit is 10,000,000")
    assert peak < 20_000_000, f"{peak:,} bytes allocated before refusing"


def test_constructor_cap_counts_elements_exactly(monkeypatch):
    from gradviz.errors import ExpressionError
    from gradviz.frontends import program
    from gradviz.frontends.expr import parse_value

    monkeypatch.setattr(program, "MAX_ELEMENTS", 12)
    allowed = ["ones(3, 4)", "zeros((12,))", "randn(2, 6)", "randn(size=(3, 4))",
               "arange(12)", "arange(0, 12)", "arange(11, -1, -1)", "arange(0, 1.2, 0.1)",
               "linspace(0, 1, 12)", "ones(0, 1000000000)"]
    for text in allowed:
        assert parse_value(text, program.CONSTRUCTORS).data.size <= 12, text
    for text in ["ones(13)", "ones(3, 5)", "zeros((2, 7))", "randn(13)", "randn(size=(13,))",
                 "arange(13)", "arange(12, -1, -1)", "arange(0, 1.3, 0.1)",
                 "linspace(0, 1, 13)"]:
        with pytest.raises(ExpressionError, match="limit is 12"):
            parse_value(text, program.CONSTRUCTORS)
    with pytest.raises(ExpressionError, match="expected a number"):
        parse_value("ones([[2]])", program.CONSTRUCTORS)


# ---------------------------------------------------------------------------
# Help lists what a formula may call
# ---------------------------------------------------------------------------


def test_render_help_lists_every_function_and_method():
    from gradviz.functions import EXPRESSION_FUNCTIONS, EXPRESSION_METHODS

    text = cli("render", "--help").stdout
    for name in ("sigmoid", "detach", ".sum()", ".T"):
        assert name in text, name
    words = set(re.findall(r"[\w.()]+", text.replace(",", " ")))
    for name in EXPRESSION_FUNCTIONS:
        assert name in words, name
    for name in EXPRESSION_METHODS:
        assert f".{name}()" in words, name
    # Our line breaks are kept: each listed line is short enough for an 80-column terminal
    # plus click's indent, and no name is split across lines.
    listed = text[text.index("Functions a formula may call"):text.index("Examples")]
    assert all(len(line) <= 100 for line in listed.splitlines())


# ---------------------------------------------------------------------------
# -o into things that are not plain files
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_output_into_a_fifo(tmp_path):
    """A FIFO stands in for /dev/null: written in place, not replaced by a file."""
    import stat
    import threading

    fifo = tmp_path / "pipe.svg"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            received.append(fh.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(fifo))
    thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert field(box(received[0], "x"), "∂") == "[0 2 4 6]"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe.svg"]


def test_output_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / "slides" / "g.svg"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.svg"
    link.symlink_to(target)
    result = cli("render", DOT_EXPR, "-v", "x=arange(4)", "-o", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert field(box(target.read_bytes(), "x"), "∂") == "[0 2 4 6]"
    assert os.listdir(target.parent) == ["g.svg"]


def test_output_to_a_path_that_is_standard_output(tmp_path):
    """`-o /dev/stdout` acts as `-o -`; here a symlink to the file stdout is redirected to."""
    out = tmp_path / "out.svg"
    link = tmp_path / "stdout-link.svg"
    link.symlink_to(out)
    with open(out, "wb") as stdout:
        proc = subprocess.run(gradviz_cmd("module") + ["render", DOT_EXPR, "-v", "x=arange(4)",
                                                       "-o", str(link)],
                              stdout=stdout, stderr=subprocess.PIPE, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    data = out.read_bytes()
    ET.fromstring(data)  # the diagram alone: the summary went to stderr
    assert field(box(data, "x"), "∂") == "[0 2 4 6]"
    assert b"[0., 2., 4., 6.]" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["out.svg", "stdout-link.svg"]
