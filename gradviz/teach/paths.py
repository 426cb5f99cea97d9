"""The chain rule written out for one graph: a sum over paths of products of local derivatives.

For a scalar output ``out`` and one input element ``x[k]``::

    ∂out/∂x[k] = Σ over paths x[k] → … → out of the product of the local derivatives on it

Graphs of tensors are taken element by element: a path goes through the
elements of each intermediate tensor that ``x[k]`` actually moves.  Every
local derivative comes from the op's own JVP rule in :mod:`gradviz.ops` (the
rule the engine's forward sweep applies), fed a one-hot tangent; nothing here
knows a derivative.  :func:`explain` also runs the engine's backward pass
and checks that the sum equals the adjoint it finds; and it writes the same
sum in reverse accumulation's *shared* form, where each node's adjoint sums
its consumers' adjoints times the local derivatives, once per node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from gradviz.engine.backward import BackwardPass
from gradviz.engine.shapes import fit_shape
from gradviz.engine.tape import Tape
from gradviz.engine.tensor import Tensor, promote
from gradviz.errors import AutogradError, GradvizValueError

#: Paths listed one by one up to this many; beyond, only their count and the shared form.
MAX_LISTED = 32
#: Most (tensor, element) points the walk may reach: explain is for graphs one can read.
MAX_POINTS = 20_000

Point = tuple[int, int]  # (position of the node on the tape, flat element index)


@dataclass
class Edge:
    """One local derivative: ∂dst/∂src, where src is operand ``slot`` of dst's op."""

    src: Point
    dst: Point
    slot: int
    value: float


@dataclass
class Explanation:
    """The chain rule for ∂output/∂x[index], path by path and in reverse accumulation's form.

    Attributes:
        names: each reached point's name (``x[1]``, ``y``, ``v3[0, 2]``), by point.
        formulas: each reached node's equation (``y = x * x``) in tape order.
        edges: every local derivative between reached points, in tape order.
        path_count: how many paths lead from x[index] to the output.
        paths: the paths, each a list of edges, when there are at most ``MAX_LISTED``.
        total: the sum over paths of their products (computed in float64).
        adjoints: each point's adjoint, accumulated in reverse over the edges.
        engine_adjoint: ∂output/∂x[index] from the engine's backward pass.
        agrees: whether ``total`` equals ``engine_adjoint`` (to the dtype's precision).
    """

    source: Point
    target: Point
    names: dict[Point, str]
    formulas: list[str]
    edges: list[Edge]
    path_count: int
    paths: list[list[Edge]] | None
    total: float
    adjoints: dict[Point, float]
    engine_adjoint: float
    agrees: bool
    order: list[Point] = field(default_factory=list)  # reached points, tape order

    def product(self, path: list[Edge]) -> float:
        return _product(path)

    def on_paths(self) -> list[Point]:
        """The reached points that lead on to the output, in tape order."""
        leads = {self.target}
        for e in reversed(self.edges):  # tape order reversed: consumers before their inputs
            if e.dst in leads:
                leads.add(e.src)
        return [p for p in self.order if p in leads]

    def factor_name(self, e: Edge) -> str:
        """``∂y/∂x``, with the operand when one value is used twice (``x * x``)."""
        text = f"∂{self.names[e.dst]}/∂{self.names[e.src]}"
        twice = sum(1 for f in self.edges if (f.src, f.dst) == (e.src, e.dst)) > 1
        return text + (f" (operand {e.slot + 1})" if twice else "")


def _local_column(node: Tensor, slot: int, element: int) -> np.ndarray:
    """∂node/∂(input ``slot``)[element], all of node's elements: the op's JVP rule on e_element."""
    rule = node.op.jvp(slot)
    if rule is None:
        raise AutogradError(f"op {node.op.name!r} has no forward-mode (JVP) rule, so its local "
                            "derivatives cannot be listed")
    source = node.inputs[slot]
    tangent = np.zeros(source.data.shape, dtype=node.data.dtype if node.data.dtype.kind == "f"
                       else np.float64)
    tangent.reshape(-1)[element] = 1
    saved = node.op.pick_saved(promote([x.data for x in node.inputs]), node.data)
    with np.errstate(all="ignore"):
        column = rule(tangent, *saved, **node.params)
        if column.shape != node.data.shape:
            column = fit_shape(column, node.data.shape)
    return np.asarray(column, dtype=np.float64).reshape(-1)


def _name(tape: Tape, node: Tensor) -> str:
    if node.label is None and node.is_leaf and not node.requires_grad and node.data.size == 1:
        return f"{node.data.item():g}"  # a constant such as the 2 of a * 2
    return tape.name(node)


def _point_name(tape: Tape, node: Tensor, element: int) -> str:
    name = _name(tape, node)
    if node.data.size == 1:
        return name
    index = np.unravel_index(element, node.data.shape)
    return f"{name}[{', '.join(str(int(i)) for i in index)}]"


def explain(output: Tensor, x: Tensor, index: int = 0,
            kept: Mapping[int, Any] | None = None) -> Explanation:
    """The chain rule for ∂output/∂x[index] (``index`` flat), checked against a backward pass.

    ``kept``: saved values a script's own ``backward()`` freed (see ``keep_saved``).
    """
    if output.data.size != 1:
        raise GradvizValueError(f"explain differentiates a scalar output, and this one has "
                                f"{output.data.size} elements: reduce it, e.g. sum(...)")
    if not x.requires_grad:
        raise AutogradError(f"{x.label or 'the input'} does not require grad")
    if not 0 <= index < x.data.size:
        raise GradvizValueError(f"--index {index} is out of range: "
                                f"{x.label or 'x'} has {x.data.size} elements")
    tape = Tape(output)
    if x not in tape:
        raise GradvizValueError(f"the output does not depend on {x.label or 'x'}")
    position = {id(n): i for i, n in enumerate(tape.nodes)}
    source: Point = (position[id(x)], index)
    target: Point = (position[id(output)], 0)
    reached: dict[int, list[int]] = {id(x): [index]}  # node -> its elements x[index] moves
    edges: list[Edge] = []
    formulas: list[str] = []
    names = {source: _point_name(tape, x, index)}
    order = [source]
    count = 1
    for node in tape.nodes[position[id(x)] + 1:]:
        if node.is_leaf or not node.requires_grad or not node.op.differentiable:
            continue
        moved: dict[int, None] = {}
        scalar = node.data.size == 1
        for slot, source_node in enumerate(node.inputs):
            for element in reached.get(id(source_node), ()):
                column = _local_column(node, slot, element)
                # A scalar graph keeps even a zero factor: that path exists, it contributes 0.
                hits = range(column.size) if scalar and source_node.data.size == 1 \
                    else np.flatnonzero(column)
                for j in hits:
                    edges.append(Edge((position[id(source_node)], element),
                                      (position[id(node)], int(j)), slot, float(column[j])))
                    moved[int(j)] = None
        if not moved:
            continue
        reached[id(node)] = list(moved)
        count += len(moved)
        if count > MAX_POINTS:
            raise GradvizValueError(f"x[{index}] moves more than {MAX_POINTS:,} elements of the "
                                    "graph; explain is for graphs small enough to read")
        args = [_name(tape, i) for i in node.inputs]
        formulas.append(f"{_name(tape, node)} = {node.op.format(args, node.params)}")
        for j in moved:
            point = (position[id(node)], j)
            names[point] = _point_name(tape, node, j)
            order.append(point)
    if target not in names:
        raise GradvizValueError(f"no path leads from {names[source]} to the output: "
                                "its derivative is 0")
    # Count the paths into every point (tape order), then accumulate adjoints in reverse.
    into: dict[Point, list[Edge]] = {}
    for e in edges:
        into.setdefault(e.dst, []).append(e)
    path_count = {source: 1}
    for p in order[1:]:
        path_count[p] = sum(path_count.get(e.src, 0) for e in into.get(p, ()))
    out_of: dict[Point, list[Edge]] = {}
    for e in edges:
        out_of.setdefault(e.src, []).append(e)
    adjoints: dict[Point, float] = {target: 1.0}
    for p in reversed(order):
        if p != target:
            adjoints[p] = sum(adjoints.get(e.dst, 0.0) * e.value for e in out_of.get(p, ()))
    paths = None
    if path_count[target] <= MAX_LISTED:
        paths = _enumerate(source, target, out_of)
    total = sum(_product(p) for p in paths) if paths is not None else adjoints[source]

    step = BackwardPass(output, inputs=[x], retain_graph=True, accumulate=False, kept=kept).run()
    engine = float(np.asarray(step.adjoint_of(x), dtype=np.float64).reshape(-1)[index])
    rtol = 1e-9 if output.dtype == np.float64 else 1e-4
    agrees = bool(np.isclose(total, engine, rtol=rtol, atol=rtol * 1e-3)) and \
        bool(np.isclose(adjoints[source], engine, rtol=rtol, atol=rtol * 1e-3))
    return Explanation(source, target, names, formulas, edges, path_count[target], paths, total,
                       adjoints, engine, agrees, order)


def _product(path: list[Edge]) -> float:
    value = 1.0
    for e in path:
        value *= e.value
    return value


def _enumerate(source: Point, target: Point, out_of: dict[Point, list[Edge]]) -> list[list[Edge]]:
    """Every path from source to target, depth first (called only when there are few)."""
    found: list[list[Edge]] = []
    stack: list[tuple[Point, list[Edge]]] = [(source, [])]
    while stack:
        point, path = stack.pop()
        if point == target:
            found.append(path)
            continue
        for e in reversed(out_of.get(point, ())):
            stack.append((e.dst, path + [e]))
    return found
