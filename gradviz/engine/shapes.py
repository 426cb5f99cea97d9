"""Shape plumbing the engine itself needs: un-broadcasting and dtype casts.

Both passes fit every contribution to the shape (and dtype) of the value it
belongs to, so derivative rules never sum over broadcast axes themselves.
The two ops used for that live here, in the engine, and ``gradviz.ops`` lists
them in its table like any other op; the engine imports no op table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradviz.engine.op import Op as defop  # built-ins: no user-rule checks
from gradviz.errors import ShapeError

broadcast_to = defop("expand", lambda x, shape: np.broadcast_to(x, shape),
                     grad_fn="ExpandBackward0",
                     vjps=(lambda g, shape: g,),  # fit_shape sums it back to the input's shape
                     jvps=(lambda t, shape: broadcast_to(t, shape=shape),))

cast = defop("to", lambda x, dtype, src: x.astype(dtype), grad_fn="ToCopyBackward0",
             display=lambda a, p: f"{a[0]}.to({p['dtype']})",
             vjps=(lambda g, dtype, src: cast(g, dtype=src, src=dtype),),
             jvps=(lambda t, dtype, src: cast(t, dtype=dtype, src=src),))


def fit_shape(g: Any, shape: tuple) -> Any:
    """Fit a contribution to ``shape``: sum what broadcasting spread, spread what it kept.

    The single un-broadcasting helper: reverse mode sums over the axes that
    numpy broadcast an input along; forward mode broadcasts a tangent up to
    the output's shape.  ``g`` is an array, or a Tensor under ``create_graph``
    (its ``.sum`` is the recorded op).
    """
    gshape = g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
        gshape = g.shape
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and gshape[i - len(shape) + len(gshape)] != 1
                 ) if len(gshape) == len(shape) else ()
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if tuple(g.shape) != tuple(shape):
        try:
            np.broadcast_shapes(tuple(g.shape), tuple(shape))
        except ValueError:
            raise ShapeError(f"a derivative of shape {tuple(gshape)} does not fit its input "
                             f"of shape {tuple(shape)}: an op's rule returned the wrong "
                             "shape") from None
        g = broadcast_to(g, shape=tuple(shape))
    return g
