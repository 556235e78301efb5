"""Routing's e-mails, one test per message: who gets it, its subject, its plain text word for word and
its HTML's key phrases (lead, company, the deadline in Berlin time with the zone said, the link).
And how they go: after the commit (a reassign in a request sends nothing itself), once, and the
assignment recorded as told only when its e-mail really went out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from smtplib import SMTPServerDisconnected
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.utils import timezone

from leads.models import Role, Stage
from leads.tests.factories import LeadFactory, PartnerOrganizationFactory, UserFactory, client_for
from routing import services, tasks
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team, mql

pytestmark = pytest.mark.django_db

DUE = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)  # 14:30 in Berlin (CET)
DUE_SHOWN = "14:30 (Berlin time), 2 Dec"
BASE = "https://leads.example.com"
CARD = "Lena Lind <lena@initech.example>\nCTO at Initech, Germany\n"  # the lead, as every message shows it


@pytest.fixture(autouse=True)
def portal(settings):
    settings.PORTAL_BASE_URL = BASE + "/"


@pytest.fixture
def team(manager):
    return make_team(size=2, manager=manager)


@pytest.fixture
def lead(db):
    return LeadFactory(
        stage=Stage.MQL,
        first_name="Lena",
        last_name="Lind",
        email="lena@initech.example",
        company="Initech",
        job_title="CTO",
        country="DE",
        score=87.4,
        grade="A",
    )


def notify(capture, assignment: Assignment) -> None:
    mail.outbox.clear()
    with capture(execute=True):
        tasks.notify_assignments_task([assignment.pk])


def html(message) -> str:
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return content


def test_a_rep_is_told_of_a_new_lead_with_its_deadline_and_link(team, lead, django_capture_on_commit_callbacks):
    _, reps = team
    assignment = Assignment.objects.create(
        lead=lead, user=reps[0], rule=make_rule("Everyone", team=team[0]), status="active", due_at=DUE
    )

    notify(django_capture_on_commit_callbacks, assignment)

    [message] = mail.outbox
    assert message.to == ["rep0@insidesales.example"]
    assert message.subject == f"New lead for you: Initech — accept by {DUE_SHOWN}"
    assert message.body == (
        "Hello Rep0,\n"
        "\n"
        f"a new lead is yours: please accept or reject it by {DUE_SHOWN}.\n"
        "\n"
        "Who\n"
        f"{CARD}"
        "\n"
        "Why this score: 87, grade A\n"
        "- no rule adds anything yet\n"
        "Rule: Everyone.\n"
        "\n"
        "Last activities\n"
        "- none yet\n"
        "\n"
        f"Open the lead: {BASE}/app/leads/{lead.pk}/\n"
        "\n"
        f"Deadline: {DUE_SHOWN}. Not accepted in time, it goes to someone else.\n"
    )
    body = html(message)
    assert "<strong>Lena Lind &lt;lena@initech.example&gt;</strong><br>CTO at Initech, Germany" in body
    assert f"please accept or reject it by <strong>{DUE_SHOWN}</strong>" in body
    assert f'<a href="{BASE}/app/leads/{lead.pk}/"' in body and "Why this score: 87, grade A" in body
    assignment.refresh_from_db()
    assert assignment.notified_at is not None


def test_a_rep_without_a_deadline_is_not_given_one(team, lead, django_capture_on_commit_callbacks):
    assignment = Assignment.objects.create(lead=lead, user=team[1][1], status="active")

    notify(django_capture_on_commit_callbacks, assignment)

    [message] = mail.outbox
    assert message.subject == "New lead for you: Initech"
    assert "a new lead is yours.\n" in message.body and "Rule: –." in message.body
    assert "Berlin time" not in message.body + html(message) and "in time" not in message.body


def test_a_manager_is_told_a_lead_was_escalated_to_them(team, lead, manager, django_capture_on_commit_callbacks):
    assignment = Assignment.objects.create(
        lead=lead,
        user=manager,
        rule=make_rule("Everyone", team=team[0]),
        status="active",
        due_at=DUE,
        escalated_at=timezone.now(),
    )

    notify(django_capture_on_commit_callbacks, assignment)

    [message] = mail.outbox
    assert message.to == ["sam@team.example"]
    assert message.subject == f"Escalated to you: Initech — accept by {DUE_SHOWN}"
    assert message.body == (
        "Hello Sam,\n"
        "\n"
        "nobody on your team took this lead in time, so it is now yours: please accept it, or hand it to a rep, "
        f"by {DUE_SHOWN}.\n"
        "\n"
        f"{CARD}"
        "Score 87, grade A. Rule: Everyone.\n"
        "\n"
        f"Open the lead: {BASE}/app/leads/{lead.pk}/\n"
    )
    assert f"hand it to a rep, by <strong>{DUE_SHOWN}</strong>" in html(message)
    assert f'<a href="{BASE}/app/leads/{lead.pk}/"' in html(message)


def test_a_partners_users_are_told_of_their_lead_and_nothing_internal(lead, django_capture_on_commit_callbacks):
    org = PartnerOrganizationFactory(name="Alpine Resellers")
    pia = UserFactory(username="pia", role=Role.PARTNER, partner_organization=org, first_name="Pia")
    UserFactory(username="gone", role=Role.PARTNER, partner_organization=org, is_active=False)
    rule = make_rule("Secret Austria discount rule", target="partners", strategy="direct", partners=[org])
    assignment = Assignment.objects.create(lead=lead, partner=org, rule=rule, status="active", due_at=DUE)

    notify(django_capture_on_commit_callbacks, assignment)

    [message] = mail.outbox
    assert message.to == [pia.email]
    assert message.subject == f"New lead for you: Initech — accept by {DUE_SHOWN}"
    assert message.body == (
        "Hello Pia,\n"
        "\n"
        f"we have handed a new lead to Alpine Resellers. Please accept or decline it by {DUE_SHOWN}.\n"
        "\n"
        f"{CARD}"
        "Score 87, grade A.\n"
        "\n"
        f"Open the lead in the partner portal: {BASE}/partner/leads/{lead.pk}/\n"
    )
    everything = f"{message.subject} {message.body} {html(message)}"
    assert "Secret Austria" not in everything and "Rule" not in everything and "/app/" not in everything
    assert f'<a href="{BASE}/partner/leads/{lead.pk}/"' in html(message)


def test_a_pools_reps_are_told_one_by_one(team, lead, django_capture_on_commit_callbacks):
    pool_team, reps = team
    assignment = Assignment.objects.create(
        lead=lead, pool_team=pool_team, rule=make_rule("Pool", team=pool_team), status="pooled", due_at=DUE
    )

    notify(django_capture_on_commit_callbacks, assignment)

    assert [m.to for m in mail.outbox] == [[reps[0].email], [reps[1].email]]  # nobody sees the others
    assert {m.subject for m in mail.outbox} == {"New lead in the pool: Initech"}
    assert mail.outbox[1].body == (
        "Hello Rep1,\n"
        "\n"
        "a new lead waits in Inside sales's pool: the first to claim it gets it.\n"
        "\n"
        f"{CARD}"
        "Score 87, grade A. Rule: Pool.\n"
        "\n"
        f"Claim it on the pool page: {BASE}/app/pool/\n"
        "\n"
        f"If nobody has claimed it by {DUE_SHOWN}, your manager is told.\n"
    )
    assert f'<a href="{BASE}/app/pool/"' in html(mail.outbox[1])
    assert f"If nobody has claimed it by <strong>{DUE_SHOWN}</strong>, your manager is told." in html(mail.outbox[1])
    assert "a new lead waits in Inside sales's pool: the first to claim it gets it." in html(mail.outbox[1])


def test_the_manager_is_told_a_lead_waits_in_the_pool(team, lead, django_capture_on_commit_callbacks):
    pool_team, reps = team
    assignment = Assignment.objects.create(
        lead=lead,
        pool_team=pool_team,
        status="pooled",
        assigned_at=datetime(2026, 12, 2, 9, 5, tzinfo=UTC),
        due_at=DUE,
        escalated_at=timezone.now(),
    )

    notify(django_capture_on_commit_callbacks, assignment)

    assert [m.to for m in mail.outbox] == [[reps[0].email], [reps[1].email], ["sam@team.example"]]
    message = mail.outbox[-1]
    assert message.subject == "Waiting in the pool: Initech"
    assert message.body == (
        "Hello Sam,\n"
        "\n"
        "Lena Lind <lena@initech.example> has been waiting in Inside sales's pool since 10:05 (Berlin time), 2 Dec "
        "and nobody has claimed it.\n"
        f"Hand it to a rep from the team page: {BASE}/app/team/\n"
        "\n"
        f"The lead: {BASE}/app/leads/{lead.pk}/\n"
    )
    assert "since <strong>10:05 (Berlin time), 2 Dec</strong>" in html(message)
    assert f'<a href="{BASE}/app/team/"' in html(message) and f'<a href="{BASE}/app/leads/{lead.pk}/"' in html(message)


def test_the_sales_managers_are_told_when_nobody_could_take_a_lead(manager, django_capture_on_commit_callbacks):
    other = UserFactory(username="sue", role=Role.SALES_MANAGER, first_name="", email="sue@team.example")
    UserFactory(username="old", role=Role.SALES_MANAGER, email="old@team.example", is_active=False)
    lead = LeadFactory(
        stage=Stage.MQL, first_name="", last_name="", email="x@lonely.example", company="", job_title="", country=""
    )
    assignment = Assignment.objects.create(lead=lead, status="unassigned")

    notify(django_capture_on_commit_callbacks, assignment)

    assert [m.to for m in mail.outbox] == [[manager.email], [other.email]]
    message = mail.outbox[1]
    assert message.subject == "Nobody could take a lead: lonely.example"
    assert message.body == (
        "Hello,\n"
        "\n"
        "no routing rule could place this lead: no rule matched it, or nobody it names could take it.\n"
        "\n"
        "x@lonely.example\n"
        "lonely.example\n"
        "Score 0, grade –.\n"
        "\n"
        "It waits in the unassigned queue on the team page, and routing tries again every few minutes: "
        f"{BASE}/app/team/\n"
        f"The lead: {BASE}/app/leads/{lead.pk}/\n"
    )
    assert "<strong>x@lonely.example</strong><br>lonely.example<br>Score 0, grade –." in html(message)
    assert "Rule:" not in html(message)


# --- how they go ----------------------------------------------------------------------------------------


def test_a_repeated_task_sends_nothing_twice(team, lead, django_capture_on_commit_callbacks):
    assignment = Assignment.objects.create(lead=lead, user=team[1][0], status="active", due_at=DUE)
    notify(django_capture_on_commit_callbacks, assignment)
    assert len(mail.outbox) == 1

    notify(django_capture_on_commit_callbacks, assignment)  # redelivered, or the reconciler's run
    assert mail.outbox == []


class DownBackend(locmem.EmailBackend):
    attempts = 0

    def send_messages(self, messages):
        DownBackend.attempts += 1
        raise SMTPServerDisconnected("Connection unexpectedly closed")


def test_an_assignment_is_recorded_as_told_only_once_its_email_went_out_and_never_queued_twice_meanwhile(
    team, lead, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from leads import mail as lead_mail
    from leads.tasks import send_email_task

    # Retry as a worker does (tests otherwise propagate the first error), with the server down throughout.
    monkeypatch.setitem(send_email_task.app.conf, "task_eager_propagates", False)
    settings.EMAIL_BACKEND = f"{__name__}.DownBackend"
    DownBackend.attempts = 0
    assignment = Assignment.objects.create(lead=lead, user=team[1][0], status="active", due_at=DUE)

    notify(django_capture_on_commit_callbacks, assignment)

    assignment.refresh_from_db()
    assert DownBackend.attempts == 9 and mail.outbox == [] and assignment.notified_at is None  # for the reconciler
    # The reconciler's next runs, while the copy queued may still be retrying: nothing more is queued.
    with django_capture_on_commit_callbacks() as queued:
        for _ in range(3):
            services.assignments_notify(assignment_ids=[assignment.pk])
    assert queued == [] and DownBackend.attempts == 9

    # Once that copy has given up, the reconciler queues the e-mail again, and the server is back.
    Assignment.objects.filter(pk=assignment.pk).update(
        notify_queued_at=timezone.now() - lead_mail.RETRYING_FOR - timedelta(seconds=1)
    )
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for _ in range(2):  # and again, once it went out: nothing more
        with django_capture_on_commit_callbacks(execute=True):
            tasks.notify_assignments_task([assignment.pk])

    assignment.refresh_from_db()
    assert [m.to for m in mail.outbox] == [[team[1][0].email]] and assignment.notified_at is not None


def test_a_reassign_in_a_request_queues_its_email_and_sends_nothing_itself(
    team, manager, django_capture_on_commit_callbacks
):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks, company="Initech")
    to_rep = next(rep for rep in reps if rep != lead.owner)
    mail.outbox.clear()
    client = client_for(manager)

    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/app/leads/{lead.pk}/reassign/", {"to_user": to_rep.pk})

    assert response.status_code in (200, 302)
    assert Assignment.objects.get(lead=lead, status="active").user == to_rep
    assert mail.outbox == [] and len(queued) == 1  # the request only queued the notification
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()
    due = timezone.localtime(Assignment.objects.get(lead=lead, status="active").due_at, ZoneInfo("Europe/Berlin"))
    assert [m.to for m in mail.outbox] == [[to_rep.email]]
    assert (
        mail.outbox[0].subject == f"New lead for you: Initech — accept by {due:%H:%M} (Berlin time), {due.day} {due:%b}"
    )
