"""Diagrams of a computation graph, annotated with forward values and adjoints.

:func:`draw` reads the tape behind an output, runs the engine's backward pass
(without touching any ``.grad``) to learn each node's adjoint and what flowed
along each edge, and builds a ``graphviz.Digraph``.  :func:`render` does that
and writes the file; both renderers (system ``dot`` or the embedded
WebAssembly Graphviz) take the same DOT source.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gradviz.engine.format import visible
from gradviz.engine.backward import BackwardPass, Step, saved_freed
from gradviz.engine.forward import ForwardSweep
from gradviz.engine.tape import Tape
from gradviz.engine.tensor import Tensor
from gradviz.errors import GradvizTypeError, GradvizValueError
from gradviz.render.backends import DEFAULT_DPI, FORMATS, render_dot
from gradviz.render.dot import (EDGE_LABELS, RANKDIRS, SHOW, THEMES, Style, node_tooltip,
                                slide_style, to_digraph)
from gradviz.render.files import write_atomic
from gradviz.render.model import GraphView, PassState, build_view
from gradviz.render.values import has_nonfinite

__all__ = ["Drawing", "Prepared", "draw", "prepare", "prepare_forward", "finish", "render",
           "render_svg",
           "write_atomic", "format_from_path"]


@dataclass
class Drawing:
    """A drawn graph: the Digraph, what it shows, and what the user should be told."""

    digraph: Any
    view: GraphView
    tape: Tape
    steps: list[Step] | None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tooltips: dict[str, str] = field(default_factory=dict)
    prepared: Prepared | None = None
    _adjoints: dict | None = field(default=None, repr=False)

    def adjoint_of(self, node: Tensor) -> Any:
        """``node``'s adjoint in this drawing's own pass (None: not reached, or no pass)."""
        if self._adjoints is None:
            sweep = self.prepared.sweep if self.prepared is not None else None
            self._adjoints = dict(sweep.adjoints) if sweep is not None else \
                {id(s.node): s.adjoint for s in self.steps or ()}
        return self._adjoints.get(id(node))

    @property
    def source(self) -> str:
        return self.digraph.source

    def pipe(self, fmt: str = "svg", renderer: str = "auto", dpi: float = DEFAULT_DPI) -> bytes:
        """The diagram in ``fmt``: our DOT source for "dot", else laid out by ``renderer``.

        PNG (at ``dpi``) and PDF are converted from the SVG in-process.

        In SVG each box's ``<title>`` carries its tooltip (why it was pruned,
        its full value and adjoint), not only its id, for viewers and screen
        readers that read titles rather than link titles.
        """
        if fmt == "dot":
            return self.source.encode("utf-8")
        data = render_dot(self.source, fmt, renderer, dpi)
        return _titled(data, self.tooltips) if fmt == "svg" else data

    def _repr_svg_(self) -> str:
        return self.pipe("svg").decode("utf-8")


@dataclass
class Prepared:
    """A graph and the one backward pass run for drawing it: the first stage of :func:`draw`.

    The stepper and frame export reuse it: :meth:`view` draws the state as of any step.
    """

    tape: Tape
    output: Tensor
    steps: list[Step] | None
    pruned: dict[Tensor, str]
    history: Any = None
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None
    # Forward mode (prepare_forward): one finished sweep's tangents in place of adjoints.
    mode: str = "reverse"
    sweep: PassState | None = None
    direction: str = ""     # what the tangents are taken along, "x", "x[2]" or "x·1"

    def state(self, k: int | None = None) -> PassState | None:
        """The pass as of step ``k`` (None: finished); None if no pass was run."""
        if self.sweep is not None:
            return self.sweep
        if self.steps is None:
            if self.unavailable is None:
                return None
            return PassState(unavailable=self.unavailable)
        partial = self.history.adjoints_at(k) if self.history is not None and k is not None \
            else None
        return PassState.after(self.steps, self.pruned, k, partial)

    def view(self, k: int | None = None, *, roll: bool = False, max_nodes: int = 400,
             adjoints: bool = True, group: bool = False, collapse: Sequence[str] = ()
             ) -> GraphView:
        return build_view(self.tape, self.state(k), roll=roll, max_nodes=max_nodes,
                          adjoints=adjoints, group=group, collapse=collapse)


UNAVAILABLE = ("unavailable: backward() freed the saved values; draw before it, or call "
               "backward(retain_graph=True)")


def prepare(output: Tensor, *, wrt: Sequence[Tensor] | None = None, backprop: bool = True,
            retain_graph: bool = True, record: bool = False, kept: Any = None) -> Prepared:
    """Run one backward pass from ``output`` (touching no ``.grad``) and keep its steps.

    A non-scalar output is seeded with ones, as ``output.sum().backward()``.
    ``kept`` holds saved values set aside while a script ran (see
    :func:`gradviz.engine.backward.keep_saved`), for graphs the script's own
    ``backward()`` freed.  When the pass cannot be run, the drawing says why
    rather than show another pass's numbers.
    """
    if not isinstance(output, Tensor):
        raise GradvizValueError(f"render expects a Tensor, got {type(output).__name__}")
    tape = Tape(output)
    notes: list[str] = []
    if not output.requires_grad or not backprop:
        if backprop:
            notes.append(f"{tape.name(output)} does not require grad: there is nothing to "
                         "differentiate")
        return Prepared(tape, output, None, {}, notes=notes)
    if any(saved_freed(n) and id(n) not in (kept or {}) for n in tape.nodes if n.requires_grad):
        notes.append("adjoints " + UNAVAILABLE)
        return Prepared(tape, output, None, {}, notes=notes, unavailable=UNAVAILABLE)
    seed = None
    if output.data.size != 1:
        seed = np.ones_like(output.data)
        notes.append(f"seed: ones, as {tape.name(output)}.sum().backward()")
    bp = BackwardPass(output, seed, inputs=list(wrt) if wrt else None,
                      retain_graph=retain_graph, accumulate=False, record=record, kept=kept)
    steps = list(bp)
    return Prepared(tape, output, steps, bp.pruned(), bp.history, notes)


def prepare_forward(output: Tensor, x: Tensor, direction: int | None = None) -> Prepared:
    """Run one forward sweep from input ``x`` (the engine's ``ForwardSweep``, as ``jvp()``).

    The tangents pushed up, ∂node/∂x·d, stand where reverse mode draws adjoints,
    and each edge carries its JVP contribution.  ``d`` is the unit vector of
    component ``direction`` of ``x``, or ones (every component at once) if None.
    Nodes that do not depend on ``x`` are pruned.
    """
    if not isinstance(output, Tensor):
        raise GradvizValueError(f"render expects a Tensor, got {type(output).__name__}")
    tape = Tape(output)
    name = tape.name(x) if x in tape else (x.label or "the input")
    if x not in tape:
        raise GradvizValueError(f"{name} is not in the graph of {tape.name(output)}")
    if not x.requires_grad:
        raise GradvizValueError(f"{name} does not require grad: no tangent flows from it")
    size = x.data.size
    seed = np.ones_like(x.data)
    notes = []
    if direction is None:
        along = name if size == 1 else f"{name}·1"
        if size > 1:
            notes.append(f"direction: ones, every component of {name} at once "
                         "(--direction K for one)")
    else:
        if not 0 <= direction < size:
            raise GradvizValueError(f"direction {direction}: {name} has {size} components "
                                    f"(0 to {size - 1})")
        seed = np.zeros_like(x.data)
        seed.reshape(-1)[direction] = 1
        along = name if size == 1 else \
            f"{name}[{', '.join(map(str, np.unravel_index(direction, x.data.shape)))}]"
    sweep = ForwardSweep(output, {x: seed})
    state = PassState.after(list(sweep), sweep.pruned(), value="tangent")
    notes.insert(0, f"forward mode: tangents ∂v/∂{along} pushed up from {name}, one sweep")
    return Prepared(tape, output, None, state.pruned, notes=notes, mode="forward",
                    sweep=state, direction=along)


def draw(output: Tensor, *, wrt: Sequence[Tensor] | None = None, show: str = "all",
         edge_labels: str = "auto", rankdir: str = "BT", theme: str = "light",
         legend: bool | None = None, roll: bool = False, max_nodes: int = 400, precision: int = 4,
         max_elems: int = 6, title: str | None = None, backprop: bool = True,
         kept: Any = None, group: bool = False, collapse: Sequence[str] = (),
         font_size: float | None = None, slide: bool = False, mode: str = "reverse",
         direction: int | None = None) -> Drawing:
    """Build the diagram of ``output``'s graph.

    Args:
        wrt: differentiate only with respect to these; other branches are drawn pruned.
        show: ``"structure"`` (op names and shapes: the formula before values),
            ``"values"`` (forward values too) or ``"all"`` (values and adjoints).
        edge_labels: ``"contribution"`` (what flowed back along each edge),
            ``"jacobian"`` (the shape of the local Jacobian), ``"none"``, or
            ``"auto"`` (contributions for graphs of up to 60 boxes).
        rankdir: ``"BT"`` (inputs at the bottom, as in the lesson), ``"TB"``, ``"LR"``, ``"RL"``.
        theme: ``"light"``, ``"dark"`` or ``"print"`` (grey-scale).
        roll: roll repeated runs of an op (a loop's ``b = b * 2``) into one box.
        max_nodes: beyond this many boxes the graph is rolled, then trimmed.
        backprop: run a backward pass to show adjoints (default).  Every adjoint
            and contribution drawn comes from that one pass, from ``output``.
        kept: saved values a script's own ``backward()`` freed, kept aside.
        group: draw the boxes made inside each call of a user function as a
            labelled cluster (the ops must have been made inside ``gv.group_calls()``).
        collapse: names of user functions whose every call is drawn as one box.
        legend: draw the legend of the node styles (default: yes, except on slides).
        font_size: size of the boxes' text in points (default 11; 22 with ``slide``).
        slide: the slide preset (``dot.SLIDE``): large type, compact boxes, no
            legend unless ``legend=True``.
        mode: ``"reverse"`` (adjoints, one backward pass) or ``"forward"``: the
            tangents one forward sweep pushes up from the single input ``wrt``
            (see :func:`prepare_forward`; ``direction`` picks one component).
    """
    _check_choice("show", show, SHOW)
    _check_choice("edge_labels", edge_labels, EDGE_LABELS)
    _check_choice("rankdir", rankdir.upper(), RANKDIRS)
    _check_choice("theme", theme, tuple(THEMES))
    _check_int("max_nodes", max_nodes, 2, MAX_NODES, "the output and one more box")
    _check_int("precision", precision, 1, 17, "significant digits")
    _check_int("max_elems", max_elems, 2, MAX_ELEMS, "elements per row")
    if title is not None and not isinstance(title, str):
        raise GradvizTypeError(f"title must be a string, not {type(title).__name__}")
    collapse = (collapse,) if isinstance(collapse, str) else tuple(collapse)
    _check_choice("mode", mode, ("reverse", "forward"))
    if mode == "forward":
        if not wrt or len(wrt) != 1:
            raise GradvizValueError("forward mode pushes tangents from one input: "
                                    "give it as wrt (--wrt NAME)")
        prepared = prepare_forward(output, wrt[0], direction)
    elif direction is not None:
        raise GradvizValueError("a direction applies to forward mode (--mode forward)")
    else:
        prepared = prepare(output, wrt=wrt, backprop=backprop and show == "all", kept=kept)
    if show != "all":
        prepared.notes.clear()
    if group or collapse:
        prepared.notes.extend(_grouping_notes(prepared.tape, collapse))
    style = Style(show=show, edge_labels=edge_labels, rankdir=rankdir.upper(), theme=theme,
                  legend=legend is not False, precision=precision, max_elems=max_elems,
                  title=title, mode=prepared.mode, along=prepared.direction)
    style = slide_style(style, slide=slide, font_size=font_size, legend=legend)
    return finish(prepared, prepared.view(roll=roll, max_nodes=max_nodes,
                                          adjoints=show == "all", group=group,
                                          collapse=collapse), style)


def _grouping_notes(tape: Tape, collapse: Sequence[str]) -> list[str]:
    """What to tell about --group/--collapse; an error for a function never called."""
    called = {name for n in tape.nodes if getattr(n, "scope", None) is not None
              for call in n.scope.path() for name in (call.name, call.qualname)}
    if not called:
        return ["--group: no box was made inside a user function call (ops must be made "
                "inside gv.group_calls(), as scripts run with --group)"]
    missing = [name for name in collapse if name not in called]
    if missing:
        raise GradvizValueError(f"--collapse {', '.join(missing)}: no box was made in a call "
                                f"of that name (functions called: {', '.join(sorted(called))})")
    return []


def finish(prepared: Prepared, view: GraphView, style: Style,
           adjoints: dict[str, str] | None = None) -> Drawing:
    """The last stage: a :class:`Drawing` of ``view`` (the Digraph, notes, warnings).

    ``adjoints`` replaces boxes' adjoint texts (frames lay out the widest text of any step).
    """
    notes = prepared.notes + view.notes
    warnings = []
    bad = [v.name for v in view.nodes if has_nonfinite(v.value)
           or (v.adjoint is not None and has_nonfinite(np.asarray(v.adjoint)))]
    if bad:
        warnings.append("non-finite values (nan or inf) in " + ", ".join(bad[:8])
                        + (" ..." if len(bad) > 8 else ""))
    tooltips = {v.id: node_tooltip(v, style) for v in view.nodes}
    digraph = to_digraph(view, style, prepared.tape.name(prepared.output), notes, tooltips,
                         adjoints)
    return Drawing(digraph, view, prepared.tape, prepared.steps, notes, warnings, tooltips,
                   prepared)


def _titled(svg: bytes, tooltips: dict[str, str]) -> bytes:
    """Put each node's tooltip into the ``<title>`` Graphviz fills with the node's id."""
    def title(match: re.Match) -> bytes:
        node = match.group(1).decode("utf-8")
        text = tooltips.get(node)
        if text is None:
            return match.group(0)
        return match.group(0)[:match.start(2) - match.start(0)] + \
            xml_escape(text).encode("utf-8") + b"</title>"
    return _NODE_TITLE.sub(title, svg)


def xml_escape(text: str) -> str:
    # Not xml.sax.saxutils.escape: importing it costs ~20 ms of start-up.
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_NODE_TITLE = re.compile(rb'<g id="([^"]+)" class="node">\s*<title>(.*?)</title>', re.S)


#: Most boxes a diagram may have: Graphviz lays 10,000 out in tens of seconds, more in hours.
MAX_NODES = 10_000
#: Most elements shown per array row (and rows per matrix); labels stay legible and
#: under Graphviz's length limit.
MAX_ELEMS = 100


def _check_int(what: str, value: Any, low: int, high: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise GradvizTypeError(f"{what} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise GradvizValueError(f"{what} must be from {low} to {high} ({meaning}), got {value}")


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise GradvizValueError(f"{what} must be one of {', '.join(choices)}; got {value!r}")


def format_from_path(path: str | os.PathLike | None, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else the path's extension, else svg."""
    if fmt:
        fmt = fmt.lower()
    elif path not in (None, "-") and Path(str(path)).suffix:
        fmt = Path(str(path)).suffix[1:].lower()
        if fmt == "gv":
            fmt = "dot"
    else:
        fmt = "svg"
    if fmt not in FORMATS:
        raise GradvizValueError(f"unknown output format {fmt!r}: choose one of "
                                f"{', '.join(FORMATS)} (by -f or the file extension)")
    return fmt


def render(output: Tensor, path: str | os.PathLike | None = None, *, format: str | None = None,
           renderer: str = "auto", **options: Any) -> Any:
    """Draw ``output``'s graph and, if ``path`` is given, write it there; returns the Digraph.

    The format comes from ``format`` or ``path``'s extension (svg, png, pdf,
    dot, json).  Other options are those of :func:`draw`.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise GradvizTypeError(f"path must be a string or a path, not {type(path).__name__}")
    drawing = draw(output, **options)
    if path is not None:
        fmt = format_from_path(path, format)
        write_atomic(path, drawing.pipe(fmt, renderer))
    return drawing.digraph


def render_svg(tape_or_tensor: Tape | Tensor, **options: Any) -> str:
    """The SVG text of a tape's (or tensor's) diagram, for notebooks."""
    out = tape_or_tensor.outputs[0] if isinstance(tape_or_tensor, Tape) else tape_or_tensor
    return draw(out, **options).pipe("svg").decode("utf-8")


# Notebooks show a Tape as its diagram; attached here so the engine draws nothing itself.
Tape._repr_svg_ = render_svg
