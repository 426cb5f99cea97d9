"""Draw a :class:`~gradviz.render.model.GraphView` as a Graphviz digraph.

Labels are Graphviz *records* with plain text, never HTML-like labels: the
embedded (WebAssembly) Graphviz has no HTML labels, and both renderers must
show the same information.  Every piece of user text is escaped for records
and DOT here, in one place, so ``{ } | < > " & \\`` render as typed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradviz.engine.backward import CUT_OFF, NOT_REQUESTED
from gradviz.engine.format import _INVISIBLE, visible
from gradviz.errors import GradvizValueError
from gradviz.render.fonts import LAYOUT_FONT
from gradviz.render.model import (CONSTANT, CURRENT, DONE, ELIDED, LEAF, OP, OUTPUT, PENDING,
                                  PRUNED, UNFLOWED, WAITING, EdgeView, GraphView, NodeView)
from gradviz.render.values import format_array, format_shape, jacobian_shape

SHOW = ("structure", "values", "all")
EDGE_LABELS = ("auto", "contribution", "jacobian", "none")
RANKDIRS = ("BT", "TB", "LR", "RL")
AUTO_EDGE_LABEL_LIMIT = 60


@dataclass(frozen=True)
class Theme:
    background: str
    font: str
    edge: str
    flow: str        # colour of what flowed back (adjoints, edge contributions)
    muted: str
    styles: dict     # kind -> node attributes
    states: dict     # step state (while a pass is under way) -> attributes laid over the kind's


_BASE = {"shape": "record", "style": "filled,rounded", "penwidth": "1.2"}

# Every text colour below is chosen for a contrast of at least 4.5:1 (WCAG AA) with
# the background it is drawn on; tests/test_slides.py computes each pair (text_pairs).
THEMES = {
    "light": Theme(
        background="white", font="#1f2937", edge="#4b5563", flow="#b91c1c", muted="#4b5563",
        styles={
            LEAF: {"fillcolor": "#dbeafe", "color": "#1d4ed8", "penwidth": "2"},
            CONSTANT: {"fillcolor": "#f3f4f6", "color": "#6b7280"},
            OP: {"fillcolor": "#fffbeb", "color": "#b45309"},
            OUTPUT: {"fillcolor": "#dcfce7", "color": "#15803d", "penwidth": "2.5"},
            PRUNED: {"fillcolor": "#f9fafb", "color": "#9ca3af", "fontcolor": "#4b5563",
                     "style": "filled,rounded,dashed"},
            ELIDED: {"fillcolor": "white", "color": "#6b7280", "style": "rounded,dotted"},
        },
        states={
            CURRENT: {"color": "#7c3aed", "penwidth": "4", "fillcolor": "#ede9fe"},
            PENDING: {"color": "#c2410c", "penwidth": "2.5"},
            DONE: {},
            WAITING: {"color": "#9ca3af", "fontcolor": "#4b5563", "fillcolor": "#f9fafb"},
        }),
    "dark": Theme(
        background="#111827", font="#e5e7eb", edge="#9ca3af", flow="#fca5a5", muted="#9ca3af",
        styles={
            LEAF: {"fillcolor": "#1e3a8a", "color": "#93c5fd", "penwidth": "2"},
            CONSTANT: {"fillcolor": "#374151", "color": "#9ca3af"},
            OP: {"fillcolor": "#422006", "color": "#fbbf24"},
            OUTPUT: {"fillcolor": "#14532d", "color": "#86efac", "penwidth": "2.5"},
            PRUNED: {"fillcolor": "#1f2937", "color": "#6b7280", "fontcolor": "#9ca3af",
                     "style": "filled,rounded,dashed"},
            ELIDED: {"fillcolor": "#111827", "color": "#9ca3af", "style": "rounded,dotted"},
        },
        states={
            CURRENT: {"color": "#c4b5fd", "penwidth": "4", "fillcolor": "#2e1065"},
            PENDING: {"color": "#fdba74", "penwidth": "2.5"},
            DONE: {},
            WAITING: {"color": "#6b7280", "fontcolor": "#d1d5db", "fillcolor": "#1f2937"},
        }),
    # Grey-scale, every kind told apart by its outline alone (corners, pattern, weight),
    # never by a shade: legible on paper and on washed-out projectors.  (Records
    # ignore peripheries, so no double line.)
    "print": Theme(
        background="white", font="black", edge="black", flow="black", muted="#595959",
        styles={
            LEAF: {"fillcolor": "#e0e0e0", "color": "black", "penwidth": "3"},
            CONSTANT: {"fillcolor": "white", "color": "black", "style": "filled",
                       "penwidth": "1"},                                    # square corners
            OP: {"fillcolor": "white", "color": "black", "penwidth": "1.2"},
            OUTPUT: {"fillcolor": "#d9d9d9", "color": "black", "style": "filled",
                     "penwidth": "3.5"},                          # square corners, heaviest
            PRUNED: {"fillcolor": "white", "color": "#595959", "fontcolor": "#595959",
                     "style": "filled,rounded,dashed", "penwidth": "1.2"},
            ELIDED: {"fillcolor": "white", "color": "black", "style": "rounded,dotted",
                     "penwidth": "1.2"},
        },
        states={
            CURRENT: {"color": "black", "penwidth": "5", "fillcolor": "#d0d0d0"},
            PENDING: {"color": "black", "penwidth": "3", "fillcolor": "#ececec"},  # records ignore peripheries
            DONE: {},
            WAITING: {"color": "#777777", "fontcolor": "#555555", "fillcolor": "white"},
        }),
}

LEGEND = {
    LEAF: "input (requires grad)",
    CONSTANT: "constant",
    OP: "operation",
    OUTPUT: "output",
    PRUNED: "pruned: no gradient",
}

STATE_LEGEND = {
    CURRENT: "current step",
    PENDING: "pending: adjoint so far, not visited yet",
    WAITING: "not reached yet",
}


@dataclass(frozen=True)
class Style:
    """How to draw: what nodes show, edge labels, layout, theme and type size.

    ``font_size`` is the size of the boxes' text in points; titles, edge labels
    and the legend scale with it.  ``compact`` boxes leave out the dtype and
    shape row and put ``grad_fn`` beside the formula (slides).
    """

    show: str = "all"
    edge_labels: str = "auto"
    rankdir: str = "BT"
    theme: str = "light"
    legend: bool = True
    precision: int = 4
    max_elems: int = 6
    title: str | None = None
    # Forward mode draws tangents ∂v/∂along (the input, or one of its components)
    # where reverse mode draws adjoints ∂out/∂v.
    mode: str = "reverse"
    along: str = ""
    font_size: float = 11.0
    compact: bool = False
    ranksep: float = 0.45        # inches between ranks (an edge label takes a rank of its own)
    nodesep: float = 0.35        # inches between boxes of a rank
    field_margin: str | None = None  # inches around each field's text (Graphviz: 0.11,0.055)
    # All text is laid out as Courier and shown in the shipped monospaced font
    # (gradviz.render.fonts explains why): one family for titles, boxes and legend.
    font: str = LAYOUT_FONT
    mono: str = LAYOUT_FONT


#: The --slide preset: type that stays legible when the PNG is fitted to a 1080p
#: slide, compact boxes, no legend; edge labels kept.
SLIDE = {"font_size": 22.0, "compact": True, "legend": False, "ranksep": 0.2,
         "nodesep": 0.3, "field_margin": "0.1,0.04"}


def slide_style(style: Style, *, slide: bool = False, font_size: float | None = None,
                legend: bool | None = None) -> Style:
    """``style`` with the slide preset applied (if ``slide``), then the explicit choices.

    ``font_size`` and ``legend`` given explicitly win over the preset.
    """
    import dataclasses

    changes: dict[str, Any] = dict(SLIDE) if slide else {}
    if font_size is not None:
        if isinstance(font_size, bool) or not isinstance(font_size, (int, float)) \
                or not 4 <= font_size <= 200:
            raise GradvizValueError(f"font_size must be a number of points from 4 to 200, "
                                    f"got {font_size!r}")
        changes["font_size"] = float(font_size)
    if legend is not None:
        changes["legend"] = bool(legend)
    return dataclasses.replace(style, **changes) if changes else style

#: A title is wrapped at this many characters (monospaced), at spaces or after ``;``.
TITLE_WIDTH = 60

_RECORD_ESCAPES = _INVISIBLE | str.maketrans({ch: "\\" + ch for ch in '\\{}|<>" '}
                                             | {"\n": "\\l"})


def escape_record(text: str) -> str:
    """Escape text for a record label field (and the DOT string around it).

    Record syntax (``{ } | < >``), quotes and backslashes get a backslash;
    spaces too, so that aligned columns keep their width; newlines end a
    left-justified line.
    """
    return text.translate(_RECORD_ESCAPES)


def escape_text(text: str) -> str:
    """Escape text for a plain (non-record) DOT string: quotes, backslashes, newlines."""
    return visible(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _field(text: str) -> str:
    """A record field of left-aligned lines."""
    return escape_record(text) + "\\l"


def short_reason(v: NodeView) -> str:
    """Why no gradient reaches a box, in a few words for the box itself.

    The full sentence (``v.reason``) stays in the tooltip; PNG and PDF have no
    tooltips, so the box says ``no grad: detach()``, ``constant``, ``not in --wrt``...
    """
    if not v.reason or v.reason.startswith("unavailable"):  # the adjoint line says so
        return ""
    node = v.nodes[-1]
    if node.op is not None and not node.op.differentiable:
        return f"no grad: {node.op.name}()"
    if v.reason == NOT_REQUESTED:
        return "not in --wrt"
    if v.reason.startswith("cut off by "):
        return "cut off: " + v.reason[len("cut off by "):].split(":")[0]
    if v.reason == CUT_OFF:
        return "cut off"
    if node.op is None and not node.requires_grad:
        return "constant"
    if getattr(node, "made_without_grad", False):
        return "no grad: no_grad()"
    if not node.requires_grad:
        return "constant"  # computed from constants only
    return "not reached"


#: Graphviz refuses a label of over 16,384 characters (a DOT file `dot` cannot read):
#: labels are kept under this, escapes included, by showing fewer elements.
LABEL_LIMIT = 15_000
#: Longest name or formula shown in a box or title (the rest is cut, with "…").
TEXT_LIMIT = 1_000


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def node_label(v: NodeView, output_name: str, style: Style, adjoint: str | None = None) -> str:
    """The record label of a node: title, shape, value, adjoint (by ``style.show``).

    A box no gradient reaches says why in a short line of its own.  ``adjoint``
    replaces the adjoint field's text (frames lay out once with the widest text
    any step shows, then fill in each step's).  Arrays show fewer elements when
    the label would pass Graphviz's length limit.
    """
    elems = style.max_elems
    label = _node_label(v, output_name, style, adjoint, elems)
    while len(label) > LABEL_LIMIT and elems > 2:
        elems = max(2, elems // 2)
        label = _node_label(v, output_name, style, adjoint, elems)
    return label


def _node_label(v: NodeView, output_name: str, style: Style, adjoint: str | None,
                max_elems: int) -> str:
    output_name = clip(output_name, 100)
    if v.kind == ELIDED:
        return escape_record(f"… {v.formula} …\nraise --max-nodes, or --roll")
    title = clip(v.name if not v.formula else f"{v.name} = {v.formula}")
    if style.compact:
        head = escape_record(title + (f"  {v.grad_fn}" if v.grad_fn else ""))
    else:
        head = escape_record(title) + (f"\\n{escape_record(v.grad_fn)}" if v.grad_fn else "")
    why = short_reason(v)
    if why:
        head += "\\n" + escape_record(f"({why})")
    fields = [head]
    if not style.compact:
        fields.append(escape_record(format_shape(v.value)))
    if style.show in ("values", "all"):
        fields.append(_field("value  " + _indent(format_array(v.value, style.precision,
                                                              max_elems), 7)))
    if style.show == "all":
        fields.append(_field(adjoint if adjoint is not None else
                             adjoint_text(v, output_name, style, max_elems)))
    body = "|".join(fields)
    return "{" + body + "}" if style.rankdir in ("BT", "TB") else body


def adjoint_text(v: NodeView, output_name: str, style: Style,
                 max_elems: int | None = None) -> str:
    """The adjoint line(s) of a box: the value, partial while pending, or why there is none."""
    head = f"∂{clip(v.name, 100)}/∂{clip(style.along, 100)}" if style.mode == "forward" else \
        f"∂{clip(output_name, 100)}/∂{clip(v.name, 100)}"
    if v.adjoint is None:
        if v.state == WAITING:
            return f"{head}  not reached yet"
        if v.reason and v.reason.startswith("unavailable"):
            return f"{head}  unavailable: graph freed"
        return f"{head}  not computed"
    if v.state == PENDING:
        head += " so far"
    return f"{head}  " + _indent(format_array(np.asarray(v.adjoint), style.precision,
                                              max_elems or style.max_elems), len(head) + 2)


def _indent(text: str, width: int) -> str:
    return text.replace("\n", "\n" + " " * width)


def node_tooltip(v: NodeView, style: Style) -> str:
    if v.kind == ELIDED:
        return (f"{v.repeat} nodes of the tape are not drawn here, to keep the diagram legible; "
                "raise --max-nodes (max_nodes=) or roll repeated runs (--roll) to see them")
    lines = [f"{v.name} ({v.id})" + (f" = {v.formula}" if v.formula else "")]
    if v.grad_fn:
        lines.append(f"grad_fn: {v.grad_fn}")
    lines.append(f"shape: {format_shape(v.value)}")
    lines.append("value: " + format_array(v.value, 6, 12))
    forward = style.mode == "forward"
    if v.adjoint is not None:
        lines.append(("tangent: " if forward else "adjoint: ")
                     + format_array(np.asarray(v.adjoint), 6, 12))
    if v.reason:
        lines.append(f"{'no tangent' if forward else 'no gradient'}: {v.reason}")
    if v.call is not None:
        lines.append(f"{v.repeat} nodes made in the call {v.call.label}, collapsed into one "
                     "(--collapse)")
    elif v.repeat > 1:
        lines.append(f"{v.repeat} repeated nodes rolled into one ({v.id})")
    return "\n".join(lines)


def edge_label(e: EdgeView, mode: str, style: Style) -> str:
    """The contribution (Σ: summed over the edges a rolled box stands for) or the Jacobian."""
    if mode == "contribution":
        if e.contribution is None:
            return ""
        elems = style.max_elems
        text = format_array(np.asarray(e.contribution), style.precision, elems)
        while 2 * len(text) > LABEL_LIMIT and elems > 2:  # escaped, it may double
            elems = max(2, elems // 2)
            text = format_array(np.asarray(e.contribution), style.precision, elems)
        return f"Σ{e.count} {text}" if e.count > 1 else text
    if mode == "jacobian":
        text = jacobian_shape(e.output_shape, e.input_shape)
        return f"{text} (×{e.count})" if e.count > 1 else text
    return ""


@functools.lru_cache(maxsize=None)
def _diagram_class() -> type:
    """A ``graphviz.Digraph`` that shows itself in notebooks through gradviz's renderers.

    The plain Digraph needs the system ``dot`` program to display; this one falls
    back to the embedded Graphviz, like everything else in gradviz.
    """
    import graphviz

    from gradviz.render.backends import render_dot

    class Diagram(graphviz.Digraph):
        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                              **kwargs: Any) -> dict[str, str]:
            return {"image/svg+xml": render_dot(self.source, "svg", "auto").decode("utf-8")}

    return Diagram


def _attributes(attrs: dict[str, str]) -> str:
    """``key="value"`` pairs; values are escaped already (escape_record / escape_text)."""
    return " ".join(f'{k}="{v}"' for k, v in attrs.items())


def to_digraph(view: GraphView, style: Style, output_name: str, notes: list[str],
               tooltips: dict[str, str] | None = None,
               adjoints: dict[str, str] | None = None) -> Any:
    """Build the ``graphviz.Digraph`` for ``view`` (``tooltips`` by box id, if already made;
    ``adjoints``: adjoint-field texts by box id, in place of the view's)."""
    import graphviz

    if tooltips is None:
        tooltips = {v.id: node_tooltip(v, style) for v in view.nodes}
    theme = THEMES[style.theme]
    g = _diagram_class()("gradviz")
    label_lines = [line for t in [style.title] + notes if t
                   for line in wrap_title(visible(clip(t)))]  # visible first: strip() eats \x85
    sizes = font_sizes(style)
    g.attr(rankdir=style.rankdir, bgcolor=theme.background, fontname=style.font,
           fontcolor=theme.font, nodesep=f"{style.nodesep:g}", ranksep=f"{style.ranksep:g}",
           labelloc="t",
           fontsize=sizes["title"])
    if label_lines:
        g.attr(label=graphviz.nohtml(escape_text("\n".join(label_lines))))
    g.attr("node", fontname=style.mono, fontsize=sizes["node"], fontcolor=theme.font, **_BASE)
    if style.field_margin:
        g.attr("node", margin=style.field_margin)
    g.attr("edge", color=theme.edge, fontname=style.mono, fontsize=sizes["edge"],
           fontcolor=theme.flow, arrowsize="0.7")

    mode = style.edge_labels
    if mode == "auto":
        mode = "contribution" if len(view.nodes) <= AUTO_EDGE_LABEL_LIMIT else "none"
    if style.show != "all" and mode == "contribution":
        mode = "none"

    # Node and edge lines are written here rather than through g.node()/g.edge():
    # every value is already escaped, and the package's per-attribute quoting
    # was 40% of drawing time on large graphs.
    body = g.body
    lines: dict[str, str] = {}  # box id -> its node statement
    for v in view.nodes:
        attrs = dict(theme.styles[v.kind])
        if v.kind == OUTPUT and v.reason:
            attrs.update(theme.styles[PRUNED])
            attrs["penwidth"] = "2.5"
        if v.state is not None:
            attrs.update(theme.states[v.state])
        attrs["label"] = node_label(v, output_name, style,
                                    None if adjoints is None else adjoints.get(v.id))
        attrs["tooltip"] = escape_text(tooltips[v.id])
        attrs["id"] = v.id
        lines[v.id] = f'\t"{v.id}" [{_attributes(attrs)}]\n'
    body.extend(_clustered(view, lines, theme, style))
    for i, e in enumerate(view.edges):
        attrs = {"id": f"e{i}"}
        text = edge_label(e, mode, style)
        if text:
            attrs["label"] = escape_text(f" {text}  ")  # padding: parallel edges (x * x) keep apart
        if e.pruned:
            attrs.update(style="dashed", color=theme.muted, fontcolor=theme.muted)
        elif e.state == UNFLOWED:  # will carry its contribution at a later step
            attrs.pop("label", None)
            attrs.update(color=theme.muted)
        if e.cut:
            attrs.update(arrowhead="tee")
        tip = f"{e.src} → {e.dst} (input {e.slot})"
        if e.contribution is not None:
            tip += (f"\ncontribution to the tangent of {e.dst}: " if style.mode == "forward"
                    else f"\ncontribution to the adjoint of {e.src}: ") + format_array(
                np.asarray(e.contribution), 6, 12)
        elif e.cut:
            tip += "\nno gradient flows through this op"
        elif e.pruned:
            tip += "\npruned: no gradient flows along this edge"
        attrs["tooltip"] = escape_text(tip)
        body.append(f'\t"{e.src}" -> "{e.dst}" [{_attributes(attrs)}]\n')
    if style.legend:
        _legend(g, view, theme, style, mode)
    return g


def _clustered(view: GraphView, lines: dict[str, str], theme: Theme, style: Style) -> list[str]:
    """The node statements, those of boxes made inside user function calls (--group)
    nested in one labelled cluster per call."""
    if not any(v.scope is not None for v in view.nodes):
        return [lines[v.id] for v in view.nodes]
    members: dict[int, list[str]] = {}   # id(call) -> the node statements directly inside
    children: dict[int, list[Any]] = {}  # id(call) -> the calls directly inside, in order
    top: list[Any] = []                  # node statements and calls at the top level
    number: dict[int, int] = {}          # id(call) -> its cluster's number, in order of sight

    def place(call: Any) -> None:
        """Make sure ``call`` and its callers have clusters, each listed in its caller's."""
        for c in call.path():
            if id(c) in number:
                continue
            number[id(c)] = len(number) + 1
            (children.setdefault(id(c.parent), []) if c.parent is not None else top).append(c)

    for v in view.nodes:
        if v.scope is None:
            top.append(lines[v.id])
        else:
            place(v.scope)
            members.setdefault(id(v.scope), []).append(lines[v.id])

    out: list[str] = []

    def emit(item: Any, indent: str) -> None:
        if isinstance(item, str):
            out.append(indent[1:] + item)
            return
        k = number[id(item)]
        out.append(f'{indent}subgraph "cluster_call{k}" {{\n')
        # the label at the top of the picture: "b" is the top when the graph grows upward
        out.append(f'{indent}\tlabel="{escape_text(item.label)}" labeljust="l" '
                   f'labelloc="{"b" if style.rankdir == "BT" else "t"}" '
                   f'style="rounded,dashed" color="{theme.muted}" fontcolor="{theme.font}" '
                   f'fontname="{style.font}" fontsize="{font_sizes(style)["node"]}" '
                   f'id="call{k}"\n')
        for line in members.get(id(item), []):
            out.append(indent + line)
        for child in children.get(id(item), []):
            emit(child, indent + "\t")
        out.append(f"{indent}}}\n")

    for item in top:
        emit(item, "\t")
    return out


def font_sizes(style: Style) -> dict[str, str]:
    """Point sizes of the title, boxes, edge labels and legend, from ``style.font_size``."""
    base = float(style.font_size)

    def size(ratio: float) -> str:
        return f"{base * ratio:.4g}"

    return {"title": size(13 / 11), "node": size(1), "edge": size(10 / 11),
            "legend": size(10 / 11), "legend_title": size(1)}


def wrap_title(text: str, width: int = TITLE_WIDTH) -> list[str]:
    """The lines of a title: each at most ``width`` characters, broken after ``;`` or at spaces.

    A long formula would otherwise widen the canvas well past the graph (or,
    measured in another font, run off it).
    """
    import textwrap

    lines: list[str] = []
    for paragraph in text.split("\n"):
        parts = [p.strip() for p in paragraph.split(";")]
        statements = [p + ";" for p in parts[:-1]] + [parts[-1]]
        current = ""
        for stmt in statements:
            candidate = f"{current} {stmt}".strip()
            if len(candidate) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            pieces = textwrap.wrap(stmt, width, break_on_hyphens=False) or [""]
            lines.extend(pieces[:-1])
            current = pieces[-1]
        lines.append(current)
    return lines


def text_pairs(theme: Theme) -> list[tuple[str, str, str]]:
    """Every (what, text colour, background colour) pair a diagram in ``theme`` can draw.

    A box's background is its fill when its style says ``filled``, else the
    graph's background; titles, legend notes and edge labels are drawn on the
    graph's background.
    """
    pairs = [("title", theme.font, theme.background),
             ("edge label", theme.flow, theme.background),
             ("pruned edge label", theme.muted, theme.background)]
    # A box's look: its kind's attributes, with a stepper state's laid over them.
    looks = [(f"{kind} box", attrs) for kind, attrs in theme.styles.items()]
    looks += [(f"{kind} box, {state}", {**attrs, **over})
              for state, over in theme.states.items()
              for kind, attrs in theme.styles.items()]
    for what, attrs in looks:
        style = attrs.get("style", _BASE["style"])
        fill = attrs.get("fillcolor", theme.background) if "filled" in style else theme.background
        pairs.append((what, attrs.get("fontcolor", theme.font), fill))
    return pairs


def _legend(g: Any, view: GraphView, theme: Theme, style: Style, mode: str) -> None:
    import graphviz

    sizes = font_sizes(style)
    kinds = [k for k in (LEAF, CONSTANT, OP, OUTPUT, PRUNED) if any(v.kind == k for v in view.nodes)]
    with g.subgraph(name="cluster_legend") as c:
        c.attr(label="legend", fontcolor=theme.font, color=theme.muted, style="rounded,dashed",
               fontname=style.font, fontsize=sizes["legend_title"], rank="same")
        for k in kinds:
            attrs = dict(theme.styles[k])
            attrs.update(shape="box", fontname=style.font, fontsize=sizes["legend"],
                         margin="0.08,0.03", height="0.3")
            text = "pruned: no tangent" if k == PRUNED and style.mode == "forward" else LEGEND[k]
            c.node(f"legend_{k}", escape_text(text), id=f"legend_{k}", **attrs)
        states = [s for s in STATE_LEGEND if any(v.state == s for v in view.nodes)]
        for state in states:
            attrs = dict(theme.styles[OP])
            attrs.update(theme.states[state])
            attrs.update(shape="box", fontname=style.font, fontsize=sizes["legend"],
                         margin="0.08,0.03", height="0.3")
            c.node(f"legend_{state}", escape_text(STATE_LEGEND[state]), id=f"legend_{state}",
                   **attrs)
        notes = []
        if mode == "contribution" and style.mode == "forward":
            notes.append("edge label: what flowed up along the edge\n"
                         "(local derivative × the input's tangent);\n"
                         "a node's tangent is the sum of what flowed into it")
        elif mode == "contribution":
            notes.append("edge label: what flowed back along the edge\n"
                         "(upstream adjoint × local derivative);\n"
                         "a node's adjoint is the sum of what flowed into it")
        elif mode == "jacobian":
            notes.append("edge label: shape of the local Jacobian ∂out/∂in")
        if any(e.state == UNFLOWED for e in view.edges):
            notes.append("grey edge: its contribution flows at a later step")
        if mode == "contribution" and any(e.count > 1 for e in view.edges):
            notes.append("Σn: summed over the n steps of a rolled box")
        notes.append("dashed: not downstream of the input, no tangent flows"
                     if style.mode == "forward" else "dashed: pruned, no gradient flows")
        c.node("legend_notes", graphviz.nohtml(escape_text("\n".join(notes))), shape="plaintext",
               fontname=style.font, fontsize=sizes["legend"], fontcolor=theme.font, id="legend_notes",
               style="")
