"""Production as deployed: `check --deploy` is clean with the production settings and compose's
defaults, and production refuses to start without a strong secret key. The checks run in a fresh
process each, as `manage.py` runs in the container (settings are read once per process)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
STRONG = secrets.token_urlsafe(50)  # 67 characters, as the README tells operators to make one
APP_SERVICES = ("web", "worker", "beat")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_"))}
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "leadportal.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_defaults(compose: dict) -> dict[str, str]:
    """The web service's environment as compose fills it in when only DJANGO_SECRET_KEY is given."""
    env = {}
    for name, value in compose["services"]["web"]["environment"].items():
        required = re.fullmatch(r"\$\{(\w+):\?.+\}", str(value))
        default = re.fullmatch(r"\$\{(\w+):-(.*)\}", str(value))
        if required:
            env[name] = STRONG
        elif default:
            env[name] = default.group(2)
        else:
            env[name] = str(value)
    return env


def check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`check --deploy --fail-level WARNING` with a strong key and SQLite in `tmp_path`, `env` on top."""
    defaults = {"DJANGO_SECRET_KEY": STRONG, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    return manage("check", "--deploy", "--fail-level", "WARNING", **{**defaults, **env})


def assert_clean(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert not re.search(r"\b[WE]\d{3}\b|WARNING|ERROR", output), output


def test_check_deploy_is_clean_with_the_production_settings(tmp_path):
    assert_clean(check_deploy(tmp_path))


def test_check_deploy_is_clean_with_what_compose_passes(compose, tmp_path):
    env = compose_defaults(compose)
    assert env["DJANGO_SECRET_KEY"] == STRONG  # the :? form: compose has no value of its own for it
    env.pop("DATABASE_URL")  # no PostgreSQL host "postgres" here: check_deploy's SQLite
    env.pop("REDIS_URL")
    assert_clean(check_deploy(tmp_path, **env))


def test_the_deploy_check_would_see_plain_http_and_insecure_cookies(tmp_path):
    """Control: the clean result above is not a check that cannot fail."""
    result = check_deploy(
        tmp_path, DJANGO_SSL_REDIRECT="false", DJANGO_SECURE_COOKIES="false", DJANGO_HSTS_SECONDS="0"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert sorted(set(re.findall(r"security\.W\d{3}", output))) == [
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
    ], output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DJANGO_SECRET_KEY must be set in production."),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY must be set in production."),
        ({"DJANGO_SECRET_KEY": "change-me-in-production"}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_SECRET_KEY": "ab" * 40}, "DJANGO_SECRET_KEY is too weak"),  # long, two characters
        ({"DJANGO_SECRET_KEY": "django-insecure-" + STRONG}, "DJANGO_SECRET_KEY is too weak"),
        (
            {"DJANGO_SECRET_KEY": STRONG, "DJANGO_SECRET_KEY_FALLBACKS": "old-key"},
            "DJANGO_SECRET_KEY_FALLBACKS (one of its keys) is too weak",
        ),
    ],
    ids=["unset", "empty", "the-old-compose-default", "two-characters", "django-insecure", "weak-fallback"],
)
def test_production_refuses_to_start_without_a_strong_secret_key(tmp_path, env, message):
    result = manage("check", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", **env)
    assert result.returncode == 1
    assert f"ImproperlyConfigured: {message}" in result.stderr, result.stderr
    assert "System check identified" not in result.stdout


def test_production_starts_with_a_strong_key_and_a_strong_fallback(tmp_path):
    result = manage(
        "check",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_SECRET_KEY=STRONG,
        DJANGO_SECRET_KEY_FALLBACKS=f"{secrets.token_urlsafe(50)},{secrets.token_urlsafe(50)}",
    )
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_secret_key_and_is_https_by_default(compose):
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        # `${VAR:?message}`: compose stops with the message when it is unset or empty; no default key.
        assert re.fullmatch(r"\$\{DJANGO_SECRET_KEY:\?Set DJANGO_SECRET_KEY .+\}", env["DJANGO_SECRET_KEY"]), name
        assert env["DJANGO_SECURE_COOKIES"] == "${DJANGO_SECURE_COOKIES:-true}", name
        assert env["DJANGO_SSL_REDIRECT"] == "${DJANGO_SSL_REDIRECT:-true}", name
        assert env["DJANGO_SECRET_KEY_FALLBACKS"] == "${DJANGO_SECRET_KEY_FALLBACKS:-}", name
        assert env["DJANGO_SETTINGS_MODULE"] == "leadportal.settings.production", name
    # The documented way over plain http switches exactly these two.
    header = (ROOT / "docker-compose.yml").read_text().split("x-app:")[0]
    assert "DJANGO_SSL_REDIRECT=false DJANGO_SECURE_COOKIES=false docker compose up" in header


def test_the_health_check_over_plain_http_is_not_redirected(compose, monkeypatch):
    """The web container checks itself at http://127.0.0.1:8000/healthz: that path must stay exempt
    from the https redirect, or the container never turns healthy."""
    import importlib

    monkeypatch.setenv("DJANGO_SECRET_KEY", STRONG)
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/lp-deploy-check.sqlite3")
    production = importlib.reload(importlib.import_module("leadportal.settings.production"))
    check = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000/(\S*?)'", check).group(1)
    assert path == "healthz"
    assert production.SECURE_SSL_REDIRECT is True
    assert any(re.search(pattern, path) for pattern in production.SECURE_REDIRECT_EXEMPT)


def test_the_image_build_uses_a_strong_throwaway_key():
    dockerfile = (ROOT / "Dockerfile").read_text()
    keys = re.findall(r"DJANGO_SECRET_KEY=(\S+)", dockerfile)
    assert keys == ['"$(python'], keys  # generated per build by secrets.token_urlsafe(50), never literal
    assert "secrets.token_urlsafe(50)" in dockerfile
