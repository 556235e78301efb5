"""Security headers: the Content-Security-Policy on pages, API answers and errors; in production
HSTS on https, plain http redirected to https (also behind a proxy that says X-Forwarded-Proto), and
/healthz left on http for the container's health check."""

from __future__ import annotations

import importlib
import re
import secrets
from pathlib import Path

import pytest
from django.test import Client

from tests.browser import directives

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
SECURITY = (
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


def policy_of(response) -> dict[str, str]:
    return directives(response["Content-Security-Policy"])


@pytest.mark.django_db
def test_pages_api_answers_and_errors_carry_the_policy(client, api, rep_a, integration):
    assert policy_of(client.get("/accounts/login/")) == POLICY
    client.force_login(rep_a)
    page = client.get("/app/")
    assert page.status_code == 200
    assert policy_of(page) == POLICY
    assert policy_of(client.get("/app/leads/999999/")) == POLICY  # the 404 page
    answer = api(integration).post("/api/v1/leads/", {"email": "csp@example.com"}, format="json")
    assert answer.status_code == 201
    assert policy_of(answer) == POLICY
    assert policy_of(api(None).get("/api/v1/leads/")) == POLICY  # 401
    assert policy_of(client.get("/app/?q=%00")) == POLICY  # refused by a middleware before any view
    assert "Content-Security-Policy-Report-Only" not in page


@pytest.fixture
def production(monkeypatch, settings):
    """`production(**env)`: the production module's security settings for that environment, in force."""

    def load(**env: str):
        monkeypatch.setenv("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
        monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/lp-security-headers.sqlite3")
        for name in ("DJANGO_SSL_REDIRECT", "DJANGO_HSTS_SECONDS", "DJANGO_HSTS_PRELOAD", "DJANGO_SECURE_COOKIES"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        module = importlib.reload(importlib.import_module("leadportal.settings.production"))
        for name in SECURITY:
            setattr(settings, name, getattr(module, name))
        return module

    return load


@pytest.mark.django_db
def test_production_redirects_http_and_sends_hsts_on_https(production):
    module = production()
    assert (module.SECURE_HSTS_SECONDS, module.SECURE_HSTS_PRELOAD) == (31_536_000, False)
    assert module.SILENCED_SYSTEM_CHECKS == ["security.W021"]
    web = Client()  # made after the settings: SecurityMiddleware reads them when it is built

    plain = web.get("/accounts/login/?next=/app/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/accounts/login/?next=/app/"
    assert "Strict-Transport-Security" not in plain  # HSTS means nothing over http (RFC 6797)

    secure = web.get("/accounts/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert policy_of(secure) == POLICY

    proxied = web.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})  # TLS ended at the proxy
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.django_db
def test_production_leaves_healthz_on_plain_http(production):
    production()
    health = Client().get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"


@pytest.mark.django_db
def test_a_proxy_that_redirects_itself_can_turn_the_redirect_off_and_keep_hsts(production):
    module = production(DJANGO_SSL_REDIRECT="false", DJANGO_HSTS_PRELOAD="true", DJANGO_HSTS_SECONDS="600")
    assert module.SILENCED_SYSTEM_CHECKS == []  # preload on: nothing is silenced
    web = Client()
    assert web.get("/accounts/login/").status_code == 200
    secure = web.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert secure["Strict-Transport-Security"] == "max-age=600; includeSubDomains; preload"


@pytest.mark.parametrize("raw", ["ture", "1x"])
def test_a_mistyped_switch_stops_production(production, raw):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="DJANGO_SSL_REDIRECT"):
        production(DJANGO_SSL_REDIRECT=raw)


INLINE = re.compile(r"""\sstyle\s*=|<style[\s>]|<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+\s*=|javascript:""", re.I)


def test_no_template_or_admin_helper_carries_inline_script_or_style():
    """Without Chromium (the browser test skips) this still catches a new style="" or onclick=."""
    root = Path(__file__).resolve().parent.parent
    # E-mails are not pages: no CSP applies to mail and clients drop style blocks, so their CSS is inline
    # (leads/tests/test_mail.py checks they load nothing from elsewhere).
    pages = [path for path in root.glob("templates/**/*.html") if "emails" not in path.relative_to(root).parts]
    sources = [*pages, *root.glob("*/admin.py"), *root.glob("*/views.py")]
    found = []
    for path in sources:
        text = re.sub(r"\{#.*?#\}", "", path.read_text())  # template comments say why, they render nothing
        found += [f"{path.relative_to(root)}: {m.group(0)!r}" for m in INLINE.finditer(text)]
    assert len(sources) > 40
    assert found == []
