"""gradviz: see automatic differentiation.

An autodiff engine on numpy with PyTorch's semantics that records a tape of
every operation, and tools that draw and step through it::

    import gradviz as gv
    x = gv.arange(4.0, requires_grad=True)
    y = gv.dot(x, x)
    y.backward()
    x.grad            # tensor([0., 2., 4., 6.])
"""

from __future__ import annotations

from gradviz.engine.backward import (
    BackwardPass, Edge, Freed, History, Step, backward, grad, keep_saved,
)
from gradviz.engine.calls import Call, group_calls
from gradviz.engine.check import CheckResult, check
from gradviz.engine.forward import ForwardStep, ForwardSweep, jvp
from gradviz.engine.op import Op, defop
from gradviz.engine.tape import Tape, prune_reason
from gradviz.engine.tensor import (
    Size, Tensor, arange, as_tensor, bool_, enable_grad, float16, float32, float64, full,
    int32, int64, is_grad_enabled, linspace, manual_seed, no_grad, ones, ones_like, rand,
    randn, tensor, zeros, zeros_like,
)
from gradviz.errors import (
    AutogradError, ExpressionError, GradvizError, GradvizTypeError, GradvizValueError,
    RenderError, RendererUnavailable, ScriptError, ShapeError,
)
from gradviz.functions import (
    abs, add, broadcast_to, cat, clone, concatenate, cos, detach, div, dot, exp, flatten, log,
    matmul, max, mean, min, mm, mul, neg, norm, permute, pow, relu, reshape, sigmoid, sign,
    sin, sqrt, stack, sub, sum, tan, tanh, transpose, view, where,
)

__version__ = "0.1.0"


def tape(*outputs: Tensor) -> Tape:
    """The tape behind ``outputs``: its nodes in execution order, numbered v0, v1, ..."""
    return Tape(list(outputs))

# Bound after the subpackage import, so ``gradviz.render`` is the function.
from gradviz.render import draw, render  # noqa: E402
from gradviz.stepper import step  # noqa: E402
