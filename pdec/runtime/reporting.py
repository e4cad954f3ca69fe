"""Progress reports of a training run: the callbacks the trainer calls, and the plain
lines printed where there is no terminal (logs, CI, ``nohup``, standalone scripts).
The terminal's live display is `pdec.report.progress.RichReporter`."""

from __future__ import annotations

import sys
import threading
import time

QUIET_SECONDS = 10.0
"""Without a terminal a line appears at least this often, even inside one long step."""


class Reporter:
    """Progress callbacks; the default prints nothing."""

    def note(self, text: str) -> None:
        """One line of information before training (what `auto` chose)."""

    def start(self, step: int, total: int) -> None: ...

    def log(self, record: dict) -> None: ...

    def stop(self) -> None:
        """The training loop has ended, normally or by an error (the summary may follow)."""

    def finish(self, summary: dict) -> None: ...


class PrintReporter(Reporter):
    """Plain progress lines on stderr, each printed as it comes (standalone scripts, logs, and `pdec
    solve` without a terminal: piped, CI, ``nohup``), never cut to a terminal's width."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.total = None
        self.quiet_seconds = quiet_seconds
        self.last = (0, 0.0)  # the step and run time of the last line
        self._printed = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def note(self, text: str) -> None:
        self._print(text)

    def start(self, step: int, total: int) -> None:
        self.total, self.last = total, (step, 0.0)
        self._printed = time.monotonic()
        threading.Thread(target=self._heartbeat, name="pdec-progress", daemon=True).start()

    def _heartbeat(self) -> None:
        """A line at least every ``quiet_seconds`` while a step takes longer than that (a large
        Gauss–Newton step, a first step that compiles): a log never looks hung."""
        while not self._stop.wait(1.0):
            quiet = time.monotonic() - self._printed
            if quiet >= self.quiet_seconds:
                step, _ = self.last
                self._print(f"step {step + 1:>7}/{self.total}  still running ({quiet:.0f} s since the last line)")

    def _print(self, text: str) -> None:
        with self._lock:
            print(text, file=sys.stderr, flush=True)
            self._printed = time.monotonic()

    def log(self, record: dict) -> None:
        error = _errors(record)
        self.last = (record["step"], record["time_s"])
        self._print(
            f"step {record['step']:>7}/{self.total}  {record['time_s']:8.1f} s  loss {number(record['loss'])}"
            f"{'  rel L2 ' + error if error else ''}"
        )

    def stop(self) -> None:
        self._stop.set()

    def finish(self, summary: dict) -> None:
        self._stop.set()
        error = _errors(summary)
        self._print(
            f"{summary['status']} after {summary['steps']} steps, {summary['wall_time_s']:.1f} s, "
            f"final loss {number(summary['final_loss'])}{', rel L2 ' + error if error else ''}"
        )


def _errors(record: dict) -> str:
    """``u 1.234e-03 v n/a``: the relative errors of a record or summary."""
    return " ".join(f"{u} {number(e)}" for u, e in record.get("rel_l2", {}).items())


def number(value, digits: int = 3) -> str:
    """A metric for people: ``1.234e-03``, or ``n/a`` for null (a NaN in the JSON, e.g. the relative
    error of a zero solution)."""
    return "n/a" if value is None else f"{value:.{digits}e}"
