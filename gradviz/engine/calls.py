"""Which call of a user function each node was made in, for diagrams that group them.

Off by default, and then free: the tape recorder only tests one class
attribute per op.  Inside :func:`group_calls` (the CLI's ``--group`` runs a
script inside it), every op notes the user function call it was made in as
``node.scope``, a :class:`Call`.  A call is a *user* function if its code is
not gradviz's or numpy's own; calls are found by walking the Python stack
outward from the op, up to the frame that entered :func:`group_calls` or a
module's top level, whichever comes first.

    with gv.group_calls():
        loss = model(x)              # ops inside model(), linear(), ... remember their call
    gv.render(loss, "g.svg", group=True, collapse=["linear"])
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any, Iterator

import numpy as np

from gradviz.engine import tensor as _tensor

__all__ = ["Call", "group_calls"]

_open_lock = threading.Lock()  # guards the count of open blocks, shared by all threads

# Code living here is the library's, never a user function.
_LIBRARY_DIRS = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,  # gradviz/
                 os.path.dirname(os.path.abspath(np.__file__)) + os.sep)


@dataclass(eq=False)
class Call:
    """One call of a user function.

    ``number`` counts the calls of the same function in one recording, from 1,
    so a diagram can say ``linear() #2``; ``parent`` is the user call it was
    made from (None at the top).
    """

    name: str                       # the function's name, as --collapse NAME matches it
    qualname: str                   # Class.method or outer.<locals>.inner
    number: int
    parent: "Call | None" = None

    @property
    def label(self) -> str:
        return f"{self.qualname}() #{self.number}"

    def path(self) -> list["Call"]:
        """The calls from the outermost down to this one."""
        out, call = [], self
        while call is not None:
            out.append(call)
            call = call.parent
        return out[::-1]


class group_calls:
    """Context manager: ops made inside remember the user function call they were made in.

    Nests (the inner recording wins while it lasts) and is reentrant per use.
    The frames of the calls seen are kept until the block ends, so that a
    frame's identity names one call.
    """

    def __init__(self) -> None:
        self._calls: dict[int, tuple[FrameType, Call]] = {}
        self._counts: dict[str, int] = {}
        self._stop: FrameType | None = None
        self._previous: Any = None

    def __enter__(self) -> "group_calls":
        self._stop = sys._getframe(1)
        self._previous = _tensor._CallRecorder.note
        _tensor._CallRecorder.note = self._note
        with _open_lock:
            _tensor._grouping += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        with _open_lock:
            _tensor._grouping -= 1
        _tensor._CallRecorder.note = self._previous
        self._calls.clear()   # release the frames
        self._stop = None

    def _note(self, node: Any) -> None:
        frame = sys._getframe(2)  # the caller of record()
        call = self._call(frame)
        if call is not None:
            node.scope = call

    def _call(self, frame: FrameType | None) -> Call | None:
        """The Call of the innermost user frame from ``frame`` outward (made on first sight)."""
        while frame is not None:
            if frame is self._stop or frame.f_code.co_name == "<module>":
                return None
            if not frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
                break
            frame = frame.f_back
        if frame is None:
            return None
        known = self._calls.get(id(frame))
        if known is not None and known[0] is frame:
            return known[1]
        parent = self._call(frame.f_back)
        code = frame.f_code
        name = code.co_name
        qualname = getattr(code, "co_qualname", name)  # Python 3.11+
        self._counts[qualname] = number = self._counts.get(qualname, 0) + 1
        call = Call(name, qualname, number, parent)
        self._calls[id(frame)] = (frame, call)
        return call

    def calls(self) -> Iterator[Call]:
        """The calls seen so far, in order of first op."""
        return (call for _, call in self._calls.values())
