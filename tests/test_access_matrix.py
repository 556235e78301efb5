"""Every URL of the project, with every persona: the status each one gets.

The walk covers every pattern the URLconf has. A pattern missing from EXPECTED fails the suite, so a
new view cannot ship without saying who may use it. One lead is in play: owned by rep A and routed
to partner A's organisation, waiting for rep A's acceptance — rep B and partner B must get 404.
Actions are POSTed empty: the right persona gets a validation answer, the wrong one 404 (or
401/403 on the API), and nothing changes. Partner users get 404 from every internal API endpoint.

The second half checks content, not status: canary values planted on that lead must never reach
partner A, partner B, the integration client or an anonymous visitor (see INTERNAL_CANARIES).
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from leads.models import Activity, Lead, Stage, StageChange
from leads.tests.factories import LeadFactory
from leads.tokens import token_create
from partners.models import PartnerFeedback
from routing.models import Assignment

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "marketing", "sales_manager", "rep_a", "rep_b", "partner_a", "partner_b", "integration")
SALES = ("sales_manager", "rep_a", "rep_b")


def walk(patterns=None, prefix: str = "", namespace: str = ""):
    """(route, name) of every URL pattern, nested includes flattened."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace or ""])) if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), ":".join(filter(None, [namespace, pattern.name or "?"]))


def concrete(route: str, lead_id: int) -> str:
    url = route.replace("^", "").replace("$", "")
    url = re.sub(r"\\\.\(\?P<format>[^)]*\)/\?", ".json", url)
    url = url.replace("<drf_format_suffix:format>", ".json")
    url = re.sub(r"\(\?P<pk>[^)]*\)|<int:pk>", str(lead_id), url)
    url = re.sub(r"\(\?P<\w+_id>[^)]*\)", "1", url)  # a second id (a webhook's delivery)
    url = url.replace("<uidb64>/<token>", "MQ/set-password")
    return "/" + url.replace("\\", "")


def status_matrix(route: str, lead_id: int, clients: dict, method: str) -> dict[str, int]:
    url = concrete(route, lead_id)
    return {persona: getattr(clients[persona], method)(url).status_code for persona in PERSONAS}


#                     anonymous marketing manager rep_a rep_b partner_a partner_b integration
def row(*codes: int) -> tuple[int, ...]:
    assert len(codes) == len(PERSONAS)
    return codes


ALL_200 = row(200, 200, 200, 200, 200, 200, 200, 200)
ALL_405 = row(405, 405, 405, 405, 405, 405, 405, 405)
SALES_ONLY = row(302, 404, 200, 200, 200, 404, 404, 404)
MANAGER_ONLY = row(302, 404, 200, 404, 404, 404, 404, 404)
PARTNERS_ONLY = row(302, 404, 404, 404, 404, 200, 200, 404)

# name → (GET, POST with an empty body). The lead in play belongs to rep A and partner A.
EXPECTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "home": (row(302, 302, 302, 302, 302, 302, 302, 302), ALL_405),  # each to its home (API docs: integration)
    "healthz": (ALL_200, ALL_405),
    # sign-in pages (Django's auth views, our templates)
    "login": (ALL_200, ALL_200),
    "logout": (ALL_405, row(302, 302, 302, 302, 302, 302, 302, 302)),
    "password_change": (row(302, 200, 200, 200, 200, 200, 200, 200), row(302, 200, 200, 200, 200, 200, 200, 200)),
    "password_change_done": (row(302, 200, 200, 200, 200, 200, 200, 200), row(302, 405, 405, 405, 405, 405, 405, 405)),
    "password_reset": (ALL_200, ALL_200),
    "password_reset_done": (ALL_200, ALL_405),
    "password_reset_confirm": (ALL_200, ALL_200),  # an invalid link: "This link has expired"
    "password_reset_complete": (ALL_200, ALL_405),
    # a lead's e-mail links (public, signed): an invalid token says so and changes nothing
    "consent-confirm": (ALL_200, ALL_200),
    "consent-unsubscribe": (ALL_200, ALL_200),
    # the rep dashboard
    # /app/ is a rep's queue; anyone else is sent to their home (a manager: the team page)
    "leads:queue": (row(302, 302, 302, 200, 200, 302, 302, 302), ALL_405),
    "leads:my-queue": (SALES_ONLY, ALL_405),
    # marketing's read-only list (and lead page): those who see every lead
    "leads:list": (row(302, 200, 200, 404, 404, 404, 404, 404), ALL_405),
    "leads:lead": (row(302, 200, 200, 200, 404, 404, 404, 404), ALL_405),
    # the bell: everyone of the dashboard and the portal, each their own notices
    "leads:notifications": (row(302, 200, 200, 200, 200, 200, 200, 404), ALL_405),
    "leads:notification-badge": (row(302, 200, 200, 200, 200, 200, 200, 404), ALL_405),
    "leads:lead-note": (ALL_405, row(302, 404, 302, 422, 404, 404, 404, 404)),
    "leads:lead-log": (ALL_405, row(302, 404, 302, 422, 404, 404, 404, 404)),
    "leads:lead-qualify": (ALL_405, row(302, 404, 302, 302, 404, 404, 404, 404)),
    "leads:lead-won": (ALL_405, row(302, 404, 302, 422, 404, 404, 404, 404)),
    "leads:lead-lost": (ALL_405, row(302, 404, 302, 422, 404, 404, 404, 404)),
    "routing:accept": (ALL_405, row(302, 404, 302, 302, 404, 404, 404, 404)),
    "routing:reject": (ALL_405, row(302, 404, 302, 302, 404, 404, 404, 404)),
    "routing:reassign": (ALL_405, row(302, 404, 302, 404, 404, 404, 404, 404)),
    "routing:pool": (SALES_ONLY, ALL_405),
    "routing:claim": (ALL_405, row(302, 404, 302, 302, 302, 404, 404, 404)),
    "routing:availability": (SALES_ONLY, row(302, 404, 422, 422, 422, 404, 404, 404)),
    "routing:team": (MANAGER_ONLY, ALL_405),
    "routing:team-bulk": (ALL_405, row(302, 404, 400, 404, 404, 404, 404, 404)),  # empty: "Tick at least one lead."
    "routing:funnel": (MANAGER_ONLY, ALL_405),
    # the partner portal
    "partners:leads": (PARTNERS_ONLY, ALL_405),
    "partners:lead": (row(302, 404, 404, 404, 404, 200, 404, 404), ALL_405),
    "partners:accept": (ALL_405, row(302, 404, 404, 404, 404, 302, 404, 404)),
    "partners:decline": (ALL_405, row(302, 404, 404, 404, 404, 422, 404, 404)),
    "partners:feedback": (ALL_405, row(302, 404, 404, 404, 404, 422, 404, 404)),
    "partners:history": (PARTNERS_ONLY, ALL_405),
    # the REST API (token auth); the internal API is 404 for partner users, whatever the lead
    "api-root": (row(401, 200, 200, 200, 200, 404, 404, 403), row(401, 405, 405, 405, 405, 404, 404, 405)),
    "events": (row(401, 405, 405, 403, 403, 404, 404, 405), row(401, 400, 403, 403, 403, 404, 404, 400)),
    "lead-list": (row(401, 200, 200, 200, 200, 404, 404, 403), row(401, 400, 403, 403, 403, 404, 404, 400)),
    "lead-changes": (row(401, 200, 200, 403, 403, 404, 404, 403), row(401, 405, 405, 403, 403, 404, 404, 403)),
    "lead-detail": (row(401, 200, 200, 200, 404, 404, 404, 403), row(401, 405, 405, 405, 405, 404, 404, 403)),
    "lead-activities": (row(401, 200, 200, 200, 404, 404, 404, 403), row(401, 405, 405, 405, 405, 404, 404, 403)),
    "lead-transition": (row(401, 405, 405, 405, 405, 404, 404, 403), row(401, 400, 400, 400, 404, 404, 404, 403)),
    "lead-qualify": (row(401, 405, 405, 405, 405, 404, 404, 403), row(401, 400, 400, 400, 404, 404, 404, 403)),
    "lead-close": (row(401, 405, 405, 405, 405, 404, 404, 403), row(401, 400, 400, 400, 404, 404, 404, 403)),
    "lead-notes": (row(401, 405, 405, 405, 405, 404, 404, 403), row(401, 400, 400, 400, 404, 404, 404, 403)),
    "lead-calls": (row(401, 405, 405, 405, 405, 404, 404, 403), row(401, 400, 400, 400, 404, 404, 404, 403)),
    # a person's data export and erasure (GDPR): marketing only; an empty POST lacks "confirm": true
    "lead-export": (row(401, 200, 403, 403, 403, 404, 404, 403), row(401, 405, 403, 403, 403, 404, 404, 403)),
    "lead-erase": (row(401, 405, 403, 403, 403, 404, 404, 403), row(401, 400, 403, 403, 403, 404, 404, 403)),
    # no scoring model is active here: 404 "no active model" for those who may read it
    "scoring-model": (row(401, 404, 404, 404, 404, 404, 404, 403), row(401, 405, 405, 405, 405, 404, 404, 403)),
    "lead-score": (row(401, 404, 404, 404, 404, 404, 404, 403), row(401, 405, 405, 405, 405, 404, 404, 405)),
    "lead-accept": (row(401, 403, 405, 405, 405, 404, 404, 403), row(401, 403, 409, 200, 404, 404, 404, 403)),
    "lead-reject": (row(401, 403, 405, 405, 405, 404, 404, 403), row(401, 403, 400, 400, 404, 404, 404, 403)),
    "lead-assignments": (row(401, 200, 200, 200, 404, 404, 404, 403), row(401, 405, 405, 405, 405, 404, 404, 405)),
    "pool": (row(401, 403, 200, 200, 200, 404, 404, 403), row(401, 403, 405, 405, 405, 404, 404, 403)),
    "pool-claim": (row(401, 403, 405, 405, 405, 404, 404, 403), row(401, 403, 409, 409, 409, 404, 404, 403)),
    "me-availability": (row(401, 403, 405, 405, 405, 404, 404, 403), row(401, 403, 400, 400, 400, 404, 404, 403)),
    "partner-lead-list": (row(401, 403, 403, 403, 403, 200, 200, 403), row(401, 403, 403, 403, 403, 405, 405, 403)),
    "partner-lead-detail": (row(401, 403, 403, 403, 403, 200, 404, 403), row(401, 403, 403, 403, 403, 405, 405, 403)),
    "partner-lead-feedback": (row(401, 403, 403, 403, 403, 405, 405, 403), row(401, 403, 403, 403, 403, 400, 404, 403)),
    # webhooks: marketing and staff without a role; no subscription has the lead's id (404 for them)
    "webhook-list": (row(401, 200, 403, 403, 403, 404, 404, 403), row(401, 400, 403, 403, 403, 404, 404, 403)),
    "webhook-detail": (row(401, 404, 403, 403, 403, 404, 404, 403), row(401, 405, 403, 403, 403, 404, 404, 403)),
    "webhook-deliveries": (row(401, 404, 403, 403, 403, 404, 404, 403), row(401, 405, 403, 403, 403, 404, 404, 403)),
    "webhook-replay": (row(401, 405, 403, 403, 403, 404, 404, 403), row(401, 404, 403, 403, 403, 404, 404, 403)),
    "webhook-resume": (row(401, 405, 403, 403, 403, 404, 404, 403), row(401, 404, 403, 403, 403, 404, 404, 403)),
    "webhook-ping": (row(401, 405, 403, 403, 403, 404, 404, 403), row(401, 404, 403, 403, 403, 404, 404, 403)),
    # the filtered lead list as a file: whoever may read the list (a rep: their own); no format is a 400
    "lead-list-export": (row(401, 400, 400, 400, 400, 404, 404, 403), row(401, 405, 405, 405, 405, 404, 404, 403)),
    # CSV imports: staff, marketing and integration clients (their own jobs); sales 403, partners 404.
    # The id in play is the lead's: no such import, so a 404 for those who may import.
    "import-list": (row(401, 200, 403, 403, 403, 404, 404, 200), row(401, 400, 403, 403, 403, 404, 404, 400)),
    "import-preview": (row(401, 405, 403, 403, 403, 404, 404, 405), row(401, 400, 403, 403, 403, 404, 404, 400)),
    "import-detail": (row(401, 404, 403, 403, 403, 404, 404, 404), row(401, 405, 403, 403, 403, 404, 404, 405)),
    "import-rejected": (row(401, 404, 403, 403, 403, 404, 404, 404), row(401, 405, 403, 403, 403, 404, 404, 405)),
    "schema": (ALL_200, ALL_405),
    "api-docs": (ALL_200, ALL_405),
}
DENIED = {401, 403, 404, 405}
# Admin pages are for staff; everyone else is sent to the admin's sign-in (its own views say so).
ADMIN_PUBLIC = {"admin:login", "admin:logout"}  # anyone may sign in and out
NON_STAFF = ("anonymous", "rep_a", "rep_b", "partner_a", "partner_b", "integration")


@pytest.fixture
def world(request, rep_a, partner_org_a):
    users = {p: (request.getfixturevalue(p) if p != "anonymous" else None) for p in PERSONAS}
    lead = LeadFactory(stage=Stage.MQL, owner=rep_a, partner=partner_org_a)
    Assignment.objects.create(lead=lead, user=rep_a, status=Assignment.Status.ACTIVE, strategy="direct")
    tokens = {p: token_create(user=u, name="matrix")[1] for p, u in users.items() if u}
    return users, tokens, lead


def clients_for(users: dict, tokens: dict, api: bool) -> dict:
    from rest_framework.test import APIClient

    clients = {}
    for persona, user in users.items():
        if api:
            client = APIClient()
            if user:
                client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[persona]}")
        else:
            client = Client()
            if user:
                client.force_login(user)
        clients[persona] = client
    return clients


def state(lead: Lead) -> tuple:
    lead.refresh_from_db()
    return (
        lead.stage,
        lead.owner_id,
        lead.partner_id,
        Activity.objects.count(),
        StageChange.objects.count(),
        Assignment.objects.count(),
        PartnerFeedback.objects.count(),
    )


def test_every_url_is_in_the_matrix():
    names = {name for _, name in walk() if not name.startswith("admin:")}
    assert names - EXPECTED.keys() == set(), "new URLs: say who may use them in EXPECTED"
    assert EXPECTED.keys() - names == set(), "EXPECTED lists URLs that no longer exist"


def test_each_persona_gets_exactly_what_is_theirs(world, django_db_blocker):
    from django.db import transaction

    users, tokens, lead = world
    failures = []
    for route, name in walk():
        if name.startswith("admin:"):
            continue
        url = concrete(route, lead.pk)
        for method, expected in zip(("get", "post"), EXPECTED[name], strict=True):
            for persona, want in zip(PERSONAS, expected, strict=True):
                with transaction.atomic():  # each request starts from the same state
                    before = state(lead)
                    client = clients_for({persona: users[persona]}, tokens, route.startswith("api/"))[persona]
                    got = getattr(client, method)(url).status_code
                    if got != want:
                        failures.append(f"{method.upper()} {url} as {persona}: {got}, expected {want}")
                    elif got in DENIED and state(lead) != before:
                        failures.append(f"{method.upper()} {url} as {persona}: refused ({got}) but changed data")
                    transaction.set_rollback(True)
    assert failures == []


def test_admin_pages_send_everyone_but_staff_to_the_admin_sign_in(world):
    users, tokens, lead = world
    failures = []
    clients = clients_for({p: users[p] for p in NON_STAFF}, tokens, api=False)
    for route, name in walk():
        if not name.startswith("admin:") or name in ADMIN_PUBLIC:
            continue
        url = re.sub(r"<[^>]+>", str(lead.pk), "/" + route)
        url = re.sub(r"\(\?P<app_label>([a-z_]+)[^)]*\)", r"\1", url).replace("^", "").replace("$", "")
        for persona, client in clients.items():
            response = client.get(url)
            if response.status_code != 302 or not response["Location"].startswith("/admin/login/"):
                failures.append(f"GET {url} as {persona}: {response.status_code}")
    assert failures == []


# --- Content: what a partner or an integration client may read ----------------------------------
# Canary values are planted on the lead in play (routed to partner A's organisation). The company's
# own data must never reach partner A, partner B or the integration client; the contact details that
# are partner A's share must never reach partner B or the integration client. Every URL pattern is
# asked (GET and an empty POST, the admin's too), then the requests those personas really make.
INTERNAL_CANARIES = {
    "rep's note": "CANARY-NOTE-7f3a",
    "call log": "CANARY-CALL-19bd",
    "attribute": "CANARY-ATTR-55e1",
    "campaign": "CANARY-CAMPAIGN-c0de",
    "rep in a routing trace": "Canaryrep Kapazitaet",
    "assignment note": "CANARY-ASSIGNNOTE-3b2c",
    "scoring rule": "CANARY-RULE-a11e",
    "routing rule": "CANARY-ROUTERULE-4e1f",
    "owner's name": "Canaryowner",
}
PARTNER_A_SHARE = {
    "phone": "+49 171 5550199",
    "e-mail": "canary.contact@canary-lead.example",
    "partner A's feedback note": "CANARY-PARTNERNOTE-9d0e",
}
FORBIDDEN = {
    "anonymous": {**INTERNAL_CANARIES, **PARTNER_A_SHARE},
    "partner_a": INTERNAL_CANARIES,
    "partner_b": {**INTERNAL_CANARIES, **PARTNER_A_SHARE},
    "integration": {**INTERNAL_CANARIES, **PARTNER_A_SHARE},
}
OUTSIDERS = tuple(FORBIDDEN)


@pytest.fixture
def canaries(world, partner_a):
    from leads.models import ActivityType
    from partners.models import FeedbackStatus
    from scoring.models import FitRule
    from scoring.tests.factories import make_model

    users, tokens, lead = world
    lead.phone = PARTNER_A_SHARE["phone"]
    lead.email = PARTNER_A_SHARE["e-mail"]
    lead.campaign = lead.latest_campaign = lead.utm_campaign = INTERNAL_CANARIES["campaign"]
    lead.attributes = {"internal_margin": INTERNAL_CANARIES["attribute"]}
    lead.save()
    owner = users["rep_a"]
    owner.first_name = INTERNAL_CANARIES["owner's name"]
    owner.save(update_fields=["first_name"])
    Activity.objects.create(
        lead=lead,
        type=ActivityType.NOTE,
        occurred_at=lead.created_at,
        properties={"text": INTERNAL_CANARIES["rep's note"]},
    )
    Activity.objects.create(
        lead=lead,
        type=ActivityType.CALL,
        occurred_at=lead.created_at,
        properties={"summary": INTERNAL_CANARIES["call log"]},
        created_by=owner,
    )
    from routing.tests.factories import make_rule

    Assignment.objects.filter(lead=lead).update(
        rule=make_rule(INTERNAL_CANARIES["routing rule"], target="partners", partners=[lead.partner]),
        note=INTERNAL_CANARIES["assignment note"],
        trace=[
            {
                "rule": "Enterprise DACH",
                "skipped": [{"candidate": INTERNAL_CANARIES["rep in a routing trace"], "why": "at capacity"}],
            }
        ],
    )
    model = make_model(activate=True)
    FitRule.objects.create(
        model=model,
        field="email",
        operator="contains",
        value="canary",
        points=5,
        label=INTERNAL_CANARIES["scoring rule"],
    )
    PartnerFeedback.objects.create(
        lead=lead,
        organization=users["partner_a"].partner_organization,
        user=users["partner_a"],
        status=FeedbackStatus.CONTACTED,
        note=PARTNER_A_SHARE["partner A's feedback note"],
    )
    return users, tokens, lead


def leaks(response, persona: str) -> list[str]:
    """The canaries this persona must not see that are in the response (body or headers)."""
    text = response.content.decode("utf-8", "replace") + " ".join(f"{k}: {v}" for k, v in response.items())
    if getattr(response, "streaming", False):
        text += b"".join(response.streaming_content).decode("utf-8", "replace")
    lowered = text.lower()
    return [what for what, value in FORBIDDEN[persona].items() if value.lower() in lowered]


def test_the_canaries_are_where_the_company_can_read_them(canaries):
    """The control: the same requests show the canaries to whom they belong — so a leak test that
    finds nothing found nothing because nothing was there, not because the canaries were never planted."""
    users, tokens, lead = canaries
    api = clients_for({p: users[p] for p in ("marketing", "partner_a")}, tokens, api=True)
    page = clients_for({"rep_a": users["rep_a"]}, tokens, api=False)["rep_a"]

    internal = " ".join(
        api["marketing"].get(url).content.decode()
        for url in (
            f"/api/v1/leads/{lead.pk}/",
            f"/api/v1/leads/{lead.pk}/activities/",
            f"/api/v1/leads/{lead.pk}/assignments/",
            f"/api/v1/leads/{lead.pk}/score/",
        )
    ) + page.get(f"/app/leads/{lead.pk}/").content.decode()
    partners_view = api["partner_a"].get(f"/api/v1/partner/leads/{lead.pk}/").content.decode()

    missing = [what for what, value in INTERNAL_CANARIES.items() if value.lower() not in internal.lower()]
    assert missing == []
    assert [what for what, value in PARTNER_A_SHARE.items() if value not in partners_view] == []


def test_no_url_gives_a_partner_or_the_integration_client_the_company_s_data(canaries):
    from django.db import transaction

    users, tokens, lead = canaries
    failures = []
    for route, name in walk():
        if name.startswith("admin:"):
            url = re.sub(r"<[^>]+>", str(lead.pk), "/" + route)
            url = re.sub(r"\(\?P<app_label>([a-z_]+)[^)]*\)", r"\1", url).replace("^", "").replace("$", "")
        else:
            url = concrete(route, lead.pk)
        for persona in OUTSIDERS:
            client = clients_for({persona: users[persona]}, tokens, route.startswith("api/"))[persona]
            for method in ("get", "post"):
                with transaction.atomic():
                    response = getattr(client, method)(url)
                    if found := leaks(response, persona):
                        failures.append(f"{method.upper()} {url} as {persona} ({response.status_code}): {found}")
                    transaction.set_rollback(True)
    assert failures == []


def test_what_partners_and_integrations_really_send_reads_back_nothing_of_the_company(canaries):
    """The requests these clients make with real bodies: a capture of a known e-mail, events for the
    lead, feedback, search and filters, errors. Each answer is checked for every canary."""
    from django.db import transaction

    users, tokens, lead = canaries
    email = PARTNER_A_SHARE["e-mail"]
    asks = {
        "integration": [
            ("post", "/api/v1/leads/", {"email": email}),
            ("post", "/api/v1/leads/", {"email": email, "first_name": "Ann", "phone": ""}),
            ("post", "/api/v1/leads/", {"email": "not-an-email"}),
            ("post", "/api/v1/events/", {"email": email, "type": "page_view", "properties": {"url": "/pricing"}}),
            ("post", "/api/v1/events/", [{"lead": lead.pk, "type": "download"}, {"lead": lead.pk, "type": "nope"}]),
            ("get", f"/api/v1/leads/?search={email}", None),
            ("patch", f"/api/v1/leads/{lead.pk}/", {"first_name": "X"}),
        ],
        "partner_a": [
            ("get", f"/api/v1/leads/?search={email}", None),
            ("get", "/api/v1/partner/leads/?stage=mql", None),
            ("post", f"/api/v1/partner/leads/{lead.pk}/feedback/", {"status": "meeting", "note": "Met on site"}),
            ("post", f"/api/v1/partner/leads/{lead.pk}/feedback/", {"status": "lost"}),
            ("get", "/partner/leads/?q=canary", None),
            ("get", "/partner/history/", None),
        ],
        "partner_b": [
            ("get", f"/api/v1/partner/leads/{lead.pk}/", None),
            ("post", f"/api/v1/partner/leads/{lead.pk}/feedback/", {"status": "meeting"}),
            ("get", f"/partner/leads/{lead.pk}/", None),
            ("get", "/api/v1/partner/leads/?search=canary", None),
        ],
    }
    failures = []
    for persona, requests in asks.items():
        for method, url, body in requests:
            client = clients_for({persona: users[persona]}, tokens, url.startswith("/api/"))[persona]
            with transaction.atomic():
                kwargs = {"data": body, "format": "json"} if url.startswith("/api/") and body is not None else {}
                if body is not None and not url.startswith("/api/"):
                    kwargs = {"data": body}
                response = getattr(client, method)(url, **kwargs)
                if response.status_code >= 500:
                    failures.append(f"{method.upper()} {url} as {persona}: {response.status_code}")
                if found := leaks(response, persona):
                    failures.append(f"{method.upper()} {url} as {persona} ({response.status_code}): {found}")
                transaction.set_rollback(True)
    assert failures == []


def test_capture_of_a_known_address_answers_its_id_and_stage_only(canaries, api):
    users, tokens, lead = canaries
    response = clients_for({"integration": users["integration"]}, tokens, api=True)["integration"].post(
        "/api/v1/leads/", {"email": PARTNER_A_SHARE["e-mail"].upper()}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"id": lead.pk, "created": False, "stage": "mql"}


def test_the_mail_that_hands_a_lead_to_a_partner_carries_only_the_partner_s_share(
    partner_a, partner_b, rep_a, django_capture_on_commit_callbacks
):
    """The hand-over e-mail is a response too: the routing rule's name, the campaign and the lead's
    attributes stay inside the company."""
    from django.core import mail

    from leads.services import lead_transition
    from routing.tests.factories import make_rule

    make_rule(INTERNAL_CANARIES["routing rule"], target="partners", partners=[partner_a.partner_organization])
    lead = LeadFactory(
        stage=Stage.MAL,
        campaign=INTERNAL_CANARIES["campaign"],
        attributes={"internal_margin": INTERNAL_CANARIES["attribute"]},
    )
    with django_capture_on_commit_callbacks(execute=True):
        lead_transition(lead=lead, to_stage=Stage.MQL)

    to_partner = [m for m in mail.outbox if partner_a.email in m.to]
    assert len(to_partner) == 1
    [(html, _)] = to_partner[0].alternatives  # the HTML version says no more than the text
    text = f"{to_partner[0].subject} {to_partner[0].body} {html}".lower()
    assert [what for what, value in INTERNAL_CANARIES.items() if value.lower() in text] == []
    assert lead.company.lower() in text  # the share it needs to act on
    assert not [m for m in mail.outbox if partner_b.email in m.to]
