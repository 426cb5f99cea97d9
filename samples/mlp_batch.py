"""A two-layer MLP's loss over a mini-batch, written with small functions.

Drawn box by box it is some 70 boxes; grouped by function call it reads like the code:

    gradviz render samples/mlp_batch.py --group                    # a cluster per call
    gradviz render samples/mlp_batch.py --group --collapse model   # each model() call: one box
"""

import gradviz as gv

gv.manual_seed(0)
W1 = gv.randn(3, 2, requires_grad=True)
b1 = gv.zeros(3, requires_grad=True)
W2 = gv.randn(1, 3, requires_grad=True)
b2 = gv.zeros(1, requires_grad=True)
X = gv.randn(4, 2)   # four examples of two features
Y = gv.randn(4, 1)   # and their targets


def linear(x, W, b):
    return W @ x + b


def model(x):
    return linear(gv.relu(linear(x, W1, b1)), W2, b2)


def squared_error(x, y):
    d = model(x) - y
    return (d * d).sum()


total = squared_error(X[0], Y[0])
for i in range(1, 4):
    total = total + squared_error(X[i], Y[i])
loss = total / 4
