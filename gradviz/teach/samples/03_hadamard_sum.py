"""Section 3: a vector y = x * x is reduced first: y.sum().backward() or y.backward(ones).

backward() needs a scalar to start from.  In deep learning we rarely want the
full Jacobian of a vector output; we want the sum of the per-sample partial
derivatives, so we call y.sum().backward().  That is the same as passing a
vector of ones as the starting gradient: y.backward(gv.ones(len(x))).

Answers Q4: backward() starts from a scalar (a loss); for a vector y, y.backward(gradient=v)
    gives vᵀ·(dy/dx).
Diagrams: y
Run it:  gradviz lesson 03   (or  python 03_hadamard_sum.py  here)
"""

import gradviz as gv

x = gv.arange(4.0, requires_grad=True)

y = x * x  # element-wise, not a dot product
print("y =", y)  # tensor([0., 1., 4., 9.], grad_fn=<MulBackward0>)

y.sum().backward()  # d(sum of x_i²)/dx_i = 2 x_i
print("x.grad via y.sum().backward():", x.grad)  # tensor([0., 2., 4., 6.])

# The lesson's comment: equivalent to y.backward(torch.ones(len(x))).
x.grad.zero_()
y = x * x
y.backward(gv.ones(len(x)))
print("x.grad via y.backward(ones):", x.grad)  # tensor([0., 2., 4., 6.])
print("  Q4: backward() starts from a scalar, like a loss; for a vector y it needs\n"
      "  gradient=v and gives vᵀ·(dy/dx), so ones gives the same as y.sum()")
