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

from operator import attrgetter
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from gradviz.engine.tape import ancestors, prune_reason
from gradviz.engine.tensor import Size, Tensor, _GradMode, check_saved_versions, last_inplace
from gradviz.errors import AutogradError, ShapeError
from gradviz.ops import cast, fit_shape

FREED = ("Trying to backward through the graph a second time (or directly access saved "
         "tensors after they have already been freed). Saved intermediate values of the "
         "graph are freed when you call .backward() or autograd.grad(). Specify "
         "retain_graph=True if you need to backward through the graph a second time or "
         "if you need to access saved tensors after calling backward.")
UNUSED = ("One of the differentiated Tensors appears to not have been used in the graph. "
          "Set allow_unused=True if this is the desired behavior.")
NOT_REQUESTED = "leads to none of the requested inputs"
CUT_OFF = "cut off: every path from the output passes through an op that passes no gradient"

_by_seq = attrgetter("seq")


class Step(NamedTuple):
    """One node of the reverse walk.

    Attributes:
        index: position in the walk (0 is the output).
        node: the node visited.
        adjoint: d(output)/d(node), complete when the node is visited.
        contributions: ``(input, value)`` for each input of the node; ``value``
            is what flowed to that input, or None when the edge is pruned.
        accumulated: True if the adjoint was added to ``node.grad`` (a leaf, or
            a node that retains its grad).
    """

    index: int
    node: Tensor
    adjoint: Any
    contributions: tuple
    accumulated: bool


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
    """

    def __init__(self, outputs: Tensor | Sequence[Tensor], grad_outputs: Any = None, *,
                 inputs: Sequence[Tensor] | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, accumulate: bool = True) -> None:
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
        self._seeds = [self._seed(i, o, g) for i, (o, g) in enumerate(zip(outs, seeds))]

        nodes = ancestors(outs, grad_only=True)
        nodes.sort(key=_by_seq, reverse=True)
        self._all = nodes
        if self.inputs is not None:
            nodes = self._towards(nodes, self.inputs)
        self.order: list[Tensor] = nodes
        self._needed = None if self.inputs is None else {id(n) for n in nodes}
        # This pass's adjoints, by node id: its own, so that passes over the same
        # nodes (a stepper paused mid-way, a render) never mix.  Each is also
        # published to ``node.adjoint`` once complete.
        self._adjoints: dict[int, Any] = {}

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

    def pruned(self) -> dict[Tensor, str]:
        """Nodes below the outputs that receive no gradient in this pass, with the reason."""
        needed = {id(n) for n in self.order}
        walked = {id(n) for n in self._all}
        cut_by: dict[int, str] = {}  # node -> the op that stops gradients above it
        reasons: dict[Tensor, str] = {}
        for n in sorted(ancestors(self.outputs), key=_by_seq, reverse=True):
            if n.op is not None and not n.op.differentiable:
                for x in n.inputs:
                    cut_by.setdefault(id(x), n.op.name)
            elif id(n) in cut_by:
                for x in n.inputs:
                    cut_by.setdefault(id(x), cut_by[id(n)])
            if id(n) in needed:
                continue
            why = prune_reason(n)
            if why is None:
                if id(n) in walked:
                    why = NOT_REQUESTED
                elif id(n) in cut_by:
                    why = f"cut off by {cut_by[id(n)]}(): no gradient flows back through it"
                else:
                    why = CUT_OFF
            reasons[n] = why
        return reasons

    def adjoints(self) -> dict[Tensor, Any]:
        """The adjoints accumulated so far (complete for the nodes already visited)."""
        held = self._adjoints
        return {n: held[id(n)] for n in self.order if id(n) in held}

    def adjoint_of(self, node: Tensor) -> Any:
        """``node``'s adjoint in this pass so far (None: nothing has reached it)."""
        return self._adjoints.get(id(node))

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
        for n in self._all:  # node.adjoint means "from the most recent pass": clear the old
            n.adjoint = None
        for out, g in zip(self.outputs, self._seeds):
            prev = adjoints.get(id(out))
            adjoints[id(out)] = g if prev is None else prev + g
        create = self.create_graph
        retain = self.retain_graph
        needed = self._needed
        targets = None if self.inputs is None else {id(t) for t in self.inputs}
        inside = PassMode(grad_enabled=create)
        inside.enter()
        get = adjoints.get  # the loop below runs once per node: locals are faster
        try:
            for index, n in enumerate(self.order):
                g = get(id(n))
                if g is None:  # not reached from the outputs (several outputs, pruned)
                    continue
                n.adjoint = g  # complete: every consumer has been visited
                op = n.op
                contributions: list | None = [] if emit else None
                if op is not None and not n.is_leaf:
                    if n.saved is None and op.saves_tensors:  # saved_freed(n), inlined
                        raise AutogradError(FREED)
                    if last_inplace[0] > n.seq: check_saved_versions(n)  # noqa: E701
                    saved = op.pick_saved(n.inputs, n) if create else n.saved or ()
                    params = n.params
                    for i, x in enumerate(n.inputs):
                        rule = None
                        if x.requires_grad and (needed is None or id(x) in needed):
                            rule = _rule(op, i) if op.variadic or i >= len(op.vjps) \
                                else op.vjps[i]
                        if rule is None:  # pruned edge: nothing flows to x
                            if emit:
                                contributions.append((x, None))
                            continue
                        c = rule(g, *saved, **params)
                        xa = x.data
                        if c.shape != xa.shape:
                            c = fit_shape(c, xa.shape)
                        xd = xa.dtype  # a float32 leaf keeps a float32 grad
                        if c.dtype is not xd and c.dtype != xd:
                            c = cast(c, dtype=xd, src=c.dtype)
                        if emit:
                            contributions.append((x, c))
                        key = id(x)
                        prev = get(key)
                        adjoints[key] = c if prev is None else prev + c
                    if not retain and op.saves_tensors:  # shapes alone stay, as in PyTorch
                        n.saved = None
                accumulated = False
                # .grad is filled for leaves and retain_grad() nodes, or for the inputs= asked for.
                if self.accumulate and (id(n) in targets if targets is not None
                                        else n.is_leaf or n.retains_grad):
                    self._accumulate(n, g)
                    accumulated = True
                if emit:
                    inside.leave()  # the caller runs between steps, in its own modes
                    try:
                        yield Step(index, n, g, tuple(contributions), accumulated)
                    finally:
                        inside.enter()
        finally:
            inside.leave()

    def _accumulate(self, n: Tensor, g: Any) -> None:
        """Add ``g`` into ``n.grad``, keeping the grad tensor's identity as PyTorch does."""
        if self.create_graph:
            n._grad = g if n._grad is None else n._grad + g
        elif n._grad is None:
            # Take the array if it is a fresh one of its own; copy views (broadcasts are read-only).
            n._grad = _wrap(g) if g.flags.owndata and g.flags.writeable else \
                Tensor(g, dtype=g.dtype)
        else:
            n._grad.data = n._grad.data + g


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
