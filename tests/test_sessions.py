"""Sessions: signed out after DJANGO_SESSION_IDLE_TIMEOUT without a request, renewed by every
request; a rotated secret key keeps everyone signed in only while the old key is in
SECRET_KEY_FALLBACKS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

IDLE = django_settings.SESSION_COOKIE_AGE


def signed_in(user) -> tuple[Client, Session]:
    web = Client()
    web.force_login(user)
    return web, Session.objects.get(session_key=web.session.session_key)


def test_the_idle_timeout_is_thirty_minutes_and_renewed_on_each_request():
    assert IDLE == 30 * 60
    assert django_settings.SESSION_SAVE_EVERY_REQUEST is True
    assert django_settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is False  # the cookie carries the same Max-Age


@pytest.mark.django_db
def test_a_session_unused_past_the_timeout_is_signed_out(rep_a, rep_b):
    idle, session = signed_in(rep_a)
    busy, control = signed_in(rep_b)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))

    response = idle.get("/app/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/app/"
    assert busy.get("/app/").status_code == 200  # the other session is untouched
    assert Session.objects.filter(pk=control.pk).exists()


@pytest.mark.django_db
def test_a_session_used_in_time_stays_and_its_timeout_starts_again(rep_a):
    web, session = signed_in(rep_a)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + timedelta(seconds=30))

    before = timezone.now()
    response = web.get("/app/")

    assert response.status_code == 200
    renewed = Session.objects.get(pk=session.pk).expire_date
    assert before + timedelta(seconds=IDLE - 5) <= renewed <= timezone.now() + timedelta(seconds=IDLE)
    assert response.cookies["sessionid"]["max-age"] == IDLE  # the browser forgets it at the same time


@pytest.mark.django_db
def test_an_api_token_call_opens_no_session(api, integration):
    answer = api(integration).post("/api/v1/leads/", {"email": "nosession@example.com"}, format="json")
    assert answer.status_code == 201
    assert "sessionid" not in answer.cookies
    assert Session.objects.count() == 0


@pytest.mark.django_db
def test_rotating_the_secret_key_keeps_sessions_only_with_the_old_key_as_fallback(rep_a, rep_b, settings):
    old = settings.SECRET_KEY
    kept, _ = signed_in(rep_a)
    lost, _ = signed_in(rep_b)
    settings.SECRET_KEY = "rotated-" + "k" * 20 + "0123456789abcdef" * 2

    settings.SECRET_KEY_FALLBACKS = [old]
    assert kept.get("/app/").status_code == 200  # and the session is saved again, under the new key

    settings.SECRET_KEY_FALLBACKS = []
    assert kept.get("/app/").status_code == 200  # used while the fallback was there: carries on
    signed_out = lost.get("/app/")  # not used in that time: signed out
    assert signed_out.status_code == 302
    assert signed_out["Location"] == "/accounts/login/?next=/app/"
