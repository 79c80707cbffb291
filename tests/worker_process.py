"""A child Python process whose stdout lines a test reads as they come, and can SIGKILL.

The SIGKILL tests (tests/test_kill.py, tests/test_kill_directory.py) run a push or a
directory sync in such a process, kill it after some committed batches, and run again.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

LINE_TIMEOUT = 120.0  # seconds to wait for one progress line on a loaded machine


class LineWorker:
    """`python -c script *args` in a child process; its stderr goes to `log`."""

    def __init__(self, script: str, args: list[str], log: Path) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", script, *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self) -> str:
        """The next line the child printed; fails with its stderr if it ended or stalled."""
        try:
            line = self.lines.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            self.kill()
            pytest.fail(f"no progress line within {LINE_TIMEOUT}s: {self.log.read_text()}")
        if line is None:
            pytest.fail(f"worker ended early ({self.process.wait()}): {self.log.read_text()}")
        return line

    def kill(self) -> None:
        """SIGKILL the child, then wait for it and its reader."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        """Wait for the child to end and its output to be read."""
        self.process.wait(timeout=LINE_TIMEOUT)
        self.reader.join(timeout=LINE_TIMEOUT)
        assert self.process.stdout is not None
        self.process.stdout.close()
