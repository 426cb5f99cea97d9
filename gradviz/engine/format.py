"""Print tensors the way PyTorch prints them.

A learner holds our output next to the lesson's (``tensor(14., grad_fn=<DotBackward0>)``),
so the rules follow PyTorch's: whole numbers print as ``2.``, otherwise four
decimals, scientific notation when the magnitudes span more than 1000x, rows
wrapped at 80 columns, and tensors of over 1000 elements summarised.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gradviz.engine.tensor import Tensor

# Characters that must not reach a diagram or a terminal as they are: control characters
# (not well-formed XML, not valid JSON, terminal escapes) become their visible "control
# pictures" (\x01 is shown as ␁), a tab a space; C1 controls, lone surrogates (invalid
# UTF-8 on the command line) and XML's non-characters become U+FFFD.  Newline stays.
_INVISIBLE = {c: 0x2400 + c for c in range(0x20)} | {0x7F: 0x2421, 0x09: 0x20}
_INVISIBLE.update({c: 0xFFFD for c in [*range(0x80, 0xA0), *range(0xD800, 0xE000),
                                        0xFFFE, 0xFFFF]})
del _INVISIBLE[0x0A]


def visible(text: str) -> str:
    """``text`` with control characters made visible, safe for XML, JSON, DOT and terminals."""
    return text.translate(_INVISIBLE)


LINEWIDTH = 80
THRESHOLD = 1000
EDGEITEMS = 3
PRECISION = 4


class _Formatter:
    """Chooses one number format for all elements of a tensor, as PyTorch does."""

    def __init__(self, values: np.ndarray) -> None:
        self.kind = values.dtype.kind
        self.mode = "plain"
        if self.kind in "fc":
            v = values.real.astype(np.float64).ravel()
            finite = v[np.isfinite(v)]
            nonzero = np.abs(finite[finite != 0])
            ints = bool(np.all(np.ceil(finite) == finite)) if finite.size else True
            if nonzero.size:
                lo, hi = float(nonzero.min()), float(nonzero.max())
                wide = hi / lo > 1000.0 or hi > 1.0e8
                if ints:
                    self.mode = "sci" if wide else "int"
                else:
                    self.mode = "sci" if wide or lo < 1.0e-4 else "fixed"
            else:
                self.mode = "int"
        self.width = max((len(self.format(x)) for x in values.ravel()), default=1)

    def format(self, x: np.generic) -> str:
        if self.kind == "b":
            return "True" if x else "False"
        if self.kind not in "fc":
            return str(int(x))
        x = float(x.real) if self.kind == "c" else float(x)
        if not math.isfinite(x):
            return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if self.mode == "int":
            return f"{x:.0f}."
        if self.mode == "sci":
            return f"{x:.{PRECISION}e}"
        return f"{x:.{PRECISION}f}"

    def cell(self, x: np.generic) -> str:
        return self.format(x).rjust(self.width)


def _summarize(a: np.ndarray) -> bool:
    return a.size > THRESHOLD


def _body(a: np.ndarray, fmt: _Formatter, indent: int, summarize: bool) -> str:
    if a.ndim == 0:
        return fmt.cell(a[()])
    if a.ndim == 1:
        n = a.shape[0]
        if summarize and n > 2 * EDGEITEMS:
            cells = [fmt.cell(x) for x in a[:EDGEITEMS]] + ["..."] + \
                    [fmt.cell(x) for x in a[-EDGEITEMS:]]
        else:
            cells = [fmt.cell(x) for x in a]
        per_line = max(1, int(math.floor((LINEWIDTH - indent) / (fmt.width + 2))))
        lines = [", ".join(cells[i:i + per_line]) for i in range(0, len(cells), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    n = a.shape[0]
    if summarize and n > 2 * EDGEITEMS:
        rows = [_body(a[i], fmt, indent + 1, summarize) for i in range(EDGEITEMS)] + ["..."] + \
               [_body(a[i], fmt, indent + 1, summarize) for i in range(n - EDGEITEMS, n)]
    else:
        rows = [_body(a[i], fmt, indent + 1, summarize) for i in range(n)]
    sep = "," + "\n" * (a.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(rows) + "]"


def array_str(a: np.ndarray, indent: int = 0) -> str:
    """The bracketed body PyTorch would print for ``a`` (``[0., 2., 4., 6.]``)."""
    summarize = _summarize(a)
    shown = a
    if summarize:
        shown = _edges(a)
    return _body(a, _Formatter(shown), indent, summarize)


def _edges(a: np.ndarray) -> np.ndarray:
    """The elements a summarised print shows, for choosing the number format."""
    for axis in range(a.ndim):
        if a.shape[axis] > 2 * EDGEITEMS:
            idx = list(range(EDGEITEMS)) + list(range(a.shape[axis] - EDGEITEMS, a.shape[axis]))
            a = np.take(a, idx, axis=axis)
    return a


def tensor_repr(t: "Tensor") -> str:
    from gradviz.engine.tensor import _DTYPE_NAMES, float32, int64, bool_
    a = t.data
    prefix = "tensor("
    if a.size == 0:
        body = "[]" if a.ndim <= 1 else f"[], size={tuple(a.shape)}"
    else:
        body = array_str(a, indent=len(prefix))
    suffix = []
    if a.dtype not in (float32, int64, bool_):
        suffix.append(f"dtype=gradviz.{_DTYPE_NAMES.get(a.dtype, str(a.dtype))}")
    if t.requires_grad and t.is_leaf:
        suffix.append("requires_grad=True")
    elif t.requires_grad:
        suffix.append(f"grad_fn=<{t.op.backward_name(t)}>")
    # Like PyTorch, an ending that would run past the line width goes on its own line.
    text = prefix + body
    last = len(text) - text.rfind("\n") - 1 if "\n" in text else len(text)
    for s in suffix:
        if last + 2 + len(s) + 1 > LINEWIDTH:
            text += ",\n" + " " * len(prefix) + s
            last = len(prefix) + len(s)
        else:
            text += ", " + s
            last += 2 + len(s)
    return text + ")"
