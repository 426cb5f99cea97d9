"""Exercise 2: backward() twice on one graph: the saved values are freed (retain_graph).

A backward pass frees the values the graph saved for it (here: the operands of
each multiplication), so a second d.backward() raises

    RuntimeError: Trying to backward through the graph a second time (...)

with the same text as PyTorch.  Passing retain_graph=True keeps them; the
second pass then works and, as always, *adds* to a.grad.

The lesson's Out[51] is tensor(4096.): any a in [1000/4096, 1000/2048), such
as 0.3, doubles 12 times in total (b = a * 2 then 11 more), so dd/da = 4096.

Answers Q2: the forward pass runs once and stores what backward needs; backward() uses those
    values, then frees them.
Diagrams: d --roll
Run it:  gradviz lesson 08   (or  python 08_backward_twice.py  here)
"""

import gradviz as gv
from lesson import f  # the lesson's function, verbatim: see lesson.py




def stored(t):
    """The forward values t's tape keeps for the backward pass: (how many, bytes)."""
    arrays = {id(v): v for node in gv.tape(t) for v in (node.saved or ()) if hasattr(v, "nbytes")}
    return len(arrays), sum(v.nbytes for v in arrays.values())


a = gv.tensor(0.3, requires_grad=True)
d = f(a)
count, size = stored(d)
print(f"Q2: the forward pass ran once and stored {count} values ({size} bytes) for backward")
d.backward()
print("a.grad =", a.grad)  # tensor(4096.), the lesson's Out[51]
count, size = stored(d)
print(f"  backward() used them, never re-running f, then freed them: {count} values held now")

try:
    d.backward()  # the graph's saved values are gone
except RuntimeError as err:
    print("second d.backward() raised RuntimeError:")
    print(err)

# With retain_graph=True the graph survives, and gradients accumulate.
a = gv.tensor(0.3, requires_grad=True)
d = f(a)
d.backward(retain_graph=True)
print("after the first backward:", a.grad)  # tensor(4096.)
d.backward()  # allowed now (this one frees the graph)
print("after the second backward:", a.grad)  # tensor(8192.): 4096 + 4096
