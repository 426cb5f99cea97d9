"""Shared pieces of the benchmarks: the op chain, its contenders, and the worker loop.

The chain is a repetition of one block of four elementwise ops, the same for
every contender::

    y = y * w          # mul   (w: a constant, does not require grad)
    y = sin(y)         # sin
    y = y + b          # add   (b: a constant)
    y = tanh(y)        # tanh

followed by ``y.sum().backward()`` (or its equivalent), and the gradient of the
input ``x``.

Values.  The timed chain uses ``w = [1, -1, 1, -1, ...]`` and ``b = 0``, so that
the map is *neutral* at its fixed point: over 20,000 ops the values and the
gradient decay only polynomially (to about 1e-2 and 1e-6) and never reach
subnormal floats, which would slow every contender's arithmetic down by a
large factor and turn the benchmark into a measure of the FPU.  The arithmetic
costs the same whatever the values are.  The correctness check runs a short
chain with random ``w`` and ``b`` instead, where a wrong rule cannot hide.

Each contender runs in its own process (see :func:`worker_main`): the driver
sends it one JSON command per line on stdin and reads one JSON reply per line.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    import resource  # page faults and peak memory (POSIX only)
except ImportError:  # pragma: no cover
    resource = None

REPO_ROOT = Path(__file__).resolve().parents[1]
BLOCK = ("mul", "sin", "add", "tanh")  # the op mix, in order
CONTENDERS = ("numpy", "gradviz", "torch", "autograd")
LABELS = {
    "numpy": "numpy floor (hand-written)",
    "gradviz": "gradviz",
    "gradviz-nogc": "gradviz, GC disabled (informative)",
    "torch": "PyTorch (CPU, 1 thread)",
    "autograd": "HIPS autograd",
}


# -- inputs -------------------------------------------------------------------------


def blocks_for(n_ops: int) -> int:
    """How many 4-op blocks make ``n_ops`` ops (at least one)."""
    return max(1, int(n_ops) // len(BLOCK))


def make_inputs(size: int, dtype: str, kind: str, seed: int = 0) -> tuple:
    """``(x0, w, b)`` as numpy arrays of ``size`` elements.

    kind "bench": the neutral chain (see the module notes); "check": random
    weights and offsets, for a short chain whose gradient is checked tightly.
    """
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if kind == "bench":
        if size <= 8:
            x0 = np.resize(np.array([0.5, -0.3, 1.2, 0.8]), size)
        else:
            x0 = rng.uniform(-1.5, 1.5, size)
        w = np.resize(np.array([1.0, -1.0]), size)
        b = np.zeros(size)
    elif kind == "check":
        x0 = rng.uniform(-1.5, 1.5, size)
        w = rng.uniform(0.5, 1.5, size) * rng.choice([-1.0, 1.0], size)
        b = rng.uniform(-0.5, 0.5, size)
    else:
        raise ValueError(kind)
    return x0.astype(dt), w.astype(dt), b.astype(dt)


# -- the contenders -----------------------------------------------------------------
#
# Each ``prepare_*`` takes the inputs and the number of blocks and returns a
# ``step()`` that runs the whole chain once, forward and backward, and returns
# ``(grad, phases)``: the input's gradient as a numpy array and the
# ``(forward, backward, teardown)`` seconds (None where the library does all in
# one call).  ``teardown`` is freeing the graph: the caller pays it too.


def floor_grad(x0: np.ndarray, w: np.ndarray, b: np.ndarray, blocks: int) -> np.ndarray:
    """The hand-written numpy chain: what an autodiff engine cannot beat.

    The forward pass keeps what the backward pass needs (sin's input, tanh's
    output); the backward pass applies each derivative by hand.
    """
    return _floor_step(x0, w, b, blocks)[0]


def _floor_step(x0: np.ndarray, w: np.ndarray, b: np.ndarray, blocks: int) -> tuple:
    t0 = time.perf_counter()
    y = x0
    saved = []
    for _ in range(blocks):
        y = y * w
        s = y
        y = np.sin(y)
        y = y + b
        y = np.tanh(y)
        saved.append((s, y))
    loss = y.sum()
    t1 = time.perf_counter()
    g = np.ones_like(y)
    for s, t in reversed(saved):
        g = g * (1 - t * t)   # tanh
        g = g * np.cos(s)     # sin (add passes g through)
        g = g * w             # mul
    t2 = time.perf_counter()
    del saved, s, t, y, loss
    t3 = time.perf_counter()
    return g, (t1 - t0, t2 - t1, t3 - t2)


def prepare_numpy(x0, w, b, blocks):
    return lambda: _floor_step(x0, w, b, blocks)


def _tape_step(tensor, sin, tanh, grad_array, x0, w, b, blocks):
    """One timed forward + backward of the chain on a tape-recording library.

    gradviz and PyTorch run this very code, so they are timed on the same work.
    """
    x = tensor(x0, requires_grad=True)
    W = tensor(w)
    B = tensor(b)

    def step():
        x.grad = None
        t0 = time.perf_counter()
        y = x
        for _ in range(blocks):
            y = y * W
            y = sin(y)
            y = y + B
            y = tanh(y)
        loss = y.sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        g = grad_array(x.grad)
        del y, loss
        t3 = time.perf_counter()
        return g, (t1 - t0, t2 - t1, t3 - t2)

    return step


def prepare_gradviz(x0, w, b, blocks):
    import gradviz as gv

    return _tape_step(gv.tensor, gv.sin, gv.tanh, lambda g: g.data, x0, w, b, blocks)


def prepare_torch(x0, w, b, blocks):
    import torch

    return _tape_step(torch.tensor, torch.sin, torch.tanh, lambda g: g.numpy(), x0, w, b, blocks)


def prepare_autograd(x0, w, b, blocks):
    import autograd.numpy as anp
    from autograd import grad

    def f(x):
        y = x
        for _ in range(blocks):
            y = y * w
            y = anp.sin(y)
            y = y + b
            y = anp.tanh(y)
        return anp.sum(y)

    df = grad(f)
    return lambda: (np.asarray(df(x0)), None)


PREPARE: dict[str, Callable] = {
    "numpy": prepare_numpy,
    "gradviz": prepare_gradviz,
    "torch": prepare_torch,
    "autograd": prepare_autograd,
}


def import_contender(name: str) -> dict:
    """Import the contender's library (in its own process); return its versions."""
    versions = {"python": sys.version.split()[0], "numpy": np.__version__}
    if name == "gradviz":
        sys.path.insert(0, str(REPO_ROOT))  # measure this work tree's engine
        import gradviz
        versions["gradviz"] = gradviz.__version__
        versions["gradviz_path"] = str(Path(gradviz.__file__).resolve().parent)
    elif name == "torch":
        import torch
        torch.set_num_threads(1)
        with contextlib.suppress(RuntimeError):  # already set: fine
            torch.set_num_interop_threads(1)
        versions["torch"] = torch.__version__
        versions["torch_threads"] = torch.get_num_threads()
    elif name == "autograd":
        from importlib.metadata import PackageNotFoundError, version

        import autograd
        try:
            versions["autograd"] = version("autograd")
        except PackageNotFoundError:
            versions["autograd"] = getattr(autograd, "__version__", "?")
    return versions


# -- garbage-collector accounting ---------------------------------------------------


class GCMeter:
    """Time spent inside the cyclic garbage collector, and collections per generation."""

    def __init__(self) -> None:
        self.active = False
        self.reset()
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.seconds = 0.0
        self.counts = [0, 0, 0]
        self._start = None

    def _callback(self, phase: str, info: dict) -> None:
        if not self.active:
            return
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None
            gen = info.get("generation", 0)
            if 0 <= gen < 3:
                self.counts[gen] += 1


# -- the worker process ---------------------------------------------------------------


def worker_main(name: str) -> None:
    """Serve the driver's commands for one contender; one JSON line per reply.

    Replies go to the original stdout; anything a library prints goes to stderr.
    """
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    t = time.perf_counter()
    try:
        versions = import_contender(name)
    except Exception as exc:  # noqa: BLE001 (not installed, or broken: the driver skips it)
        reply({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    reply({"ready": True, "versions": versions, "import_s": time.perf_counter() - t,
           "pid": os.getpid()})

    meter = GCMeter()
    steps: dict = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "quit":
                break
            key = (cmd["kind"], cmd["size"], cmd["dtype"], cmd["blocks"], cmd.get("seed", 0))
            if key not in steps:
                steps.clear()  # drop the previous configuration's arrays first
                gc.collect()
                x0, w, b = make_inputs(cmd["size"], cmd["dtype"], cmd["kind"], cmd.get("seed", 0))
                steps[key] = PREPARE[name](x0, w, b, cmd["blocks"])
            step = steps[key]
            gc.collect()
            meter.reset()
            gc_on = cmd.get("gc", True)
            if not gc_on:
                gc.disable()
            ru0 = resource.getrusage(resource.RUSAGE_SELF) if resource else None
            meter.active = True
            c0 = time.process_time()
            t0 = time.perf_counter()
            try:
                g, phases = step()
                t1 = time.perf_counter()
                c1 = time.process_time()
            finally:
                meter.active = False
                gc.enable()
            ru1 = resource.getrusage(resource.RUSAGE_SELF) if resource else None
            res = {"ok": True, "total": t1 - t0, "cpu": c1 - c0, "phases": phases,
                   "gc_s": meter.seconds, "gc_counts": meter.counts,
                   "minor_faults": ru1.ru_minflt - ru0.ru_minflt if resource else None,
                   "max_rss_kb": ru1.ru_maxrss if resource else None}
            if cmd.get("save"):
                np.save(cmd["save"], np.asarray(g))
            reply(res)
        except Exception as exc:  # noqa: BLE001 (reported to the driver, which goes on)
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}",
                   "trace": traceback.format_exc(limit=6)})


# -- machine info ---------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def git_revision() -> str:
    """The work tree's commit, with ``+dirty`` if it has changes (read-only git calls)."""
    import subprocess
    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                "--untracked-files=no", "gradviz"],
                               capture_output=True, text=True, timeout=10,
                               check=False).stdout.strip()
        return (rev or "?") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"
