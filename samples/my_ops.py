"""An op of your own, for `gradviz check samples/my_ops.py:cube -v x="[1, 2, 3]"`.

Defined exactly like the built-ins: the forward, its VJP and its JVP in one place.
"""

import gradviz as gv

cube = gv.defop("cube", lambda x: x ** 3, saves=("x0",),
                vjps=(lambda g, x: g * 3 * x ** 2,),
                jvps=(lambda t, x: t * 3 * x ** 2,))
