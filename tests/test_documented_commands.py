"""Every command the documentation shows works as written.

The commands are read from README.md (its bash blocks and its gallery table)
and from the ``--help`` text of ``gradviz`` and of each of its commands, found
by walking the click group, so a new command's examples are covered as soon
as it exists.  Each runs in a subprocess, in a scratch copy of the samples,
with ``-o`` redirected into the scratch directory.  A command marked
``# error`` must fail cleanly (exit status 2, one ``error:`` line); any other
must exit 0.  The gallery is rebuilt by samples/make_gallery.py's own code
from the same table.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gradviz.cli import main

REPO = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"


def _load_make_gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", REPO / "samples" / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_gallery"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


make_gallery = _load_make_gallery()
README_TEXT = (REPO / "README.md").read_text(encoding="utf-8")


def _help_texts() -> dict[str, str]:
    """``gradviz --help`` and ``gradviz COMMAND --help`` for every command there is."""
    texts = {"gradviz --help": CliRunner().invoke(main, ["--help"]).output}
    for name, command in sorted(main.commands.items()):
        if isinstance(command, click.Command) and not command.hidden:
            texts[f"gradviz {name} --help"] = CliRunner().invoke(main, [name, "--help"]).output
    return texts


HELP_TEXTS = _help_texts()


def _documented() -> list:
    """(where, command) for every documented command, README first."""
    found = [("README.md", c) for c in make_gallery.fenced_commands(README_TEXT)]
    found += [("README.md gallery", row.command) for row in make_gallery.gallery_rows(README_TEXT)]
    for where, text in HELP_TEXTS.items():
        found += [(where, c) for c in make_gallery.help_commands(text)]
    return found


DOCUMENTED = _documented()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A directory laid out like the repository's root, for relative paths such as
    gradviz/teach/samples/05_control_flow.py; nothing is written into the repository."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(REPO / "samples", root / "samples",
                    ignore=shutil.ignore_patterns("gallery", "__pycache__"))
    shutil.copytree(REPO / "gradviz" / "teach" / "samples", root / "gradviz" / "teach" / "samples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_documentation_has_the_commands_it_should():
    """The extraction itself: it must see what a reader sees, or the test proves nothing."""
    where = {w for w, _ in DOCUMENTED}
    assert {"README.md", "README.md gallery", "gradviz render --help",
            "gradviz check --help"} <= where
    texts = [c.text for _, c in DOCUMENTED]
    assert any("05_control_flow.py:d --roll" in t for t in texts)
    assert any(c.shows_error for _, c in DOCUMENTED)
    assert len(make_gallery.gallery_rows(README_TEXT)) >= 8
    # every subcommand's help is read (e.g. `gradviz step`, once it exists)
    assert {f"gradviz {name} --help" for name in main.commands} <= set(HELP_TEXTS)


def test_extraction_rules():
    text = ("```bash\npip install . && gradviz render \"dot(x, x)\" -v \"x=arange(4)\"  # note\n"
            "gradviz render \"a # b\" -v a=1 \\\n    -o out.svg\n"
            "gradviz render \"x\"   # error: no value\n```\n")
    commands = make_gallery.fenced_commands(text)
    assert [c.argv for c in commands] == [
        ("gradviz", "render", "dot(x, x)", "-v", "x=arange(4)"),
        ("gradviz", "render", "a # b", "-v", "a=1", "-o", "out.svg"),
        ("gradviz", "render", "x")]
    assert [c.shows_error for c in commands] == [False, False, True]
    assert commands[2].error_text == "no value"
    assert make_gallery._redirected(["gradviz", "-o", "a/b.png", "--output=c.svg", "-o", "-"],
                                    Path("/t")) == ["gradviz", "-o", "/t/b.png",
                                                    "--output=/t/c.svg", "-o", "-"]


@pytest.mark.parametrize("where, command", DOCUMENTED,
                         ids=[f"{w}: {c.text[:60]}" for w, c in DOCUMENTED])
def test_documented_command_runs(where, command, scratch, tmp_path):
    result = make_gallery.run(command, scratch, output_dir=tmp_path)
    if command.shows_error:
        assert result.returncode == 2, (command.text, result.returncode, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr
        assert lines[0].startswith("error: " + command.error_text), (command.error_text, lines)
    else:
        assert result.returncode == 0, (command.text, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
    if "-o" in command.argv and not command.shows_error:
        name = Path(command.argv[command.argv.index("-o") + 1]).name
        if name != "-":
            written = tmp_path / name
            assert written.stat().st_size > 0
            assert not (scratch / name).exists()  # -o was redirected, nothing stray


def test_gallery_is_built_from_the_readme_rows(tmp_path):
    """samples/make_gallery.py's own code draws every row: one SVG per row, with boxes."""
    rows = make_gallery.gallery_rows(README_TEXT)
    written = make_gallery.build_gallery(rows, REPO, out_dir=tmp_path)
    assert [p.name for p in written] == [row.figure.name for row in rows]
    for row, path in zip(rows, written):
        assert (REPO / row.figure).exists(), f"the README shows {row.figure}, not committed"
        root = ET.fromstring(path.read_bytes())
        nodes = [g for g in root.iter(SVG + "g") if g.get("class") == "node"
                 and not g.get("id", "").startswith("legend")]
        assert len(nodes) >= 2, row.command.text
