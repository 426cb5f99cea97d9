"""Exercise 1: why a second derivative costs more than a first one.

To differentiate twice, the first backward pass must itself be recorded
(create_graph=True): its operations become new nodes on the tape, a graph
for dy/dx.  The second derivative is then a backward pass over *that* larger
graph.  So we pay for: the forward pass, a recorded first backward pass, and
a second backward pass over a graph bigger than the original one.

This script computes
    x**3  ->  3x**2  ->  6x       at x = 1.5
    sin x ->  cos x  -> -sin x    at x = 1.0
and counts the nodes on each tape (gradviz.Tape) and the steps of each
backward pass (gradviz.BackwardPass).

Diagrams: first
Run it:  gradviz lesson 10   (or  python 10_second_derivative.py  here)
"""

import gradviz as gv


def steps(output, x):
    """How many nodes a backward pass from ``output`` to ``x`` visits."""
    return sum(1 for _ in gv.BackwardPass(output, inputs=[x], retain_graph=True,
                                          accumulate=False))


def second_derivative(name, fn, value):
    x = gv.tensor(value, requires_grad=True)
    y = fn(x)
    (dy,) = gv.grad(y, x, create_graph=True)  # recorded: dy has a grad_fn
    # Count before the last grad() call, which frees dy's graph (as PyTorch does).
    first_tape, second_tape = gv.Tape(y), gv.Tape(dy)
    first_steps, second_steps = steps(y, x), steps(dy, x)
    (d2y,) = gv.grad(dy, x)
    print(f"{name} at x = {value}")
    print("  y       =", y)
    print("  dy/dx   =", dy)
    print("  d2y/dx2 =", d2y)
    print(f"  tape of y: {len(first_tape)} nodes, first backward pass: {first_steps} steps")
    print(f"  tape of dy/dx: {len(second_tape)} nodes, second backward pass: "
          f"{second_steps} steps")
    return x, y, dy, d2y


second_derivative("x**3", lambda x: x ** 3, 1.5)
# y = tensor(3.3750, grad_fn=<PowBackward0>), dy/dx = tensor(6.7500, ...), d2y/dx2 = tensor(9.)
second_derivative("sin(x)", gv.sin, 1.0)
# dy/dx = tensor(0.5403, ...) = cos(1), d2y/dx2 = tensor(-0.8415) = -sin(1)

# The same with backward(create_graph=True), as one would write it in PyTorch:
x = gv.tensor(1.5, requires_grad=True)
(x ** 3).backward(create_graph=True)
first = x.grad  # 3x**2, still attached to the graph
x.grad = None  # start the second derivative from a clean .grad
first.backward()
print("via backward(create_graph=True): dy/dx =", first.detach(), " d2y/dx2 =", x.grad)
