"""Never a silently wrong gradient: tensors inside lists, and values changed in place.

PyTorch raises in both situations (a TypeError for a list of tensors where a
tensor is expected; a RuntimeError when a value saved for backward was changed
in place), and so must gradviz, with PyTorch's texts where PyTorch has one.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gradviz as gv
from gradviz.errors import AutogradError, GradvizTypeError, ShapeError

HINT = (" Hint: enable anomaly detection to find the operation that failed to compute its "
        "gradient, with torch.autograd.set_detect_anomaly(True).")
MODIFIED = ("one of the variables needed for gradient computation has been modified by an "
            "inplace operation: ")
LEAF_IN_PLACE = "a leaf Variable that requires grad is being used in an in-place operation."


def leaf(*values: float) -> gv.Tensor:
    return gv.tensor(list(values), requires_grad=True)


# -- tensors inside lists --------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda x: [x, x] * x,
    lambda x: x * [x, x],
    lambda x: x + [[x], [x]],
    lambda x: gv.tensor([x, x]),
    lambda x: gv.sum([x, x]),
    lambda x: gv.concatenate([[x], [x]]),
    lambda x: gv.stack([[x, x]]),
    lambda x: gv.where([True, False], [x, x], x),
], ids=["list*x", "x*list", "x+nested", "tensor", "sum", "concatenate", "stack", "where"])
def test_a_list_holding_tensors_is_a_type_error_never_a_constant(make) -> None:
    x = leaf(1.0, 2.0)
    with pytest.raises(GradvizTypeError, match="list holding Tensors: use stack"):
        make(x)
    assert isinstance(GradvizTypeError("x"), TypeError)


def test_lists_of_numbers_are_still_constants() -> None:
    x = leaf(1.0, 2.0)
    y = gv.sum([3, 4] * x)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    assert y.item() == 11.0


def test_stack_of_the_tensors_keeps_the_graph() -> None:
    x = leaf(1.0, 2.0)
    gv.sum(gv.stack([x, x]) * x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])  # d/dx of 2 x² per element


def test_cli_list_of_variables_is_one_error_line_not_a_wrong_gradient() -> None:
    run = subprocess.run([sys.executable, "-m", "gradviz", "render", "sum([x, x] * x)",
                          "-v", "x=[1, 2]", "-o", "-", "-f", "dot"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "stack" in lines[0]


# -- versions and in-place changes -------------------------------------------------------


def test_the_issue_example_changing_a_saved_value_of_the_graph_is_refused() -> None:
    x = leaf(1.0, 2.0)
    a = x * 1
    y = a * a
    # gradviz cannot record an in-place change of a value of the graph: it says so.
    with pytest.raises(AutogradError, match=r"zero_\(\) would change a value of the graph"):
        a.zero_()
    y.sum().backward()  # nothing changed: the gradient is right
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_a_saved_value_changed_under_no_grad_raises_pytorchs_text() -> None:
    x = leaf(1.0, 2.0)
    a = x * 1
    y = a * a
    with gv.no_grad():
        a.zero_()
    assert a._version == 1
    with pytest.raises(AutogradError) as info:
        y.sum().backward()
    assert str(info.value) == (MODIFIED + "[torch.FloatTensor [2]], which is output 0 of "
                               "MulBackward0, is at version 1; expected version 0 instead." + HINT)
    assert x.grad is None  # nothing accumulated from a pass that failed


def test_a_saved_constant_changed_in_place_raises_pytorchs_text() -> None:
    x = leaf(1.0, 2.0)
    c = gv.tensor([[3.0, 4.0]], dtype=np.float64)
    y = (x * c).sum()
    c += 1
    c.fill_(2.0)
    assert c._version == 2
    with pytest.raises(AutogradError) as info:
        y.backward()
    assert str(info.value) == (MODIFIED + "[torch.DoubleTensor [1, 2]] is at version 2; "
                               "expected version 0 instead." + HINT)


def test_an_optimizer_step_before_backward_is_caught() -> None:
    """The classic mistake: the weights updated (under no_grad) before the backward pass."""
    w = leaf(1.0, 2.0)
    loss = (w * w).sum()
    with gv.no_grad():
        w -= 0.1 * gv.ones(2)
    assert w.is_leaf and w.requires_grad  # updated in place, still the parameter
    np.testing.assert_allclose(w.detach().numpy(), [0.9, 1.9])
    with pytest.raises(AutogradError, match=r"^one of the variables .*\[torch.FloatTensor \[2\]\] "
                                            r"is at version 1; expected version 0 instead\."):
        loss.backward()


def test_a_saved_output_changed_in_place_names_its_op() -> None:
    x = leaf(0.5)
    y = gv.exp(x)  # exp saves its output
    z = y * 2
    with gv.no_grad():
        y.fill_(7.0)
    with pytest.raises(AutogradError, match=r"\[torch.FloatTensor \[1\]\], which is output 0 of "
                                            r"ExpBackward0, is at version 1; expected version 0"):
        z.sum().backward()


def test_changes_before_the_op_or_to_unsaved_values_are_fine() -> None:
    x = leaf(1.0, 2.0)
    c = gv.tensor([3.0, 4.0])
    c.zero_()
    c += 2  # both before c is used: the op saves the new value
    y = (x * c).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    s = x + c  # add saves nothing: changing c afterwards cannot matter
    c.zero_()
    s.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_the_training_loop_update_keeps_the_parameter_and_its_gradients_right() -> None:
    w = leaf(1.0, -2.0)
    for _ in range(3):
        loss = (w * w).sum()
        loss.backward()
        with gv.no_grad():
            w -= 0.25 * w.grad
        w.grad.zero_()
    np.testing.assert_allclose(w.detach().numpy(), [0.125, -0.25])  # halved each step
    assert w.is_leaf and w.requires_grad and w._version == 3


def test_in_place_on_a_leaf_that_requires_grad_raises_pytorchs_text() -> None:
    x = leaf(1.0, 2.0)
    for change in (lambda t: t.__iadd__(1), lambda t: t.__imul__(2), lambda t: t.zero_(),
                   lambda t: t.fill_(3.0)):
        with pytest.raises(AutogradError) as info:
            change(x)
        assert str(info.value) == LEAF_IN_PLACE
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


def test_augmented_assignment_on_a_leaf_raises_and_leaves_x_bound() -> None:
    x = leaf(1.0, 2.0)
    with pytest.raises(AutogradError, match="^a leaf Variable that requires grad"):
        x += 1
    assert x.is_leaf


def test_augmented_assignment_of_a_computed_value_is_a_new_node_with_right_gradients() -> None:
    x = leaf(1.0, 2.0)
    a = x * 3
    first = a
    a += x  # a = 3x + x
    assert a is not first and a.grad_fn.name() == "AddBackward0"
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])


def test_in_place_shapes_and_types_follow_pytorch() -> None:
    c = gv.tensor([1.0, 2.0])
    with pytest.raises(ShapeError, match=r"output with shape \[2\] doesn't match the broadcast "
                                         r"shape \[2, 2\]"):
        c += gv.ones(2, 2)
    n = gv.arange(3)
    with pytest.raises(GradvizTypeError, match="result type Float can't be cast to the desired "
                                               "output type Long"):
        n += 0.5
    n += 2
    assert n.tolist() == [2, 3, 4] and n.dtype == np.int64
    c /= 2
    assert c.tolist() == [0.5, 1.0] and c.dtype == np.float32


def test_retained_graph_second_pass_sees_a_change_made_between_passes() -> None:
    x = leaf(2.0)
    c = gv.tensor([5.0])
    y = (x * c).sum()
    y.backward(retain_graph=True)
    assert x.grad.tolist() == [5.0]
    c.fill_(1.0)
    with pytest.raises(AutogradError, match="is at version 1; expected version 0"):
        y.backward()


def test_create_graph_passes_check_versions_too() -> None:
    x = leaf(2.0)
    c = gv.tensor([5.0])
    y = (x * c).sum()
    c.zero_()
    with pytest.raises(AutogradError, match="is at version 1; expected version 0"):
        gv.grad(y, x, create_graph=True)
