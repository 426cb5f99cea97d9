"""Forward versus reverse accumulation, measured on a real tape (the lesson's section 2.3).

For f: Rⁿ → Rᵐ the full Jacobian takes n forward sweeps (one per input
direction, :class:`~gradviz.engine.forward.ForwardSweep`) or m reverse passes
(one per output component, :class:`~gradviz.engine.backward.BackwardPass`).
:func:`measure` builds it both ways on the same tape and reports what each
mode cost: sweeps, derivative-rule evaluations, the bytes it had to hold, and
the wall time; and checks that the two Jacobians agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from gradviz.engine.backward import BackwardPass, saved_arrays, saved_values
from gradviz.engine.forward import ForwardSweep
from gradviz.engine.tape import Tape
from gradviz.engine.tensor import Tensor
from gradviz.errors import AutogradError, GradvizValueError
from gradviz.render.values import plural

#: Beyond this many sweeps or passes, a full Jacobian is refused: it would take minutes.
MAX_SWEEPS = 20_000


@dataclass
class ModeCost:
    """What building the full Jacobian cost one mode.

    Attributes:
        sweeps: forward sweeps (one per input component) or reverse passes (one per output).
        evaluations: derivative-rule evaluations (JVPs or VJPs), summed over the sweeps.
        held_bytes: the most bytes the mode held at once beyond the forward values
            themselves: forward mode, the tangents still needed within a sweep; reverse
            mode, what the forward pass saved for it plus the adjoints still needed.
        saved_bytes: reverse mode only: the part of ``held_bytes`` the forward pass saved.
        seconds: wall time of all the sweeps (best of the repeats).
        jacobian: the m × n Jacobian it built.
    """

    mode: str
    sweeps: int
    evaluations: int
    held_bytes: int
    saved_bytes: int
    seconds: float
    jacobian: np.ndarray

    @property
    def seconds_per_sweep(self) -> float:
        return self.seconds / max(self.sweeps, 1)


@dataclass
class CostReport:
    """Both modes on one tape, and which was cheaper."""

    n: int
    m: int
    forward: ModeCost
    reverse: ModeCost
    max_difference: float
    jacobians_equal: bool
    cheaper: str                # "forward", "reverse" or "even"
    reason: str                 # one line: which is cheaper here and why

    @property
    def crossover_n(self) -> float:
        """The n at which forward mode's n sweeps would take as long as reverse's m passes."""
        return self.m * self.reverse.seconds_per_sweep / max(self.forward.seconds_per_sweep, 1e-12)


def _unit(shape: tuple, k: int, dtype: np.dtype) -> np.ndarray:
    e = np.zeros(shape, dtype=dtype)
    e.reshape(-1)[k] = 1
    return e


def _last_uses(order: Sequence[Tensor]) -> dict[int, int]:
    """For each node of ``order``, the position of the last node that takes it as an input."""
    position = {id(n): i for i, n in enumerate(order)}
    last = {id(n): i for i, n in enumerate(order)}
    for i, n in enumerate(order):
        for x in n.inputs:
            if id(x) in position:
                last[id(x)] = max(last[id(x)], i)
    return last


def _directions(inputs: Sequence[Tensor]) -> list[tuple[Tensor, int]]:
    return [(x, k) for x in inputs for k in range(x.data.size)]


def _forward_column(output: Tensor, x: Tensor, k: int, count: bool
                    ) -> tuple[np.ndarray, int, int]:
    """One forward sweep along input component ``x[k]``: (column, evaluations, peak bytes)."""
    sweep = ForwardSweep(output, {x: _unit(x.data.shape, k, x.dtype)})
    evaluations = peak = 0
    if count:
        last = _last_uses(sweep.order)
        live: dict[int, int] = {}  # node id -> bytes of its tangent, while a later node needs it
        held = 0                   # their sum, kept as the sweep goes
        for i, step in enumerate(sweep):
            evaluations += sum(c is not None for _, c in step.contributions)
            live[id(step.node)] = np.asarray(step.tangent).nbytes
            held += live[id(step.node)]
            peak = max(peak, held)
            for node in [step.node, *step.node.inputs]:
                if last.get(id(node), -1) <= i and node is not output:
                    held -= live.pop(id(node), 0)
    else:
        sweep.run()
    t = sweep.tangent_of(output)
    column = np.zeros(output.data.size) if t is None else np.asarray(t, float).reshape(-1)
    return column, evaluations, peak


def _reverse_row(output: Tensor, inputs: Sequence[Tensor], i: int, count: bool,
                 kept: Mapping[int, Any] | None = None) -> tuple[np.ndarray, int, int]:
    """One reverse pass from output component ``i``: (row, evaluations, peak adjoint bytes).

    ``kept``: saved values a script's own ``backward()`` freed (see ``keep_saved``).
    """
    p = BackwardPass(output, _unit(output.data.shape, i, output.dtype), inputs=list(inputs),
                     retain_graph=True, accumulate=False, kept=kept)
    evaluations = peak = 0
    if count:
        live: dict[int, int] = {}  # node id -> bytes of its (partial) adjoint, until visited
        held = 0                   # their sum, kept as the pass goes

        def hold(node: Tensor, nbytes: int) -> None:
            nonlocal held
            held += nbytes - live.get(id(node), 0)
            live[id(node)] = nbytes

        for step in p:
            hold(step.node, np.asarray(step.adjoint).nbytes)
            for x, c in step.contributions:
                if c is not None:
                    evaluations += 1
                    hold(x, np.asarray(p.adjoint_of(x)).nbytes)
            peak = max(peak, held)
            if not step.node.is_leaf:  # a leaf's adjoint is the result: it stays
                held -= live.pop(id(step.node), 0)
    else:
        p.run()
    parts = []
    for x in inputs:
        g = p.adjoint_of(x)
        parts.append(np.zeros(x.data.size) if g is None else np.asarray(g, float).reshape(-1))
    return np.concatenate(parts), evaluations, peak


def saved_bytes(output: Tensor, kept: Mapping[int, Any] | None = None) -> int:
    """Bytes of the values the forward pass saved for backward (each array counted once)."""
    arrays = {id(a): a for n in Tape(output).nodes if n.requires_grad
              for a, _ in saved_arrays(n, saved_values(n, kept))}
    return sum(a.nbytes for a in arrays.values())


def _timed(job: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        job()
        best = min(best, time.perf_counter() - start)
    return best


def _check(output: Tensor, inputs: Sequence[Tensor]) -> None:
    if not inputs:
        raise GradvizValueError("no input requires grad: nothing to differentiate")
    for x in inputs:
        if not x.requires_grad:
            raise AutogradError(f"{x.label or 'an input'} does not require grad")
    if not output.requires_grad:
        raise AutogradError("the output does not depend differentiably on the inputs")
    n = sum(x.data.size for x in inputs)
    if max(n, output.data.size) > MAX_SWEEPS:
        raise GradvizValueError(f"a full Jacobian of {output.data.size} x {n} takes too many "
                                f"sweeps; keep n and m at most {MAX_SWEEPS:,}")
    missing = {n.op.name for n in Tape(output).nodes
               if not n.is_leaf and n.requires_grad and n.op.jvps is None}
    if missing:
        raise AutogradError(f"forward mode needs a JVP rule, and {', '.join(sorted(missing))} "
                            "has none")


def measure(output: Tensor, inputs: Sequence[Tensor], repeats: int = 3,
            kept: Mapping[int, Any] | None = None) -> CostReport:
    """Build d output / d inputs both ways and compare what each mode cost.

    The counting runs (rule evaluations, bytes) are separate from the timed
    runs, which build no steps and are repeated ``repeats`` times (best kept).
    ``kept``: saved values a script's own ``backward()`` freed (``keep_saved``).
    """
    inputs = list(inputs)
    _check(output, inputs)
    directions = _directions(inputs)
    n, m = len(directions), output.data.size

    columns, f_evaluations, f_peak = [], 0, 0
    for x, k in directions:
        column, evaluations, peak = _forward_column(output, x, k, count=True)
        columns.append(column)
        f_evaluations += evaluations
        f_peak = max(f_peak, peak)
    forward_jacobian = np.stack(columns, axis=1) if columns else np.zeros((m, 0))

    rows, r_evaluations, r_peak = [], 0, 0
    for i in range(m):
        row, evaluations, peak = _reverse_row(output, inputs, i, count=True, kept=kept)
        rows.append(row)
        r_evaluations += evaluations
        r_peak = max(r_peak, peak)
    reverse_jacobian = np.stack(rows, axis=0)
    saved = saved_bytes(output, kept)

    f_seconds = _timed(lambda: [_forward_column(output, x, k, count=False)
                                for x, k in directions], repeats)
    r_seconds = _timed(lambda: [_reverse_row(output, inputs, i, count=False, kept=kept)
                                for i in range(m)], repeats)

    difference = float(np.max(np.abs(forward_jacobian - reverse_jacobian), initial=0.0))
    scale = float(np.max(np.abs(reverse_jacobian), initial=0.0))
    tolerance = 1e-6 + (1e-5 if output.dtype == np.float64 else 1e-4) * scale
    forward = ModeCost("forward", n, f_evaluations, f_peak, 0, f_seconds, forward_jacobian)
    reverse = ModeCost("reverse", m, r_evaluations, saved + r_peak, saved, r_seconds,
                       reverse_jacobian)
    cheaper, reason = _verdict(n, m, forward, reverse)
    return CostReport(n, m, forward, reverse, difference, difference <= tolerance, cheaper, reason)


def _verdict(n: int, m: int, forward: ModeCost, reverse: ModeCost) -> tuple[str, str]:
    """Which mode is cheaper here, by the sweeps each needs, with the measured times."""
    times = (f"(measured: forward {format_seconds(forward.seconds)}, "
             f"reverse {format_seconds(reverse.seconds)})")
    if max(n, m) <= 1.25 * min(n, m):
        return "even", (f"about even: n = {plural(n, 'input')} and m = {plural(m, 'output')} "
                        f"are close, so forward mode's {plural(n, 'sweep')} and reverse mode's "
                        f"{plural(m, 'pass', 'passes')} cost alike {times}")
    if m < n:
        return "reverse", (f"reverse is cheaper here: one pass per output gives every input's "
                           f"derivative, so m = {plural(m, 'pass', 'passes')} against forward "
                           f"mode's n = {n} sweeps, one per input {times}")
    return "forward", (f"forward is cheaper here: one sweep per input gives every output's "
                       f"derivative, so n = {plural(n, 'sweep')} against reverse "
                       f"mode's m = {m} passes, one per output {times}")


def time_against_n(output: Tensor, inputs: Sequence[Tensor], points: int = 12,
                   repeats: int = 3, kept: Mapping[int, Any] | None = None
                   ) -> tuple[list[int], list[float], float]:
    """Measured time to get the derivatives along the first k input components, for k up to n.

    Forward mode needs k sweeps; reverse mode's m passes give all n components at
    once, whatever k.  Returns (ks, forward seconds for each k, reverse seconds).
    """
    inputs = list(inputs)
    _check(output, inputs)
    directions = _directions(inputs)
    n, m = len(directions), output.data.size
    ks = sorted({max(1, round(v)) for v in np.geomspace(1, n, num=min(points, n))})
    forward = [_timed(lambda k=k: [_forward_column(output, x, j, count=False)
                                   for x, j in directions[:k]], repeats) for k in ks]
    reverse = _timed(lambda: [_reverse_row(output, inputs, i, count=False, kept=kept)
                              for i in range(m)], repeats)
    return ks, forward, reverse


def format_seconds(s: float) -> str:
    """A duration as a person reads it: 1.23 s, 4.5 ms, 78 µs."""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


