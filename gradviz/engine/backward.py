"""Reverse accumulation, as a stream of steps.

:class:`BackwardPass` is *the* backward algorithm: ``Tensor.backward()`` and
:func:`grad` run it to the end, and the step debugger and frame export
iterate the very same object one step at a time.  Each :class:`Step` is one
node visited in reverse topological order: its complete adjoint, and the
contribution it sends to each input (upstream adjoint times the local
derivative, fitted to the input's shape).

Before the walk, branches that cannot reach a requested input are pruned;
:meth:`BackwardPass.pruned` says which and why.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from operator import attrgetter
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from gradviz.engine.tape import ancestors, prune_reason
from gradviz.engine.tensor import Size, Tensor, _GradMode, check_saved_versions, last_inplace
from gradviz.errors import AutogradError, ShapeError
from gradviz.engine.shapes import cast, fit_shape

FREED = ("Trying to backward through the graph a second time (or directly access saved "
         "tensors after they have already been freed). Saved intermediate values of the "
         "graph are freed when you call .backward() or autograd.grad(). Specify "
         "retain_graph=True if you need to backward through the graph a second time or "
         "if you need to access saved tensors after calling backward.")
UNUSED = ("One of the differentiated Tensors appears to not have been used in the graph. "
          "Set allow_unused=True if this is the desired behavior.")
NOT_REQUESTED = "leads to none of the requested inputs"
UNREACHED = "not reached from the outputs along any edge that carries a gradient"
CUT_OFF = "cut off: every path from the output passes through an op that passes no gradient"

_by_seq = attrgetter("seq")


class Edge(NamedTuple):
    """What one input edge of a visited node carried back.

    Attributes:
        slot: which input of the node (0, 1, ...).
        input: that input.
        local: the VJP rule's result before it was fitted to the input's shape
            (un-broadcasting), or None when nothing flows.
        value: what was added into the input's adjoint (``local`` fitted to the
            input's shape and dtype), or None when nothing flows.
        reason: why nothing flows (None when something does).
        derivative: the local derivative d(node)/d(input) as a number, when both
            are single numbers (scalar chain rule); None otherwise, where the
            local Jacobian has shape ``node.shape + input.shape``.
    """

    slot: int
    input: Tensor
    local: Any
    value: Any
    reason: str | None
    derivative: Any = None


class Freed(NamedTuple):
    """What a step let go of: the values its op saved for backward, in bytes.

    ``released`` counts arrays only the saved slot held; ``aliased`` counts saved
    arrays that are the forward values themselves (an input's or the node's
    ``data``, which the tape keeps for display), so dropping them released nothing.
    """

    released: int = 0
    aliased: int = 0


NOTHING_FREED = Freed()


class Step(NamedTuple):
    """One node of the reverse walk.

    Attributes:
        index: the step's number, 0, 1, 2, ... with no gaps (0 is the output).
        node: the node visited.
        adjoint: d(output)/d(node), complete when the node is visited.
        edges: one :class:`Edge` per input of the node.
        accumulated: the adjoint was added into ``node.grad`` by this pass.
        into_grad: the node is one whose ``.grad`` a ``backward()`` fills (a leaf
            that requires grad, a ``retain_grad()`` node, or a requested input),
            whether or not this pass accumulates.
        reached: the inputs that received their first (partial) adjoint at this
            step, i.e. joined the pending frontier.
        freed: the saved values released at this step (retain_graph=False).
    """

    index: int
    node: Tensor
    adjoint: Any
    edges: tuple
    accumulated: bool
    into_grad: bool = False
    reached: tuple = ()
    freed: Freed = NOTHING_FREED

    @property
    def contributions(self) -> tuple:
        """``(input, value)`` per input: what flowed to it, or None for a pruned edge."""
        return tuple((e.input, e.value) for e in self.edges)


def saved_values(node: Tensor, kept: Mapping[int, Any] | None = None) -> Any:
    """What ``node``'s op saved for backward: its own, or once a pass freed them, the copy
    :func:`keep_saved` set aside (None: gone)."""
    if node.saved is None and kept:
        held = kept.get(id(node))
        if held is not None:
            return held[1]
    return node.saved


def saved_arrays(node: Tensor, saved: Any = None) -> list[tuple[np.ndarray, bool]]:
    """The distinct arrays ``node``'s op saved for backward, each with whether it is an alias.

    An alias shares memory with the node's own value or an input's: the tape
    keeps those values anyway, so dropping it releases nothing.  An array saved
    twice (``x * x`` saves ``x`` for both sides) is listed once.
    """
    saved = node.saved if saved is None else saved
    if not saved or node.op is None or not node.op.saves_tensors:
        return []
    live = [node.data] + [x.data for x in node.inputs]
    out: list[tuple[np.ndarray, bool]] = []
    seen: set[int] = set()
    for a in saved:
        if not isinstance(a, np.ndarray) or id(a) in seen:
            continue  # a shape, a Tensor under create_graph (counted where it lives), a repeat
        seen.add(id(a))
        out.append((a, any(a is v or np.may_share_memory(a, v) and np.shares_memory(a, v)
                           for v in live)))
    return out


def saved_bytes(node: Tensor, saved: Any = None) -> Freed:
    """The bytes of what ``node``'s op saved for backward, split as :class:`Freed` is."""
    released = aliased = 0
    for a, alias in saved_arrays(node, saved):
        if alias:
            aliased += a.nbytes
        else:
            released += a.nbytes
    return Freed(released, aliased)


class _Kept(threading.local):
    store: dict | None = None


_kept = _Kept()


@contextmanager
def keep_saved() -> Iterator[dict]:
    """Keep aside what backward passes free while the block runs (this thread).

    A script drawn by gradviz may call ``backward()`` itself; it still sees
    PyTorch's semantics (a second ``backward()`` raises), but the drawing's own
    pass can then be run from the kept values: ``BackwardPass(..., kept=store)``.
    """
    previous = _kept.store
    store: dict = {} if previous is None else previous
    _kept.store = store
    try:
        yield store
    finally:
        _kept.store = previous


class PassMode:
    """The modes a pass computes in, set around its work and never left on between steps.

    Grad mode is on only under ``create_graph``; numpy does not warn, since a
    nan or inf adjoint is a result to show, not a warning from inside gradviz.
    A caller who pauses a pass (the stepper) gets its own modes back meanwhile.
    """

    def __init__(self, grad_enabled: bool) -> None:
        self.grad_enabled = grad_enabled
        self._saved: tuple = ()

    def enter(self) -> None:
        self._saved = (_GradMode.enabled, np.seterr(all="ignore"))
        _GradMode.enabled = self.grad_enabled

    def leave(self) -> None:
        if self._saved:
            mode, errors = self._saved
            np.seterr(**errors)
            _GradMode.enabled = mode
            self._saved = ()


def saved_freed(n: Tensor) -> bool:
    """Whether a backward pass already freed what ``n``'s op saved for backward."""
    return n.saved is None and n.op is not None and n.op.saves_tensors and not n.is_leaf


def _rule(op: Any, i: int) -> Any:
    try:
        return op.vjp(i) if op.variadic else op.vjps[i]
    except IndexError:
        raise AutogradError(f"op {op.name!r} has {len(op.vjps)} VJP rules but input {i} "
                            "needs one: give defop one rule per input (None for none)") from None


class BackwardPass:
    """One reverse-mode sweep from ``outputs``; iterate it to get :class:`Step` s.

    Args:
        outputs: the tensors to differentiate.
        grad_outputs: their seeds (None: ones for a one-element output).
        inputs: differentiate only with respect to these; everything that
            cannot reach them is pruned.  None: every leaf that requires grad.
        retain_graph: keep saved values for another pass (default: ``create_graph``).
        create_graph: record the pass itself, for higher derivatives.
        accumulate: add into ``.grad`` (``backward()``) or not (``grad()``).
        record: keep a :class:`History` of the adjoints, so that the state as of
            any step can be had again without rerunning the pass (the stepper's "back").
        kept: saved values set aside by :func:`keep_saved`, used for nodes whose
            own were freed by an earlier pass.

    Each iteration over the pass is a walk of its own, with its own adjoints;
    ``adjoint_of``, ``adjoints``, ``pending`` and ``history`` report the latest.
    Nothing is written on the tensors except ``.grad`` (when accumulating) and
    the freeing of saved values: two passes over one graph never mix.
    """

    def __init__(self, outputs: Tensor | Sequence[Tensor], grad_outputs: Any = None, *,
                 inputs: Sequence[Tensor] | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, accumulate: bool = True, record: bool = False,
                 kept: Mapping[int, Any] | None = None) -> None:
        outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        if isinstance(outputs, Tensor) or grad_outputs is None:
            seeds = [grad_outputs] * len(outs)   # one output's seed, or None for each
        else:
            seeds = [grad_outputs] if isinstance(grad_outputs, (Tensor, np.ndarray)) \
                else list(grad_outputs)
            if len(seeds) != len(outs):
                raise AutogradError(f"grad_tensors should have the same length as tensors: "
                                    f"got {len(seeds)} for {len(outs)} outputs")
        self.outputs = outs
        self.create_graph = bool(create_graph)
        self.retain_graph = self.create_graph if retain_graph is None else bool(retain_graph)
        self.accumulate = accumulate
        self.inputs = None if inputs is None else list(inputs)
        self.record = record
        self.kept = kept or {}
        #: ``(output, seed)`` pairs: the adjoints the walk starts from.
        self.seeds: list[tuple[Tensor, Any]] = [
            (o, self._seed(i, o, g)) for i, (o, g) in enumerate(zip(outs, seeds))]

        nodes = ancestors(outs, grad_only=True)
        nodes.sort(key=_by_seq, reverse=True)
        self._all = nodes
        if self.inputs is not None:
            nodes = self._towards(nodes, self.inputs)
        self.order: list[Tensor] = nodes
        self._needed = None if self.inputs is None else {id(n) for n in nodes}
        self._targets = None if self.inputs is None else {id(t) for t in self.inputs}
        self._adjoints: dict[int, Any] = {}
        self._pending: dict[int, Tensor] = {}
        self.history: History | None = None

    def _seed(self, i: int, out: Tensor, g: Any) -> Any:
        if not out.requires_grad:
            raise AutogradError(f"element {i} of tensors does not require grad and does not "
                                "have a grad_fn")
        if g is None:
            if out.data.size != 1:
                raise AutogradError("grad can be implicitly created only for scalar outputs")
            g = np.ones_like(out.data)
        else:
            shape = g.data.shape if isinstance(g, Tensor) else np.shape(g)
            if shape != out.data.shape:
                raise ShapeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                                 f"{Size(shape)!r} and output[{i}] has a shape of "
                                 f"{Size(out.data.shape)!r}.")
            if self.create_graph and isinstance(g, Tensor):
                return g  # kept in the graph: a Hessian-vector product differentiates through it
            # A copy: the user's array must not become (and later change) a .grad.
            g = np.array(g.data if isinstance(g, Tensor) else g, dtype=out.dtype)
        return Tensor(g, dtype=g.dtype) if self.create_graph else g

    @staticmethod
    def _towards(order: list[Tensor], targets: Sequence[Tensor]) -> list[Tensor]:
        """Keep the nodes from which a target can be reached (order: outputs first)."""
        for t in targets:
            if not t.requires_grad:
                raise AutogradError("One of the differentiated Tensors does not require grad")
        reaches = {id(t) for t in targets}
        for n in reversed(order):  # inputs before the nodes that use them
            if id(n) not in reaches:
                for x in n.inputs:
                    if id(x) in reaches:
                        reaches.add(id(n))
                        break
        return [n for n in order if id(n) in reaches]

    # -- what the stepper and renderer ask -------------------------------------------

    def into_grad(self, node: Tensor) -> bool:
        """Whether ``backward()`` fills ``node.grad`` in this pass (whatever ``accumulate``)."""
        if self._targets is not None:
            return id(node) in self._targets
        return node.is_leaf or node.retains_grad

    def _edge_rule(self, n: Tensor, i: int, x: Tensor) -> tuple[Any, str | None]:
        """The VJP rule that carries ``n``'s adjoint to input ``i`` (``x``), or why none does."""
        op = n.op
        if not x.requires_grad:
            return None, prune_reason(x)
        if self._needed is not None and id(x) not in self._needed:
            return None, NOT_REQUESTED
        rule = _rule(op, i) if op.variadic or i >= len(op.vjps) else op.vjps[i]
        if rule is None:
            return None, f"{op.name}() sends no gradient to its input {i}"
        return rule, None

    def pruned(self) -> dict[Tensor, str]:
        """Every node below the outputs that receives no gradient in this pass, with the reason.

        Together with the steps this accounts for every node of the graph: a node
        is either visited (it has a step) or listed here.
        """
        stepped = self._reachable()
        walked = {id(n) for n in self._all}
        cut_by: dict[int, str] = {}  # node -> the op that stops gradients above it
        no_rule: dict[int, str] = {}  # node -> why the consumers that reach it send nothing
        for n in self.order:
            if id(n) in stepped and n.op is not None and not n.is_leaf:
                for i, x in enumerate(n.inputs):
                    if x.requires_grad and id(x) not in stepped:
                        rule, why = self._edge_rule(n, i, x)
                        if rule is None and why != NOT_REQUESTED:
                            no_rule.setdefault(id(x), why)
        reasons: dict[Tensor, str] = {}
        for n in sorted(ancestors(self.outputs), key=_by_seq, reverse=True):
            if n.op is not None and not n.op.differentiable:
                for x in n.inputs:
                    cut_by.setdefault(id(x), n.op.name)
            elif id(n) in cut_by:
                for x in n.inputs:
                    cut_by.setdefault(id(x), cut_by[id(n)])
            if id(n) in stepped:
                continue
            if id(n) in no_rule and n.op is not None and not n.is_leaf:
                for x in n.inputs:  # what lies below a node no gradient reaches is cut too
                    if x.requires_grad:
                        no_rule.setdefault(id(x), "cut off: " + no_rule[id(n)].removeprefix(
                            "cut off: "))
            why = prune_reason(n)
            if why is None:
                if id(n) in no_rule:
                    why = no_rule[id(n)]
                elif id(n) in walked and self._needed is not None and id(n) not in self._needed:
                    why = NOT_REQUESTED
                elif id(n) in cut_by:
                    why = f"cut off by {cut_by[id(n)]}(): no gradient flows back through it"
                elif id(n) in walked:
                    why = UNREACHED
                else:
                    why = CUT_OFF
            reasons[n] = why
        return reasons

    def _reachable(self) -> set[int]:
        """The nodes the walk visits: reached from the outputs along edges that carry a gradient."""
        reach = {id(o) for o, _ in self.seeds}
        for n in self.order:
            if id(n) in reach and n.op is not None and not n.is_leaf:
                for i, x in enumerate(n.inputs):
                    if self._edge_rule(n, i, x)[0] is not None:
                        reach.add(id(x))
        return reach

    def visited(self) -> list[Tensor]:
        """The nodes the walk steps through, in order (without running it)."""
        reach = self._reachable()
        return [n for n in self.order if id(n) in reach]

    def adjoints(self) -> dict[Tensor, Any]:
        """The adjoints accumulated so far (complete for the nodes already visited)."""
        held = self._adjoints
        return {n: held[id(n)] for n in self.order if id(n) in held}

    def adjoint_of(self, node: Tensor) -> Any:
        """``node``'s adjoint in this pass so far (None: nothing has reached it)."""
        return self._adjoints.get(id(node))

    def pending(self) -> list[Tensor]:
        """The frontier: nodes holding a partial adjoint, waiting for other consumers.

        Kept as the walk goes (steps add to it, visits remove from it), never recomputed.
        """
        return list(self._pending.values())

    def __iter__(self) -> Iterator[Step]:
        return self._walk(emit=True)

    def run(self) -> "BackwardPass":
        """Run the pass to the end (what ``backward()`` does).

        The same walk as iterating, with no :class:`Step` built, since nobody reads them.
        """
        for _ in self._walk(emit=False):
            pass
        return self

    # -- the algorithm ------------------------------------------------------------------

    def _walk(self, emit: bool) -> Iterator[Step]:
        # Each walk has its own adjoints (two iterators over one pass do not mix);
        # the latest is the one adjoints() reports.
        adjoints: dict[int, Any] = {}
        self._adjoints = adjoints
        pending: dict[int, Tensor] = {}
        self._pending = pending
        history = History(self.seeds) if self.record and emit else None
        self.history = history
        for out, g in self.seeds:
            prev = adjoints.get(id(out))
            adjoints[id(out)] = g if prev is None else prev + g
        create = self.create_graph
        retain = self.retain_graph
        needed = self._needed
        targets = self._targets
        kept_aside = _kept.store  # a script being drawn: keep what this pass frees
        inside = PassMode(grad_enabled=create)
        inside.enter()
        get = adjoints.get  # the loop below runs once per node: locals are faster
        index = 0
        try:
            for n in self.order:
                g = get(id(n))
                if g is None:  # not reached (several outputs, or an input no rule feeds)
                    continue
                op = n.op
                edges: list | None = [] if emit else None
                reached: list | None = [] if emit else None
                changes: list | None = [] if history is not None else None
                freed = NOTHING_FREED
                if emit:
                    pending.pop(id(n), None)
                if op is not None and not n.is_leaf:
                    saved = n.saved
                    if saved is None and op.saves_tensors:  # saved_freed(n), inlined
                        saved = saved_values(n, self.kept)
                        if saved is None:
                            raise AutogradError(FREED)
                    if last_inplace[0] > n.seq: check_saved_versions(n)  # noqa: E701
                    if create:
                        saved = op.pick_saved(n.inputs, n)
                    elif saved is None:
                        saved = ()
                    params = n.params
                    for i, x in enumerate(n.inputs):
                        rule = None
                        if x.requires_grad and (needed is None or id(x) in needed):
                            rule = _rule(op, i) if op.variadic or i >= len(op.vjps) \
                                else op.vjps[i]
                        if rule is None:  # pruned edge: nothing flows to x
                            if emit:
                                edges.append(Edge(i, x, None, None, self._edge_rule(n, i, x)[1]))
                            continue
                        local = c = rule(g, *saved, **params)
                        xa = x.data
                        if c.shape != xa.shape:
                            c = _fit_contribution(op, i, c, xa.shape)
                        xd = xa.dtype  # a float32 leaf keeps a float32 grad
                        if c.dtype is not xd and c.dtype != xd:
                            c = cast(c, dtype=xd, src=c.dtype)
                        key = id(x)
                        prev = get(key)
                        total = adjoints[key] = c if prev is None else prev + c
                        if emit:
                            edges.append(Edge(i, x, local, c, None,
                                              _derivative(n, i, x, saved) if not create else None))
                            if prev is None:
                                pending[key] = x
                                reached.append(x)
                            if changes is not None:
                                changes.append((key, total))
                    if not retain and op.saves_tensors and n.saved is not None:
                        if emit:  # measured before the references are dropped
                            freed = saved_bytes(n)
                        if kept_aside is not None:
                            kept_aside[id(n)] = (n, n.saved)
                        n.saved = None  # shapes alone stay, as in PyTorch
                accumulated = False
                # .grad is filled for leaves and retain_grad() nodes, or for the inputs= asked for.
                if self.accumulate and (id(n) in targets if targets is not None
                                        else n.is_leaf or n.retains_grad):
                    self._accumulate(n, g, copy=emit)
                    accumulated = True
                if emit:
                    step = Step(index, n, g, tuple(edges), accumulated,
                                accumulated or self.into_grad(n), tuple(reached), freed)
                    index += 1
                    if history is not None:
                        history.add(step, changes)
                    inside.leave()  # the caller runs between steps, in its own modes
                    try:
                        yield step
                    finally:
                        inside.enter()
        finally:
            inside.leave()

    def _accumulate(self, n: Tensor, g: Any, copy: bool) -> None:
        """Add ``g`` into ``n.grad``, keeping the grad tensor's identity as PyTorch does.

        With ``copy`` (steps are handed out) a fresh ``.grad`` never shares its
        array with a step's adjoint: writing into ``x.grad`` must not change a record.
        """
        if self.create_graph:
            n._grad = g if n._grad is None else n._grad + g
        elif n._grad is None:
            # Take the array if it is a fresh one of its own; copy views (broadcasts are read-only).
            n._grad = _wrap(g) if g.flags.owndata and g.flags.writeable and not copy else \
                Tensor(g, dtype=g.dtype)
        else:
            n._grad.data = n._grad.data + g


def _fit_contribution(op: Any, i: int, c: Any, shape: tuple) -> Any:
    """Un-broadcast a VJP rule's result to its input's shape, or say which rule is wrong.

    A right rule returns the output's shape (which the input broadcast to) or the
    input's own; anything smaller would be spread silently by broadcasting into
    a wrong gradient, so it is refused here, naming the op.
    """
    try:
        if np.broadcast_shapes(tuple(c.shape), tuple(shape)) != tuple(c.shape):
            raise ValueError
        return fit_shape(c, shape)
    except (ValueError, ShapeError):
        raise ShapeError(f"op {op.name!r}: its VJP rule for input {i} returned shape "
                         f"{tuple(c.shape)}, which input {i}'s shape {tuple(shape)} does not "
                         "broadcast to: a rule returns the output's shape or the input's"
                         ) from None


def _derivative(n: Tensor, i: int, x: Tensor, saved: tuple) -> Any:
    """d(n)/d(x) as one number when both are single numbers, from the op's JVP rule."""
    if n.data.size != 1 or x.data.size != 1:
        return None
    rule = n.op.jvp(i)
    if rule is None:
        return None
    try:
        d = rule(np.ones_like(x.data), *saved, **n.params)
    except Exception:  # a user's rule that cannot take this tangent: show none, not a wrong one
        return None
    d = np.asarray(d)
    return d.reshape(()) if d.size == 1 else None


class History:
    """The adjoints of a recorded walk as of any step, without running it again.

    Built from what each step changed (adjoints are never updated in place,
    so the recorded arrays stay as they were).
    """

    def __init__(self, seeds: Sequence[tuple[Tensor, Any]]) -> None:
        self.start: dict[int, Any] = {}
        for out, g in seeds:
            prev = self.start.get(id(out))
            self.start[id(out)] = g if prev is None else prev + g
        self.steps: list[Step] = []
        self._changes: list[list[tuple[int, Any]]] = []

    def add(self, step: Step, changes: list[tuple[int, Any]]) -> None:
        self.steps.append(step)
        self._changes.append(changes)

    def __len__(self) -> int:
        return len(self.steps)

    def adjoints_at(self, k: int) -> dict[int, Any]:
        """Adjoints by node id after step ``k`` (-1: before the first step, the seeds)."""
        out = dict(self.start)
        for changes in self._changes[:k + 1]:
            out.update(changes)
        return out

    def pending_at(self, k: int) -> dict[int, Any]:
        """The frontier after step ``k``: node id -> partial adjoint, not yet visited."""
        done = {id(s.node) for s in self.steps[:k + 1]}
        return {key: a for key, a in self.adjoints_at(k).items() if key not in done}


def _wrap(a: np.ndarray) -> Tensor:
    t = Tensor.__new__(Tensor)
    Tensor.__init__(t, np.empty(0, a.dtype), dtype=a.dtype)
    t.data = a
    return t


def backward(outputs: Tensor | Sequence[Tensor], grad_tensors: Any = None,
             retain_graph: bool | None = None, create_graph: bool = False,
             inputs: Sequence[Tensor] | None = None) -> None:
    """Accumulate the gradients of ``outputs`` into the ``.grad`` of the leaves."""
    BackwardPass(outputs, grad_tensors, inputs=inputs, retain_graph=retain_graph,
                 create_graph=create_graph, accumulate=True).run()


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """d(outputs)/d(inputs) as a tuple, leaving every ``.grad`` untouched (``torch.autograd.grad``)."""
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    p = BackwardPass(outputs, grad_outputs, inputs=ins, retain_graph=retain_graph,
                     create_graph=create_graph, accumulate=False).run()
    result = []
    for x in ins:
        g = p.adjoint_of(x)
        if g is None:
            if not allow_unused:
                raise AutogradError(UNUSED)
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g)
        else:
            result.append(Tensor(g, dtype=g.dtype))
    del p
    return tuple(result)
