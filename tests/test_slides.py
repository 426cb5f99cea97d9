"""Diagrams that go on a slide unchanged: legible, high-contrast, never clipped.

Every check reads numbers, not pixels by eye: the size text has once a PNG is
fitted to a 1920x1080 slide (from the PNG's size and the SVG's font sizes),
WCAG contrast ratios computed from the theme tables, and each text's extent
(from its position in the SVG and the font's metrics) against its box.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradviz.cli import main
from gradviz.render import backends
from gradviz.render.dot import (SLIDE, THEMES, TITLE_WIDTH, _BASE, text_pairs, wrap_title)
from gradviz.render.fonts import ADVANCE, CORE_TEXT, FONT_FILE, SVG_FAMILY
from gradviz.render.model import CONSTANT, ELIDED, LEAF, OP, OUTPUT, PRUNED

sys.path.insert(0, str(Path(__file__).resolve().parent))
from svg_geometry import clipped, metrics, texts  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="the system Graphviz `dot` is not installed")
RENDERERS = ["embedded", pytest.param("system", marks=needs_dot)]

MLP = ["sum(relu(W1 @ x + b1) * w2)", "-v", "W1=[[1, -2], [0.5, 1], [-1, 0.3]]",
       "-v", "x=[1, 2]", "-v", "b1=[0.1, 0.2, 0.3]", "-v", "w2=[1, -1, 2]"]
DETACH = ["y = x * x; u = detach(y); z = u * x; sum(z)", "-v", "x=arange(4)"]
WRT = ["sin(a) * b + exp(c)", "-v", "a=0.5", "-v", "b=2", "-v", "c=[1, 2]", "--wrt", "a"]
LEAST_SQUARES = ["r = X @ w - y; norm(r) ** 2", "-v", "X=[[1, 2], [3, 4], [5, 6]]",
                 "-v", "w=[1, -1]", "-v", "y=[0, 1, 2]", "--const", "X,y"]
CONTROL_FLOW = [str(Path(__file__).resolve().parent.parent / "samples" / "lesson"
                    / "05_control_flow.py") + ":d", "--roll"]
EXAMPLES = {"mlp": MLP, "detach": DETACH, "wrt": WRT, "least_squares": LEAST_SQUARES,
            "control_flow": CONTROL_FLOW, "dot": ["dot(x, x)", "-v", "x=arange(4)"]}

OUR_FONT = metrics(str(FONT_FILE))


def render(tmp_path: Path, args: list[str], fmt: str = "svg", *options: str) -> bytes:
    out = tmp_path / f"out.{fmt}"
    result = CliRunner().invoke(main, ["render", *args, "-o", str(out), "--seed", "0", *options])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def node_font_sizes(svg: bytes) -> list[float]:
    root = ET.fromstring(svg)
    return [float(t.get("font-size")) for g in root.iter(SVG + "g")
            if g.get("class") == "node" and not g.get("id", "").startswith("legend")
            for t in g.iter(SVG + "text")]


def fitted_text_px(svg: bytes, png: bytes, dpi: float) -> float:
    """The smallest node text, in pixels, once the PNG is scaled to fit a 1920x1080 slide."""
    width, height = png_size(png)
    scale = min(1920 / width, 1080 / height)
    return min(node_font_sizes(svg)) * dpi / 72 * scale


# ---------------------------------------------------------------------------
# Legible on a projector
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
def test_slide_preset_makes_mlp_text_24px_on_a_1080p_slide(tmp_path, renderer):
    options = ["--renderer", renderer]
    default = fitted_text_px(render(tmp_path, MLP, "svg", *options),
                             render(tmp_path, MLP, "png", *options), 192)
    svg = render(tmp_path, MLP, "svg", "--slide", *options)
    png = render(tmp_path, MLP, "png", "--slide", *options)
    slide = fitted_text_px(svg, png, 192)
    assert default < 15          # the README's default: about 13 px, too small at the back
    assert slide >= 24, slide
    # The preset: no legend, edge labels kept, compact boxes (no dtype/shape row).
    ids = {g.get("id") for g in ET.fromstring(svg).iter(SVG + "g")}
    assert not any(i and i.startswith("legend") for i in ids)
    edge_texts = [t for t in texts(svg, OUR_FONT)[2] if t.kind == "edge"]
    assert len(edge_texts) >= 8 and "[1 1 1]" in {t.text.replace("\xa0", " ").strip()
                                                  for t in edge_texts}
    assert not any("float32" in t.text for t in texts(svg, OUR_FONT)[2])


def test_font_size_scales_every_text(tmp_path):
    svg = render(tmp_path, DETACH, "svg", "--font-size", "16.5", "--renderer", "embedded")
    sizes = {}
    for t in texts(svg, OUR_FONT)[2]:
        sizes.setdefault(t.kind, set()).add(t.size)
    assert sizes["node"] >= {16.5}
    assert sizes["graph"] == {19.5}                    # the title: 13/11 of the boxes' size
    assert sizes["edge"] == {15}                       # edge labels: 10/11


def test_slide_keeps_a_legend_asked_for(tmp_path):
    svg = render(tmp_path, DETACH, "svg", "--slide", "--legend", "--renderer", "embedded")
    assert b'id="legend_leaf"' in svg


@pytest.mark.parametrize("bad", ["0", "abc", "1000"])
def test_font_size_is_checked(bad):
    result = CliRunner().invoke(main, ["render", *DETACH, "--font-size", bad, "-o", "-"])
    assert result.exit_code == 2 and "--font-size" in result.output


def test_draw_checks_font_size():
    import gradviz as gv

    x = gv.arange(3.0, requires_grad=True)
    with pytest.raises(gv.GradvizError, match="font_size must be a number of points"):
        gv.render(x.sum(), font_size=-1)


# ---------------------------------------------------------------------------
# Contrast (WCAG 2)
# ---------------------------------------------------------------------------


def relative_luminance(colour: str) -> float:
    named = {"white": "#ffffff", "black": "#000000"}
    hexa = named.get(colour, colour).lstrip("#")
    channels = [int(hexa[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula():
    assert contrast("black", "white") == pytest.approx(21.0)
    assert contrast("#777777", "white") == pytest.approx(4.48, abs=0.01)
    assert contrast("#9ca3af", "#f9fafb") == pytest.approx(2.4, abs=0.05)  # old "not computed"


@pytest.mark.parametrize("theme", sorted(THEMES))
def test_every_text_has_aa_contrast(theme):
    pairs = text_pairs(THEMES[theme])
    # Every kind of box is covered, each with its own background.
    assert {what for what, _, _ in pairs} >= {f"{k} box" for k in THEMES[theme].styles}
    # ...and every stepper state (done, current, pending, waiting) laid over every kind.
    assert {what for what, _, _ in pairs} >= {f"{k} box, {state}" for k in THEMES[theme].styles
                                              for state in THEMES[theme].states}
    assert len(THEMES[theme].states) >= 4
    failing = [(what, fg, bg, round(contrast(fg, bg), 2)) for what, fg, bg in pairs
               if contrast(fg, bg) < 4.5]
    assert failing == []


def test_text_pairs_read_the_fill_only_when_filled():
    theme = THEMES["dark"]
    pairs = {what: (fg, bg) for what, fg, bg in text_pairs(theme)}
    assert pairs["elided box"][1] == theme.background          # "rounded,dotted": not filled
    assert pairs["pruned box"] == (theme.styles[PRUNED]["fontcolor"],
                                   theme.styles[PRUNED]["fillcolor"])


# ---------------------------------------------------------------------------
# No clipped text, in any viewer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("example", sorted(EXAMPLES))
@pytest.mark.parametrize("look", [[], ["--slide"], ["--theme", "print"], ["--rankdir", "LR"]])
def test_every_text_lies_inside_its_box(tmp_path, renderer, example, look):
    svg = render(tmp_path, EXAMPLES[example], "svg", "--renderer", renderer, *look)
    canvas, shapes, found = texts(svg, OUR_FONT)
    assert len(found) >= 8 and len(shapes) >= 2
    assert clipped(svg, OUR_FONT) == []
    # A viewer that ignores @font-face (rsvg) falls back to an installed monospaced font,
    # 0.6 em a character like Courier and Liberation Mono: no wider, so nothing clips.
    courier_like = metrics(str(FONT_FILE))
    courier_like = type(courier_like)({}, 0.6, courier_like.ascent, courier_like.descent)
    assert clipped(svg, courier_like) == []


LESSON = sorted((Path(__file__).resolve().parent.parent / "samples" / "lesson").glob("[0-9]*.py"))


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("script", LESSON, ids=[p.stem for p in LESSON])
def test_lesson_scripts_have_no_clipped_text(tmp_path, renderer, script):
    svg = render(tmp_path, [str(script)], "svg", "--renderer", renderer)
    assert clipped(svg, OUR_FONT) == []


def test_the_check_finds_clipped_text():
    """The old legend, laid out as Helvetica, clipped when shown in a wider font."""
    svg = b"""<svg xmlns="http://www.w3.org/2000/svg" width="100pt" height="50pt">
    <g id="graph0" class="graph"><polygon points="0,0 100,0 100,-50 0,-50"/>
    <g id="legend_leaf" class="node"><polygon points="10,-10 60,-10 60,-30 10,-30"/>
    <text text-anchor="middle" x="35" y="-16" font-size="10">input (requires grad)</text></g>
    </g></svg>"""
    bad = clipped(svg, OUR_FONT)
    assert len(bad) == 1 and "input (requires grad)" in bad[0]


def test_stepper_frames_have_no_clipped_text(tmp_path):
    """gradviz step --frames: one layout filled with each step's text, never clipped."""
    result = CliRunner().invoke(main, ["step", *MLP, "--frames", str(tmp_path / "frames")])
    assert result.exit_code == 0, result.output
    frames = sorted((tmp_path / "frames").glob("step-*.svg"))
    assert len(frames) >= 8
    page = (tmp_path / "frames" / "index.html").read_text()
    captions = json.loads(re.search(r"const captions = (\[.*\]);$", page, re.M).group(1))
    for frame, caption in zip(frames, captions):
        svg = frame.read_bytes()
        assert clipped(svg, OUR_FONT) == [], frame.name
        # The caption, wrapped over the title's lines, and nothing left from another step.
        title = [t.text for t in texts(svg, OUR_FONT)[2] if t.kind == "graph"]
        assert " ".join(line for line in title[:len(wrap_title(caption))]) == \
            " ".join(wrap_title(caption))
        assert all(len(line) <= TITLE_WIDTH for line in title)


def test_long_titles_are_wrapped(tmp_path):
    statements = "; ".join(f"v{i} = x * {i}" for i in range(30)) + "; sum(v29)"
    svg = render(tmp_path, [statements, "-v", "x=arange(3)", "--title", statements],
                 "svg", "--renderer", "embedded")
    title = [t for t in texts(svg, OUR_FONT)[2] if t.kind == "graph"]
    assert len(title) >= 5
    assert all(len(t.text) <= TITLE_WIDTH for t in title)
    assert "".join(t.text.replace(" ", "") for t in title) == statements.replace(" ", "")
    assert clipped(svg, OUR_FONT) == []


def test_wrap_title_breaks_after_statements_and_long_words():
    assert wrap_title("a = 1; b = 2", 8) == ["a = 1;", "b = 2"]
    assert wrap_title("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert wrap_title("short") == ["short"]
    assert wrap_title("first\nsecond") == ["first", "second"]


@pytest.mark.parametrize("renderer", RENDERERS)
def test_svg_embeds_the_font_it_names(tmp_path, renderer):
    from fontTools.ttLib import TTFont

    svg = render(tmp_path, DETACH, "svg", "--renderer", renderer)
    families = set(re.findall(rb'font-family="([^"]*)"', svg))
    assert families == {SVG_FAMILY.encode()}
    face = re.search(rb"@font-face\{font-family:\"gradviz-mono\";src:url\(data:font/woff;"
                     rb"base64,([A-Za-z0-9+/=]+)\)", svg)
    data = base64.b64decode(face.group(1))
    assert data[:4] == b"wOFF"        # what format("woff") says it is
    font = TTFont(io.BytesIO(data))
    cmap = font.getBestCmap()
    assert all(ord(ch) in cmap for ch in CORE_TEXT)
    assert {font["hmtx"][g][0] for g in cmap.values()} == {1233}  # monospaced: 0.602 em
    assert ADVANCE == 1233 / font["head"].unitsPerEm


def test_svg_with_other_characters_embeds_a_subset_holding_them(tmp_path):
    from fontTools.ttLib import TTFont

    svg = render(tmp_path, ["α * β", "-v", "α=2", "-v", "β=3"], "svg", "--renderer", "embedded")
    face = re.search(rb"base64,([A-Za-z0-9+/=]+)\)", svg)
    data = base64.b64decode(face.group(1))
    assert data[:4] == b"wOFF"
    cmap = TTFont(io.BytesIO(data)).getBestCmap()
    assert ord("α") in cmap and ord("β") in cmap and ord("∂") in cmap
    assert ord("Q") not in cmap   # a subset of what the drawing uses


# ---------------------------------------------------------------------------
# The print theme: kinds told apart by their outline
# ---------------------------------------------------------------------------


def outline(attrs: dict) -> tuple:
    style = set(attrs.get("style", _BASE["style"]).split(","))
    pattern = "dashed" if "dashed" in style else "dotted" if "dotted" in style else "solid"
    return ("rounded" in style, pattern, float(attrs.get("penwidth", _BASE["penwidth"])),
            int(attrs.get("peripheries", 1)))


def test_print_theme_tells_every_kind_apart_by_outline():
    styles = THEMES["print"].styles
    outlines = {kind: outline(attrs) for kind, attrs in styles.items()}
    assert len(set(outlines.values())) == len(outlines), outlines
    assert set(outlines) == {LEAF, CONSTANT, OP, OUTPUT, PRUNED, ELIDED}


def drawn_outline(g: ET.Element) -> tuple:
    shapes = [el for el in g.iter() if el.tag in (SVG + "path", SVG + "polygon")]
    first = shapes[0]
    return (first.tag == SVG + "path",                      # rounded corners are a path
            first.get("stroke-dasharray") or "solid", first.get("stroke-width", "1"),
            len(shapes))


def test_print_theme_outlines_as_drawn(tmp_path):
    """In the SVG: input, constant, operation, output and pruned boxes all look different."""
    svg = render(tmp_path, ["y = X @ w; u = detach(y); sum(u * w)", "-v", "X=[[1, 2], [3, 4]]",
                            "-v", "w=[1, -1]", "--const", "X"],
                 "svg", "--theme", "print", "--renderer", "embedded", "--no-legend")
    root = ET.fromstring(svg)
    drawn = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "node":
            title = "".join(next(g.iter(SVG + "text")).itertext())
            drawn[title.split(" ")[0]] = drawn_outline(g)
    # w: input; X: constant; v4 = u * w: operation; out: output; u: pruned (detach())
    kinds = [drawn[name] for name in ("w", "X", "v4", "out", "u")]
    assert len(set(kinds)) == 5, drawn


# ---------------------------------------------------------------------------
# Why a branch is pruned, in the box
# ---------------------------------------------------------------------------


def box_lines(svg: bytes, name: str) -> list[str]:
    root = ET.fromstring(svg)
    for g in root.iter(SVG + "g"):
        if g.get("class") != "node" or g.get("id", "").startswith("legend"):
            continue
        lines = [" ".join("".join(t.itertext()).replace("\xa0", " ").split())
                 for t in g.iter(SVG + "text")]
        if lines[0] == name or lines[0].startswith(name + " "):
            return lines
    raise AssertionError(f"no box {name}")


@pytest.mark.parametrize("look", [[], ["--slide"], ["--show", "structure"]])
def test_pruned_boxes_say_why(tmp_path, look):
    svg = render(tmp_path, DETACH, "svg", "--renderer", "embedded", *look)
    u = box_lines(svg, "u")
    assert "(no grad: detach())" in u
    if look != ["--show", "structure"]:  # known only from the backward pass
        assert "(cut off: detach())" in box_lines(svg, "y")
    assert not any("DetachBackward0" in line for line in u)   # its grad_fn is None
    if look != ["--show", "structure"]:
        svg = render(tmp_path, WRT, "svg", "--renderer", "embedded", *look)
        assert "(not in --wrt)" in box_lines(svg, "b")
        assert "(not in --wrt)" in box_lines(svg, "c")
        assert not any(line.startswith("(") for line in box_lines(svg, "a"))
    svg = render(tmp_path, LEAST_SQUARES, "svg", "--renderer", "embedded", *look)
    assert "(constant)" in box_lines(svg, "X")
    assert not any(line.startswith("(") for line in box_lines(svg, "w"))


def test_detach_has_no_grad_fn_as_in_pytorch():
    import gradviz as gv
    from gradviz.render import draw

    x = gv.arange(3.0, requires_grad=True).name("x")
    u = (x * x).detach().name("u")
    assert u.grad_fn is None
    view = draw((u * x).sum()).view
    by_name = {v.name: v for v in view.nodes}
    assert by_name["u"].grad_fn == ""
    assert by_name["x"].grad_fn == "AccumulateGrad"


# ---------------------------------------------------------------------------
# PNG and PDF: same picture from both renderers
# ---------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("look", [[], ["--slide"]])
def test_both_renderers_give_the_same_picture(tmp_path, look):
    system = png_size(render(tmp_path, MLP, "png", "--renderer", "system", *look))
    embedded = png_size(render(tmp_path, MLP, "png", "--renderer", "embedded", *look))
    for a, b in zip(system, embedded):
        assert abs(a - b) <= 0.1 * a, (system, embedded)
    svgs = [render(tmp_path, MLP, "svg", "--renderer", r, *look) for r in ("system", "embedded")]
    assert [sorted(t.text for t in texts(s, OUR_FONT)[2]) for s in svgs][0] == \
        [sorted(t.text for t in texts(s, OUR_FONT)[2]) for s in svgs][1]


def test_slide_preset_is_what_the_readme_says():
    assert SLIDE["font_size"] == 22 and SLIDE["legend"] is False and SLIDE["compact"] is True
    assert backends.DEFAULT_DPI == 192
