"""The interactive stepper: keys in, the screen redrawn in place, the terminal left as it was.

Keys are read with ``click.getchar()``; the screen is Rich's alternate screen,
which is restored on quit, on Ctrl-C and on errors alike.  A resized window
is redrawn at its new size.
"""

from __future__ import annotations

import signal
from typing import Any, Callable

import click

from gradviz.stepper.screen import Viewer


def run(viewer: Viewer, console: Any, getchar: Callable[[], str] = click.getchar) -> None:
    """Show ``viewer`` on ``console`` until the user quits."""
    def draw() -> Any:
        size = console.size
        return viewer.render(size.width, size.height)

    with console.screen(hide_cursor=True) as screen:
        screen.update(draw())
        previous = None
        if hasattr(signal, "SIGWINCH"):
            previous = signal.signal(signal.SIGWINCH, lambda *_: screen.update(draw()))
        try:
            while True:
                try:
                    key = getchar()
                except (KeyboardInterrupt, EOFError):
                    break
                if not viewer.press(key):
                    break
                screen.update(draw())
        finally:
            if previous is not None:
                signal.signal(signal.SIGWINCH, previous)
