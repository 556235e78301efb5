"""The bench's one process supervisor: gunicorn, a Celery worker and wrk run as `Service`s.

A service is a child in a session (process group) of its own with its output in a log file (a pipe
nobody reads fills up and blocks the child). `with Service(...)` starts it, polls `ready` until it
answers and always stops it: SIGTERM to the group (gunicorn's and a prefork worker's children
included), SIGKILL to the group after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench import environment

PROJECT_DIR = Path(__file__).resolve().parent.parent


class Service:
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        ready: Callable[[Service], bool] | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.ready, self.ready_timeout, self.stop_timeout = ready, ready_timeout, stop_timeout
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """It and its descendants (gunicorn's workers, a prefork pool), for the CPU split; none
        before it started."""
        return environment.tree_pids(self.process.pid) if self.process else []

    def __enter__(self) -> Service:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=PROJECT_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        if self.ready is None:
            return
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.ready(self):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {self.ready_timeout:.0f} s:\n{self.log_tail()}")

    def wait(self, timeout: float) -> int:
        """Until it exits by itself (wrk); stopped and an error when it takes longer than `timeout`."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"{self.name} did not finish within {timeout:.0f} s:\n{self.log_tail()}") from None

    def interrupt(self) -> None:
        """SIGINT to the group (wrk: stop now, report what was measured)."""
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGINT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or f"(no {self.name} log)"
