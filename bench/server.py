"""The server under test: environment, migrations, the integration token and gunicorn's lifecycle."""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import database

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCH_USERNAME = "bench-integration"
KEY_LINE_PREFIX = "BENCH_API_KEY="


def _token_script(username: str) -> str:
    """Creates (or finds) an integration user and gives it a new token (only a key's hash is stored, so
    an earlier run's key cannot be read back); prints the key after a marker."""
    return f"""
from leads.models import Role, User
from leads.tokens import token_create
user, _ = User.objects.get_or_create(username={username!r}, defaults={{"role": Role.INTEGRATION}})
print({KEY_LINE_PREFIX!r} + token_create(user=user, name="bench")[1])
"""


def server_environment(dbname: str = database.BENCH_DB) -> dict[str, str]:
    """Production settings on the bench database. REDIS_URL is removed: Celery runs tasks eagerly
    in the web process, so no worker or broker is needed (and none is measured)."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database.database_url(dbname),
        DJANGO_SETTINGS_MODULE="leadportal.settings.production",
        DJANGO_SECRET_KEY=f"bench-only-{secrets.token_urlsafe(40)}",  # a fresh throw-away key per run
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_COOKIES="false",
        DJANGO_SSL_REDIRECT="false",  # the bench speaks plain http to gunicorn
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    return env


def _manage(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def migrate(env: dict[str, str]) -> None:
    _manage(["migrate", "--no-input"], env)


def integration_token(env: dict[str, str]) -> str:
    return new_token(env, BENCH_USERNAME)


def new_token(env: dict[str, str], username: str) -> str:
    """A new API token (scope capture) of this integration user, created if missing."""
    out = _manage(["shell", "-c", _token_script(username)], env)
    for line in out.splitlines():
        if line.startswith(KEY_LINE_PREFIX):
            return line.removeprefix(KEY_LINE_PREFIX).strip()
    raise RuntimeError(f"no token in the output of manage.py shell:\n{out}")


@dataclass(frozen=True)
class GunicornConfig:
    worker_class: str = "sync"
    workers: int = 4
    threads: int = 1
    keep_alive: int = 5
    timeout: int = 60

    @property
    def keeps_alive(self) -> bool:
        """Sync workers answer `Connection: close`; gthread (and async classes) keep connections."""
        return self.worker_class != "sync"

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.workers} {self.worker_class} workers{threads}"

    def args(self) -> list[str]:
        args = ["--worker-class", self.worker_class, "--workers", str(self.workers), "--timeout", str(self.timeout)]
        if self.worker_class != "sync":
            args += ["--keep-alive", str(self.keep_alive)]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        return args

    def as_dict(self) -> dict:
        values = asdict(self)
        if self.worker_class == "sync":
            values.pop("threads")  # not used by sync workers
            values.pop("keep_alive")  # sync workers close every connection
        return {**values, "args": self.args()}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`with Gunicorn(...) as server:` starts gunicorn, waits for /healthz and always stops it."""

    def __init__(self, config: GunicornConfig, env: dict[str, str], log_path: Path) -> None:
        self.config = config
        self.env = env
        self.log_path = log_path
        self.host = "127.0.0.1"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.command: list[str] = []

    def __enter__(self) -> Gunicorn:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.command = [
            str(gunicorn),
            "leadportal.wsgi:application",
            "--bind",
            f"{self.host}:{self.port}",
            *self.config.args(),
            "--log-level",
            "warning",
            "--error-logfile",
            str(self.log_path),
        ]
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                body = response.read().decode(errors="replace")
                conn.close()
                if response.status == 200:
                    return
                last = f"{response.status} {body[:200]}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn /healthz did not return 200 within {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The master's children (its workers), found by parent pid in /proc."""
        if self.process is None:
            return []
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        """SIGTERM the master we started (it stops its workers); SIGKILL it if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no gunicorn log)"
