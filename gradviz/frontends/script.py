"""Build a graph by running a user's script: the lesson's *implicit* construction.

``gradviz render lesson.py:d`` runs ``lesson.py`` as ``python lesson.py``
would (it is the user's own, trusted code, with its loops and branches) and
takes the tensor bound to ``d``, or the last module-level tensor if no name
is given.  Module-level names label the nodes they are bound to.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from gradviz.engine.tape import Tape
from gradviz.engine.tensor import Tensor
from gradviz.errors import ScriptError


@dataclass
class ScriptResult:
    output: Tensor
    name: str
    namespace: dict
    tensors: dict[str, Tensor]


def looks_like_script(target: str) -> bool:
    """Whether ``target`` names a script (``path.py`` or ``path.py:NAME``) rather than an expression."""
    path = target.rsplit(":", 1)[0] if target.count(":") and \
        target.rsplit(":", 1)[1].isidentifier() else target
    return path.endswith(".py") and "\n" not in path and ";" not in path


def split_target(target: str) -> tuple[str, str | None]:
    if ":" in target:
        path, name = target.rsplit(":", 1)
        if name.isidentifier():
            return path, name
    return target, None


def _execute(path: str) -> dict:
    """Run the script at ``path`` as ``python path`` would; return its globals."""
    try:
        found = Path(path).is_file()
    except (OSError, ValueError) as exc:  # a name too long, a folder we may not read, ...
        raise ScriptError(f"cannot read the script {path}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    if not found:
        raise ScriptError(f"no such script: {path}")
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    try:
        saved_cwd: str | None = os.getcwd()
    except OSError:
        saved_cwd = None
    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        return runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise ScriptError(f"{path} exited with status {exc.code}") from None
        raise ScriptError(f"{path} called sys.exit() before defining its tensors") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # Exception, and the odd BaseException subclass too
        raise script_failure(exc, path, path)  # carries the user traceback as __cause__
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        if saved_cwd is not None and _cwd() != saved_cwd:
            # A script's os.chdir must not move where a relative -o lands.
            try:
                os.chdir(saved_cwd)
            except OSError:
                pass


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


def run_script(target: str, *, group: bool = False) -> ScriptResult:
    """Run ``path.py[:NAME]`` and return the chosen tensor, its nodes labelled by the script's names.

    With ``group``, every op remembers the call of the script's functions it was made
    in (``node.scope``), for diagrams that cluster or collapse them.
    """
    path, name = split_target(target)
    if group:
        from gradviz.engine.calls import group_calls

        with group_calls():
            namespace = _execute(path)
    else:
        namespace = _execute(path)
    tensors = {k: v for k, v in namespace.items()
               if isinstance(v, Tensor) and not k.startswith("_")}
    if name is None:
        if not tensors:
            raise ScriptError(f"{path} defines no module-level tensor to render; "
                              "assign one (e.g. `loss = ...`) or name it: script.py:NAME")
        name = list(tensors)[-1]
    elif name not in namespace:
        known = ", ".join(tensors) or "none"
        raise ScriptError(f"{path} does not define {name!r} (its tensors: {known})")
    elif not isinstance(namespace[name], Tensor):
        raise ScriptError(f"{path}: {name!r} is a {type(namespace[name]).__name__}, "
                          "not a gradviz tensor")
    output = namespace[name]
    Tape(output).label_from(tensors)
    if output.label is None:
        output.label = name
    return ScriptResult(output, name, namespace, tensors)


def run_script_object(target: str) -> object:
    """Run ``path.py:NAME`` and return whatever NAME is bound to (an op or a function)."""
    path, name = split_target(target)
    if name is None:
        raise ScriptError(f"name the op to check: {path}:NAME")
    namespace = _execute(path)
    if name not in namespace:
        raise ScriptError(f"{path} does not define {name!r}")
    obj = namespace[name]
    if not callable(obj):
        raise ScriptError(f"{path}: {name!r} is a {type(obj).__name__}, not an op or function")
    return obj


class _UserTraceback(Exception):
    """Carries the script's own traceback text (frames inside gradviz removed)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _user_traceback(exc: BaseException, path: str) -> _UserTraceback:
    frames = traceback.extract_tb(exc.__traceback__)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    keep = [f for f in frames if not f.filename.startswith(here) and "runpy" not in f.filename]
    text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(keep)) + \
        "".join(traceback.format_exception_only(type(exc), exc))
    return _UserTraceback(text)


def script_failure(exc: BaseException, path: str, what: str) -> ScriptError:
    """A ScriptError saying ``what`` raised ``exc``, carrying the script's own traceback."""
    error = ScriptError(f"{what} raised {type(exc).__name__}: {exc}")
    error.__cause__ = _user_traceback(exc, path)
    return error


def script_traceback(error: ScriptError) -> str | None:
    """The user's traceback behind a ScriptError, if the script raised."""
    cause = error.__cause__
    return cause.text if isinstance(cause, _UserTraceback) else None
