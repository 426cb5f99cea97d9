"""``gradviz lesson``: the lesson's samples listed, run, drawn, and shipped in the package."""

from __future__ import annotations

import ast
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradviz.cli import main
from gradviz.teach import lesson

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "gradviz" / "teach" / "samples"
SCRIPTS = sorted(p.name for p in SAMPLES.glob("[0-9]*.py"))
HAVE_DOT = shutil.which("dot") is not None
RENDERERS = ["embedded",
             pytest.param("system", marks=pytest.mark.skipif(not HAVE_DOT, reason="no `dot`"))]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def first_docstring_line(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))).splitlines()[0]


def test_the_installed_package_holds_the_samples():
    # importlib.resources finds them in the package, not in the repository's samples/.
    assert lesson.samples_folder() == SAMPLES
    assert [s.filename for s in lesson.samples()] == SCRIPTS
    assert len(SCRIPTS) == 12
    assert not (REPO_ROOT / "samples" / "lesson").exists()
    assert (REPO_ROOT / "samples" / "gallery").is_dir()


def test_a_built_wheel_ships_every_sample(tmp_path):
    # Build from a copy, so the checkout gets no build/ or egg-info.
    source = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "gradviz", source / "gradviz",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("gradviz-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in SCRIPTS + ["lesson.py", "README.md"]:
        assert f"gradviz/teach/samples/{script}" in names


def test_outline_lists_every_sample_with_its_own_summary():
    result = run("lesson")
    assert result.exit_code == 0
    out = result.output
    for script in SCRIPTS:
        summary = first_docstring_line(SAMPLES / script).split(": ", 1)[1]
        line = next(line for line in out.splitlines() if line.strip().startswith(script))
        assert summary in line
    # The lesson's sections in order, and every Q&A question answered by some sample.
    headings = [line.split(".")[0] for line in out.splitlines() if line[:1].isdigit()]
    assert headings == ["1", "2", "3", "4", "5"]
    qa = out[out.index("4. Q&A"):out.index("5. Exercises")]
    assert [line.split()[0] for line in qa.splitlines()[1:] if line.strip()] == \
        ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"]
    assert "→ gradviz lesson 01" in qa  # Q5: .grad is None before backward()
    # Exercises in their own order: 1 (10_...), 2 (08_...), 3, 4, 5.
    exercises = out[out.index("5. Exercises"):]
    order = [line.split()[0] for line in exercises.splitlines() if line.strip().endswith(
        tuple("]).")) and line.strip()[:2].isdigit()]
    assert order == ["10_second_derivative.py", "08_backward_twice.py",
                     "06_vector_control_flow.py", "07_redesigned_control_flow.py",
                     "09_sin_derivative.py"]


def test_running_a_sample_prints_its_numbers_and_the_commands(tmp_path):
    result = run("lesson", "1")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "x.grad before backward: None" in out
    assert "x.grad = tensor([0., 2., 4., 6.])" in out
    assert "Q5 x.grad is None until backward() runs" in out
    path = SAMPLES / "01_dot_gradient.py"
    render = f"gradviz render {shlex.quote(f'{path}:y')} -o 01_y.svg"
    assert render in out.splitlines()[-2].strip() or render == out.splitlines()[-2].strip()
    assert out.splitlines()[-1].strip() == f"gradviz step {shlex.quote(f'{path}:y')}"
    # The printed render command works as printed.
    args = shlex.split(out.splitlines()[-2].strip())[1:]
    args[args.index("-o") + 1] = str(tmp_path / "y.svg")
    drawn = run(*args, "--renderer", "embedded")
    assert drawn.exit_code == 0, drawn.output
    ET.parse(tmp_path / "y.svg")


def test_arguments_reach_the_script():
    result = run("lesson", "control_flow", "7")
    assert result.exit_code == 0
    assert "seed 7: a = " in result.output


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_sample_renders(script, renderer, tmp_path):
    sample = lesson.parse_sample(SAMPLES / script)
    assert sample.diagrams, f"{script} names no diagram"
    result = run("lesson", sample.number, "--render", str(tmp_path / "out"),
                 "--renderer", renderer)
    assert result.exit_code == 0, result.output
    for d in sample.diagrams:
        path = tmp_path / "out" / f"{sample.number}_{d.name}.svg"
        assert f"wrote {path}" in result.output
        svg = ET.parse(path)
        texts = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
        assert f"{sample.number} {sample.name}: {d.name}" in texts  # the diagram's title
        nodes = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
        assert len(nodes) >= 2


def test_an_unknown_sample_is_one_line_and_status_2():
    result = CliRunner().invoke(main, ["lesson", "nosuch"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: no lesson sample 'nosuch'; the samples are 01 ")


def test_docstrings_parse_into_sections_and_answers():
    by_number = {s.number: s for s in lesson.samples()}
    assert by_number["06"].reference == "Exercise 3" and by_number["06"].section == "5"
    assert by_number["12"].reference == "Section 2.2" and by_number["12"].section == "2"
    assert by_number["05"].diagrams == (lesson.Diagram("d", roll=True),)
    assert by_number["04"].diagrams == (lesson.Diagram("z"), lesson.Diagram("y"))
    assert by_number["05"].usage == "[SEED]"
    assert [q for q, _ in by_number["08"].answers] == ["Q2"]


def _examples() -> list[str]:
    """The commands `gradviz lesson` suggests, and the examples of the teaching commands' help."""
    out = run("lesson").output
    commands = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("$ ")]
    for command in ("lesson", "cost", "explain", "plot"):
        text = run(command, "--help").output
        commands += [line.strip().split("  #")[0].strip() for line in text.splitlines()
                     if line.strip().startswith("gradviz ")]
    return commands


def test_every_suggested_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # they write graph.svg, sin.svg, ... where they run
    commands = _examples()
    assert len(commands) >= 15
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "gradviz", command
        if args[1:2] == ["lesson"] and len(args) > 2:
            args += ["--renderer", "embedded"] if "--render" in args else []
        result = CliRunner().invoke(main, args[1:])
        assert result.exit_code == 0, (command, result.output)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_sample_steps_with_the_printed_command(script):
    sample = lesson.parse_sample(SAMPLES / script)
    printed = run("lesson", sample.number).output.splitlines()[-1].strip()
    args = shlex.split(printed)
    assert args[:2] == ["gradviz", "step"]
    result = CliRunner().invoke(main, args[1:] + ["--no-pause"])
    assert result.exit_code == 0, (printed, result.output[-2000:])
    assert "done: each input's gradient (what backward() leaves in .grad):" in result.output
    if script == "01_dot_gradient.py":
        last = result.output.rstrip().splitlines()[-1].strip()
        assert last.startswith("x") and last.endswith(".grad = [0 2 4 6]")
