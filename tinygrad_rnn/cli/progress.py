"""A small progress bar for long work, on stderr (no dependency).

On a terminal it redraws one line in place with a carriage return, at most ten times a second:

    LSTM  [#########...........]  450/1000  45%  38.2 it/s  ETA 0:14  loss 0.0412

When stderr is not a terminal (a log file, a pipe, CI) it prints plain lines instead: one at
each tenth of the way and one at the end, so logs stay short and readable.
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress", "format_seconds"]

WIDTH = 20          # characters of the bar
REDRAW_EVERY = 0.1  # seconds between redraws on a terminal


def format_seconds(seconds: float) -> str:
    """0:07, 3:25, 1:02:03."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Progress(total, label): call update(n=1, **info) after each item and close() at the end
    (or use it as a context manager). info (e.g. loss=0.04) is shown after the rate and ETA.
    start: items already done (a resumed run), counted in the position but not in the rate."""

    def __init__(self, total: int, label: str = "", stream=None, start: int = 0):
        self.total, self.label = max(int(total), 0), label
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.start = start
        self.info = {}
        self.began = time.perf_counter()
        self._drawn_at = 0.0
        self._next_line = self._tenth_after(start)
        self._closed = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, **info) -> None:
        """Count n more items done; info replaces the values shown after the bar."""
        self.done += n
        self.info.update(info)
        if self.tty:
            now = time.perf_counter()
            if now - self._drawn_at >= REDRAW_EVERY or self.done >= self.total:
                self._drawn_at = now
                self.stream.write("\r" + self.line() + "\033[K")
                self.stream.flush()
        elif self.done >= self._next_line and self.done < self.total:
            self._next_line = self._tenth_after(self.done)
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line (once)."""
        if self._closed:
            return
        self._closed = True
        self.stream.write(("\r" + self.line() + "\033[K\n") if self.tty else self.line() + "\n")
        self.stream.flush()

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def line(self) -> str:
        """The text of the bar as it stands."""
        elapsed = self.elapsed()
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(round(fraction * WIDTH))
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        when = f"ETA {format_seconds(left)}" if self.done < self.total else f"in {format_seconds(elapsed)}"
        parts = [f"{self.label:<6}" if self.label else "", "[" + "#" * filled + "." * (WIDTH - filled) + "]",
                 f"{self.done:>{len(str(self.total))}}/{self.total}", f"{fraction:4.0%}", f"{_rate(rate)}", when]
        parts += [f"{key} {_value(value)}" for key, value in self.info.items()]
        return "  ".join(p for p in parts if p)

    def _tenth_after(self, done: int) -> int:
        """The next item count at which a plain (non-terminal) line is due."""
        step = max(self.total // 10, 1)
        return (done // step + 1) * step


def _rate(rate: float) -> str:
    if rate >= 1 or rate == 0:
        return f"{rate:.1f} it/s"
    return f"{1 / rate:.1f} s/it"


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
