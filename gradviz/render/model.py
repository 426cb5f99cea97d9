"""What a diagram shows, read off the tape and one backward pass.

:func:`build_view` turns a :class:`~gradviz.engine.tape.Tape` plus the steps
of a :class:`~gradviz.engine.backward.BackwardPass` into plain records (nodes
with value, adjoint and status; edges with the contribution that flowed along
them).  It computes no derivative: adjoints and contributions are the
engine's, taken from the steps.  Rolling repeated runs of an op into one
node, and eliding what does not fit, also happen here, so every output
format (DOT, SVG, JSON) shows the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from gradviz.engine.backward import Step
from gradviz.engine.tape import Tape, prune_reason
from gradviz.engine.tensor import Tensor
from gradviz.render.values import format_array

# Node kinds, each with its own style and legend entry.
LEAF, CONSTANT, OP, OUTPUT, PRUNED = "leaf", "constant", "op", "output", "pruned"


@dataclass
class NodeView:
    """One box of the diagram.

    ``adjoint`` is None when no gradient reached the node; ``reason`` says why
    (pruned branch, not requested, not reached).
    """

    id: str
    name: str
    kind: str
    formula: str
    grad_fn: str
    value: np.ndarray
    adjoint: Any
    reason: str | None
    nodes: list[Tensor]
    repeat: int = 1

    @property
    def tensor(self) -> Tensor:
        """The tensor whose value and adjoint the box shows (the last of a rolled run)."""
        return self.nodes[-1]


@dataclass
class EdgeView:
    """An input edge ``src -> dst``: what flowed back along it, or None if pruned."""

    src: str
    dst: str
    slot: int
    contribution: Any
    pruned: bool
    cut: bool
    input_shape: tuple
    output_shape: tuple


@dataclass
class GraphView:
    nodes: list[NodeView]
    edges: list[EdgeView]
    notes: list[str] = field(default_factory=list)


def _formula(node: Tensor, names: dict[int, str]) -> str:
    """``x * x`` or ``sum(z, axis=0)``: the op written with its inputs' names."""
    if node.op is None or node.is_leaf and node.requires_grad:
        return ""
    return node.op.format([names.get(id(x)) or _const_text(x) for x in node.inputs], node.params)


def _const_text(t: Tensor) -> str:
    return format_array(t.data, 4) if t.data.ndim == 0 else "const"


def build_view(tape: Tape, steps: Sequence[Step] | None, pruned: dict[Tensor, str] | None = None,
               *, roll: bool = False, max_nodes: int = 400, adjoints: bool = True) -> GraphView:
    """Describe ``tape`` for drawing, with adjoints and contributions from ``steps``.

    With ``steps`` None, each node's ``adjoint`` from the most recent backward
    pass is shown and edges carry no contribution.  With ``adjoints`` False
    (structure and values views) only structural pruning is shown.
    """
    pruned = pruned or {}
    outputs = {id(o) for o in tape.outputs}
    contributions: dict[tuple[int, int], Any] = {}
    reached: dict[int, Any] = {}  # node id -> its adjoint in the steps' pass
    if steps is not None:
        for step in steps:
            reached[id(step.node)] = step.adjoint
            for slot, (x, c) in enumerate(step.contributions):
                contributions[(id(step.node), slot)] = c
    # Scalar constants (the 2 in a * 2) read better inside the formula than as boxes.
    folded = {id(n) for n in tape.nodes
              if n.op is None and not n.requires_grad and n.data.ndim == 0 and n.label is None
              and id(n) not in outputs}
    names = {id(n): tape.name(n) for n in tape.nodes if id(n) not in folded}

    groups = _roll_runs(tape, folded) if roll else [[n] for n in tape.nodes if id(n) not in folded]
    notes: list[str] = []
    if len(groups) > max_nodes and not roll:
        groups = _roll_runs(tape, folded)
        notes.append(f"{len(tape.nodes)} nodes: repeated runs of an op rolled into one box "
                     f"(more than --max-nodes={max_nodes})")
    dropped = 0
    if len(groups) > max_nodes:
        dropped = len(groups) - max_nodes
        groups = groups[dropped:]
        notes.append(f"{dropped} earlier boxes not shown (more than --max-nodes={max_nodes})")

    member: dict[int, str] = {}
    nodes: list[NodeView] = []
    for group in groups:
        last = group[-1]
        gid = tape.id(group[0]) if len(group) == 1 else f"{tape.id(group[0])}-{tape.id(last)}"
        for n in group:
            member[id(n)] = gid
        kind, reason = _kind(last, outputs, pruned, reached, steps is not None, adjoints)
        formula = _formula(group[0], names) if len(group) == 1 else \
            f"{_formula(group[0], names)} … ×{len(group)}"
        grad_fn = "" if last.op is None else last.op.backward_name(last)
        if last.is_leaf and last.requires_grad:
            grad_fn = "AccumulateGrad"
        adjoint = None
        if reason is None and adjoints:
            adjoint = reached.get(id(last)) if steps is not None else last.adjoint
        nodes.append(NodeView(gid, tape.name(last),
                              kind, formula, grad_fn, last.data, adjoint, reason, group,
                              len(group)))

    edges: list[EdgeView] = []
    for view in nodes:
        inside = {id(n) for n in view.nodes}
        for n in view.nodes:
            for slot, x in enumerate(n.inputs):
                if id(x) in inside or id(x) in folded or id(x) not in member:
                    continue
                c = contributions.get((id(n), slot))
                cut = n.op is not None and not n.op.differentiable
                # Without steps (graph already freed) a missing contribution is not pruning.
                no_flow = cut or prune_reason(x) is not None or (
                    steps is not None and c is None)
                edges.append(EdgeView(member[id(x)], view.id, slot, c,
                                      pruned=no_flow, cut=cut,
                                      input_shape=tuple(x.data.shape),
                                      output_shape=tuple(n.data.shape)))
    return GraphView(nodes, edges, notes)


def _kind(n: Tensor, outputs: set[int], pruned: dict[Tensor, str], reached: dict[int, Any],
          have_steps: bool, adjoints: bool) -> tuple[str, str | None]:
    reason = pruned.get(n)
    if reason is None and not n.requires_grad:
        reason = prune_reason(n)
    if reason is None and adjoints and have_steps and id(n) not in reached:
        reason = "not reached by this backward pass"
    if reason is None and adjoints and not have_steps and n.adjoint is None:
        reason = "no adjoint: not reached by the last backward pass"
    if id(n) in outputs:
        return OUTPUT, reason
    if reason is not None:
        return (CONSTANT if n.op is None and not n.requires_grad else PRUNED), reason
    return (LEAF if n.is_leaf else OP), None


def _roll_runs(tape: Tape, folded: set[int]) -> list[list[Tensor]]:
    """Group chains of the same op (``b = b * 2`` ten times) into runs, in tape order.

    A node joins the run of its input when both have the same op and params,
    the input feeds nothing else, and every other input is a folded scalar constant.
    """
    consumers = tape.consumers()
    run_of: dict[int, list[Tensor]] = {}
    groups: list[list[Tensor]] = []
    for n in tape.nodes:
        if id(n) in folded:
            continue
        prev = None
        if n.op is not None:
            chain = [x for x in n.inputs if id(x) not in folded]
            if len(chain) == 1:
                x = chain[0]
                if x.op is n.op and _same_params(x, n) and len(consumers[id(x)]) == 1 \
                        and id(x) in run_of and not x.label and \
                        _same_constants(x, n, folded):
                    prev = run_of[id(x)]
        if prev is not None:
            prev.append(n)
            run_of[id(n)] = prev
        else:
            group = [n]
            groups.append(group)
            run_of[id(n)] = group
    return groups


def _same_params(a: Tensor, b: Tensor) -> bool:
    # repr, not ==: params may hold arrays (fancy indices), whose == is elementwise.
    return a.params is b.params or repr(a.params) == repr(b.params)


def _same_constants(a: Tensor, b: Tensor, folded: set[int]) -> bool:
    ca = [x.data.item() for x in a.inputs if id(x) in folded]
    cb = [x.data.item() for x in b.inputs if id(x) in folded]
    return ca == cb


def view_rows(views: Iterable[NodeView]) -> list[dict[str, Any]]:
    """The nodes as plain dicts (for JSON and tests)."""
    from gradviz.render.values import format_array
    return [{"id": v.id, "name": v.name, "kind": v.kind, "formula": v.formula,
             "grad_fn": v.grad_fn, "shape": list(np.shape(v.value)),
             "value": format_array(v.value),
             "adjoint": None if v.adjoint is None else format_array(np.asarray(v.adjoint)),
             "reason": v.reason, "repeat": v.repeat} for v in views]
