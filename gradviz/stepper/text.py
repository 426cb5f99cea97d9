"""The stepper as plain text: one block per step, for pipes, notebooks and tests.

The transcript is the stepper's documentation format, so each block explains
itself: which node, its equation and value, the adjoint it received, the chain
rule on each input edge with numbers, every node's status, and memory.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

from gradviz.render.values import format_array, format_bytes
from gradviz.stepper.session import (CURRENT, DONE, NOT_REACHED, PENDING, PRUNED, EdgeLine,
                                     Frame, Memory, Session)

STATUS_TEXT = {
    DONE: "done",
    CURRENT: "current",
    PENDING: "pending: partial, waits for its other consumers",
    NOT_REACHED: "not reached yet",
}


def one_line(a: Any, precision: int = 4, max_elems: int = 6) -> str:
    """An array on one line, as the boxes write it: a matrix's rows separated by ``;``."""
    return "; ".join(row.strip() for row in
                     format_array(np.asarray(a), precision, max_elems).split("\n"))


class Formatter:
    """Numbers and names as the stepper writes them (``precision``, ``max_elems`` as render's)."""

    def __init__(self, session: Session, precision: int = 4, max_elems: int = 6) -> None:
        self.session = session
        self.precision = precision
        self.max_elems = max_elems
        self.out = session.name(session.output)

    def array(self, a: Any) -> str:
        return format_array(np.asarray(a), self.precision, self.max_elems)

    def one_line(self, a: Any) -> str:
        return one_line(a, self.precision, self.max_elems)

    @staticmethod
    def bar(name: str) -> str:
        """``x̄``: the adjoint of ``name``, d(output)/d(name) (a macron over its first letter)."""
        # NFC: precomposed where Unicode has it (ā), so the text can be searched as typed.
        return unicodedata.normalize("NFC", name[0] + "\u0304" + name[1:])

    def chain_rule(self, frame: Frame, e: EdgeLine) -> str:
        """``x̄ += v̄2 · ∂v2/∂x = 1 · 3 = 3``, or why nothing flows."""
        node = self.session.name(frame.step.node)
        if e.contribution is None:
            return f"{e.name}: nothing flows ({e.reason or 'pruned'})"
        text = f"{self.bar(e.name)} += {self.bar(node)} · ∂{node}/∂{e.name}"
        if e.derivative is not None:
            text += (f" = {self.array(frame.step.adjoint)} · {self.array(e.derivative)}"
                     f" = {self.array(e.contribution)}")
        else:
            text += f"  [local Jacobian {e.jacobian}] = {self.one_line(e.contribution)}"
        if e.unbroadcast:
            text += f"  ({e.unbroadcast})"
        return text

    def memory(self, m: Memory, short: bool = False) -> str:
        """Saved values held and freed so far, saying how much freeing really released."""
        held = format_bytes(m.held_released + m.held_aliased)
        if m.retain_graph:
            return f"saved for backward {held} held (retain_graph=True: kept for another pass)"
        freed = format_bytes(m.freed_released + m.freed_aliased)
        if short:
            return (f"{held} saved for backward held · {freed} freed, "
                    f"{format_bytes(m.freed_released)} of it released")
        text = f"saved for backward {held} held · {freed} freed"
        if m.freed_aliased:
            text += (f" ({format_bytes(m.freed_aliased)} were forward values the tape keeps for "
                     f"display: {format_bytes(m.freed_released)} released)")
        return text


def _table(rows: list[list[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


#: Above this many nodes a transcript step lists only the rows that changed: the whole
#: table at every step would make the transcript grow with the square of the graph.
FULL_TABLE_LIMIT = 40


def step_text(session: Session, k: int, fmt: Formatter | None = None,
              full_table: bool = True) -> str:
    """The transcript block of step ``k`` (0-based; negative counts from the end)."""
    fmt = fmt or Formatter(session)
    frame = session.frame(k)
    step = frame.step
    node = step.node
    name = session.name(node)
    grad_fn = ("AccumulateGrad" if node.is_leaf else node.op.backward_name(node))
    lines = [f"step {frame.k + 1} of {frame.total} · {session.tape.id(node)}  "
             f"{session.equation(node)}   [{grad_fn}]"]
    lines.append(f"  value      {fmt.one_line(node.data)}")
    received = f"  adjoint    {fmt.bar(name)} = {fmt.one_line(step.adjoint)}"
    if frame.k == 0:
        seed = "1" if node.data.size == 1 else "ones, as .sum().backward()"
        received += f"   (the seed: {seed})"
    else:
        received += "   (complete: every consumer has sent its contribution)"
    lines.append(received)
    if frame.edges:
        lines.append("  chain rule, along each input edge:")
        counts: dict[int, int] = {}
        for e in frame.edges:
            counts[id(e.input)] = counts.get(id(e.input), 0) + 1
        for e in frame.edges:
            line = "    " + fmt.chain_rule(frame, e)
            if e.total_after is not None:
                line += f"   → {fmt.bar(e.name)} = {fmt.one_line(e.total_after)}"
            lines.append(line)
        for e in frame.edges:
            if counts.get(id(e.input), 0) > 1 and e.contribution is not None:
                lines.append(f"    ({e.name} is used {counts[id(e.input)]} times by "
                             f"{name}: its contributions add up)")
                counts[id(e.input)] = 0
    elif step.into_grad:
        lines.append(f"  {name} is an input: its adjoint is its gradient, "
                     f"{'added into' if step.accumulated else 'what backward() adds into'} "
                     f"{name}.grad")
    else:
        lines.append(f"  {name} has no inputs that need a gradient")
    if step.into_grad and frame.edges:  # retain_grad(), or an input asked for by name
        lines.append(f"  {name} keeps its gradient (retain_grad()): its adjoint also goes "
                     f"into {name}.grad")
    newly = [session.name(x) for x in step.reached]
    if newly:
        lines.append(f"  reached for the first time: {', '.join(newly)}")
    table = [["id", "name", "op", "value", "adjoint so far", "status"]]
    rows = frame.rows
    if not full_table and len(rows) > FULL_TABLE_LIMIT:
        changed = {id(step.node)} | {id(e.input) for e in frame.edges}
        rows = [r for r in rows if id(r.node) in changed]
    for row in rows:
        status = STATUS_TEXT.get(row.status, row.status)
        if row.complete:
            status = "pending: complete, waits for its turn"
        if row.status == PRUNED:
            status = f"pruned: {row.reason}"
        table.append([row.id, row.name, row.formula, fmt.one_line(row.node.data),
                      "" if row.adjoint is None else fmt.one_line(row.adjoint), status])
    if rows is frame.rows:
        lines.append("  nodes:")
    else:
        lines.append(f"  nodes changed at this step ({len(frame.rows)} in all; --at "
                     f"{frame.k + 1} shows them all):")
    lines.extend(_table(table))
    lines.append("  memory: " + fmt.memory(frame.memory))
    if frame.finished:
        lines.append("  done: each input's gradient (what backward() leaves in .grad):")
        for label, g in frame.grads:
            lines.append(f"    {label}.grad = " + ("None (no gradient reaches it)" if g is None
                                                  else fmt.one_line(g)))
    return "\n".join(lines)


def transcript(session: Session, precision: int = 4, max_elems: int = 6) -> str:
    """Every step in order: the whole reverse pass as text."""
    fmt = Formatter(session, precision, max_elems)
    head = _intro(session, fmt)
    return head + "\n\n" + "\n\n".join(step_text(session, k, fmt, full_table=False)
                                         for k in range(len(session)))


def _intro(session: Session, fmt: Formatter) -> str:
    out = session.output
    lines = [f"reverse accumulation of {fmt.out} = {session.formula(out)}: "
             f"{len(session)} steps, one per node that receives a gradient, output first.",
             f"x̄ is the adjoint of x, ∂{fmt.out}/∂x; each step multiplies the adjoint it "
             "received by the local derivative of each input and adds the result into "
             "that input's adjoint."]
    if out.data.size != 1:
        lines[1] = lines[1].replace(f"∂{fmt.out}/∂x", f"∂(Σ{fmt.out})/∂x")
        lines.append(f"{fmt.out} has {out.data.size} elements: the pass starts from ones, as "
                     f"{fmt.out}.sum().backward() would.")
    pruned = [n for n in session.tape.nodes if n in session.pruned
              and id(n) not in session.folded]
    if pruned:
        lines.append("pruned (no gradient flows to them): " + "; ".join(
            f"{session.label(n)}: {session.pruned[n]}" for n in pruned))
    if session.from_kept:
        lines.append("the script's own backward() already freed the saved values; gradviz "
                     "kept copies aside to run this pass, and shows them freed as it goes.")
    return "\n".join(lines)
