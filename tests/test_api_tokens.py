"""API tokens (leads.tokens): hashed at rest, shown once, expiring, revocable, revoked on every door
that changes a password, last use recorded sparingly, and scopes that fit the user's role."""

from __future__ import annotations

import hashlib
import importlib
import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from leads.models import ApiToken, Lead, Stage, TokenRevokedReason
from leads.tests.factories import LeadFactory, UserFactory
from leads.tokens import TOUCH_EVERY, token_authenticate, token_create

pytestmark = pytest.mark.django_db

CAPTURE = {"email": "jane@example.com", "first_name": "Jane"}
NEW_PASSWORD = "a-long-new-passphrase-42"


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def leads_list(key: str):
    return client_with(key).get("/api/v1/leads/")


def assert_refused(response, detail: str) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == detail


# --- hashed at rest, shown once ----------------------------------------------------------------


def test_the_database_holds_only_the_keys_digest(marketing):
    token, key = token_create(user=marketing, name="CRM sync")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")  # noqa: S608 - our own table name
        stored = repr(cursor.fetchall())
    assert len(key) == 40
    assert key not in stored
    assert (token.prefix, token.digest) == (key[:8], hashlib.sha256(key.encode()).hexdigest())
    assert leads_list(key).status_code == 200


def test_the_admin_list_and_page_show_name_prefix_and_scopes_never_the_key(admin_client, integration):
    token, key = token_create(user=integration, name="Web form")

    listing = admin_client.get(reverse("admin:leads_apitoken_changelist")).content.decode()
    page = admin_client.get(reverse("admin:leads_apitoken_change", args=[token.pk])).content.decode()

    for html in (listing, page):
        assert "Web form" in html
        assert token.prefix in html
        assert "capture" in html
        assert key not in html
        assert token.digest not in html


def test_adding_a_token_in_the_admin_shows_its_key_once_and_nowhere_else(admin_client, integration):
    response = admin_client.post(
        reverse("admin:leads_apitoken_add"), {"user": integration.pk, "name": "Web form", "days": "30"}
    )

    assert response.status_code == 200
    key = re.search(r'<code class="lp-token-key">([^<]+)</code>', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.scope_list, token.prefix) == (integration, "Web form", ["capture"], key[:8])
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert client_with(key).post("/api/v1/leads/", CAPTURE).status_code == 201
    # Not in a message waiting in the session or a cookie, not on any later page.
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_data FROM django_session")
        sessions = repr(cursor.fetchall())
    assert key not in sessions
    assert all(key not in morsel.value for morsel in response.cookies.values())
    for url in (reverse("admin:leads_apitoken_changelist"), reverse("admin:leads_apitoken_change", args=[token.pk])):
        assert key not in admin_client.get(url).content.decode()


def test_the_admin_refuses_scopes_the_users_role_does_not_allow(admin_client, integration):
    response = admin_client.post(
        reverse("admin:leads_apitoken_add"),
        {"user": integration.pk, "name": "Too much", "scopes": ["capture", "read"], "days": "30"},
    )

    assert response.status_code == 200
    assert "may have capture; not read" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_token_create_prints_the_key_alone_and_it_works(integration):
    out, err = io.StringIO(), io.StringIO()
    call_command("token_create", "--user", "webforms", "--name", "Web form", "--days", "7", stdout=out, stderr=err)

    key = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert (len(key), token.prefix, token.scope_list) == (40, key[:8], ["capture"])
    assert "shown this once" in err.getvalue()
    assert key not in err.getvalue()
    assert client_with(key).post("/api/v1/leads/", CAPTURE).status_code == 201


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No user 'nobody'."),
        (["--user", "webforms", "--scopes", "capture,read"], "may have capture; not read"),
        (["--user", "webforms", "--scopes", "admin"], "Unknown scope(s): admin."),
        (["--user", "webforms", "--days", "-1"], "may not be negative"),
    ],
)
def test_token_create_refuses_what_does_not_fit(integration, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("token_create", *args, "--name", "x", stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiToken.objects.exists()


# --- refused: unknown, expired, revoked ---------------------------------------------------------


def test_without_or_with_an_unknown_token_the_api_answers_401(marketing):
    assert APIClient().get("/api/v1/leads/").status_code == 401
    assert_refused(leads_list("x" * 40), "Invalid token.")
    _token, key = token_create(user=marketing, name="CRM")
    assert_refused(leads_list(key[:-1] + ("A" if key[-1] != "A" else "B")), "Invalid token.")  # same prefix


def test_an_expired_token_answers_401(marketing):
    token, key = token_create(user=marketing, name="CRM", days=1)
    assert leads_list(key).status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert_refused(leads_list(key), "The token has expired.")


def test_a_token_of_zero_days_never_expires(marketing):
    token, _key = token_create(user=marketing, name="CRM", days=0)
    assert token.expires_at is None


def test_the_default_expiry_comes_from_the_setting(marketing, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 10
    token, _key = token_create(user=marketing, name="CRM")
    assert timedelta(days=9, hours=23) < token.expires_at - timezone.now() <= timedelta(days=10)


def test_revoking_in_the_admin_makes_the_token_answer_401_and_leaves_others_alone(admin_client, marketing, rep_a):
    token, key = token_create(user=marketing, name="CRM")
    _other, other_key = token_create(user=rep_a, name="Phone app")

    response = admin_client.post(
        reverse("admin:leads_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )

    assert "1 token(s) revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_reason == TokenRevokedReason.ADMIN
    assert_refused(leads_list(key), "The token has been revoked (revoked in the admin).")
    assert leads_list(other_key).status_code == 200


def test_an_inactive_users_token_answers_401(marketing):
    _token, key = token_create(user=marketing, name="CRM")
    type(marketing).objects.filter(pk=marketing.pk).update(is_active=False)
    assert_refused(leads_list(key), "User inactive or deleted.")


# --- revoked on a password change, through every door -------------------------------------------

REVOKED_BY_PASSWORD = "The token has been revoked (the user's password changed)."


@pytest.fixture
def two_tokens(marketing, rep_a):
    """marketing's token, which the password change must revoke, and rep A's, which must keep working."""
    _mine, key = token_create(user=marketing, name="CRM")
    _control, control_key = token_create(user=rep_a, name="Phone app")
    return marketing, key, control_key


def assert_revoked_by_password(key: str, control_key: str) -> None:
    assert_refused(leads_list(key), REVOKED_BY_PASSWORD)
    assert leads_list(control_key).status_code == 200
    assert ApiToken.objects.get(revoked_at__isnull=False).revoked_reason == TokenRevokedReason.PASSWORD_CHANGED


def test_the_password_change_view_revokes_the_users_tokens(two_tokens):
    user, key, control_key = two_tokens
    web = Client()
    web.force_login(user)

    response = web.post(
        reverse("password_change"),
        {"old_password": "pw", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert_revoked_by_password(key, control_key)


def test_the_password_reset_confirm_view_revokes_the_users_tokens(two_tokens):
    user, key, control_key = two_tokens
    web = Client()
    url = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    set_password_url = web.get(url)["Location"]  # the token moves into the session, then this form

    response = web.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_complete")
    assert_revoked_by_password(key, control_key)


def test_the_admins_password_form_revokes_the_users_tokens(two_tokens, admin_client):
    user, key, control_key = two_tokens

    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert_revoked_by_password(key, control_key)


def test_changepassword_revokes_the_users_tokens(two_tokens, monkeypatch):
    user, key, control_key = two_tokens
    monkeypatch.setattr(
        "django.contrib.auth.management.commands.changepassword.getpass.getpass", lambda *args, **kwargs: NEW_PASSWORD
    )

    call_command("changepassword", user.username, stdout=io.StringIO())

    assert_revoked_by_password(key, control_key)


def test_set_password_and_save_revokes_the_users_tokens_and_other_saves_do_not(two_tokens):
    user, key, control_key = two_tokens
    user.first_name = "Maria"
    user.save()
    user.set_password(NEW_PASSWORD)
    assert leads_list(key).status_code == 200  # not before it is saved

    user.save()

    assert_revoked_by_password(key, control_key)
    _fresh, fresh_key = token_create(user=user, name="CRM again")
    user.save(update_fields=["last_login"])
    assert leads_list(fresh_key).status_code == 200


def test_a_password_hash_upgrade_at_sign_in_is_no_password_change(marketing, settings):
    """Django re-hashes a password with a newer hasher when it is checked; that is not a change."""
    _token, key = token_create(user=marketing, name="CRM")
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert marketing.password.startswith("md5$")

    assert marketing.check_password("pw")

    marketing.refresh_from_db()
    assert marketing.password.startswith("pbkdf2_sha256$")  # it was upgraded ...
    assert leads_list(key).status_code == 200  # ... and the token lives


# --- last used, written sparingly ---------------------------------------------------------------


def token_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and ApiToken._meta.db_table in q["sql"]]


def test_last_used_is_recorded_and_not_rewritten_within_a_minute(integration):
    token, key = token_create(user=integration, name="Web form")
    client = client_with(key)
    assert token.last_used_at is None

    with CaptureQueriesContext(connection) as first:
        assert client.post("/api/v1/leads/", CAPTURE).status_code == 201
    token.refresh_from_db()
    used = token.last_used_at
    with CaptureQueriesContext(connection) as second:
        assert client.post("/api/v1/leads/", CAPTURE).status_code == 200

    assert len(token_updates(first.captured_queries)) == 1
    assert token_updates(second.captured_queries) == []
    token.refresh_from_db()
    assert token.last_used_at == used
    assert timezone.now() - used < timedelta(seconds=10)

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=used - TOUCH_EVERY)
    with CaptureQueriesContext(connection) as later:
        client.post("/api/v1/leads/", CAPTURE)
    assert len(token_updates(later.captured_queries)) == 1
    token.refresh_from_db()
    assert token.last_used_at > used


# --- scopes ---------------------------------------------------------------------------------------


def test_an_integration_token_captures_and_reads_nothing(integration):
    lead = LeadFactory()
    _token, key = token_create(user=integration, name="Web form")
    client = client_with(key)

    assert client.post("/api/v1/leads/", CAPTURE).status_code == 201
    events = client.post("/api/v1/events/", {"email": "jane@example.com", "type": "page_view"})
    assert events.status_code == 201
    assert client.get("/api/v1/leads/").status_code == 403  # its role says so first
    for path in (f"/api/v1/leads/{lead.pk}/score/", f"/api/v1/leads/{lead.pk}/assignments/", "/api/v1/"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert refused.json()["detail"] == "This token may not read the internal API (scope read); its scopes: capture."


def test_a_marketing_token_limited_to_read_may_not_capture_or_change(marketing):
    lead = LeadFactory(stage=Stage.MAL)
    _token, key = token_create(user=marketing, name="Reporting", scopes=["read"])
    client = client_with(key)

    assert client.get("/api/v1/leads/").status_code == 200
    assert client.get(f"/api/v1/leads/{lead.pk}/activities/").status_code == 200
    capture = client.post("/api/v1/leads/", CAPTURE)
    assert capture.status_code == 403
    assert capture.json()["detail"] == "This token may not capture leads or events (scope capture); its scopes: read."
    assert client.post("/api/v1/events/", {"email": "jane@example.com", "type": "page_view"}).status_code == 403
    moved = client.post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "disqualified", "reason": "spam"})
    assert moved.status_code == 403
    assert "(scope work)" in moved.json()["detail"]
    assert client.patch(f"/api/v1/leads/{lead.pk}/", {"job_title": "CEO"}).status_code == 403
    lead.refresh_from_db()
    assert (lead.stage, lead.job_title) == (Stage.MAL, "")
    assert not Lead.objects.filter(email="jane@example.com").exists()


def test_a_reps_read_token_may_not_work_its_leads(rep_a):
    lead = LeadFactory(stage=Stage.MQL, owner=rep_a)
    _token, key = token_create(user=rep_a, name="Dashboard widget", scopes=["read"])
    client = client_with(key)

    assert client.get(f"/api/v1/leads/{lead.pk}/").status_code == 200
    assert client.get(f"/api/v1/leads/{lead.pk}/assignments/").status_code == 200
    assert client.get("/api/v1/pool/").status_code == 200
    for path in (f"/api/v1/leads/{lead.pk}/accept/", f"/api/v1/leads/{lead.pk}/notes/", "/api/v1/pool/claim/"):
        assert client.post(path, {}).status_code == 403, path
    assert client.post("/api/v1/me/availability/", {"away_until": None}).status_code == 403


def test_a_partner_token_uses_the_partner_api(partner_a):
    LeadFactory(partner=partner_a.partner_organization, stage=Stage.MQL)
    _token, key = token_create(user=partner_a, name="Partner CRM")

    assert client_with(key).get("/api/v1/partner/leads/").json()["count"] == 1


def test_a_session_is_not_limited_by_scopes(marketing):
    web = APIClient()
    web.force_login(marketing)
    assert web.post("/api/v1/leads/", CAPTURE).status_code == 201


@pytest.mark.parametrize(
    ("persona", "scopes"),
    [
        ("integration", ["capture"]),
        ("marketing", ["capture", "read", "work", "webhooks"]),
        ("sales_manager", ["read", "work"]),
        ("rep_a", ["read", "work"]),
        ("partner_a", ["partner"]),
    ],
)
def test_a_new_token_gets_all_its_role_allows(request, persona, scopes):
    token, _key = token_create(user=request.getfixturevalue(persona), name="default")
    assert token.scope_list == scopes


@pytest.mark.parametrize(
    ("persona", "scopes", "refused"),
    [
        ("integration", ["capture", "read"], "not read"),
        ("rep_a", ["capture"], "not capture"),
        ("partner_a", ["read", "partner"], "not read"),
        ("marketing", ["partner"], "not partner"),
        ("marketing", [], "at least one scope"),
    ],
)
def test_scopes_that_do_not_fit_the_role_are_refused(request, persona, scopes, refused):
    with pytest.raises(ValidationError, match=refused):
        token_create(user=request.getfixturevalue(persona), name="x", scopes=scopes)
    assert not ApiToken.objects.exists()


def test_a_user_without_a_role_gets_no_token():
    with pytest.raises(ValidationError, match="has no role that may use the API"):
        token_create(user=UserFactory(username="nobody", role=""), name="x")


# --- DRF's tokens migrated ------------------------------------------------------------------------


def test_the_migration_hashes_drf_tokens_so_old_keys_keep_working_and_drops_the_plain_keys(integration, rep_a):
    old_key, rep_key = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"
    nobody = UserFactory(username="nobody", role="")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id bigint NOT NULL)"
        )
        for key, user in ((old_key, integration), (rep_key, rep_a), ("9" * 40, nobody)):
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                [key, timezone.now(), user.pk],
            )
    migration = importlib.import_module("leads.migrations.0012_apitoken_from_authtoken")

    # It only needs the editor's connection (a real editor cannot open inside the test's transaction on SQLite).
    migration.hash_drf_tokens(django_apps, SimpleNamespace(connection=connection))

    assert "authtoken_token" not in connection.introspection.table_names()
    assert sorted(ApiToken.objects.values_list("user__username", "scopes")) == [
        ("rita", "read work"),
        ("webforms", "capture"),
    ]
    assert client_with(old_key).post("/api/v1/leads/", CAPTURE).status_code == 201
    assert client_with(rep_key).get("/api/v1/leads/").status_code == 200
    assert token_authenticate(key=old_key).expires_at is not None
    assert_refused(leads_list("9" * 40), "Invalid token.")  # its user could do nothing with the API
