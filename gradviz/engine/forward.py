"""Forward accumulation: tangents pushed through the tape, one input direction per sweep.

:class:`ForwardSweep` is the forward-mode algorithm as a stream of steps (the
debugger shows tangents flowing forward with it); :func:`jvp` runs one to the
end, like ``torch.func.jvp``.  As the lesson notes, forward mode needs a full
sweep per input direction, while reverse mode gets every input's gradient in one.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from gradviz.engine.backward import Edge, PassMode
from gradviz.engine.shapes import fit_shape
from gradviz.engine.tape import ancestors, prune_reason
from gradviz.engine.tensor import Tensor, as_tensor, promote
from gradviz.errors import AutogradError, ShapeError


class ForwardStep(NamedTuple):
    """One node of a forward sweep: the reverse :class:`Step`'s counterpart.

    Attributes:
        index: the step's number in the sweep, 0, 1, 2, ... with no gaps.
        node: the node reached.
        tangent: d(node)/d(direction), the sum of what its edges carried.
        edges: one :class:`Edge` per input (``local``: the JVP rule's result,
            ``value``: fitted to the node's shape; None where no tangent flows).
        seeded: the node is a seeded input (its tangent is the direction itself).
    """

    index: int
    node: Tensor
    tangent: Any
    edges: tuple
    seeded: bool = False

    @property
    def contributions(self) -> tuple:
        """``(input, value)`` per input: the tangent it sent, or None."""
        return tuple((e.input, e.value) for e in self.edges)


NOT_DOWNSTREAM = "does not depend on the inputs whose tangents are pushed"


class ForwardSweep:
    """Push ``tangents`` (``{input: tangent}``) forward through the nodes that make ``outputs``.

    Each iteration is a sweep of its own with its own tangents; ``tangent_of``
    reports the latest.
    """

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
        self._skipped: dict[Tensor, str] = {}
        for n in nodes:  # keep the nodes that depend on a seeded input
            if id(n) in live or (not n.is_leaf and n.op.differentiable
                                 and any(id(x) in live for x in n.inputs)):
                live.add(id(n))
                self.order.append(n)
            else:
                self._skipped[n] = prune_reason(n) or NOT_DOWNSTREAM
        self.tangents: dict[int, Any] = {}

    def tangent_of(self, node: Tensor) -> Any:
        """The node's tangent so far in the latest sweep (None: not reached, i.e. zero)."""
        return self.tangents.get(id(node))

    def pruned(self) -> dict[Tensor, str]:
        """The nodes below the outputs that no tangent reaches, with the reason."""
        return dict(self._skipped)

    def __iter__(self) -> Iterator[ForwardStep]:
        return self._sweep(emit=True)

    def run(self) -> "ForwardSweep":
        """Run the sweep to the end (what :func:`jvp` does), building no steps."""
        for _ in self._sweep(emit=False):
            pass
        return self

    def _sweep(self, emit: bool) -> Iterator[ForwardStep]:
        tangents: dict[int, Any] = {}  # this sweep's own: two iterators do not mix
        self.tangents = tangents
        inside = PassMode(grad_enabled=False)
        inside.enter()
        try:
            for index, n in enumerate(self.order):
                seeded = self.seeds.get(id(n))
                if seeded is not None:
                    tangents[id(n)] = seeded[1]
                    step = ForwardStep(index, n, seeded[1], (), True)
                else:
                    step = self._advance(index, n, tangents)
                if emit:
                    inside.leave()  # the caller runs between steps, in its own modes
                    try:
                        yield step
                    finally:
                        inside.enter()
        finally:
            inside.leave()

    @staticmethod
    def _advance(index: int, n: Tensor, tangents: dict[int, Any]) -> ForwardStep:
        """Push the tangents of ``n``'s inputs through its op's JVP rules."""
        op = n.op
        # The arrays the forward pass computed with (integers promoted as record() does).
        saved = op.pick_saved(promote([x.data for x in n.inputs]), n.data)
        total = None
        edges = []
        for i, x in enumerate(n.inputs):
            t = tangents.get(id(x))
            rule = op.jvp(i) if t is not None else None
            if rule is None:
                why = None if t is not None else (prune_reason(x) or NOT_DOWNSTREAM)
                if t is not None:
                    why = f"{op.name}() has no forward-mode (JVP) rule"
                edges.append(Edge(i, x, None, None, why))
                continue
            local = c = rule(t, *saved, **n.params)
            if c.shape != n.data.shape:
                c = fit_shape(c, n.data.shape)
            edges.append(Edge(i, x, local, c, None))
            total = c if total is None else total + c
        if total is None:
            raise AutogradError(f"op {op.name!r} has no forward-mode (JVP) rule")
        tangents[id(n)] = total
        return ForwardStep(index, n, total, tuple(edges))


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
