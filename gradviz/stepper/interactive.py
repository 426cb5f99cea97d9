"""The interactive stepper: keys in, the screen redrawn in place, the terminal left as it was.

Keys are read with ``click.getchar()``; the screen is Rich's alternate screen,
which is restored on quit, on Ctrl-C and on errors alike.  A resized window
is redrawn at its new size.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import click

from gradviz.stepper.screen import Viewer


def split_keys(chunk: str) -> list[str]:
    """The keys in what one read returned: keys typed fast (or pasted) arrive together.

    An escape sequence (an arrow key, ``\x1b[C``) stays one key.
    """
    keys = []
    i = 0
    while i < len(chunk):
        if chunk[i] == "\x1b" and chunk[i + 1:i + 2] in ("[", "O"):
            j = i + 2
            while j < len(chunk) and not (chunk[j].isalpha() or chunk[j] == "~"):
                j += 1
            keys.append(chunk[i:j + 1])
            i = j + 1
        else:
            keys.append(chunk[i])
            i += 1
    return keys


def run(viewer: Viewer, console: Any, getchar: Callable[[], str] = click.getchar) -> None:
    """Show ``viewer`` on ``console`` until the user quits."""
    def draw() -> Any:
        size = console.size
        return viewer.render(size.width, size.height)

    with console.screen(hide_cursor=True) as screen, _quiet_keyboard():
        screen.update(draw())
        previous = None
        if hasattr(signal, "SIGWINCH"):
            # Redraw at once, but not from inside the handler: it runs while getchar() has
            # the terminal in raw mode. Raising interrupts the read (getchar restores the
            # terminal on the way out), and the loop redraws in the normal mode.
            previous = signal.signal(signal.SIGWINCH, _resized)
        try:
            while True:
                try:
                    chunk = getchar()
                except _Resize:
                    screen.update(draw())
                    continue
                except (KeyboardInterrupt, EOFError):
                    break
                if not all(viewer.press(key) for key in split_keys(chunk)):
                    break
                screen.update(draw())
        finally:
            if previous is not None:
                signal.signal(signal.SIGWINCH, previous)


@contextmanager
def _quiet_keyboard() -> Iterator[None]:
    """No echo and no line buffering for the whole session, the terminal's modes restored after.

    click.getchar() switches to raw mode only while it reads: a key pressed while
    the screen was being drawn was echoed and held in the line buffer (a ``?``
    appeared at the bottom and the help never opened).
    """
    try:
        import termios
        import tty
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError, AttributeError):  # not a terminal: nothing to do
        yield
        return
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _Resize(Exception):
    """The terminal window changed size."""


def _resized(signum: int, frame: Any) -> None:
    raise _Resize
