"""Forward accumulation, stepped: tangents pushed up from one input component per sweep.

:class:`ForwardSession` runs the engine's :class:`~gradviz.engine.forward.ForwardSweep`
once per input direction (the unit vector of one component of ``x``), the
very sweep ``jvp()`` runs, and shows each step: the node reached and, for
each input edge, the tangent it carries (local derivative times the input's
tangent).  The end compares the sweeps forward mode needed with reverse
mode's one, and checks that both give the same derivatives.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

from gradviz.engine.backward import BackwardPass
from gradviz.engine.forward import ForwardStep, ForwardSweep
from gradviz.engine.tape import Tape
from gradviz.engine.tensor import Tensor
from gradviz.errors import GradvizError
from gradviz.render.values import format_array
from gradviz.stepper.text import one_line


class ForwardSession:
    """One forward sweep per component of ``x`` (or only ``direction``), recorded."""

    def __init__(self, output: Tensor, x: Tensor, direction: int | None = None) -> None:
        if not x.requires_grad:
            raise GradvizError("forward mode needs an input that requires grad (--wrt)")
        self.output, self.x = output, x
        self.tape = Tape(output)
        if x not in self.tape:
            raise GradvizError("the --wrt input is not in the output's graph")
        size = x.data.size
        if direction is not None and not 0 <= direction < size:
            raise GradvizError(f"--direction {direction}: the input has {size} components "
                               f"(0 to {size - 1})")
        self.directions = [direction] if direction is not None else list(range(size))
        self.sweeps: list[tuple[int, list[ForwardStep]]] = []
        for j in self.directions:
            seed = np.zeros(x.data.shape, dtype=x.dtype)
            seed.flat[j] = 1
            self.sweeps.append((j, list(ForwardSweep(output, {x: seed}))))
        self.flat = [(j, s) for j, steps in self.sweeps for s in steps]

    def __len__(self) -> int:
        return len(self.flat)

    def name(self, node: Tensor) -> str:
        return self.tape.name(node)

    def step_text(self, k: int, precision: int = 4, max_elems: int = 6) -> str:
        n = len(self.flat)
        if not -n <= k < n:
            raise GradvizError(f"no step {k + 1 if k >= 0 else k}: forward mode has {n} steps here")
        k %= n
        j, step = self.flat[k]
        def fmt(a: Any) -> str:
            return one_line(a, precision, max_elems)

        node = step.node
        name = self.name(node)
        xname = self.name(self.x)
        dot = tangent_name
        what = f"{name} = {node.op.format([self.name(i) for i in node.inputs], node.params)}" \
            if node.op is not None else f"{name} (input)"
        lines = [f"sweep {self.directions.index(j) + 1} of {len(self.directions)} "
                 f"(direction: {xname}[{j}] = 1) · step {step.index + 1} · "
                 f"{self.tape.id(node)}  {what}",
                 f"  value      {fmt(node.data)}"]
        if step.seeded:
            lines.append(f"  tangent    {dot(name)} = {fmt(step.tangent)}   (the seed: the "
                         "direction itself)")
        else:
            for e in step.edges:
                iname = self.name(e.input)
                if e.value is None:
                    lines.append(f"    {iname}: no tangent ({e.reason})")
                else:
                    lines.append(f"    {dot(name)} += ∂{name}/∂{iname} · {dot(iname)} = "
                                 f"{fmt(e.value)}")
            lines.append(f"  tangent    {dot(name)} = {fmt(step.tangent)}")
        if step.node is self.output:
            lines.append(f"  ∂{name}/∂{xname}[{j}] = {fmt(step.tangent)}")
        return "\n".join(lines)

    def totals(self) -> dict[int, Any]:
        """Direction -> the output's tangent: column j of the Jacobian."""
        out = {}
        for j, steps in self.sweeps:
            last = next((s for s in steps if s.node is self.output), None)
            out[j] = np.zeros_like(self.output.data) if last is None else last.tangent
        return out

    def reverse_gradient(self) -> np.ndarray | None:
        """The same derivatives by reverse mode, for a one-element output (else None)."""
        if self.output.data.size != 1:
            return None
        bp = BackwardPass(self.output, inputs=[self.x], retain_graph=True,
                          accumulate=False).run()
        g = bp.adjoint_of(self.x)
        return np.zeros_like(self.x.data) if g is None else np.asarray(g)


def tangent_name(name: str) -> str:
    """``ẋ``: the tangent of ``name``, d(name)/d(x[j]) for the sweep's direction j."""
    return unicodedata.normalize("NFC", name[0] + "\u0307" + name[1:])


def forward_transcript(session: ForwardSession, precision: int = 4, max_elems: int = 6) -> str:
    xname = session.name(session.x)
    oname = session.name(session.output)
    blocks = [f"forward accumulation of {oname} with respect to {xname}: "
              f"{len(session.directions)} sweep(s), one per component of {xname}; "
              "tangents flow from the input up to the output.\n"
              f"A dot marks a tangent: {tangent_name(oname)} is d{oname}/d{xname}[j] for the "
              "sweep's direction j."]
    blocks += [session.step_text(k, precision, max_elems) for k in range(len(session))]
    totals = session.totals()
    lines = ["done:"]
    for j, t in totals.items():
        lines.append(f"  ∂{oname}/∂{xname}[{j}] = "
                     f"{format_array(np.asarray(t), precision, max_elems)}")
    reverse = session.reverse_gradient()
    n = session.x.data.size
    if reverse is not None:
        same = all(np.allclose(np.asarray(totals[j]).reshape(()), reverse.flat[j],
                               rtol=1e-5, atol=1e-7) for j in totals)
        lines.append(f"  forward mode needed {len(totals)} sweep(s) ({n} for all of {xname}'s "
                     f"components); reverse mode needs 1 pass for this scalar output, and "
                     f"gives {format_array(reverse, precision, max_elems)}: "
                     + ("the same" if same else "DIFFERENT (a rule is wrong)"))
    else:
        m = session.output.data.size
        lines.append(f"  forward mode needs {n} sweep(s), one per input component; reverse "
                     f"mode would need {m}, one per output component")
    blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
