"""The command line against careless and hostile input: never wrong silently, never a traceback.

Each case runs the real command in a subprocess, as a user (or a shell
pipeline) meets it: exit status 0, 1 or 2; on failure exactly one line
starting ``error:`` on stderr and no traceback; a well-formed file or none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def gradviz(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **(env or {}))
    if "stdout" not in kw:
        kw["capture_output"] = True
    return subprocess.run([sys.executable, "-m", "gradviz", *args], cwd=cwd, env=environment,
                          timeout=timeout, **kw)


def one_error_line(run: subprocess.CompletedProcess, status: int = 2) -> str:
    """The single ``error:`` line of a failed run (asserting there is nothing else)."""
    err = run.stderr.decode("utf-8", "replace") if isinstance(run.stderr, bytes) else run.stderr
    assert run.returncode == status, (run.returncode, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


SCRIPT_THAT_PRINTS = """\
import os
import gradviz as gv
print("hello from the script")
os.system("echo hello from a child process")
x = gv.tensor([1., 2.], requires_grad=True)
y = (x * x).sum()
"""


# -- item 4: a script's own output never lands in the diagram ---------------------------


def test_a_script_that_prints_leaves_the_svg_on_stdout_intact(tmp_path) -> None:
    (tmp_path / "s.py").write_text(SCRIPT_THAT_PRINTS)
    run = gradviz("render", "s.py", "-o", "-", "--renderer", "embedded", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    root = ET.fromstring(run.stdout)  # well-formed: nothing printed into it
    assert root.tag.endswith("svg")
    err = run.stderr.decode()
    assert "hello from the script" in err and "hello from a child process" in err


def test_a_script_prints_to_stdout_as_usual_when_the_diagram_goes_to_a_file(tmp_path) -> None:
    (tmp_path / "s.py").write_text(SCRIPT_THAT_PRINTS)
    run = gradviz("render", "s.py", "-o", "g.dot", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert b"hello from the script" in run.stdout
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


# -- item 5: a write to stdout that did not arrive is an error ------------------------------


def test_stdout_closed_by_its_reader_is_one_error_line() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "gradviz", "render", "sin(x)", "-v", "x=1",
                             "-o", "-", "-f", "dot"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before the diagram is written
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    run = subprocess.CompletedProcess(proc.args, status, b"", err)
    line = one_error_line(run)
    assert "cannot write standard output" in line and "0 of" in line
    assert "wrote" not in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_device_is_one_error_line() -> None:
    with open("/dev/full", "wb") as full:
        run = gradviz("render", "sin(x)", "-v", "x=1", "-o", "-", "-f", "dot", stdout=full,
                      stderr=subprocess.PIPE)
    assert "No space left on device" in one_error_line(run)


# -- item 6: control characters in titles and labels ------------------------------------


@pytest.mark.parametrize("fmt", ["svg", "json", "dot"])
def test_control_characters_in_a_title_give_a_well_formed_file(tmp_path, fmt) -> None:
    title = "a\x01b\x1b[31mred\x7f\tc\x85"
    run = gradviz("render", "sin(x)", "-v", "x=1", "--title", title, "-o", f"g.{fmt}",
                  "--renderer", "embedded", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    data = (tmp_path / f"g.{fmt}").read_bytes()
    assert not any(b < 0x20 and b not in b"\n\r\t" for b in data)
    text = data.decode("utf-8")
    if fmt == "svg":
        texts = "".join(ET.fromstring(data).itertext())
        assert "a␁b␛[31mred␡ c\ufffd" in texts  # shown, not dropped
    elif fmt == "json":
        labels = json.loads(text)["label"]
        assert "a␁b␛[31mred␡ c\ufffd" in labels
    else:
        assert "a␁b␛[31mred␡ c\ufffd" in text


def test_control_characters_in_a_script_label_reach_neither_svg_nor_terminal(tmp_path) -> None:
    (tmp_path / "s.py").write_text(
        "import gradviz as gv\n"
        "x = gv.tensor([1., 2.], requires_grad=True).name('x\\x01\\x1b]0;pwned\\x07')\n"
        "y = (x * x).sum()\n")
    run = gradviz("render", "s.py", "-o", "g.svg", "--renderer", "embedded", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    texts = "".join(ET.parse(tmp_path / "g.svg").getroot().itertext())
    assert "x␁␛]0;pwned␇" in texts
    assert b"\x1b" not in run.stdout and b"\x07" not in run.stdout


# -- item 8: a formula never runs a file ----------------------------------------------------

MARKING_SCRIPT = """\
import pathlib
import gradviz as gv
pathlib.Path("ran.txt").write_text("the script ran")
x = gv.tensor([1., 2.], requires_grad=True)
y = (x * x).sum()
"""


@pytest.mark.parametrize("command", ["render", "check"])
def test_formula_never_runs_a_file_that_looks_like_a_script(tmp_path, command) -> None:
    (tmp_path / "s.py").write_text(MARKING_SCRIPT)
    args = ["-v", "x=1"] if command == "check" else ["-o", "g.svg"]
    run = gradviz(command, "s.py", "--formula", *args, cwd=tmp_path)
    one_error_line(run)
    assert not (tmp_path / "ran.txt").exists() and not (tmp_path / "g.svg").exists()
    run = gradviz("render", "s.py", "-o", "g.dot", cwd=tmp_path)  # by default .py is a script
    assert run.returncode == 0 and (tmp_path / "ran.txt").exists()


def test_script_runs_a_file_whatever_its_name(tmp_path) -> None:
    (tmp_path / "lesson.txt").write_text(MARKING_SCRIPT)
    run = gradviz("render", "lesson.txt:y", "--script", "-o", "g.dot", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "ran.txt").exists()
    dot = (tmp_path / "g.dot").read_text()
    assert "SumBackward0" in dot and "MulBackward0" in dot
