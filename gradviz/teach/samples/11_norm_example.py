"""Section 1: the chain-rule examples 1 and 2, checked with autograd.

Example 1 (scalar with respect to a vector):
    z = (<x, w> - y)²,  with the chain rule a = <x, w>, b = a - y, z = b²:
    dz/dw = 2 (<x, w> - y) xᵀ      (numerator layout: a row vector)
Example 2 (with a matrix), X is m x n, w an n-vector, y an m-vector:
    z = ||Xw - y||²,   dz/dw = 2 (Xw - y)ᵀ X,  i.e. the vector 2 Xᵀ (Xw - y)

Diagrams: z
Run it:  gradviz lesson 11   (or  python 11_norm_example.py  here)
"""

import gradviz as gv

# --- Example 1 --------------------------------------------------------------------
x = gv.tensor([1.0, 2.0, 3.0])
w = gv.tensor([0.5, -1.0, 2.0], requires_grad=True)
y = gv.tensor(1.0)
z = (gv.dot(x, w) - y) ** 2
z.backward()
expected = 2 * (gv.dot(x, w.detach()) - y) * x
print("example 1: z =", z)  # tensor(12.2500, grad_fn=<PowBackward0>): (4.5 - 1)²
print("  w.grad =", w.grad)  # tensor([ 7., 14., 21.]) = 2 · 3.5 · x
print("  2 (<x, w> - y) x =", expected)
print("  equal:", w.grad == expected)

# --- Example 2 --------------------------------------------------------------------
X = gv.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # m = 3, n = 2
w = gv.tensor([1.0, -1.0], requires_grad=True)
y = gv.tensor([0.0, 1.0, 2.0])
z = gv.norm(X @ w - y) ** 2  # ||Xw - y||²
z.backward()
expected = 2 * X.T @ (X @ w.detach() - y)
print("example 2: z =", z)  # 14 up to float32 rounding of the square root
print("  w.grad =", w.grad)
print("  2 Xᵀ(Xw - y) =", expected)  # tensor([-44., -56.])
diff = (w.grad - expected).abs().max().item()
print(f"  max difference: {diff:.3g}")  # float32 rounding only (the norm's square root)

# With z written as a sum of squares there is no square root, and the match is exact.
w.grad.zero_()
r = X @ w - y
(r * r).sum().backward()
print("  via sum of squares: w.grad =", w.grad, " equal:", w.grad == expected)
