"""The one font of every diagram, so that layout and display agree in any viewer.

Graphviz lays text out with its own idea of each string's width: the system
``dot`` asks the fonts installed, the embedded (WebAssembly) Graphviz uses
built-in tables of a few PostScript fonts.  A viewer that then draws the text
with a wider font clips it (the legend's "input (requires grad)" lost its
"i" in rsvg and Chromium when laid out as Helvetica).

So every piece of text is laid out as ``Courier``, which both Graphviz builds
measure as exactly 0.6 em per character, and displayed in DejaVu Sans Mono,
whose every glyph (∂, Σ, … included) is 0.602 em wide.  The SVG embeds the
font (``@font-face``, a subset), PNG and PDF are drawn with the same file, and
a viewer that ignores ``@font-face`` (rsvg) falls back to a monospaced font,
whose characters are 0.6 em wide as well.  DejaVu's licence: ``fonts/LICENSE``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

__all__ = ["FONT_DIR", "FONT_FILE", "FAMILY", "LAYOUT_FONT", "CORE_TEXT", "ADVANCE",
           "embed_font", "subset_font"]

FONT_DIR = Path(__file__).resolve().parent / "fonts"
#: The shipped font (a subset of DejaVu Sans Mono: Latin, Greek, Cyrillic, math symbols).
FONT_FILE = FONT_DIR / "DejaVuSansMono.ttf"
_CORE_FILE = FONT_DIR / "DejaVuSansMono-core.woff"
#: The family name of the shipped font.
FAMILY = "DejaVu Sans Mono"
#: What the DOT source names: measured as 0.6 em per character by both renderers.
LAYOUT_FONT = "Courier"
#: The family an SVG's embedded subset is declared under (not a system font's name,
#: so no installed copy of another version can stand in for it).
_EMBEDDED_FAMILY = "gradviz-mono"
#: The font-family every SVG text gets: the embedded font, then installed ones.
SVG_FAMILY = f"{_EMBEDDED_FAMILY},{FAMILY},Liberation Mono,Courier New,monospace"
#: Advance width of every glyph of DejaVu Sans Mono, in em (1233/2048).
ADVANCE = 1233 / 2048

#: The characters gradviz itself writes, embedded from a subset made in advance
#: (tools/make_fonts.py); a drawing with others gets its own subset at run time.
CORE_TEXT = (
    "".join(chr(c) for c in range(0x20, 0x7F))
    + "".join(chr(c) for c in range(0xA0, 0xC0))  # nbsp, ±, ², ·, ¹ ...; not accented letters
    + "∂Σ∑×…→←↑↓·ᵀ−–—≤≥≠≈√∞∇±°′″‖⋯•Δδεθλμπσφψω"
    + "⁰¹²³⁴⁵⁶⁷⁸⁹⁻₀₁₂₃₄₅₆₇₈₉"
)
_CORE = frozenset(CORE_TEXT)


_TEXT = re.compile(rb"<text\b[^>]*>(.*?)</text>", re.S)
_FAMILY_ATTR = re.compile(rb'font-family="[^"]*"')
_SVG_OPEN = re.compile(rb"<svg\b[^>]*>")


def _characters(svg: bytes) -> set[str]:
    import html  # here, not at start-up: only a drawing being written needs it

    chars: set[str] = set()
    for match in _TEXT.finditer(svg):
        chars.update(html.unescape(match.group(1).decode("utf-8", errors="replace")))
    return chars


@functools.lru_cache(maxsize=1)
def _core_woff() -> bytes:
    return _CORE_FILE.read_bytes()


def subset_font(chars: set[str] | str, flavor: str = "woff") -> bytes:
    """A subset of the shipped font holding ``chars`` (needs fontTools, imported here only)."""
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.flavor = flavor
    options.layout_features = []
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.notdef_outline = True
    options.hinting = False
    font = TTFont(str(FONT_FILE))
    sub = subset.Subsetter(options)
    sub.populate(text="".join(sorted(set(chars) | {" "})))
    sub.subset(font)
    font.flavor = flavor  # Options.flavor is read only by fontTools' command line
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def embed_font(svg: bytes) -> bytes:
    """Give every text of a Graphviz SVG the shipped font, embedded as ``@font-face``.

    The text's ``font-family`` becomes the embedded font followed by installed
    monospaced ones; the font is the prepared core subset when the drawing
    uses only its characters, else a subset made for this drawing.
    """
    import base64  # here, not at start-up

    match = _SVG_OPEN.search(svg)
    if match is None:
        return svg
    chars = _characters(svg)
    data = _core_woff() if chars <= _CORE else subset_font(chars)
    face = (b'\n<style>@font-face{font-family:"' + _EMBEDDED_FAMILY.encode()
            + b'";src:url(data:font/woff;base64,' + base64.b64encode(data)
            + b') format("woff");}</style>')
    svg = svg[:match.end()] + face + svg[match.end():]
    return _FAMILY_ATTR.sub(b'font-family="' + SVG_FAMILY.encode() + b'"', svg)
