"""Slides of the backward pass: one SVG per step, every one with the same layout.

The graph is laid out once, by Graphviz, with each box as wide as the widest
text any step puts in it; each frame is then the same SVG restyled: the
current node highlighted, pending nodes with their partial adjoints, nodes
not reached yet faded, contributions on the edges that have flowed.  Boxes
never jump between slides, and Graphviz runs once however many steps there
are.  ``index.html`` plays the frames (arrow keys, a slider), with no network.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from gradviz.errors import GradvizError
from gradviz.render import finish
from gradviz.render.dot import (AUTO_EDGE_LABEL_LIMIT, THEMES, Style, adjoint_text, edge_label,
                                node_tooltip, wrap_title)
from gradviz.render.model import OUTPUT, PRUNED, UNFLOWED, GraphView, NodeView, restate
from gradviz.stepper.session import Session
from gradviz.stepper.text import one_line

SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG)
ET.register_namespace("xlink", XLINK)
_SHAPES = {f"{{{SVG}}}path", f"{{{SVG}}}polygon", f"{{{SVG}}}ellipse"}
_LINES = f"{{{SVG}}}polyline"
_TEXT = f"{{{SVG}}}text"
_TITLE = f"{{{SVG}}}title"
_A = f"{{{SVG}}}a"
_FRAME_FILE = "step-{:03d}.svg"


def frame_name(i: int) -> str:
    return _FRAME_FILE.format(i)


def captions(session: Session, precision: int = 4, max_elems: int = 6) -> list[str]:
    """One line per frame: what this step does; the last frame is the finished pass."""
    out = []
    for step in session.steps:
        node = step.node
        sends = [session.name(e.input) for e in step.edges if e.value is not None]
        what = (f": sends its adjoint times each local derivative to {', '.join(sends)}"
                if sends else ": an input, its adjoint is its gradient" if step.into_grad
                else "")
        out.append(f"step {step.index + 1} of {len(session)} · {session.equation(node)}{what}")
    grads = ", ".join(f"{label}.grad = " + ("None" if g is None else
                                             one_line(g, precision, max_elems))
                      for label, g in session.gradients())
    out.append(f"done: {grads}")
    return out


def _widest(texts: list[str]) -> str:
    """Line by line, the widest text: the layout must hold every step's text."""
    rows = [t.split("\n") for t in texts]
    count = max(len(r) for r in rows)
    widths = [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(count)]
    first = max(rows, key=len)
    return "\n".join((first[i] if i < len(first) else "").ljust(widths[i]) for i in range(count))


def render_frames(session: Session, *, theme: str = "light", renderer: str = "auto",
                  precision: int = 4, max_elems: int = 6, progress: Any = None) -> list[bytes]:
    """The SVG of every frame: one per step, then the finished pass."""
    prepared = session.prepared
    output_name = session.name(session.output)
    n = len(session)
    first = prepared.view(0)
    views: list[GraphView] = [first]
    for k in list(range(1, n)) + [None]:  # the same boxes restyled, when nothing is rolled
        views.append(restate(first, prepared.state(k)) or prepared.view(k))
    texts = captions(session, precision, max_elems)
    # Captions are wrapped as titles are; the layout holds, line by line, the widest.
    wrapped = [wrap_title(t) for t in texts]
    widest = [max((w[i] for w in wrapped if i < len(w)), key=len)
              for i in range(max(len(w) for w in wrapped))]
    # Edge labels as render draws them: contributions up to 60 boxes, none beyond.
    style = Style(theme=theme, precision=precision, max_elems=max_elems,
                  title="\n".join(widest))
    labels = "contribution" if len(views[-1].nodes) <= AUTO_EDGE_LABEL_LIMIT else "none"
    # Lay out once: the first view (it has every step state in its legend), each box
    # holding the widest adjoint text of any frame, every edge the label it ends with.
    final = views[-1]
    adjoint_texts: dict[str, list[str]] = {v.id: [] for v in final.nodes}
    for view in views:
        for v in view.nodes:
            adjoint_texts[v.id].append(adjoint_text(v, output_name, style))
    layout = GraphView(views[0].nodes, final.edges, views[0].notes)
    drawing = finish(prepared, layout, style,
                     {k: _widest(t) for k, t in adjoint_texts.items()})
    template = _Template(ET.fromstring(drawing.pipe("svg", renderer)), output_name,
                         len(widest))
    frames = []
    palette = THEMES[theme]
    for i, (view, caption) in enumerate(zip(views, texts)):
        frames.append(template.fill(view, caption, style, palette, labels))
        if progress is not None:
            progress(i + 1)
    return frames


class _Template:
    """The laid-out SVG, serialised once with a token in every place a frame changes.

    Each frame is then the template's pieces joined with that frame's values:
    no tree is copied or serialised again per frame.
    """

    def __init__(self, root: ET.Element, output_name: str, caption_lines: int = 1) -> None:
        self.output_name = output_name
        self._texts: dict[tuple, tuple[str, str, list[str]]] = {}
        self._slots: list[tuple[ET.Element, str | None]] = []
        self.nodes: dict[str, dict[str, list[int]]] = {}
        self.edges: dict[str, dict[str, list[int]]] = {}
        graph = root.find(f"{{{SVG}}}g")
        lines = graph.findall(_TEXT)[:caption_lines] if graph is not None else []
        self.caption = [self._slot(line, None) for line in lines]
        for g in root.iter(f"{{{SVG}}}g"):
            cls = g.get("class")
            if cls == "node" and not g.get("id", "").startswith("legend"):
                self.nodes[g.get("id")] = self._node_slots(g)
            elif cls == "edge":
                self.edges[g.get("id")] = self._edge_slots(g)
        text = ET.tostring(root, encoding="unicode")
        self._pieces = _TOKEN.split(text)  # text, slot number, text, slot number, ...
        self._order = [int(k) for k in self._pieces[1::2]]

    def _slot(self, el: ET.Element, attr: str | None) -> int:
        i = len(self._slots)
        self._slots.append((el, attr))
        if attr is None:
            el.text = f"\x00{i}\x00"
        else:
            el.set(attr, f"\x00{i}\x00")
        return i

    def _node_slots(self, g: ET.Element) -> dict[str, list[int]]:
        slots: dict[str, list[int]] = {k: [] for k in ("fill", "stroke", "width", "font",
                                                        "texts", "tip")}
        for el in g.iter():
            if el.tag in _SHAPES:
                slots["fill"].append(self._slot(el, "fill"))
                slots["stroke"].append(self._slot(el, "stroke"))
                slots["width"].append(self._slot(el, "stroke-width"))
            elif el.tag == _LINES:
                slots["stroke"].append(self._slot(el, "stroke"))
                slots["width"].append(self._slot(el, "stroke-width"))
        head = [el for el in g.iter() if el.tag == _TEXT]
        texts = [(el.text or "").replace("\xa0", " ") for el in head]
        self_name = None
        for el, t in zip(head, texts):
            slots["font"].append(self._slot(el, "fill"))
            if self_name is None and t.startswith("∂") and "/∂" in t:  # the adjoint field
                self_name = t
            if self_name is not None:
                slots["texts"].append(self._slot(el, None))
        for el in g.iter():
            if el.tag == _TITLE:
                slots["tip"].append(self._slot(el, None))
            elif el.tag == _A and el.get(f"{{{XLINK}}}title") is not None:
                slots["tip"].append(self._slot(el, f"{{{XLINK}}}title"))
        return slots

    def _edge_slots(self, g: ET.Element) -> dict[str, list[int]]:
        slots: dict[str, list[int]] = {"stroke": [], "fill": [], "label": []}
        for el in g.iter():
            if el.tag in _SHAPES or el.tag == _LINES:
                if el.get("stroke") not in (None, "none"):
                    slots["stroke"].append(self._slot(el, "stroke"))
                if el.tag == f"{{{SVG}}}polygon":
                    slots["fill"].append(self._slot(el, "fill"))
            elif el.tag == _TEXT:
                slots["label"].append(self._slot(el, None))
        return slots

    def fill(self, view: GraphView, caption: str, style: Style, theme: Any,
             labels: str) -> bytes:
        """This frame's SVG: the template with ``view``'s styles and texts."""
        # Values go in already escaped: colours and widths need none, texts are escaped
        # once where they are made (a frame has thousands of slots).
        values = [""] * len(self._slots)
        lines = wrap_title(caption)
        for j, k in enumerate(self.caption):
            values[k] = _escape((" ".join(lines[j:]) if j == len(self.caption) - 1 else lines[j])
                                if j < len(lines) else "", False)
        for v in view.nodes:
            slots = self.nodes.get(v.id)
            if slots is not None:
                self._node(values, slots, v, style, theme)
        for i, e in enumerate(view.edges):
            slots = self.edges.get(f"e{i}")
            if slots is None:
                continue
            text = edge_label(e, labels, style) if e.state != UNFLOWED else ""
            colour = theme.muted if e.pruned or e.state == UNFLOWED else theme.edge
            for k in slots["stroke"] + slots["fill"]:
                values[k] = colour
            label = _escape(f" {text}  ", False) if text else ""
            for k in slots["label"]:
                values[k] = label
        out = self._pieces[:]
        out[1::2] = [values[k] for k in self._order]
        return _XML_HEAD + "".join(out).encode("utf-8")

    def _node(self, values: list[str], slots: dict[str, list[int]], v: NodeView, style: Style,
              theme: Any) -> None:
        attrs = dict(theme.styles[v.kind])
        if v.kind == OUTPUT and v.reason:
            attrs.update(theme.styles[PRUNED])
        if v.state is not None:
            attrs.update(theme.states[v.state])
        filled = "filled" in attrs.get("style", "filled")
        for k in slots["fill"]:
            values[k] = attrs.get("fillcolor", "none") if filled else "none"
        for k in slots["stroke"]:
            values[k] = attrs.get("color", theme.edge)
        for k in slots["width"]:
            values[k] = attrs.get("penwidth", "1.2")
        for k in slots["font"]:
            values[k] = attrs.get("fontcolor", theme.font)
        # A box's texts change only when its state or adjoint does: made once per change.
        key = (v.id, v.state, v.reason, id(v.adjoint))
        made = self._texts.get(key)
        if made is None:
            tip = node_tooltip(v, style)
            made = self._texts[key] = (
                _escape(tip, False), _escape(tip, True),
                [_escape(line, False) for line in
                 adjoint_text(v, self.output_name, style).split("\n")])
        tip_text, tip_attribute, lines = made
        for k in slots["tip"]:
            values[k] = tip_attribute if self._slots[k][1] is not None else tip_text
        texts = slots["texts"]
        for j, k in enumerate(texts):
            values[k] = ("   ".join(lines[j:]) if j == len(texts) - 1 else lines[j]) \
                if j < len(lines) else ""


_TOKEN = re.compile("\x00(\\d+)\x00")
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'


def _escape(text: str, attribute: bool) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\n", "&#10;")
    return text


INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
 body {{ margin: 0; font: 16px/1.4 system-ui, sans-serif; background: {bg}; color: {fg}; }}
 header {{ padding: .5em 1em; display: flex; gap: 1em; align-items: center; }}
 #caption {{ flex: 1; }}
 input[type=range] {{ width: 40%; }}
 main {{ text-align: center; }}
 main img {{ max-width: 98vw; max-height: calc(100vh - 4em); display: none; margin: auto; }}
 main img.on {{ display: block; }}
</style></head>
<body>
<header>
 <button id="prev" title="previous (←)">◀</button>
 <input id="slider" type="range" min="0" max="{last}" value="0" aria-label="step">
 <button id="next" title="next (→)">▶</button>
 <span id="caption"></span>
</header>
<main>
{images}
</main>
<script>
 const captions = {captions};
 const frames = Array.from(document.querySelectorAll("main img"));
 const slider = document.getElementById("slider");
 let at = 0;
 function show(i) {{
   at = Math.max(0, Math.min(frames.length - 1, i));
   frames.forEach((f, k) => f.classList.toggle("on", k === at));
   slider.value = at;
   document.getElementById("caption").textContent = captions[at];
   if (location.hash !== "#" + at) history.replaceState(null, "", "#" + at);
 }}
 document.getElementById("prev").onclick = () => show(at - 1);
 document.getElementById("next").onclick = () => show(at + 1);
 slider.oninput = () => show(+slider.value);
 document.addEventListener("keydown", e => {{
   if (e.key === "ArrowRight" || e.key === " " || e.key === "PageDown") show(at + 1);
   else if (e.key === "ArrowLeft" || e.key === "PageUp") show(at - 1);
   else if (e.key === "Home") show(0);
   else if (e.key === "End") show(frames.length - 1);
   else return;
   e.preventDefault();
 }});
 show(parseInt(location.hash.slice(1)) || 0);
</script>
</body></html>
"""


def index_html(count: int, texts: list[str], title: str, theme: str) -> str:
    t = THEMES[theme]
    images = "\n".join(f'<img src="{frame_name(i)}" alt="{html.escape(texts[i])}">'
                       for i in range(count))
    import json
    return INDEX.format(title=html.escape(title), bg=t.background, fg=t.font, last=count - 1,
                        images=images,
                        captions=json.dumps(texts).replace("</", "<\\/"))


MARKER = ".gradviz-frames"  # written into every export: only those are ever replaced


def _replaceable(path: Path) -> bool:
    """Whether ``path`` may be replaced: missing, empty, or a previous export of ours.

    A previous export is recognised by the marker file gradviz writes into it,
    and holds nothing else than what gradviz wrote: a user's own ``index.html``
    is never taken for one.
    """
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if not names:
        return True
    return MARKER in names and all(
        n in (MARKER, "index.html") or (n.startswith("step-") and n.endswith(".svg"))
        for n in names)


def write_frames(session: Session, directory: str | os.PathLike, *, theme: str = "light",
                 renderer: str = "auto", precision: int = 4, max_elems: int = 6,
                 console: Any = None) -> int:
    """Write ``step-000.svg`` ... and ``index.html`` into ``directory``; returns the frame count.

    The files are made in a temporary folder beside it and moved into place at
    the end, so a failure leaves nothing half-written.  An existing folder is
    replaced only if it is empty or holds a previous export.
    """
    target = Path(directory)
    try:
        if not _replaceable(target):
            raise GradvizError(f"{target} exists and holds other files: give --frames a new "
                               "or empty folder (a previous export there is replaced)")
        parent = target.resolve().parent
        if not parent.is_dir():
            raise GradvizError(f"no folder {parent} to write {target.name} in")
    except OSError as exc:
        raise GradvizError(f"cannot use {target} for frames: {exc.strerror or exc}") from None
    count = len(session) + 1
    if console is not None:
        from rich.progress import Progress
        with Progress(transient=True, console=console) as bar:
            task = bar.add_task("frames", total=count)
            frames = render_frames(session, theme=theme, renderer=renderer,
                                   precision=precision, max_elems=max_elems,
                                   progress=lambda i: bar.update(task, completed=i))
    else:
        frames = render_frames(session, theme=theme, renderer=renderer, precision=precision,
                               max_elems=max_elems)
    texts = captions(session, precision, max_elems)
    try:
        work = Path(tempfile.mkdtemp(prefix=".gradviz-frames.", dir=parent))
    except OSError as exc:
        raise GradvizError(f"cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        for i, data in enumerate(frames):
            (work / frame_name(i)).write_bytes(data)
        title = f"gradviz step: {session.equation(session.output)}"
        (work / "index.html").write_text(index_html(count, texts, title, theme), encoding="utf-8")
        (work / MARKER).write_text("frames written by gradviz step --frames; the folder is "
                                   "replaced by the next export\n", encoding="utf-8")
        os.chmod(work, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".gradviz-frames.old.", dir=parent))
            os.rename(target, old / "previous")
            os.rename(work, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(work, target)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise GradvizError(f"cannot write frames into {target}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return count
