"""The stepper's model: one backward pass, and what it looks like as of any step.

A :class:`Session` runs the engine's :class:`~gradviz.engine.backward.BackwardPass`
for one output (the very walk ``backward()`` runs, with its history recorded)
and answers, for any step k, what each screen shows: the node and its
equation, the chain rule on each input edge with numbers, every node's status
and adjoint so far, and the memory the saved values hold.  It computes no
derivative and walks no graph: all of it is read off the steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from gradviz.engine.backward import Step, saved_arrays, saved_freed, saved_values
from gradviz.engine.tensor import Tensor
from gradviz.errors import GradvizError
from gradviz.render import Prepared, prepare
from gradviz.render.values import exact_number, format_shape

# A node's status as of a step (the table's last column and the graph's marks).
DONE, CURRENT, PENDING, NOT_REACHED, PRUNED = "done", "current", "pending", "not reached", "pruned"


@dataclass
class Row:
    """One node of the table as of a step."""

    node: Tensor
    id: str
    name: str
    formula: str
    status: str
    adjoint: Any            # None: nothing has reached it yet (not the same as zero)
    reason: str | None = None
    complete: bool = False  # pending, but every contribution has arrived: it waits its turn


@dataclass
class EdgeLine:
    """The chain rule along one input edge of the current node."""

    slot: int
    input: Tensor
    name: str
    contribution: Any       # what flowed (None: nothing flows)
    derivative: Any         # d(node)/d(input) as a number, or None
    jacobian: str           # the local Jacobian's shape, e.g. "4×4"
    unbroadcast: str | None  # "summed over broadcast axes (2, 3) → (3,)"
    reason: str | None      # why nothing flows
    total_after: Any = None  # the input's adjoint after this contribution


@dataclass
class Memory:
    """Saved values for backward: held now, and dropped so far (bytes)."""

    held_released: int
    held_aliased: int
    freed_released: int
    freed_aliased: int
    retain_graph: bool


@dataclass
class Frame:
    """Everything one screen of the stepper shows, as of step ``k``."""

    k: int
    step: Step
    total: int
    rows: list[Row]
    edges: list[EdgeLine]
    memory: Memory
    finished: bool = False
    grads: list[tuple[str, Any]] = field(default_factory=list)


class Session:
    """A backward pass from ``output``, recorded so that any step can be shown again.

    Args:
        output: the tensor to differentiate (non-scalar: seeded with ones).
        wrt: differentiate only with respect to these (others are pruned).
        retain_graph: keep the saved values (False: freed as the pass goes, as
            ``backward()`` does; the memory panel shows them go).
        kept: saved values a script's own ``backward()`` freed (see ``keep_saved``).
    """

    def __init__(self, output: Tensor, *, wrt: Sequence[Tensor] | None = None,
                 retain_graph: bool = False, kept: Any = None) -> None:
        if not isinstance(output, Tensor):
            raise GradvizError(f"step expects a Tensor, got {type(output).__name__}")
        if not output.requires_grad:
            raise GradvizError(f"{output.label or 'the output'} does not require grad: there is "
                               "no backward pass to step through (give an input requires_grad=True)")
        self.output = output
        self.retain_graph = retain_graph
        kept = kept or {}
        # What every node saved, measured before the pass frees anything.
        from gradviz.engine.tape import Tape
        nodes = Tape(output).nodes
        self.from_kept = any(saved_freed(n) and id(n) in kept for n in nodes)
        saved = {id(n): saved_arrays(n, saved_values(n, kept)) for n in nodes if n.requires_grad}
        self.prepared: Prepared = prepare(output, wrt=wrt, retain_graph=retain_graph,
                                          record=True, kept=kept)
        if self.prepared.steps is None:
            raise GradvizError("the graph was freed by an earlier backward(): step before it, or "
                               "call backward(retain_graph=True)")
        self.tape = self.prepared.tape
        self.steps: list[Step] = self.prepared.steps
        self.history = self.prepared.history
        self.pruned = self.prepared.pruned
        # Unnamed scalar constants (the 2 of `b * 2`) read better inside formulas than as
        # nodes of their own, as in the diagrams.
        self.folded = {id(n) for n in self.tape.nodes
                       if n.op is None and not n.requires_grad and n.data.ndim == 0
                       and n.label is None and n is not output}
        self.names = {id(n): printable(self.tape.name(n)) if id(n) not in self.folded
                      else _constant_text(n) for n in self.tape.nodes}
        self._formulas: dict[int, str] = {}
        # The last step that sends each node a contribution: after it, its adjoint is complete.
        self._last_feed: dict[int, int] = {}
        for k, step in enumerate(self.steps):
            for e in step.edges:
                if e.value is not None:
                    self._last_feed[id(e.input)] = k
        self.inputs = [n for n in self.tape.nodes if self._is_grad_input(n, wrt)]
        self._memory_plan(saved)

    def _is_grad_input(self, n: Tensor, wrt: Sequence[Tensor] | None) -> bool:
        """A node whose .grad backward() fills: an input asked for, a leaf, a retain_grad()."""
        if wrt:
            return any(n is w for w in wrt)
        return n.is_leaf and n.requires_grad or n.retains_grad

    def _memory_plan(self, saved: dict[int, list]) -> None:
        """When each distinct saved array is let go: at the step of the last node holding it.

        An array saved by several nodes (x in x * x, or in two products) counts once.
        """
        visit = {id(s.node): k for k, s in enumerate(self.steps)}
        arrays: dict[int, tuple[int, bool, float]] = {}  # id -> (bytes, alias, step freed)
        for node_id, held in saved.items():
            for a, alias in held:
                at = visit.get(node_id, float("inf"))
                if self.retain_graph:
                    at = float("inf")
                prev = arrays.get(id(a))
                arrays[id(a)] = (a.nbytes, alias, at if prev is None else max(prev[2], at))
        self._arrays = list(arrays.values())

    def __len__(self) -> int:
        return len(self.steps)

    # -- names and formulas -------------------------------------------------------------

    def name(self, node: Tensor) -> str:
        return self.names[id(node)]

    def label(self, node: Tensor) -> str:
        """``x (v0)`` for a named node, ``v3`` otherwise."""
        vid = self.tape.id(node)
        name = self.names[id(node)]
        return vid if name == vid else f"{name} ({vid})"

    def formula(self, node: Tensor) -> str:
        """The node's equation in the tape's terms: ``v2 = v0 * v1`` (user names where given)."""
        cached = self._formulas.get(id(node))
        if cached is None:
            cached = self._formulas[id(node)] = self._formula(node)
        return cached

    def _formula(self, node: Tensor) -> str:
        if node.op is None:
            return "input" if node.requires_grad else "constant"
        args = [self.names[id(x)] for x in node.inputs]
        return node.op.format(args, node.params)

    def equation(self, node: Tensor) -> str:
        if node.op is None:
            return f"{self.name(node)} ({self.formula(node)})"
        return f"{self.name(node)} = {self.formula(node)}"

    def find(self, key: str) -> int:
        """The step that visits the node with id or name ``key`` (GradvizError if none does)."""
        key = key.strip()
        for k, step in enumerate(self.steps):
            n = step.node
            if key in (self.tape.id(n), self.names[id(n)]):
                return k
        for n in self.tape.nodes:
            if key in (self.tape.id(n), self.names[id(n)]):
                why = self.pruned.get(n, "not reached by this pass")
                raise GradvizError(f"{key} is never visited: {why}")
        raise GradvizError(f"no node {key!r} (ids are v0..v{len(self.tape.nodes) - 1}; "
                           "names as in the table)")

    # -- the state as of a step ----------------------------------------------------------

    def frame(self, k: int) -> Frame:
        """What the screen shows at step ``k`` (0-based; negative counts from the end)."""
        n = len(self.steps)
        if not -n <= k < n:
            raise GradvizError(f"no step {k + 1 if k >= 0 else k}: this pass has {n} steps "
                               f"(1 to {n}, or -1 to -{n} from the end)")
        k %= n
        step = self.steps[k]
        adjoints = self.history.adjoints_at(k)
        done = {id(s.node) for s in self.steps[:k + 1]}
        rows = []
        for node in self.tape.nodes:
            key = id(node)
            if key in self.folded:
                continue
            reason = self.pruned.get(node)
            if reason is None and not node.requires_grad:
                reason = "constant"
            if reason is not None:
                status, adjoint = PRUNED, None
            elif key == id(step.node):
                status, adjoint = CURRENT, adjoints.get(key)
            elif key in done:
                status, adjoint = DONE, adjoints.get(key)
            elif key in adjoints:
                status, adjoint = PENDING, adjoints[key]
            else:
                status, adjoint = NOT_REACHED, None
            rows.append(Row(node, self.tape.id(node), self.names[key], self.formula(node),
                            status, adjoint, reason,
                            status == PENDING and self._last_feed.get(key, -1) <= k))
        return Frame(k, step, n, rows, self._edges(k, step), self._memory(k),
                     finished=k == n - 1, grads=self.gradients() if k == n - 1 else [])

    def _edges(self, k: int, step: Step) -> list[EdgeLine]:
        out = []
        before = self.history.adjoints_at(k - 1)
        running: dict[int, Any] = {}
        node = step.node
        for e in step.edges:
            x = e.input
            unb = None
            if e.local is not None and np.shape(e.local) != np.shape(e.value):
                unb = (f"summed over broadcast axes: {tuple(np.shape(e.local))} → "
                       f"{tuple(np.shape(e.value))}")
            total = None
            if e.value is not None:
                prev = running.get(id(x), before.get(id(x)))
                total = e.value if prev is None else prev + e.value
                running[id(x)] = total
            out.append(EdgeLine(e.slot, x, self.names.get(id(x)) or _constant_text(x), e.value,
                                e.derivative, _jacobian(node.data.shape, x.data.shape),
                                unb, e.reason, total))
        return out

    def _memory(self, k: int) -> Memory:
        held_r = held_a = freed_r = freed_a = 0
        for nbytes, alias, at in self._arrays:
            if at <= k:
                freed_a, freed_r = (freed_a + nbytes, freed_r) if alias else \
                    (freed_a, freed_r + nbytes)
            else:
                held_a, held_r = (held_a + nbytes, held_r) if alias else \
                    (held_a, held_r + nbytes)
        return Memory(held_r, held_a, freed_r, freed_a, self.retain_graph)

    def gradients(self) -> list[tuple[str, Any]]:
        """Each input's gradient at the end: what ``backward()`` leaves in ``.grad``."""
        final = {id(s.node): s.adjoint for s in self.steps}
        return [(self.name(x), final.get(id(x))) for x in self.inputs]


def _jacobian(out_shape: tuple, in_shape: tuple) -> str:
    """The local Jacobian's shape, output dims then input dims: ``(4)×(2,3)``."""
    def part(shape: tuple) -> str:
        return "(" + ",".join(str(n) for n in shape) + ")"
    return f"{part(out_shape)}×{part(in_shape)}"


def _constant_text(t: Tensor) -> str:
    """A constant inside a formula, to full float32 precision: ``x * 1.0001``, not ``x * 1``."""
    return exact_number(t.data) if t.data.ndim == 0 else f"const{format_shape(t.data)}"


def printable(name: str) -> str:
    """``name`` with control characters written as escapes: a label must not move the cursor."""
    if name.isprintable():
        return name
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in name)
