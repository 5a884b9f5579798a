"""The bench's terminal: rich when it is installed, plain text when it is not.

The tables and the progress display are written against the small part of
rich's API used here (``Table``, ``Console.print``, ``Progress``, markup such as
``[red]FAILED[/]``).  Without rich, the stand-ins below draw the same tables
in plain text and report progress as one line on stderr, so
``python -m ringipc bench`` works on a bare ``pip install ringipc``.
"""
import re
import sys
import time
from typing import Any, List, Optional, Tuple

try:
    from rich import box as _box
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    HAVE_RICH = True
    SIMPLE = _box.SIMPLE_HEAD
except ImportError:
    HAVE_RICH = False
    SIMPLE = None  # type: ignore[assignment]  # no rich: plain tables have no box

_MARKUP = re.compile(r"\[/?[a-z ]*\]")


def plain(text: Any) -> str:
    """``text`` without rich markup."""
    return _MARKUP.sub("", str(text))


class PlainTable:
    def __init__(self, *headers: str, title: Optional[str] = None, **_style: Any) -> None:
        self.title = title
        self.columns: List[Tuple[str, str]] = []
        self.rows: List[Optional[List[str]]] = []
        for h in headers:
            self.add_column(h)

    def add_column(self, header: str, justify: str = "left", **_style: Any) -> None:
        self.columns.append((header, justify))

    def add_row(self, *cells: Any) -> None:
        self.rows.append([plain(c) for c in cells])

    def add_section(self) -> None:
        self.rows.append(None)

    def render(self) -> str:
        heads = [h for h, _ in self.columns]
        widths = [max([len(h)] + [len(r[i]) for r in self.rows if r]) for i, h in enumerate(heads)]

        def line(cells: List[str]) -> str:
            out = [c.rjust(w) if j == "right" else c.ljust(w)
                   for c, w, (_, j) in zip(cells, widths, self.columns)]
            return "  ".join(out).rstrip()

        text = ([self.title] if self.title else []) + [line(heads), "-" * (sum(widths) + 2 * (len(widths) - 1))]
        text += [line(r) if r is not None else "" for r in self.rows]
        return "\n".join(text)


class PlainConsole:
    width = 100

    def __init__(self, **_options: Any) -> None:
        pass

    def print(self, obj: Any = "", width: Optional[int] = None) -> None:
        print(obj.render() if isinstance(obj, PlainTable) else plain(obj), flush=True)


class PlainProgress:
    """One line on stderr per step (rewritten in place on a terminal)."""

    def __init__(self, *columns: Any, console: Any = None, transient: bool = True) -> None:
        self.tty = sys.stderr.isatty()
        self.total: Optional[int] = None
        self.done, self.text, self._last = 0, "", 0.0

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.tty:
            print(file=sys.stderr)

    def add_task(self, description: str, total: Optional[int] = None) -> int:
        self.text, self.total = description, total
        return 0

    def update(self, task: int, total: Optional[int] = None, completed: Optional[int] = None,
               description: Optional[str] = None) -> None:
        if total is not None:
            self.total = total
        if completed is not None:
            self.done = completed
        if description is not None:
            self.text = description
        now = time.monotonic()
        if not self.tty and now - self._last < 2.0:
            return  # a log file gets a line every 2 s, not one per run
        self._last = now
        count = f"{self.done}/{self.total}" if self.total else ""
        start = "\r" if self.tty else ""
        print(f"{start}[{count}] {self.text}"[:160], end="" if self.tty else "\n", file=sys.stderr, flush=True)


if not HAVE_RICH:
    # The checker sees rich's classes (installed with the test extra); these stand in at run time.
    Table, Console, Progress = PlainTable, PlainConsole, PlainProgress  # type: ignore[misc, assignment]  # noqa: F811

    def escape(text: str) -> str:  # type: ignore[misc]  # noqa: F811
        return text

    def BarColumn(*a: Any, **k: Any) -> None:  # type: ignore[no-redef]  # noqa: N802,F811
        return None

    MofNCompleteColumn = TimeElapsedColumn = TextColumn = BarColumn  # type: ignore[misc, assignment]  # noqa: F811


__all__ = ["HAVE_RICH", "SIMPLE", "BarColumn", "Console", "MofNCompleteColumn", "Progress", "Table", "TextColumn",
           "TimeElapsedColumn", "escape", "plain"]
