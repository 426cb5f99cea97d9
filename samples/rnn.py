"""A small RNN over 20 steps, for `gradviz render samples/rnn.py --roll`.

The cell h = tanh(W @ h + U @ x + b) is 5 ops; rolled, the 100 ops are one box
[tanh(W @ · + U @ x + b)] ×20, with the summed contributions to W, U and b on its edges.
"""

import gradviz as gv

gv.manual_seed(0)
W = gv.randn(4, 4, requires_grad=True)
U = gv.randn(4, 3, requires_grad=True)
b = gv.zeros(4, requires_grad=True)
x = gv.randn(3)       # the input, the same at every step (a list of 20 would roll too,
h0 = gv.zeros(4)      # drawn as 20 input boxes)
h = h0
for step in range(20):
    h = gv.tanh(W @ h + U @ x + b)
loss = h.sum()
