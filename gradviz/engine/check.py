"""Check an op's derivative rules against central finite differences.

A learner who writes an op with :func:`~gradviz.engine.op.defop` and gets its
backward wrong sees it here: the VJP and JVP are compared, element by element,
with (f(x + h) - f(x - h)) / 2h computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from gradviz.engine.backward import BackwardPass
from gradviz.engine.forward import ForwardSweep
from gradviz.engine.tape import Tape
from gradviz.engine.tensor import Tensor, as_tensor
from gradviz.errors import AutogradError, GradvizTypeError, GradvizValueError


@dataclass
class CheckResult:
    """What :func:`check` found: the worst error of each rule, and whether all passed."""

    ok: bool
    reverse_error: list[float] = field(default_factory=list)
    forward_error: list[float] = field(default_factory=list)
    numeric: list[np.ndarray] = field(default_factory=list)
    reverse: list[np.ndarray] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)     # one verdict per input
    forward_available: bool = True                       # False: some op has no JVP rule
    #: How each input was checked: "elementwise" (the whole Jacobian, entry by entry)
    #: or "projection" (random ⟨u, J v⟩; numeric and reverse then hold those numbers).
    methods: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


def numeric_jacobian(f: Callable[..., Any], arrays: Sequence[np.ndarray], i: int,
                     eps: float = 1e-6) -> np.ndarray:
    """d f / d arrays[i] by central differences, shaped ``out.shape + in.shape``."""
    base = [np.array(a, dtype=np.float64) for a in arrays]
    out0 = np.asarray(f(*base))
    jac = np.zeros(out0.shape + base[i].shape)
    flat = base[i].reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        hi = np.asarray(f(*base))
        flat[k] = old - eps
        lo = np.asarray(f(*base))
        flat[k] = old
        jac.reshape(out0.shape + (-1,))[..., k] = (hi - lo) / (2 * eps)
    return jac


#: Up to this many input (and output) elements the Jacobian is checked entry by entry;
#: beyond, by random projections: the entry-by-entry check costs one evaluation per
#: element and a dense Jacobian of n_out x n_in, which 30,000 elements already exhaust.
ELEMENTWISE_LIMIT = 256
#: How many random projections ⟨u, J v⟩ check a large input.
PROJECTIONS = 6


def check(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
          rtol: float = 1e-4, seed: int = 0) -> CheckResult:
    """Compare ``fn``'s reverse-mode and forward-mode derivatives with finite differences.

    ``fn`` is an op or any function of tensors; inputs are converted to float64.
    Small inputs are checked element by element (the whole Jacobian).  An input
    or output of more than :data:`ELEMENTWISE_LIMIT` elements is checked by
    :data:`PROJECTIONS` random projections, as HIPS autograd's ``check_grads``
    does: for random unit ``u`` (output-shaped) and ``v`` (input-shaped), the
    VJP gives ``⟨uᵀJ, v⟩``, the JVP ``⟨u, J v⟩``, and a central difference along
    ``v`` gives ``⟨u, (f(x + hv) - f(x - hv)) / 2h⟩``; the cost is a few
    evaluations whatever the size.  ``result.methods`` says which was used.
    """
    if not isinstance(eps, (int, float, np.floating)) or not 0 < eps <= 1 \
            or not np.isfinite(eps):
        raise GradvizValueError(f"check: eps must be a finite number in (0, 1], got {eps!r}")
    arrays = [np.array(as_tensor(x).data, dtype=np.float64) for x in inputs]
    with np.errstate(all="ignore"):  # the comparison reports nan/inf; numpy need not warn
        return _check(fn, arrays, float(eps), atol, rtol, np.random.default_rng(seed))


def _projected(fn: Callable[..., Tensor], out: Tensor, leaf: Tensor, arrays: list[np.ndarray],
               i: int, eps: float, forward: bool, rng: Any) -> tuple:
    """``(numeric, reverse, forward)``: ⟨u, J v⟩ three ways, for each random (u, v)."""
    numeric, reverse, tangent = [], [], []
    for _ in range(PROJECTIONS):
        u = rng.standard_normal(out.data.shape)
        v = rng.standard_normal(leaf.data.shape)
        u /= max(np.linalg.norm(u), 1e-300)
        v /= max(np.linalg.norm(v), 1e-300)
        moved = list(arrays)
        moved[i] = arrays[i] + eps * v
        hi = fn(*[Tensor(a, dtype=np.float64) for a in moved]).data
        moved[i] = arrays[i] - eps * v
        lo = fn(*[Tensor(a, dtype=np.float64) for a in moved]).data
        numeric.append(float(np.sum(u * (hi - lo) / (2 * eps))))
        p = BackwardPass(out, u, inputs=[leaf], retain_graph=True, accumulate=False).run()
        g = p.adjoint_of(leaf)
        reverse.append(0.0 if g is None else float(np.sum(np.asarray(g) * v)))
        if forward:
            tan = ForwardSweep(out, {leaf: v}).run().tangent_of(out)
            tangent.append(0.0 if tan is None else float(np.sum(u * np.asarray(tan))))
    return np.array(numeric), np.array(reverse), np.array(tangent)


def _check(fn: Callable[..., Tensor], arrays: list[np.ndarray], eps: float, atol: float,
           rtol: float, rng: Any) -> CheckResult:

    def plain(*arrs: np.ndarray) -> np.ndarray:
        return fn(*[Tensor(a, dtype=np.float64) for a in arrs]).data

    result = CheckResult(ok=True)
    leaves = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = fn(*leaves)
    if not isinstance(out, Tensor):
        raise GradvizTypeError(f"check: the function must return a Tensor, "
                               f"got {type(out).__name__}")
    if not out.requires_grad:
        raise AutogradError("check: the output does not depend differentiably on the inputs "
                            "(it does not require grad)")
    result.forward_available = all(
        n.op is None or not n.requires_grad or n.is_leaf or n.op.jvps is not None
        for n in Tape(out).nodes)
    for i, leaf in enumerate(leaves):
        if max(leaf.data.size, out.data.size) > ELEMENTWISE_LIMIT:
            num, rev, fwd = _projected(fn, out, leaf, arrays, i, eps,
                                       result.forward_available, rng)
            rerr = float(np.max(np.abs(rev - num), initial=0.0))
            ferr = float(np.max(np.abs(fwd - num), initial=0.0)) \
                if result.forward_available else float("nan")
            _record(result, "projection", num, rev, rerr, ferr, atol, rtol)
            continue
        num = numeric_jacobian(plain, arrays, i, eps)          # out.shape + in.shape
        num2 = num.reshape(out.data.size, leaf.data.size)
        # Reverse mode: one pass per output element gives one row of the Jacobian.
        rows = []
        for k in range(out.data.size):
            seed = np.zeros(out.data.size)
            seed[k] = 1.0
            p = BackwardPass(out, seed.reshape(out.data.shape), inputs=[leaf],
                             retain_graph=True, accumulate=False).run()
            g = p.adjoint_of(leaf)
            rows.append(np.zeros(leaf.data.size) if g is None else np.asarray(g).reshape(-1))
            del p
        rev = np.array(rows).reshape(num2.shape)
        # Forward mode (when every op has a JVP rule): one sweep per input element, one column.
        cols = []
        for k in range(leaf.data.size if result.forward_available else 0):
            t = np.zeros(leaf.data.size)
            t[k] = 1.0
            sweep = ForwardSweep(out, {leaf: t.reshape(leaf.data.shape)}).run()
            tan = sweep.tangent_of(out)
            cols.append(np.zeros(out.data.size) if tan is None else np.asarray(tan).reshape(-1))
        rerr = float(np.max(np.abs(rev - num2), initial=0.0))
        ferr = float("nan")
        if result.forward_available:
            fwd = np.array(cols).T.reshape(num2.shape)
            ferr = float(np.max(np.abs(fwd - num2), initial=0.0))
        _record(result, "elementwise", num, rev.reshape(num.shape), rerr, ferr, atol, rtol)
    return result


def _record(result: CheckResult, method: str, num: np.ndarray, rev: np.ndarray, rerr: float,
            ferr: float, atol: float, rtol: float) -> None:
    """Add one input's verdict to ``result``; nan errors (nan values) fail."""
    result.methods.append(method)
    result.reverse_error.append(rerr)
    result.forward_error.append(ferr)
    result.numeric.append(num)
    result.reverse.append(rev)
    scale = atol + rtol * float(np.max(np.abs(num), initial=0.0))
    passed = rerr <= scale and (not result.forward_available or ferr <= scale)
    result.passed.append(passed)
    result.ok = result.ok and passed
