"""The public functions (``gradviz.sin``, ``gradviz.sum``, ...) and matching Tensor methods.

They accept what a PyTorch user passes (``dim`` or ``axis``, ``keepdim`` or
``keepdims``, lists or numbers for tensors), normalise it, and call the op from
:mod:`gradviz.ops`.  Nothing here knows a derivative.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gradviz import ops
from gradviz.engine.op import _NO_PARAMS
from gradviz.engine.tensor import Tensor, as_tensor, check_output_size, record
from gradviz.errors import ShapeError

def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _dim(a: Any, ndim: int) -> int:
    """One axis as a non-negative int; PyTorch's errors for floats and out-of-range values."""
    if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
        got = f"a tensor of shape {tuple(a.shape)}" if isinstance(a, Tensor) else repr(a)
        raise ShapeError(f"an axis must be an integer, got {got[:60]}")
    span = ndim if ndim else 1  # a 0-d tensor accepts axis 0 or -1, as in PyTorch
    if not -span <= a < span:
        raise ShapeError(f"Dimension out of range (expected to be in range of "
                         f"[{-span}, {span - 1}], but got {a})")
    return int(a) % span


def _axes(x: Tensor, axis: Any) -> tuple | None:
    """Normalise an axis argument to a sorted tuple of non-negative ints (or None)."""
    if axis is None:
        return None
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = [_dim(a, x.ndim) for a in items]
    repeated = [a for a in out if out.count(a) > 1]
    if repeated:
        raise ShapeError(f"dim {repeated[0]} appears multiple times in the list of dims")
    return tuple(sorted(out)) if x.ndim else None


# -- elementwise ----------------------------------------------------------------------

def add(a: Any, b: Any) -> Tensor: return ops.add(_t(a), b)
def sub(a: Any, b: Any) -> Tensor: return ops.sub(_t(a), b)
def mul(a: Any, b: Any) -> Tensor: return ops.mul(_t(a), b)
def div(a: Any, b: Any) -> Tensor: return ops.div(_t(a), b)
def pow(a: Any, b: Any) -> Tensor: return ops.pow(_t(a), b)


def _unary(op: Any, doc: str) -> Any:
    """The public function of a one-input op: straight to the tape recorder (a hot path)."""
    def function(x: Any) -> Tensor:
        return record(op, (x if isinstance(x, Tensor) else as_tensor(x),), _NO_PARAMS)
    function.__name__ = function.__qualname__ = op.name
    function.__doc__ = doc
    return function


neg = _unary(ops.neg, "-x, elementwise.")
sin = _unary(ops.sin, "Sine, elementwise; its derivative is cos.")
cos = _unary(ops.cos, "Cosine, elementwise; its derivative is -sin.")
tan = _unary(ops.tan, "Tangent, elementwise; its derivative is 1 + tan².")
exp = _unary(ops.exp, "e to the x, elementwise; its own derivative.")
log = _unary(ops.log, "Natural logarithm, elementwise; its derivative is 1/x.")
sqrt = _unary(ops.sqrt, "Square root, elementwise; its derivative is 1/(2√x).")
abs = _unary(ops.abs, "Absolute value, elementwise; its derivative is sign(x).")
tanh = _unary(ops.tanh, "Hyperbolic tangent, elementwise; its derivative is 1 - tanh².")
sigmoid = _unary(ops.sigmoid, "1 / (1 + e^-x), elementwise; its derivative is s(1 - s).")
relu = _unary(ops.relu, "max(x, 0), elementwise; its derivative is 1 where x > 0, else 0.")
sign = _unary(ops.sign, "-1, 0 or 1, elementwise; passes no gradient.")
detach = _unary(ops.detach, "The same value, cut from the graph: no gradient flows back through it.")
clone = _unary(ops.identity, "A copy that stays in the graph (its gradient passes through).")


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, else ``b``; the gradient flows to the branch taken."""
    cond = _t(condition)
    if cond.dtype != np.bool_:
        cond = ops.ne(cond, 0)
    return ops.where(cond, a, b)


# -- reductions -----------------------------------------------------------------------

def _reduction(op: Any, doc: str) -> Any:
    """The public function of a reduction, taking PyTorch's ``dim``/``keepdim`` or numpy's names."""
    def reduce(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
               keepdim: bool = False) -> Tensor:
        x = _t(x)
        return op(x, axis=_axes(x, dim if axis is None else axis),
                  keepdims=bool(keepdims or keepdim))
    reduce.__name__ = reduce.__qualname__ = op.name
    reduce.__doc__ = doc
    return reduce


sum = _reduction(ops.sum, "Sum of the elements (over ``axis``).")
mean = _reduction(ops.mean, "Mean of the elements (over ``axis``).")
max = _reduction(ops.max, "Largest element (over ``axis``); ties share the gradient equally.")
min = _reduction(ops.min, "Smallest element (over ``axis``); ties share the gradient equally.")
_norm = _reduction(ops.norm, "The 2-norm (over ``axis``).")


def norm(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
         keepdim: bool = False, p: Any = "fro") -> Tensor:
    """The Euclidean (Frobenius) norm, over all elements or over ``axis``."""
    if p not in ("fro", 2, 2.0):
        raise ShapeError(f"norm: only the 2-norm is supported, got p={p!r}")
    return _norm(x, axis, keepdims, dim=dim, keepdim=keepdim)


# -- products -------------------------------------------------------------------------

def dot(a: Any, b: Any) -> Tensor:
    """Inner product of two 1-D tensors of the same length (``torch.dot``)."""
    a, b = _t(a), _t(b)
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: 1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape != b.shape:
        raise ShapeError(f"dot: inconsistent tensor size, expected tensor [{a.shape[0]}] and "
                         f"src [{b.shape[0]}] to have the same number of elements")
    return ops.dot(a, b)


def matmul(a: Any, b: Any) -> Tensor:
    a, b = _t(a), _t(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul: both arguments to matmul need to be at least 1D, but they are "
                         f"{a.ndim}D and {b.ndim}D")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         f"multiplied ({k_a} != {k_b})")
    return ops.matmul(a, b)


mm = matmul

# -- shapes ---------------------------------------------------------------------------

def transpose(x: Any, dim0: int | None = None, dim1: int | None = None) -> Tensor:
    """Swap two axes (``transpose(x, 0, 1)``); with no axes, reverse them all (``x.T``)."""
    x = _t(x)
    if dim0 is None and dim1 is None:
        return ops.transpose(x, axes=None)
    if dim0 is None or dim1 is None:
        raise ShapeError("transpose: give both axes to swap (transpose(x, 0, 1)), or none")
    perm = list(range(x.ndim))
    d0, d1 = _dim(dim0, x.ndim), _dim(dim1, x.ndim)
    if x.ndim < 2:
        return ops.transpose(x, axes=tuple(perm))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return ops.transpose(x, axes=tuple(perm))


def permute(x: Any, *dims: Any) -> Tensor:
    x = _t(x)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    axes = tuple(_dim(d, x.ndim) for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"permute: the dims {list(dims)} are not a permutation of the "
                         f"{x.ndim} axes of a tensor of shape {list(x.shape)}")
    return ops.transpose(x, axes=axes)


def reshape(x: Any, *shape: Any) -> Tensor:
    x = _t(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in shape):
        raise ShapeError(f"reshape: sizes must be integers, got {list(shape)}")
    shape = tuple(int(s) for s in shape)
    return ops.reshape(x, shape=_reshape_target(shape, x.numel()))


def _reshape_target(shape: tuple, size: int) -> tuple:
    """``shape`` with a -1 resolved, or a ShapeError if ``size`` elements do not fit it."""
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
    if shape.count(-1) == 1 and known and size % known == 0:
        shape = tuple(size // known if s == -1 else s for s in shape)
    if shape.count(-1) or any(s < 0 for s in shape) or \
            int(np.prod(shape, dtype=np.int64)) != size:
        raise ShapeError(f"reshape: shape {list(shape)} is invalid for input of size {size}")
    return shape


view = reshape


def flatten(x: Any) -> Tensor:
    return reshape(x, -1)


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    x = _t(x)
    try:
        np.broadcast_shapes(x.shape, tuple(shape))
    except ValueError:
        raise ShapeError(f"expand: shape {tuple(x.shape)} cannot be broadcast to "
                         f"{tuple(shape)}") from None
    shape = tuple(int(s) for s in shape)
    check_output_size(ops.broadcast_to, (x.data,), shape)
    return ops.broadcast_to(x, shape=shape)


def concatenate(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ShapeError("concatenate: expected a non-empty list of Tensors")
    if any(t.ndim == 0 for t in ts):
        raise ShapeError("concatenate: zero-dimensional tensors cannot be concatenated; "
                         "use stack")
    if any(t.ndim != ts[0].ndim for t in ts):
        raise ShapeError("concatenate: tensors must have the same number of dimensions, got "
                         + ", ".join(str(list(t.shape)) for t in ts))
    ax = _dim(dim if dim is not None else axis, ts[0].ndim)
    return ops.concatenate(*ts, axis=ax, sizes=tuple(t.shape[ax] for t in ts))


cat = concatenate


def stack(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ShapeError("stack: expected a non-empty list of Tensors")
    if any(t.shape != ts[0].shape for t in ts):
        raise ShapeError("stack: expects each tensor to be equal size, but got "
                         + ", ".join(str(list(t.shape)) for t in ts))
    a = _dim(dim if dim is not None else axis, ts[0].ndim + 1)
    return ops.stack(*ts, axis=a, count=len(ts))


# -- Tensor methods, mirroring the functions ----------------------------------------------

_METHODS = {
    "sin": sin, "cos": cos, "tan": tan, "exp": exp, "log": log, "sqrt": sqrt, "abs": abs,
    "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "sign": sign, "neg": neg,
    "sum": sum, "mean": mean, "max": max, "min": min, "norm": norm, "dot": dot,
    "matmul": matmul, "mm": matmul, "transpose": transpose, "permute": permute,
    "reshape": reshape, "view": reshape, "flatten": flatten,
    "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.expand = lambda self, *shape: broadcast_to(  # type: ignore[attr-defined]
    self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
Tensor.expand_as = lambda self, other: broadcast_to(self, other.shape)  # type: ignore[attr-defined]

# The names the CLI's expression language may call (and ``x.name()`` methods): PyTorch's
# functions and methods of the same names, so lesson code pastes in (``torch.dot(x, x)``,
# ``x.sum()``).  Tensor constructors join them in gradviz.frontends.program, size-capped.
EXPRESSION_FUNCTIONS = {
    "sin": sin, "cos": cos, "tan": tan, "exp": exp, "log": log, "sqrt": sqrt, "abs": abs,
    "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "sign": sign, "neg": neg, "add": add,
    "sub": sub, "mul": mul, "div": div, "pow": pow, "sum": sum, "mean": mean, "max": max,
    "min": min, "norm": norm, "dot": dot, "matmul": matmul, "mm": matmul,
    "transpose": transpose, "permute": permute, "reshape": reshape, "flatten": flatten,
    "detach": detach, "where": where, "concatenate": concatenate, "cat": concatenate,
    "stack": stack, "clone": clone, "broadcast_to": broadcast_to,
}
EXPRESSION_METHODS = ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sigmoid",
                      "relu", "sign", "neg", "add", "sub", "mul", "div", "pow", "sum", "mean",
                      "max", "min", "norm", "dot", "matmul", "mm", "transpose", "permute",
                      "reshape", "view", "flatten", "expand", "expand_as", "detach", "clone",
                      "float", "double", "requires_grad_")
