"""Regenerate gradviz/render/fonts/ from DejaVu Sans Mono (Debian: fonts-dejavu-core).

    python tools/make_fonts.py [/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf]

Writes two subsets of the font (development only: needs fontTools):

* ``DejaVuSansMono.ttf``: the scripts a diagram can plausibly show (Latin,
  Greek, Cyrillic, punctuation, super- and subscripts, arrows, mathematical
  operators).  PNG and PDF output draw with it; SVGs whose text goes beyond the
  core set embed a subset of it made for that drawing.
* ``DejaVuSansMono-core.woff``: the characters gradviz itself writes (ASCII,
  Latin-1, ∂ Σ × … → and a few more, see ``gradviz.render.fonts.CORE_TEXT``),
  embedded as is in SVGs, so most drawings need no subsetting at run time.

DejaVu's licence allows modified copies whose names avoid "Bitstream" and "Vera".
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradviz.render.fonts import CORE_TEXT, FONT_DIR  # noqa: E402

# Unicode blocks kept in the shipped TTF.
RANGES = [
    (0x0020, 0x024F),  # Basic Latin .. Latin Extended-B
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x04FF),  # Cyrillic
    (0x1D00, 0x1DBF),  # phonetic extensions (ᵀ)
    (0x2000, 0x206F),  # general punctuation (… ‖)
    (0x2070, 0x209F),  # superscripts and subscripts
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators (∂ ∑ ∇ ≤)
    (0x2300, 0x23FF),  # miscellaneous technical
    (0x2500, 0x25FF),  # box drawing, blocks, geometric shapes
]


def _subset(source: Path, codepoints: list[int], flavor: str | None, target: Path) -> None:
    options = subset.Options()
    options.flavor = flavor
    options.layout_features = []     # monospaced text: no kerning or ligatures needed
    options.name_IDs = ["*"]         # keep the copyright and licence records
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    font = TTFont(str(source))
    sub = subset.Subsetter(options)
    sub.populate(unicodes=codepoints)
    sub.subset(font)
    font.flavor = flavor  # Options.flavor is read only by fontTools' command line
    font.save(str(target))
    print(f"wrote {target.relative_to(ROOT)} ({target.stat().st_size} bytes)")


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1
                  else "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
    cmap = TTFont(str(source)).getBestCmap()
    wide = [c for lo, hi in RANGES for c in range(lo, hi + 1) if c in cmap]
    _subset(source, wide, None, FONT_DIR / "DejaVuSansMono.ttf")
    missing = [ch for ch in CORE_TEXT if ord(ch) not in cmap]
    if missing:
        raise SystemExit(f"the font lacks core characters: {missing}")
    _subset(source, sorted({ord(ch) for ch in CORE_TEXT}), "woff",
            FONT_DIR / "DejaVuSansMono-core.woff")


if __name__ == "__main__":
    main()
