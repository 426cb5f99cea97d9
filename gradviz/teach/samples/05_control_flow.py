"""Section 3: gradients through Python control flow (while, if).

f() below runs a while loop and an if whose paths depend on the *value* of a.
That is no problem for a recorded tape: only the operations that actually ran
are recorded, and backward() differentiates exactly those.  (This is the
advantage of building the graph implicitly, while the code runs.)

For a given a, f is linear: the loop doubles b some number of times m, so
    d = f(a) = 2^m · a          if the doubled value is positive,
    d = f(a) = 100 · 2^m · a    otherwise,
hence dd/da = d / a, which is what the lesson checks with  a.grad == d / a.

A subtlety the lesson does not show: in the `100 * b` branch, d is rounded to
float32 after the multiplication by 100, so d / a may differ from the exact
gradient 100 · 2^m in the last bit and `a.grad == d / a` can print False.
PyTorch prints exactly the same (try a = -0.33).  The gradient itself is exact.

Answers Q1: explicit construction writes the formula first (gradviz render "FORMULA" --show
    structure); implicit construction records what Python ran, as here: the same graph.
Diagrams: d --roll
Run it:  gradviz lesson 05 [SEED]   (or  python 05_control_flow.py [SEED]  here)
"""

import sys

import gradviz as gv
from lesson import f  # the lesson's function, verbatim: see lesson.py


# --- The lesson's cell, with a random scalar a --------------------------------
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
gv.manual_seed(seed)  # gradviz's own generator: values differ from torch.randn's
a = gv.randn(size=(), requires_grad=True)
d = f(a)
d.backward()
print(f"seed {seed}: a =", a)
print("d =", d)
print("a.grad =", a.grad)
print("a.grad == d / a:", a.grad == d / a)  # tensor(True)

# --- Both branches, with fixed values ---------------------------------------------
for value in (0.3, -0.3, -0.33):
    a = gv.tensor(value, requires_grad=True)
    d = f(a)
    d.backward()
    branch = "c = b" if d.item() > 0 else "c = 100 * b"
    print(f"\na = {value} takes the branch {branch!r}")
    print("  d =", d)
    print("  a.grad =", a.grad)  # 2^m or 100 * 2^m, exactly
    print("  d / a =", d / a)
    print("  a.grad == d / a:", a.grad == d / a)
# a = 0.3:   tensor(4096.),   True
# a = -0.3:  tensor(409600.), True
# a = -0.33: tensor(409600.), but d / a is 409599.9688 (float32 rounding of
#            100 * b), so the comparison prints tensor(False), as in PyTorch.
