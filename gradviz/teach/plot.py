"""Exercise 5 for any elementwise function: f and df/dx on one chart, df/dx from the tape.

:func:`derivative_on_grid` evaluates f on a grid and gets df/dx the way the
lesson does, with one backward pass (``y.sum().backward()``); it never knows a
derivative formula.  The chart is drawn by matplotlib (the optional extra
``gradviz[plot]``), written as CSV, or drawn with characters for a terminal.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gradviz.engine.backward import BackwardPass
from gradviz.engine.tensor import Tensor
from gradviz.errors import GradvizError, GradvizValueError

INSTALL = "pip install 'gradviz[plot]'"
FORMATS = ("svg", "png", "pdf", "csv")
#: Most grid points: a chart has a few thousand pixels across, at most.
MAX_POINTS = 1_000_000


@dataclass
class Curve:
    """f and df/dx on a grid of x values (float64 arrays of one length)."""

    variable: str
    x: np.ndarray
    f: np.ndarray
    dfdx: np.ndarray


def parse_range(text: str) -> np.ndarray:
    """``START:STOP:STEP`` as ``arange(START, STOP, STEP)`` (STOP excluded, as in the lesson)."""
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise GradvizValueError(f"--x expects START:STOP:STEP, e.g. -20:20:0.1; got {text!r}") \
            from None
    if not all(math.isfinite(v) for v in (start, stop, step)) or step == 0:
        raise GradvizValueError(f"--x {text}: START, STOP and STEP must be finite, STEP not 0")
    count = math.ceil((stop - start) / step)
    if count < 2:
        raise GradvizValueError(f"--x {text} gives {max(count, 0)} point(s); a chart needs two")
    if count > MAX_POINTS:
        raise GradvizValueError(f"--x {text} gives {count:,} points; at most {MAX_POINTS:,}")
    return start + step * np.arange(count, dtype=np.float64)


def derivative_on_grid(function: Any, variable: str, xs: np.ndarray) -> Curve:
    """f(xs) and df/dx at every point, from one backward pass seeded with ones.

    ``function`` maps a tensor to a tensor.  It must be elementwise (out[i]
    depends on x[i] alone), else the gradient of the sum is not the pointwise
    derivative: that is checked with a second pass seeded with random numbers
    (for a diagonal Jacobian it must give the first pass's result times them).
    """
    x = Tensor(np.asarray(xs, dtype=np.float64), requires_grad=True, dtype=np.float64)
    with np.errstate(all="ignore"):
        out = function(x)
    if not isinstance(out, Tensor) or out.data.shape != x.data.shape:
        shape = getattr(getattr(out, "data", None), "shape", ())
        raise GradvizValueError(
            f"plot draws elementwise functions only: f({variable}) must have one value per "
            f"point, but it has shape {tuple(shape)} for {len(xs)} points")
    if not out.requires_grad:
        raise GradvizValueError(f"the expression does not depend on {variable}")
    seed = np.ones_like(out.data)
    first = BackwardPass(out, seed, inputs=[x], retain_graph=True, accumulate=False).run()
    dfdx = np.asarray(first.adjoint_of(x), dtype=np.float64)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, size=out.data.shape)
    second = BackwardPass(out, weights, inputs=[x], accumulate=False).run()
    weighted = np.asarray(second.adjoint_of(x), dtype=np.float64)
    with np.errstate(all="ignore"):
        if not np.allclose(weighted, dfdx * weights, rtol=1e-6, atol=1e-9, equal_nan=True):
            raise GradvizValueError(
                f"plot draws elementwise functions only: each f({variable})[i] must depend on "
                f"{variable}[i] alone, and this expression mixes the points (sum, mean, dot, "
                "@, norm, ...)")
    return Curve(variable, x.data.copy(), np.asarray(out.data, dtype=np.float64), dfdx)


def plot_format(path: str) -> str:
    """The chart's format from the file's extension."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise GradvizValueError(f"cannot tell the format of {path!r}: end it in "
                                f"{', '.join('.' + f for f in FORMATS)}")
    return suffix


def require_matplotlib(what: str) -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend, or an error saying what to install."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GradvizError(f"{what} needs matplotlib, an optional extra: {INSTALL}") from None
    return plt


def _save(fig: Any, path: str, fmt: str) -> None:
    from gradviz.render import write_atomic

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def chart(curve: Curve, path: str, title: str) -> None:
    """Write f and df/dx to ``path``: an SVG, PNG or PDF chart, or a CSV table."""
    fmt = plot_format(path)
    if fmt == "csv":
        from gradviz.render import write_atomic

        name = curve.variable
        lines = [f"{name},f,df/d{name}"] + [
            f"{a!r},{b!r},{c!r}" for a, b, c in zip(curve.x.tolist(), curve.f.tolist(),
                                                    curve.dfdx.tolist())]
        write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
        return
    plt = require_matplotlib(f"a .{fmt} chart")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        name = curve.variable
        ax.plot(curve.x, curve.f, label=f"f({name}) = {title}")
        ax.plot(curve.x, curve.dfdx, label=f"df/d{name}, from the tape", linestyle="--")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel(name)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)  # off the curves
        ax.set_title(title)
        _save(fig, path, fmt)
    finally:
        plt.close(fig)


def cost_chart(path: str, ks: Sequence[int], forward: Sequence[float], reverse: float, m: int,
               title: str) -> None:
    """Time against n for both modes (see :func:`gradviz.teach.cost.time_against_n`)."""
    fmt = plot_format(path)
    if fmt == "csv":
        from gradviz.render import write_atomic

        lines = ["n,forward_seconds,reverse_seconds"] + [
            f"{k},{f!r},{reverse!r}" for k, f in zip(ks, forward)]
        write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
        return
    plt = require_matplotlib("--plot")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        ax.plot(ks, forward, marker="o", label="forward: one sweep per input component")
        ax.plot(ks, [reverse] * len(ks), marker="s",
                label=f"reverse: {m} pass{'es' if m > 1 else ''}, all inputs at once")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n (input components differentiated)")
        ax.set_ylabel("seconds")
        ax.set_title(title)
        ax.legend()
        _save(fig, path, fmt)
    finally:
        plt.close(fig)


def terminal_chart(curve: Curve, width: int = 72, height: int = 18) -> list[str]:
    """The chart drawn with characters: ``*`` for f, ``+`` for df/dx (``#`` where they meet).

    Returns plain lines (no colour), the y range on the left, the x range below.
    """
    finite = [v for v in (curve.f, curve.dfdx) for v in v[np.isfinite(v)]]
    low = min(finite, default=-1.0)
    high = max(finite, default=1.0)
    if high - low < 1e-12:
        low, high = low - 1, high + 1
    grid = [[" "] * width for _ in range(height)]
    zero = round((high - 0.0) / (high - low) * (height - 1))
    if 0 <= zero < height:
        grid[zero] = ["─"] * width
    columns = np.minimum(((curve.x - curve.x[0]) / (curve.x[-1] - curve.x[0]) * (width - 1))
                         .round().astype(int), width - 1)
    for values, mark in ((curve.f, "*"), (curve.dfdx, "+")):
        for col, v in zip(columns, values):
            if not np.isfinite(v):
                continue
            row = round((high - v) / (high - low) * (height - 1))
            here = grid[row][col]
            grid[row][col] = mark if here in (" ", "─", mark) else "#"
    label = max(len(f"{high:.3g}"), len(f"{low:.3g}"))
    lines = []
    for i, row in enumerate(grid):
        tick = f"{high:.3g}" if i == 0 else f"{low:.3g}" if i == height - 1 else \
            "0" if i == zero else ""
        lines.append(f"{tick:>{label}} │{''.join(row)}")
    lines.append(" " * label + " └" + "─" * width)
    left, right = f"{curve.x[0]:.3g}", f"{curve.x[-1]:.3g}"
    lines.append(" " * (label + 2) + left + " " * max(1, width - len(left) - len(right)) + right)
    return lines


def curve_of(source: str, x_range: str) -> Curve:
    """f and df/dx for the formula ``source`` of one variable, over ``START:STOP:STEP``."""
    from gradviz.frontends.program import as_function, parse

    # The formula language every command shares (torch. prefixes, methods, ...).
    names = list(parse(source).free_names)
    if len(names) != 1:
        raise GradvizValueError(f"plot draws a function of one variable; the expression uses "
                                f"{len(names)}: {', '.join(names) or 'none'}")
    return derivative_on_grid(as_function(source, names), names[0], parse_range(x_range))
