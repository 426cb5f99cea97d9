"""Lesson section 3: a non-scalar y = x * x (Hadamard, element-wise product).

backward() needs a scalar to start from.  In deep learning we rarely want the
full Jacobian of a vector output; we want the sum of the per-sample partial
derivatives, so we call y.sum().backward().  That is the same as passing a
vector of ones as the starting gradient: y.backward(gv.ones(len(x))).

Run from the repository root:  python samples/lesson/03_hadamard_sum.py
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
