"""What a diagram shows, read off the tape and one backward pass.

:func:`build_view` turns a :class:`~gradviz.engine.tape.Tape` plus the state
of one :class:`~gradviz.engine.backward.BackwardPass` as of a step
(:class:`PassState`) into plain records (nodes with value, adjoint and status;
edges with the contribution that flowed along them).  It computes no
derivative: adjoints and contributions are the engine's, taken from the steps.  Rolling repeated runs of an op into one
node, and eliding what does not fit, also happen here, so every output
format (DOT, SVG, JSON) shows the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from gradviz.engine.backward import Step
from gradviz.engine.tape import Tape, prune_reason
from gradviz.engine.tensor import Tensor
from gradviz.render.values import format_array

# Node kinds, each with its own style and legend entry.
LEAF, CONSTANT, OP, OUTPUT, PRUNED = "leaf", "constant", "op", "output", "pruned"
ELIDED = "elided"      # the one box standing for nodes left out of a large graph
ELIDED_ID = "elided"

# Where a node stands in the backward pass as of a step (the stepper and its frames).
DONE, CURRENT, PENDING, WAITING = "done", "current", "pending", "waiting"
# Where an edge stands: it carried its contribution, or it will, or it never does.
FLOWED, UNFLOWED = "flowed", "unflowed"
NODE_STATES = (DONE, CURRENT, PENDING, WAITING)


@dataclass
class PassState:
    """What one backward pass knows as of one of its steps; :func:`build_view` draws it.

    Attributes:
        adjoints: node id -> adjoint: complete for visited nodes, partial for pending ones.
        done: ids of the visited nodes (including the current one).
        current: the id of the node visited at this step (None: before the first
            step, or the pass has finished).
        flowed: (node id, input slot) -> the contribution that flowed along that edge.
        carries: the (node id, input slot) of every edge the whole pass sends a
            contribution along; the others are pruned.
        pruned: the nodes no gradient reaches in this pass, with the reason.
        finished: every step has run: nodes show no step state.
        unavailable: why no pass could be run for this drawing (None: it was run).
    """

    adjoints: dict[int, Any] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    current: int | None = None
    flowed: dict[tuple[int, int], Any] = field(default_factory=dict)
    carries: set[tuple[int, int]] = field(default_factory=set)
    pruned: dict[Tensor, str] = field(default_factory=dict)
    finished: bool = True
    unavailable: str | None = None

    @classmethod
    def after(cls, steps: Sequence[Step], pruned: dict[Tensor, str], k: int | None = None,
              adjoints: dict[int, Any] | None = None) -> "PassState":
        """The state after step ``k`` of ``steps`` (None: after the last one).

        ``adjoints`` (the pass's history as of step k) adds the partial adjoints
        of pending nodes; without it only visited nodes show one.
        """
        last = len(steps) - 1 if k is None else k
        state = cls(pruned=pruned, finished=k is None)
        for i, step in enumerate(steps):
            for e in step.edges:
                if e.value is not None:
                    state.carries.add((id(step.node), e.slot))
                    if i <= last:
                        state.flowed[(id(step.node), e.slot)] = e.value
            if i <= last:
                state.done.add(id(step.node))
                state.adjoints[id(step.node)] = step.adjoint
        if adjoints is not None:
            for key, a in adjoints.items():
                state.adjoints.setdefault(key, a)
        if not state.finished and 0 <= last < len(steps):
            state.current = id(steps[last].node)
        return state


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
    state: str | None = None   # DONE, CURRENT, PENDING (adjoint partial), WAITING; None: finished


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
    count: int = 1           # >1: several edges into a rolled box, contributions summed
    state: str | None = None  # FLOWED or UNFLOWED while a pass is under way; None: finished


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


def _run_formula(group: list[Tensor], period: int, names: dict[int, str]) -> str:
    """A rolled run: ``b * 2 … ×11``, or ``[· + 0.001 → · * 1.01 → tanh(·)] ×1000``."""
    if period == 1:
        return f"{_formula(group[0], names)} … ×{len(group)}"
    steps = []
    for i, n in enumerate(group[:period]):
        link = group[i - 1] if i else None
        slot = chain_slot(n, link) if link is not None else chain_slot(group[period], group[period - 1])
        args = ["·" if k == slot else names.get(id(x)) or _const_text(x)
                for k, x in enumerate(n.inputs)]
        steps.append(n.op.format(args, n.params))
    return f"[{' → '.join(steps)}] ×{len(group) // period}"


def _const_text(t: Tensor) -> str:
    return format_array(t.data, 4) if t.data.ndim == 0 else "const"


def build_view(tape: Tape, state: PassState | None, *, roll: bool = False,
               max_nodes: int = 400, adjoints: bool = True) -> GraphView:
    """Describe ``tape`` for drawing, with adjoints and contributions from one pass's ``state``.

    ``state`` None: no pass (structure and values views, or an output that
    requires no grad); only structural pruning is shown.  With ``adjoints``
    False (structure and values views) no adjoint is shown.
    """
    pruned = state.pruned if state is not None else {}
    outputs = {id(o) for o in tape.outputs}
    contributions = state.flowed if state is not None else {}
    reached = state.adjoints if state is not None else {}
    stepping = state is not None and not state.finished
    # Scalar constants (the 2 in a * 2) read better inside the formula than as boxes.
    folded = {id(n) for n in tape.nodes
              if n.op is None and not n.requires_grad and n.data.ndim == 0 and n.label is None
              and id(n) not in outputs}
    names = {id(n): tape.name(n) for n in tape.nodes if id(n) not in folded}

    periods: dict[int, int] = {}
    if roll:
        groups, periods = _roll_runs(tape, folded)
    else:
        groups = [[n] for n in tape.nodes if id(n) not in folded]
    notes: list[str] = []
    if len(groups) > max_nodes and not roll:
        before = len(groups)
        groups, periods = _roll_runs(tape, folded)
        if len(groups) < before:
            notes.append(f"{before} boxes: repeated runs of ops rolled into one box each "
                         f"(more than --max-nodes={max_nodes})")
    elided: list[Tensor] = []
    if len(groups) > max_nodes:
        groups, elided = _trim(groups, max_nodes)
    if elided:
        notes.append(f"{len(elided)} earlier nodes not shown, in the box marked … "
                     f"(more than --max-nodes={max_nodes})")

    member: dict[int, str] = {id(n): ELIDED_ID for n in elided}
    nodes: list[NodeView] = []
    if elided:
        nodes.append(NodeView(ELIDED_ID, "…", ELIDED, f"{len(elided)} nodes not shown", "",
                              elided[-1].data, None, "not drawn: above --max-nodes", elided,
                              len(elided)))
    for group in groups:
        last = group[-1]
        gid = tape.id(group[0]) if len(group) == 1 else f"{tape.id(group[0])}-{tape.id(last)}"
        for n in group:
            member[id(n)] = gid
        kind, reason = _kind(last, outputs, state, adjoints)
        formula = _formula(group[0], names) if len(group) == 1 else \
            _run_formula(group, periods.get(id(group[0]), 1), names)
        grad_fn = "" if last.op is None else last.op.backward_name(last)
        if last.is_leaf and last.requires_grad:
            grad_fn = "AccumulateGrad"
        adjoint = None
        node_state = None
        if reason is None and adjoints:
            # A rolled box shows its last node's adjoint: the one the chain's output sees.
            adjoint = reached.get(id(last))
            if stepping:
                node_state = _node_state(group, state)
        nodes.append(NodeView(gid, tape.name(last),
                              kind, formula, grad_fn, last.data, adjoint, reason, group,
                              len(group), node_state))

    edges: list[EdgeView] = []
    merged: dict[tuple[str, str], EdgeView] = {}  # edges into rolled boxes, one per pair
    for view in nodes:
        inside = {id(n) for n in view.nodes}
        for n in view.nodes:
            for slot, x in enumerate(n.inputs):
                if id(x) in inside or id(x) in folded or id(x) not in member:
                    continue
                src = member[id(x)]
                c = contributions.get((id(n), slot))
                cut = n.op is not None and not n.op.differentiable
                no_flow = cut or prune_reason(x) is not None or (
                    state is not None and state.unavailable is None
                    and (id(n), slot) not in state.carries and ELIDED_ID not in (src, view.id))
                edge = EdgeView(src, view.id, slot, c, pruned=no_flow, cut=cut,
                                input_shape=tuple(x.data.shape),
                                output_shape=tuple(n.data.shape),
                                state=None if not stepping or no_flow else
                                FLOWED if c is not None else UNFLOWED)
                if len(view.nodes) == 1 and src != ELIDED_ID:
                    edges.append(edge)
                    continue
                # A rolled (or …) box gets one edge per source: a shared weight read by
                # every step of a loop sends it the sum of what flowed back each time.
                same = merged.get((src, view.id))
                if same is None:
                    merged[(src, view.id)] = edge
                    edges.append(edge)
                else:
                    same.count += 1
                    same.contribution = None if same.contribution is None or c is None \
                        else same.contribution + c
                    if same.state is not None and c is None:
                        same.state = UNFLOWED
    for edge in merged.values():
        if ELIDED_ID in (edge.src, edge.dst):
            edge.contribution = None  # stands for edges the diagram does not show
    return GraphView(nodes, edges, notes)


def _trim(groups: list[list[Tensor]], max_nodes: int) -> tuple[list[list[Tensor]], list[Tensor]]:
    """Keep the boxes nearest the output and the inputs; the rest go into one … box.

    Returns the kept groups (tape order) and the nodes left out.
    """
    # Inputs get up to a quarter of the boxes; one box is the …; the rest go to the output side.
    leaves = set([id(g[0]) for g in groups if g[0].op is None][: max_nodes // 4])
    room = max(1, max_nodes - len(leaves) - 1)
    body = [g for g in groups if id(g[0]) not in leaves]
    keep = {id(g[0]) for g in body[-room:]} | leaves
    elided = [n for g in groups if id(g[0]) not in keep for n in g]
    return [g for g in groups if id(g[0]) in keep], elided


def _kind(n: Tensor, outputs: set[int], state: PassState | None, adjoints: bool
          ) -> tuple[str, str | None]:
    reason = state.pruned.get(n) if state is not None else None
    if reason is None and not n.requires_grad:
        reason = prune_reason(n)
    if reason is None and adjoints and state is not None and state.unavailable:
        reason = state.unavailable
    if id(n) in outputs:
        return OUTPUT, reason
    if reason is not None:
        return (CONSTANT if n.op is None and not n.requires_grad else PRUNED), reason
    return (LEAF if n.is_leaf else OP), None


def _node_state(group: list[Tensor], state: PassState) -> str:
    """Where a box stands in a pass under way (a rolled box: its most advanced member)."""
    ids = [id(n) for n in group]
    if state.current in ids:
        return CURRENT
    if all(i in state.done for i in ids):
        return DONE
    if any(i in state.adjoints for i in ids):
        return PENDING
    return WAITING


def _roll_runs(tape: Tape, folded: set[int]) -> tuple[list[list[Tensor]], dict[int, int]]:
    """Group repeated runs of a chain into boxes, in tape order.

    A *chain* links a node to its one input that is an op result used by
    nothing else (other inputs may be leaves, such as a shared weight, or
    folded scalar constants).  Along a chain, a block of 1 to 4 ops repeated
    back to back (the lesson's ``b = b * 2``, or ``y = tanh(y * w) + b`` in a
    loop) becomes one box.  Returns the groups and, for each rolled one (by the
    id of its first node), the length of its repeated block.
    """
    consumers = tape.consumers()
    previous: dict[int, Tensor] = {}  # node -> the node before it in its chain
    for n in tape.nodes:
        if n.op is None or id(n) in folded:
            continue
        links = [x for x in n.inputs if x.op is not None and id(x) not in folded]
        if len(links) == 1 and len(consumers[id(links[0])]) == 1 and not links[0].label:
            previous[id(n)] = links[0]
    following = {id(prev): n for n in tape.nodes if id(n) in previous
                 for prev in (previous[id(n)],)}
    start_of: dict[int, list[Tensor]] = {}  # first node of a group -> the group
    periods: dict[int, int] = {}
    inside: set[int] = set()
    for n in tape.nodes:
        if id(n) in folded or id(n) in previous or id(n) not in following:
            continue
        chain = [n]  # n starts a chain: follow it forward
        while id(chain[-1]) in following:
            chain.append(following[id(chain[-1])])
        for group, period in _repeats(chain, folded):
            start_of[id(group[0])] = group
            periods[id(group[0])] = period
            inside.update(id(m) for m in group[1:])
    groups = []
    for n in tape.nodes:
        if id(n) in folded or id(n) in inside:
            continue
        groups.append(start_of.get(id(n), [n]))
    return groups, periods


def _signature(n: Tensor, link_slot: int, folded: set[int]) -> tuple:
    """What makes two chain steps the same: op, params, constants, and the leaves they read.

    The input in ``link_slot`` is the chain itself (the previous step) and is left out.
    """
    return (n.op, repr(n.params), link_slot,
            tuple(x.data.item() if id(x) in folded else id(x)
                  for k, x in enumerate(n.inputs) if x.op is None and k != link_slot))


def chain_slot(n: Tensor, previous: Tensor | None) -> int:
    """Which input of ``n`` carries the chain (-1 if none)."""
    for k, x in enumerate(n.inputs):
        if x is previous:
            return k
    return -1


def _repeats(chain: list[Tensor], folded: set[int], longest: int = 4
             ) -> list[tuple[list[Tensor], int]]:
    """Split ``chain`` into (group, block length): blocks of up to ``longest`` ops repeated
    twice or more, and single nodes."""
    # Which input carries the chain, for every node after the first.
    slots = [chain_slot(n, prev) for prev, n in zip(chain, chain[1:])]
    sigs: list[tuple | None] = [None] + [_signature(n, k, folded) for n, k in zip(chain[1:], slots)]

    def signature(k: int, period: int) -> tuple | None:
        if k:
            return sigs[k]
        # The first node's chain input comes from outside; it plays the role its
        # block-mate one period later plays, so it is read through the same slot.
        slot = slots[period - 1] if period <= len(slots) else -1
        inputs = chain[0].inputs
        if not 0 <= slot < len(inputs) or id(inputs[slot]) in folded:
            return None  # a constant there would vanish from the box: do not roll it
        return _signature(chain[0], slot, folded)

    groups = []
    i = 0
    while i < len(chain):
        best_p, best_r = 1, 1
        for p in range(1, longest + 1):
            block = [signature(i + j, p) for j in range(min(p, len(chain) - i))]
            if len(block) < p or None in block:
                continue
            r = 1
            while i + (r + 1) * p <= len(chain) and sigs[i + r * p:i + (r + 1) * p] == block:
                r += 1
            if r >= 2 and r * p > best_p * best_r:
                best_p, best_r = p, r
        size = best_p * best_r if best_r >= 2 else 1
        groups.append((chain[i:i + size], best_p if best_r >= 2 else 1))
        i += size
    return groups


def restate(view: GraphView, state: PassState) -> GraphView | None:
    """``view`` as of another moment of the same pass: new states and adjoints, same boxes.

    What :func:`build_view` would give for ``state``, without building the boxes
    again (frames redraw one graph a hundred times).  None when the view has
    rolled or elided boxes, whose states combine several nodes: build it anew then.
    """
    if any(v.repeat != 1 or v.kind == ELIDED for v in view.nodes) or \
            any(e.count != 1 for e in view.edges):
        return None
    stepping = not state.finished
    nodes = []
    for v in view.nodes:
        if v.reason is not None or v.adjoint is None and v.state is None and \
                id(v.nodes[-1]) not in state.adjoints and not stepping:
            nodes.append(v)
            continue
        node = v.nodes[-1]
        nodes.append(_with(v, adjoint=state.adjoints.get(id(node)),
                           state=_node_state(v.nodes, state) if stepping else None))
    boxes = {v.id: v.nodes[-1] for v in view.nodes}
    edges = []
    for e in view.edges:
        if e.pruned:
            edges.append(e)
            continue
        c = state.flowed.get((id(boxes[e.dst]), e.slot))
        edges.append(_with(e, contribution=c,
                           state=None if not stepping else FLOWED if c is not None
                           else UNFLOWED))
    return GraphView(nodes, edges, view.notes)


def _with(record: Any, **changes: Any) -> Any:
    """A copy of a view record with some fields changed (dataclasses.replace, without its
    per-call field checks, which cost more than the rest of a frame)."""
    new = object.__new__(type(record))
    new.__dict__.update(record.__dict__, **changes)
    return new
