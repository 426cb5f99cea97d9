"""Build a graph from a command-line expression: the formula first, values after.

This is the lesson's *explicit* construction: ``"dot(x, x)"`` names a
formula, ``-v x=arange(4)`` gives its values.  The expression is parsed by
:mod:`gradviz.frontends.expr` (an AST whitelist, never ``eval``) and run on
gradviz tensors, so the tape records it like any other computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from gradviz.engine.tensor import Tensor, arange, linspace, ones, randn, zeros, tensor
from gradviz.errors import ExpressionError
from gradviz.frontends import expr
from gradviz.functions import EXPRESSION_FUNCTIONS, EXPRESSION_METHODS

CONSTRUCTORS = {"arange": arange, "ones": ones, "zeros": zeros, "randn": randn,
                "linspace": linspace, "tensor": tensor}
DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass
class Built:
    """The result of running an expression: its output and the named tensors."""

    output: Tensor
    variables: dict[str, Tensor]
    assigned: dict[str, Any]
    notices: list[str] = field(default_factory=list)


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``NAME=VALUE`` (from ``-v``)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not value.strip():
        raise ExpressionError(f"-v expects NAME=VALUE (e.g. -v x=arange(4) or -v w=[1, 2]); "
                              f"got {text!r}")
    return name, value.strip()


def make_value(name: str, text: str, *, requires_grad: bool, dtype: Any = np.float32) -> Tensor:
    """The tensor for ``-v NAME=VALUE``: floating point, requiring grad unless a constant."""
    value = expr.parse_value(text, CONSTRUCTORS)
    data = value.data if isinstance(value, Tensor) else value
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExpressionError(f"-v {name}: {text!r} is not a number, a rectangular list of "
                              "numbers, or a constructor such as arange(4)") from None
    t = Tensor(arr.astype(dtype), requires_grad=requires_grad, dtype=dtype)
    t.label = name
    return t


def build(source: str, values: Mapping[str, str] | Sequence[tuple[str, str]] = (), *,
          constants: Sequence[str] = (), seed: int | None = None, dtype: str = "float32"
          ) -> Built:
    """Parse ``source``, bind its variables, run it on tensors, and label the nodes.

    Variables without a value get a random scalar (seeded by ``seed``) and a notice.
    """
    if dtype not in DTYPES:
        raise ExpressionError(f"--dtype must be float32 or float64, got {dtype!r}")
    np_dtype = DTYPES[dtype]
    pairs = dict(values.items() if isinstance(values, Mapping) else values)
    program = expr.parse(source, EXPRESSION_FUNCTIONS, EXPRESSION_METHODS)
    for name in list(pairs) + list(constants):
        if name not in program.free_names:
            free = ", ".join(program.free_names) or "none"
            raise ExpressionError(f"the expression does not use a variable {name!r} "
                                  f"(its variables: {free})")
    rng = np.random.default_rng(seed)
    notices: list[str] = []
    variables: dict[str, Tensor] = {}
    for name in program.free_names:
        if name in pairs:
            variables[name] = make_value(name, pairs[name], requires_grad=name not in constants,
                                         dtype=np_dtype)
        else:
            value = float(rng.standard_normal())
            t = Tensor(np.array(value, dtype=np_dtype), requires_grad=name not in constants,
                       dtype=np_dtype)
            t.label = name
            variables[name] = t
            how = f"--seed {seed}" if seed is not None else "--seed N to repeat it"
            notices.append(f"{name} has no value: using the random scalar {name}={value:.4g} "
                           f"({how}; set it with -v {name}=VALUE)")
    assigned: dict[str, Any] = {}

    def on_assign(name: str, value: Any) -> None:
        assigned[name] = value
        if isinstance(value, Tensor) and value.label is None:
            value.label = name

    out = expr.evaluate(program, EXPRESSION_FUNCTIONS, variables, on_assign=on_assign)
    if not isinstance(out, Tensor):
        raise ExpressionError("the output is a plain number, not computed from any variable: "
                              "use a variable, e.g. `x * 2` with -v x=3")
    if out.label is None:
        out.label = "out"
    return Built(out, variables, assigned, notices)


def as_function(source: str, names: Sequence[str]) -> Any:
    """The expression as a Python function of its variables ``names`` (in that order).

    Other free variables must not occur; used by ``gradviz check`` to vary the inputs.
    """
    program = expr.parse(source, EXPRESSION_FUNCTIONS, EXPRESSION_METHODS)
    missing = [n for n in program.free_names if n not in names]
    if missing:
        raise ExpressionError(f"give a value for {', '.join(missing)} with -v NAME=VALUE")

    def function(*tensors: Tensor) -> Any:
        return expr.evaluate(program, EXPRESSION_FUNCTIONS, dict(zip(names, tensors)))
    return function
