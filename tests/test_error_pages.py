"""The site's own error pages in every mode: 403, 404 and 500 in words, with the person's way home.
With DEBUG on, only superusers get Django's technical pages (every URL pattern, a traceback);
marketing at a rep's page, the integration user at the portal, a stranger at a wrong address get the styled page,
and staff (marketing) read one line of detail on it."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import path

from leadportal.urls import handler500 as site_handler500
from leadportal.urls import urlpatterns as site_urlpatterns
from leads.models import Role
from leads.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TECHNICAL = ("Using the URLconf", "Django tried these URL patterns", "Traceback", "DEBUG = True", "Raised by")


def refuses(request):
    raise PermissionDenied


def breaks(request):
    raise ZeroDivisionError("a bug")


# The site, and two views that fail (this module is the URLconf of the tests marked with it).
urlpatterns = [*site_urlpatterns, path("test/refuses/", refuses), path("test/breaks/", breaks)]
handler500 = site_handler500


def _client(persona, users) -> Client:
    client = Client(raise_request_exception=False)
    if persona != "anonymous":
        client.force_login(users[persona])
    return client


@pytest.fixture
def users(db):
    return {
        "marketing": UserFactory(username="maria", role=Role.MARKETING, is_staff=True),
        "integration": UserFactory(username="webforms", role=Role.INTEGRATION),
        "rep": UserFactory(username="rita", role=Role.SALES_REP),
        "superuser": UserFactory(username="root", role=Role.MARKETING, is_staff=True, is_superuser=True),
    }


def _styled(response, status: int, heading: str, home: tuple[str, str]) -> str:
    html = response.content.decode()
    assert response.status_code == status
    assert f"<h1>{heading}</h1>" in html
    assert f'href="{home[0]}">{home[1]}</a>' in html
    assert 'class="topbar"' in html and "css/app.css" in html  # the site's layout, not a bare page
    for word in TECHNICAL:
        assert word not in html
    return html


HOMES = {
    "anonymous": ("/accounts/login/", "Sign in"),
    "marketing": ("/app/leads/", "Back to the leads"),
    "integration": ("/api/docs/", "Open the API documentation"),
    "rep": ("/app/", "Back to my queue"),
}


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("persona", ["anonymous", "marketing", "integration", "rep"])
def test_a_wrong_address_is_the_styled_404_with_the_way_home(settings, users, persona, debug):
    settings.DEBUG = debug
    response = _client(persona, users).get("/no/such/page/")
    html = _styled(response, 404, "Nothing here", HOMES[persona])
    assert "This page does not exist, or it is not yours to see." in html


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    # (/app/ and / take marketing and the integration user home now: to the lead list, the API docs)
    ("persona", "url"),
    [("marketing", "/app/queue/"), ("integration", "/partner/"), ("rep", "/app/leads/999999/")],
)
def test_pages_that_are_not_theirs_are_the_styled_404(settings, users, persona, url, debug):
    settings.DEBUG = debug
    _styled(_client(persona, users).get(url), 404, "Nothing here", HOMES[persona])


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("persona", ["anonymous", "marketing", "integration"])
def test_a_refusal_is_the_styled_403(settings, users, persona, debug):
    settings.DEBUG = debug
    html = _styled(_client(persona, users).get("/test/refuses/"), 403, "You may not do this", HOMES[persona])
    assert "Nothing was changed." in html


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("persona", ["anonymous", "marketing", "integration"])
def test_a_bug_is_the_styled_500_and_is_still_logged(settings, users, persona, debug, caplog):
    settings.DEBUG = debug
    html = _styled(
        _client(persona, users).get("/test/breaks/"), 500, "Something went wrong on our side", HOMES[persona]
    )
    assert "The error has been logged" in html
    assert any(r.name == "django.request" and r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


@pytest.mark.urls(__name__)
def test_in_debug_staff_read_the_detail_and_superusers_get_the_technical_pages(settings, users):
    settings.DEBUG = True
    marketing = _client("marketing", users)
    html = _styled(marketing.get("/test/breaks/"), 500, "Something went wrong on our side", HOMES["marketing"])
    assert "<pre>ZeroDivisionError: a bug</pre>" in html
    settings.DEBUG = False
    assert "ZeroDivisionError" not in marketing.get("/test/breaks/").content.decode()
    settings.DEBUG = True
    assert "ZeroDivisionError" not in _client("rep", users).get("/test/breaks/").content.decode()


@pytest.mark.urls(__name__)
def test_in_debug_superusers_get_the_technical_pages(settings, users):
    settings.DEBUG = True
    client = _client("superuser", users)
    assert "Django tried these URL patterns" in client.get("/no/such/page/").content.decode()
    assert "ZeroDivisionError" in client.get("/test/breaks/").content.decode()


@pytest.mark.urls(__name__)
def test_in_debug_a_missing_slash_is_still_added(settings, users):
    settings.DEBUG = True
    response = _client("rep", users).get("/app/pool")
    assert (response.status_code, response["Location"]) == (301, "/app/pool/")
