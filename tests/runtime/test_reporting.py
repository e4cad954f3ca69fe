"""Plain progress lines (no terminal): a line at least every `quiet_seconds`, even inside one long step."""

from __future__ import annotations

import time

from pdec.runtime.reporting import PrintReporter


def test_a_long_step_still_prints_a_line_and_stops_after_the_loop(capsys):
    reporter = PrintReporter(quiet_seconds=1.0)
    reporter.start(0, 10)
    reporter.log({"step": 1, "time_s": 0.1, "loss": 1.0})
    time.sleep(2.6)  # step 2 takes long: no record comes
    reporter.stop()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("step       1/10")
    assert any("step       2/10  still running" in line for line in lines[1:]), lines
    time.sleep(1.5)
    assert capsys.readouterr().err == ""  # after the loop: silent until the summary
    reporter.finish({"status": "completed", "steps": 10, "wall_time_s": 4.2, "final_loss": 1e-3})
    assert capsys.readouterr().err.startswith("completed after 10 steps")


def test_regular_records_keep_it_quiet(capsys):
    reporter = PrintReporter(quiet_seconds=1.5)
    reporter.start(0, 100)
    for step in range(1, 6):
        reporter.log({"step": step, "time_s": step * 0.5, "loss": 1.0})
        time.sleep(0.5)
    reporter.stop()
    assert "still running" not in capsys.readouterr().err
