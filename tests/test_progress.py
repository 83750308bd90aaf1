"""The progress helper: throttled lines with done, total and time left, on the console even when
stderr goes to the job's log."""

import io
import subprocess
import sys

from featvis.core.progress import Progress, duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_lines_are_throttled_and_estimate_time_left():
    clock, console = Clock(), io.StringIO()
    progress = Progress("scan", 100, "positions", interval=5.0, step=0.5, console=console, clock=clock)
    for _ in range(10):  # 10 positions in 1 s: neither 5 s nor half the work has passed
        clock.now += 0.1
        progress.update()
    assert len(progress.lines) == 1
    clock.now = 10.0
    progress.update(10)  # 20 done after 10 s: 5 s passed, so a line, and 80 left take about 40 s
    assert progress.lines[-1] == "scan: 20/100 positions (20%), 10 s elapsed, about 40 s left"
    progress.update(50)  # half the total in one step: a line even without 5 s passing
    assert progress.lines[-1].startswith("scan: 70/100 positions (70%)")
    clock.now = 125.0
    progress.finish()
    assert progress.lines[-1] == "scan: 100/100 positions, done in 2 min 5 s"
    assert console.getvalue().splitlines() == [f"featvis: {line}" for line in progress.lines]


def test_durations_read_like_people_write_them():
    assert [duration(s) for s in (4.4, 60, 185, 3600, 7800)] == ["4 s", "1 min", "3 min 5 s", "1 h", "2 h 10 min"]


def test_console_gets_the_lines_when_stderr_goes_to_the_log(tmp_path):
    log = tmp_path / "job.log"
    code = (
        "import sys\nfrom featvis.core.runtime import start_job\nfrom featvis.core.progress import Progress\n"
        f"start_job([{str(log)!r}])\np = Progress('scan', 4, 'positions', interval=0)\n"
        "for _ in range(4): p.update()\np.finish()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": "src"})  # fmt: skip
    assert "featvis: scan: 2/4 positions (50%)" in done.stderr
    assert "featvis: scan: 4/4 positions, done in" in done.stderr
    assert "INFO featvis: scan: 2/4 positions (50%)" in log.read_text()
