"""Regenerate the README's gallery by running the commands the README shows.

Run from anywhere:  python samples/make_gallery.py  (writes samples/gallery/*.svg)

The gallery table in README.md is the one list: each row's command is run as
written, with ``-o`` set to the row's figure and the embedded renderer (so no
system Graphviz is needed).  tests/test_documented_commands.py runs the same
rows through the same functions, and every other command of the README and
of the ``--help`` texts, so a documented command that stops working fails
the suite.

Command conventions in the documentation: a line starting ``gradviz``
(continued by a trailing backslash) inside a fenced ``bash`` block, a
``gradviz ...`` part of a ``&&`` chain, a line starting ``gradviz`` under
"Examples:" in a ``--help`` text, and the inline command in the first cell of
a gallery row.  A command whose comment starts ``# error`` shows an error:
it must exit with status 2, with the message the comment quotes (up to a ``...``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
README = REPO / "README.md"


@dataclass(frozen=True)
class Command:
    """One documented command: its words as the shell would split them."""

    text: str               # as written (continuation lines joined)
    argv: tuple[str, ...]   # shell words, the comment dropped
    shows_error: bool       # marked `# error`: expected to exit with status 2
    error_text: str = ""    # what the comment says the error reads (``# error: TEXT ...``)


@dataclass(frozen=True)
class GalleryRow:
    command: Command
    figure: Path            # the SVG the row shows, relative to the repository


def _split_comment(text: str) -> tuple[str, str]:
    """``text`` cut where a shell comment starts: an unquoted ``#`` at the start of a word."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i], text[i:]
    return text, ""


def _command(text: str) -> Command:
    code, comment = _split_comment(text)
    marked = re.match(r"#\s*error\b:?\s*(.*)", comment)
    expected = marked.group(1).strip().removesuffix("...").strip() if marked else ""
    return Command(text, tuple(shlex.split(code)), bool(marked), expected)


def _joined_lines(lines: list[str]) -> list[str]:
    """Lines with backslash continuations joined."""
    out: list[str] = []
    pending = ""
    for line in lines:
        stripped = line.strip()
        if pending:
            stripped = pending + " " + stripped
            pending = ""
        if stripped.endswith("\\"):
            pending = stripped[:-1].rstrip()
            continue
        out.append(stripped)
    if pending:
        out.append(pending)
    return out


def _gradviz_parts(line: str) -> list[str]:
    """The ``gradviz ...`` commands of a shell line (``pip install . && gradviz ...``)."""
    return [part.strip() for part in line.split("&&") if part.strip().startswith("gradviz ")]


def fenced_commands(markdown: str) -> list[Command]:
    """Every ``gradviz`` command in the fenced bash/sh/console blocks of ``markdown``."""
    commands = []
    for block in re.findall(r"^```(?:bash|sh|shell|console)\n(.*?)^```", markdown, re.M | re.S):
        for line in _joined_lines(block.splitlines()):
            commands.extend(_command(part) for part in _gradviz_parts(line.removeprefix("$ ")))
    return commands


def help_commands(help_text: str) -> list[Command]:
    """Every example command of a ``--help`` text: the lines that start with ``gradviz``."""
    return [_command(line) for line in _joined_lines(help_text.splitlines())
            if line.startswith("gradviz ")]


def gallery_rows(markdown: str) -> list[GalleryRow]:
    """The rows of the README's gallery table: the command shown and the figure."""
    section = markdown.split("## Gallery", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        found = re.match(r"\|\s*`(gradviz [^`]+)`.*\|\s*!\[[^\]]*\]\(([^)]+)\)\s*\|\s*$", line)
        if found:
            rows.append(GalleryRow(_command(found.group(1)), Path(found.group(2))))
    return rows


def _redirected(argv: list[str], directory: Path) -> list[str]:
    """``argv`` with its ``-o PATH`` moved into ``directory`` (standard output stays)."""
    out = list(argv)
    for i, word in enumerate(out):
        if word in ("-o", "--output") and i + 1 < len(out) and out[i + 1] != "-":
            out[i + 1] = str(directory / Path(out[i + 1]).name)
        elif word.startswith("--output=") and word != "--output=-":
            out[i] = "--output=" + str(directory / Path(word.split("=", 1)[1]).name)
    return out


def run(command: Command, cwd: Path, *, output_dir: Path | None = None,
        extra: tuple[str, ...] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a documented ``gradviz`` command with this checkout's gradviz, in ``cwd``.

    With ``output_dir``, its ``-o PATH`` is written there instead (by file name).
    ``extra`` arguments are appended.  Paths in the command are relative to ``cwd``.
    """
    argv = list(command.argv)
    if argv[:1] != ["gradviz"]:
        raise ValueError(f"not a gradviz command: {command.text}")
    if output_dir is not None:
        argv = _redirected(argv, output_dir)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "gradviz", *argv[1:], *extra], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def build_gallery(rows: list[GalleryRow], root: Path = REPO, out_dir: Path | None = None
                  ) -> list[Path]:
    """Draw every gallery row into its figure (under ``out_dir`` if given); returns the files."""
    written = []
    for row in rows:
        target = (out_dir or root) / (row.figure.name if out_dir else row.figure)
        target.parent.mkdir(parents=True, exist_ok=True)
        result = run(row.command, root, extra=("-o", str(target), "--renderer", "embedded"))
        if result.returncode != 0:
            raise RuntimeError(f"{row.command.text}\nexit status {result.returncode}\n"
                               f"{result.stderr}")
        written.append(target)
    return written


#: The README's step-by-step slides (gradviz step --frames), redrawn with the gallery.
STEPS = _command('gradviz step "y = x * x; u = detach(y); z = u * x; sum(z)" -v "x=arange(4)" '
                 "--frames samples/gallery/steps --renderer embedded")


def main() -> None:
    rows = gallery_rows(README.read_text(encoding="utf-8"))
    for path in build_gallery(rows):
        print("wrote", path.relative_to(REPO))
    result = run(STEPS, REPO)
    if result.returncode != 0:
        raise RuntimeError(f"{STEPS.text}\nexit status {result.returncode}\n{result.stderr}")
    print("wrote samples/gallery/steps")


if __name__ == "__main__":
    main()
