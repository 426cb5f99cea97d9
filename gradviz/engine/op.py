"""How an operation is defined: one :class:`Op` holds its forward, VJP and JVP.

Every built-in operation (``gradviz/ops.py``) and every user-defined one goes
through :func:`defop`, so the engine, the renderer and the stepper treat them
all alike and never special-case an op.

The derivative rules are written once and run in two modes:

* on plain numpy arrays, for an ordinary backward pass (fast, nothing recorded);
* on :class:`~gradviz.engine.tensor.Tensor` objects, when ``create_graph=True``,
  so the backward pass is itself recorded and can be differentiated again.

That works because a rule only uses Python operators, numpy-compatible
methods (``.sum(axis=..., keepdims=True)``, ``.reshape``, ``.T``) and other
``Op`` objects, which dispatch on their arguments: arrays in, arrays out;
a tensor in, a recorded tensor out.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from gradviz.engine.tensor import Tensor, record
from gradviz.errors import AutogradError, GradvizTypeError, GradvizValueError

# Tokens an op lists in ``saves``: which values its derivative rules need.
# "x0", "x1", ... are its inputs, "out" its output, "shape0", ... an input's shape.
Rule = Callable[..., Any]


class Op:
    """An operation of the tape: forward, per-input VJP and JVP rules.

    Attributes:
        name: short name used in expressions and diagrams (``"mul"``).
        grad_fn: PyTorch's name of the backward node (``"MulBackward0"``), or a
            function ``(inputs, params) -> name`` where PyTorch's name depends on
            the operands (``matmul`` is Dot, Mv or Mm by shape).
        symbol: how diagrams write it (``"*"``); defaults to ``name``.
        forward: ``forward(*arrays, **params) -> ndarray``.
        saves: the tokens of the values the rules need (see module notes).
        vjps: one rule per input, ``vjp(g, *saved, **params)``: the contribution
            this input receives, given the output's adjoint ``g``.  The engine
            fits each contribution to the input's shape (un-broadcasting), so
            rules never sum over broadcast axes themselves.  For ops with any
            number of inputs (``concatenate``), a single rule
            ``vjp(i, g, *saved, **params)`` instead.
        jvps: one rule per input, ``jvp(t, *saved, **params)``: the output
            tangent contributed by input tangent ``t``; contributions are summed.
        differentiable: False for ops whose output never requires grad
            (``detach``, comparisons); their edges are pruned.
        display: how diagrams write an application, ``display(args, params)``
            with the inputs' names (``-x``, ``x[1:3]``); by default infix for
            operator symbols (``x * y``), else ``name(x, axis=0)``.
    """

    __slots__ = ("name", "grad_fn", "symbol", "forward", "saves", "vjps", "jvps",
                 "differentiable", "variadic", "display", "_picks", "saves_tensors", "pick_saved",
                 "out_shape")

    def __init__(self, name: str, forward: Callable[..., np.ndarray], *,
                 grad_fn: str | Callable[[tuple, dict], str] | None = None, symbol: str | None = None,
                 saves: Sequence[str] = (), vjps: Sequence[Rule] | Rule | None = None,
                 jvps: Sequence[Rule] | Rule | None = None, differentiable: bool = True,
                 display: Callable[[list[str], dict], str] | None = None,
                 out_shape: Callable[..., tuple] | None = None) -> None:
        self.name = name
        #: ``out_shape(*shapes)``: the output's shape from two inputs' shapes, for ops that
        #: do not broadcast (matmul); asked only when the output might be too large.
        self.out_shape = out_shape
        self.forward = forward
        self.grad_fn = grad_fn or name.title().replace("_", "") + "Backward0"
        self.symbol = symbol or name
        self.saves = tuple(saves)
        self.variadic = callable(vjps)
        self.vjps = vjps
        self.jvps = jvps
        self.differentiable = differentiable and vjps is not None
        self.display = display
        for token in self.saves:
            if not isinstance(token, str) or not (
                    token == "out" or token[:1] == "x" and token[1:].isdigit()
                    or token.startswith("shape") and token[5:].isdigit()):
                raise GradvizValueError(f"op {name!r}: unknown saved-value token {token!r}; "
                                 "use 'x0', 'x1', ..., 'out' or 'shape0', ...")
        # (kind, index) pairs, resolved once here rather than on every call.
        self._picks = tuple(("out", 0) if t == "out" else
                            ("shape", int(t[5:])) if t.startswith("shape") else
                            ("x", int(t[1:])) for t in self.saves)
        # Whether the op keeps array values for backward (freed after a pass); shapes are not.
        self.saves_tensors = any(kind != "shape" for kind, _ in self._picks)
        self.pick_saved = _picker(self._picks)

    def __repr__(self) -> str:
        return f"<Op {self.name}>"

    def backward_name(self, node: Any) -> str:
        """The name of ``node``'s backward node, as PyTorch would print it."""
        name = self.grad_fn
        return name if isinstance(name, str) else name(node.inputs, node.params)

    def format(self, args: list[str], params: dict) -> str:
        """The application written out for a diagram, from the inputs' names."""
        if self.display is not None:
            return self.display(args, params)
        if len(args) == 2 and not self.symbol.isidentifier():
            return f"{args[0]} {self.symbol} {args[1]}"
        extras = [f"{k}={_param_text(v)}" for k, v in params.items()
                  if v is not None and v is not False]
        return f"{self.name}({', '.join(list(args) + extras)})"

    def __call__(self, *args: Any, **params: Any) -> Any:
        """Apply the op: recorded on the tape if any argument is a Tensor, else plain numpy."""
        for a in args:
            if isinstance(a, Tensor):
                return record(self, args, params or _NO_PARAMS)
        return self.forward(*args, **params)

    # -- what the engine asks of an op --------------------------------------

    def vjp(self, i: int) -> Rule | None:
        """The VJP rule of input ``i`` (None if the input gets no gradient)."""
        if self.vjps is None:
            return None
        if self.variadic:
            rule = self.vjps
            return lambda g, *saved, **params: rule(i, g, *saved, **params)
        return self.vjps[i]

    def jvp(self, i: int) -> Rule | None:
        """The JVP rule of input ``i`` (None if the op has no forward-mode rule)."""
        if self.jvps is None:
            return None
        if self.variadic:
            rule = self.jvps
            return lambda t, *saved, **params: rule(i, t, *saved, **params)
        return self.jvps[i]


def _param_text(v: Any) -> str:
    return str(v[0]) if isinstance(v, tuple) and len(v) == 1 else str(v)


def _picker(picks: tuple) -> Callable[[Sequence[Any], Any], tuple]:
    """A function ``(inputs, out) -> saved values`` for an op's ``saves`` tokens.

    Built once per op: the common patterns get a direct function because this
    runs on every recorded operation.
    """
    if not picks:
        return lambda inputs, out: ()
    if picks == (("x", 0),):  # the inputs themselves when they are exactly what is saved
        return lambda inputs, out: inputs if len(inputs) == 1 else (inputs[0],)
    if picks == (("out", 0),):
        return lambda inputs, out: (out,)
    if picks == (("x", 0), ("x", 1)):
        return lambda inputs, out: inputs if len(inputs) == 2 else (inputs[0], inputs[1])

    def pick(inputs: Sequence[Any], out: Any) -> tuple:
        return tuple(out if kind == "out" else inputs[i].shape if kind == "shape" else inputs[i]
                     for kind, i in picks)
    return pick


def defop(name: str, forward: Callable[..., np.ndarray], **spec: Any) -> Op:
    """Define an operation; returns the callable :class:`Op`.

    This is the public way to add your own op, the same one the built-ins use::

        cube = gradviz.defop("cube", lambda x: x ** 3, saves=("x0",),
                             vjps=(lambda g, x: g * 3 * x ** 2,),
                             jvps=(lambda t, x: t * 3 * x ** 2,))
        y = cube(gradviz.tensor(2.0, requires_grad=True))

    Check a hand-written rule with ``gradviz.check(cube, x)`` (or the CLI's
    ``gradviz check``), which compares it with central finite differences.

    A rule that returns None or something that is not an array raises an
    :class:`~gradviz.errors.AutogradError` naming the op and the input.
    (The built-in ops skip this wrapper: their rules are tested.)
    """
    if not isinstance(name, str) or not name:
        raise GradvizTypeError(f"defop: the name must be a non-empty string, got {name!r}")
    if not callable(forward):
        raise GradvizTypeError(f"defop {name!r}: forward must be a function, "
                               f"not {type(forward).__name__}")
    for kind in ("vjps", "jvps"):
        rules = spec.get(kind)
        if rules is None:
            continue
        if callable(rules):
            spec[kind] = _checked(name, kind, None, rules, variadic=True)
        elif isinstance(rules, (tuple, list)):
            spec[kind] = tuple(None if r is None else _checked(name, kind, i, r)
                               for i, r in enumerate(rules))
        else:
            raise GradvizTypeError(f"defop {name!r}: {kind} must be a tuple of functions "
                                   f"(one per input) or one function, not "
                                   f"{type(rules).__name__}")
    return Op(name, forward, **spec)


def _checked(name: str, kind: str, i: int | None, rule: Rule, variadic: bool = False) -> Rule:
    """``rule``, raising a clear error if it returns no array (a user's rule, not yet tested)."""
    if not callable(rule):
        raise GradvizTypeError(f"defop {name!r}: {kind}[{i}] must be a function or None, "
                               f"not {type(rule).__name__}")
    what = "VJP" if kind == "vjps" else "JVP"

    def checked(*args: Any, **params: Any) -> Any:
        result = rule(*args, **params)
        if not hasattr(result, "shape") or not hasattr(result, "dtype"):
            which = args[0] if variadic else i
            raise AutogradError(f"op {name!r}: the {what} rule of input {which} returned "
                                f"{type(result).__name__}, not an array: return the "
                                "contribution (an array of the input's shape)")
        return result
    return checked


_NO_PARAMS: dict = {}  # shared by every node without parameters; never mutated
