"""The tape: the nodes that made an output, in execution order (a Wengert list).

Every operation records its result as a node (see :class:`~gradviz.engine.tensor.Tensor`);
:class:`Tape` gathers the nodes an output depends on, orders them as they
ran, and numbers them ``v0, v1, ...``.  The renderer and the stepper read a
Tape and nothing else.  All walks here are iterative: a chain of 100,000 ops
is as safe as a chain of three.
"""

from __future__ import annotations

import itertools
from operator import attrgetter
from typing import Iterable, Iterator, Sequence

from gradviz.engine.tensor import Tensor

_by_seq = attrgetter("seq")


def ancestors(outputs: Iterable[Tensor], grad_only: bool = False) -> list[Tensor]:
    """Every node reachable from ``outputs`` through inputs, unordered.

    With ``grad_only``, only the nodes a backward pass walks: those that require
    grad, not looking past leaves.  Iterative, so depth is no limit.  Nodes are
    marked with this walk's own number rather than put in a set, which saves a
    lookup per node: the backward pass runs this on every call.
    """
    mark = next(_walks)
    found: list[Tensor] = []
    stack = [o for o in outputs if o.requires_grad or not grad_only]
    while stack:
        n = stack.pop()
        if n._mark == mark:
            continue
        n._mark = mark
        found.append(n)
        if grad_only:
            if not n.is_leaf:
                for x in n.inputs:
                    if x.requires_grad and x._mark != mark:
                        stack.append(x)
        else:
            for x in n.inputs:
                if x._mark != mark:
                    stack.append(x)
    return found


_walks = itertools.count(1)


def prune_reason(node: Tensor) -> str | None:
    """Why no gradient flows into ``node`` (None if one can)."""
    if node.requires_grad:
        return None
    if node.op is None:
        return "constant: does not require grad"
    if not node.op.differentiable:
        return f"{node.op.name}() passes no gradient: the branch below it is cut"
    if node.made_without_grad:
        return "made under no_grad(): not recorded for gradients"
    return "computed from constants only: nothing below it requires grad"


class Tape:
    """The recorded computation behind one or more outputs.

    Attributes:
        outputs: the tensors the tape was taken for.
        nodes: every node they depend on, in execution order (inputs first).
    """

    def __init__(self, outputs: Tensor | Sequence[Tensor]) -> None:
        outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        self.outputs: list[Tensor] = outs
        self.nodes: list[Tensor] = sorted(ancestors(outs), key=_by_seq)
        self._ids = {id(n): i for i, n in enumerate(self.nodes)}

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self.nodes)

    def __contains__(self, node: object) -> bool:
        return id(node) in self._ids

    def id(self, node: Tensor) -> str:
        """The node's stable id on this tape: ``v0`` is the first value made."""
        return f"v{self._ids[id(node)]}"

    def index(self, node: Tensor) -> int:
        return self._ids[id(node)]

    def name(self, node: Tensor) -> str:
        """The user's label if it has one, else the id."""
        return node.label or self.id(node)

    def consumers(self) -> dict[int, list[Tensor]]:
        """For each node (by ``id()``), the nodes that take it as an input."""
        out: dict[int, list[Tensor]] = {id(n): [] for n in self.nodes}
        for n in self.nodes:
            for x in n.inputs:
                out[id(x)].append(n)
        return out

    def label_from(self, names: dict[str, Tensor]) -> None:
        """Label nodes from a ``{name: tensor}`` mapping (e.g. a script's globals)."""
        for key, value in names.items():
            if isinstance(value, Tensor) and value in self and value.label is None \
                    and not key.startswith("_"):
                value.label = key

    # ``_repr_svg_`` (notebook display) is attached by gradviz.render: the engine draws nothing.

    def __repr__(self) -> str:
        return f"<Tape of {len(self.nodes)} nodes>"
