"""Progress of long work: a throttled line with items done, total, elapsed and time left.

Each line goes to the job's log (``logging``) and to the console: ``start_job`` sends the
job's stderr to its log file, so the console is reached through ``sys.__stderr__``, the
stream the process started with. Lines are throttled (at most one per ``interval`` seconds,
or one per ``step`` of the total, whichever comes first), with a first and a last line, so a
job of hours prints a few hundred lines and a job of seconds a handful.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``: a length of time for people."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec} s" if sec else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class Progress:
    """Count work done and report it; ``update`` after each piece, ``finish`` at the end."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "items",
        interval: float = 5.0,
        step: float = 0.1,
        console: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.total, self.unit = label, max(int(total), 0), unit
        self.interval, self.step = interval, step
        self.console = console
        self.clock = clock
        self.done = 0
        self.start = self.clock()
        self._last_time = self.start
        self._last_done = 0
        self.lines: list[str] = []  # what was reported, for the caller's log and for tests
        self._emit(f"{self.label}: 0/{self.total} {self.unit}")

    def update(self, n: int = 1) -> None:
        """Add ``n`` items done; report when enough time or work has passed since the last line."""
        self.done = min(self.total, self.done + n)
        now = self.clock()
        due = now - self._last_time >= self.interval
        stepped = self.total and (self.done - self._last_done) / self.total >= self.step
        if self.done < self.total and (due or stepped):
            self._report(now)

    def finish(self) -> None:
        """The last line: everything done, in how long."""
        self.done = self.total
        took = duration(self.clock() - self.start)
        self._emit(f"{self.label}: {self.total}/{self.total} {self.unit}, done in {took}")

    def _report(self, now: float) -> None:
        elapsed = now - self.start
        left = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
        percent = 100 * self.done / self.total if self.total else 100.0
        self._emit(
            f"{self.label}: {self.done}/{self.total} {self.unit} ({percent:.0f}%), {duration(elapsed)} elapsed, "
            f"about {duration(left)} left"
        )
        self._last_time, self._last_done = now, self.done

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        logging.getLogger("featvis").info(line)
        console = self.console if self.console is not None else sys.__stderr__
        logged_there = any(getattr(h, "stream", None) is console for h in logging.getLogger().handlers)
        if console is not None and not logged_there:  # the console already shows the log line
            print(f"featvis: {line}", file=console, flush=True)


def tracked(items: Iterable[T], total: int, label: str, unit: str = "items", enabled: bool = True) -> Iterator[T]:
    """``items``, reporting progress (console and log) as they are consumed; ``enabled=False``: silent."""
    if not enabled:
        yield from items
        return
    progress = Progress(label, total, unit, step=0.25)  # a quarter: a short job prints a handful of lines
    for item in items:
        yield item
        progress.update()
    progress.finish()
