"""The lesson's own functions, verbatim (they are written with `torch.`-free code, so
they run unchanged on gradviz tensors). The samples import them from here.

f: section 3's control-flow example (and exercises 2 and 3).
h: exercise 4's redesigned control flow.
"""


def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


def h(x):
    y = x * x
    while y.norm() < 2500:
        y = y * 2
    if y.sum() < 0:
        c = 100 * y
    else:
        c = y
    return c
