"""Shared set-up for the test suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The lesson's own functions (f, h) live with the samples; tests import the same copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gradviz" / "teach" / "samples"))


@pytest.fixture(scope="session", autouse=True)
def _gradviz_cache_dir(tmp_path_factory):
    """Keep the embedded renderer's compiled-module cache out of the user's home.

    Set in the environment, so the CLI subprocesses share it: the first one
    compiles the WebAssembly module, the others load it from this directory.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("gradviz-cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _drop_embedded_renderer():
    """Free the embedded Graphviz before interpreter shutdown.

    Left to the end of the process, wasmtime's finalizers run after its FFI
    module was torn down and print 'Exception ignored in Managed.__del__'.
    """
    yield
    import gc

    from gradviz.render import backends

    backends._EMBEDDED = None
    gc.collect()
