"""Forward accumulation: tangents pushed through the tape, one input direction per sweep.

:class:`ForwardSweep` is the forward-mode algorithm as a stream of steps (the
debugger shows tangents flowing forward with it); :func:`jvp` runs one to the
end, like ``torch.func.jvp``.  As the lesson notes, forward mode needs a full
sweep per input direction, while reverse mode gets every input's gradient in one.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from gradviz.engine.tape import ancestors
from gradviz.engine.backward import PassMode
from gradviz.engine.tensor import Tensor, as_tensor, promote
from gradviz.errors import AutogradError, ShapeError
from gradviz.ops import fit_shape


@dataclass(frozen=True)
class ForwardStep:
    """One node of a forward sweep.

    Attributes:
        index: position in the sweep.
        node: the node reached.
        tangent: d(node)/d(direction), the sum of the contributions.
        contributions: ``(input, value)`` per input; None where no tangent flows.
    """

    index: int
    node: Tensor
    tangent: Any
    contributions: tuple


class ForwardSweep:
    """Push ``tangents`` (``{input: tangent}``) forward through the nodes that make ``outputs``."""

    def __init__(self, outputs: Tensor | Sequence[Tensor], tangents: Mapping[Tensor, Any]) -> None:
        outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        self.outputs = outs
        self.seeds = {}
        for x, t in tangents.items():
            t = np.asarray(t.data if isinstance(t, Tensor) else t, dtype=x.dtype)
            if t.shape != x.data.shape:
                raise ShapeError(f"jvp: tangent of shape {tuple(t.shape)} does not match its "
                                 f"primal of shape {tuple(x.data.shape)}")
            self.seeds[id(x)] = (x, t)
        nodes = sorted(ancestors(outs), key=attrgetter("seq"))
        live = set(self.seeds)
        self.order: list[Tensor] = []
        for n in nodes:  # keep the nodes that depend on a seeded input
            if id(n) in live or (not n.is_leaf and n.op.differentiable
                                 and any(id(x) in live for x in n.inputs)):
                live.add(id(n))
                self.order.append(n)
        self.tangents: dict[int, Any] = {}

    def tangent_of(self, node: Tensor) -> Any:
        """The node's tangent so far (None: not reached, i.e. zero)."""
        return self.tangents.get(id(node))

    def __iter__(self) -> Iterator[ForwardStep]:
        return self._sweep(emit=True)

    def run(self) -> "ForwardSweep":
        """Run the sweep to the end (what :func:`jvp` does), building no steps."""
        for _ in self._sweep(emit=False):
            pass
        return self

    def _sweep(self, emit: bool) -> Iterator[ForwardStep]:
        tangents = self.tangents
        inside = PassMode(grad_enabled=False)
        inside.enter()
        try:
            for index, n in enumerate(self.order):
                seeded = self.seeds.get(id(n))
                if seeded is not None:
                    tangents[id(n)] = seeded[1]
                    step = ForwardStep(index, n, seeded[1], ())
                else:
                    step = self._advance(index, n)
                if emit:
                    inside.leave()  # the caller runs between steps, in its own modes
                    try:
                        yield step
                    finally:
                        inside.enter()
        finally:
            inside.leave()

    def _advance(self, index: int, n: Tensor) -> ForwardStep:
        """Push the tangents of ``n``'s inputs through its op's JVP rules."""
        tangents = self.tangents
        op = n.op
        # The arrays the forward pass computed with (integers promoted as record() does).
        saved = op.pick_saved(promote([x.data for x in n.inputs]), n.data)
        total = None
        contributions = []
        for i, x in enumerate(n.inputs):
            t = tangents.get(id(x))
            rule = op.jvp(i) if t is not None else None
            if rule is None:
                contributions.append((x, None))
                continue
            c = rule(t, *saved, **n.params)
            if c.shape != n.data.shape:
                c = fit_shape(c, n.data.shape)
            contributions.append((x, c))
            total = c if total is None else total + c
        if total is None:
            raise AutogradError(f"op {op.name!r} has no forward-mode (JVP) rule")
        tangents[id(n)] = total
        return ForwardStep(index, n, total, tuple(contributions))


def jvp(func: Callable[..., Tensor], primals: Sequence[Any], tangents: Sequence[Any]
        ) -> tuple[Tensor, Tensor]:
    """``(func(*primals), J·tangents)`` in one forward sweep, as ``torch.func.jvp`` returns.

    ``primals`` and ``tangents`` are tuples of the same length and shapes.
    """
    primals = tuple(primals)
    tangents = tuple(tangents)
    if len(primals) != len(tangents):
        raise ShapeError(f"jvp: expected as many tangents as primals, got {len(tangents)} "
                         f"and {len(primals)}")
    leaves = []
    for p in primals:
        p = as_tensor(p)
        if p.dtype.kind not in "fc":
            raise AutogradError("jvp: primals must be floating point tensors")
        leaves.append(Tensor(p.data, requires_grad=True, dtype=p.dtype))
    out = func(*leaves)
    if not isinstance(out, Tensor):
        raise AutogradError("jvp: the function must return a Tensor")
    sweep = ForwardSweep(out, dict(zip(leaves, tangents))).run()
    t = sweep.tangent_of(out)
    if t is None:
        t = np.zeros_like(out.data)
    return Tensor(out.data, dtype=out.dtype), Tensor(np.asarray(t), dtype=out.dtype)
