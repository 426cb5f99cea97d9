"""Exercise 4: a redesigned control-flow example, h(x), and its dead branch.

    y = x * x, doubled until its norm reaches 2500, times 100 if its sum is negative.

Analysis: if the loop doubles k times, h(x) = 2^k · x², so dh/dx = 2^k · 2x.
The `100 * y` branch can never run for real numbers: y = x² · 2^k is never
negative, so `y.sum() < 0` is always False.  (Tracing which nodes end up on the
tape shows this: no multiplication by 100 is ever recorded.)

The lesson printed tensor(-3311.5398) for a random x.  Working backwards:
2^k · x² must be >= 2500 while 2^(k-1) · x² < 2500, and 2^k · 2x = -3311.5398;
that gives k = 10 and x = -3311.5398 / 2048 = -1.61697...  Using that x
reproduces the printed gradient.

Diagrams: y --roll
Run it:  gradviz lesson 07 [SEED]   (or  python 07_redesigned_control_flow.py [SEED]  here)
"""

import sys

import gradviz as gv
from lesson import h  # the lesson's function, verbatim: see lesson.py


def doublings(c):
    """How many `y * 2` nodes the tape of c holds (the k of 2^k)."""
    return sum(1 for node in gv.tape(c) if node.op is not None and node.op.name == "mul") - 1


# --- The lesson's printed value ----------------------------------------------------
x = gv.tensor(-3311.5398 / 2048, requires_grad=True)
y = h(x)
y.backward()
k = doublings(y)
print("x =", x)
print("k =", k)
print("x.grad =", x.grad)  # tensor(-3311.5398), as in the lesson
print("x.grad == 2 * x * 2**k:", x.grad == 2 * x * 2**k)  # tensor(True)

# --- A random x -------------------------------------------------------------------
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
gv.manual_seed(seed)
x = gv.randn(size=(), requires_grad=True)
y = h(x)
y.backward()
k = doublings(y)
print(f"\nseed {seed}: x =", x)
print("k =", k)
print("x.grad =", x.grad)
print("x.grad == 2 * x * 2**k:", x.grad == 2 * x * 2**k)
