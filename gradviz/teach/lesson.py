"""The lesson's samples: listed, run and drawn, everything read from the scripts themselves.

The scripts ship inside the package (``gradviz/teach/samples/``), so a user who
ran ``pip install gradviz`` has them.  Each one's docstring is the single source
of what ``gradviz lesson`` says about it:

* its first line, ``Section N: what it shows`` or ``Exercise N: ...``;
* ``Answers Qn: ...``: the lesson's Q&A question the script's output answers;
* ``Diagrams: NAME [--roll], ...``: the module-level tensors worth drawing
  (``--roll`` for loops), the first of which is also the one to step through.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from gradviz.errors import GradvizError


@dataclass(frozen=True)
class Section:
    """A section of the lesson, with the commands that show what no sample script does."""

    number: str
    title: str
    original: str  # the lesson's own heading
    commands: tuple[tuple[str, str], ...] = ()  # (command, what it shows)


SECTIONS: tuple[Section, ...] = (
    Section("1", "The vector chain rule", "向量链式法则", (
        ('gradviz explain "y = x * x; sin(y) * y" -v x=0.5 --wrt x',
         "the chain rule written out: a sum over paths of products of local derivatives"),
    )),
    Section("2", "Automatic differentiation: the graph, the two modes and their cost", "自动求导", (
        ('gradviz render "y = x * x; u = detach(y); z = u * x; sum(z)" -v x="arange(4)" '
         "--show structure",
         "2.1 explicit construction: the formula first, values after"),
        ('gradviz render "log(x1) + x1 * x2 - sin(x2)" -v x1=2 -v x2=5 --mode forward '
         "--wrt x1 -o forward.svg",
         "2.2 forward accumulation drawn: tangents pushed up from x1 (without --mode: reverse)"),
        ('gradviz check "relu(x)" -v x="[-1, 0, 1]"',
         "2: numerical differentiation (finite differences) against autograd; kinks flagged"),
        ('gradviz cost "sum(x * x)" -v x="ones(1000)"',
         "2.3 f: R^n -> R, n = 1000: reverse accumulation wins (1 pass against 1000 sweeps)"),
        ('gradviz cost "x * c" -v x=0.5 -v c="ones(1000)" --const c',
         "2.3 f: R -> R^m, m = 1000: forward accumulation wins (1 sweep against 1000 passes)"),
        ('gradviz cost "A @ x" -v A="randn(30, 30)" -v x="randn(30)" --const A',
         "2.3 n = m = 30: the crossover, both modes need 30 sweeps"),
    )),
    Section("3", "Code: autograd in PyTorch, cell by cell", "代码部分"),
    Section("4", "Q&A", "自动求导 Q&A"),
    Section("5", "Exercises", "练习", (
        ('gradviz plot "sin(x)" --x -20:20:0.1 --terminal',
         "exercise 5 for any elementwise f: f and df/dx from the tape"),
    )),
)


@dataclass(frozen=True)
class Diagram:
    """A tensor of a sample worth drawing: its module-level name, and whether to roll loops."""

    name: str
    roll: bool = False


@dataclass(frozen=True)
class Sample:
    """One script of the lesson, described by its own docstring."""

    path: Path
    number: str                 # "05"
    name: str                   # "control_flow"
    section: str                # "3"; exercises are section "5"
    reference: str              # "Section 3", "Exercise 2"
    summary: str                # the rest of the docstring's first line
    answers: tuple[tuple[str, str], ...]   # (("Q2", "the forward pass runs once ..."), ...)
    diagrams: tuple[Diagram, ...]
    usage: str                  # its optional arguments, "[SEED]", from its "Run it:" line

    @property
    def filename(self) -> str:
        return self.path.name


_FIRST_LINE = re.compile(r"(Section|Exercise) (\d+(?:\.\d+)*): (.+)")
_FIELD = re.compile(r"(Answers (Q\d+)|Diagrams|Run it):\s*(.*)")


def samples_folder() -> Path:
    """Where the installed package keeps the lesson's scripts."""
    folder = Path(str(resources.files("gradviz.teach") / "samples"))
    if not folder.is_dir():  # e.g. a zipped install: the scripts must be real files to run
        raise GradvizError(f"the lesson's samples are missing from this install ({folder}); "
                           "reinstall gradviz from a wheel or a source checkout")
    return folder


def parse_sample(path: Path) -> Sample:
    """The :class:`Sample` a script's docstring describes (see the module notes)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=True)
    if not doc:
        raise GradvizError(f"{path.name}: a lesson sample needs a docstring")
    lines = doc.splitlines()
    first = _FIRST_LINE.fullmatch(lines[0].strip())
    if first is None:
        raise GradvizError(f"{path.name}: the docstring's first line must read "
                           f"'Section N: ...' or 'Exercise N: ...', not {lines[0]!r}")
    kind, where, summary = first.groups()
    fields: list[list[str]] = []  # [key, text]; indented lines continue the field above
    for line in lines[1:]:
        match = _FIELD.fullmatch(line)
        if match:
            fields.append([match.group(1), match.group(3)])
        elif fields and line.startswith(" ") and line.strip():
            fields[-1][1] += " " + line.strip()
    answers, diagrams, usage = [], [], ""
    for key, text in fields:
        if key.startswith("Answers"):
            answers.append((key.split()[1], text))
        elif key == "Diagrams":
            for item in text.split(","):
                words = item.split()
                diagrams.append(Diagram(words[0], roll="--roll" in words[1:]))
        else:  # "Run it:  gradviz lesson 05 [SEED]   (or ...)"
            usage = " ".join(w for w in text.split("(")[0].split()[3:])
    number, _, name = path.stem.partition("_")
    return Sample(path=path, number=number, name=name,
                  section="5" if kind == "Exercise" else where.split(".")[0],
                  reference=f"{kind} {where}", summary=summary, answers=tuple(answers),
                  diagrams=tuple(diagrams), usage=usage)


def samples() -> list[Sample]:
    """Every sample script of the lesson, in the order of their numbers."""
    return [parse_sample(p) for p in sorted(samples_folder().glob("[0-9]*.py"))]


def find(name: str) -> Sample:
    """The sample called ``name``: its number (``5`` or ``05``), name, file stem or file name."""
    key = name.strip().removesuffix(".py")
    everything = samples()
    for s in everything:
        if key in (s.path.stem, s.name) or (key.isdigit() and int(key) == int(s.number)):
            return s
    known = ", ".join(f"{s.number} ({s.name})" for s in everything)
    raise GradvizError(f"no lesson sample {name!r}; the samples are {known}")


def commands(sample: Sample) -> list[str]:
    """The commands that draw and step ``sample``'s tensors, ready to paste in a shell."""
    out = []
    for d in sample.diagrams:
        target = shlex.quote(f"{sample.path}:{d.name}")
        roll = " --roll" if d.roll else ""
        out.append(f"gradviz render {target}{roll} -o {sample.number}_{d.name}.svg")
    if sample.diagrams:
        first = sample.diagrams[0]
        out.append(f"gradviz step {shlex.quote(f'{sample.path}:{first.name}')}")
    return out


def run(sample: Sample, args: Sequence[str] = ()) -> Any:
    """Run ``sample`` as ``python SCRIPT ARGS`` would (it prints); return what it left.

    The :class:`~gradviz.frontends.load.Loaded` graph, as every command loads a script:
    its tensors by name (``variables``), labelled with the script's names, and the saved
    values its own ``backward()`` calls freed (``kept``), so drawings run their own pass.
    """
    from gradviz.frontends.load import load

    target = f"{sample.path}:{sample.diagrams[0].name}" if sample.diagrams else str(sample.path)
    return load(target, script=True, argv=list(args))


def render(sample: Sample, ran: Any, folder: str | Path, renderer: str = "auto") -> list[Path]:
    """Draw each of ``sample``'s diagrams from what :func:`run` left, as SVG.

    Files are ``NN_NAME.svg`` in ``folder`` (created if needed), each written
    whole or not at all.  Returns the paths written.
    """
    from gradviz.render import draw, write_atomic
    from gradviz.render.backends import resolve_renderer

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GradvizError(f"--render: cannot create {folder}: {exc.strerror}") from None
    chosen = resolve_renderer(renderer, "svg")
    written = []
    for d in sample.diagrams:
        if d.name not in ran.variables:
            raise GradvizError(f"{sample.filename} names the diagram {d.name!r} but defines "
                               "no such tensor")
        drawing = draw(ran.variables[d.name], roll=d.roll, kept=ran.kept,
                       title=f"{sample.number} {sample.name}: {d.name}")
        path = folder / f"{sample.number}_{d.name}.svg"
        write_atomic(path, drawing.pipe("svg", chosen))
        written.append(path)
    return written
