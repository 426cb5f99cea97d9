"""Short, shape-aware text for array values on diagram nodes and edges.

A slide has room for a few numbers per node, so arrays print compactly:
``precision`` significant digits, at most ``max_elems`` elements with the
middle elided (``[0 1 2 … 97 98 99]``), one line per row of a matrix.
"""

from __future__ import annotations

import functools
import math

import numpy as np

ELLIPSIS = "…"


def _number(x: float, precision: int) -> str:
    """A number in at most ``precision`` significant digits, without trailing noise."""
    if isinstance(x, (bool, np.bool_)):
        return "T" if x else "F"
    x = float(x)
    if x != x:
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if x == int(x) and abs(x) < 10 ** (precision + 3):
        return str(int(x))
    text = f"{x:.{precision}g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


def _row(values: np.ndarray, precision: int, max_elems: int) -> str:
    n = values.shape[0]
    if n > max_elems:
        head = max(1, max_elems // 2)
        tail = max(1, max_elems - head)
        cells = [_number(v, precision) for v in values[:head]] + [ELLIPSIS] + \
                [_number(v, precision) for v in values[n - tail:]]
    else:
        cells = [_number(v, precision) for v in values]
    return "[" + " ".join(cells) + "]"


def exact_number(a: np.ndarray) -> str:
    """A scalar in the fewest digits that give it back in its own dtype.

    For constants written inside formulas (``x * 0.99999``): they are part of
    the formula, so they are never rounded to the display precision.
    """
    v = np.asarray(a)[()]
    if isinstance(v, np.floating):
        if v == 0 or not np.isfinite(v) or 1e-4 <= abs(v) < 1e16:
            return np.format_float_positional(v, trim="-")
        return np.format_float_scientific(v, trim="-")
    return _number(v, 20)


def format_array(a: np.ndarray, precision: int = 4, max_elems: int = 6) -> str:
    """Compact text for ``a``: a scalar, a row, or one line per matrix row.

    Arrays of more than two dimensions show their first matrix and say how many follow.
    """
    a = np.asarray(a)
    if a.ndim == 0:
        return _number(a[()], precision)
    if a.size == 0:
        return "[]"
    if a.ndim == 1:
        return _row(a, precision, max_elems)
    if a.ndim == 2:
        rows = a.shape[0]
        shown = range(rows)
        lines = []
        if rows > max_elems:
            head = max(1, max_elems // 2)
            tail = max(1, max_elems - head)
            shown = list(range(head)) + [-1] + list(range(rows - tail, rows))
        for r in shown:
            lines.append(f" {ELLIPSIS}" if r == -1 else _row(a[r], precision, max_elems))
        return "[" + "\n ".join(lines) + "]"
    first = format_array(a[(0,) * (a.ndim - 2)], precision, max_elems)
    return f"{first}\n{ELLIPSIS} ({int(np.prod(a.shape[:-2]))} matrices)"


def format_shape(a: np.ndarray) -> str:
    """``float32[2×3]``, or ``float32 scalar``."""
    name = _dtype_name(np.asarray(a).dtype)
    if a.ndim == 0:
        return f"{name} scalar"
    return f"{name}[{'×'.join(str(n) for n in a.shape)}]"


@functools.lru_cache(maxsize=None)
def _dtype_name(dt: np.dtype) -> str:
    return "bool" if dt == np.bool_ else str(dt)


def jacobian_shape(out_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> str:
    """The shape of d(out)/d(in): the out shape followed by the in shape (``(4)×(4)``).

    Takes shapes, not arrays: a label needs no data (and an edge can be huge).
    """
    def part(shape: tuple[int, ...]) -> str:
        return "(" + ",".join(str(n) for n in shape) + ")"

    def kind(shape: tuple[int, ...]) -> str:
        return "scalar" if len(shape) == 0 else "vector" if len(shape) == 1 else "matrix"

    return f"J {part(out_shape)}×{part(in_shape)}: {kind(out_shape)} by {kind(in_shape)}"


def has_nonfinite(a: np.ndarray) -> bool:
    a = np.asarray(a)
    return a.dtype.kind in "fc" and not bool(np.all(np.isfinite(a)))


def format_bytes(b: int) -> str:
    """A size as a person reads it: 512 B, 4.0 kB, 1.2 MB."""
    if b < 1000:
        return f"{b} B"
    if b < 1_000_000:
        return f"{b / 1e3:.1f} kB"
    return f"{b / 1e6:.1f} MB"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 input``, ``3 inputs`` (``nouns``: the plural, when it is not noun + s)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
