"""No Docker engine runs here, so the production shape is checked by reading it: every service of
docker-compose.yml must point at something that exists in this code base."""

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml
from celery import Celery
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_of(service: dict) -> str:
    command = service["command"]
    return command if isinstance(command, str) else shlex.join(command)


def test_compose_has_the_production_shape(compose):
    assert set(compose["services"]) == {"postgres", "redis", "web", "worker", "beat"}
    for name in ("web", "worker", "beat"):
        service = compose["services"][name]
        assert service["build"] == "."
        assert {"postgres", "redis"} <= set(service["depends_on"])
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_every_settings_module_named_exists(compose):
    modules = {
        s["environment"]["DJANGO_SETTINGS_MODULE"]
        for s in compose["services"].values()
        if "DJANGO_SETTINGS_MODULE" in s.get("environment", {})
    }
    dockerfile = (ROOT / "Dockerfile").read_text()
    modules |= set(re.findall(r"DJANGO_SETTINGS_MODULE=([\w.]+)", dockerfile))
    assert modules == {"leadportal.settings.production"}
    assert (ROOT / "leadportal" / "settings" / "production.py").is_file()


def test_web_serves_the_wsgi_application_that_exists(compose):
    target = re.search(r"gunicorn ([\w.]+):(\w+)", command_of(compose["services"]["web"]))
    module, attr = target.groups()
    assert getattr(importlib.import_module(module), attr) is not None
    assert "manage.py migrate" in command_of(compose["services"]["web"])


@pytest.mark.parametrize(("service", "subcommand"), [("worker", "worker"), ("beat", "beat")])
def test_worker_and_beat_run_the_celery_app_that_exists(compose, service, subcommand):
    words = shlex.split(command_of(compose["services"][service]))
    assert words[:2] == ["celery", "-A"]
    assert words[3] == subcommand
    app = importlib.import_module(words[2]).celery_app
    assert isinstance(app, Celery)
    assert app.main == "leadportal"


def test_production_settings_refuse_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        importlib.reload(importlib.import_module("leadportal.settings.production"))


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("On", True), ("0", False), ("no", False)])
def test_booleans_from_the_environment(monkeypatch, raw, expected):
    from leadportal.settings.base import envbool

    monkeypatch.setenv("DJANGO_DEBUG", raw)
    assert envbool("DJANGO_DEBUG", default=not expected) is expected


def test_a_malformed_boolean_is_an_error_not_false(monkeypatch):
    from leadportal.settings.base import envbool

    monkeypatch.setenv("DJANGO_DEBUG", "ture")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG='ture' is not a boolean"):
        envbool("DJANGO_DEBUG", default=False)


def test_healthz_reports_database_and_broker(db, settings):
    settings.REDIS_URL = ""
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}


def test_healthz_is_503_when_the_broker_does_not_answer(db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["broker"].startswith("error: ")
