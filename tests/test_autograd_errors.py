"""Autograd misuse, printing and the backward pass's steps, held to PyTorch's texts.

A learner compares our messages and printouts with the lesson's (written with
PyTorch), so the texts here are PyTorch's, word for word.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import gradviz as gv
from gradviz.errors import AutogradError, GradvizError, GradvizTypeError

FREED = ("Trying to backward through the graph a second time (or directly access saved "
         "tensors after they have already been freed). Saved intermediate values of the "
         "graph are freed when you call .backward() or autograd.grad(). Specify "
         "retain_graph=True if you need to backward through the graph a second time or if "
         "you need to access saved tensors after calling backward.")
SCALAR_ONLY = "grad can be implicitly created only for scalar outputs"
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
LEAF_ONLY = ("you can only change requires_grad flags of leaf variables. If you want to use a "
             "computed variable in a subgraph that doesn't require differentiation use "
             "var_no_grad = var.detach().")


def assert_runtime_error(info: pytest.ExceptionInfo) -> None:
    assert isinstance(info.value, GradvizError)
    assert isinstance(info.value, RuntimeError)


def vec(*values: float) -> gv.Tensor:
    return gv.tensor(np.array(values, dtype=np.float64), requires_grad=True)


# -- backward twice ------------------------------------------------------------------------


@pytest.mark.parametrize("build, on_vector", [
    (lambda s, v: s * s, False),
    (lambda s, v: gv.sin(s), False),
    (lambda s, v: gv.exp(s) / s, False),
    (lambda s, v: gv.dot(v, v), True),
    (lambda s, v: (v * v).sum(), True),
    (lambda s, v: gv.norm(v), True),
], ids=["mul", "sin", "exp-div", "dot", "mul-then-sum", "norm"])
def test_backward_twice_through_saved_values_raises_pytorch_text(build, on_vector) -> None:
    s = gv.tensor(np.array(1.5), requires_grad=True)
    v = gv.tensor(np.array([1.5, -0.5]), requires_grad=True)
    y = build(s, v)
    leaf = v if on_vector else s
    y.backward()
    first = leaf.grad.data.copy()
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert str(info.value) == FREED
    assert_runtime_error(info)
    np.testing.assert_array_equal(leaf.grad.data, first)  # the failed pass added nothing


def test_grad_twice_through_saved_values_raises_the_same_text() -> None:
    x = vec(2.0)
    y = (x * x).sum()
    g, = gv.grad(y, x)
    np.testing.assert_allclose(g.data, [4.0], rtol=0, atol=0)
    with pytest.raises(RuntimeError) as info:
        gv.grad(y, x)
    assert str(info.value) == FREED
    assert_runtime_error(info)


def test_graph_that_saves_nothing_can_be_backpropagated_twice() -> None:
    x = gv.tensor(3.0, requires_grad=True)
    y = x + 1
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2.0, rtol=0, atol=0)


@pytest.mark.parametrize("build, per_pass", [
    (lambda x: x.sum(), [1.0, 1.0, 1.0]),
    (lambda x: x.mean(), [1 / 3, 1 / 3, 1 / 3]),
    (lambda x: x.reshape(3, 1).sum(), [1.0, 1.0, 1.0]),
    (lambda x: x[1:].sum(), [0.0, 1.0, 1.0]),
    (lambda x: (-x + 2).sum(), [-1.0, -1.0, -1.0]),
], ids=["sum", "mean", "reshape-sum", "slice-sum", "neg-add-sum"])
def test_ops_that_save_only_shapes_can_be_backpropagated_twice(build, per_pass) -> None:
    """As in PyTorch: SumBackward0, ViewBackward0, ... keep sizes, not tensors, so nothing is freed."""
    x = vec(1.0, 2.0, 3.0)
    y = build(x)
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.array(per_pass), rtol=1e-12, atol=0)


def test_retain_graph_allows_a_second_backward() -> None:
    x = vec(1.0, 2.0)
    y = (x * x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()  # the last one may free
    np.testing.assert_allclose(x.grad.data, 3 * 3 * np.array([1.0, 4.0]), rtol=1e-12, atol=0)
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert str(info.value) == FREED


def test_create_graph_implies_retain_graph() -> None:
    x = vec(1.0, 2.0)
    y = (x * x).sum()
    g1, = gv.grad(y, x, create_graph=True)
    g2, = gv.grad(y, x, create_graph=True)  # graph was kept
    np.testing.assert_allclose(g1.data, [2.0, 4.0], rtol=0, atol=0)
    np.testing.assert_allclose(g2.data, [2.0, 4.0], rtol=0, atol=0)
    y.backward(create_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0], rtol=0, atol=0)


def test_explicit_retain_graph_false_with_create_graph_frees() -> None:
    x = vec(1.0)
    y = (x * x).sum()
    gv.grad(y, x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError) as info:
        gv.grad(y, x)
    assert str(info.value) == FREED


# -- misuse of backward() and grad() ------------------------------------------------------


def test_non_scalar_backward_needs_a_gradient() -> None:
    x = vec(1.0, 2.0, 3.0)
    y = x * 2
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert str(info.value) == SCALAR_ONLY
    assert_runtime_error(info)
    with pytest.raises(RuntimeError) as info:
        gv.grad(y, x)
    assert str(info.value) == SCALAR_ONLY
    assert x.grad is None
    y.backward(gv.tensor(np.array([1.0, 10.0, 100.0])))  # with a gradient it works
    np.testing.assert_allclose(x.grad.data, [2.0, 20.0, 200.0], rtol=0, atol=0)


def test_one_element_non_scalar_output_needs_no_gradient() -> None:
    x = vec(1.0, 2.0)
    y = (x * x).sum(axis=0, keepdims=True)  # shape (1,)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0], rtol=0, atol=0)


def test_gradient_of_the_wrong_shape() -> None:
    x = vec(1.0, 2.0, 3.0)
    y = x * 2
    with pytest.raises(RuntimeError) as info:
        y.backward(gv.tensor(np.array([1.0, 2.0])))
    msg = str(info.value)
    assert msg.startswith("Mismatch in shape: grad_output[0] has a shape of")
    assert "[2]" in msg and "[3]" in msg
    assert msg.index("[2]") < msg.index("[3]")  # the gradient's shape first, the output's second
    assert_runtime_error(info)
    assert x.grad is None


def test_backward_on_a_tensor_that_does_not_require_grad() -> None:
    for y in (gv.tensor(2.0), gv.tensor(np.array([1.0, 2.0])).sum(), vec(1.0).detach()):
        with pytest.raises(RuntimeError) as info:
            y.backward()
        assert str(info.value) == NO_GRAD_FN
        assert_runtime_error(info)


def test_grad_with_an_unused_input() -> None:
    a, b = vec(1.0, 2.0), vec(3.0)
    y = (a * a).sum()
    with pytest.raises(RuntimeError) as info:
        gv.grad(y, [a, b], retain_graph=True)
    assert "allow_unused=True" in str(info.value)
    assert str(info.value) == ("One of the differentiated Tensors appears to not have been used "
                               "in the graph. Set allow_unused=True if this is the desired "
                               "behavior.")
    assert_runtime_error(info)
    ga, gb = gv.grad(y, [a, b], allow_unused=True)
    np.testing.assert_allclose(ga.data, [2.0, 4.0], rtol=0, atol=0)
    assert gb is None
    assert a.grad is None and b.grad is None


def test_grad_with_respect_to_a_tensor_that_does_not_require_grad() -> None:
    a = vec(1.0)
    c = gv.tensor(np.array([2.0]))
    with pytest.raises(RuntimeError) as info:
        gv.grad((a * c).sum(), [a, c])
    assert str(info.value) == "One of the differentiated Tensors does not require grad"
    assert_runtime_error(info)


def test_grad_leaves_dot_grad_untouched() -> None:
    x = vec(1.0, 2.0)
    (x * 3).sum().backward()
    before = x.grad
    np.testing.assert_allclose(before.data, [3.0, 3.0], rtol=0, atol=0)
    g, = gv.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.data, [2.0, 4.0], rtol=0, atol=0)
    assert x.grad is before
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0], rtol=0, atol=0)
    fresh = vec(5.0)
    gv.grad((fresh * fresh).sum(), fresh)
    assert fresh.grad is None


def test_grad_of_an_intermediate_and_of_several_outputs() -> None:
    x = vec(1.0, 2.0)
    h = x * x
    y = (h * 3).sum()
    gh, gx = gv.grad(y, [h, x])
    np.testing.assert_allclose(gh.data, [3.0, 3.0], rtol=0, atol=0)
    np.testing.assert_allclose(gx.data, [6.0, 12.0], rtol=0, atol=0)
    x2 = vec(1.0, 2.0)
    p, q = (x2 * 2).sum(), (x2 * x2).sum()
    g, = gv.grad([p, q], x2)
    np.testing.assert_allclose(g.data, [4.0, 6.0], rtol=0, atol=0)


def test_backward_with_inputs_accumulates_only_into_them() -> None:
    a, b = vec(1.0), vec(2.0)
    y = (a * b).sum()
    y.backward(inputs=[a])
    np.testing.assert_allclose(a.grad.data, [2.0], rtol=0, atol=0)
    assert b.grad is None


# -- .grad of leaves and non-leaves ----------------------------------------------------------


def test_non_leaf_grad_is_none_and_warns() -> None:
    x = vec(1.0, 2.0)
    h = x * 2
    (h * h).sum().backward()
    with pytest.warns(UserWarning, match=r"\.retain_grad\(\)"):
        assert h.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None  # a leaf's .grad does not warn


def test_retain_grad_keeps_a_non_leaf_gradient() -> None:
    x = vec(1.0, 2.0)
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(h.grad.data, [4.0, 8.0], rtol=0, atol=0)
    np.testing.assert_allclose(x.grad.data, [8.0, 16.0], rtol=0, atol=0)
    assert not h.is_leaf


def test_retain_grad_on_a_tensor_without_grad_raises() -> None:
    with pytest.raises(RuntimeError) as info:
        gv.tensor(1.0).retain_grad()
    assert str(info.value) == "can't retain_grad on Tensor that has requires_grad=False"
    assert_runtime_error(info)


def test_gradients_accumulate_until_zeroed() -> None:
    x = vec(1.0, 2.0)
    for k in range(1, 4):
        (x * x).sum().backward()
        np.testing.assert_allclose(x.grad.data, k * np.array([2.0, 4.0]), rtol=0, atol=0)
    grad_tensor = x.grad
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    (x * 5).sum().backward()
    assert x.grad is grad_tensor  # the same tensor is accumulated into, as in PyTorch
    np.testing.assert_allclose(x.grad.data, [5.0, 5.0], rtol=0, atol=0)
    x.grad = None
    (x * 7).sum().backward()
    np.testing.assert_allclose(x.grad.data, [7.0, 7.0], rtol=0, atol=0)


def test_detach_blocks_the_gradient() -> None:
    x = vec(1.0, 2.0, 3.0)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    np.testing.assert_array_equal(d.data, x.data)
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 2.0, 3.0], rtol=0, atol=0)  # not 2x
    x.grad = None
    (gv.detach(x * x) * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 5.0, 10.0], rtol=0, atol=0)


def test_no_grad_results_do_not_require_grad() -> None:
    x = vec(1.0, 2.0)
    assert gv.is_grad_enabled()
    with gv.no_grad():
        assert not gv.is_grad_enabled()
        y = x * x + 1
        with gv.enable_grad():
            z = x * 3
    assert gv.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn.name() == "MulBackward0"
    np.testing.assert_allclose(y.data, [2.0, 5.0], rtol=0, atol=0)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert str(info.value) == NO_GRAD_FN

    @gv.no_grad()
    def double(t: gv.Tensor) -> gv.Tensor:
        return t * 2

    assert not double(x).requires_grad
    assert gv.is_grad_enabled()


def test_requires_grad_on_a_non_leaf_raises() -> None:
    x = vec(1.0)
    y = x * 2
    with pytest.raises(RuntimeError) as info:
        y.requires_grad_(False)
    assert str(info.value) == LEAF_ONLY
    assert_runtime_error(info)
    c = gv.tensor(np.array([1.0, 2.0]))
    assert c.requires_grad_() is c and c.requires_grad


def test_integer_requires_grad_is_a_type_error() -> None:
    with pytest.raises(TypeError) as info:
        gv.tensor([1, 2, 3], requires_grad=True)
    assert str(info.value) == "only Tensors of floating point dtype can require gradients"
    assert isinstance(info.value, GradvizError) and isinstance(info.value, GradvizTypeError)
    assert not isinstance(info.value, RuntimeError)


def test_other_pytorch_texts() -> None:
    x = vec(1.0, 2.0, 3.0)
    with pytest.raises(RuntimeError) as info:
        x.numpy()
    assert str(info.value) == ("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
    with pytest.raises(RuntimeError) as info:
        x.item()
    assert str(info.value) == "a Tensor with 3 elements cannot be converted to Scalar"
    with pytest.raises(RuntimeError) as info:
        bool(x > 0)
    assert str(info.value) == "Boolean value of Tensor with more than one value is ambiguous"
    assert issubclass(AutogradError, GradvizError) and issubclass(AutogradError, RuntimeError)


# -- printing --------------------------------------------------------------------------------


def test_repr_of_the_lesson_example() -> None:
    x = gv.arange(4.0, requires_grad=True)
    assert repr(x) == "tensor([0., 1., 2., 3.], requires_grad=True)"
    y = gv.dot(x, x)
    assert repr(y) == "tensor(14., grad_fn=<DotBackward0>)"
    y.backward()
    assert repr(x.grad) == "tensor([0., 2., 4., 6.])"
    assert repr(x.grad == 2 * x) == "tensor([True, True, True, True])"


def test_repr_dtype_suffix_and_layout() -> None:
    assert repr(gv.tensor(np.array([1.0, 2.0]))) == "tensor([1., 2.], dtype=gradviz.float64)"
    x = gv.tensor(np.array(1.0), requires_grad=True)
    assert repr(x * 2) == "tensor(2., dtype=gradviz.float64, grad_fn=<MulBackward0>)"
    assert repr(gv.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(gv.tensor([1, 2, 3])) == "tensor([1, 2, 3])"
    assert repr(gv.tensor([1.5, 2.25])) == "tensor([1.5000, 2.2500])"


def test_repr_wraps_after_nine_per_line() -> None:
    t = gv.full((10,), 51200.0)
    assert repr(t) == ("tensor([51200., 51200., 51200., 51200., 51200., 51200., 51200., "
                       "51200., 51200.,\n        51200.])")
    x = gv.ones(10, requires_grad=True)
    (x * 51200.0).sum().backward()
    assert repr(x.grad) == repr(t)


def test_repr_of_scalars() -> None:
    assert repr(gv.tensor(-3311.5398)) == "tensor(-3311.5398)"
    assert repr(gv.tensor(4096.0)) == "tensor(4096.)"
    x = gv.tensor(2.0, requires_grad=True)
    assert repr(x ** 12) == "tensor(4096., grad_fn=<PowBackward0>)"


def test_grad_fn_names_and_leaves() -> None:
    x = gv.arange(4.0, requires_grad=True)
    assert x.is_leaf and x.grad_fn is None
    c = gv.tensor([1.0, 2.0, 3.0, 4.0])
    assert c.is_leaf and c.grad_fn is None and not c.requires_grad
    m = x * c
    s = m.sum()
    d = gv.dot(x, c)
    assert (m.grad_fn.name(), s.grad_fn.name(), d.grad_fn.name()) == \
        ("MulBackward0", "SumBackward0", "DotBackward0")
    assert not m.is_leaf and not s.is_leaf
    assert re.fullmatch(r"<MulBackward0 object at 0x[0-9a-f]+>", repr(m.grad_fn))
    # next_functions: x's AccumulateGrad, and nothing for the constant
    (fx, _), (fc, _) = m.grad_fn.next_functions
    assert fx.name() == "AccumulateGrad" and fc is None
    assert s.grad_fn.next_functions[0][0] == m.grad_fn
    assert (c * 2).grad_fn is None  # constants make constants


# -- BackwardPass, step by step ------------------------------------------------------------------


def test_backward_pass_steps_for_x_times_x() -> None:
    x0 = np.array([1.0, -2.0, 3.0])
    x = gv.tensor(x0, requires_grad=True)
    m = x * x
    y = m.sum()
    bp = gv.BackwardPass(y)
    steps = list(bp)
    assert [s.node for s in steps] == [y, m, x]
    assert [s.index for s in steps] == [0, 1, 2]
    seqs = [s.node.seq for s in steps]
    assert seqs == sorted(seqs, reverse=True)  # reverse topological (execution) order

    first, mul, leaf = steps
    np.testing.assert_array_equal(first.adjoint, 1.0)
    (to_m, value), = first.contributions
    assert to_m is m
    np.testing.assert_array_equal(value, np.ones(3))

    assert len(mul.contributions) == 2
    (a, ca), (b, cb) = mul.contributions
    assert a is x and b is x  # both edges of x * x lead to the same x
    np.testing.assert_allclose(ca, x0, rtol=0, atol=0)
    np.testing.assert_allclose(cb, x0, rtol=0, atol=0)
    np.testing.assert_allclose(ca + cb, bp.adjoint_of(x), rtol=0, atol=0)
    np.testing.assert_allclose(bp.adjoint_of(x), 2 * x0, rtol=0, atol=0)

    assert leaf.contributions == () and leaf.accumulated
    assert not first.accumulated and not mul.accumulated
    np.testing.assert_allclose(leaf.adjoint, 2 * x0, rtol=0, atol=0)
    np.testing.assert_allclose(x.grad.data, 2 * x0, rtol=0, atol=0)


def test_backward_pass_adjoints_of_every_node() -> None:
    a = gv.tensor(np.array(2.0), requires_grad=True)
    b = gv.tensor(np.array(3.0), requires_grad=True)
    p = a * b
    q = gv.sin(a)
    y = p + q
    p_ = gv.BackwardPass(y).run()
    assert p_.order[0] is y
    np.testing.assert_allclose(p_.adjoint_of(y), 1.0)
    np.testing.assert_allclose(p_.adjoint_of(p), 1.0)
    np.testing.assert_allclose(p_.adjoint_of(q), 1.0)
    np.testing.assert_allclose(p_.adjoint_of(a), 3.0 + np.cos(2.0), rtol=1e-15)
    np.testing.assert_allclose(p_.adjoint_of(b), 2.0)
    assert p_.pruned() == {}


def test_pruned_names_the_detached_branch() -> None:
    w = gv.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = gv.tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = w * 2.0
    u = gv.detach(y)
    z = (u * x).sum()
    p = gv.BackwardPass(z)
    pruned = p.pruned()
    assert u in pruned and "detach" in pruned[u]
    # what is below the cut gets no gradient from z either, and says why
    for below in (y, w):
        assert below in pruned, below
        assert "detach" in pruned[below], pruned[below]
    assert x not in pruned and z not in pruned
    p.run()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0], rtol=0, atol=0)
    assert w.grad is None


def test_pruned_constants_say_constant() -> None:
    x = gv.tensor(np.array([1.0, 2.0]), requires_grad=True)
    k = gv.tensor(np.array([5.0, 6.0]))
    z = (x * k).sum()
    pruned = gv.BackwardPass(z).pruned()
    assert set(pruned) == {k}
    assert "constant" in pruned[k]
    # a Python number is wrapped as a constant too
    z2 = (x * 3.0).sum()
    pruned2 = gv.BackwardPass(z2).pruned()
    (const, why), = pruned2.items()
    assert const.data == 3.0 and "constant" in why


def test_pruned_no_grad_and_comparison_reasons() -> None:
    x = gv.tensor(np.array([1.0, -2.0]), requires_grad=True)
    with gv.no_grad():
        n = x * 2
    mask = x > 0
    z = gv.where(mask, x * n, x).sum()
    pruned = gv.BackwardPass(z).pruned()
    assert "no_grad" in pruned[n]
    assert "gt" in pruned[mask]


def test_grad_with_inputs_prunes_the_branch_that_reaches_only_the_others() -> None:
    a = gv.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = gv.tensor(np.array([0.5]), requires_grad=True)
    fa = (a * a).sum()
    sb = gv.sin(b)
    fb = sb.sum()
    out = fa + fb
    p = gv.BackwardPass(out, inputs=[a], accumulate=False)
    pruned = p.pruned()
    assert set(pruned) == {b, sb, fb}
    for node in (b, sb, fb):
        assert pruned[node] == "leads to none of the requested inputs"
    steps = list(p)
    assert not {id(s.node) for s in steps} & {id(b), id(sb), id(fb)}
    top = steps[0]
    assert top.node is out
    (n1, c1), (n2, c2) = top.contributions
    assert n1 is fa and c1 is not None and n2 is fb and c2 is None
    ga, = gv.grad((a * a).sum() + gv.sin(b).sum(), [a])  # a fresh graph: p freed fa
    np.testing.assert_allclose(ga.data, [2.0, 4.0], rtol=0, atol=0)
    assert a.grad is None and b.grad is None


def test_step_contributions_are_fitted_to_broadcast_inputs() -> None:
    a = gv.tensor(np.array([[1.0], [2.0]]), requires_grad=True)   # (2, 1)
    b = gv.tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)  # (3,)
    y = (a * b).sum()
    mul_step = list(gv.BackwardPass(y))[1]
    (na, ca), (nb, cb) = mul_step.contributions
    assert na is a and ca.shape == (2, 1)
    assert nb is b and cb.shape == (3,)
    np.testing.assert_allclose(ca, [[60.0], [60.0]], rtol=0, atol=0)
    np.testing.assert_allclose(cb, [3.0, 3.0, 3.0], rtol=0, atol=0)


@pytest.mark.parametrize("make, name", [
    (lambda a, M, B: a @ a, "DotBackward0"),
    (lambda a, M, B: M @ a, "MvBackward0"),
    (lambda a, M, B: a[:2] @ M, "SqueezeBackward4"),
    (lambda a, M, B: M @ M.T, "MmBackward0"),
    (lambda a, M, B: B @ M.T, "UnsafeViewBackward0"),
    (lambda a, M, B: a[0], "SelectBackward0"),
    (lambda a, M, B: a[1:3], "SliceBackward0"),
    (lambda a, M, B: a[[0, 1]], "IndexBackward0"),
    (lambda a, M, B: M[:, 0], "SelectBackward0"),
    (lambda a, M, B: M[:, 1:], "SliceBackward0"),
    (lambda a, M, B: M.sum(), "SumBackward0"),
    (lambda a, M, B: M.sum(0), "SumBackward1"),
    (lambda a, M, B: M.mean(), "MeanBackward0"),
    (lambda a, M, B: M.mean(0), "MeanBackward1"),
    (lambda a, M, B: M.max(), "MaxBackward1"),
    (lambda a, M, B: M.max(dim=0), "MaxBackward0"),
    (lambda a, M, B: M.norm(), "LinalgVectorNormBackward0"),
])
def test_grad_fn_names_follow_pytorch_by_operands(make, name):
    """PyTorch names some backward nodes after the operands (what these printed in torch 2.13)."""
    a = gv.ones(3, requires_grad=True)
    M = gv.ones(2, 3, requires_grad=True)
    B = gv.ones(4, 2, 3, requires_grad=True)
    out = make(a, M, B)
    assert out.grad_fn.name() == name
    assert repr(out).endswith(f"grad_fn=<{name}>)")


def test_interleaved_passes_keep_their_own_adjoints():
    """A pass paused mid-way (as in a stepper) is not disturbed by another pass over the same nodes."""
    w = gv.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    paused = iter(gv.BackwardPass(loss, retain_graph=True, accumulate=False))
    next(paused)                                   # the sum node: its adjoint is 1
    other = (w * w * 3.0).sum()
    (g_other,) = gv.grad(other, w)                 # a whole other pass through w
    np.testing.assert_allclose(g_other.data, [6.0, 12.0])
    steps = list(paused)
    assert steps[-1].node is w
    np.testing.assert_allclose(steps[-1].adjoint, [2.0, 4.0])   # 2w, not mixed with 6w
    assert w.grad is None


def test_paused_passes_leave_the_callers_modes_alone():
    """Between steps the caller records gradients and sees numpy's warnings as usual."""
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    y = (gv.sin(x) * x).sum()
    for sweep in (gv.BackwardPass(y, retain_graph=True, accumulate=False),
                  gv.ForwardSweep(y, {x: np.ones(2)})):
        before = np.geterr()
        steps = iter(sweep)
        next(steps)
        assert gv.is_grad_enabled()
        assert (x * 2).requires_grad
        assert np.geterr() == before
        for _ in steps:
            pass
        assert gv.is_grad_enabled() and np.geterr() == before


@pytest.mark.parametrize("make, text", [
    (lambda: gv.arange(4) * 0.5, "tensor([0.0000, 0.5000, 1.0000, 1.5000])"),
    (lambda: gv.arange(4) / 2, "tensor([0.0000, 0.5000, 1.0000, 1.5000])"),
    (lambda: gv.arange(3) + gv.tensor([0.5, 0.5, 0.5]), "tensor([0.5000, 1.5000, 2.5000])"),
])
def test_integers_meeting_floats_promote_as_in_pytorch(make, text):
    """PyTorch gives float32 here where numpy would give float64 (texts as torch 2.13 prints)."""
    out = make()
    assert out.dtype == gv.float32
    assert repr(out) == text


def test_a_float_leaf_times_an_integer_tensor_gets_a_float_gradient():
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    (x * gv.tensor([2, 3])).sum().backward()
    assert x.grad.dtype == gv.float32
    np.testing.assert_array_equal(x.grad.data, [2.0, 3.0])


def test_no_adjoint_is_left_on_the_tensors():
    """Adjoints belong to the pass that computed them: nothing global for a drawing to misread."""
    x = gv.tensor(2.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    assert not hasattr(x, "adjoint") and not hasattr(y, "adjoint")


def test_two_iterators_over_one_pass_do_not_mix():
    x = gv.tensor([1.0, 2.0, 3.0], requires_grad=True)
    p = gv.BackwardPass((x * x).sum(), retain_graph=True)
    a, b = iter(p), iter(p)
    next(a)
    next(b)
    list(a)
    list(b)
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0, 12.0])   # 2x, twice


def test_where_and_forward_mode_promote_integers_like_record():
    c = gv.tensor([True, False, True, False])
    assert gv.where(c, gv.arange(4), 0.5).dtype == gv.float32
    x = gv.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = (x * gv.arange(1, 5)) / gv.arange(1, 5)
    steps = list(gv.ForwardSweep(y, {x: np.ones(4)}))
    assert all(np.asarray(s.tangent).dtype == np.float32 for s in steps)
    np.testing.assert_allclose(steps[-1].tangent, np.ones(4))


@pytest.mark.parametrize("index, name", [
    ((1, slice(1, 3)), "SliceBackward0"), ((slice(0, 3), slice(None)), "AliasBackward0"),
    (None, "UnsqueezeBackward0"), (slice(None), "SliceBackward0"),
    ((slice(None), 0), "SelectBackward0"), ((0, 1), "SelectBackward0"),
])
def test_indexing_grad_fn_names_follow_pytorch(index, name):
    """Names as torch 2.13 prints them for a 3x4 tensor."""
    x = gv.ones(3, 4, requires_grad=True)
    assert x[index].grad_fn.name() == name
