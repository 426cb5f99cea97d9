"""Section 3: the gradient of y = x·x (x transposed times x) is 2x.

For a column vector x, y = xᵀx = x0² + x1² + ... so dy/dx = 2x.  gradviz records
every operation on a tape (PyTorch's "implicit construction" of the graph),
and y.backward() walks that tape in reverse to fill x.grad.

Answers Q5: x.grad is None until backward() runs: gradients cost work, so none is computed
    until asked for.
Diagrams: y
Run it:  gradviz lesson 01   (or  python 01_dot_gradient.py  here)
"""

import gradviz as gv

x = gv.arange(4.0)  # a float range, as torch.arange(4.0)
print("x =", x)  # tensor([0., 1., 2., 3.])

# Ask for gradients; same as gv.arange(4.0, requires_grad=True).
x.requires_grad_(True)
print("x.grad before backward:", x.grad)  # None: nothing computed yet
print("  Q5: None, not zeros: no backward() has run, and gradients cost work, so autograd\n"
      "  computes them only when asked to")

y = gv.dot(x, x)
# The grad_fn names the backward node that the tape recorded for dot().
print("y =", y)  # tensor(14., grad_fn=<DotBackward0>)

y.backward()  # reverse accumulation from y down to the leaf x
print("x.grad =", x.grad)  # tensor([0., 2., 4., 6.])

# Check against the hand-derived gradient 2x.
print("x.grad == 2 * x:", x.grad == 2 * x)  # tensor([True, True, True, True])
