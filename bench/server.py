"""The server under test: environment, migrations, the integration token and gunicorn."""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import database
from bench.processes import PROJECT_DIR, Service

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


def manage(args: list[str], env: dict[str, str]) -> str:
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
    manage(["migrate", "--no-input"], env)


def integration_token(env: dict[str, str]) -> str:
    return new_token(env, BENCH_USERNAME)


def new_token(env: dict[str, str], username: str) -> str:
    """A new API token (scope capture) of this integration user, created if missing."""
    out = manage(["shell", "-c", _token_script(username)], env)
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


def _healthy(service: Gunicorn) -> bool:
    try:
        conn = http.client.HTTPConnection(service.host, service.port, timeout=2)
        conn.request("GET", "/healthz")
        healthy = conn.getresponse().status == 200
        conn.close()
        return healthy
    except OSError:
        return False


class Gunicorn(Service):
    """`with Gunicorn(config, env, log) as server:` gunicorn on a free local port, ready once /healthz
    answers 200; always stopped."""

    def __init__(self, config: GunicornConfig, env: dict[str, str], log_path: Path) -> None:
        self.config, self.host, self.port = config, "127.0.0.1", free_port()
        argv = [str(Path(sys.executable).with_name("gunicorn")), "leadportal.wsgi:application"]
        argv += ["--bind", f"{self.host}:{self.port}", *config.args(), "--log-level", "warning"]
        super().__init__("gunicorn", argv, env, log_path, ready=_healthy, ready_timeout=30.0, stop_timeout=15.0)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"
