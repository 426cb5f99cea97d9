"""Exercise 3: the control-flow example with a random vector a (non-scalar output).

Now d = f(a) is a vector, and backward() cannot start from a vector without
being told the starting gradient: it raises
    RuntimeError: grad can be implicitly created only for scalar outputs
Summing first (d.sum().backward()) fixes that.

Analysis: the loop condition and the branch depend on a as a whole (its norm
and its sum), so every element is multiplied by the *same* factor k, which is
2^m or 100 · 2^m.  Hence d = k · a, and every element of a.grad equals k
(= d / a).  The lesson's output, ten times 51200. = 100 · 2^9, comes from a
vector whose sum was negative (the `100 * b` branch) and whose norm is in
[1000/512, 1000/256) = [1.953, 3.906).

Answers Q6: frameworks do differentiate vectors: d.backward() needs a gradient= argument, or
    a scalar d.sum().
Diagrams: d --roll
Run it:  gradviz lesson 06 [SEED]   (or  python 06_vector_control_flow.py [SEED]  here)
"""

import sys

import gradviz as gv
from lesson import f  # the lesson's function, verbatim: see lesson.py


seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
gv.manual_seed(seed)
a = gv.randn(10, requires_grad=True)
d = f(a)

try:
    d.backward()
except RuntimeError as err:  # gradviz's AutogradError is a RuntimeError
    print("d.backward() raised RuntimeError:", err)
    print("  Q6: a vector output needs a starting gradient: d.backward(gradient=v),"
          " or a scalar such as d.sum()")

d.sum().backward()  # the fix: reduce to a scalar first
print(f"seed {seed}: a.grad =", a.grad)
print("all elements equal:", len(set(a.grad.tolist())) == 1)
print("a.grad == d / a:", a.grad == d / a)  # exact in the `c = b` branch; see 05 for the other

# --- A vector that reproduces the lesson's printed output --------------------------
# Its sum is negative and its norm is 2.3958..., so m = 9 doublings happen after
# the first one and every gradient element is 100 * 2**9 = 51200.
a = gv.tensor([-1.0, 0.5, -1.5, 0.2, 0.1, -0.3, 0.9, -0.7, 0.4, -0.8], requires_grad=True)
d = f(a)
d.sum().backward()
print("lesson-like a.grad =", a.grad)
# tensor([51200., 51200., 51200., 51200., 51200., 51200., 51200., 51200., 51200.,
#         51200.])

# --- The other branch: a positive sum gives 2^m, without the factor 100 -------------
a = gv.tensor([1.0, 0.5, 1.5, -0.2, 0.1, 0.3, 0.9, 0.7, -0.4, 0.8], requires_grad=True)
d = f(a)
d.sum().backward()
print("positive-sum a.grad =", a.grad)  # 512. everywhere
