"""The ``gradviz`` command: parse the arguments, call the library, print.

Every command is a thin layer over a Python function (``gradviz.frontends``
builds the graph, ``gradviz.render`` draws it), so anything the CLI does is
reachable from Python too.  Errors a user can fix are printed as one line
on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
from typing import Any, Iterable, Iterator, Sequence

import click

from gradviz.errors import GradvizError, RenderError, ScriptError
from gradviz.render.values import plural
from gradviz.frontends.load import split_names
from gradviz.frontends.program import FUNCTIONS
from gradviz.functions import EXPRESSION_METHODS


def _name_block(heading: str, names: Iterable[str]) -> str:
    """``heading`` and the comma-separated ``names``, wrapped by hand under it.

    The block is marked ``\\b`` so click keeps our line breaks rather than
    running the list into the paragraph around it.
    """
    body = textwrap.fill(", ".join(sorted(names)), width=88, initial_indent="    ",
                         subsequent_indent="    ", break_on_hyphens=False)
    return f"\b\n  {heading}\n{body}\n"


# Generated from the whitelist itself, so the help can never drift from what parses.
_ALLOWED_NAMES = "\n".join([
    _name_block("Functions a formula may call (also as torch.NAME, pasted from PyTorch code):",
                FUNCTIONS),
    _name_block("Methods, as in x.sum(axis=0), and the attribute x.T:",
                (f".{m}()" for m in EXPRESSION_METHODS)),
])

RENDER_HELP = """Draw the computation graph of EXPR with values and adjoints.

\b
EXPR is either
  * a formula in Python syntax (explicit construction: formula first, values
    after), e.g.  "dot(x, x)"  or  "y = x * x; u = detach(y); z = u * x; sum(z)".
    Assigned names label their nodes; the last statement is the output (an
    expression, or an assignment such as "y = 2 * torch.dot(x, x)").  Every
    variable needs a value: -v NAME=VALUE.
  * a script, path/to/script.py[:NAME] (implicit construction: your Python,
    loops and branches included, is run and the tensor NAME is drawn; by
    default the last module-level tensor).
A path ending in .py is run as Python: --formula never runs anything,
--script says EXPR is a script whatever its name.

The output is backpropagated before drawing (a non-scalar output is seeded
with ones, as y.sum().backward()), and every box shows its forward value and
its adjoint d(out)/d(node); edges show what flowed back along them.

""" + _ALLOWED_NAMES + """
\b
Examples:
  gradviz render "dot(x, x)" -v "x=arange(4)"
  gradviz render "sum(x * x)" -v x="[1, 2, 3]" -o slide.png --slide --theme print
  gradviz render "norm(X @ w - y) ** 2" -v X="randn(3, 2)" -v w="[1, -1]" \\
      -v y="[0, 1, 2]" --const X --const y --edge-labels jacobian
  gradviz render "y = 2 * torch.dot(x, x)" -v "x=arange(4)"
  gradviz render "where(x > 0, x, 0).sum()" -v x="[-1, 2, 3]"
  gradviz render gradviz/teach/samples/05_control_flow.py:d --roll -o control_flow.png
  gradviz render samples/mlp_batch.py --group --collapse linear
"""


class _Group(click.Group):
    """The command group, with click's own complaints cut to one ``error:`` line.

    Standard output and error also never fail on a character their encoding lacks
    (``PYTHONIOENCODING=ascii``): it is written as an escape instead.
    """

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (AttributeError, ValueError, OSError):  # not a text file (a test runner's)
                pass
        try:  # SIGTERM as an exception: cleanups run (no temporary file is left behind)
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not the main thread
            previous = None
        try:
            status = self._main(args, prog_name, **extra)
        finally:
            if previous is not None:  # called in-process (a test runner): give it back
                signal.signal(signal.SIGTERM, previous)
        sys.exit(status if isinstance(status, int) else 0)

    def _main(self, args: Any, prog_name: str | None, **extra: Any) -> Any:
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `gradviz render` alone: its help
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            sys.exit(2)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "gradviz"
            click.echo(f"error: {visible_line(exc.format_message())} (see {command} --help)",
                       err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {visible_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:  # Ctrl-C or end of input at a prompt
            click.echo("error: interrupted", err=True)
            sys.exit(130)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C (exit status 143)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def visible_line(text: str) -> str:
    """``text`` as one line, its control characters shown (for ``error:`` lines)."""
    from gradviz.engine.format import visible
    return " ".join(visible(text).split())


@click.group(cls=_Group,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gradviz", message="gradviz %(version)s")
def main() -> None:
    """gradviz: see automatic differentiation.

    Draw computation graphs annotated with forward values and backward
    adjoints (gradviz render), walk backpropagation one node at a time in
    the terminal or as slides (gradviz step), and check derivative rules
    against finite differences (gradviz check).  Run `gradviz COMMAND --help`
    for each.

    Teaching the autograd lesson: gradviz lesson (its samples, section by
    section), cost (forward vs reverse accumulation, measured), explain (the
    chain rule as a sum over paths), plot (f and df/dx from the tape).
    """


def _graph_inputs(command: Any) -> Any:
    """EXPR and the options that give its values: shared by render and step."""
    for option in reversed([
        click.argument("expr", metavar="EXPR"),
        click.option("-v", "--value", "values", multiple=True, metavar="NAME=VALUE",
                     help="Value of a variable: a number, a list such as [1, 2], or arange(4), "
                          "ones(3), randn(3, 2), linspace(0, 1, 5). Repeatable."),
        click.option("--const", "constants", multiple=True, metavar="NAME",
                     help="Treat this variable as a constant (no gradient). Repeatable or "
                          "comma-separated."),
        click.option("--wrt", "wrt", multiple=True, metavar="NAMES",
                     help="Differentiate only with respect to these variables "
                          "(comma-separated); the rest is drawn as pruned."),
        click.option("--seed", type=click.IntRange(-2 ** 63, 2 ** 64 - 1), default=None,
                     help="Seed for randn (in -v values or the formula), for reproducible "
                          "diagrams."),
        click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
                     show_default=True, help="Floating type of the -v values."),
    ]):
        command = option(command)
    return command


# EXPR is a formula or a script by how it looks (a path ending in .py is run as Python);
# these say which, so a formula can never run a file.
_KIND_FORMULA = click.option("--formula", "kind", flag_value="formula", default=None,
                             help="EXPR is a formula: parse it, never run a file.")
_KIND_SCRIPT = click.option("--script", "kind", flag_value="script",
                            help="EXPR is a Python script (path[:NAME]) to run.")


def _print_notices(notices: Sequence[str]) -> None:
    """A loaded graph's notes for the user, one line each on stderr, control characters shown."""
    from gradviz.engine.format import visible
    for notice in notices:
        click.echo(f"note: {visible(notice)}", err=True)


def _is_script(expr: str, kind: str | None) -> bool:
    from gradviz.frontends.script import looks_like_script
    return looks_like_script(expr) if kind is None else kind == "script"


@main.command("render", help=RENDER_HELP, no_args_is_help=True)
@_graph_inputs
@click.option("-o", "--output", "path", default="graph.svg", show_default=True,
              metavar="PATH", help="Where to write the diagram; '-' for standard output.")
@click.option("-f", "--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot", "json"]),
              default=None, help="Output format (default: from the extension of -o, else svg).")
@click.option("--renderer", type=click.Choice(["auto", "system", "embedded"]), default="auto",
              show_default=True,
              help="Layout by system: Graphviz's dot program; embedded: Graphviz in "
                   "WebAssembly (no install needed); auto: system if dot is installed.")
@click.option("--show", type=click.Choice(["structure", "values", "all"]), default="all",
              show_default=True,
              help="What boxes show: the structure alone (formula before values), "
                   "forward values, or values and adjoints.")
@click.option("--edge-labels", type=click.Choice(["auto", "contribution", "jacobian", "none"]),
              default="auto", show_default=True,
              help="Edge labels: what flowed back along the edge, the shape of the local "
                   "Jacobian, or nothing (auto: contributions up to 60 boxes).")
@click.option("--rankdir", type=click.Choice(["BT", "TB", "LR", "RL"], case_sensitive=False),
              default="BT", show_default=True, help="Layout direction (BT: inputs at the bottom, "
                                                    "as in the lesson's figures).")
@click.option("--theme", type=click.Choice(["light", "dark", "print"]), default="light",
              show_default=True, help="Colours: print is grey-scale for paper and projectors.")
@click.option("--legend/--no-legend", default=None,
              help="Draw a legend of the node styles (default: yes, except with --slide).")
@click.option("--slide", is_flag=True,
              help="Slide preset: large type (legible when fitted to a 1920x1080 slide), "
                   "compact boxes, no legend; edge labels kept.")
@click.option("--font-size", type=click.FloatRange(4, 200), default=None, metavar="PT",
              help="Size of the boxes' text in points (default 11, 22 with --slide); "
                   "titles and labels scale with it.")
@click.option("--dpi", type=click.FloatRange(10, 2400), default=192, show_default=True,
              help="Resolution of PNG output (PNG and PDF are made in-process from the SVG).")
@click.option("--roll", is_flag=True, help="Roll repeated runs of a loop body of up to 8 ops "
                                           "(b = b * 2, or an RNN cell) into one box marked ×N.")
@click.option("--group", is_flag=True,
              help="Scripts: draw the boxes made inside each call of one of the script's "
                   "functions as a labelled cluster.")
@click.option("--collapse", "collapse", multiple=True, metavar="NAME",
              help="Scripts: draw each call of the function NAME as one box (implies --group). "
                   "Repeatable or comma-separated.")
@click.option("--max-nodes", type=click.IntRange(2, 10_000), default=400, show_default=True,
              help="Beyond this many boxes the graph is rolled, then trimmed.")
@click.option("--precision", type=click.IntRange(1, 12), default=4, show_default=True,
              help="Significant digits of the numbers shown.")
@click.option("--max-elems", type=click.IntRange(2, 100), default=6, show_default=True,
              help="Elements shown per array row before the middle is elided.")
@click.option("--title", default=None, help="Title above the diagram (default: EXPR).")
@click.option("--mode", type=click.Choice(["reverse", "forward"]), default="reverse",
              show_default=True,
              help="reverse: adjoints from one backward pass; forward: the tangents one "
                   "forward sweep pushes up from the --wrt input.")
@click.option("--direction", type=click.IntRange(min=0), default=None, metavar="K",
              help="Forward mode: push the tangent of component K of the input alone "
                   "(default: every component at once, direction ones).")
@_KIND_FORMULA
@_KIND_SCRIPT
def render_command(expr: str, values: tuple[str, ...], constants: tuple[str, ...],
                   wrt: tuple[str, ...], seed: int | None, dtype: str, path: str,
                   fmt: str | None, renderer: str, show: str, edge_labels: str, rankdir: str,
                   theme: str, legend: bool | None, slide: bool, font_size: float | None,
                   dpi: float, roll: bool, group: bool, collapse: tuple[str, ...],
                   max_nodes: int, precision: int, max_elems: int, title: str | None,
                   kind: str | None, mode: str, direction: int | None) -> None:
    _run(lambda: _render(expr, values, constants, wrt, seed, dtype, path, fmt, renderer, kind,
                         dict(show=show, edge_labels=edge_labels, rankdir=rankdir.upper(),
                              theme=theme, legend=legend, roll=roll, max_nodes=max_nodes,
                              group=group or bool(collapse), collapse=split_names(collapse),
                              precision=precision, max_elems=max_elems,
                              title=title if title is not None else _title(expr),
                              slide=slide, font_size=font_size, mode=mode,
                              direction=direction), dpi))


STEP_HELP = """Step through backpropagation one node at a time.

\b
EXPR is a formula or a script, as for `gradviz render` (same -v, --const,
--wrt, --seed, --dtype).  The reverse pass runs once, with the engine's own
backward algorithm; each step shows the node visited, the adjoint it received,
and for each input the chain rule with numbers: what it sends back, and the
input's adjoint so far.  A table gives every node's status (done, current,
pending with a partial adjoint, not reached, pruned and why) and the saved
values freed as the pass goes.

In a terminal the stepper is interactive (press ? for the keys: n/p next and
back, j jump, b breakpoint, c continue, q quit).  Piped, or with --no-pause,
it prints every step as plain text; --at K prints step K alone.  --frames DIR
writes one SVG per step, all with the same layout, and an index.html that
plays them (arrow keys, slider): slides for a lecture.

\b
Examples:
  gradviz step "dot(x, x)" -v "x=arange(4)"
  gradviz step "sum(x * x)" -v x="[1, 2, 3]" --no-pause
  gradviz step "y = x * x; u = detach(y); z = u * x; sum(z)" -v "x=arange(4)" --at -1
  gradviz step "norm(X @ w - y) ** 2" -v X="randn(3, 2)" -v w="[1, -1]" \\
      -v y="[0, 1, 2]" --const X,y --seed 0 --frames slides/
  gradviz step "sin(x) * x" -v x="[1, 2]" --mode forward --wrt x
"""


@main.command("step", help=STEP_HELP, no_args_is_help=True)
@_graph_inputs
@click.option("--no-pause", is_flag=True,
              help="Print every step as plain text instead of waiting for keys.")
@click.option("--at", "at", type=int, default=None, metavar="K",
              help="Print step K alone (1 is the first; negative counts from the end).")
@click.option("--frames", "frames", default=None, metavar="DIR",
              help="Write step-000.svg ... and index.html (a self-contained player) into DIR.")
@click.option("--mode", type=click.Choice(["reverse", "forward"]), default="reverse",
              show_default=True,
              help="reverse: adjoints flow down from the output (backpropagation); forward: "
                   "tangents flow up from one input component per sweep (needs --wrt).")
@click.option("--direction", type=click.IntRange(min=0), default=None, metavar="K",
              help="Forward mode: sweep only input component K (0-based); default every one.")
@click.option("--precision", type=click.IntRange(1, 12), default=4, show_default=True,
              help="Significant digits of the numbers shown.")
@click.option("--max-elems", type=click.IntRange(2, 100), default=6, show_default=True,
              help="Elements shown per array row before the middle is elided.")
@click.option("--theme", type=click.Choice(["light", "dark", "print"]), default="light",
              show_default=True, help="Colours of the --frames slides.")
@click.option("--renderer", type=click.Choice(["auto", "system", "embedded"]), default="auto",
              show_default=True, help="Graphviz used to lay out --frames (see render).")
@_KIND_FORMULA
@_KIND_SCRIPT
def step_command(expr: str, values: tuple[str, ...], constants: tuple[str, ...],
                 wrt: tuple[str, ...], seed: int | None, dtype: str, no_pause: bool,
                 at: int | None, frames: str | None, mode: str, direction: int | None,
                 precision: int, max_elems: int, theme: str, renderer: str,
                 kind: str | None) -> None:
    _run(lambda: _step(expr, values, constants, wrt, seed, dtype, no_pause, at, frames, mode,
                       direction, precision, max_elems, theme, renderer, kind))


def _step(expr: str, values: Sequence[str], constants: Sequence[str], wrt: Sequence[str],
          seed: int | None, dtype: str, no_pause: bool, at: int | None, frames: str | None,
          mode: str, direction: int | None, precision: int, max_elems: int, theme: str,
          renderer: str, kind: str | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape

    from gradviz.frontends.load import load
    from gradviz.stepper import _is_terminal

    loaded = load(expr, values, constants=constants, wrt=wrt, seed=seed, dtype=dtype,
                  script=None if kind is None else kind == "script")
    err = Console(stderr=True, highlight=False)
    _print_notices(loaded.notices)
    if at == 0:
        raise GradvizError("--at counts from 1 (the first step); -1 is the last")
    # Options that would be silently ignored together are an error instead.
    if frames is not None and at is not None:
        raise GradvizError("--frames writes every step; --at prints one: give one of them")
    if frames is not None and mode == "forward":
        raise GradvizError("--frames draws the reverse pass; forward mode prints its sweeps "
                           "(drop --frames, or --mode forward)")
    if direction is not None and mode != "forward":
        raise GradvizError("--direction picks a forward-mode sweep: add --mode forward --wrt NAME")
    if frames == "-":
        raise GradvizError("--frames needs a folder (the frames are several files), not '-'")
    k = None if at is None else at - 1 if at > 0 else at
    if mode == "forward":
        from gradviz.stepper.forward import ForwardSession, forward_transcript
        if not loaded.wrt or len(loaded.wrt) != 1:
            raise GradvizError("--mode forward pushes tangents from one input: name it with "
                               "--wrt NAME")
        session = ForwardSession(loaded.output, loaded.wrt[0], direction=direction)
        text = forward_transcript(session, precision, max_elems) if k is None else \
            session.step_text(k, precision, max_elems)
        click.echo(text)
        return
    from gradviz.stepper.session import Session
    from gradviz.stepper.text import Formatter, step_text, transcript

    # The CLI owns this graph: free saved values as backward() does, to show it.
    session = Session(loaded.output, wrt=loaded.wrt, retain_graph=False, kept=loaded.kept)
    fmt = Formatter(session, precision, max_elems)
    if k is not None and not -len(session) <= k < len(session):
        raise GradvizError(f"--at {at}: this pass has {len(session)} steps (1 to {len(session)}, "
                           f"or -1 to -{len(session)} from the end)")
    if frames is not None:
        from gradviz.stepper.frames import write_frames
        written = write_frames(session, frames, theme=theme, renderer=renderer,
                               precision=precision, max_elems=max_elems, console=err)
        err.print(f"[green]wrote[/] {escape(frames)} ({written} frames and index.html)")
        return
    if k is not None:
        click.echo(step_text(session, k, fmt))
    elif no_pause or not _is_terminal():
        click.echo(transcript(session, precision, max_elems))
    else:
        from gradviz.stepper.interactive import run
        from gradviz.stepper.screen import Viewer
        run(Viewer(session, fmt), Console(highlight=False))


CHECK_HELP = """Check derivatives against central finite differences (float64).

\b
TARGET is either
  * a formula, e.g.  "sin(x) * y"  with its inputs given by -v, or
  * path/to/ops.py:NAME, where NAME is an op made with gradviz.defop (or
    any function of tensors); the -v values are its inputs, in order.

Both reverse mode (the VJPs) and forward mode (the JVPs) are compared with
(f(x + h) - f(x - h)) / 2h, element by element.  Exit status 1 if a rule
disagrees: the way to catch a backward rule written wrong.

\b
Examples:
  gradviz check "tanh(x) * y" -v x="[0.5, -1]" -v y="[2, 3]"
  gradviz check samples/my_ops.py:cube -v x="[1, 2, 3]"
"""


@main.command("check", help=CHECK_HELP, no_args_is_help=True)
@click.argument("target", metavar="TARGET")
@click.option("-v", "--value", "values", multiple=True, metavar="NAME=VALUE",
              help="An input value (number, list, or constructor such as randn(3)). Repeatable.")
@click.option("--seed", type=click.IntRange(-2 ** 63, 2 ** 64 - 1), default=0,
              show_default=True, help="Seed for randn values.")
@click.option("--eps", type=click.FloatRange(min=0, max=1, min_open=True), default=1e-6,
              show_default=True, callback=lambda ctx, param, value: _finite(value, "--eps"),
              help="Finite-difference step (positive, at most 1).")
@_KIND_FORMULA
@_KIND_SCRIPT
def check_command(target: str, values: tuple[str, ...], seed: int, eps: float,
                  kind: str | None) -> None:
    _run(lambda: _check(target, values, seed, eps, kind))


def _finite(value: float, option: str) -> float:
    import math
    if not math.isfinite(value):  # click's FloatRange lets nan through
        raise click.BadParameter(f"{value} is not a finite number", param_hint=option)
    return value


def _check(target: str, values: Sequence[str], seed: int, eps: float,
           kind: str | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from gradviz.engine.check import check
    from gradviz.engine.tensor import Tensor, manual_seed
    from gradviz.frontends.program import as_function, make_value, parse_assignment, unique_values
    from gradviz.frontends.script import run_script_object, script_failure, split_target

    import numpy as np

    manual_seed(seed)
    pairs = unique_values([parse_assignment(v) for v in values])
    if not pairs:
        raise GradvizError("give the inputs with -v NAME=VALUE (e.g. -v x=\"[0.5, 1]\")")
    inputs = [make_value(n, v, requires_grad=False, dtype=np.float64) for n, v in pairs.items()]
    names = list(pairs)
    script = _is_script(target, kind)
    if script:
        what = split_target(target)[1] or target
        fn = _script_function(what, run_script_object(target), len(inputs))
    else:
        what = f"`{target}`"
        fn = as_function(target, names)

    def function(*tensors: Tensor) -> Tensor:
        # check() calls fn many times (once per finite difference); test the result here
        # so the message names what was returned, not where check() tripped over it.
        out = fn(*tensors)
        if not isinstance(out, Tensor):
            raise GradvizError(f"{what} returned {type(out).__name__} {_short_repr(out)}, "
                               "not a gradviz tensor")
        return out

    try:
        result = check(function, *inputs, eps=eps, seed=seed)
    except GradvizError:
        raise
    except Exception as exc:
        if not script:  # expressions turn their own errors into ours: this is a bug
            raise
        # The user's op (its forward or one of its rules) raised: show their traceback.
        raise script_failure(exc, split_target(target)[0], target)
    console = Console(highlight=False)
    table = Table(box=None, header_style="bold")
    for col in ("input", "reverse (VJP) max error", "forward (JVP) max error", ""):
        table.add_column(col)
    kink_notes = []
    for i, name in enumerate(names):
        kinks = result.kinks[i] if result.kinks else {}
        every = len(kinks) == inputs[i].data.size
        forward = f"{result.forward_error[i]:.3g}" if result.forward_available else "n/a"
        verdict = "[green]ok[/]" if result.passed[i] else "[red]WRONG[/]"
        if every:
            verdict, forward = "[yellow]at a kink[/]", "—"
        table.add_row(name, "—" if every else f"{result.reverse_error[i]:.3g}", forward, verdict)
        flat = inputs[i].data.reshape(-1)
        for k, ops in kinks.items():
            where = name if inputs[i].data.size == 1 else \
                f"{name}[{', '.join(map(str, np.unravel_index(k, inputs[i].data.shape)))}]"
            kink_notes.append(f"{where} = {flat[k]:.6g}: at a kink of {', '.join(ops)}, "
                              "not differentiable here (finite differences straddle it), "
                              "so it is left out of the comparison")
    console.print(table)
    for note in kink_notes:
        console.print(f"[yellow]{escape(note)}[/]", soft_wrap=True)
    if not result.forward_available:
        console.print("[dim]forward (JVP): n/a, an op of the graph has no JVP rule[/]")
    projected = [n for n, how in zip(names, result.methods) if how == "projection"]
    if projected:
        from gradviz.engine.check import ELEMENTWISE_LIMIT, PROJECTIONS
        console.print(f"[dim]{', '.join(projected)}: checked by {PROJECTIONS} random "
                      f"projections ⟨u, J v⟩ (over {ELEMENTWISE_LIMIT} elements); the others "
                      "element by element[/]" if len(projected) < len(names) else
                      f"[dim]checked by {PROJECTIONS} random projections ⟨u, J v⟩ (over "
                      f"{ELEMENTWISE_LIMIT} elements), not element by element[/]")
    if not result.ok:
        console.print("[red]derivative rules disagree with finite differences[/]")
        sys.exit(1)
    left_out = sum(len(k) for k in result.kinks)
    console.print("[green]derivatives agree with finite differences[/]" + (
        f" wherever they exist ({plural(left_out, 'element')} at a kink left out)"
        if left_out else ""), soft_wrap=True)


def _script_function(name: str, obj: Any, count: int) -> Any:
    """``obj`` (the op or function NAME of ``path.py:NAME``), checked to take ``count`` inputs.

    A wrong count is a mistake in the -v list, not in the function: it is told
    apart before calling, since a TypeError from the call could come from anywhere inside.
    """
    import inspect

    from gradviz.engine.op import Op

    try:
        signature = inspect.signature(obj.forward if isinstance(obj, Op) else obj)
    except (TypeError, ValueError):  # a builtin or C function: nothing to inspect
        return obj
    try:
        signature.bind(*range(count))
    except TypeError as exc:
        positional = [p for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        least = sum(p.default is p.empty for p in positional)
        most = float("inf") if any(p.kind == p.VAR_POSITIONAL
                                   for p in signature.parameters.values()) else len(positional)
        if least <= count <= most:  # e.g. a required keyword-only parameter
            raise GradvizError(f"{name} cannot be called with {plural(count, 'input')}: "
                               f"{exc}") from None
        takes = (f"{least}" if least == most else f"at least {least}" if most == float("inf")
                 else f"{least} to {most}")
        raise GradvizError(f"{name} takes {takes} input{'' if takes == '1' else 's'}, "
                           f"got {plural(count, '-v value')}") from None
    return obj


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _run(job: Any) -> None:
    """Run a command; errors the user can fix become one line and exit status 2.

    Running out of memory is one line too; so is an interruption (exit status 130,
    as the shell's).  Anything else is a bug of gradviz's: one line saying so,
    or its traceback with GRADVIZ_DEBUG=1.
    """
    try:
        job()
    except ScriptError as exc:
        from gradviz.frontends.script import script_traceback
        tb = script_traceback(exc)
        if tb:
            click.echo(tb.rstrip(), err=True)
        _fail(str(exc))
    except GradvizError as exc:
        _fail(str(exc))
    except MemoryError:
        _fail("out of memory: make the inputs smaller (fewer elements, fewer steps)")
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated)
        _fail("terminated" if terminated else "interrupted", status=143 if terminated else 130)
    except RecursionError:
        _fail("the graph is nested too deeply for Python's recursion limit")
    except Exception as exc:
        if os.environ.get("GRADVIZ_DEBUG"):
            raise
        _fail(f"internal error, a bug in gradviz (please report it; GRADVIZ_DEBUG=1 shows "
              f"the traceback): {type(exc).__name__}: {exc}")


def _fail(message: str, status: int = 2) -> None:
    """Print ``error: message`` (its first line whole, further lines kept: a caret) and exit."""
    from gradviz.engine.format import visible
    try:
        click.echo(f"error: {visible(message).rstrip()}", err=True)
    except (OSError, ValueError):  # stderr closed or full: the status still says it
        pass
    sys.exit(status)


def _render(expr: str, values: Sequence[str], constants: Sequence[str], wrt: Sequence[str],
            seed: int | None, dtype: str, path: str, fmt: str | None, renderer: str,
            kind: str | None, options: dict[str, Any], dpi: float = 192.0) -> None:
    from rich.console import Console
    from rich.markup import escape

    from gradviz.engine.format import visible
    from gradviz.frontends.load import load
    from gradviz.render import draw, format_from_path, write_atomic
    from gradviz.render.backends import resolve_renderer

    out_fmt = format_from_path(path, fmt)
    chosen = resolve_renderer(renderer, out_fmt) if out_fmt != "dot" else renderer
    to_stdout = path == "-" or _is_stdout(path)
    # The diagram owns standard output then: the summary goes to stderr.
    console = Console(stderr=to_stdout, highlight=False)
    with _stdout_to_stderr(to_stdout):  # a script's prints must not land in the diagram
        loaded = load(expr, values, constants=constants, wrt=wrt, seed=seed, dtype=dtype,
                      group=options["group"], script=None if kind is None else kind == "script")
    _print_notices(loaded.notices)
    output, named = loaded.output, loaded.variables
    if options["mode"] == "forward" and (not loaded.wrt or len(loaded.wrt) != 1):
        raise GradvizError("--mode forward pushes tangents from one input: name it with "
                           "--wrt NAME")
    if options["direction"] is not None and options["mode"] != "forward":
        raise GradvizError("--direction applies to --mode forward")
    # Every adjoint drawn comes from the drawing's own pass from `output`.
    drawing = draw(output, wrt=loaded.wrt, kept=loaded.kept, **options)
    for warning in drawing.warnings:
        console.print(f"[yellow]warning:[/] {escape(visible(warning))}", soft_wrap=True)
    data = drawing.pipe(out_fmt, chosen, dpi)
    if to_stdout:
        _write_stdout(data)
    else:
        write_atomic(path, data)
    _summary(console, drawing, output, named, path, out_fmt, chosen,
             precision=options["precision"], max_elems=options["max_elems"])


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """Send standard output to stderr meanwhile (``print`` and child processes alike)."""
    if not active:
        yield
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptors to move (an embedding host): Python's stdout only
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _write_stdout(data: bytes) -> None:
    """Write the diagram to standard output, all of it or an error saying how much went."""
    sys.stdout.flush()
    stream = sys.stdout.buffer
    written = 0
    try:
        try:
            fd = stream.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None  # not a real file (a test runner's buffer)
        if fd is None:
            stream.write(data)
            stream.flush()
            return
        view = memoryview(data)
        while written < len(data):
            written += os.write(fd, view[written:])
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            # Python would complain again when it flushes stdout at exit: point it elsewhere.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            why = "the reader closed it (a pipe into head, say)"
        else:
            why = exc.strerror or str(exc)
        raise RenderError(f"cannot write standard output: {why}; {written} of {len(data)} "
                          "bytes written") from None


def _is_stdout(path: str) -> bool:
    """Whether ``path`` is this process's standard output (``-o /dev/stdout``).

    Written like ``-o -``: in place, and with the summary on stderr so it does
    not end up inside the diagram.
    """
    try:
        there, out = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no such file, or stdout is not a real file
        return False
    return (there.st_dev, there.st_ino) == (out.st_dev, out.st_ino)


def _title(expr: str) -> str:
    return expr if len(expr) <= 120 else expr[:117] + "..."


def _summary(console: Any, drawing: Any, output: Any, named: dict, path: str, fmt: str,
             renderer: str, *, precision: int = 4, max_elems: int = 6) -> None:
    """What the terminal shows: the output's value, each input's gradient, where the file went.

    Small arrays print as PyTorch prints them; longer ones are shortened as the boxes
    shorten them (``--precision``, ``--max-elems``), so a 400-element input is one line.
    """
    import numpy as np
    from rich.markup import escape
    from rich.table import Table

    from gradviz.engine.format import array_str, visible
    from gradviz.engine.tensor import Tensor
    from gradviz.render.values import format_array

    def text(a: Any) -> str:
        arr = np.asarray(a)
        if arr.ndim and max(arr.shape) > max_elems or arr.ndim > 2:
            return escape(format_array(arr, precision, max_elems))
        return escape(array_str(arr, indent=0).strip())

    def shown(name: str) -> str:  # a label or path, its control characters made visible
        return escape(visible(name))

    name = output.label or "out"
    forward = drawing.prepared is not None and drawing.prepared.mode == "forward"
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("")
    table.add_column("value")
    # Forward mode: each tensor's tangent along the direction, the output's included.
    table.add_column(shown(f"∂·/∂{drawing.prepared.direction}" if forward else f"∂{name}/∂·"))
    tangent = drawing.adjoint_of(output) if forward else None
    table.add_row(f"[bold]{shown(name)}[/]", text(output.data),
                  "" if tangent is None else text(tangent))
    for key, t in named.items():
        # Only what is drawn, with the adjoints of the drawing's own pass.
        if not isinstance(t, Tensor) or t is output or t not in drawing.tape:
            continue
        adjoint = drawing.adjoint_of(t)
        grad = "—" if adjoint is None else text(adjoint)
        if not t.requires_grad:
            grad = "constant"
        table.add_row(shown(key), text(t.data), grad)
    for note in drawing.notes:
        console.print(f"[dim]{shown(note)}[/]", soft_wrap=True)
    console.print(table)
    where = "standard output" if path == "-" else path
    console.print(f"[green]wrote[/] {shown(where)} ({fmt}, {len(drawing.view.nodes)} nodes, "
                  f"{renderer} renderer)")


# -- teaching the lesson: gradviz lesson, cost, explain, plot (library: gradviz.teach) ------

LESSON_HELP = """List the lesson's sections and samples, or run one sample.

\b
Without NAME: every section of the lesson (07 自动求导) with its sample
scripts, what each shows (from the script's own docstring), the lesson's
Q&A questions each answers, and the commands that show what no script does.

With NAME (a number such as 5, or a name such as control_flow): run that
sample, printing what PyTorch would, then print the `gradviz render` and
`gradviz step` commands that draw and step its graph.  ARGS go to the script
(e.g. a seed).  --render DIR also writes its diagrams there.

\b
Examples:
  gradviz lesson
  gradviz lesson 05 7
  gradviz lesson detach --render diagrams/
"""


@main.command("lesson", help=LESSON_HELP)
@click.argument("name", required=False, metavar="[NAME]")
@click.argument("args", nargs=-1, metavar="[ARGS]...")
@click.option("--render", "folder", default=None, metavar="DIR",
              help="Also write the sample's diagrams (SVG) into DIR.")
@click.option("--renderer", type=click.Choice(["auto", "system", "embedded"]), default="auto",
              show_default=True, help="Graphviz to lay out the diagrams with (see render).")
def lesson_command(name: str | None, args: tuple[str, ...], folder: str | None,
                   renderer: str) -> None:
    _run(lambda: _lesson(name, args, folder, renderer))


def _lesson(name: str | None, args: Sequence[str], folder: str | None, renderer: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    from gradviz.teach import lesson

    console = Console(highlight=False, soft_wrap=True)
    if name is None:
        if args or folder:
            raise GradvizError("ARGS and --render need a sample NAME (gradviz lesson NAME ...)")
        _lesson_outline(console, lesson)
        return
    sample = lesson.find(name)
    console.print(f"[bold]{sample.filename}[/] · {escape(sample.reference)}: "
                  f"{escape(sample.summary)}")
    console.rule(style="dim")
    sys.stdout.flush()
    ran = lesson.run(sample, args)  # the script prints straight to standard output
    sys.stdout.flush()
    console.rule(style="dim")
    for question, answer in sample.answers:
        console.print(f"[bold]{question}[/] {escape(answer)}")
    console.print("Draw and step its graph:")
    for command in lesson.commands(sample):
        console.print(f"  {escape(command)}")
    if folder is not None:
        for path in lesson.render(sample, ran, folder, renderer):
            console.print(f"[green]wrote[/] {escape(str(path))}")


def _lesson_outline(console: Any, lesson: Any) -> None:
    from rich.markup import escape

    everything = lesson.samples()
    console.print("[bold]The autograd lesson (07 自动求导), from the terminal.[/]  "
                  "Run a sample: gradviz lesson NAME [ARGS]")
    console.print(f"[dim]samples: {escape(str(lesson.samples_folder()))}[/]")
    for section in lesson.SECTIONS:
        console.print(f"\n[bold]{section.number}. {escape(section.title)}[/] "
                      f"({escape(section.original)})")
        if section.number == "4":
            answers = sorted(((q, a, s) for s in everything for q, a in s.answers),
                             key=lambda qas: int(qas[0][1:]))
            for question, answer, s in answers:
                console.print(f"  {question}  {escape(answer)}  [dim]→ gradviz lesson "
                              f"{s.number}[/]")
        # Sections in the lesson's order; exercises by their own numbers.
        here = sorted((s for s in everything if s.section == section.number),
                      key=lambda s: (s.reference.startswith("Exercise"),
                                     [int(p) for p in s.reference.split()[1].split(".")]))
        for s in here:
            where = "" if s.reference == f"Section {section.number}" else \
                f"{s.reference.lower()}: "
            usage = f" {s.usage}" if s.usage else ""
            console.print(f"  {s.filename:<30} {escape(where + s.summary)}"
                          f"[dim]{escape(usage)}[/]")
        for command, what in section.commands:
            console.print(f"  [dim]$[/] {escape(command)}\n      [dim]{escape(what)}[/]")


def _teach_graph(expr: str, values: Sequence[str], constants: Sequence[str],
                 wrt: Sequence[str], seed: int | None, dtype: str) -> tuple[Any, list, list[str]]:
    """Load EXPR as render does; return its output, the inputs to differentiate with respect
    to (--wrt, else every variable that requires grad) and their names, and the kept values."""
    from gradviz.engine.tensor import Tensor
    from gradviz.frontends.load import load

    loaded = load(expr, values, constants=constants, wrt=wrt, seed=seed, dtype=dtype)
    _print_notices(loaded.notices)
    named = loaded.variables
    if loaded.wrt is not None:
        inputs = loaded.wrt
    else:
        inputs = [t for t in named.values() if isinstance(t, Tensor)
                  and t.is_leaf and t.requires_grad]
    if not inputs:
        raise GradvizError("no variable requires grad: nothing to differentiate")
    names = [next(k for k, t in named.items() if t is x) for x in inputs]
    return loaded, inputs, names


COST_HELP = """Forward versus reverse accumulation, measured on the tape.

\b
For f: R^n -> R^m (n input components, m output components) the full
Jacobian takes n forward sweeps (one per input direction) or m reverse
passes (one per output component).  Both are run on the same tape and
compared: sweeps, derivative-rule evaluations (JVPs / VJPs), the most bytes
each mode held at once (reverse mode keeps what the forward pass saved for
it; forward mode only the tangents of the current sweep), and the wall time.
The two Jacobians are checked equal; one line says which mode is cheaper
here, and why.

\b
Examples:
  gradviz cost "sum(x * x)" -v x="ones(1000)"                 # R^1000 -> R: reverse wins
  gradviz cost "x * c" -v x=0.5 -v c="ones(1000)" --const c   # R -> R^1000: forward wins
  gradviz cost "A @ x" -v A="randn(30, 30)" -v x="randn(30)" --const A --plot cost.svg
"""


@main.command("cost", help=COST_HELP, no_args_is_help=True)
@_graph_inputs
@click.option("--repeats", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Timed runs of each mode; the best is kept.")
@click.option("--plot", "plot_path", default=None, metavar="FILE",
              help="Also draw time against n for both modes (SVG, PNG or PDF; needs matplotlib).")
def cost_command(expr: str, values: tuple[str, ...], constants: tuple[str, ...],
                 wrt: tuple[str, ...], seed: int | None, dtype: str, repeats: int,
                 plot_path: str | None) -> None:
    _run(lambda: _cost(expr, values, constants, seed, dtype, wrt, repeats, plot_path))


def _cost(expr: str, values: Sequence[str], constants: Sequence[str], seed: int | None,
          dtype: str, wrt: Sequence[str], repeats: int, plot_path: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from gradviz.render.values import format_bytes
    from gradviz.teach import cost
    from gradviz.teach.plot import plot_format, require_matplotlib

    if plot_path is not None:  # before the measuring, which can take a while
        plot_format(plot_path)
        require_matplotlib("--plot")
    loaded, inputs, names = _teach_graph(expr, values, constants, wrt, seed, dtype)
    output = loaded.output
    report = cost.measure(output, inputs, repeats=repeats, kept=loaded.kept)
    console = Console(highlight=False, soft_wrap=True)
    shapes = ", ".join(f"{n}{list(x.data.shape) if x.data.ndim else ''}"
                       for n, x in zip(names, inputs))
    console.print(f"f: R^{report.n} -> R^{report.m}: n = {plural(report.n, 'input component')} "
                  f"({escape(shapes)}), m = {plural(report.m, 'output component')}")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for heading in ("", "forward (tangents up)", "reverse (adjoints down)"):
        table.add_column(heading, justify="right" if heading else "left")
    f, r = report.forward, report.reverse
    table.add_row("sweeps for the Jacobian", f"{f.sweeps} (n)", f"{r.sweeps} (m)")
    table.add_row("rule evaluations", plural(f.evaluations, "JVP"), plural(r.evaluations, "VJP"))
    table.add_row("most bytes held", f"{format_bytes(f.held_bytes)} tangents",
                  f"{format_bytes(r.held_bytes)}, {format_bytes(r.saved_bytes)} saved")
    table.add_row("wall time", cost.format_seconds(f.seconds), cost.format_seconds(r.seconds))
    table.add_row("time per sweep", cost.format_seconds(f.seconds_per_sweep),
                  cost.format_seconds(r.seconds_per_sweep))
    console.print(table)
    same = "equal" if report.jacobians_equal else "[red]DIFFERENT[/]"
    console.print(f"Jacobians ({report.m} x {report.n}): {same} "
                  f"(max difference {report.max_difference:.3g})")
    crossover = report.crossover_n
    console.print(f"measured crossover: with m = {report.m}, forward mode costs as much as "
                  f"reverse at n ≈ {crossover:.2g}" if crossover < 10 else
                  f"measured crossover: with m = {report.m}, forward mode costs as much as "
                  f"reverse at n ≈ {crossover:,.0f}")
    console.print(f"[bold]{escape(report.reason)}[/]")
    if plot_path is not None:
        from gradviz.teach.plot import cost_chart
        ks, forward_times, reverse_time = cost.time_against_n(output, inputs, repeats=repeats,
                                                              kept=loaded.kept)
        cost_chart(plot_path, ks, forward_times, reverse_time, report.m, title=expr)
        console.print(f"[green]wrote[/] {escape(plot_path)}")
    if not report.jacobians_equal:
        sys.exit(1)


PLOT_HELP = """Plot f and df/dx (from the tape) of an elementwise function.

\b
df/dx comes from the tape: one backward pass seeded with ones, as the
lesson's y.sum().backward(); no derivative is ever written by hand.  EXPR
must be elementwise (f(x)[i] depends on x[i] alone), which is checked.
Charts need matplotlib (pip install 'gradviz[plot]'); --terminal draws with
characters instead, and a .csv file gets the numbers.

\b
Examples:
  gradviz plot "sin(x)" --x -20:20:0.1 -o sin.svg
  gradviz plot "relu(x) * tanh(x)" --x -3:3:0.05 --terminal
  gradviz plot "x ** 3" --x -2:2:0.5 -o cube.csv
"""


@main.command("plot", help=PLOT_HELP, no_args_is_help=True)
@click.argument("expr", metavar="EXPR")
@click.option("--x", "x_range", required=True, metavar="START:STOP:STEP",
              help="The grid: arange(START, STOP, STEP), STOP excluded.")
@click.option("-o", "--output", "path", default="plot.svg", show_default=True, metavar="FILE",
              help="The chart (.svg, .png, .pdf) or the numbers (.csv).")
@click.option("--terminal", is_flag=True, help="Draw the chart in the terminal instead.")
def plot_command(expr: str, x_range: str, path: str, terminal: bool) -> None:
    _run(lambda: _plot(expr, x_range, path, terminal))


def _plot(expr: str, x_range: str, path: str, terminal: bool) -> None:
    import numpy as np
    from rich.console import Console
    from rich.markup import escape

    from gradviz.teach import plot

    if not terminal:  # fail before computing: a wrong extension, matplotlib missing
        if plot.plot_format(path) != "csv":
            plot.require_matplotlib(f"gradviz plot -o {path} (or draw with --terminal)")
    curve = plot.curve_of(expr, x_range)
    console = Console(highlight=False, soft_wrap=True)
    v = curve.variable
    if terminal:
        console.print(f"[bold]{escape(expr)}[/]   * f({v})   + df/d{v} (from the tape)   "
                      "# both")
        for line in plot.terminal_chart(curve):
            console.print(escape(line))
    else:
        plot.chart(curve, path, expr)
        console.print(f"[green]wrote[/] {escape(path)}")
    with np.errstate(all="ignore"):
        console.print(f"{len(curve.x)} points from {curve.x[0]:.4g} to {curve.x[-1]:.4g}; "
                      f"f in [{np.nanmin(curve.f):.4g}, {np.nanmax(curve.f):.4g}], "
                      f"df/d{v} in [{np.nanmin(curve.dfdx):.4g}, {np.nanmax(curve.dfdx):.4g}]")


EXPLAIN_HELP = """The chain rule written out: a sum over paths, checked.

\b
For a scalar output and one input (one element of it, --index, for a
vector), every path from the input to the output is listed with the value
of each factor (each local derivative, from the op's own rule) and the
path's product; their sum is checked against the adjoint the backward pass
computes.  Reverse accumulation gets the same sum without listing paths:
each node's adjoint adds its consumers' adjoints times the local
derivatives, so the part that paths share near the output is multiplied
once; that form is printed too, and alone beyond 32 paths.

\b
Examples:
  gradviz explain "y = x * x; sin(y) * y" -v x=0.5 --wrt x
  gradviz explain "sum(x * x)" -v x="[1, 2, 3]" --wrt x --index 1
"""


@main.command("explain", help=EXPLAIN_HELP, no_args_is_help=True)
@_graph_inputs
@click.option("--index", "index", default=None, metavar="K",
              help="Which element of a vector input (flat K, or I,J for a matrix).")
@click.option("--precision", type=click.IntRange(1, 12), default=4, show_default=True,
              help="Significant digits of the numbers shown.")
def explain_command(expr: str, values: tuple[str, ...], constants: tuple[str, ...],
                    wrt: tuple[str, ...], seed: int | None, dtype: str, index: str | None,
                    precision: int) -> None:
    _run(lambda: _explain(expr, values, constants, seed, dtype, wrt, index, precision))


def _flat_index(text: str | None, shape: tuple, name: str) -> int:
    import numpy as np

    size = int(np.prod(shape, dtype=np.int64))
    if text is None:
        if size == 1:
            return 0
        raise GradvizError(f"{name} has {size} elements: choose one with --index "
                           f"(0 to {size - 1}{', or I,J' if len(shape) > 1 else ''})")
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise GradvizError(f"--index expects an integer K or I,J; got {text!r}") from None
    if len(parts) == 1:
        return parts[0] if 0 <= parts[0] < size else _index_error(text, shape, name)
    if len(parts) != len(shape) or not all(0 <= p < n for p, n in zip(parts, shape)):
        return _index_error(text, shape, name)
    return int(np.ravel_multi_index(parts, shape))


def _index_error(text: str, shape: tuple, name: str) -> int:
    raise GradvizError(f"--index {text} is outside {name}, of shape {list(shape)}")


def _explain(expr: str, values: Sequence[str], constants: Sequence[str], seed: int | None,
             dtype: str, wrt: Sequence[str], index: str | None, precision: int) -> None:
    from rich.console import Console
    from rich.markup import escape

    from gradviz.teach.paths import MAX_LISTED, explain

    loaded, inputs, names = _teach_graph(expr, values, constants, wrt, seed, dtype)
    if len(inputs) > 1:
        raise GradvizError(f"choose one input with --wrt (one of {', '.join(names)})")
    x = inputs[0]
    result = explain(loaded.output, x, _flat_index(index, x.data.shape, names[0]),
                     kept=loaded.kept)
    console = Console(highlight=False, soft_wrap=True)

    def num(v: float) -> str:
        return f"{v:.{precision}g}"

    src, out = result.names[result.source], result.names[result.target]
    console.print(f"[bold]∂{escape(out)}/∂{escape(src)}[/] for {escape(expr)}, "
                  f"at {escape(src)} = {num(float(x.data.reshape(-1)[result.source[1]]))}")
    for formula in result.formulas:
        console.print(f"  {escape(formula)}")
    count = result.path_count
    console.print(f"\n{count} path{'s' if count != 1 else ''} from {escape(src)} to "
                  f"{escape(out)}; each contributes the product of the local derivatives "
                  "along it:")
    if result.paths is None:
        console.print(f"  (more than {MAX_LISTED}: not listed; the shared form below adds "
                      "them all)")
    else:
        for i, path in enumerate(result.paths, 1):
            if not path:
                console.print(f"  {i}. the empty path: {escape(src)} is the output, "
                              "an empty product = 1")
                continue
            factors = " · ".join(result.factor_name(e) for e in path)
            console.print(f"  {i}. {escape(factors)}")
            console.print(f"     = {' · '.join(num(e.value) for e in path)} "
                          f"= {num(result.product(path))}")
    mark = "[green]✓ equal[/]" if result.agrees else "[red]✗ DIFFERENT[/]"
    console.print(f"sum over the paths = {num(result.total)}; the backward pass gives "
                  f"∂{escape(out)}/∂{escape(src)} = {num(result.engine_adjoint)}  {mark}")
    console.print("\nReverse accumulation adds the same products without listing paths: "
                  f"from {escape(out)} down, each adjoint adj(v) = ∂{escape(out)}/∂v is the sum, "
                  "over v's consumers c, of adj(c) · ∂c/∂v, so the part that paths share near "
                  f"{escape(out)} is multiplied once, not once per path:")
    into: dict = {}
    for e in result.edges:
        into.setdefault(e.src, []).append(e)
    lines = []
    for p in reversed(result.on_paths()):
        name = result.names[p]
        if p == result.target:
            lines.append(f"adj({name}) = 1")
            continue
        terms = [e for e in into.get(p, ()) if e.dst in result.adjoints]
        symbolic = " + ".join(f"adj({result.names[e.dst]}) · {result.factor_name(e)}"
                              for e in terms)
        numeric = " + ".join(f"{num(result.adjoints[e.dst])} · {num(e.value)}" for e in terms)
        lines.append(f"adj({name}) = {symbolic}\n      = {numeric} = {num(result.adjoints[p])}")
    shown = 40
    for line in lines[:shown]:
        console.print(f"  {escape(line)}")
    if len(lines) > shown:
        console.print(f"  … {len(lines) - shown} more nodes")
    if not result.agrees:
        sys.exit(1)
