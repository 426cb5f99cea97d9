"""gradviz's exceptions.

Each subclasses the builtin type PyTorch raises in the same situation, so code
written for PyTorch (``except RuntimeError``) still catches ours, and callers
who want only ours catch :class:`GradvizError`.  The CLI turns any of them into
one line on stderr and exit status 2.
"""

from __future__ import annotations


class GradvizError(Exception):
    """Base class of every error gradviz raises on purpose."""


class AutogradError(GradvizError, RuntimeError):
    """Misuse of the autodiff engine (backward twice, non-scalar output, ...)."""


class ShapeError(GradvizError, RuntimeError):
    """Operands whose shapes do not fit the operation."""


class GradvizTypeError(GradvizError, TypeError):
    """An argument of the wrong kind (integer tensor asked to require grad, ...)."""


class GradvizValueError(GradvizError, ValueError):
    """An argument with the right type but an unusable value."""


class ExpressionError(GradvizError, ValueError):
    """A command-line expression that cannot be parsed or is not allowed."""


class RenderError(GradvizError, RuntimeError):
    """The diagram could not be laid out or written."""


class RendererUnavailable(RenderError):
    """The requested renderer (or output format) is not available here."""


class ScriptError(GradvizError, RuntimeError):
    """A user script passed to ``gradviz render script.py`` failed or lacks the name asked for."""
