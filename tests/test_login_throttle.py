"""Sign-in protection (issue #12, logins): lockouts per client address and per account on both login
forms, checked before any password is hashed; password-reset e-mails limited per account and per
client address; all of it without the cache (Redis may be away)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis.exceptions
from axes.models import AccessAttempt
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import get_hasher
from django.core import mail
from django.core.cache import caches
from django.db import connection
from django.db.models import F, Sum
from django.test import Client, RequestFactory, override_settings

from accounts.addresses import client_ip
from accounts.models import PasswordResetRequest
from leads.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
RESET = "/accounts/password_reset/"
RESET_DONE = "/accounts/password_reset/done/"
ATTACKER = "203.0.113.66"
OFFICE = "198.51.100.10"
COOL_OFF = timedelta(minutes=5)

BROKEN_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


@pytest.fixture
def checks(monkeypatch):
    """Counts what a sign-in costs: calls into the password backend and password hashes computed."""

    class Counts:
        backend = 0
        hashes = 0

    counts = Counts()
    authenticate = ModelBackend.authenticate

    def counting_authenticate(self, *args, **kwargs):
        counts.backend += 1
        return authenticate(self, *args, **kwargs)

    # Every check of a password, and the dummy hash for an unknown username, computes this.
    hasher = type(get_hasher())
    encode = hasher.encode

    def counting_encode(self, *args, **kwargs):
        counts.hashes += 1
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting_authenticate)
    monkeypatch.setattr(hasher, "encode", counting_encode)
    return counts


def sign_in(client: Client, username: str, password: str, url: str = LOGIN):
    return client.post(url, {"username": username, "password": password})


def signed_in_as(client: Client):
    return client.session.get("_auth_user_id")


def let_the_cool_off_pass() -> None:
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF - timedelta(seconds=1))


def failures_recorded() -> int:
    return AccessAttempt.objects.aggregate(total=Sum("failures_since_start"))["total"] or 0


# --- lockouts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "persona"), [(LOGIN, "rep_a"), (ADMIN_LOGIN, "marketing")])
def test_100_wrong_passwords_then_the_right_one_is_refused(url, persona, request):
    user = request.getfixturevalue(persona)
    checks = request.getfixturevalue("checks")  # after the user's own password was hashed
    guesser = Client(REMOTE_ADDR=ATTACKER)

    answers = [sign_in(guesser, user.username, f"guess-{n}", url).status_code for n in range(100)]
    response = sign_in(guesser, user.username, "pw", url)

    assert answers == [200] * 9 + [429] * 91  # the 10th wrong password sets the lock
    assert response.status_code == 429
    assert response["Retry-After"] == "300"
    page = response.content.decode()
    assert "Sign-in paused" in page
    assert "There were 10 wrong passwords in a row" in page
    assert "Please wait 5 minutes, then sign in again." in page
    assert 'href="/accounts/password_reset/"' in page
    assert signed_in_as(guesser) is None
    # Only the 10 attempts before the lock reached the password check; the 91 and the right password
    # after it were refused before any hashing.
    assert (checks.backend, checks.hashes) == (10, 10)
    assert failures_recorded() == 10


def test_guessers_on_many_addresses_lock_the_account_after_the_limit_and_hash_no_more(rep_a, checks):
    guessers = [Client(REMOTE_ADDR=f"203.0.113.{n}") for n in range(1, 9)]

    answers = [sign_in(guessers[n % 8], "rita", f"guess-{n}").status_code for n in range(200)]

    assert answers == [200] * 9 + [429] * 191
    assert (checks.backend, checks.hashes) == (10, 10)
    # The account is locked from a new address too, the right password included.
    newcomer = Client(REMOTE_ADDR="192.0.2.1")
    assert sign_in(newcomer, "rita", "pw").status_code == 429
    assert signed_in_as(newcomer) is None


def test_the_real_user_signs_in_from_another_address_once_the_cool_off_is_over(rep_a):
    guesser = Client(REMOTE_ADDR=ATTACKER)
    for n in range(60):  # the guesser keeps trying long after the lock
        sign_in(guesser, "rita", f"guess-{n}")
    rita = Client(REMOTE_ADDR=OFFICE)
    assert sign_in(rita, "rita", "pw").status_code == 429
    assert failures_recorded() == 10  # attempts during the lock are not recorded, so it does not grow

    let_the_cool_off_pass()
    response = sign_in(rita, "rita", "pw")

    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(rita) == str(rep_a.pk)
    assert signed_in_as(guesser) is None


def test_one_cool_off_earlier_the_account_is_still_locked(rep_a):
    guesser = Client(REMOTE_ADDR=ATTACKER)
    for n in range(10):
        sign_in(guesser, "rita", f"guess-{n}")
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF + timedelta(seconds=5))

    rita = Client(REMOTE_ADDR=OFFICE)
    assert sign_in(rita, "rita", "pw").status_code == 429
    assert signed_in_as(rita) is None


def test_a_locked_account_from_address_a_does_not_lock_another_user(rep_a, rep_b):
    guesser = Client(REMOTE_ADDR=ATTACKER)
    for n in range(10):
        sign_in(guesser, "rita", f"guess-{n}")

    rob = Client(REMOTE_ADDR=OFFICE)
    response = sign_in(rob, "rob", "pw")

    assert response.status_code == 302
    assert signed_in_as(rob) == str(rep_b.pk)
    rita = Client(REMOTE_ADDR=OFFICE)
    assert sign_in(rita, "rita", "pw").status_code == 429


def test_an_address_that_guessed_too_often_is_locked_for_every_username(rep_b):
    guesser = Client(REMOTE_ADDR=ATTACKER)
    answers = [sign_in(guesser, f"user{n}", "guess").status_code for n in range(10)]

    assert answers == [200] * 9 + [429]
    same_address = Client(REMOTE_ADDR=ATTACKER)
    assert sign_in(same_address, "rob", "pw").status_code == 429
    assert signed_in_as(same_address) is None
    elsewhere = Client(REMOTE_ADDR=OFFICE)
    assert sign_in(elsewhere, "rob", "pw").status_code == 302
    assert signed_in_as(elsewhere) == str(rep_b.pk)


def test_a_forged_forwarded_for_header_does_not_escape_the_address_lock(rep_b):
    answers = [
        Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").post(
            LOGIN, {"username": f"user{n}", "password": "guess"}
        ).status_code
        for n in range(11)
    ]

    assert answers == [200] * 9 + [429, 429]
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_a_successful_sign_in_does_not_wipe_the_failures_of_its_address(rep_a, rep_b):
    """Otherwise anyone with an account could guess at another one without end."""
    client = Client(REMOTE_ADDR=ATTACKER)
    for n in range(9):
        sign_in(client, "rita", f"guess-{n}")
    assert sign_in(client, "rob", "pw").status_code == 302
    client.post("/accounts/logout/")

    assert sign_in(client, "rita", "guess-9").status_code == 429
    assert failures_recorded() == 10


def test_a_new_password_ends_the_account_lock(rep_a):
    rep_a.email = "rita@example.com"
    rep_a.save()
    guesser = Client(REMOTE_ADDR=ATTACKER)
    for n in range(10):
        sign_in(guesser, "rita", f"guess-{n}")
    rita = Client(REMOTE_ADDR=OFFICE)
    assert sign_in(rita, "rita", "pw").status_code == 429

    rita.post(RESET, {"email": "rita@example.com"})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    form = rita.get(link.split("testserver")[1], follow=True)
    done = rita.post(form.redirect_chain[-1][0], {"new_password1": "N3w-and-long!", "new_password2": "N3w-and-long!"})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    response = sign_in(rita, "rita", "N3w-and-long!")

    assert response.status_code == 302
    assert signed_in_as(rita) == str(rep_a.pk)
    assert AccessAttempt.objects.filter(username="rita").count() == 0


# --- the client address -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "192.0.2.9", "10.1.1.1"),  # no proxy of ours: the header is the client's word, ignored
        (1, "6.6.6.6, 192.0.2.9", "192.0.2.9"),  # our proxy appended the address it saw
        (2, "6.6.6.6, 192.0.2.9, 10.2.2.2", "192.0.2.9"),
        (2, "192.0.2.9", "10.1.1.1"),  # fewer entries than proxies: did not come through them
        (1, "not-an-address", "10.1.1.1"),
        (1, "", "10.1.1.1"),
    ],
)
def test_the_client_address_trusts_only_our_proxies(proxies, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(LOGIN_TRUSTED_PROXIES=proxies):
        assert client_ip(request) == expected


# --- password-reset e-mails -------------------------------------------------------------------------


@pytest.mark.parametrize("clients", ["one client", "21 clients"])
def test_21_reset_requests_for_one_address_send_exactly_3_emails(rep_a, clients):
    rep_a.email = "rita@example.com"
    rep_a.save()
    addresses = [ATTACKER] * 21 if clients == "one client" else [f"203.0.113.{n}" for n in range(21)]

    responses = [
        Client(REMOTE_ADDR=address).post(RESET, {"email": "RITA@example.com" if n % 2 else "rita@example.com"})
        for n, address in enumerate(addresses)
    ]

    assert [(r.status_code, r["Location"]) for r in responses] == [(302, RESET_DONE)] * 21
    assert [m.to for m in mail.outbox] == [["rita@example.com"]] * 3
    assert PasswordResetRequest.objects.count() == 3


def test_an_unknown_address_gets_the_same_answer_and_no_email(rep_a):
    rep_a.email = "rita@example.com"
    rep_a.save()
    known = Client().post(RESET, {"email": "rita@example.com"})
    unknown = Client().post(RESET, {"email": "nobody@example.com"})

    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"]) == (302, RESET_DONE)
    assert [m.to for m in mail.outbox] == [["rita@example.com"]]


def test_one_client_address_gets_10_resets_an_hour_then_429():
    users = [UserFactory(username=f"user{n}", email=f"user{n}@example.com") for n in range(11)]
    client = Client(REMOTE_ADDR=ATTACKER)

    first = [client.post(RESET, {"email": u.email}).status_code for u in users[:10]]
    refused = client.post(RESET, {"email": users[10].email})

    assert first == [302] * 10
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3600"
    assert "Too many reset requests" in refused.content.decode()
    assert "Please try again in 60 minutes." in refused.content.decode()
    assert len(mail.outbox) == 10
    assert [m.to for m in mail.outbox if m.to == [users[10].email]] == []
    # The same account from another client address is not affected.
    elsewhere = Client(REMOTE_ADDR=OFFICE).post(RESET, {"email": users[10].email})
    assert elsewhere.status_code == 302
    assert mail.outbox[-1].to == [users[10].email] and len(mail.outbox) == 11


def test_after_an_hour_the_account_gets_a_link_again(rep_a):
    rep_a.email = "rita@example.com"
    rep_a.save()
    for _ in range(4):
        Client().post(RESET, {"email": "rita@example.com"})
    assert len(mail.outbox) == 3

    PasswordResetRequest.objects.update(requested_at=F("requested_at") - timedelta(hours=1, seconds=1))
    Client().post(RESET, {"email": "rita@example.com"})

    assert len(mail.outbox) == 4
    assert PasswordResetRequest.objects.count() == 1  # the old rows were deleted on the way


# --- without the cache ------------------------------------------------------------------------------


@override_settings(CACHES=BROKEN_CACHE)
def test_login_and_reset_forms_work_with_the_cache_unreachable(rep_a, rep_b):
    with pytest.raises(redis.exceptions.ConnectionError):
        caches["default"].get("anything")  # the cache really is away in this test
    rep_a.email = "rita@example.com"
    rep_a.save()

    assert Client().get(LOGIN).status_code == 200
    assert Client().get(RESET).status_code == 200
    rob = Client(REMOTE_ADDR=OFFICE)
    assert sign_in(rob, "rob", "pw").status_code == 302 and signed_in_as(rob) == str(rep_b.pk)
    guesser = Client(REMOTE_ADDR=ATTACKER)
    assert [sign_in(guesser, "rita", f"guess-{n}").status_code for n in range(10)] == [200] * 9 + [429]
    assert sign_in(guesser, "rita", "pw", ADMIN_LOGIN).status_code == 429
    resets = [Client().post(RESET, {"email": "rita@example.com"}) for _ in range(4)]
    assert [(r.status_code, r["Location"]) for r in resets] == [(302, RESET_DONE)] * 4
    assert len(mail.outbox) == 3



# --- in parallel (PostgreSQL: each request in its own thread and connection) -------------------------


def together(count: int, work) -> list:
    start = threading.Barrier(count)
    results, lock = [], threading.Lock()

    def run(n: int) -> None:
        try:
            start.wait()
            outcome = work(n)
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_21_reset_requests_at_once_still_send_exactly_3_emails(rep_a):
    rep_a.email = "rita@example.com"
    rep_a.save()

    def reset(n: int):
        response = Client(REMOTE_ADDR=f"203.0.113.{n}").post(RESET, {"email": "rita@example.com"})
        return response.status_code, response["Location"]

    answers = together(21, reset)

    assert answers == [(302, RESET_DONE)] * 21
    assert [m.to for m in mail.outbox] == [["rita@example.com"]] * 3
    assert PasswordResetRequest.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_8_parallel_guessers_get_at_most_a_few_guesses_past_the_limit(rep_a, checks):
    def guess(n: int) -> list[int]:
        client = Client(REMOTE_ADDR=f"203.0.113.{n}")
        return [sign_in(client, "rita", f"guess-{n}-{k}").status_code for k in range(25)]

    answers = together(8, guess)

    # The count is read, not locked, before a password is checked: a guess already past that check
    # when the 10th failure is stored still runs, one per guesser at most. Then nothing more is hashed.
    assert 10 <= checks.backend <= 10 + 7
    assert checks.hashes == checks.backend
    assert sum(codes.count(200) for codes in answers) <= 9 + 7
    assert sum(len(codes) for codes in answers) == 200
    assert sign_in(Client(REMOTE_ADDR="192.0.2.1"), "rita", "pw").status_code == 429
