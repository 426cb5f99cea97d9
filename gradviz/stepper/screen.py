"""The stepper's screen, drawn with Rich: one step at a time, redrawn in place.

:class:`Viewer` holds where the user is (step, breakpoints, what the graph
shows) and turns a key into a move; :meth:`Viewer.render` builds the screen
for a terminal of a given size.  Reading keys and owning the terminal is
:mod:`gradviz.stepper.interactive`'s job, so the viewer is tested without one.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.layout import Layout
from rich.panel import Panel
from rich.cells import cell_len, set_cell_size
from rich.text import Text

from gradviz.errors import GradvizError
from gradviz.stepper.session import CURRENT, DONE, NOT_REACHED, PENDING, PRUNED, Frame, Session
from gradviz.stepper.text import Formatter

MARKS = {CURRENT: "▶", DONE: "✓", PENDING: "◐", NOT_REACHED: "·", PRUNED: "✗"}
STYLES = {CURRENT: "bold reverse magenta", DONE: "green", PENDING: "bold yellow",
          NOT_REACHED: "", PRUNED: "dim"}
STATUS_WORDS = {CURRENT: "current", DONE: "done", PENDING: "pending", NOT_REACHED: "not reached",
                PRUNED: "pruned"}
#: The table says why a node is pruned in a word or two (the transcript says it in full).
#: Marks the one input of a node, drawn under it without indenting further.
CHAIN = "↳ "
#: Beyond this many nodes the graph panel is a scrolling list instead of a tree.
TREE_LIMIT = 60

KEYS = "n/→ next  p/← back  g/G ends  j jump  b break  c continue  ? help  q quit"
HELP = """[bold]Keys[/]  n space Enter →  next step      p ←  previous (recorded, not rerun)
      g / G  first / last step        j NODE Enter  jump to a node's step
      b NODE Enter  breakpoint on/off  c  continue to the next breakpoint
      f  graph shows values/adjoints   ?  this help      q Ctrl-C  quit
[bold]A step[/]  The current node has received its whole adjoint x̄ = ∂out/∂x:
  every node that uses it was visited before.  For each input it multiplies
  x̄ by the local derivative and adds the result into the input's adjoint;
  an input used twice gets two contributions that add up.
[bold]Marks[/]  ▶ current  ✓ done  ◐ pending: has an adjoint so far, not visited
  yet (the table says "ready" once every consumer has sent its share)
  · not reached yet  ✗ pruned: no gradient flows (the table says why)
[bold]Memory[/]  saved values are freed as the pass goes; the tape keeps every
  forward value for display, so freeing one of those releases nothing:
  "released" counts what was really given back.
Any key closes this help."""


class Viewer:
    """The interactive stepper's state: which step, breakpoints, prompts; no terminal I/O."""

    def __init__(self, session: Session, fmt: Formatter) -> None:
        self.session = session
        self.fmt = fmt
        self.k = 0
        self.breakpoints: set[int] = set()
        self.show_values = False
        self.help = False
        self.prompt: str | None = None   # "jump" or "break" while a node id is typed
        self.typed = ""
        self.message = ""

    # -- keys -----------------------------------------------------------------------------

    def press(self, key: str) -> bool:
        """Handle one key; False means quit."""
        self.message = ""
        if self.help:
            self.help = False
            return True
        if self.prompt is not None:
            return self._typing(key)
        last = len(self.session) - 1
        if key in ("n", " ", "\r", "\n", "\x1b[C", "l"):
            if self.k == last:
                self.message = "last step: the pass is done (p goes back, q quits)"
            self.k = min(self.k + 1, last)
        elif key in ("p", "\x1b[D", "h"):
            if self.k == 0:
                self.message = "first step: the output, seeded with its adjoint"
            self.k = max(self.k - 1, 0)
        elif key == "g":
            self.k = 0
        elif key == "G":
            self.k = last
        elif key in ("j", "b"):
            self.prompt = "jump to" if key == "j" else "breakpoint at"
            self.typed = ""
        elif key == "c":
            ahead = sorted(b for b in self.breakpoints if b > self.k)
            self.k = ahead[0] if ahead else last
            if not ahead:
                self.message = "no breakpoint ahead: at the last step"
        elif key == "f":
            self.show_values = not self.show_values
        elif key == "?":
            self.help = True
        elif key in ("q", "Q", "\x1b"):
            return False
        elif key:
            self.message = f"unknown key {key!r}: ? lists the keys"
        return True

    def _typing(self, key: str) -> bool:
        if key in ("\r", "\n"):
            what, self.prompt = self.prompt, None
            try:
                k = self.session.find(self.typed)
            except GradvizError as exc:
                self.message = str(exc)
                return True
            if what == "jump to":
                self.k = k
            elif k in self.breakpoints:
                self.breakpoints.discard(k)
                self.message = f"breakpoint at {self.typed} cleared"
            else:
                self.breakpoints.add(k)
                self.message = f"breakpoint at {self.typed} (step {k + 1}): c continues to it"
        elif key in ("\x1b", "\x07"):
            self.prompt = None
        elif key in ("\x7f", "\x08"):
            self.typed = self.typed[:-1]
        elif key.isprintable():
            self.typed += key
        return True

    # -- drawing --------------------------------------------------------------------------

    def render(self, width: int = 80, height: int = 24) -> Any:
        """The whole screen for a terminal of ``width`` x ``height``."""
        if self.help:
            return Panel(Text.from_markup(HELP), title="gradviz step: help", border_style="cyan")
        session, fmt = self.session, self.fmt
        frame = session.frame(self.k)
        head = self._header(frame)
        footer = self._footer(frame)
        # The chain rule lines wrap when the screen has room for them; the panels get
        # what they need of the rest, and no more.
        wrapped = [-(-cell_len(line.plain) // max(width, 1)) or 1 for line in head]
        graph_needed = len(graph_lines(session, fmt, frame, self.show_values,
                                       self.breakpoints)[0])
        needed = max(graph_needed, len(frame.rows) + 1)
        spare = height - len(footer) - 2 - sum(wrapped)
        if spare >= min(needed, 8):
            for line in head:
                line.no_wrap = False
            head_rows = sum(wrapped)
        else:
            head_rows = len(head)
        room = max(3, min(needed, height - head_rows - len(footer) - 2))  # 2: the borders
        graph = graph_panel(session, fmt, frame, self.show_values, room, self.breakpoints)
        table_width = max(40, width * 5 // 9)
        table = table_panel(session, fmt, frame, room, table_width)
        # A Layout gives each region its size outright: nothing is measured, so a
        # redraw costs the same however many nodes the graph has.
        screen = Layout()
        body = Layout(name="body", size=room + 2)
        body.split_row(Layout(graph), Layout(table, size=table_width))
        screen.split_column(Layout(Group(*head), size=head_rows), body,
                            Layout(Group(*footer), size=len(footer)), Layout(Text(" ")))
        return screen

    def _header(self, frame: Frame) -> list[Any]:
        session, fmt = self.session, self.fmt
        node = frame.step.node
        name = session.name(node)
        grad_fn = "AccumulateGrad" if node.is_leaf else node.op.backward_name(node)
        title = Text.assemble(
            (f" step {frame.k + 1}/{frame.total} ", "bold reverse"), " ",
            (session.tape.id(node), "bold magenta"), "  ",
            (session.equation(node), "bold"), f"   {grad_fn}   value ",
            (fmt.one_line(node.data), "cyan"))
        lines: list[Any] = [title]
        seed = " (the seed)" if frame.k == 0 else " (complete)"
        lines.append(Text.assemble("received ", (f"{fmt.bar(name)} = {fmt.one_line(frame.step.adjoint)}",
                                                 "bold yellow"), seed))
        if frame.edges:
            for e in frame.edges:
                style = "dim" if e.contribution is None else ""
                line = Text("  " + fmt.chain_rule(frame, e), style=style)
                if e.total_after is not None:
                    line.append(f"  → {fmt.bar(e.name)} = {fmt.one_line(e.total_after)}",
                                style="yellow")
                lines.append(line)
        elif frame.step.into_grad:
            lines.append(Text(f"  {name} is an input: its adjoint is its gradient, what "
                              f"backward() adds into {name}.grad"))
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        return lines

    def _footer(self, frame: Frame) -> list[Any]:
        lines: list[Any] = [Text("memory: " + self.fmt.memory(frame.memory, short=True),
                                 style="dim")]
        if frame.finished:
            grads = ", ".join(f"{label}.grad = {self.fmt.one_line(g) if g is not None else 'None'}"
                              for label, g in frame.grads)
            lines.append(Text.assemble(("done: ", "bold green"), grads))
        if self.prompt is not None:
            lines.append(Text.assemble((f"{self.prompt}: ", "bold"), self.typed, ("█", "blink")))
        elif self.message:
            lines.append(Text(self.message, style="bold red" if "no " in self.message[:3]
                              or "never" in self.message else "bold"))
        lines.append(Text(KEYS, style="dim"))
        for line in lines:  # one row each: the panels above are sized on that
            line.no_wrap = True
            line.overflow = "ellipsis"
        return lines


class _LazyLines:
    """A list of lines made only when looked at: a big graph shows a window of them."""

    def __init__(self, rows: list[Any], make: Any) -> None:
        self.rows, self.make = rows, make

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.make(r) for r in self.rows[index]]
        return self.make(self.rows[index])


def _window(lines: list[Any], focus: int, room: int) -> list[Any]:
    """At most ``room`` lines around ``focus``, saying how many are above and below."""
    if len(lines) <= room:
        return lines[:]
    room = max(room - 2, 1)
    start = max(0, min(focus - room // 2, len(lines) - room))
    shown = lines[start:start + room]
    above, below = start, len(lines) - start - len(shown)
    return ([Text(f"  ↑ {above} more", style="dim")] if above else []) + shown + \
        ([Text(f"  ↓ {below} more", style="dim")] if below else [])


def _node_text(session: Session, fmt: Formatter, frame: Frame, row: Any, show_values: bool,
               breakpoints: set[int]) -> Text:
    mark = MARKS[row.status]
    t = Text(f"{mark} ", style=STYLES[row.status])
    t.append(row.id, style="bold" if row.status == CURRENT else "")
    if row.name != row.id:
        t.append(f" {row.name}")
    if row.node.op is not None:
        t.append(f" = {row.formula}", style="dim" if row.status == PRUNED else "")
    if show_values:
        t.append(f"  {fmt.one_line(row.node.data)}", style="cyan")
    elif row.adjoint is not None:
        t.append(f"  {fmt.bar(row.name)}={fmt.one_line(row.adjoint)}", style="yellow")
    if any(session.steps[b].node is row.node for b in breakpoints):
        t.append(" ●", style="bold red")
    if row.status == PRUNED:
        t.stylize("dim")
    t.no_wrap = True
    t.overflow = "ellipsis"
    return t


def graph_lines(session: Session, fmt: Formatter, frame: Frame, show_values: bool,
                breakpoints: set[int] = frozenset()) -> tuple[list[Text], int]:
    """The DAG as an indented tree from the output, inputs below their consumers.

    A node used by several consumers is drawn once; later uses point back to it
    (``↑ v0``) instead of copying its subtree, and the single input of a node
    follows it on the next line (``↳``), so a long chain does not run off to
    the right.  Returns the lines and the index of the current node's line.
    """
    rows = {id(r.node): r for r in frame.rows}
    lines: list[Text] = []
    focus = 0
    if len(rows) > TREE_LIMIT:  # a big graph: the nodes as a list, output first
        ordered = list(reversed(frame.rows))
        focus = next((i for i, r in enumerate(ordered) if r.status == CURRENT), 0)
        return _LazyLines(ordered, lambda r: _node_text(session, fmt, frame, r, show_values,
                                                        breakpoints)), focus
    # A node shared by a pruned branch and a live one is drawn under the live one: the
    # detach lesson's x belongs under z = u * x, not under the detached y = x * x.
    live = {id(r.node) for r in frame.rows if r.status != PRUNED}
    shown: set[int] = set()
    stack: list[tuple[Any, str, str, bool]] = [(session.output, "", "", False)]
    while stack:
        node, lead, branch, dead = stack.pop()
        row = rows[id(node)]
        if id(node) in shown or dead and id(node) in live:
            ref = Text(f"{lead}{branch}↑ {row.id}", style="dim")
            ref.append(" (shared, above)" if id(node) in shown else " (shared, below)",
                       style="dim italic")
            ref.no_wrap = True
            ref.overflow = "ellipsis"
            lines.append(ref)
            continue
        shown.add(id(node))
        if row.status == CURRENT:
            focus = len(lines)
        line = Text(lead + branch, style="dim")
        line.append_text(_node_text(session, fmt, frame, row, show_values, breakpoints))
        line.no_wrap = True
        line.overflow = "ellipsis"
        lines.append(line)
        inputs = [x for x in node.inputs if id(x) in rows]
        below_dead = dead or row.status == PRUNED
        if branch in ("", CHAIN):  # the root, or a link of a chain: its inputs stay in line
            child_lead = lead
        else:
            child_lead = lead + ("    " if branch == "└── " else "│   ")
        if len(inputs) == 1:  # a chain (b = b * 2 in a loop) goes down, not ever further right
            stack.append((inputs[0], child_lead, CHAIN, below_dead))
            continue
        for i, x in reversed(list(enumerate(inputs))):
            stack.append((x, child_lead, "└── " if i == len(inputs) - 1 else "├── ", below_dead))
    return lines, focus


def graph_panel(session: Session, fmt: Formatter, frame: Frame, show_values: bool, room: int,
                breakpoints: set[int]) -> Panel:
    lines, focus = graph_lines(session, fmt, frame, show_values, breakpoints)
    what = "values" if show_values else "adjoints"
    return Panel(Group(*_window(lines, focus, room)),
                 title=f"graph ({what}; f toggles)", title_align="left", border_style="blue")


def _cell(text: str, width: int) -> str:
    """``text`` cut (with …) or padded to ``width`` terminal cells."""
    if cell_len(text) > width:
        text = set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


def table_panel(session: Session, fmt: Formatter, frame: Frame, room: int,
                width: int = 44) -> Panel:
    """The nodes, output first, in a panel ``width`` columns wide (a window if they overflow).

    Rows are laid out here as fixed-width text: a Rich Table measures every
    cell, which made a key press on a 500-node graph slow.
    """
    rows = list(reversed(frame.rows))  # output first, as the pass goes
    labels = [r.id if r.name == r.id else f"{r.id} {r.name}" for r in rows]
    inner = width - 4 - 3          # borders and padding, then one space between columns
    node_w = min(max(len(t) for t in labels), 12)
    status_w = 12
    value_w = max(4, (inner - node_w - status_w) // 2)
    widths = (node_w, value_w, value_w, status_w)
    body_room = max(room - 1, 1)
    focus = next((i for i, r in enumerate(rows) if r.status == CURRENT), 0)
    start = 0
    if len(rows) > body_room:
        start = max(0, min(focus - body_room // 2, len(rows) - body_room))
    lines = [Text(" ".join(_cell(h, w) for h, w in zip(("node", "value", "adjoint", "status"),
                                                          widths)), style="bold")]
    for r, label in zip(rows[start:start + body_room], labels[start:start + body_room]):
        status = "ready" if r.complete else STATUS_WORDS[r.status]
        if r.status == PRUNED and r.reason:
            status = _short_reason(r.reason)
        adjoint = "" if r.adjoint is None else fmt.one_line(r.adjoint)
        line = Text(_cell(label, node_w) + " ", style=STYLES[r.status])
        line.append(_cell(fmt.one_line(r.node.data), value_w) + " " + _cell(adjoint, value_w)
                    + " ")
        line.append(_cell(status, status_w), style=STYLES[r.status])
        lines.append(line)
    more = f" ({start + 1}-{min(start + body_room, len(rows))} of {len(rows)})" \
        if len(rows) > body_room else ""
    return Panel(Group(*lines), title=f"nodes{more}", title_align="left", border_style="blue")


def _short_reason(reason: str) -> str:
    """Why a node is pruned, short enough for a table cell."""
    if reason.startswith("constant"):
        return "constant"
    if reason.startswith("computed from constants"):
        return "from consts"
    if "detach" in reason:
        return "detach()"
    if "no_grad" in reason:
        return "no_grad()"
    if "requested" in reason:
        return "not in --wrt"
    if reason.startswith("cut off"):
        return "cut off"
    return reason.split(":")[0]
