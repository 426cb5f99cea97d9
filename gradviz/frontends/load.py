"""One way in for every command: an expression or a script becomes an output tensor.

``gradviz render``, ``gradviz step`` and the Python API share :func:`load`:
it builds the graph (a formula from :mod:`gradviz.frontends.program`, or a
user's script from :mod:`gradviz.frontends.script`), resolves ``--wrt`` to
tensors, and keeps aside the saved values a script's own ``backward()`` frees,
so that the drawing or the stepper can run its own pass from the output it shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from gradviz.engine.backward import keep_saved
from gradviz.engine.tensor import Tensor, manual_seed
from gradviz.errors import GradvizError


@dataclass
class Loaded:
    """A graph ready to draw or step.

    Attributes:
        output: the tensor to differentiate.
        variables: the named tensors (a formula's variables, a script's globals).
        wrt: the tensors ``--wrt`` asked for (None: every input).
        kept: saved values a script's ``backward()`` freed, kept for our own pass.
        notices: one-line notes for the user.
        script: whether EXPR was a script.
    """

    output: Tensor
    variables: dict[str, Tensor]
    wrt: list[Tensor] | None = None
    kept: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    script: bool = False


def split_names(values: Sequence[str]) -> list[str]:
    """``("a,b", "c")`` -> ``["a", "b", "c"]``: options given repeated or comma-separated."""
    out: list[str] = []
    for v in values:
        out.extend(s.strip() for s in v.split(",") if s.strip())
    return out


def load(expr: str, values: Sequence[str] = (), *, constants: Sequence[str] = (),
         wrt: Sequence[str] = (), seed: int | None = None, dtype: str = "float32",
         group: bool = False, script: bool | None = None,
         argv: Sequence[str] = ()) -> Loaded:
    """Build the graph of ``expr`` (a formula, or ``path.py[:NAME]``).

    Args:
        values: ``NAME=VALUE`` texts for a formula's variables.
        constants: names of variables that are constants (no gradient).
        wrt: names to differentiate with respect to; the rest is pruned.
        seed: seed of the random values (``randn`` in values and formulas).
        dtype: floating type of the values.
        group: a script's ops remember the call of its functions they were made in
            (``node.scope``), for ``--group`` and ``--collapse``.
        script: whether ``expr`` is a script (None: a path ending in ``.py`` is).
        argv: a script's command-line arguments.
    """
    from gradviz.frontends.program import build, parse_assignment
    from gradviz.frontends.script import looks_like_script, run_script

    if seed is not None:
        manual_seed(seed)
    constant_names = split_names(constants)
    if looks_like_script(expr) if script is None else script:
        if values or constants:
            raise GradvizError("-v and --const apply to expressions; a script sets its own values")
        with keep_saved() as kept:
            result = run_script(expr, group=group, argv=argv)
        loaded = Loaded(result.output, result.tensors, kept=kept, script=True)
    else:
        with np.errstate(all="ignore"):  # non-finite values get one warning of ours later
            built = build(expr, [parse_assignment(v) for v in values],
                          constants=constant_names, seed=seed, dtype=dtype)
        # the variables, and leaves the formula made itself (x = arange(4.0, requires_grad=True))
        loaded = Loaded(built.output, built.inputs, notices=list(built.notices))
    loaded.wrt = resolve_wrt(split_names(wrt), loaded.variables, constant_names)
    return loaded


def resolve_wrt(names: Sequence[str], variables: dict[str, Tensor],
                constants: Sequence[str] = ()) -> list[Tensor] | None:
    """The tensors ``--wrt`` names, with an error that names the option at fault."""
    if not names:
        return None
    unknown = [n for n in names if n not in variables]
    if unknown:
        raise GradvizError(f"--wrt: no variable {', '.join(unknown)} "
                           f"(known: {', '.join(variables) or 'none'})")
    # The engine would only say "does not require grad"; name the option at fault.
    for n in names:
        if n in constants:
            raise GradvizError(f"--wrt {n}: {n} is a constant (--const)")
        if not variables[n].requires_grad:
            raise GradvizError(f"--wrt {n}: {n} does not require grad, so it has no gradient")
    return [variables[n] for n in names]
