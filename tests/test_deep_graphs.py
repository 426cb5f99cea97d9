"""Graphs far deeper and wider than Python's recursion limit.

Every walk of the engine is iterative: a chain of 100,000 ops backpropagates,
is listed by a Tape, and is swept forward as safely as a chain of three.  Each
result is compared with a closed form or an independent recurrence.
"""

from __future__ import annotations

import gc
import math
import sys

import numpy as np

import gradviz as gv

DEPTH = 100_000
WIDTH = 100_000


def _chain_of_scalings(depth: int, rate: float, x0: float) -> tuple:
    x = gv.tensor(np.array(x0), requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * rate
    return x, y


def _sin_steps(ops: int, x0: float, eps: float) -> tuple:
    """y <- y + eps * sin(y) (sin, mul, add: three ops a step); and the chain rule by hand."""
    x = gv.tensor(np.array(x0), requires_grad=True)
    y = x
    value, slope = x0, 1.0
    for _ in range(-(-ops // 3)):
        y = y + eps * gv.sin(y)
        slope *= 1.0 + eps * math.cos(value)
        value = value + eps * math.sin(value)
    return x, y, value, slope


def test_chain_of_100000_multiplications_backpropagates() -> None:
    limit = sys.getrecursionlimit()
    assert DEPTH > 10 * limit
    x, y = _chain_of_scalings(DEPTH, 1.0001, 0.5)
    np.testing.assert_allclose(y.data, 0.5 * 1.0001 ** DEPTH, rtol=1e-9)
    y.backward()
    assert sys.getrecursionlimit() == limit  # iterative, not a raised limit
    np.testing.assert_allclose(x.grad.data, 1.0001 ** DEPTH, rtol=1e-9)


def test_chain_of_100000_sin_mul_add_ops() -> None:
    x, y, value, slope = _sin_steps(DEPTH, 0.7, 3e-5)
    assert len(gv.Tape(y)) > DEPTH
    np.testing.assert_allclose(y.data, value, rtol=1e-12)
    g, = gv.grad(y, x, retain_graph=True)
    np.testing.assert_allclose(g.data, slope, rtol=1e-9)
    assert slope > 1.4  # far from 1: every step's derivative counts
    # iterating the very same pass one step at a time gives the same gradient
    steps = 0
    for step in gv.BackwardPass(y, retain_graph=True):
        steps += 1
        last = step
    assert steps == 3 * (-(-DEPTH // 3)) + 1
    assert last.node is x
    np.testing.assert_allclose(last.adjoint, slope, rtol=1e-9)


def test_deep_chain_forward_sweep_and_jvp() -> None:
    x, y, value, slope = _sin_steps(DEPTH, 0.7, 3e-5)
    sweep = gv.ForwardSweep(y, {x: np.array(2.0)}).run()
    np.testing.assert_allclose(sweep.tangent_of(y), 2.0 * slope, rtol=1e-9)

    def chain(t: gv.Tensor) -> gv.Tensor:
        for _ in range(DEPTH // 2):
            t = t * 1.00002
        return gv.sin(t)

    out, tangent = gv.jvp(chain, (np.array(0.3),), (np.array(1.0),))
    scale = 1.00002 ** (DEPTH // 2)
    np.testing.assert_allclose(out.data, math.sin(0.3 * scale), rtol=1e-9)
    np.testing.assert_allclose(tangent.data, math.cos(0.3 * scale) * scale, rtol=1e-9)


def test_tape_of_a_deep_chain_is_in_execution_order() -> None:
    x, y = _chain_of_scalings(DEPTH, 1.0001, 0.5)
    tape = gv.Tape(y)
    # x, then (constant 1.0001, product) for each multiplication
    assert len(tape) == 2 * DEPTH + 1
    nodes = tape.nodes
    seqs = [n.seq for n in nodes]
    assert all(a < b for a, b in zip(seqs, seqs[1:]))
    assert nodes[0] is x and nodes[-1] is y
    assert tape.id(x) == "v0"
    assert tape.id(y) == f"v{2 * DEPTH}"
    assert [tape.id(n) for n in nodes[:3]] == ["v0", "v1", "v2"]
    assert [tape.index(n) for n in nodes] == list(range(len(nodes)))
    for n in nodes[1:]:
        if n.op is not None:  # every product's inputs were made before it
            assert all(tape.index(i) < tape.index(n) for i in n.inputs)
    assert gv.tape(y).nodes == nodes


def test_deep_chain_backward_then_release_does_not_overflow() -> None:
    """Dropping the last reference to a 100,000-deep graph frees it without a crash."""
    x, y = _chain_of_scalings(DEPTH, 1.0, 2.0)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 1.0, rtol=0, atol=0)
    del y
    gc.collect()
    z = (x * 3).sum()
    z.backward()
    np.testing.assert_allclose(x.grad.data, 4.0, rtol=0, atol=0)


def test_wide_graph_of_100000_indexed_products() -> None:
    """sum_i a[i % 8] * c_i, built from 100,000 index and 100,000 multiply nodes."""
    rng = np.random.default_rng(0)
    a0 = rng.standard_normal(8)
    c = rng.standard_normal(WIDTH)
    a = gv.tensor(a0, requires_grad=True)
    terms = [a[i % 8] * float(c[i]) for i in range(WIDTH)]
    total = gv.stack(terms).sum()
    expected_grad = np.array([c[j::8].sum() for j in range(8)])
    np.testing.assert_allclose(total.data, float(expected_grad @ a0), rtol=1e-9)
    total.backward()
    np.testing.assert_allclose(a.grad.data, expected_grad, rtol=1e-9, atol=1e-9)


def test_wide_graph_of_100000_leaves() -> None:
    rng = np.random.default_rng(1)
    values = rng.standard_normal(WIDTH)
    leaves = [gv.tensor(np.array(v), requires_grad=True) for v in values]
    weights = gv.tensor(np.linspace(-1.0, 1.0, WIDTH))
    y = (gv.stack(leaves) * gv.stack(leaves) * weights).sum()
    np.testing.assert_allclose(y.data, np.sum(values ** 2 * np.linspace(-1.0, 1.0, WIDTH)),
                               rtol=1e-9)
    y.backward()
    grads = np.array([leaf.grad.data for leaf in leaves])
    np.testing.assert_allclose(grads, 2 * values * np.linspace(-1.0, 1.0, WIDTH),
                               rtol=1e-12, atol=1e-15)
    assert len(gv.Tape(y)) == WIDTH + 6  # leaves, 2 stacks, weights, 2 muls, sum


def test_long_sum_of_adds_is_deep_and_wide() -> None:
    """total = x0 + x1 + ... : a chain of 50,000 adds, each with its own leaf."""
    n = 50_000
    values = np.linspace(0.0, 1.0, n)
    leaves = [gv.tensor(np.array(v), requires_grad=True) for v in values]
    total = leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf * leaf
    total.backward()
    grads = np.array([leaf.grad.data for leaf in leaves])
    expected = 2 * values
    expected[0] = 1.0
    np.testing.assert_allclose(grads, expected, rtol=1e-12, atol=0)


def test_create_graph_on_a_chain_of_2000_ops() -> None:
    """y <- y + 0.001 * sin(y), three ops a step: second derivative by the recurrence."""
    steps = 667
    x = gv.tensor(np.array(0.9), requires_grad=True)
    y = x
    value, d1, d2 = 0.9, 1.0, 0.0
    for _ in range(steps):
        y = y + 0.001 * gv.sin(y)
        f1 = 1.0 + 0.001 * math.cos(value)
        f2 = -0.001 * math.sin(value)
        d2 = f2 * d1 * d1 + f1 * d2
        d1 = f1 * d1
        value = value + 0.001 * math.sin(value)
    assert len(gv.Tape(y)) >= 2000
    np.testing.assert_allclose(y.data, value, rtol=1e-12)
    g, = gv.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.data, d1, rtol=1e-10)
    assert g.requires_grad
    h, = gv.grad(g, x)
    np.testing.assert_allclose(h.data, d2, rtol=1e-8)
    assert abs(d2) > 1e-3
