"""Step through reverse accumulation one node at a time: ``gradviz step`` and :func:`step`.

The stepper runs the engine's own backward pass (:class:`~gradviz.engine.backward.BackwardPass`,
the walk ``backward()`` runs) with its history recorded, then shows it step
by step: in a terminal interactively, elsewhere as a plain transcript, and as
slides (:mod:`gradviz.stepper.frames`).
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from gradviz.engine.tensor import Tensor
from gradviz.errors import GradvizError
from gradviz.stepper.session import Session
from gradviz.stepper.text import Formatter, step_text, transcript

__all__ = ["Session", "step", "transcript", "step_text"]


def _is_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def step(output: Tensor, *, wrt: Sequence[Tensor] | None = None, interactive: bool | None = None,
         at: int | None = None, precision: int = 4, max_elems: int = 6,
         retain_graph: bool = True, kept: Any = None) -> Session:
    """Step through the backward pass of ``output``.

    In a terminal it opens the interactive stepper; elsewhere (a notebook, a
    pipe) it prints the transcript, every step in order.  ``at`` prints that
    step alone, counted as the transcript numbers them: 1 is the first, -1 the
    last (as ``gradviz step --at``).  ``retain_graph`` (default True
    from Python, so your graph stays usable) keeps the saved values; False
    frees them as the pass goes, as ``backward()`` does.  Returns the session.
    """
    session = Session(output, wrt=wrt, retain_graph=retain_graph, kept=kept)
    fmt = Formatter(session, precision, max_elems)
    if at is not None:
        if at == 0:
            raise GradvizError("at counts from 1 (the first step); -1 is the last")
        print(step_text(session, at - 1 if at > 0 else at, fmt))
        return session
    if interactive is None:
        interactive = _is_terminal()
    if interactive:
        from rich.console import Console

        from gradviz.stepper.interactive import run
        from gradviz.stepper.screen import Viewer
        run(Viewer(session, fmt), Console(highlight=False))
    else:
        print(transcript(session, precision, max_elems))
    return session
