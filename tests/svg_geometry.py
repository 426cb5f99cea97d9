"""Where every text of a Graphviz SVG lies, and whether it fits its shape.

Text extents come from the SVG's own numbers (``x``, ``y``, ``text-anchor``,
``font-size``) and a font's metrics (advance widths, ascent, descent) read
with fontTools, so a test can find clipped text without looking at a picture.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable

SVG = "{http://www.w3.org/2000/svg}"


@dataclass
class Metrics:
    """Horizontal advances (per character, in em) and vertical extent of one font."""

    advances: dict[str, float]
    default: float
    ascent: float
    descent: float

    def width(self, text: str, size: float) -> float:
        return sum(self.advances.get(ch, self.default) for ch in text) * size


@functools.lru_cache(maxsize=None)
def metrics(path: str) -> Metrics:
    from fontTools.ttLib import TTFont

    font = TTFont(path)
    upm = font["head"].unitsPerEm
    hmtx = font["hmtx"]
    advances = {chr(code): hmtx[glyph][0] / upm for code, glyph in font.getBestCmap().items()}
    return Metrics(advances, hmtx[".notdef"][0] / upm, font["hhea"].ascent / upm,
                   -font["hhea"].descent / upm)


@dataclass
class Rect:
    left: float
    top: float
    right: float
    bottom: float

    def contains(self, other: "Rect", slack: float = 0.0) -> bool:
        return (other.left >= self.left - slack and other.right <= self.right + slack
                and other.top >= self.top - slack and other.bottom <= self.bottom + slack)


@dataclass
class Text:
    owner: str          # id of the node, edge or cluster group, or "graph"
    kind: str           # "node", "edge", "cluster" or "graph"
    text: str
    box: Rect
    size: float


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def points_rect(el: ET.Element) -> Rect:
    """The bounding box of a polygon's points or a path's coordinates (Graphviz writes
    absolute coordinates only: M, C, L with x,y pairs)."""
    raw = el.get("points") or el.get("d") or ""
    nums = [float(v) for v in _NUMBER.findall(raw)]
    xs, ys = nums[0::2], nums[1::2]
    return Rect(min(xs), min(ys), max(xs), max(ys))


def text_rect(el: ET.Element, font: Metrics | Callable[[str], Metrics]
              ) -> tuple[str, Rect, float]:
    """A text's string, box and size; ``font`` may choose metrics by the text's font-family."""
    if not isinstance(font, Metrics):
        font = font(el.get("font-family", ""))
    text = "".join(el.itertext())
    size = float(el.get("font-size"))
    x, y = float(el.get("x")), float(el.get("y"))
    width = font.width(text, size)
    anchor = el.get("text-anchor", "start")
    left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
    return text, Rect(left, y - font.ascent * size, left + width, y + font.descent * size), size


def texts(svg: bytes | str, font: Metrics | Callable[[str], Metrics]) -> tuple[Rect, dict[str, Rect], list[Text]]:
    """(canvas, outline of each node and cluster by id, every text with its box)."""
    root = ET.fromstring(svg)
    graph = next(g for g in root.iter(SVG + "g") if g.get("class") == "graph")
    canvas = points_rect(graph.find(SVG + "polygon"))
    shapes: dict[str, Rect] = {}
    found: list[Text] = []
    for child in graph:
        if child.tag == SVG + "text":
            found.append(Text("graph", "graph", *text_rect(child, font)))
    for g in graph.iter(SVG + "g"):
        kind = g.get("class")
        if kind not in ("node", "edge", "cluster"):
            continue
        outline = [el for el in g.iter() if el.tag in (SVG + "polygon", SVG + "path")]
        if kind in ("node", "cluster") and outline:
            # The outermost line: a double-lined box (peripheries=2) draws two.
            rects = [points_rect(el) for el in outline if el.get("fill") != "none"
                     or kind == "cluster" or len(outline) == 1] or [points_rect(outline[0])]
            shapes[g.get("id")] = max(rects, key=lambda r: (r.right - r.left) * (r.bottom - r.top))
        for el in g.iter(SVG + "text"):
            found.append(Text(g.get("id"), kind, *text_rect(el, font)))
    return canvas, shapes, found


def clipped(svg: bytes | str, font: Metrics | Callable[[str], Metrics], slack: float = 0.25) -> list[str]:
    """Texts that do not lie inside their box (nodes, legend), or the canvas (titles, edges)."""
    canvas, shapes, found = texts(svg, font)
    bad = []
    for t in found:
        frame = shapes.get(t.owner, canvas) if t.kind in ("node", "cluster") else canvas
        if not frame.contains(t.box, slack):
            bad.append(f"{t.owner}: {t.text!r} at {t.box} outside {frame}")
    return bad
