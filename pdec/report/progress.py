"""Terminal progress for `pdec solve`: a bar with rate, loss and error, then a summary table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..runtime.reporting import Reporter, number


class RichReporter(Reporter):
    def __init__(self, name: str, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.name = name
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[error]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task = None
        self._last = None

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def start(self, step: int, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.name, total=total, completed=step, rate="", loss="–", error="")

    def log(self, record: dict) -> None:
        rate = ""
        if self._last is not None and record["time_s"] > self._last[1]:
            rate = f"{(record['step'] - self._last[0]) / (record['time_s'] - self._last[1]):.1f} step/s"
        self._last = (record["step"], record["time_s"])
        error = ""
        if "rel_l2" in record:
            error = "rel L2 " + " ".join(f"{u} {number(e, 2)}" for u, e in record["rel_l2"].items())
        self.progress.update(self.task, completed=record["step"], rate=rate, loss=number(record["loss"]), error=error)

    def finish(self, summary: dict) -> None:
        self.progress.update(self.task, completed=summary["steps"])
        self.progress.stop()
        table = Table(title=f"{summary['name']}: {summary['status']}", show_header=False)
        table.add_row("optimizer", summary["optimizer"])
        table.add_row("steps", str(summary["steps"]))
        table.add_row("wall time", f"{summary['wall_time_s']:.1f} s")
        table.add_row("final loss", number(summary["final_loss"]))
        for term, value in summary.get("losses", {}).items():
            table.add_row(f"  {term}", number(value))
        for u, e in summary.get("rel_l2", {}).items():
            table.add_row(f"rel. L2 {u}", number(e))
        for p, v in summary.get("parameters", {}).items():
            table.add_row(f"parameter {p}", "n/a" if v is None else f"{v:.6g}")
        if summary.get("message"):
            table.add_row("message", summary["message"])
        self.console.print(table)
