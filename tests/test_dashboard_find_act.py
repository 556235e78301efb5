"""Issue #15's "find and act" and "no dead ends" on the rep dashboard and the partner portal:
search and header sorting with their counts (exact rows), the team page's bulk accept / reassign,
pool rows that name the person (a blind pool's do not), marketing's read-only list and lead page,
the in-app notifications and their badge, the hand-over e-mail, the away banner."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from leads import notifications
from leads.models import Activity, ActivityType, Notification, Stage
from leads.services import lead_note_add
from leads.tests.factories import ActivityFactory, LeadFactory, client_for
from routing import tasks, tell
from routing.models import Assignment, RepProfile
from routing.services import assignment_reassign
from routing.tests.factories import make_rule, make_team, mql
from scoring.tests.factories import make_model

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def rows(page) -> list[int]:
    return [lead.pk for lead in page.context["page"].object_list]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def team(sales_manager):
    return make_team(size=3, manager=sales_manager)


# --- search and sorting -----------------------------------------------------------------------------


@pytest.fixture
def my_leads(rep_a):
    now = timezone.now()
    make = lambda first, last, company, score, hours, **kw: LeadFactory(  # noqa: E731
        owner=rep_a,
        stage=kw.pop("stage", Stage.SAL),
        first_name=first,
        last_name=last,
        company=company,
        email=f"{first.lower()}@{company.split()[0].lower()}.example",
        score=score,
        grade=kw.pop("grade", "B"),
        handed_over_at=now - timedelta(hours=hours),
        **kw,
    )
    return {
        "anna": make("Anna", "Berg", "Meridian Foods", 71.6, 5, grade="A"),
        "ben": make("Ben", "Stud", "Meridian Foods", 12.2, 1),
        "cara": make("Cara", "Ohm", "Initech", 55.0, 3),
        "dan": make("Dan", "Meridian", "Globex", 40.0, 2),  # "meridian" in his name, not his company
        "won": make("Eve", "Closed", "Meridian Foods", 90.0, 9, stage=Stage.WON),
    }


def test_the_queue_searches_name_email_and_company_and_counts_what_it_finds(rep_a, rep_b, my_leads):
    LeadFactory(owner=rep_b, stage=Stage.SAL, company="Meridian Foods", first_name="Not", last_name="Mine")
    client = client_for(rep_a)
    found = client.get("/app/", {"q": "meridian"})
    # Open leads only (the won one is left out, as without a search), newest handover first.
    assert rows(found) == [my_leads["ben"].pk, my_leads["dan"].pk, my_leads["anna"].pk]
    assert "3 leads matching “meridian”" in text(found)
    assert rows(client.get("/app/", {"q": "anna meridian"})) == [my_leads["anna"].pk]  # every word
    assert rows(client.get("/app/", {"q": "CARA@INITECH"})) == [my_leads["cara"].pk]  # e-mail, any case
    assert rows(client.get("/app/", {"q": "meridian", "stage": "all"}))[-1] == my_leads["won"].pk
    graded = client.get("/app/", {"q": "meridian", "grade": "B"})
    assert rows(graded) == [my_leads["ben"].pk, my_leads["dan"].pk] and "2 leads matching" in text(graded)
    nothing = client.get("/app/", {"q": "nobody"})
    assert rows(nothing) == [] and "0 leads matching “nobody”" in text(nothing)


def test_the_queue_sorts_by_its_headers_both_ways_and_keeps_the_rest_of_the_url(rep_a, my_leads):
    client = client_for(rep_a)
    by_score = client.get("/app/", {"sort": "-score", "q": "a"})
    assert rows(by_score) == [my_leads[k].pk for k in ("anna", "cara", "dan", "ben")]
    page = by_score.content.decode()
    # The sorted header says so and links to the other direction, the search kept.
    assert re.search(r'<th aria-sort="descending"><a class="sort sorted" href="\?sort=score&amp;q=a"', page) or (
        re.search(r'<th aria-sort="descending"><a class="sort sorted" href="\?q=a&amp;sort=score"', page)
    )
    assert '<span class="arrow" aria-hidden="true">▼</span>' in page
    assert rows(client.get("/app/", {"sort": "score", "q": "a"})) == [
        my_leads[k].pk for k in ("ben", "dan", "cara", "anna")
    ]
    by_name = client.get("/app/", {"sort": "lead"})
    assert rows(by_name) == [my_leads[k].pk for k in ("dan", "cara", "anna", "ben")]  # Globex, Initech, Meridian B… S…
    assert rows(client.get("/app/", {"sort": "no-such-column"})) == rows(client.get("/app/"))  # the default
    # htmx asks the same URL: the same rows, the count swapped with them (hx-select-oob).
    swapped = client.get("/app/", {"sort": "-score", "q": "a"}, **HTMX)
    assert rows(swapped) == rows(by_score) and 'id="queue-count"' in swapped.content.decode()


def test_the_team_list_searches_sorts_and_counts(team, sales_manager):
    _, reps = team
    a = LeadFactory(owner=reps[0], stage=Stage.SAL, company="Meridian Foods", first_name="Anna", score=10)
    b = LeadFactory(owner=reps[1], stage=Stage.SQL, company="Meridian Foods", first_name="Ben", score=80)
    LeadFactory(owner=reps[1], stage=Stage.SQL, company="Initech", first_name="Cara")
    client = client_for(sales_manager)
    page = client.get("/app/team/", {"q": "meridian", "sort": "-score"})
    assert [lead.pk for lead in page.context["open_leads"].object_list] == [b.pk, a.pk]
    assert "2 open leads matching “meridian”" in text(page)
    page = client.get("/app/team/", {"q": "meridian", "sort": "owner"})
    assert [lead.pk for lead in page.context["open_leads"].object_list] == [a.pk, b.pk]


def test_the_partner_list_searches_and_sorts_its_own_leads_only(partner_a, partner_b):
    org = partner_a.partner_organization
    now = timezone.now()
    x = LeadFactory(partner=org, stage=Stage.SAL, company="Meridian Foods", score=20, handed_over_at=now)
    y = LeadFactory(partner=org, stage=Stage.SAL, company="Meridian Foods", score=60, handed_over_at=now)
    LeadFactory(partner=partner_b.partner_organization, stage=Stage.SAL, company="Meridian Foods")
    page = client_for(partner_a).get("/partner/", {"q": "meridian", "sort": "-score"})
    assert [lead.pk for lead in page.context["page"].object_list] == [y.pk, x.pk]
    assert "2 leads matching “meridian”" in text(page)


# --- bulk accept and reassign -------------------------------------------------------------------------


def test_bulk_reassign_does_the_rest_and_says_which_were_refused_and_why(
    team, sales_manager, django_capture_on_commit_callbacks
):
    _, reps = team
    make_rule("Everyone", team=team[0], strategy="round_robin")
    first = mql(django_capture_on_commit_callbacks, company="Alpha", first_name="Al", last_name="Pha")
    second = mql(django_capture_on_commit_callbacks, company="Beta", first_name="Be", last_name="Ta")
    closed = LeadFactory(owner=reps[0], stage=Stage.WON, company="Closed", first_name="Cl", last_name="Osed")
    client = client_for(sales_manager)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            "/app/team/bulk/",
            {"action": "reassign", "to_user": reps[2].pk, "lead": [first.pk, closed.pk, second.pk]},
            follow=True,
        )

    page = text(done)
    assert "Reassigned 2 leads to Rep2: Al Pha &lt;" in page
    assert (
        f"Not done — {closed}: Only open leads (marketing qualified, sales accepted or qualified) can be handed "
        "to a rep; this one is won.".replace("<", "&lt;").replace(">", "&gt;")
    ) in page
    for lead in (first, second):
        lead.refresh_from_db()
        assert lead.owner_id == reps[2].pk
        assert Assignment.objects.get(lead=lead, status="active").user_id == reps[2].pk
    closed.refresh_from_db()
    assert (closed.owner_id, closed.stage) == (reps[0].pk, Stage.WON)


def test_bulk_accept_accepts_what_waits_for_the_manager_and_refuses_the_rest(
    team, sales_manager, django_capture_on_commit_callbacks
):
    _, _reps = team
    make_rule("Everyone", team=team[0])
    mine = mql(django_capture_on_commit_callbacks, company="Mine")
    theirs = mql(django_capture_on_commit_callbacks, company="Theirs")
    assignment_reassign(lead=mine, to_user=sales_manager, actor=sales_manager)
    page = client_for(sales_manager).post(
        "/app/team/bulk/", {"action": "accept", "lead": [mine.pk, theirs.pk]}, follow=True
    )
    assert "Accepted 1 lead: " in text(page)
    assert "This lead is not waiting for your acceptance." in text(page)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.stage, theirs.stage) == (Stage.SAL, Stage.MQL)


def test_bulk_with_bad_input_is_a_400_that_changes_nothing(team, sales_manager, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    owner = lead.owner_id
    client = client_for(sales_manager)
    no_rep = client.post("/app/team/bulk/", {"action": "reassign", "lead": [lead.pk]})
    assert no_rep.status_code == 400 and "Choose the rep to hand the leads to." in text(no_rep)
    none_ticked = client.post("/app/team/bulk/", {"action": "reassign", "to_user": reps[1].pk})
    assert none_ticked.status_code == 400 and "Tick at least one lead." in text(none_ticked)
    junk = client.post("/app/team/bulk/", {"action": "explode", "lead": ["x"], "to_user": reps[1].pk})
    assert junk.status_code == 400
    lead.refresh_from_db()
    assert lead.owner_id == owner and Assignment.objects.filter(lead=lead).count() == 1


@pytest.mark.parametrize("persona", ["rep_a", "partner_a", "marketing"])
def test_bulk_is_the_managers_only(request, persona, team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    owner = lead.owner_id
    response = client_for(request.getfixturevalue(persona)).post(
        "/app/team/bulk/", {"action": "reassign", "to_user": reps[2].pk, "lead": [lead.pk]}
    )
    assert response.status_code == 404
    lead.refresh_from_db()
    assert lead.owner_id == owner


# --- the pool ----------------------------------------------------------------------------------------


def test_pool_rows_name_the_person_so_two_students_are_two_people(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Pool", team=team[0], target="pool", strategy="pool", pool_mode="cherry_pick")
    for first, last in (("Anna", "Berg"), ("Ben", "Kurz")):
        mql(
            django_capture_on_commit_callbacks,
            first_name=first,
            last_name=last,
            company="Meridian Foods",
            job_title="Student",
        )
    client = client_for(reps[0])
    page = text(client.get("/app/pool/"))
    assert 'Anna Berg</span> <span class="muted">· Meridian Foods' in page
    assert 'Ben Kurz</span> <span class="muted">· Meridian Foods' in page
    assert "2 leads to claim" in page
    found = text(client.get("/app/pool/", {"q": "anna"}))
    assert "Anna Berg" in found and "Ben Kurz" not in found and "1 lead to claim matching “anna”" in found
    by_name = client.get("/app/pool/", {"sort": "-name"})
    assert [a.lead.first_name for a in by_name.context["visible"]] == ["Ben", "Anna"]


def test_a_blind_pools_rows_name_nobody(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Blind", team=team[0], target="pool", strategy="pool", pool_mode="blind")
    mql(
        django_capture_on_commit_callbacks,
        first_name="Hidden",
        last_name="Person",
        company="Secret Corp",
        email="hidden@secret.example",
    )
    page = client_for(reps[0]).get("/app/pool/", {"q": "hidden"})
    body = page.content.decode()
    assert "Hidden" not in body.replace('value="hidden"', "") and "Secret Corp" not in body
    assert "Person" not in body and "1 lead</strong> in blind pools" in body


# --- homes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona, landing",
    [
        ("rep_a", "/app/"),
        ("sales_manager", "/app/team/"),
        ("marketing", "/app/leads/"),
        ("partner_a", "/partner/"),
        ("integration", "/api/docs/"),
    ],
)
def test_sign_in_lands_each_persona_on_its_home(request, persona, landing):
    user = request.getfixturevalue(persona)
    user.set_password("pw-Secret-1")
    user.save()
    response = Client().post("/accounts/login/", {"username": user.username, "password": "pw-Secret-1"}, follow=True)
    assert response.redirect_chain[-1][0] == landing
    assert response.status_code == 200


def test_a_managers_own_queue_is_in_the_nav(sales_manager):
    LeadFactory(owner=sales_manager, stage=Stage.SAL, company="Escalated Co")
    client = client_for(sales_manager)
    team_page = client.get("/app/team/").content.decode()
    assert 'href="/app/queue/">My queue</a>' in team_page
    assert "Escalated Co" in client.get("/app/queue/").content.decode()


# --- marketing's read-only pages ----------------------------------------------------------------------


def test_marketing_lists_every_lead_searched_filtered_and_sorted(marketing, rep_a, rep_b):
    a = LeadFactory(owner=rep_a, stage=Stage.SAL, company="Meridian Foods", score=30, source="web_form")
    b = LeadFactory(owner=rep_b, stage=Stage.SAL, company="Meridian Foods", score=70, source="webinar")
    c = LeadFactory(stage=Stage.MAL, company="Meridian Foods", score=50, source="web_form")
    LeadFactory(stage=Stage.SAL, company="Initech")
    client = client_for(marketing)
    page = client.get("/app/leads/", {"q": "meridian", "sort": "-score"})
    assert rows(page) == [b.pk, c.pk, a.pk] and "3 leads matching “meridian”" in text(page)
    assert rows(client.get("/app/leads/", {"q": "meridian", "stage": "sal", "sort": "score"})) == [a.pk, b.pk]
    assert rows(client.get("/app/leads/", {"q": "meridian", "source": "web_form", "sort": "score"})) == [a.pk, c.pk]
    assert '<td data-label="Source">Web form</td>' in text(page)


def test_marketing_reads_a_lead_without_any_action_and_sees_the_reps_note(marketing, rep_a):
    """README "Who sees what": marketing sees everything of a lead, a rep's internal note included —
    but the page has no form but signing out."""
    lead = LeadFactory(owner=rep_a, stage=Stage.SAL, company="Initech", phone="+49 30 1234567")
    lead_note_add(lead=lead, text="CANARY-NOTE called twice", actor=rep_a)
    page = client_for(marketing).get(f"/app/leads/{lead.pk}/")
    body = page.content.decode()
    assert page.status_code == 200 and "CANARY-NOTE called twice" in body
    assert body.count("<form") == 1 and 'action="/accounts/logout/"' in body
    for action in ("Add a note", "Accept lead", "Close won", "Qualify (BANT)", "Reassign"):
        assert action not in body
    assert "← Leads</a>" in body
    # On a phone the number comes before the timeline.
    assert body.index('class="phone-only') < body.index("<h2>History</h2>")
    assert client_for(marketing).post(f"/app/leads/{lead.pk}/note/", {"text": "x"}).status_code == 404


# --- notifications ------------------------------------------------------------------------------------


def badge(client) -> str:
    return text(client.get("/app/notifications/badge/"))


def test_a_handover_tells_the_rep_once_and_the_badge_counts_it(team, rep_b, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0], sla_minutes=30)
    lead = mql(django_capture_on_commit_callbacks, company="Initech", first_name="Lena", last_name="Lind")
    owner = reps.index(next(r for r in reps if r.pk == lead.owner_id))
    [notice] = Notification.objects.all()
    assert (notice.user_id, notice.kind, notice.lead_id) == (reps[owner].pk, "assigned", lead.pk)
    assert notice.text.startswith("New lead for you: Lena Lind (Initech), score ")
    assert " — accept by " in notice.text and notice.url == f"/app/leads/{lead.pk}/"
    # Told again (a retried task, a second run): still one.
    assignment = Assignment.objects.get(lead=lead)
    tell.assigned([(lead, assignment)])
    assert Notification.objects.count() == 1

    client = client_for(reps[owner])
    assert '<span class="count" aria-label="1 unread">1</span>' in badge(client)
    nav = client.get("/app/").content.decode()
    assert 'hx-get="/app/notifications/badge/" hx-trigger="every 30s"' in nav and ">1</span>" in nav
    # Nobody else sees it: not in their list, not in their badge.
    stranger = client_for(rep_b)
    assert "Lena Lind" not in text(stranger.get("/app/notifications/")) and 'class="count"' not in badge(stranger)
    # Opening the list reads it: shown as new once, then the badge is empty.
    listed = text(client.get("/app/notifications/"))
    assert "Lena Lind (Initech)" in listed and '<li class="unread"' in listed
    assert 'class="count"' not in badge(client)
    assert '<li class="unread"' not in text(client.get("/app/notifications/"))


def test_sla_soon_is_told_once_whatever_the_runs(team, django_capture_on_commit_callbacks):
    _, _reps = team
    make_rule("Everyone", team=team[0], sla_minutes=10)
    lead = mql(django_capture_on_commit_callbacks, company="Initech")
    assert tell.sla_soon(now=timezone.now() - timedelta(minutes=30)) == 0  # not yet within 15 min
    assert tasks.notify_sla_soon_task() == 1
    tasks.notify_sla_soon_task()
    [notice] = Notification.objects.filter(kind="sla_soon")
    assert notice.user_id == lead.owner_id and notice.text.startswith("SLA soon due: accept ")


def test_a_reassignment_tells_the_rep_who_lost_the_lead(team, sales_manager, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks, company="Initech")
    before = lead.owner_id
    to = next(r for r in reps if r.pk != before)
    assignment_reassign(lead=lead, to_user=to, actor=sales_manager, note="covering for holidays")
    [back] = Notification.objects.filter(kind="taken_back")
    assert back.user_id == before and back.text.endswith("(Initech) — covering for holidays")
    assert Notification.objects.filter(kind="assigned", user=to).count() == 1


def test_mark_read_touches_only_ones_own(rep_a, rep_b):
    lead = LeadFactory()
    for user in (rep_a, rep_b):
        notifications.notify(users=[user], kind="assigned", key="k", text="t", lead=lead)
    assert notifications.mark_read(rep_a) == 1
    assert (notifications.unread_count(rep_a), notifications.unread_count(rep_b)) == (0, 1)


# --- the hand-over e-mail ------------------------------------------------------------------------------

DUE = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)  # 14:30 in Berlin (CET)


def test_the_handover_email_says_who_why_what_happened_and_by_when(settings, team, django_capture_on_commit_callbacks):
    settings.PORTAL_BASE_URL = "https://leads.example.com/"
    _, reps = team
    make_model(activate=True)
    lead = LeadFactory(
        stage=Stage.MQL,
        first_name="Lena",
        last_name="Lind",
        email="lena@initech.example",
        company="Initech",
        job_title="CTO",
        country="DE",
        phone="+49 30 1234567",
        score=60,
        grade="A",
    )
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ActivityFactory(lead=lead, type=ActivityType.DEMO_REQUEST, occurred_at=at, properties={})
    ActivityFactory(
        lead=lead, type=ActivityType.PAGE_VIEW, occurred_at=at + timedelta(hours=1), properties={"url": "/pricing"}
    )
    ActivityFactory(
        lead=lead, type=ActivityType.PAGE_VIEW, occurred_at=at + timedelta(hours=2), properties={"url": "/pricing"}
    )
    ActivityFactory(lead=lead, type=ActivityType.EMAIL_OPEN, occurred_at=at - timedelta(days=1))  # the 4th: left out
    assignment = Assignment.objects.create(
        lead=lead, user=reps[0], rule=make_rule("Everyone", team=team[0]), status="active", due_at=DUE
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.notify_assignments_task([assignment.pk])
    [message] = mail.outbox
    assert message.body == (
        "Hello Rep0,\n"
        "\n"
        "a new lead is yours: please accept or reject it by 14:30 (Berlin time), 2 Dec.\n"
        "\n"
        "Who\n"
        "Lena Lind <lena@initech.example>\n"
        "CTO at Initech, Germany\n"
        "Phone: +49 30 1234567\n"
        "\n"
        "Why this score: 60, grade A\n"
        "- Demo request +30\n"
        "- CTO +20\n"
        "- Pricing page ×2 +20\n"
        "Rule: Everyone.\n"
        "\n"
        "Last activities\n"
        "- 12:00 (Berlin time), 1 Dec: Page viewed — url: /pricing\n"
        "- 11:00 (Berlin time), 1 Dec: Page viewed — url: /pricing\n"
        "- 10:00 (Berlin time), 1 Dec: Demo requested\n"
        "\n"
        "Open the lead: https://leads.example.com/app/leads/" + str(lead.pk) + "/\n"
        "\n"
        "Deadline: 14:30 (Berlin time), 2 Dec. Not accepted in time, it goes to someone else.\n"
    )
    [(html, _)] = message.alternatives
    assert "<li>Demo request +30</li>" in html and "Deadline: <strong>14:30 (Berlin time), 2 Dec</strong>" in html


# --- the away banner ------------------------------------------------------------------------------------


def test_a_rep_marked_away_sees_the_banner_with_the_date_and_a_way_back(team):
    _, reps = team
    client = client_for(reps[0])
    assert "You are marked away" not in text(client.get("/app/"))
    RepProfile.objects.filter(user=reps[0]).update(away_until=datetime(2026, 12, 24, 17, 0, tzinfo=UTC))
    page = text(client.get("/app/pool/"))
    assert re.search(
        r"You are marked away until [^:]*24[^:]*: routing hands you no new leads\. "
        r'<a href="/app/availability/">Change your availability</a>',
        page,
    ), page[:3000]
    assert "You are marked away" not in text(client_for(reps[1]).get("/app/"))
    assert Activity.objects.count() == 0
