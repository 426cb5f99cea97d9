"""Lesson code pasted into `gradviz render`: PyTorch's spelling of the same formulas.

Each case goes through the CLI and reads the numbers back from the SVG's boxes.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradviz as gv
from test_cli import assert_clean_error, box, boxes, cli, field, numbers, summary_row


def render(tmp_path, *args: str) -> tuple[bytes, str]:
    out = tmp_path / "g.svg"
    result = cli("render", *args, "-o", str(out))
    assert result.exit_code == 0, result.output
    return out.read_bytes(), result.stdout


def test_the_lessons_own_line_draws_the_assigned_value(tmp_path):
    svg, stdout = render(tmp_path, "y = 2 * torch.dot(x, x)", "-v", "x=arange(4)")
    assert field(box(svg, "y"), "value") == "28"
    np.testing.assert_array_equal(numbers(field(box(svg, "x"), "∂")), [0, 4, 8, 12])
    assert "∂y/∂·" in stdout
    assert "DotBackward0" in " ".join(line for b in boxes(svg).values() for line in b["lines"])


def test_constructors_with_the_torch_prefix_make_the_inputs(tmp_path):
    """`x = torch.arange(4.0, requires_grad=True)` then `y = torch.dot(x, x)`, as the lesson."""
    svg, stdout = render(tmp_path, "x = torch.arange(4.0, requires_grad=True); "
                                   "y = torch.dot(x, x)")
    np.testing.assert_array_equal(numbers(field(box(svg, "x"), "∂")), [0, 2, 4, 6])
    assert "[0., 2., 4., 6.]" in summary_row(stdout, "x")
    svg, _ = render(tmp_path, "w = torch.tensor([1.0, -2.0], requires_grad=True); "
                              "c = torch.ones(2); torch.sum(w * c + torch.zeros(2))")
    np.testing.assert_array_equal(numbers(field(box(svg, "w"), "∂")), [1, 1])
    assert field(box(svg, "c"), "∂") == "not computed"  # made without requires_grad


@pytest.mark.parametrize("expr, expected", [
    ("x.sum()", [1, 1, 1, 1]),
    ("x.mean()", [0.25, 0.25, 0.25, 0.25]),
    ("(x * x).sum()", [0, 2, 4, 6]),
    ("x.pow(2).sum()", [0, 2, 4, 6]),
    ("x.mul(x).add(x).sum()", [1, 3, 5, 7]),
    ("x.exp().sum()", np.exp([0, 1, 2, 3])),
    ("torch.sum(torch.sin(x))", np.cos([0, 1, 2, 3])),
    ("torch.mm(x.reshape(1, 4), x.view(4, 1)).sum()", [0, 2, 4, 6]),
])
def test_methods_and_functions_as_pytorch_spells_them(tmp_path, expr, expected):
    svg, _ = render(tmp_path, expr, "-v", "x=arange(4)")
    np.testing.assert_allclose(numbers(field(box(svg, "x"), "∂")), expected, rtol=1e-3)  # 4 digits shown


def test_norm_method_gradient_is_x_over_norm(tmp_path):
    svg, _ = render(tmp_path, "x.norm()", "-v", "x=[3, 4]")
    np.testing.assert_allclose(numbers(field(box(svg, "x"), "∂")), [0.6, 0.8])


def test_detach_method_cuts_the_branch(tmp_path):
    """The lesson's section on detach, pasted with methods."""
    svg, _ = render(tmp_path, "y = x * x; u = y.detach(); z = u * x; z.sum()",
                    "-v", "x=arange(4)")
    np.testing.assert_array_equal(numbers(field(box(svg, "x"), "∂")), [0, 1, 4, 9])
    assert box(svg, "u")["dashed"]


def test_comparison_gives_a_boolean_tensor_that_passes_no_gradient(tmp_path):
    svg, stdout = render(tmp_path, "m = x > 0; y = where(m, x, 0); y.sum()",
                         "-v", "x=[-1, 2, 3]")
    mask = box(svg, "m")
    assert field(mask, "value") == "[F T T]"
    assert "bool" in " ".join(mask["lines"])
    assert mask["dashed"] and field(mask, "∂") == "not computed"
    np.testing.assert_array_equal(numbers(field(box(svg, "x"), "∂")), [0, 1, 1])
    # the same in the engine directly
    x = gv.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    assert (x > 0).requires_grad is False and (x > 0).dtype == gv.bool_


@pytest.mark.parametrize("expr", ["x < 1", "x <= 1", "x >= 1", "x == 1", "x != 1"])
def test_every_comparison_is_a_mask(tmp_path, expr):
    svg, _ = render(tmp_path, f"where({expr}, x, 0 * x).sum()", "-v", "x=[0, 1, 2]")
    x = np.array([0.0, 1.0, 2.0])
    mask = eval(expr, {"x": x})  # the test's own reference, on numpy
    np.testing.assert_array_equal(numbers(field(box(svg, "x"), "∂")), mask.astype(float))


@pytest.mark.parametrize("expr, needle", [
    ("torch.foo(x)", "unknown function `torch.foo`"),
    ("torch.nn.functional.relu(x)", "not allowed"),
    ("0 < x < 1", "chained comparison"),
    ("torch * x", "only a prefix"),
    ("x.item()", "method `.item()` is not allowed"),
])
def test_pasted_code_outside_the_whitelist_is_a_clean_error(tmp_path, expr, needle):
    assert_clean_error(cli("render", expr, "-v", "x=[1, 2]", "-o", str(tmp_path / "g.svg")),
                       needle)


@pytest.mark.parametrize("cell, name, expected", [
    # the lesson's cells, as written there (with `;` for newlines)
    ("x = torch.arange(4.0); x.requires_grad_(True); y = 2 * torch.dot(x, x)",
     "x", [0, 4, 8, 12]),
    ("x = torch.arange(4.0, requires_grad=True); y = x * x; y.sum()", "x", [0, 2, 4, 6]),
    ("x = torch.arange(4.0, requires_grad=True); y = x * x; u = y.detach(); z = u * x; "
     "z.sum()", "x", [0, 1, 4, 9]),
    ("x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True); (x * x).sum()",
     "x", [2, 4]),
])
def test_the_lessons_cells_paste_in(tmp_path, cell, name, expected):
    svg, stdout = render(tmp_path, cell)
    np.testing.assert_allclose(numbers(field(box(svg, name), "∂")), expected)
    assert name in stdout


def test_the_lessons_sine_cell_with_a_dtype(tmp_path):
    """`torch.arange(-20, 20, 0.1, requires_grad=True, dtype=torch.float32)`, then sin."""
    svg, stdout = render(tmp_path, "x = torch.arange(-20, 20, 0.1, requires_grad=True, "
                                   "dtype=torch.float32); y = torch.sin(x); y.sum()")
    x = box(svg, "x")
    assert "float32[400]" in x["lines"]
    grid = np.arange(-20, 20, 0.1, dtype=np.float32)
    shown = numbers(field(x, "∂").replace("…", " "))
    np.testing.assert_allclose(shown, np.cos(np.r_[grid[:3], grid[-3:]]), rtol=1e-3, atol=1e-3)
    assert "…" in summary_row(stdout, "x")


def test_a_dtype_outside_a_call_is_still_refused(tmp_path):
    assert_clean_error(cli("render", "torch.float64 * x", "-v", "x=1", "-o",
                           str(tmp_path / "g.svg")), "not allowed")
