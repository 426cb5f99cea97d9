"""Tests of the diagrams (gradviz.render): what the SVG shows, on both renderers.

Every test reads the picture the way a student would: the SVG is parsed and
each node's box (``<g id="v3" class="node">``) is checked for the forward
value and the adjoint it prints.  The lesson's examples are the golden cases:
x·x, sum(x), x*x, detach, the control-flow function f(a) and ||Xw - y||².
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import graphviz
import numpy as np
import pytest

import gradviz as gv
from gradviz.errors import RenderError, RendererUnavailable
from gradviz.render import Drawing, draw, write_atomic
from gradviz.render.dot import Style, edge_label
from gradviz.render.model import EdgeView
from gradviz.render.values import jacobian_shape

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="the system Graphviz `dot` is not installed")
RENDERERS = ["embedded", pytest.param("system", marks=needs_dot)]


# ---------------------------------------------------------------------------
# Reading an SVG diagram
# ---------------------------------------------------------------------------


def clean(text: str) -> str:
    """Text as a reader sees it: non-breaking spaces are spaces, runs of blanks one blank."""
    return re.sub(r"\s+", " ", text.replace("\xa0", " ")).strip()


@dataclass
class Box:
    """One node of the diagram as drawn: its text lines, tooltip and line style."""

    id: str
    lines: list[str]
    tooltip: str
    dashed: bool

    @property
    def title(self) -> str:
        return self.lines[0]

    def field(self, key: str) -> str | None:
        """The text after ``key`` (``value`` or ``∂``) on its line, plus continuation rows."""
        for i, line in enumerate(self.lines):
            head, _, rest = line.partition(" ")
            if head == key or (key == "∂" and head.startswith("∂")):
                parts = [rest]
                for more in self.lines[i + 1:]:
                    if not more.startswith("["):
                        break
                    parts.append(more)
                return " ".join(parts)
        return None

    @property
    def value(self) -> str | None:
        return self.field("value")

    @property
    def adjoint(self) -> str | None:
        return self.field("∂")

    @property
    def adjoint_head(self) -> str | None:
        for line in self.lines:
            if line.startswith("∂"):
                return line.split(" ")[0]
        return None


@dataclass
class Arrow:
    id: str
    src: str
    dst: str
    label: str
    tooltip: str
    dashed: bool


def parse(svg: bytes | str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8") if isinstance(svg, str) else svg)


def _tooltip(g: ET.Element) -> str:
    for a in g.iter(SVG + "a"):
        tip = a.get(XLINK + "title")
        if tip is not None:
            return tip
    return ""


def _dashed(g: ET.Element) -> bool:
    return any(el.get("stroke-dasharray") for el in g.iter()
               if el.tag in (SVG + "path", SVG + "polygon", SVG + "polyline", SVG + "ellipse"))


def boxes(svg: bytes | str) -> dict[str, Box]:
    """The diagram's nodes (legend boxes excluded), by element id."""
    out = {}
    for g in parse(svg).iter(SVG + "g"):
        if g.get("class") != "node" or g.get("id", "").startswith("legend"):
            continue
        lines = [clean("".join(t.itertext())) for t in g.iter(SVG + "text")]
        out[g.get("id")] = Box(g.get("id"), lines, _tooltip(g), _dashed(g))
    return out


def arrows(svg: bytes | str) -> list[Arrow]:
    out = []
    for g in parse(svg).iter(SVG + "g"):
        if g.get("class") != "edge":
            continue
        src, _, dst = g.find(SVG + "title").text.partition("->")
        label = " ".join(clean("".join(t.itertext())) for t in g.iter(SVG + "text"))
        out.append(Arrow(g.get("id"), src, dst, label, _tooltip(g), _dashed(g)))
    return out


def all_text(svg: bytes | str) -> list[str]:
    return [clean("".join(t.itertext())) for t in parse(svg).iter(SVG + "text")]


def box(svg: bytes | str, name: str) -> Box:
    """The box titled ``name`` or ``name = formula``."""
    found = [b for b in boxes(svg).values()
             if b.title == name or b.title.startswith(name + " = ")]
    assert len(found) == 1, f"{len(found)} boxes named {name!r}: {[b.title for b in boxes(svg).values()]}"
    return found[0]


def numbers(text: str) -> np.ndarray:
    """``"[0 2 4 6]"`` -> array([0., 2., 4., 6.]); handles inf, -inf and nan."""
    return np.array([float(tok) for tok in text.replace("[", " ").replace("]", " ").split()])


def svg_of(output: gv.Tensor, renderer: str, **options) -> bytes:
    return draw(output, **options).pipe("svg", renderer)


# ---------------------------------------------------------------------------
# The lesson's examples
# ---------------------------------------------------------------------------


from lesson import f as lesson_f  # noqa: E402  (samples/lesson, via conftest)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_dot_of_x_with_itself(renderer):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x).name("y")
    svg = svg_of(y, renderer)
    bx, by = box(svg, "x"), box(svg, "y")
    assert bx.value == "[0 1 2 3]"
    assert bx.adjoint == "[0 2 4 6]"
    assert bx.adjoint_head == "∂y/∂x"
    assert by.title == "y = dot(x, x)"
    assert by.value == "14"
    assert by.adjoint == "1"
    assert "DotBackward0" in by.lines
    assert not bx.dashed and not by.dashed


@pytest.mark.parametrize("renderer", RENDERERS)
def test_sum_of_x(renderer):
    x = gv.arange(4.0, requires_grad=True).name("x")
    s = x.sum().name("s")
    svg = svg_of(s, renderer)
    assert box(svg, "x").adjoint == "[1 1 1 1]"
    assert box(svg, "s").value == "6"
    assert "SumBackward0" in box(svg, "s").lines


@pytest.mark.parametrize("renderer", RENDERERS)
def test_hadamard_product_summed(renderer):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = (x * x).name("y")
    s = y.sum().name("s")
    svg = svg_of(s, renderer)
    assert box(svg, "y").title == "y = x * x"
    assert box(svg, "y").value == "[0 1 4 9]"
    assert box(svg, "y").adjoint == "[1 1 1 1]"
    assert box(svg, "x").adjoint == "[0 2 4 6]"
    assert box(svg, "s").value == "14"


def detach_example():
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = (x * x).name("y")
    u = gv.detach(y).name("u")
    z = (u * x).name("z")
    out = gv.sum(z).name("out")
    return x, y, u, z, out


@pytest.mark.parametrize("renderer", RENDERERS)
def test_detach_cuts_the_branch(renderer):
    x, y, u, z, out = detach_example()
    svg = svg_of(out, renderer)
    bx, by, bu, bz = (box(svg, n) for n in "xyuz")
    # dz/dx = u, not 3x²: x's adjoint equals u's value.
    assert bu.value == "[0 1 4 9]"
    assert bx.adjoint == bu.value == "[0 1 4 9]"
    assert bz.value == "[0 1 8 27]"
    assert bz.adjoint == "[1 1 1 1]"
    assert box(svg, "out").value == "36"
    # u and y get no gradient: drawn pruned, and say why.
    for b in (bu, by):
        assert b.dashed, b.title
        assert b.adjoint == "not computed"
    assert not bx.dashed and not bz.dashed
    assert "detach" in bu.tooltip
    assert "cut" in by.tooltip
    # The edge into detach is cut and carries nothing; the edge x -> z carries u.
    by_pair = {(a.src, a.dst): a for a in arrows(svg)}
    assert by_pair[(by.id, bu.id)].dashed
    assert by_pair[(bx.id, bz.id)].label == "[0 1 4 9]"


@pytest.mark.parametrize("renderer", RENDERERS)
def test_control_flow_rolled_into_one_box(renderer):
    a = gv.tensor(0.3, requires_grad=True).name("a")
    d = lesson_f(a).name("d")
    doublings, b = 1, 0.6  # b = a * 2, then b = b * 2 while |b| < 1000
    while abs(b) < 1000:
        b, doublings = b * 2, doublings + 1
    svg = svg_of(d, renderer, roll=True)
    rolled = box(svg, "d")
    assert f"×{doublings}" in rolled.title
    assert rolled.value == "1229"
    assert box(svg, "a").adjoint == "4096"
    assert float(box(svg, "a").adjoint) == pytest.approx(d.item() / a.item(), rel=1e-4)
    assert len(boxes(svg)) == 2  # a, and the rolled run
    assert f"{doublings} repeated nodes" in rolled.tooltip


def test_control_flow_unrolled_has_a_box_per_doubling():
    a = gv.tensor(0.3, requires_grad=True).name("a")
    d = lesson_f(a).name("d")
    svg = svg_of(d, "embedded")
    muls = [b for b in boxes(svg).values() if "MulBackward0" in b.lines]
    assert len(muls) == 12
    assert not any("×" in b.title for b in boxes(svg).values())
    assert box(svg, "a").adjoint == "4096"


@pytest.mark.parametrize("renderer", RENDERERS)
def test_least_squares_gradient(renderer):
    Xn = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    yn = np.array([0.0, 1.0, 2.0])
    wn = np.array([0.5, -1.5])
    X = gv.tensor(Xn).name("X")
    y = gv.tensor(yn).name("y")
    w = gv.tensor(wn, requires_grad=True).name("w")
    z = (gv.norm(X @ w - y) ** 2).name("z")
    svg = svg_of(z, renderer)
    expected = 2 * Xn.T @ (Xn @ wn - yn)
    bw = box(svg, "w")
    np.testing.assert_allclose(numbers(bw.adjoint), expected, rtol=1e-4)
    # 4 significant digits are shown: 108.75 is drawn as 108.8.
    np.testing.assert_allclose(numbers(box(svg, "z").value),
                               np.sum((Xn @ wn - yn) ** 2), rtol=1e-3)
    np.testing.assert_allclose(numbers(box(svg, "X").value), Xn.ravel())
    for const in ("X", "y"):
        assert box(svg, const).adjoint == "not computed"
        assert "constant" in box(svg, const).tooltip


@pytest.mark.parametrize("renderer", RENDERERS)
def test_value_used_twice_gets_two_contributions(renderer):
    x = gv.tensor([1.0, -2.0, 3.0], requires_grad=True).name("x")
    y = (x * x).name("y")
    s = y.sum().name("s")
    svg = svg_of(s, renderer)
    bx, by = box(svg, "x"), box(svg, "y")
    into = [a for a in arrows(svg) if a.src == bx.id and a.dst == by.id]
    assert len(into) == 2
    parts = [numbers(a.label) for a in into]
    for p in parts:
        np.testing.assert_allclose(p, [1, -2, 3])  # upstream 1 times the other factor x
    np.testing.assert_allclose(parts[0] + parts[1], numbers(bx.adjoint))
    np.testing.assert_allclose(numbers(bx.adjoint), [2, -4, 6])


@pytest.mark.parametrize("renderer", RENDERERS)
def test_non_scalar_output_is_seeded_with_ones(renderer):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = (x * x).name("y")
    drawing = draw(y)
    svg = drawing.pipe("svg", renderer)
    assert any("seed: ones" in t for t in all_text(svg))
    assert any("seed: ones" in n for n in drawing.notes)
    assert box(svg, "x").adjoint == "[0 2 4 6]"
    assert box(svg, "y").adjoint == "[1 1 1 1]"


def two_inputs():
    a = gv.tensor([1.0, 2.0], requires_grad=True).name("a")
    b = gv.tensor([3.0, 4.0], requires_grad=True).name("b")
    bb = (b * b).name("bb")
    out = (gv.sum(a * a) + gv.sum(bb)).name("out")
    return a, b, bb, out


@pytest.mark.parametrize("renderer", RENDERERS)
def test_wrt_prunes_the_other_branch(renderer):
    a, b, bb, out = two_inputs()
    svg = svg_of(out, renderer, wrt=[a])
    assert box(svg, "a").adjoint == "[2 4]"
    for name in ("b", "bb"):
        assert box(svg, name).adjoint == "not computed"
        assert "leads to none of the requested inputs" in box(svg, name).tooltip
    assert box(svg, "bb").dashed
    assert not box(svg, "a").dashed
    # Without wrt, b's branch is differentiated.
    assert box(svg_of(out, renderer), "b").adjoint == "[6 8]"


def test_wrt_input_not_requested_is_drawn_pruned():
    """An input that requires grad but is left out of wrt is pruned, not a constant.

    The issue: "the rest are pruned and drawn as pruned".
    """
    a, b, bb, out = two_inputs()
    drawing = draw(out, wrt=[a])
    kinds = {v.name: v.kind for v in drawing.view.nodes}
    assert kinds["bb"] == "pruned"
    assert kinds["b"] == "pruned", "b requires grad but is drawn in the constant style"
    assert box(drawing.pipe("svg", "embedded"), "b").dashed


@pytest.mark.parametrize("renderer", RENDERERS)
def test_show_structure_and_values(renderer):
    x = gv.arange(4.0, requires_grad=True).name("x")
    s = (x * x).sum().name("s")
    structure = svg_of(s, renderer, show="structure")
    for b in boxes(structure).values():
        assert b.value is None and b.adjoint is None, b.lines
    assert box(structure, "x").lines == ["x", "AccumulateGrad", "float32[4]"]
    assert box(structure, "s").lines == ["s = sum(v1)", "SumBackward0", "float32 scalar"]
    assert not any("∂" in t for t in all_text(structure))

    values = svg_of(s, renderer, show="values")
    assert box(values, "x").value == "[0 1 2 3]"
    assert box(values, "s").value == "14"
    assert not any("∂" in t for t in all_text(values))
    assert x.grad is None


@pytest.mark.parametrize("show", ["structure", "values"])
def test_show_without_adjoints_does_not_draw_everything_pruned(show):
    """With no backward pass run (show structure/values), nothing is 'pruned'.

    The input x requires grad and x*x is an ordinary op: they must keep their
    own styles, not the constant/pruned ones with 'not reached by the last
    backward pass' tooltips.
    """
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = (x * x).name("y")
    s = y.sum().name("s")
    drawing = draw(s, show=show)
    kinds = {v.name: v.kind for v in drawing.view.nodes}
    assert kinds == {"x": "leaf", "y": "op", "s": "output"}
    svg = drawing.pipe("svg", "embedded")
    for name in ("x", "y", "s"):
        assert not box(svg, name).dashed, name
        assert "no gradient" not in box(svg, name).tooltip, box(svg, name).tooltip
    assert not any(a.dashed for a in arrows(svg))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_edge_labels_jacobian(renderer):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = (x * x).name("y")
    s = y.sum().name("s")
    svg = svg_of(s, renderer, edge_labels="jacobian")
    labels = {(a.src, a.dst, a.id): a.label for a in arrows(svg)}
    bx, by, bs = box(svg, "x"), box(svg, "y"), box(svg, "s")
    into_y = [v for (src, dst, _), v in labels.items() if (src, dst) == (bx.id, by.id)]
    into_s = [v for (src, dst, _), v in labels.items() if (src, dst) == (by.id, bs.id)]
    assert len(into_y) == 2 and all(re.match(r"J \(4\)×\(4\)", v) for v in into_y)
    assert len(into_s) == 1 and re.match(r"J \(\)×\(4\)", into_s[0])
    assert all(re.match(r"J \([\d,]*\)×\([\d,]*\)", v) for v in labels.values())
    # Contributions are not the label in this mode.
    assert not any(v == "[0 1 2 3]" for v in labels.values())


def _greyscale(colour: str) -> bool:
    c = colour.strip().lower()
    if c in ("none", "transparent", "black", "white", "gray", "grey"):
        return True
    m = re.fullmatch(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})?", c)
    if m:
        return m.group(1) == m.group(2) == m.group(3)
    m = re.fullmatch(r"#([0-9a-f])([0-9a-f])([0-9a-f])", c)
    return bool(m) and m.group(1) == m.group(2) == m.group(3)


def theme_example():
    x, y, u, z, out = detach_example()
    c = gv.ones(4).name("c")  # a constant
    return x, (out + gv.sum(c * x)).name("total")


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("theme", ["light", "dark", "print"])
def test_every_theme_renders(theme, renderer):
    x, total = theme_example()
    drawing = draw(total, theme=theme)
    svg = drawing.pipe("svg", renderer)
    root = parse(svg)
    assert box(svg, "x").adjoint == "[1 2 5 10]"  # u + c
    assert box(svg, "u").dashed
    kinds = {v.kind for v in drawing.view.nodes}
    assert kinds == {"leaf", "constant", "op", "output", "pruned"}
    legend = [g.get("id") for g in root.iter(SVG + "g") if g.get("id", "").startswith("legend_")]
    assert {f"legend_{k}" for k in kinds} <= set(legend)
    colours = {el.get(attr) for el in root.iter() for attr in ("fill", "stroke")
               if el.get(attr) is not None}
    grey = {c for c in colours if _greyscale(c)}
    if theme == "print":
        assert colours == grey, f"not grey-scale: {sorted(colours - grey)}"
    else:
        assert colours - grey, "a colour theme without any colour"
    if theme == "dark":
        background = root.find(f"{SVG}g/{SVG}polygon")
        assert background.get("fill") == "#111827"


AWKWARD = 'a{b}|c<d>"e"&f\\g'


@pytest.mark.parametrize("renderer", RENDERERS)
def test_awkward_label_renders_verbatim(renderer):
    t = gv.tensor([1.0, 2.0], requires_grad=True).name(AWKWARD)
    out = (t * t).sum().name("out")
    data = svg_of(out, renderer)
    ET.fromstring(data)  # valid XML
    b = box(data, AWKWARD)
    assert b.title == AWKWARD
    assert b.adjoint_head == f"∂out/∂{AWKWARD}"
    assert b.adjoint == "[2 4]"
    assert b.tooltip.startswith(f"{AWKWARD} (v0)")
    assert any(line == f"v1 = {AWKWARD} * {AWKWARD}" for line in all_text(data))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_awkward_title_renders_verbatim(renderer):
    x = gv.arange(3.0, requires_grad=True).name("x")
    title = 'slide {1} | <x> "q" & \\ end'
    svg = svg_of(x.sum(), renderer, title=title)
    assert title in all_text(svg)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_svg_is_self_contained_with_stable_ids(renderer):
    x, y, u, z, out = detach_example()
    data = svg_of(out, renderer)
    root = parse(data)
    for el in root.iter():
        for key, value in el.attrib.items():
            if key.endswith("href"):
                assert not re.match(r"\s*(https?:|file:|//)", value), (key, value)
            if key == "style":
                assert "url(" not in value
        assert el.tag not in (SVG + "image", SVG + "use", SVG + "script")
    ids = boxes(data)
    assert sorted(ids) == [f"v{i}" for i in range(5)]
    assert [ids[f"v{i}"].title.split(" ")[0] for i in range(5)] == ["x", "y", "u", "z", "out"]
    assert sorted(a.id for a in arrows(data)) == sorted(f"e{i}" for i in range(len(arrows(data))))
    # The same graph drawn again gets the same ids and the same picture.
    assert svg_of(out, renderer) == data


def test_render_does_not_touch_grad(tmp_path):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x)
    result = gv.render(y, tmp_path / "g.svg", renderer="embedded")
    assert isinstance(result, graphviz.Digraph)
    assert x.grad is None
    assert box((tmp_path / "g.svg").read_bytes(), "x").adjoint == "[0 2 4 6]"
    gv.render(y)  # again, and without a path
    assert x.grad is None
    # The graph is kept for the user's own backward(), which does not accumulate ours.
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 2, 4, 6])


@pytest.mark.parametrize("renderer", RENDERERS)
def test_render_after_backward_freed_the_graph(renderer):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x).name("y")
    y.backward()
    drawing = draw(y)
    svg = drawing.pipe("svg", renderer)
    # No pass can be run any more: the box says so rather than show a number another
    # pass left behind (here it would have been right; after a second backward() it is not).
    assert box(svg, "x").adjoint == "unavailable: graph freed"
    assert box(svg, "y").value == "14"
    assert any("retain_graph=True" in t for t in all_text(svg))
    np.testing.assert_array_equal(x.grad.numpy(), [0, 2, 4, 6])  # untouched


def test_edges_after_backward_are_not_drawn_as_pruned():
    """Gradient did flow along x -> y (x shows its adjoint); only the per-edge
    contribution was not kept.  The legend says 'dashed: pruned, no gradient
    flows', so these edges must not be dashed nor say 'pruned'."""
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x).name("y")
    y.backward()
    svg = draw(y).pipe("svg", "embedded")
    edges = arrows(svg)
    assert len(edges) == 2
    for a in edges:
        assert not a.dashed, a.tooltip
        assert "pruned" not in a.tooltip, a.tooltip


def test_hundred_thousand_node_chain():
    x = gv.tensor(0.5, requires_grad=True).name("x")
    h = x
    for _ in range(100_000):
        h = gv.sin(h)
    drawing = draw(h)
    assert len(drawing.tape) == 100_001
    assert any("--max-nodes" in n for n in drawing.notes)
    assert len(drawing.view.nodes) <= 400
    assert "×100000" in drawing.source
    assert "--max-nodes" in drawing.source  # said on the diagram itself
    svg = drawing.pipe("svg", "embedded")
    assert any("×100000" in t for t in all_text(svg))
    # The adjoint of x is the product of the cosines along the chain.
    expected = 1.0
    value = np.float32(0.5)
    for _ in range(100_000):
        expected *= float(np.cos(value))
        value = np.sin(value, dtype=np.float32)
    np.testing.assert_allclose(float(drawing.adjoint_of(x)), expected, rtol=1e-2)


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF-")])
def test_png_and_pdf_with_the_system_renderer(tmp_path, suffix, magic):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x)
    path = tmp_path / f"g{suffix}"
    gv.render(y, path, renderer="system")
    assert path.read_bytes().startswith(magic)
    # The format can also be given explicitly, whatever the extension.
    other = tmp_path / "slide.bin"
    gv.render(y, other, format=suffix[1:], renderer="system")
    assert other.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, other.name])


def test_render_writes_atomically(tmp_path):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x)
    target = tmp_path / "g.svg"
    target.write_text("old")
    gv.render(y, target, renderer="embedded")
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]
    assert box(target.read_bytes(), "x").adjoint == "[0 2 4 6]"
    gv.render(y, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot", "g.svg"]


def test_render_into_a_missing_folder_fails_cleanly(tmp_path):
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x)
    with pytest.raises(gv.RenderError, match="cannot write"):
        gv.render(y, tmp_path / "missing" / "g.svg", renderer="embedded")
    assert list(tmp_path.iterdir()) == []
    # Onto a directory: the temporary file is removed again.
    (tmp_path / "d.svg").mkdir()
    with pytest.raises(RenderError):
        gv.render(y, tmp_path / "d.svg", renderer="embedded")
    assert [p.name for p in tmp_path.iterdir()] == ["d.svg"]
    assert list((tmp_path / "d.svg").iterdir()) == []
    with pytest.raises(RenderError):
        write_atomic(tmp_path / "nope" / "x.bin", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["d.svg"]


# -- write_atomic: what is at the target decides how it is written ------------


def test_write_atomic_writes_through_a_symlink(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "slide.svg"
    target.write_bytes(b"old")
    link = tmp_path / "link.svg"
    link.symlink_to(target)
    write_atomic(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)  # the link survives
    assert target.read_bytes() == b"new"
    # The temporary file was made beside the real target, and is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.svg", "real"]
    assert [p.name for p in real_dir.iterdir()] == ["slide.svg"]


def test_write_atomic_through_a_relative_and_a_dangling_symlink(tmp_path):
    (tmp_path / "sub").mkdir()
    link = tmp_path / "sub" / "link.svg"
    link.symlink_to("../made.svg")  # dangling: its target is created
    write_atomic(link, b"data")
    assert link.is_symlink() and (tmp_path / "made.svg").read_bytes() == b"data"
    write_atomic(link, b"again")
    assert (tmp_path / "made.svg").read_bytes() == b"again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made.svg", "sub"]


def test_write_atomic_symlink_loop_fails_cleanly(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(RenderError, match="cannot write"):
        write_atomic(tmp_path / "a", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def _read_fifo(path, into: list) -> threading.Thread:
    def reader() -> None:
        with open(path, "rb") as fh:
            into.append(fh.read())
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_write_atomic_writes_into_a_fifo_in_place(tmp_path):
    """Like /dev/null or /dev/stdout: something that is not a regular file is written, not replaced."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    thread = _read_fifo(fifo, received)
    write_atomic(fifo, b"through the pipe")
    thread.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not a regular file
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]
    # The same through a symlink to it.
    link = tmp_path / "link"
    link.symlink_to(fifo)
    received.clear()
    thread = _read_fifo(fifo, received)
    write_atomic(link, b"again")
    thread.join(timeout=10)
    assert received == [b"again"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert link.is_symlink()


def test_write_atomic_keeps_the_mode_of_an_existing_file(tmp_path):
    target = tmp_path / "g.svg"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    os.chmod(target, 0o755)
    write_atomic(target, b"newer")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755


def test_write_atomic_new_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "private.svg", b"data")
        os.umask(0o022)
        write_atomic(tmp_path / "shared.svg", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "private.svg").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "shared.svg").st_mode) == 0o644


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write into any folder")
def test_write_atomic_into_a_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(RenderError, match="cannot write .*Permission denied"):
            write_atomic(folder / "g.svg", b"data")
        assert list(folder.iterdir()) == []
    finally:
        os.chmod(folder, 0o700)


def test_write_atomic_permission_denied(tmp_path, monkeypatch):
    """As above, for any user (root ignores folder permissions): mkstemp is refused."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(RenderError, match="cannot write .*Permission denied"):
        write_atomic(tmp_path / "g.svg", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_write_atomic_leaves_no_temporary_file(tmp_path, monkeypatch, failure):
    """Ctrl-C (or a full disk) just before the rename: the old file stays, the temp file goes."""
    target = tmp_path / "g.svg"
    target.write_bytes(b"previous slide")

    def interrupted(src, dst):
        raise failure

    monkeypatch.setattr(os, "replace", interrupted)
    expected = KeyboardInterrupt if failure is KeyboardInterrupt else RenderError
    with pytest.raises(expected):
        write_atomic(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]
    assert target.read_bytes() == b"previous slide"


# -- Jacobian edge labels come from shapes alone ------------------------------


def test_jacobian_shape_takes_shapes():
    assert jacobian_shape((4,), (4,)) == "J (4)×(4): vector by vector"
    assert jacobian_shape((), (2, 3)) == "J ()×(2,3): scalar by matrix"
    assert jacobian_shape((5, 1, 2), ()) == "J (5,1,2)×(): matrix by scalar"


def test_jacobian_edge_label_allocates_nothing():
    """Shapes of 10^10 elements: allocating them, as labels once did, would fail."""
    huge = (100_000, 100_000)
    edge = EdgeView(src="v0", dst="v1", slot=0, contribution=None, pruned=False, cut=False,
                    input_shape=huge, output_shape=(100_000,))
    assert edge_label(edge, "jacobian", Style()) == \
        "J (100000)×(100000,100000): vector by matrix"


@pytest.mark.parametrize("fmt, module", [("png", "resvg_py"), ("pdf", "svglib.svglib")])
def test_unavailable_format_writes_nothing(tmp_path, monkeypatch, fmt, module):
    """Without the converter package: a message naming it, and no file."""
    monkeypatch.setitem(__import__("sys").modules, module, None)  # import fails
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x)
    target = tmp_path / f"g.{fmt}"
    with pytest.raises(RendererUnavailable, match=f"{fmt.upper()} output needs the Python "
                                                  f"package.*pip install resvg-py svglib"):
        gv.render(y, target, renderer="embedded")
    assert list(tmp_path.iterdir()) == []


def test_notebook_svg_reprs():
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = gv.dot(x, x).name("y")
    drawing = draw(y)
    assert isinstance(drawing, Drawing)
    text = drawing._repr_svg_()
    assert isinstance(text, str)
    assert parse(text).tag == SVG + "svg"
    assert box(text, "x").adjoint == "[0 2 4 6]"
    tape_text = gv.tape(y)._repr_svg_()
    assert isinstance(tape_text, str)
    assert box(tape_text, "y").value == "14"
    assert box(tape_text, "x").adjoint == "[0 2 4 6]"
    assert x.grad is None


@pytest.mark.parametrize("renderer", RENDERERS)
def test_non_finite_values(renderer):
    with np.errstate(all="ignore"):
        x = gv.tensor([0.0, 1.0], requires_grad=True).name("x")
        lg = gv.log(x).name("lg")
        out = gv.sum(lg).name("out")
        v = gv.tensor([-1.0, 4.0], requires_grad=True).name("v")
        r = gv.sqrt(v).name("r")
        drawing = draw(out)
        drawing2 = draw(r.sum().name("s"))
    svg = drawing.pipe("svg", renderer)
    assert box(svg, "lg").value == "[-inf 0]"
    assert box(svg, "out").value == "-inf"
    assert box(svg, "x").adjoint == "[inf 1]"
    assert any("non-finite" in w for w in drawing.warnings)
    assert "x" in drawing.warnings[0] and "lg" in drawing.warnings[0]
    svg2 = drawing2.pipe("svg", renderer)
    assert box(svg2, "r").value == "[nan 2]"
    assert box(svg2, "s").value == "nan"
    assert any("non-finite" in w for w in drawing2.warnings)
    # A finite graph has no warning.
    assert draw(gv.sum(gv.arange(3.0, requires_grad=True))).warnings == []



def test_returned_digraph_shows_itself_in_notebooks_without_system_dot(monkeypatch) -> None:
    """Jupyter calls _repr_mimebundle_; it must not need the system `dot` program."""
    import graphviz

    from gradviz.render import backends

    monkeypatch.setattr(backends, "system_available", lambda: False)
    x = gv.arange(4.0, requires_grad=True).name("x")
    g = gv.render(gv.dot(x, x))
    assert isinstance(g, graphviz.Digraph)
    svg = g._repr_mimebundle_()["image/svg+xml"]
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "14" in texts and "[0 2 4 6]" in texts.replace("\xa0", " ")


def test_a_repeated_block_of_several_ops_rolls_into_one_box() -> None:
    """y = tanh(y * 1.01) + 0.001 in a loop: the three-op block is one box marked ×N."""
    x = gv.tensor([0.5, -0.2], requires_grad=True).name("x")
    y = x
    for _ in range(50):
        y = gv.tanh(y * 1.01) + 0.001
    loss = (y * y).sum().name("loss")
    view = gv.draw(loss, roll=True).view
    rolled = [v for v in view.nodes if v.repeat > 1]
    assert len(rolled) == 1
    assert rolled[0].formula == "[· * 1.01 → tanh(·) → · + 0.001] ×50"
    assert rolled[0].repeat == 150
    # The box shows the run's last value and adjoint, which the engine computed.
    np.testing.assert_allclose(rolled[0].value, y.data)
    (gy,) = gv.grad(loss, y)
    np.testing.assert_allclose(np.asarray(rolled[0].adjoint), gy.data, rtol=1e-6)


def test_beyond_max_nodes_the_inputs_stay_and_the_middle_is_one_box() -> None:
    """Steps that do not repeat cannot roll: the middle is elided, inputs and output stay."""
    x = gv.tensor([0.5, -0.2], requires_grad=True).name("x")
    w = gv.tensor([1.0, 0.9], requires_grad=True).name("w")
    y = x
    for i in range(100):
        y = gv.tanh(y * w + 0.01 * i)
    loss = (y * y).sum().name("loss")
    drawing = gv.draw(loss, max_nodes=12)
    view = drawing.view
    ids = [v.id for v in view.nodes]
    assert len(view.nodes) <= 12 + 1
    assert "elided" in ids
    names = {v.name for v in view.nodes}
    assert {"x", "w", "loss"} <= names
    elided = next(v for v in view.nodes if v.id == "elided")
    tape = gv.Tape(loss)
    drawn = sum(len(v.nodes) for v in view.nodes if v.id != "elided")
    folded = sum(1 for n in tape.nodes if n.op is None and n.data.ndim == 0 and n.label is None)
    assert len(elided.nodes) + drawn + folded == len(tape)   # every node accounted for once
    into = {(e.src, e.dst) for e in view.edges if "elided" in (e.src, e.dst)}
    x_id = next(v.id for v in view.nodes if v.name == "x")
    assert (x_id, "elided") in into
    assert any("not shown" in note for note in drawing.notes)
    svg = drawing.pipe("svg", "embedded").decode()
    assert "nodes not shown" in svg.replace("\xa0", " ")


@pytest.mark.parametrize("renderer", RENDERERS)
def test_svg_titles_say_why_a_box_was_pruned(renderer: str) -> None:
    """The issue asks for the reason in the SVG <title>, not only in the link's tooltip."""
    x = gv.arange(4.0, requires_grad=True).name("x")
    y = (x * x).name("y")
    u = gv.detach(y).name("u")
    z = (u * x).sum().name("z")
    root = ET.fromstring(gv.draw(z).pipe("svg", renderer))
    ns = "{http://www.w3.org/2000/svg}"
    titles = {g.get("id"): g.find(f"{ns}title").text for g in root.iter(f"{ns}g")
              if g.get("class") == "node"}
    u_id = next(k for k, t in titles.items() if t.startswith("u ("))
    assert "detach" in titles[u_id] and "no gradient" in titles[u_id]
    assert "adjoint: [0 1 4 9]" in titles["v0"]


def test_a_weight_shared_by_a_rolled_loop_gets_one_edge_with_the_summed_contribution() -> None:
    x = gv.tensor([0.5, -0.2], requires_grad=True).name("x")
    w = gv.tensor([1.0, 0.9], requires_grad=True).name("w")
    b = gv.tensor([0.1, 0.1]).name("b")
    y = x
    for _ in range(100):
        y = b + gv.tanh(w * y)
    loss = y.sum().name("loss")
    view = gv.draw(loss, roll=True).view
    assert len(view.nodes) == 5                          # x, w, b, the loop, loss
    w_id = next(v.id for v in view.nodes if v.name == "w")
    into_loop = [e for e in view.edges if e.src == w_id]
    assert len(into_loop) == 1 and into_loop[0].count == 100
    (gw,) = gv.grad(loss, w)
    np.testing.assert_allclose(np.asarray(into_loop[0].contribution), gw.data, rtol=1e-5)
    from gradviz.render.dot import Style, edge_label

    assert edge_label(into_loop[0], "contribution", Style()).startswith("Σ100 [")


def test_rolling_never_hides_a_constant_of_the_first_step() -> None:
    w = gv.tensor(1.0, requires_grad=True).name("w")
    y = w + 0.5
    for _ in range(3):
        y = 2.0 * y
        y = w + y
    formulas = [v.formula for v in gv.draw(y, roll=True).view.nodes]
    assert "w + 0.5" in formulas
    assert "[2 * · → w + ·] ×3" in formulas


def test_max_nodes_is_a_real_limit() -> None:
    x = gv.tensor([0.5], requires_grad=True).name("x")
    y = x
    for i in range(30):
        y = gv.tanh(y * 1.5 + 0.01 * i)
    assert len(gv.draw(y.sum(), max_nodes=2).view.nodes) <= 2
    with pytest.raises(gv.GradvizValueError, match="max_nodes must be from 2 to"):
        gv.draw(y.sum(), max_nodes=1)


def test_writing_through_an_open_descriptor_keeps_its_file(tmp_path) -> None:
    """/dev/stdout or /proc/self/fd/N: the file behind the descriptor is written, not replaced."""
    from gradviz.render.files import write_atomic

    target = tmp_path / "out.txt"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, b"before\n")
        write_atomic(f"/proc/self/fd/{fd}", b"SVG\n")
        os.write(fd, b"after\n")
        assert os.fstat(fd).st_nlink == 1           # still the file in the folder
    finally:
        os.close(fd)
    assert target.read_bytes() == b"before\nSVG\nafter\n"
