"""What a backward pass tells about each of its steps: the stepper's and renderer's source.

Every field a debugger shows is the engine's: step numbers, per-edge local and
fitted contributions, the pending frontier, freed bytes, history, seeds.
"""

from __future__ import annotations

import ast
import copy
import threading
from pathlib import Path

import numpy as np
import pytest

import gradviz as gv
from gradviz.engine.backward import FREED, keep_saved

ENGINE = Path(gv.__file__).parent / "engine"


def test_step_numbers_are_dense_when_the_walk_skips_nodes():
    """A consumer with no rule for one input leaves nodes unreached: numbers have no gaps."""
    first = gv.defop("first", lambda a, b: a, vjps=(lambda g: g, None), jvps=(lambda t: t, None))
    a = gv.tensor([1.0, 2.0], requires_grad=True)
    b = gv.tensor([3.0, 4.0], requires_grad=True)
    hidden = b * 2.0
    y = first(a, hidden).sum()
    bp = gv.BackwardPass(y, retain_graph=True)
    steps = list(bp)
    assert [s.index for s in steps] == list(range(len(steps)))
    assert [s.node for s in steps] == [y, steps[1].node, a]
    assert bp.visited() == [s.node for s in steps]
    pruned = bp.pruned()
    # Every node is either stepped or listed with its reason: nothing silently skipped.
    assert pruned[hidden] == "first() sends no gradient to its input 1"
    assert pruned[b].startswith("cut off: first() sends no gradient")
    stepped = {id(s.node) for s in steps}
    for n in gv.Tape(y).nodes:
        assert (id(n) in stepped) != (n in pruned), n
    (edge_a, edge_h) = steps[1].edges
    assert edge_a.value is not None and edge_a.reason is None
    assert edge_h.value is None and edge_h.reason == "first() sends no gradient to its input 1"


def test_edges_keep_the_raw_contribution_apart_from_the_fitted_one():
    x = gv.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    b = gv.tensor([10.0, 20.0, 30.0], requires_grad=True)
    s = gv.tensor(2.0, requires_grad=True)
    y = ((x + b) * s).sum()
    steps = list(gv.BackwardPass(y))
    add = next(st for st in steps if st.node.op.name == "add")
    ex, eb = add.edges
    assert (ex.slot, ex.input, eb.slot, eb.input) == (0, x, 1, b)
    assert eb.local.shape == (2, 3) and eb.value.shape == (3,)   # un-broadcast: summed over rows
    np.testing.assert_array_equal(eb.value, eb.local.sum(axis=0))
    mul = next(st for st in steps if st.node.op.name == "mul")
    es = mul.edges[1]
    assert es.local.shape == (2, 3) and es.value.shape == ()
    np.testing.assert_allclose(es.value, (x.data + b.data).sum())
    assert es.derivative is None  # a tensor output: the local Jacobian has shape (2, 3)


def test_scalar_edges_carry_the_local_derivative():
    a = gv.tensor(2.0, requires_grad=True)
    b = gv.tensor(3.0, requires_grad=True)
    y = gv.sin(a * b)
    steps = list(gv.BackwardPass(y))
    sin_step, mul_step = steps[0], steps[1]
    np.testing.assert_allclose(sin_step.edges[0].derivative, np.cos(6.0), rtol=1e-6)
    da, db = (e.derivative for e in mul_step.edges)
    assert float(da) == 3.0 and float(db) == 2.0
    # contribution = upstream adjoint x local derivative, the chain rule on the edge
    for e in mul_step.edges:
        np.testing.assert_allclose(e.value, mul_step.adjoint * e.derivative, rtol=1e-6)


def test_the_pending_frontier_is_kept_as_the_walk_goes():
    x = gv.tensor(1.5, requires_grad=True)
    u = x * x            # x used twice here, and once more below
    y = u + x
    bp = gv.BackwardPass(y)
    seen = []
    for step in bp:
        seen.append((step.node, [n for n in step.reached], list(bp.pending())))
    (n0, r0, p0), (n1, r1, p1), (n2, r2, p2) = seen
    assert n0 is y and r0 == [u, x] and p0 == [u, x]  # x holds a partial adjoint (1)
    assert n1 is u and r1 == [] and p1 == [x]          # x now has 1 + 2x, still pending
    assert n2 is x and p2 == []


def test_history_gives_the_adjoints_as_of_any_step():
    x = gv.tensor([1.0, -2.0], requires_grad=True)
    w = gv.tensor([0.5, 3.0], requires_grad=True)
    y = (gv.tanh(x * w) * x).sum()
    bp = gv.BackwardPass(y, record=True)
    live = []
    for step in bp:
        live.append({k: np.copy(v) for k, v in bp._adjoints.items()})
    assert len(bp.history) == len(live)
    for k, snapshot in enumerate(live):
        again = bp.history.adjoints_at(k)
        assert again.keys() == snapshot.keys()
        for key in snapshot:
            np.testing.assert_array_equal(again[key], snapshot[key])
    assert set(bp.history.adjoints_at(-1)) == {id(y)}
    pending = bp.history.pending_at(0)
    assert set(pending) == {id(n) for n in bp.history.steps[0].reached}


def test_writing_into_grad_does_not_change_a_recorded_step():
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    steps = list(gv.BackwardPass((x * 3.0).sum()))
    leaf = steps[-1]
    x.grad.data[0] = 99.0
    np.testing.assert_array_equal(leaf.adjoint, [3.0, 3.0])


def test_into_grad_does_not_depend_on_accumulate():
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    for accumulate in (True, False):
        steps = list(gv.BackwardPass(y, retain_graph=True, accumulate=accumulate))
        assert [s.into_grad for s in steps] == [False, False, True]
        assert steps[-1].accumulated is accumulate


def test_seeds_are_public():
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    bp = gv.BackwardPass(y, gv.tensor([1.0, 10.0]))
    (out, seed), = bp.seeds
    assert out is y
    np.testing.assert_array_equal(seed, [1.0, 10.0])


def test_freed_bytes_tell_aliases_from_released_values():
    x = gv.tensor(np.arange(4.0), requires_grad=True)                # float64: 32 bytes
    y = (x * x).sum()                                                # mul saves x, x: aliases
    steps = list(gv.BackwardPass(y))
    mul = steps[1]
    assert mul.freed.released == 0 and mul.freed.aliased == 32  # x, saved twice, held once
    assert mul.node.saved is None
    # an integer operand is promoted to float for the product: that copy is really released
    k = gv.arange(4)                                                 # int64
    z = (k * x).sum()
    steps = list(gv.BackwardPass(z))
    mul = steps[1]
    assert mul.freed.released == 32 and mul.freed.aliased == 32
    # with retain_graph nothing is freed
    z2 = (x * x).sum()
    assert all(s.freed == (0, 0) for s in gv.BackwardPass(z2, retain_graph=True))


def test_kept_values_let_a_drawing_run_its_own_pass_after_the_script_freed_them():
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    with keep_saved() as kept:
        y = (x * x * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="a second time"):  # the script sees PyTorch
            y.backward()
    assert x.grad.tolist() == [3.0, 12.0]
    with pytest.raises(RuntimeError) as err:
        gv.BackwardPass(y, retain_graph=True).run()
    assert str(err.value) == FREED
    bp = gv.BackwardPass(y, retain_graph=True, accumulate=False, kept=kept).run()
    np.testing.assert_array_equal(bp.adjoint_of(x), [3.0, 12.0])


def test_grad_mode_is_per_thread():
    """Passes in other threads never switch recording off here (PyTorch's grad mode is thread-local)."""
    shared = gv.tensor([1.0, 2.0], requires_grad=True)
    errors: list[BaseException] = []
    results: list[list[float]] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(150):
                a = gv.tensor([1.0, 2.0], requires_grad=True)
                (gv.sin(a) * a).sum().backward()
                np.testing.assert_allclose(a.grad.data, np.sin([1, 2]) + np.cos([1, 2]) * [1, 2],
                                           rtol=1e-6)
                g, = gv.grad((shared * shared * 7.5).sum(), shared)  # d/dw = 15 w
                with lock:
                    results.append(g.tolist())
                with gv.no_grad():
                    assert not (a * 2).requires_grad
                assert (a * 2).requires_grad
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(results) == 8 * 150 and all(r == [15.0, 30.0] for r in results)
    assert gv.is_grad_enabled()


def test_forward_sweeps_keep_their_own_tangents_and_say_what_they_skip():
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    c = gv.tensor([5.0, 6.0], requires_grad=True)
    y = (gv.sin(x) * x + c * 2.0).sum()
    sweep = gv.ForwardSweep(y, {x: np.ones(2)})
    a, b = iter(sweep), iter(sweep)
    first_a = next(a)
    list(b)
    rest_a = list(a)
    assert first_a.node is x and first_a.seeded and first_a.index == 0
    assert [s.index for s in rest_a] == list(range(1, len(rest_a) + 1))
    np.testing.assert_allclose(rest_a[-1].tangent, (np.cos([1, 2]) * [1, 2] + np.sin([1, 2])).sum(),
                               rtol=1e-6)
    pruned = sweep.pruned()
    assert c in pruned and "does not depend" in pruned[c]
    mul = next(s for s in rest_a if s.node.op.name == "mul" and s.node.inputs[0] is not c)
    assert all(isinstance(e, gv.Edge) for e in mul.edges)
    assert mul.contributions == tuple((e.input, e.value) for e in mul.edges)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(ENGINE.glob("*.py")), ids=lambda p: p.name)
def test_the_engine_imports_no_op_table_renderer_or_front_end(path):
    """Layering: gradviz/engine knows no particular op and draws nothing, even lazily."""
    upward = {m for m in _imports(path) if m.startswith("gradviz.") and
              not m.startswith(("gradviz.engine", "gradviz.errors"))}
    assert upward == set(), f"{path.name} imports {upward}"


def test_tensor_methods_still_reach_their_ops():
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    assert x.detach().requires_grad is False
    assert x.clone().grad_fn.name() == "CloneBackward0"
    assert x.double().dtype == gv.float64
    assert copy.copy(x).grad_fn.name() == "CloneBackward0"
    m = gv.tensor([[1.0, 2.0]], requires_grad=True)
    assert m.T.shape == (2, 1)
