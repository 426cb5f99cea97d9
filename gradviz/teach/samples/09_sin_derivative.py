"""Exercise 5: sin(x) and its derivative from autograd, never writing cos(x).

Autograd computes the derivative for us: y = sin(x), y.sum().backward(), and
x.grad holds dy/dx at every point (the sum makes a scalar; each y_i depends
only on x_i, so the gradient of the sum is the element-wise derivative).  We
then only *check* it against cos(x).

With a file name and matplotlib installed, the two curves are saved there;
otherwise (matplotlib is optional) a table of values is printed.  `gradviz plot "sin(x)"
--x -20:20:0.1` draws the same chart for any elementwise expression.

Diagrams: y
Run it:  gradviz lesson 09 [PLOT.png]   (or  python 09_sin_derivative.py [PLOT.png]  here)
"""

import sys

import numpy as np

import gradviz as gv

x = gv.arange(-20, 20, 0.1, requires_grad=True, dtype=gv.float32)
y = gv.sin(x)
y.sum().backward()

print("x.shape =", x.shape, " x.dtype =", x.dtype, " x.grad.dtype =", x.grad.dtype)

xs = x.detach().numpy()
ys = y.detach().numpy()
grads = x.grad.numpy()
error = float(np.max(np.abs(grads - np.cos(xs))))
print(f"max |x.grad - cos(x)| = {error:.3g}")
print("x.grad[:5] =", x.grad[:5])  # tensor([0.4081, 0.4972, 0.5813, 0.6596, 0.7314])
print("cos(x)[:5] =", gv.cos(x.detach())[:5])


def table(step=50):
    print(f"{'x':>8} {'sin(x)':>9} {'x.grad':>9} {'cos(x)':>9}")
    for i in range(0, len(xs), step):
        print(f"{xs[i]:8.2f} {ys[i]:9.4f} {grads[i]:9.4f} {np.cos(xs[i]):9.4f}")


path = sys.argv[1] if len(sys.argv) > 1 else None
try:
    import matplotlib
    matplotlib.use("Agg")  # draw to a file, no window needed
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

if path and plt is not None:
    plt.plot(xs, ys, label="y=sinx")
    plt.plot(xs, grads, label="dy/dx")
    plt.legend(loc="lower right")
    plt.savefig(path)
    print("plot saved to", path)
else:
    if path:
        print("matplotlib is not installed: printing a table instead of", path)
    table()
