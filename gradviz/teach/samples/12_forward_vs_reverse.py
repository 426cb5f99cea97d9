"""Section 2.2: forward versus reverse accumulation, steps counted.

Forward accumulation pushes a tangent (d node / d one input direction) from
the inputs to the output.  One sweep over the graph gives the derivative with
respect to ONE input direction, so the full gradient of a function of n
inputs needs n sweeps.  Reverse accumulation (backpropagation) pushes adjoints
from the output back to the inputs: ONE pass gives the derivative with respect
to every input, at the price of storing the forward pass's intermediate values.

Here z = ||Xw - y||² with w of n components.  gradviz.ForwardSweep runs the
forward mode (gradviz.jvp wraps it like torch.func.jvp), gradviz.BackwardPass
the reverse mode; both are iterated step by step so we can count the steps.

Diagrams: z
Run it:  gradviz lesson 12   (or  python 12_forward_vs_reverse.py  here)
"""

import numpy as np

import gradviz as gv


def model(X, y):
    return lambda w: gv.norm(X @ w - y) ** 2


def compare(n, m=4):
    X = gv.tensor(np.arange(m * n, dtype=np.float32).reshape(m, n) / 10)
    y = gv.ones(m)
    w = gv.linspace(-1, 1, n, requires_grad=True)
    z = model(X, y)(w)

    # Forward accumulation: one sweep per input component e_i.
    forward_steps = 0
    forward_grad = []
    for i in range(n):
        e_i = np.eye(n, dtype=np.float32)[i]
        sweep = gv.ForwardSweep(z, {w: e_i})
        forward_steps += sum(1 for _ in sweep)
        forward_grad.append(float(sweep.tangent_of(z)))

    # Reverse accumulation: one pass gives all n components.
    backward_pass = gv.BackwardPass(z)
    reverse_steps = sum(1 for _ in backward_pass)

    print(f"n = {n} inputs")
    print(f"  forward mode: {n} sweeps, {forward_steps} steps in total")
    print(f"  reverse mode: 1 pass, {reverse_steps} steps")
    print("  forward-mode gradient:", gv.tensor(forward_grad))
    print("  reverse-mode gradient:", w.grad)
    close = np.allclose(forward_grad, w.grad.numpy(), rtol=1e-5, atol=1e-6)
    print("  same gradient:", close)
    return X, y, w, z


compare(3)
X, y, w, z = compare(8)

# gradviz.jvp does one forward sweep from scratch: a directional derivative.
direction = gv.tensor(np.eye(8, dtype=np.float32)[0])
value, tangent = gv.jvp(model(X, y), (w.detach(),), (direction,))
print("jvp: z =", value, " dz/dw_0 =", tangent, " reverse mode says", w.grad[0])
