"""Section 3: y.detach() moves part of a computation off the recorded graph.

u = y.detach() has y's values but no history: gradients stop there, so u acts
as a constant.  Then z = u * x has dz/dx = u, not 3x² as it would for x³.
(Useful to freeze some parameters of a network.)  y itself keeps its own
graph, so y.sum().backward() still gives 2x.

Diagrams: z, y
Run it:  gradviz lesson 04   (or  python 04_detach.py  here)
"""

import gradviz as gv

x = gv.arange(4.0, requires_grad=True)

y = x * x
u = y.detach()  # treat y as a constant
z = u * x
print("u =", u)  # tensor([0., 1., 4., 9.])   (no grad_fn: it is a constant)
print("z =", z)  # tensor([ 0.,  1.,  8., 27.], grad_fn=<MulBackward0>)

z.sum().backward()
print("x.grad =", x.grad)  # tensor([0., 1., 4., 9.]): equal to u, not 3x²
print("x.grad == u:", x.grad == u)  # tensor([True, True, True, True])

# y was not cut: its graph still reaches x.
x.grad.zero_()
y.sum().backward()
print("x.grad =", x.grad)  # tensor([0., 2., 4., 6.])
print("x.grad == 2 * x:", x.grad == 2 * x)  # tensor([True, True, True, True])
