"""The table of built-in operations: each op's forward, VJP and JVP, side by side.

Read a row as the chain rule for that op.  ``vjps[i](g, *saved, **params)`` is
what input ``i`` receives when the output's adjoint is ``g``; ``jvps[i](t, ...)``
is the output tangent that input ``i``'s tangent ``t`` produces.  Rules use
only operators, numpy-style methods and the ops of this table, so they run on
arrays for an ordinary backward pass and on tensors (recorded, differentiable
again) under ``create_graph=True``.  Un-broadcasting is never written here:
the engine fits every contribution to its input's shape with :func:`fit_shape`.

Parameters arrive normalised by :mod:`gradviz.functions` (axes as tuples of
non-negative ints or None), so the rules stay short.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradviz.engine.op import Op as defop  # the built-ins: defop without the user-rule checks
from gradviz.engine.shapes import broadcast_to, cast, fit_shape  # noqa: F401 (in the table)

# -- helpers the rules share ------------------------------------------------------


def _kept(shape: tuple, axis: tuple | None) -> tuple:
    """``shape`` with the reduced axes kept as 1 (the keepdims shape)."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def _count(shape: tuple, axis: tuple | None) -> int:
    """How many elements each reduced output element summarises."""
    dims = range(len(shape)) if axis is None else axis
    return int(np.prod([shape[i] for i in dims], dtype=np.int64))


def _spread(g: Any, shape: tuple, axis: tuple | None, keepdims: bool) -> Any:
    """Send a reduction's adjoint back over the axes it reduced."""
    if not keepdims:
        g = reshape(g, shape=_kept(shape, axis))
    return broadcast_to(g, shape=shape)


# -- elementwise arithmetic -------------------------------------------------------

add = defop("add", np.add, grad_fn="AddBackward0", symbol="+",
            vjps=(lambda g: g, lambda g: g),
            jvps=(lambda t: t, lambda t: t))

sub = defop("sub", np.subtract, grad_fn="SubBackward0", symbol="-",
            vjps=(lambda g: g, lambda g: -g),
            jvps=(lambda t: t, lambda t: -t))

mul = defop("mul", np.multiply, grad_fn="MulBackward0", symbol="*", saves=("x0", "x1"),
            vjps=(lambda g, x, y: g * y, lambda g, x, y: g * x),
            jvps=(lambda t, x, y: t * y, lambda t, x, y: x * t))

def _true_divide(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.true_divide(x, y)
    # Integers divide into PyTorch's default float type, float32 (numpy gives float64).
    return out.astype(np.float32) if x.dtype.kind in "biu" and y.dtype.kind in "biu" else out


div = defop("div", _true_divide, grad_fn="DivBackward0", symbol="/", saves=("x0", "x1"),
            vjps=(lambda g, x, y: g / y, lambda g, x, y: -g * x / (y * y)),
            jvps=(lambda t, x, y: t / y, lambda t, x, y: -t * x / (y * y)))

def _masked(mask: Any, value: Any) -> Any:
    """``value`` with 0 where ``mask`` holds; no extra node when the mask is empty."""
    return where(mask, 0, value) if np.any(np.asarray(mask)) else value


def _pow_base(g: Any, x: Any, y: Any, out: Any) -> Any:
    """d(x**y)/dx = y x**(y-1), taken as 0 where y == 0 (no nan at x = 0), as PyTorch does."""
    return _masked(eq(y, 0), g * y * x ** (y - 1))


def _pow_exponent(g: Any, x: Any, y: Any, out: Any) -> Any:
    """d(x**y)/dy = x**y log x, taken as 0 at x == 0 for y >= 0, as PyTorch does."""
    return _masked(eq(x, 0) * ge(y, 0), g * log(x) * out)


pow = defop("pow", np.power, grad_fn="PowBackward0", symbol="**", saves=("x0", "x1", "out"),
            vjps=(_pow_base, _pow_exponent), jvps=(_pow_base, _pow_exponent))

neg = defop("neg", np.negative, grad_fn="NegBackward0", display=lambda a, p: f"-{a[0]}",
            vjps=(lambda g: -g,), jvps=(lambda t: -t,))

identity = defop("clone", np.copy, grad_fn="CloneBackward0",
                 vjps=(lambda g: g,), jvps=(lambda t: t,))

# -- elementwise functions: the Jacobian is diagonal, so the VJP rule is the JVP rule ---


def _elementwise(name: str, forward: Any, grad_fn: str, saves: tuple, rule: Any) -> Any:
    return defop(name, forward, grad_fn=grad_fn, saves=saves, vjps=(rule,), jvps=(rule,))


sin = _elementwise("sin", np.sin, "SinBackward0", ("x0",), lambda g, x: g * cos(x))
cos = _elementwise("cos", np.cos, "CosBackward0", ("x0",), lambda g, x: -g * sin(x))
tan = _elementwise("tan", np.tan, "TanBackward0", ("out",), lambda g, y: g * (1 + y * y))
exp = _elementwise("exp", np.exp, "ExpBackward0", ("out",), lambda g, y: g * y)
log = _elementwise("log", np.log, "LogBackward0", ("x0",), lambda g, x: g / x)
sqrt = _elementwise("sqrt", np.sqrt, "SqrtBackward0", ("out",), lambda g, y: g / (2 * y))
abs = _elementwise("abs", np.abs, "AbsBackward0", ("x0",), lambda g, x: g * sign(x))
tanh = _elementwise("tanh", np.tanh, "TanhBackward0", ("out",), lambda g, y: g * (1 - y * y))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so that neither branch overflows exp.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


sigmoid = _elementwise("sigmoid", _sigmoid, "SigmoidBackward0", ("out",),
                       lambda g, y: g * y * (1 - y))
relu = _elementwise("relu", lambda x: np.maximum(x, 0).astype(x.dtype, copy=False),
                    "ReluBackward0", ("x0",), lambda g, x: g * cast(gt(x, 0), dtype=g.dtype,
                                                                        src=np.dtype(bool)))

# -- reductions -------------------------------------------------------------------

def _reduction_name(base: str, whole: str, by_axis: str) -> Any:
    """PyTorch numbers a reduction's backward node by overload: whole tensor, or along axes."""
    return lambda inputs, params: base + (whole if params["axis"] is None else by_axis)


sum = defop("sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
            grad_fn=_reduction_name("SumBackward", "0", "1"), symbol="sum", saves=("shape0",),
            vjps=(lambda g, shape, axis, keepdims: _spread(g, shape, axis, keepdims),),
            jvps=(lambda t, shape, axis, keepdims: sum(t, axis=axis, keepdims=keepdims),))

mean = defop("mean", lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
             grad_fn=_reduction_name("MeanBackward", "0", "1"), saves=("shape0",),
             vjps=(lambda g, shape, axis, keepdims:
                   _spread(g, shape, axis, keepdims) / _count(shape, axis),),
             jvps=(lambda t, shape, axis, keepdims: mean(t, axis=axis, keepdims=keepdims),))


def _extremum_weights(x: Any, out: Any, axis: tuple | None, keepdims: bool) -> Any:
    """Where the extremum was attained, ties sharing equally (as PyTorch's max())."""
    hit = eq(x, out if keepdims else reshape(out, shape=_kept(x.shape, axis)))
    hit = cast(hit, dtype=x.dtype, src=np.dtype(bool))
    return hit / hit.sum(axis=axis, keepdims=True)


def _extremum(name: str, forward: Any, grad_fn: Any) -> Any:
    return defop(
        name, lambda x, axis, keepdims: forward(x, axis=axis, keepdims=keepdims),
        grad_fn=grad_fn, saves=("x0", "out"),
        vjps=(lambda g, x, out, axis, keepdims:
              _spread(g, x.shape, axis, keepdims) * _extremum_weights(x, out, axis, keepdims),),
        jvps=(lambda t, x, out, axis, keepdims:
              sum(t * _extremum_weights(x, out, axis, keepdims), axis=axis, keepdims=keepdims),))


max = _extremum("max", np.max, _reduction_name("MaxBackward", "1", "0"))
min = _extremum("min", np.min, _reduction_name("MinBackward", "1", "0"))


def _safe(y: Any) -> Any:
    """``y`` with zeros replaced by ones: the norm's gradient at 0 is taken as 0, as in PyTorch."""
    return where(eq(y, 0), 1, y)


norm = defop(
    "norm", lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    grad_fn="LinalgVectorNormBackward0", saves=("x0", "out"),
    vjps=(lambda g, x, out, axis, keepdims:
          _spread(g / _safe(out), x.shape, axis, keepdims) * x,),
    jvps=(lambda t, x, out, axis, keepdims:
          sum(x * t, axis=axis, keepdims=keepdims) / _safe(out),))

# -- products ---------------------------------------------------------------------

dot = defop("dot", np.dot, grad_fn="DotBackward0", symbol="dot", saves=("x0", "x1"),
            out_shape=lambda a, b: (),
            vjps=(lambda g, x, y: g * y, lambda g, x, y: g * x),
            jvps=(lambda t, x, y: dot(t, y), lambda t, x, y: dot(x, t)))


def _as_matrices(x: Any, y: Any, g: Any) -> tuple:
    """View 1-D operands of matmul as matrices (and g to match), as numpy does."""
    x2 = reshape(x, shape=(1,) + tuple(x.shape)) if x.ndim == 1 else x
    y2 = reshape(y, shape=tuple(y.shape) + (1,)) if y.ndim == 1 else y
    # numpy dropped the m axis of a 1-D x and the n axis of a 1-D y from the result: put them back.
    gshape = tuple(g.shape)
    if x.ndim == 1 and y.ndim == 1:
        gshape = (1, 1)
    elif x.ndim == 1:
        gshape = gshape[:-1] + (1,) + gshape[-1:]
    elif y.ndim == 1:
        gshape = gshape + (1,)
    return x2, y2, reshape(g, shape=gshape)


def _swap(a: Any) -> Any:
    perm = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
    return transpose(a, axes=perm)


def _matmul_vjp_x(g: Any, x: Any, y: Any) -> Any:
    x2, y2, g2 = _as_matrices(x, y, g)
    gx = matmul(g2, _swap(y2))
    return getitem(gx, index=(Ellipsis, 0, slice(None))) if x.ndim == 1 else gx


def _matmul_vjp_y(g: Any, x: Any, y: Any) -> Any:
    x2, y2, g2 = _as_matrices(x, y, g)
    gy = matmul(_swap(x2), g2)
    return getitem(gy, index=(Ellipsis, 0)) if y.ndim == 1 else gy


def _matmul_name(inputs: tuple, params: dict) -> str:
    """PyTorch names matmul's backward node after the kernel it dispatched to."""
    nx, ny = inputs[0].ndim, inputs[1].ndim
    if nx == 1 and ny == 1:
        return "DotBackward0"
    if ny == 1 and nx == 2:
        return "MvBackward0"
    if nx == 1 and ny == 2:
        return "SqueezeBackward4"
    return "MmBackward0" if nx == 2 and ny == 2 else "UnsafeViewBackward0"


def _matmul_shape(a: tuple, b: tuple) -> tuple:
    """matmul's output shape (1-D operands lose their axis, batch axes broadcast)."""
    rows = a[-2:-1] if len(a) > 1 else ()
    cols = b[-1:] if len(b) > 1 else ()
    return np.broadcast_shapes(a[:-2], b[:-2]) + rows + cols


matmul = defop("matmul", np.matmul, grad_fn=_matmul_name, symbol="@", saves=("x0", "x1"),
               out_shape=_matmul_shape,
               vjps=(_matmul_vjp_x, _matmul_vjp_y),
               jvps=(lambda t, x, y: matmul(t, y), lambda t, x, y: matmul(x, t)))

# -- shapes and indexing ----------------------------------------------------------

transpose = defop("transpose", lambda x, axes: np.transpose(x, axes),
                  grad_fn="PermuteBackward0",
                  display=lambda a, p: f"{a[0]}.T" if p["axes"] is None else
                  f"transpose({a[0]}, axes={p['axes']})",
                  vjps=(lambda g, axes: transpose(
                      g, axes=None if axes is None else tuple(np.argsort(axes).tolist())),),
                  jvps=(lambda t, axes: transpose(t, axes=axes),))

reshape = defop("reshape", lambda x, shape: np.reshape(x, shape), grad_fn="ViewBackward0",
                saves=("shape0",),
                vjps=(lambda g, shape0, shape: reshape(g, shape=shape0),),
                jvps=(lambda t, shape0, shape: reshape(t, shape=shape),))

def _scatter(g: np.ndarray, index: Any, shape: tuple) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)  # add.at, not assignment: repeated indices must add up
    return out


scatter = defop("index_add", _scatter, grad_fn="IndexAddBackward0",
                vjps=(lambda g, index, shape: getitem(g, index=index),),
                jvps=(lambda t, index, shape: scatter(t, index=index, shape=shape),))

def _index_text(index: Any) -> str:
    """``1:3, ...`` for diagrams."""
    def one(p: Any) -> str:
        if isinstance(p, slice):
            text = ("" if p.start is None else str(p.start)) + ":" + \
                ("" if p.stop is None else str(p.stop))
            return text + (f":{p.step}" if p.step is not None else "")
        if p is Ellipsis:
            return "..."
        return str(p.tolist()) if isinstance(p, np.ndarray) else str(p)
    return ", ".join(one(p) for p in (index if isinstance(index, tuple) else (index,)))


def _index_name(inputs: tuple, params: dict) -> str:
    """PyTorch's name: Index for arrays, else after the last index that does something
    (Select for an integer, Slice for a slice, Unsqueeze for None; Alias for x[:])."""
    index = params["index"]
    if not isinstance(index, tuple):
        index = (index,) if not isinstance(index, slice) else None
    if index is None:  # a lone slice, x[a:b], is always a Slice to PyTorch
        return "SliceBackward0"
    if any(isinstance(p, (np.ndarray, list)) for p in index):
        return "IndexBackward0"
    shape = inputs[0].shape
    acting = [p for axis, p in enumerate(index) if p is not Ellipsis and not (
        isinstance(p, slice) and axis < len(shape)
        and range(*p.indices(shape[axis])) == range(shape[axis]))]
    if not acting:
        return "AliasBackward0"
    last = acting[-1]
    if last is None:
        return "UnsqueezeBackward0"
    return "SliceBackward0" if isinstance(last, slice) else "SelectBackward0"


getitem = defop("index", lambda x, index: np.asarray(x[index]), grad_fn=_index_name,
                display=lambda a, p: f"{a[0]}[{_index_text(p['index'])}]", saves=("shape0",),
                vjps=(lambda g, shape, index: scatter(g, index=index, shape=shape),),
                jvps=(lambda t, shape, index: getitem(t, index=index),))


def _offsets(sizes: tuple, i: int) -> tuple[int, int]:
    start = int(np.sum(sizes[:i], dtype=np.int64))
    return start, start + sizes[i]


def _along(axis: int, key: Any) -> tuple:
    return (slice(None),) * axis + (key,)


def _concat_vjp(i: int, g: Any, axis: int, sizes: tuple) -> Any:
    return getitem(g, index=_along(axis, slice(*_offsets(sizes, i))))


def _concat_jvp(i: int, t: Any, axis: int, sizes: tuple) -> Any:
    shape = list(t.shape)
    shape[axis] = int(np.sum(sizes, dtype=np.int64))
    return scatter(t, index=_along(axis, slice(*_offsets(sizes, i))), shape=tuple(shape))


concatenate = defop("cat", lambda *xs, axis, sizes: np.concatenate(xs, axis=axis),
                    grad_fn="CatBackward0", vjps=_concat_vjp, jvps=_concat_jvp,
                    display=lambda a, p: f"cat([{', '.join(a)}], axis={p['axis']})")


def _stack_jvp(i: int, t: Any, axis: int, count: int) -> Any:
    shape = list(t.shape)
    shape.insert(axis, count)
    return scatter(t, index=_along(axis, i), shape=tuple(shape))


stack = defop("stack", lambda *xs, axis, count: np.stack(xs, axis=axis), grad_fn="StackBackward0",
              display=lambda a, p: f"stack([{', '.join(a)}], axis={p['axis']})",
              vjps=lambda i, g, axis, count: getitem(g, index=_along(axis, i)),
              jvps=_stack_jvp)

where = defop("where", np.where, grad_fn="WhereBackward0", saves=("x0",),
              vjps=(None, lambda g, c: where(c, g, 0), lambda g, c: where(c, 0, g)),
              jvps=(None, lambda t, c: where(c, t, 0), lambda t, c: where(c, 0, t)))

# -- no gradient: the tape records them, backward prunes them ----------------------

detach = defop("detach", lambda x: x, grad_fn="DetachBackward0", differentiable=False)
sign = defop("sign", np.sign, grad_fn="SignBackward0", differentiable=False)
lt = defop("lt", np.less, symbol="<", differentiable=False)
le = defop("le", np.less_equal, symbol="<=", differentiable=False)
gt = defop("gt", np.greater, symbol=">", differentiable=False)
ge = defop("ge", np.greater_equal, symbol=">=", differentiable=False)
eq = defop("eq", np.equal, symbol="==", differentiable=False)
ne = defop("ne", np.not_equal, symbol="!=", differentiable=False)

BUILTIN_OPS = {o.name: o for o in (
    add, sub, mul, div, pow, neg, identity, cast, sin, cos, tan, exp, log, sqrt, abs, tanh,
    sigmoid, relu, sum, mean, max, min, norm, dot, matmul, transpose, reshape, broadcast_to,
    scatter, getitem, concatenate, stack, where, detach, sign, lt, le, gt, ge, eq, ne)}


def _bind_operators() -> None:
    """Give Tensor its operators, each a direct call into the tape recorder."""
    from gradviz.engine.tensor import Tensor, _freeze_index, record

    empty: dict = {}

    def binary(op: Any, reflected: bool = False) -> Any:
        if reflected:
            return lambda self, other: record(op, (other, self), empty)
        return lambda self, other: record(op, (self, other), empty)

    for name, op in (("add", add), ("sub", sub), ("mul", mul), ("truediv", div), ("pow", pow),
                     ("matmul", matmul)):
        setattr(Tensor, f"__{name}__", binary(op))
        setattr(Tensor, f"__r{name}__", binary(op, reflected=True))
    for name, op in (("lt", lt), ("le", le), ("gt", gt), ("ge", ge), ("eq", eq), ("ne", ne)):
        setattr(Tensor, f"__{name}__", binary(op))
    Tensor.__neg__ = lambda self: record(neg, (self,), empty)
    Tensor.__abs__ = lambda self: record(abs, (self,), empty)
    Tensor.__getitem__ = lambda self, index: record(getitem, (self,),
                                                    {"index": _freeze_index(index)})
    Tensor.T = property(lambda self: record(transpose, (self,), {"axes": None}))
    Tensor.detach = _detach_method
    Tensor.clone = lambda self: record(identity, (self,), empty)
    Tensor.__copy__ = lambda self: record(identity, (self,), empty)
    Tensor.to = _to_method


def _detach_method(self: Any) -> Any:
    """A new tensor with the same value, cut from the graph (gradients stop here)."""
    return detach(self)


def _to_method(self: Any, dtype: Any) -> Any:
    """A copy converted to ``dtype``; to an integer type it is a constant, as in PyTorch."""
    from gradviz.engine.tensor import Tensor
    target = np.dtype(dtype)
    if target.kind not in "fc":
        return Tensor(self.data.astype(target), dtype=target)
    return cast(self, dtype=target, src=self.dtype)


_bind_operators()
