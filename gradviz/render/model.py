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

from gradviz.engine.tape import Tape, prune_reason
from gradviz.engine.tensor import Tensor
from gradviz.render.values import exact_number

# Node kinds, each with its own style and legend entry.
LEAF, CONSTANT, OP, OUTPUT, PRUNED = "leaf", "constant", "op", "output", "pruned"
ELIDED = "elided"      # the one box standing for nodes left out of a large graph
ELIDED_ID = "elided"

# Where a node stands in the backward pass as of a step (the stepper and its frames).
DONE, CURRENT, PENDING, WAITING = "done", "current", "pending", "waiting"
# Where an edge stands: it carried its contribution, or it will, or it never does.
FLOWED, UNFLOWED = "flowed", "unflowed"


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
    def after(cls, steps: Sequence[Any], pruned: dict[Tensor, str], k: int | None = None,
              adjoints: dict[int, Any] | None = None, value: str = "adjoint") -> "PassState":
        """The state after step ``k`` of ``steps`` (None: after the last one).

        ``adjoints`` (the pass's history as of step k) adds the partial adjoints
        of pending nodes; without it only visited nodes show one.  ``value``
        names the steps' field to show: ``"tangent"`` for a forward sweep's steps.
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
                state.adjoints[id(step.node)] = getattr(step, value)
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
    scope: Any = None        # the user call whose cluster holds the box (--group), or None
    call: Any = None         # the user call this box stands for (--collapse), or None


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
    """A rolled run: ``b * 2 … ×11``, ``[· + 0.001 → · * 1.01 → tanh(·)] ×1000``, or for a
    block that is not a simple chain, the block's result written out: ``[tanh(W @ · + U @ x
    + b)] ×20``.  ``·`` is the value the previous repetition passed on."""
    times = len(group) // period
    position = {id(n): i for i, n in enumerate(group)}
    # Written from the second repetition: every value it reads from the run is then
    # either its own (inlined) or the previous repetition's (the ·).
    block = group[period:2 * period]

    def source(x: Tensor, i: int) -> int | None:
        """Block index of x if this repetition made it, -1 for the previous one's, else None."""
        k = position.get(id(x))
        if k is None:
            return None
        return k - period if k >= period else -1

    def argument(n: Tensor, slot: int) -> str:
        """An input outside the run: its name, or ``x1…x20`` if each repetition reads another."""
        j = position[id(n)] - period
        seen = [names.get(id(x)) or _const_text(x)
                for x in (group[r * period + j].inputs[slot] for r in range(times))]
        return seen[0] if all(text == seen[0] for text in seen) else f"{seen[0]}…{seen[-1]}"

    linear = all(
        [source(x, j) for x in n.inputs].count(j - 1) == 1 and
        all(source(x, j) in (None, j - 1) for x in n.inputs)
        for j, n in enumerate(block))
    if linear and period == 1:
        return f"{_formula(group[0], names)} … ×{times}"
    if linear:
        steps = [n.op.format(["·" if source(x, j) == j - 1 else argument(n, k)
                              for k, x in enumerate(n.inputs)], n.params)
                 for j, n in enumerate(block)]
        return f"[{' → '.join(steps)}] ×{times}"

    def written(j: int, depth: int) -> tuple[str, int]:
        """Block op ``j`` with the ops it reads from its own repetition inlined."""
        n = block[j]
        level = _precedence(n)
        args = []
        for k, x in enumerate(n.inputs):
            i = source(x, j)
            if i is None:
                args.append(argument(n, k))
            elif i < 0 or depth > 8:
                args.append("·")
            else:
                text, inner = written(i, depth + 1)
                # Python's rules: a + b * c, (a + b) * c, a - (b - c)
                tight = inner == 0 or inner > level or inner == level and k == 0
                args.append(text if not level or tight else f"({text})")
        return n.op.format(args, n.params), level

    return f"[{written(period - 1, 0)[0]}] ×{times}"


#: Binding strength of infix symbols, as in Python (0: a call, which needs no parentheses).
_PRECEDENCE = {"**": 5, "@": 4, "*": 4, "/": 4, "+": 3, "-": 3,
               "<": 1, "<=": 1, ">": 1, ">=": 1, "==": 1, "!=": 1}


def _precedence(n: Tensor) -> int:
    op = n.op
    if op.display is not None:
        return 4 if len(n.inputs) == 1 else 2  # -a binds like a product; others: be safe
    if len(n.inputs) == 2 and not op.symbol.isidentifier():
        return _PRECEDENCE.get(op.symbol, 2)
    return 0


def _const_text(t: Tensor) -> str:
    return exact_number(t.data) if t.data.ndim == 0 else "const"


def build_view(tape: Tape, state: PassState | None, *, roll: bool = False,
               max_nodes: int = 400, adjoints: bool = True, group: bool = False,
               collapse: Sequence[str] = ()) -> GraphView:
    """Describe ``tape`` for drawing, with adjoints and contributions from one pass's ``state``.

    ``state`` None: no pass (structure and values views, or an output that
    requires no grad); only structural pruning is shown.  With ``adjoints``
    False (structure and values views) no adjoint is shown.  With ``group``,
    each box records the user function call it was made in (``scope``, see
    :mod:`gradviz.engine.calls`); each call of a function named in ``collapse``
    becomes one box.
    """
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
    notes: list[str] = []
    if roll:
        groups, periods = _roll_runs(tape, folded)
        if not periods:
            notes.append(why_nothing_rolled(tape, folded))
    else:
        groups = [[n] for n in tape.nodes if id(n) not in folded]
    if len(groups) > max_nodes and not roll:
        before = len(groups)
        groups, periods = _roll_runs(tape, folded)
        if len(groups) < before:
            notes.append(f"{before} boxes: repeated runs of ops rolled into one box each "
                         f"(more than --max-nodes={max_nodes})")
    collapsed: dict[int, Any] = {}  # first node of a collapsed call's group -> the call
    if collapse:
        groups, collapsed = collapse_calls(groups, collapse)
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
        call = collapsed.get(id(group[0]))
        formula = _formula(group[0], names) if len(group) == 1 else \
            _call_formula(group, call, names) if call is not None else \
            _run_formula(group, periods.get(id(group[0]), 1), names)
        # As PyTorch's grad_fn: None for what no gradient flows through (detach(), constants).
        grad_fn = "" if last.op is None or not last.requires_grad else last.op.backward_name(last)
        if last.is_leaf and last.requires_grad:
            grad_fn = "AccumulateGrad"
        adjoint = None
        node_state = None
        if reason is None and adjoints:
            # A rolled box shows its last node's adjoint: the one the chain's output sees.
            adjoint = reached.get(id(last))
            if stepping:
                node_state = _node_state(group, state)
        nodes.append(NodeView(gid, tape.name(last) if call is None else call.label,
                              kind, formula, grad_fn, last.data, adjoint, reason, group,
                              len(group), node_state,
                              group_scope(group, call) if group or collapse else None, call))

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


#: Longest loop body ``--roll`` recognises, in ops (an RNN cell ``tanh(W @ h + U @ x + b)``
#: is 5).
ROLL_LONGEST = 8


def _roll_runs(tape: Tape, folded: set[int]) -> tuple[list[list[Tensor]], dict[int, int]]:
    """Group runs of a repeated block of ops into boxes, in tape order.

    The ops are taken in tape order (scalar constants folded into formulas are
    left out).  A block of 1 to :data:`ROLL_LONGEST` consecutive ops that
    repeats back to back, each repetition doing the same ops with the same
    parameters and constants on the same kind of inputs (see :func:`_same_step`),
    becomes one box: the lesson's ``b = b * 2``, ``y = tanh(y * w) + b``, or an
    RNN cell.  Values made inside a run must not be used after it, nor named,
    except its last (the loop's result), so nothing drawn elsewhere points into
    the middle of a box.  Returns the groups and, for each rolled one (by the id
    of its first node), the length of its repeated block.
    """
    ops = [n for n in tape.nodes if n.op is not None and id(n) not in folded]
    position = {id(n): i for i, n in enumerate(ops)}
    consumers = tape.consumers()
    outputs = {id(o) for o in tape.outputs}
    # The last op (by position) that reads each op's result; outputs are read "after the end".
    last_use = [len(ops) if id(n) in outputs else
                max((position.get(id(c), len(ops)) for c in consumers[id(n)]), default=-1)
                for n in ops]
    # What two repetitions of an op must share, compared first because it is quick:
    # the op, its parameters, and its folded constants.
    keys = [(n.op, repr(n.params) if n.params else "",
             tuple(x.data.item() if id(x) in folded else None for x in n.inputs)) for n in ops]
    start_of: dict[int, list[Tensor]] = {}
    periods: dict[int, int] = {}
    i = 0
    while i < len(ops):
        period, times = _longest_run(ops, keys, position, last_use, folded, i)
        if times >= 2:
            group = ops[i:i + period * times]
            start_of[id(group[0])] = group
            periods[id(group[0])] = period
            i += period * times
        else:
            i += 1
    inside = {id(m) for group in start_of.values() for m in group[1:]}
    groups = [start_of.get(id(n), [n]) for n in tape.nodes
              if id(n) not in folded and id(n) not in inside]
    return groups, periods


def _longest_run(ops: list[Tensor], keys: list[tuple], position: dict[int, int],
                 last_use: list[int], folded: set[int], start: int) -> tuple[int, int]:
    """(block length, repetitions) of the run that covers most ops from ``start``."""
    best = (1, 1)
    for period in range(1, ROLL_LONGEST + 1):
        if start + 2 * period > len(ops):
            break
        if keys[start] != keys[start + period]:
            continue  # the usual case, decided without a loop
        # How many ops from start each have their repeat one block later.
        q, last = start, len(ops) - period
        while q < last and keys[q] == keys[q + period] and \
                _same_step(ops, position, folded, start, q, q + period):
            q += 1
        times = (q - start) // period + 1
        times = _closed_run(ops, last_use, start, period, times)
        if times >= 2 and period * times > best[0] * best[1]:
            best = (period, times)
            if len(ops) - start - period * times < period:
                break  # no longer block could cover more (a long chain of one op)
    return best


def _closed_run(ops: list[Tensor], last_use: list[int], start: int, period: int,
                times: int) -> int:
    """The most repetitions, at most ``times``, whose inner values stay inside the run.

    Every op of the run but its last must be unnamed and read only by ops of the run.
    """
    reach = []  # reach[k]: the furthest use of ops[start:start + k + 1] (a name: beyond all)
    furthest = -1
    for q in range(start, start + times * period):
        furthest = max(furthest, last_use[q]) if not ops[q].label else len(ops) + 1
        reach.append(furthest)
    while times >= 2:
        end = start + times * period
        inner = end - 1 - start   # how many ops come before the run's last
        if inner == 0 or reach[inner - 1] < end:
            return times
        times -= 1
    return times


def _same_step(ops: list[Tensor], position: dict[int, int], folded: set[int], start: int,
               q: int, r: int) -> bool:
    """Whether op ``r`` repeats op ``q`` one block later, in a run that begins at ``start``.

    The caller has compared their keys: the same op, parameters and folded
    constants.  Input by input: the same
    leaf or op from before the run (a shared weight), two leaves of one shape
    (each repetition's own input, ``x[t]``), or a value made the same number
    of ops earlier.  The first repetition may read from before the run what
    later ones read from the repetition before them (the loop's initial value).
    """
    a, b = ops[q], ops[r]
    period = r - q
    for x, y in zip(a.inputs, b.inputs):
        if x is y and position.get(id(x), -1) < start:
            continue  # a constant, a leaf or a value from before the run, read by both
        if id(x) in folded:
            continue  # and so is y, with the same value: the keys say so
        px, py = position.get(id(x)), position.get(id(y))
        if py is not None and py >= start:
            if px is not None and px >= start:
                if q - px != r - py:
                    return False
            elif not (q < start + period and py < start + period):
                return False  # only the first repetition reads its start from outside
            continue
        if px is not None or py is not None:
            return False      # an op before the run read by one of them only
        if x.shape != y.shape or x.requires_grad != y.requires_grad:
            return False      # two leaves, each repetition's own: alike in kind
    return True


def why_nothing_rolled(tape: Tape, folded: set[int]) -> str:
    """Why :func:`_roll_runs` found no run, for a note under the diagram."""
    ops = [n for n in tape.nodes if n.op is not None and id(n) not in folded]
    if len(ops) < 2:
        return "--roll: nothing to roll: fewer than two ops"
    names = [n.op.name for n in ops[:5000]]  # enough to see a loop; bounded work
    # The block length whose back-to-back repetition (by op names alone, ignoring
    # parameters, constants and inputs) covers the most ops.
    best_period, best_cover = 0, 0
    for period in range(1, min(len(names) // 2, 64) + 1):
        streak = longest = 0
        for i in range(len(names) - period):
            streak = streak + 1 if names[i] == names[i + period] else 0
            longest = max(longest, streak)
        if longest >= period and longest + period > best_cover:
            best_period, best_cover = period, longest + period
    if best_period > ROLL_LONGEST:
        return (f"--roll: nothing rolled: the repeated block is {best_period} ops long "
                f"(at most {ROLL_LONGEST} roll)")
    if best_period:
        return ("--roll: nothing rolled: ops repeat, but with other constants or "
                "parameters, other inputs, or with values named or used after the "
                "loop (those must stay visible)")
    return (f"--roll: nothing rolled: no block of up to {ROLL_LONGEST} ops repeats back to "
            "back (a loop's body does)")


# -- grouping by user function call (--group, --collapse) ---------------------------------


def _call_path(n: Tensor) -> list[Any]:
    scope = getattr(n, "scope", None)
    return scope.path() if scope is not None else []


def group_scope(group: list[Tensor], call: Any = None) -> Any:
    """The innermost call holding every node of ``group`` (a collapsed call: its caller)."""
    if call is not None:
        return call.parent
    paths = [_call_path(n) for n in group]
    common = paths[0]
    for path in paths[1:]:
        k = 0
        while k < min(len(common), len(path)) and common[k] is path[k]:
            k += 1
        common = common[:k]
    return common[-1] if common else None


def _collapsed_call(n: Tensor, names: Sequence[str]) -> Any:
    """The outermost call of a function in ``names`` that ``n`` was made in, or None."""
    for call in _call_path(n):
        if call.name in names or call.qualname in names:
            return call
    return None


def collapse_calls(groups: list[list[Tensor]], names: Sequence[str]
                   ) -> tuple[list[list[Tensor]], dict[int, Any]]:
    """Merge the groups made inside each call of a function in ``names`` into one group.

    A group whose nodes lie in several such calls (a rolled loop over calls) stays as
    it is.  Returns the groups, in tape order of each one's first node, and for each
    merged group (by its first node's id) the call it stands for.
    """
    merged: dict[int, list[Tensor]] = {}  # id(call) -> its group
    calls: dict[int, Any] = {}
    out: list[list[Tensor]] = []
    for group in groups:
        owners = {id(c): c for c in (_collapsed_call(n, names) for n in group)}
        call = next(iter(owners.values())) if len(owners) == 1 else None
        if call is None:
            out.append(group)
            continue
        if id(call) not in merged:
            merged[id(call)] = []
            out.append(merged[id(call)])
            calls[id(group[0])] = call
        merged[id(call)].extend(group)
    return out, calls


def _call_formula(group: list[Tensor], call: Any, names: dict[int, str]) -> str:
    """``linear(x, W1, b1)``: a collapsed call, with the values it read from outside."""
    inside = {id(n) for n in group}
    read: dict[int, str] = {}
    for n in group:
        for x in n.inputs:
            if id(x) not in inside and id(x) in names:
                read.setdefault(id(x), names[id(x)])
    return f"{call.qualname}({', '.join(read.values())})"


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
