"""Build a graph from a command-line expression: the formula first, values after.

This is the lesson's *explicit* construction: ``"dot(x, x)"`` names a
formula, ``-v x=arange(4)`` gives its values.  The expression is parsed by
:mod:`gradviz.frontends.expr` (an AST whitelist, never ``eval``) and run on
gradviz tensors, so the tape records it like any other computation.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from gradviz.engine import tensor as _tensors
from gradviz.engine.tensor import Tensor
from gradviz.errors import ExpressionError
from gradviz.frontends import expr
from gradviz.functions import EXPRESSION_FUNCTIONS, EXPRESSION_METHODS

#: Most elements a ``-v`` constructor may make: ``ones(100000, 100000)`` or
#: ``arange(1e12)`` would exhaust memory long before anything is drawn.
MAX_ELEMENTS = 10_000_000

DTYPES = {"float32": np.float32, "float64": np.float64}


def _refuse_size(name: str, count: float) -> None:
    if count > MAX_ELEMENTS:
        shown = (f"{count:,}" if isinstance(count, int) else
                 f"{math.ceil(count):,}" if math.isfinite(count) else "too many")
        raise ExpressionError(f"`{name}` would make {shown} elements; "
                              f"the limit is {MAX_ELEMENTS:,}")


def _number(name: str, value: Any) -> int | float:
    # bool is an int, but `ones(True)` is surely a mistake.
    if type(value) not in (int, float):
        raise ExpressionError(f"`{name}`: expected a number, got {value!r}")
    return value


def _element_count(name: str, shape: Sequence[Any]) -> int | float:
    """How many elements ``shape`` holds, worked out without allocating anything.

    Negative sizes count as 0: the constructor rejects them itself, with numpy's message.
    """
    counts = [max(_number(name, n), 0) for n in shape]
    try:
        # Exact for ints (literals are at most 10,000 characters, so this is quick).
        return math.prod(counts)
    except OverflowError:  # a float times a 400-digit int; numpy refuses float sizes anyway
        return math.inf


def _shape(sizes: tuple[Any, ...]) -> tuple[Any, ...]:
    """``ones(2, 3)`` and ``ones((2, 3))`` both mean the shape (2, 3)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        return tuple(sizes[0])
    return sizes


def _capped_filled(name: str, make: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``ones``/``zeros``, refusing shapes of more than :data:`MAX_ELEMENTS` elements."""
    def constructor(*sizes: Any, **options: Any) -> Tensor:
        _refuse_size(name, _element_count(name, _shape(sizes)))
        return make(*sizes, **options)
    constructor.__name__ = constructor.__qualname__ = name
    return constructor


def _randn(*sizes: Any, size: Any = None, **options: Any) -> Tensor:
    """``randn``, refusing shapes of more than :data:`MAX_ELEMENTS` elements."""
    if size is None:
        shape = _shape(sizes)
    else:
        shape = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    _refuse_size("randn", _element_count("randn", shape))
    return _tensors.randn(*sizes, size=size, **options)


def _arange(start: Any, end: Any = None, step: Any = 1, **options: Any) -> Tensor:
    """``arange``, refusing a zero step and more than :data:`MAX_ELEMENTS` elements."""
    lo, hi = (0, start) if end is None else (start, end)
    lo, hi, by = (_number("arange", v) for v in (lo, hi, step))
    if by == 0:
        raise ExpressionError("`arange`: the step must not be 0")
    try:
        if type(lo) is int and type(hi) is int and type(by) is int:
            count: int | float = -((lo - hi) // by)  # ceil((hi - lo) / by), exactly
        else:
            count = math.ceil((hi - lo) / by)
    except (OverflowError, ValueError):  # an infinite bound (1e999), or a huge one
        raise ExpressionError("`arange`: the bounds must be finite and not huge") from None
    _refuse_size("arange", max(count, 0))
    return _tensors.arange(start, end, step, **options)


def _linspace(start: Any, end: Any, steps: Any, **options: Any) -> Tensor:
    """``linspace``, refusing a negative count and more than :data:`MAX_ELEMENTS` elements."""
    if _number("linspace", steps) < 0:
        raise ExpressionError(f"`linspace`: the number of steps must not be negative; got {steps}")
    _refuse_size("linspace", steps)
    return _tensors.linspace(start, end, steps, **options)


#: What ``-v NAME=VALUE`` may call.  ``tensor`` needs no cap: its data is a
#: literal, bounded by the length of the value's text.
CONSTRUCTORS: dict[str, Callable[..., Tensor]] = {
    "arange": _arange, "ones": _capped_filled("ones", _tensors.ones),
    "zeros": _capped_filled("zeros", _tensors.zeros), "randn": _randn,
    "linspace": _linspace, "tensor": _tensors.tensor}

#: Everything a formula may call: the engine's functions and, so that PyTorch code pastes
#: in (``x = torch.arange(4.0, requires_grad=True)``), the tensor constructors.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    **EXPRESSION_FUNCTIONS, **CONSTRUCTORS,
    "ones_like": _tensors.ones_like, "zeros_like": _tensors.zeros_like}

#: Module names a formula's function calls may be written behind, as pasted from code.
PREFIXES = ("torch", "gv", "gradviz")

#: Named values a call may take as an argument: ``dtype=torch.float64``.
CONSTANTS = {"float32": _tensors.float32, "float64": _tensors.float64}


def parse(source: str) -> expr.Program:
    """``source`` parsed against the whitelist of :data:`FUNCTIONS` and the tensor methods."""
    return expr.parse(source, FUNCTIONS, EXPRESSION_METHODS, prefixes=PREFIXES,
                      constants=CONSTANTS)


@dataclass
class Built:
    """The result of running an expression: its output and the named tensors."""

    output: Tensor
    variables: dict[str, Tensor]
    assigned: dict[str, Any]
    notices: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> dict[str, Tensor]:
        """The named leaves: the variables, then leaves the formula made itself
        (``x = arange(4.0, requires_grad=True); dot(x, x)``)."""
        made = {name: value for name, value in self.assigned.items()
                if isinstance(value, Tensor) and value.is_leaf and name not in self.variables
                and value is not self.output}
        return {**self.variables, **made}


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``NAME=VALUE`` (from ``-v``)."""
    name, sep, value = text.partition("=")
    # As Python (and ast) normalise identifiers: -v ｘ=1 is the x of the formula.
    name = unicodedata.normalize("NFKC", name.strip())
    if not sep or not name.isidentifier() or not value.strip():
        raise ExpressionError(f"-v expects NAME=VALUE (e.g. -v x=arange(4) or -v w=[1, 2]); "
                              f"got {text!r}")
    return name, value.strip()


def unique_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``-v`` pairs as a dict; a name given twice is an error, not last-one-wins."""
    out: dict[str, str] = {}
    for name, text in pairs:
        if name in out:
            raise ExpressionError(f"-v {name} given twice")
        out[name] = text
    return out


def expr_snippet(text: str) -> str:
    """``text`` quoted, shortened to 40 characters."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def make_value(name: str, text: str, *, requires_grad: bool, dtype: Any = np.float32) -> Tensor:
    """The tensor for ``-v NAME=VALUE``: floating point, requiring grad unless a constant."""
    value = expr.parse_value(text, CONSTRUCTORS)
    data = value.data if isinstance(value, Tensor) else value
    try:
        arr = np.asarray(data, dtype=np.float64)
    except OverflowError:  # a 400-digit integer
        raise ExpressionError(f"-v {name}: {expr_snippet(text)} is too large for a floating "
                              "point number (at most about 1.8e308)") from None
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

    Every variable needs a value: one without raises an :class:`ExpressionError`
    naming it and saying how to give one.  (A guessed value, such as a random
    scalar, would only move the failure elsewhere: ``X @ w`` of two scalars.)
    ``seed`` seeds ``randn`` in values and in the formula.
    """
    if dtype not in DTYPES:
        raise ExpressionError(f"--dtype must be float32 or float64, got {dtype!r}")
    np_dtype = DTYPES[dtype]
    pairs = unique_values(values.items() if isinstance(values, Mapping) else values)
    program = parse(source)
    for name in list(pairs) + list(constants):
        if name not in program.free_names:
            free = ", ".join(program.free_names) or "none"
            raise ExpressionError(f"the expression does not use a variable {name!r} "
                                  f"(its variables: {free})")
    missing = [name for name in program.free_names if name not in pairs]
    if missing:
        raise ExpressionError(_missing_message(missing))
    if seed is not None:
        _tensors.manual_seed(seed)
    notices: list[str] = []
    variables: dict[str, Tensor] = {}
    for name in program.free_names:
        variables[name] = make_value(name, pairs[name], requires_grad=name not in constants,
                                     dtype=np_dtype)
    assigned: dict[str, Any] = {}

    def on_assign(name: str, value: Any) -> None:
        assigned[name] = value
        if isinstance(value, Tensor) and value.label is None:
            value.label = name

    out = expr.evaluate(program, FUNCTIONS, {**CONSTANTS, **variables}, on_assign=on_assign)
    if isinstance(out, (tuple, list)):
        raise ExpressionError(f"the output is a {type(out).__name__} of {len(out)} values; the "
                              "last expression must be one tensor (e.g. `stack([x, y])`)")
    if not isinstance(out, Tensor):
        raise ExpressionError("the output is a plain number, not computed from any variable: "
                              "use a variable, e.g. `x * 2` with -v x=3")
    if out.label is None:
        taken = set(variables) | set(assigned)
        out.label = next(n for n in ("out", "output", "out_") if n not in taken) \
            if "out_" not in taken else "out" + "_" * (max(map(len, taken)) + 1)
    return Built(out, variables, assigned, notices)


def _missing_message(missing: Sequence[str]) -> str:
    """``variable `w` has no value: give it one with -v w=VALUE ...``."""
    first = missing[0]
    if len(missing) == 1:
        what = f"variable `{first}` has no value: give it one with -v {first}=VALUE"
    else:
        listed = ", ".join(f"`{n}`" for n in missing)
        what = f"variables {listed} have no value: give each one with -v NAME=VALUE"
    return (f"{what}, e.g. -v {first}=\"[1, 2]\" or -v {first}=\"randn(3, 2)\" "
            "(add --const NAME for one that needs no gradient)")


def as_function(source: str, names: Sequence[str]) -> Any:
    """The expression as a Python function of its variables ``names`` (in that order).

    Other free variables must not occur; used by ``gradviz check`` to vary the inputs.
    """
    program = parse(source)
    missing = [n for n in program.free_names if n not in names]
    if missing:
        raise ExpressionError(f"give a value for {', '.join(missing)} with -v NAME=VALUE")

    def function(*tensors: Tensor) -> Any:
        return expr.evaluate(program, FUNCTIONS, {**CONSTANTS, **dict(zip(names, tensors))})
    return function
