"""Every public op's derivatives against central finite differences, in float64.

Each case pairs a gradviz function with an independent numpy reference.  The
forward value is compared with the reference, and every derivative with a
five-point central difference of the reference (error O(h^4)):

* reverse mode: ``Tensor.backward`` and ``gradviz.grad`` with a random upstream seed;
* forward mode: ``gradviz.jvp`` (all inputs at once) and ``ForwardSweep`` (one input);
* second order: ``grad(..., create_graph=True)`` differentiated again, against
  finite differences of the (first-order) gradient.

Hypothesis draws shapes and values; domains keep every op smooth near the
drawn point (positive bases, no relu/abs kinks, no max/min ties).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradviz as gv
from gradviz.errors import GradvizError, GradvizTypeError

RTOL = 1e-6
ATOL = 1e-8
H = 1e-3  # five-point stencil step: truncation ~h^4, round-off ~eps/h

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def close(actual: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> None:
    actual = actual.data if isinstance(actual, gv.Tensor) else actual
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


# -- finite differences ---------------------------------------------------------------


def _stencil(at: Callable[[float], Any]) -> Any:
    """d/ds at s=0 of ``at(s)`` by the five-point central difference."""
    return (-at(2 * H) + 8 * at(H) - 8 * at(-H) + at(-2 * H)) / (12 * H)


def fd_gradients(scalar: Callable[[list], float], arrays: list) -> list:
    """d scalar / d arrays[i], element by element."""
    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros(a.shape)
        for k in np.ndindex(*a.shape):
            def at(s: float, i: int = i, k: tuple = k) -> float:
                moved = [np.array(b, dtype=np.float64, copy=True) for b in arrays]
                moved[i][k] += s
                return float(scalar(moved))
            g[k] = _stencil(at)
        grads.append(g)
    return grads


def fd_directional(f: Callable[..., Any], arrays: list, tangents: list) -> np.ndarray:
    """d/ds f(arrays + s * tangents) at s=0."""
    def at(s: float) -> np.ndarray:
        return np.asarray(f(*[a + s * t for a, t in zip(arrays, tangents)]), dtype=np.float64)
    return _stencil(at)


# -- value strategies ------------------------------------------------------------------


def floats(lo: float, hi: float) -> st.SearchStrategy:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


REAL = floats(-2.0, 2.0)
POSITIVE = floats(0.5, 3.0)
AWAY_FROM_ZERO = floats(-2.0, 2.0).filter(lambda v: math.fabs(v) > 0.05)
NONZERO_DENOM = st.one_of(floats(0.5, 3.0), floats(-3.0, -0.5))

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def arr(data: st.DataObject, shape: tuple, elements: st.SearchStrategy = REAL) -> np.ndarray:
    return np.asarray(data.draw(hnp.arrays(np.float64, shape, elements=elements)),
                      dtype=np.float64)


def tie_free(data: st.DataObject, shape: tuple) -> np.ndarray:
    """Values whose pairwise gaps exceed every finite-difference step (no max/min ties)."""
    a = np.asarray(data.draw(hnp.arrays(np.float64, shape, elements=floats(-3.0, 3.0),
                                        unique=True)), dtype=np.float64)
    flat = np.sort(a.ravel())
    assume(flat.size < 2 or np.min(np.diff(flat)) > 0.02)
    return a


# -- the op table ---------------------------------------------------------------------


@dataclass
class Case:
    """One op (or one way of calling it): gradviz function, numpy reference, inputs."""

    name: str
    fn: Callable[..., Any]           # gradviz tensors (+ params) -> tensor
    ref: Callable[..., Any]          # numpy arrays (+ params) -> array
    draw: Callable[[st.DataObject], tuple]  # -> (list of float64 arrays, params dict)
    params: dict = field(default_factory=dict)


def unary(name: str, fn: Callable, ref: Callable, elements: st.SearchStrategy = REAL) -> Case:
    def draw(data: st.DataObject) -> tuple:
        shape = data.draw(SHAPES, label="shape")
        return [arr(data, shape, elements)], {}
    return Case(name, lambda x: fn(x), lambda x: ref(x), draw)


def binary(name: str, fn: Callable, ref: Callable, left: st.SearchStrategy = REAL,
           right: st.SearchStrategy = REAL, shapes: tuple | None = None) -> Case:
    """A binary op; shapes drawn mutually broadcastable unless ``shapes`` is given."""
    def draw(data: st.DataObject) -> tuple:
        if shapes is None:
            sa, sb = data.draw(hnp.mutually_broadcastable_shapes(
                num_shapes=2, min_dims=0, max_dims=3, max_side=4), label="shapes").input_shapes
        else:
            sa, sb = shapes
        return [arr(data, sa, left), arr(data, sb, right)], {}
    suffix = "" if shapes is None else f"{shapes[0]}x{shapes[1]}"
    return Case(name + suffix, fn, ref, draw)


def _sigmoid_ref(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


UNARY = [
    unary("neg", gv.neg, np.negative),
    unary("neg-operator", lambda x: -x, np.negative),
    unary("sin", gv.sin, np.sin),
    unary("cos", gv.cos, np.cos),
    unary("tan", gv.tan, np.tan, floats(-1.2, 1.2)),
    unary("exp", gv.exp, np.exp),
    unary("log", gv.log, np.log, floats(0.2, 4.0)),
    unary("sqrt", gv.sqrt, np.sqrt, floats(0.2, 4.0)),
    unary("abs", gv.abs, np.abs, AWAY_FROM_ZERO),
    unary("abs-builtin", lambda x: abs(x), np.abs, AWAY_FROM_ZERO),
    unary("tanh", gv.tanh, np.tanh),
    unary("sigmoid", gv.sigmoid, _sigmoid_ref, floats(-4.0, 4.0)),
    unary("relu", gv.relu, lambda x: np.maximum(x, 0.0), AWAY_FROM_ZERO),
    unary("clone", gv.clone, np.copy),
    unary("clone-method", lambda x: x.clone(), np.copy),
    unary("sin-method", lambda x: x.sin(), np.sin),
    unary("exp-method", lambda x: x.exp(), np.exp),
]

BINARY = [
    binary("add", gv.add, np.add),
    binary("add-operator", lambda a, b: a + b, np.add),
    binary("sub", gv.sub, np.subtract),
    binary("sub-operator", lambda a, b: a - b, np.subtract),
    binary("mul", gv.mul, np.multiply),
    binary("mul-operator", lambda a, b: a * b, np.multiply),
    binary("div", gv.div, np.divide, right=NONZERO_DENOM),
    binary("div-operator", lambda a, b: a / b, np.divide, right=NONZERO_DENOM),
    # The exponent stays away from 0, where PyTorch (and gradviz) define the base's derivative
    # as 0 by convention, so second derivatives there are not finite differences.
    binary("pow", gv.pow, np.power, left=POSITIVE, right=AWAY_FROM_ZERO),
    binary("pow-operator", lambda a, b: a ** b, np.power, left=POSITIVE, right=AWAY_FROM_ZERO),
    # the broadcasting shapes named in the lesson
    binary("mul", lambda a, b: a * b, np.multiply, shapes=((3, 1), (1, 4))),
    binary("add", lambda a, b: a + b, np.add, shapes=((2, 3), (3,))),
    binary("mul", lambda a, b: a * b, np.multiply, shapes=((), (2, 2))),
    binary("div", lambda a, b: a / b, np.divide, right=NONZERO_DENOM, shapes=((2, 1, 3), (4, 1))),
    binary("pow", lambda a, b: a ** b, np.power, left=POSITIVE, right=AWAY_FROM_ZERO,
           shapes=((3, 1), (1, 4))),
    binary("sub", lambda a, b: a - b, np.subtract, shapes=((4,), (3, 1))),
]

# A Python number on either side: the constant is wrapped, the tensor gets the gradient.
SCALAR_OPERANDS = [
    unary("radd", lambda x: 2.5 + x, lambda x: 2.5 + x),
    unary("rsub", lambda x: 1.5 - x, lambda x: 1.5 - x),
    unary("rmul", lambda x: 3 * x, lambda x: 3 * x),
    unary("rdiv", lambda x: 2.0 / x, lambda x: 2.0 / x, NONZERO_DENOM),
    unary("div-scalar", lambda x: x / 4, lambda x: x / 4),
    unary("pow-int-exponent", lambda x: x ** 3, lambda x: x ** 3),
    unary("pow-float-exponent", lambda x: x ** 1.5, lambda x: x ** 1.5, POSITIVE),
    unary("rpow-scalar-base", lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    unary("pow-fn-scalar-exponent", lambda x: gv.pow(x, -0.5), lambda x: x ** -0.5, POSITIVE),
]


def _axis_spec(data: st.DataObject, ndim: int) -> Any:
    kind = data.draw(st.sampled_from(["none", "int", "tuple"]), label="axis kind")
    if kind == "none":
        return None
    if kind == "int":
        return data.draw(st.integers(-ndim, ndim - 1), label="axis")
    axes = data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True),
                     label="axes")
    negate = data.draw(st.lists(st.booleans(), min_size=len(axes), max_size=len(axes)))
    return tuple(a - ndim if n else a for a, n in zip(axes, negate))


def reduction(name: str, fn: Callable, ref: Callable, tie_free_values: bool = False,
              elements: st.SearchStrategy = REAL) -> Case:
    def draw(data: st.DataObject) -> tuple:
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), label="shape")
        x = tie_free(data, shape) if tie_free_values else arr(data, shape, elements)
        axis = _axis_spec(data, len(shape))
        keepdims = data.draw(st.booleans(), label="keepdims")
        return [x], {"axis": axis, "keepdims": keepdims}
    return Case(name, fn, ref, draw)


def _norm_ref(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))


REDUCTIONS = [
    reduction("sum", lambda x, axis, keepdims: gv.sum(x, axis, keepdims),
              lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims)),
    reduction("sum-method-dim-keepdim",
              lambda x, axis, keepdims: x.sum(dim=axis, keepdim=keepdims),
              lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims)),
    reduction("mean", lambda x, axis, keepdims: gv.mean(x, axis, keepdims),
              lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims)),
    reduction("max", lambda x, axis, keepdims: gv.max(x, axis, keepdims),
              lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims), True),
    reduction("min", lambda x, axis, keepdims: gv.min(x, axis, keepdims),
              lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims), True),
    # the norm is not differentiable at 0: keep every reduced slice well away from it
    reduction("norm", lambda x, axis, keepdims: gv.norm(x, axis, keepdims), _norm_ref,
              elements=floats(-2.0, 2.0).filter(lambda v: math.fabs(v) > 0.3)),
]


def fixed(name: str, fn: Callable, ref: Callable, *shapes: tuple,
          elements: st.SearchStrategy = REAL) -> Case:
    """An op applied to inputs of fixed shapes (values drawn)."""
    def draw(data: st.DataObject) -> tuple:
        return [arr(data, s, elements) for s in shapes], {}
    return Case(f"{name}{list(shapes)}", fn, ref, draw)


PRODUCTS = [
    fixed("dot", gv.dot, np.dot, (4,), (4,)),
    fixed("dot-method", lambda a, b: a.dot(b), np.dot, (3,), (3,)),
    fixed("matmul", gv.matmul, np.matmul, (4,), (4,)),
    fixed("matmul", gv.matmul, np.matmul, (3,), (3, 2)),
    fixed("matmul", gv.matmul, np.matmul, (2, 3), (3,)),
    fixed("matmul", gv.matmul, np.matmul, (2, 3), (3, 4)),
    fixed("matmul-operator", lambda a, b: a @ b, np.matmul, (2, 3), (3, 4)),
    fixed("matmul-batched", gv.matmul, np.matmul, (2, 3, 4), (4, 2)),
    fixed("matmul-batched", gv.matmul, np.matmul, (2, 2, 3), (3,)),
    fixed("matmul-batched", gv.matmul, np.matmul, (3,), (2, 3, 2)),
    fixed("matmul-batched-broadcast", gv.matmul, np.matmul, (2, 1, 2, 3), (3, 3, 2)),
    fixed("mm", gv.mm, np.matmul, (3, 2), (2, 2)),
]


def _index_cases() -> list:
    indices = {
        "int": 1, "negative-int": -1, "slice": slice(1, 3), "step": slice(None, None, 2),
        "negative-step": slice(None, None, -1), "tuple": (1, 2),
        "column-negative": (slice(None), -2), "ellipsis": (Ellipsis, 1),
        "slice-step-tuple": (slice(1, None), slice(None, None, 2)),
        "repeated-fancy": [0, 0, 2], "repeated-fancy-pair": ([0, 0, 2], [1, 1, 3]),
        "slice-and-fancy": (slice(1, None), [0, 0, 4]), "new-axis": None,
    }

    def make(index: Any) -> tuple:
        np_index = tuple(np.asarray(i) if isinstance(i, list) else i for i in index) \
            if isinstance(index, tuple) else (np.asarray(index) if isinstance(index, list)
                                              else index)
        return (lambda x: x[index]), (lambda x: x[np_index])

    cases = []
    for label, index in indices.items():
        fn, ref = make(index)
        cases.append(fixed(f"index-{label}", fn, ref, (4, 5)))
    return cases


SHAPE_OPS = [
    fixed("T", lambda x: x.T, lambda x: x.T, (2, 3)),
    fixed("T-3d", lambda x: x.T, lambda x: x.T, (2, 3, 4)),
    fixed("transpose(x,0,1)", lambda x: gv.transpose(x, 0, 1), lambda x: np.swapaxes(x, 0, 1),
          (2, 3)),
    fixed("transpose(x,0,2)", lambda x: gv.transpose(x, 0, 2), lambda x: np.swapaxes(x, 0, 2),
          (2, 3, 4)),
    fixed("transpose-method(-1,-2)", lambda x: x.transpose(-1, -2),
          lambda x: np.swapaxes(x, -1, -2), (2, 3, 4)),
    fixed("permute", lambda x: gv.permute(x, 2, 0, 1), lambda x: np.transpose(x, (2, 0, 1)),
          (2, 3, 4)),
    fixed("reshape", lambda x: gv.reshape(x, 3, 4), lambda x: x.reshape(3, 4), (2, 6)),
    fixed("reshape-minus-one", lambda x: x.reshape(-1, 2), lambda x: x.reshape(-1, 2), (3, 4)),
    fixed("reshape-to-scalar", lambda x: x.reshape(()), lambda x: x.reshape(()), (1, 1)),
    fixed("view", lambda x: x.view(6), lambda x: x.reshape(6), (2, 3)),
    fixed("flatten", gv.flatten, np.ravel, (2, 3, 2)),
    fixed("broadcast_to", lambda x: gv.broadcast_to(x, (2, 3, 4)),
          lambda x: np.broadcast_to(x, (2, 3, 4)), (3, 1)),
    fixed("broadcast_to-scalar", lambda x: gv.broadcast_to(x, (2, 3)),
          lambda x: np.broadcast_to(x, (2, 3)), ()),
    fixed("expand", lambda x: x.expand(4, 3), lambda x: np.broadcast_to(x, (4, 3)), (3,)),
    fixed("concatenate-axis0", lambda a, b, c: gv.concatenate([a, b, c]),
          lambda a, b, c: np.concatenate([a, b, c]), (2, 3), (1, 3), (3, 3)),
    fixed("cat-dim1", lambda a, b: gv.cat([a, b], dim=1),
          lambda a, b: np.concatenate([a, b], axis=1), (2, 3), (2, 1)),
    fixed("concatenate-1d", lambda a, b: gv.concatenate([a, b]),
          lambda a, b: np.concatenate([a, b]), (3,), (2,)),
    fixed("stack-axis0", lambda a, b, c: gv.stack([a, b, c]),
          lambda a, b, c: np.stack([a, b, c]), (2, 3), (2, 3), (2, 3)),
    fixed("stack-axis1", lambda a, b: gv.stack([a, b], axis=1),
          lambda a, b: np.stack([a, b], axis=1), (2, 3), (2, 3)),
    fixed("stack-axis-last", lambda a, b: gv.stack([a, b], dim=-1),
          lambda a, b: np.stack([a, b], axis=-1), (3,), (3,)),
    fixed("stack-scalars", lambda a, b, c: gv.stack([a, b, c]),
          lambda a, b, c: np.stack([a, b, c]), (), (), ()),
]


def where_case(cond_shape: tuple, a_shape: tuple, b_shape: tuple) -> Case:
    def draw(data: st.DataObject) -> tuple:
        cond = data.draw(hnp.arrays(np.bool_, cond_shape), label="condition")
        return [arr(data, a_shape), arr(data, b_shape)], {"cond": cond}
    return Case(f"where{[cond_shape, a_shape, b_shape]}",
                lambda a, b, cond: gv.where(cond, a, b),
                lambda a, b, cond: np.where(cond, a, b), draw)


WHERE = [
    where_case((3, 4), (3, 4), (3, 4)),
    where_case((3, 4), (3, 1), (1, 4)),
    where_case((2, 3), (), (3,)),
]

# A composite function: many ops in one graph, a shared input used three times.
COMPOSITE = [
    fixed("composite",
          lambda x, w: gv.sum(gv.tanh(x @ w) * gv.sigmoid(x @ w) + gv.exp(-x.mean(1, True))),
          lambda x, w: np.sum(np.tanh(x @ w) * _sigmoid_ref(x @ w)
                              + np.exp(-x.mean(1, keepdims=True))),
          (3, 2), (2, 4)),
]

CASES = UNARY + BINARY + SCALAR_OPERANDS + REDUCTIONS + PRODUCTS + _index_cases() + \
    SHAPE_OPS + WHERE + COMPOSITE

# Ops whose second derivative is checked (the ones the lesson differentiates twice,
# and more: every case goes through create_graph and is differentiated again).
SECOND_ORDER = UNARY + BINARY + SCALAR_OPERANDS + REDUCTIONS + PRODUCTS + WHERE + COMPOSITE + [
    c for c in _index_cases() if "fancy" in c.name] + [
    c for c in SHAPE_OPS if c.name.startswith(("concatenate", "stack", "broadcast", "T"))]


def ids(cases: list) -> list:
    return [c.name for c in cases]


def leaves_of(arrays: list) -> list:
    return [gv.tensor(a, requires_grad=True) for a in arrays]


def seed_like(data: st.DataObject, shape: tuple) -> np.ndarray:
    return arr(data, shape, floats(-1.5, 1.5))


# -- the checks ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@SETTINGS
@given(data=st.data())
def test_forward_value_matches_numpy(case: Case, data: st.DataObject) -> None:
    arrays, params = case.draw(data)
    out = case.fn(*[gv.tensor(a) for a in arrays], **params)
    expected = np.asarray(case.ref(*arrays, **params))
    assert isinstance(out, gv.Tensor)
    assert tuple(out.shape) == expected.shape
    assert out.dtype == np.float64
    close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@SETTINGS
@given(data=st.data())
def test_reverse_mode_matches_finite_differences(case: Case, data: st.DataObject) -> None:
    arrays, params = case.draw(data)
    leaves = leaves_of(arrays)
    out = case.fn(*leaves, **params)
    seed = seed_like(data, tuple(out.shape))
    expected = fd_gradients(lambda arrs: np.sum(seed * case.ref(*arrs, **params)), arrays)

    grads = gv.grad(out, leaves, grad_outputs=seed, retain_graph=True)
    assert len(grads) == len(leaves)
    for g, leaf, e in zip(grads, leaves, expected):
        assert tuple(g.shape) == tuple(leaf.shape)
        assert g.dtype == np.float64
        close(g, e)
        assert leaf.grad is None  # grad() leaves .grad alone

    out.backward(gv.tensor(seed))
    for leaf, e in zip(leaves, expected):
        assert leaf.grad is not None and tuple(leaf.grad.shape) == tuple(leaf.shape)
        close(leaf.grad, e)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@SETTINGS
@given(data=st.data())
def test_forward_mode_jvp_matches_finite_differences(case: Case, data: st.DataObject) -> None:
    arrays, params = case.draw(data)
    tangents = [arr(data, a.shape, floats(-1.0, 1.0)) for a in arrays]
    out, tangent = gv.jvp(lambda *xs: case.fn(*xs, **params), arrays, tangents)
    close(out, case.ref(*arrays, **params), rtol=1e-12, atol=1e-12)
    expected = fd_directional(lambda *xs: case.ref(*xs, **params), arrays, tangents)
    assert tuple(tangent.shape) == expected.shape
    close(tangent, expected)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@SETTINGS
@given(data=st.data())
def test_forward_sweep_one_input_matches_finite_differences(case: Case,
                                                           data: st.DataObject) -> None:
    """ForwardSweep seeded on one input only: the others are held fixed."""
    arrays, params = case.draw(data)
    which = data.draw(st.integers(0, len(arrays) - 1), label="seeded input")
    leaves = leaves_of(arrays)
    out = case.fn(*leaves, **params)
    t = arr(data, arrays[which].shape, floats(-1.0, 1.0))
    sweep = gv.ForwardSweep(out, {leaves[which]: t}).run()
    got = sweep.tangent_of(out)
    tangents = [t if i == which else np.zeros_like(a) for i, a in enumerate(arrays)]
    expected = fd_directional(lambda *xs: case.ref(*xs, **params), arrays, tangents)
    assert got is not None
    close(got, expected)
    # the sweep visits nodes in execution order, ending with the output
    steps = list(gv.ForwardSweep(out, {leaves[which]: t}))
    assert steps[-1].node is out
    assert [s.node.seq for s in steps] == sorted(s.node.seq for s in steps)
    close(steps[-1].tangent, expected)


@pytest.mark.parametrize("case", SECOND_ORDER, ids=ids(SECOND_ORDER))
@SETTINGS
@given(data=st.data())
def test_second_order_matches_finite_differences_of_gradient(case: Case,
                                                             data: st.DataObject) -> None:
    """d/dx <w, d/dx L> with L = sum(seed * f(x) * f(x)): create_graph, then grad again."""
    arrays, params = case.draw(data)
    probe = case.fn(*[gv.tensor(a) for a in arrays], **params)
    seed = seed_like(data, tuple(probe.shape))
    ws = [arr(data, a.shape, floats(-1.0, 1.0)) for a in arrays]

    def loss(xs: list) -> gv.Tensor:
        y = case.fn(*xs, **params)
        return gv.sum(gv.tensor(seed) * y * y)

    def first_gradient_dot_w(arrs: list) -> float:
        xs = leaves_of(arrs)
        gs = gv.grad(loss(xs), xs, allow_unused=True)
        return float(np.sum([np.sum(w * (0 if g is None else g.data)) for w, g in zip(ws, gs)]))

    expected = fd_gradients(first_gradient_dot_w, arrays)

    leaves = leaves_of(arrays)
    firsts = gv.grad(loss(leaves), leaves, create_graph=True)
    # the first derivative itself is right
    fd_first = fd_gradients(lambda arrs: np.sum(seed * case.ref(*arrs, **params) ** 2), arrays)
    for g, e in zip(firsts, fd_first):
        close(g, e)
        assert g.requires_grad, "create_graph=True must return a differentiable gradient"
    inner = gv.sum(gv.stack([gv.sum(gv.tensor(w) * g) for w, g in zip(ws, firsts)]))
    seconds = gv.grad(inner, leaves, allow_unused=True)
    for g, e in zip(seconds, expected):
        got = np.zeros_like(e) if g is None else g.data
        close(got, e, rtol=1e-5, atol=1e-7)


@SETTINGS
@given(data=st.data())
def test_second_order_of_plain_seed_sum_and_mean(data: st.DataObject) -> None:
    """grad of sum / mean is constant: its create_graph result carries no graph, Hessian 0."""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    x = gv.tensor(arr(data, shape), requires_grad=True)
    for fn, count in ((gv.sum, 1), (gv.mean, int(np.prod(shape)))):
        g, = gv.grad(fn(x), x, create_graph=True)
        close(g, np.full(shape, 1.0 / count), rtol=1e-12, atol=0)
        h, = gv.grad(gv.sum(g * g), x, allow_unused=True) if g.requires_grad else (None,)
        assert h is None or np.all(h.data == 0)


@SETTINGS
@given(x=hnp.arrays(np.float64, st.integers(1, 6), elements=floats(-2.0, 2.0)))
def test_third_derivative_of_sin_by_repeated_create_graph(x: np.ndarray) -> None:
    t = gv.tensor(x, requires_grad=True)
    g1, = gv.grad(gv.sin(t).sum(), t, create_graph=True)
    g2, = gv.grad(g1.sum(), t, create_graph=True)
    g3, = gv.grad(g2.sum(), t)
    close(g1, np.cos(x), rtol=1e-12, atol=1e-12)
    close(g2, -np.sin(x), rtol=1e-12, atol=1e-12)
    close(g3, -np.cos(x), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(data=st.data())
def test_backward_create_graph_gives_differentiable_grad(data: st.DataObject) -> None:
    """backward(create_graph=True) leaves a .grad that is itself part of a graph."""
    x0 = arr(data, data.draw(hnp.array_shapes(max_dims=2, max_side=4)), floats(0.5, 2.0))
    x = gv.tensor(x0, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    close(x.grad, 3 * x0 ** 2, rtol=1e-12, atol=1e-12)
    assert x.grad.requires_grad
    h, = gv.grad(x.grad.sum(), x)
    close(h, 6 * x0)


# -- gradients that must add up ----------------------------------------------------------


def test_repeated_fancy_index_gradient_adds_up() -> None:
    x = gv.tensor(np.arange(5.0), requires_grad=True)
    y = x[[0, 0, 2, 0]]
    y.backward(gv.tensor(np.array([1.0, 10.0, 100.0, 1000.0])))
    close(x.grad, [1011.0, 0.0, 100.0, 0.0, 0.0], rtol=0, atol=0)


def test_input_used_twice_and_broadcast_gradient_adds_up() -> None:
    a0 = np.array([[1.0], [2.0], [3.0]])
    b0 = np.array([[4.0, 5.0, 6.0, 7.0]])
    a = gv.tensor(a0, requires_grad=True)
    b = gv.tensor(b0, requires_grad=True)
    (a * b + a).sum().backward()
    close(a.grad, np.full((3, 1), b0.sum() + 4), rtol=0, atol=1e-12)
    close(b.grad, np.full((1, 4), a0.sum()), rtol=0, atol=1e-12)


# -- gradviz.check and defop -----------------------------------------------------------------


def _cube(vjp_factor: float, jvp_factor: float) -> gv.Op:
    return gv.defop("cube", lambda x: x ** 3, saves=("x0",),
                    vjps=(lambda g, x: g * vjp_factor * x ** 2,),
                    jvps=(lambda t, x: t * jvp_factor * x ** 2,))


@SETTINGS
@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=3),
                    elements=floats(0.5, 2.0)))
def test_check_passes_a_correct_custom_op(x: np.ndarray) -> None:
    cube = _cube(3.0, 3.0)
    result = gv.check(cube, x)
    assert result.ok and bool(result)
    assert result.reverse_error[0] < 1e-6 and result.forward_error[0] < 1e-6
    # and the op works in a graph like any other
    t = gv.tensor(x, requires_grad=True)
    y = cube(t)
    assert y.grad_fn.name() == "CubeBackward0"
    y.sum().backward()
    close(t.grad, 3 * x ** 2, rtol=1e-12, atol=0)


@SETTINGS
@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=3),
                    elements=floats(0.5, 2.0)))
def test_check_catches_a_wrong_vjp(x: np.ndarray) -> None:
    wrong = _cube(2.0, 3.0)  # backward forgot the exponent: 2x^2 instead of 3x^2
    result = gv.check(wrong, x)
    assert not result.ok and not bool(result)
    assert result.forward_error[0] < 1e-6          # the JVP is right ...
    assert result.reverse_error[0] >= 0.25 - 1e-9  # ... the VJP is off by x^2 >= 0.25
    # the reported Jacobians: finite differences are 3x^2 on the diagonal, reverse 2x^2
    n = x.size
    num = result.numeric[0].reshape(n, n)
    rev = result.reverse[0].reshape(n, n)
    close(np.diag(num), 3 * x.ravel() ** 2, rtol=1e-6, atol=1e-8)
    close(np.diag(rev), 2 * x.ravel() ** 2, rtol=1e-12, atol=0)


def test_check_catches_a_wrong_jvp_only() -> None:
    wrong = _cube(3.0, -3.0)
    result = gv.check(wrong, np.array([0.5, 1.0, 1.5]))
    assert not result.ok
    assert result.reverse_error[0] < 1e-6
    assert result.forward_error[0] > 1.0


def test_check_a_composite_function_of_two_inputs() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3,))
    good = gv.check(lambda p, q: gv.tanh(p * q).sum(axis=0), a, b)
    assert good.ok and len(good.reverse_error) == 2
    wrong_mul = gv.defop("mul", np.multiply, saves=("x0", "x1"),
                         vjps=(lambda g, x, y: g * y, lambda g, x, y: g * y),  # 2nd is wrong
                         jvps=(lambda t, x, y: t * y, lambda t, x, y: x * t))
    bad = gv.check(lambda p, q: gv.tanh(wrong_mul(p, q)).sum(axis=0), a, b)
    assert not bad.ok
    assert bad.reverse_error[0] < 1e-6 and bad.reverse_error[1] > 1e-3


# -- dtypes --------------------------------------------------------------------------------

FLOAT32_FUNCTIONS = {
    "mul-scalar": lambda x: x * 2,
    "rmul-float": lambda x: 2.5 * x,
    "div-scalar": lambda x: x / 3,
    "pow-int": lambda x: x ** 2,
    "rpow": lambda x: 2 ** x,
    "add-float": lambda x: x + 1.5,
    "sin": gv.sin, "exp": gv.exp, "tanh": gv.tanh, "sigmoid": gv.sigmoid,
    "relu": gv.relu, "abs": gv.abs, "sqrt": lambda x: gv.sqrt(x * x + 1),
    "log": lambda x: gv.log(x * x + 1),
    "sum-axis": lambda x: x.sum(axis=0), "mean": gv.mean, "max": gv.max, "min": gv.min,
    "norm": gv.norm, "norm-axis": lambda x: gv.norm(x, axis=1, keepdims=True),
    "matmul": lambda x: x @ x.T, "index": lambda x: x[[0, 0, 1]],
    "reshape": lambda x: x.reshape(-1), "broadcast": lambda x: gv.broadcast_to(x, (2, 2, 3)),
    "cat": lambda x: gv.cat([x, x], dim=1), "stack": lambda x: gv.stack([x, x]),
    "where-tensors": lambda x: gv.where(x > 0, x, -x),
    "where-python-zero": lambda x: gv.where(x > 0, x, 0),
    "where-python-float": lambda x: gv.where(x > 0, x * x, 0.5),
}


@pytest.mark.parametrize("name", list(FLOAT32_FUNCTIONS))
def test_float32_inputs_give_float32_values_and_gradients(name: str) -> None:
    fn = FLOAT32_FUNCTIONS[name]
    x0 = np.array([[0.5, -1.25, 2.0], [1.5, -0.75, 0.25]], dtype=np.float32)
    x = gv.tensor(x0, requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32, f"{name}: forward gave {y.dtype}"
    y.backward(gv.ones_like(y))
    assert x.grad.dtype == np.float32, f"{name}: gradient is {x.grad.dtype}"
    _, tangent = gv.jvp(fn, (x0,), (np.ones_like(x0),))
    assert tangent.dtype == np.float32, f"{name}: tangent is {tangent.dtype}"
    # and the float32 gradient agrees with the float64 one to float32 precision
    x64 = gv.tensor(x0.astype(np.float64), requires_grad=True)
    y64 = fn(x64)
    y64.backward(gv.ones_like(y64))
    np.testing.assert_allclose(x.grad.data, x64.grad.data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["norm", "where-python-zero", "sqrt", "matmul"])
def test_float32_second_order_stays_float32(name: str) -> None:
    fn = FLOAT32_FUNCTIONS[name]
    x = gv.tensor(np.array([[0.5, -1.25, 2.0], [1.5, -0.75, 0.25]], dtype=np.float32),
                  requires_grad=True)
    y = fn(x)
    g, = gv.grad((y * y).sum(), x, create_graph=True)
    assert g.dtype == np.float32, f"{name}: create_graph gradient is {g.dtype}"
    h, = gv.grad(g.sum(), x)
    assert h.dtype == np.float32, f"{name}: second derivative is {h.dtype}"


def test_python_scalars_keep_float32_and_float_lists_default_to_float32() -> None:
    x = gv.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert x.dtype == np.float32
    for y in (x * 2, 2 * x, x * 2.0, x + 1, x - 0.5, x / 2, x ** 2, 3.0 ** x):
        assert y.dtype == np.float32
    x64 = gv.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert (x64 * 2).dtype == np.float64 and (2.5 * x64).dtype == np.float64


def test_mixed_precision_promotes_and_grads_keep_each_leaf_dtype() -> None:
    a = gv.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = gv.tensor(np.array([3.0, 4.0], dtype=np.float64), requires_grad=True)
    y = (a * b).sum()
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    close(a.grad, [3.0, 4.0], rtol=0, atol=0)
    close(b.grad, [1.0, 2.0], rtol=0, atol=0)


@pytest.mark.parametrize("method, target", [("double", np.float64), ("float", np.float32)])
def test_dtype_conversion_is_differentiable(method: str, target: Any) -> None:
    src = np.float32 if target == np.float64 else np.float64
    x0 = np.array([0.5, 1.5, -2.0], dtype=src)
    x = gv.tensor(x0, requires_grad=True)
    y = getattr(x, method)()
    assert y.dtype == target
    assert y.grad_fn.name() == "ToCopyBackward0"
    (y * y).sum().backward()
    assert x.grad.dtype == src
    close(x.grad, 2 * x0, rtol=1e-6, atol=0)


@pytest.mark.parametrize("make", [
    lambda: gv.tensor([1, 2, 3], requires_grad=True),
    lambda: gv.arange(4, requires_grad=True),
    lambda: gv.tensor([True, False], requires_grad=True),
    lambda: gv.tensor(np.array([1, 2], dtype=np.int32)).requires_grad_(),
], ids=["int-list", "int-arange", "bool", "requires_grad_"])
def test_integer_tensor_cannot_require_grad(make: Callable) -> None:
    with pytest.raises(TypeError) as info:
        make()
    assert str(info.value) == "only Tensors of floating point dtype can require gradients"
    assert isinstance(info.value, GradvizError) and isinstance(info.value, GradvizTypeError)


def test_integer_and_float_arange_dtypes() -> None:
    assert gv.arange(4).dtype == np.int64
    assert gv.arange(4.0).dtype == np.float32
    assert gv.arange(4.0, requires_grad=True).requires_grad


# -- no gradient flows where it must not --------------------------------------------------


def test_comparisons_sign_and_detach_pass_no_gradient() -> None:
    x = gv.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    for y in (x > 0, x <= 1, x == 0.5, x != 2, gv.sign(x), x.detach(), gv.detach(x)):
        assert not y.requires_grad and y.grad_fn is None
    z = (x * gv.sign(x)).sum() + (x.detach() * x).sum()
    z.backward()
    close(x.grad, np.sign([-1.0, 0.5, 2.0]) + np.array([-1.0, 0.5, 2.0]), rtol=0, atol=0)


def test_where_condition_from_a_float_tensor() -> None:
    c = gv.tensor(np.array([0.0, 2.0, -1.0]))  # nonzero means True
    a = gv.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = gv.tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
    y = gv.where(c, a, b)
    close(y, [4.0, 2.0, 3.0], rtol=0, atol=0)
    y.backward(gv.tensor(np.array([1.0, 2.0, 3.0])))
    close(a.grad, [0.0, 2.0, 3.0], rtol=0, atol=0)
    close(b.grad, [1.0, 0.0, 0.0], rtol=0, atol=0)


def test_norm_gradient_at_zero_is_zero() -> None:
    x = gv.tensor(np.zeros((2, 3)), requires_grad=True)
    gv.norm(x).backward()
    close(x.grad, np.zeros((2, 3)), rtol=0, atol=0)
    x.grad = None
    gv.norm(x, axis=1).sum().backward()
    close(x.grad, np.zeros((2, 3)), rtol=0, atol=0)


def test_max_with_ties_shares_the_gradient() -> None:
    x = gv.tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    gv.max(x).backward()
    close(x.grad, [0.0, 0.5, 0.5, 0.0], rtol=0, atol=0)


def test_grad_fn_names_of_ops() -> None:
    x = gv.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    v = gv.tensor(np.array([1.0, 2.0]), requires_grad=True)
    names = {
        "AddBackward0": x + 1, "SubBackward0": x - 1, "MulBackward0": x * 2,
        "DivBackward0": x / 2, "PowBackward0": x ** 2, "NegBackward0": -x,
        "SinBackward0": x.sin(), "CosBackward0": x.cos(), "TanBackward0": x.tan(),
        "ExpBackward0": x.exp(), "LogBackward0": x.log(), "SqrtBackward0": x.sqrt(),
        "AbsBackward0": x.abs(), "TanhBackward0": x.tanh(), "SigmoidBackward0": x.sigmoid(),
        "ReluBackward0": x.relu(), "SumBackward0": x.sum(), "MeanBackward0": x.mean(),
        "MaxBackward1": x.max(), "MinBackward1": x.min(), "LinalgVectorNormBackward0": x.norm(),
        "DotBackward0": gv.dot(v, v), "MmBackward0": x @ x, "PermuteBackward0": x.T,
        "ViewBackward0": x.reshape(4), "ExpandBackward0": v.expand(3, 2),
        "SelectBackward0": x[0], "IndexBackward0": x[[0, 1]], "CatBackward0": gv.cat([x, x]),
        "StackBackward0": gv.stack([x, x]), "WhereBackward0": gv.where(x > 2, x, -x),
        "CloneBackward0": x.clone(),
    }
    for expected, y in names.items():
        assert y.grad_fn is not None and y.grad_fn.name() == expected
        assert not y.is_leaf and y.requires_grad
    assert x.grad_fn is None and x.is_leaf
