"""Section 3: gradients accumulate in .grad; clear them with x.grad.zero_().

backward() *adds* into .grad (PyTorch does this on purpose, see the lesson's
Q3: it lets a big batch be processed in pieces).  So before a new gradient
you clear the old one.

About the lesson's comment: it says that without zero_() the result "would
become [1, 5, 9, 13]".  That is what happens after the *book's* cell, which
computes y = 2·xᵀx (gradient 4x = [0, 4, 8, 12]) and then adds the gradient
of x.sum() (all ones).  After the lesson's own cell, y = xᵀx, the leftover
gradient is 2x = [0, 2, 4, 6], so the result without zero_() is really
[1, 3, 5, 7].  This script shows all three cases; PyTorch prints the same.

Answers Q3: backward() adds into .grad (a big batch can be processed in pieces), so zero_()
    clears it.
Diagrams: y
Run it:  gradviz lesson 02   (or  python 02_accumulation.py  here)
"""

import gradviz as gv

# --- The lesson's cell: clear, then differentiate y = x.sum() ------------------
x = gv.arange(4.0, requires_grad=True)
gv.dot(x, x).backward()  # the previous cell: x.grad is now 2x = [0, 2, 4, 6]
print("after dot(x, x).backward():", x.grad)

x.grad.zero_()  # clear the old gradient (in place, as in PyTorch)
y = x.sum()
y.backward()
print("with zero_():", x.grad)  # tensor([1., 1., 1., 1.])

# --- What really happens without zero_() after the lesson's y = xᵀx --------------
x = gv.arange(4.0, requires_grad=True)
gv.dot(x, x).backward()  # x.grad = 2x
x.sum().backward()  # adds ones: 2x + 1
print("without zero_(), after y = x·x:", x.grad)  # tensor([1., 3., 5., 7.])
print("  Q3: backward() adds into .grad (a big batch can be processed in pieces, its\n"
      "  gradients summed), so clear it with x.grad.zero_() before a new gradient")

# --- Where the comment's [1, 5, 9, 13] comes from: the book's y = 2·xᵀx -----------
x = gv.arange(4.0, requires_grad=True)
(2 * gv.dot(x, x)).backward()  # x.grad = 4x
print("after (2 * dot(x, x)).backward():", x.grad)  # tensor([ 0.,  4.,  8., 12.])
x.sum().backward()  # adds ones: 4x + 1
print("without zero_(), after y = 2·x·x:", x.grad)  # tensor([ 1.,  5.,  9., 13.])
