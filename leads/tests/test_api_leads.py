from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Activity, ActivityType, Lead, Stage, StageChange
from leads.tests.factories import ActivityFactory, LeadFactory


@pytest.fixture
def leads(rep_a, rep_b, partner_org_a, partner_org_b):
    """One lead each: owned by rep A, owned by rep B, routed to partner A, to partner B, unassigned."""
    return {
        "rep_a": LeadFactory(owner=rep_a, stage=Stage.MQL),
        "rep_b": LeadFactory(owner=rep_b, stage=Stage.MQL),
        "partner_a": LeadFactory(partner=partner_org_a, stage=Stage.MQL),
        "partner_b": LeadFactory(partner=partner_org_b, stage=Stage.MQL),
        "unassigned": LeadFactory(stage=Stage.MAL),
    }


def listed_ids(response):
    assert response.status_code == 200
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("persona", "sees"),
    [
        ("marketing", {"rep_a", "rep_b", "partner_a", "partner_b", "unassigned"}),
        ("sales_manager", {"rep_a", "rep_b", "partner_a", "partner_b", "unassigned"}),
        ("rep_a", {"rep_a"}),
        ("rep_b", {"rep_b"}),
    ],
)
def test_each_persona_lists_and_opens_only_its_leads(request, api, leads, persona, sees):
    client = api(request.getfixturevalue(persona))

    assert listed_ids(client.get("/api/v1/leads/")) == {leads[k].pk for k in sees}
    for key, lead in leads.items():
        expected = 200 if key in sees else 404
        assert client.get(f"/api/v1/leads/{lead.pk}/").status_code == expected
        assert client.get(f"/api/v1/leads/{lead.pk}/activities/").status_code == expected


def test_integration_clients_may_capture_but_not_read(api, integration, leads):
    client = api(integration)
    assert client.get("/api/v1/leads/").status_code == 403
    assert client.get(f"/api/v1/leads/{leads['rep_a'].pk}/").status_code == 403


def test_anonymous_gets_401_everywhere(api, leads):
    client = api(None)
    lead = leads["rep_a"]
    assert client.get("/api/v1/leads/").status_code == 401
    assert client.get(f"/api/v1/leads/{lead.pk}/").status_code == 401
    assert client.patch(f"/api/v1/leads/{lead.pk}/", {"job_title": "X"}).status_code == 401
    assert client.post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "sal"}).status_code == 401
    assert client.post("/api/v1/events/", {"email": "a@b.example", "type": "download"}).status_code == 401


def test_another_reps_lead_cannot_be_moved_or_changed(api, rep_b, leads):
    lead = leads["rep_a"]
    client = api(rep_b)
    assert client.post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "sal"}).status_code == 404
    assert client.patch(f"/api/v1/leads/{lead.pk}/", {"job_title": "Hacked"}).status_code == 404
    lead.refresh_from_db()
    assert (lead.stage, lead.job_title) == (Stage.MQL, "")


def test_for_a_partner_the_internal_api_does_not_exist_even_for_its_own_lead(api, partner_a, leads):
    """Partners read their share through /api/v1/partner/; here every door is a 404, so a partner
    learns nothing (not even that the lead exists) and changes nothing."""
    lead = leads["partner_a"]
    client = api(partner_a)
    answers = [
        client.get("/api/v1/leads/"),
        client.get(f"/api/v1/leads/{lead.pk}/"),
        client.get(f"/api/v1/leads/{lead.pk}/activities/"),
        client.patch(f"/api/v1/leads/{lead.pk}/", {"job_title": "X"}),
        client.post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "sal"}),
    ]
    assert [a.status_code for a in answers] == [404] * 5
    assert {a.json()["detail"] for a in answers} == {"Not found."}
    lead.refresh_from_db()
    assert (lead.stage, lead.job_title) == (Stage.MQL, leads["partner_a"].job_title)
    assert client.get(f"/api/v1/partner/leads/{lead.pk}/").status_code == 200


def test_transition_moves_the_lead_and_records_who(api, rep_a, leads):
    lead = leads["rep_a"]

    response = api(rep_a).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "disqualified", "reason": "Spam"})

    assert response.status_code == 200
    assert response.json()["stage"] == "disqualified"
    change = StageChange.objects.get(lead=lead)
    assert (change.from_stage, change.to_stage, change.actor, change.reason) == ("mql", "disqualified", rep_a, "Spam")


def test_a_refused_transition_is_409_with_the_allowed_moves(api, rep_a, leads):
    lead = leads["rep_a"]

    response = api(rep_a).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "won"})

    assert response.status_code == 409
    assert response.json() == {
        "detail": "A lead cannot move from mql to won (allowed: sal, mal, disqualified).",
        "code": "transition_refused",
        "from": "mql",
        "to": "won",
        "allowed": ["sal", "mal", "disqualified"],
    }
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL


def test_rejecting_without_a_reason_is_409_and_with_one_works(api, rep_a, leads):
    lead = leads["rep_a"]
    client = api(rep_a)
    refused = client.post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "mal"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == "Moving from mql to mal needs a reason."

    accepted = client.post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "mal", "reason": "No budget this year"})

    assert accepted.status_code == 200
    assert StageChange.objects.get(lead=lead).reason == "No budget this year"


def test_an_unknown_stage_is_400(api, rep_a, leads):
    response = api(rep_a).post(f"/api/v1/leads/{leads['rep_a'].pk}/transition/", {"to": "pending"})
    assert response.status_code == 400
    assert "to" in response.json()


def test_patch_updates_the_profile_and_records_it_on_the_timeline(api, marketing, leads):
    lead = leads["unassigned"]

    response = api(marketing).patch(f"/api/v1/leads/{lead.pk}/", {"job_title": "CFO", "company_size": 250})

    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.job_title, lead.company_size) == ("CFO", 250)
    update = Activity.objects.get(lead=lead, type=ActivityType.PROFILE_UPDATE)
    assert update.properties == {"fields": ["company_size", "job_title"]}


def test_patch_cannot_change_stage_score_or_owner(api, marketing, rep_a, leads):
    lead = leads["unassigned"]
    api(marketing).patch(f"/api/v1/leads/{lead.pk}/", {"stage": "won", "score": 99, "owner": rep_a.pk}, format="json")
    lead.refresh_from_db()
    assert (lead.stage, lead.score, lead.owner) == (Stage.MAL, 0, None)
    assert not Activity.objects.filter(lead=lead).exists()


def test_bad_patch_is_400_and_changes_nothing(api, marketing, leads):
    lead = leads["unassigned"]
    response = api(marketing).patch(f"/api/v1/leads/{lead.pk}/", {"country": "Atlantis", "job_title": "CFO"})
    assert response.status_code == 400
    assert "country" in response.json()
    lead.refresh_from_db()
    assert lead.job_title == ""


def test_timeline_is_newest_first(api, marketing, leads):
    lead = leads["unassigned"]
    now = timezone.now()
    old = ActivityFactory(lead=lead, occurred_at=now - timedelta(days=2), type=ActivityType.DOWNLOAD)
    new = ActivityFactory(lead=lead, occurred_at=now, type=ActivityType.WEBINAR)
    mid = ActivityFactory(lead=lead, occurred_at=now - timedelta(days=1))

    rows = api(marketing).get(f"/api/v1/leads/{lead.pk}/activities/").json()["results"]

    assert [row["id"] for row in rows] == [new.pk, mid.pk, old.pk]
    assert rows[0]["type"] == "webinar"


class TestFilters:
    def test_stage_country_source_campaign_grade_owner_partner(self, api, marketing, rep_a, partner_org_a):
        wanted = LeadFactory(stage=Stage.SQL, country="AT", source="webinar", campaign="dach", grade="A", owner=rep_a)
        LeadFactory(stage=Stage.SQL, country="DE", source="webinar", campaign="dach", grade="A", owner=rep_a)
        LeadFactory(stage=Stage.MAL, country="AT", source="webinar", campaign="dach", grade="A")
        at_partner = LeadFactory(partner=partner_org_a)
        client = api(marketing)

        query = "stage=sql&country=at&source=webinar&campaign=dach&grade=A"
        assert listed_ids(client.get(f"/api/v1/leads/?{query}&owner={rep_a.pk}")) == {wanted.pk}
        assert listed_ids(client.get(f"/api/v1/leads/?partner={partner_org_a.pk}")) == {at_partner.pk}

    def test_score_range_and_ordering(self, api, marketing):
        low, mid, high = LeadFactory(score=10), LeadFactory(score=50), LeadFactory(score=90)
        client = api(marketing)
        assert listed_ids(client.get("/api/v1/leads/?min_score=20&max_score=60")) == {mid.pk}
        rows = client.get("/api/v1/leads/?ordering=-score").json()["results"]
        assert [row["id"] for row in rows] == [high.pk, mid.pk, low.pk]

    def test_updated_since_returns_only_what_changed(self, api, marketing):
        before = LeadFactory()
        Lead.objects.filter(pk=before.pk).update(updated_at=timezone.now() - timedelta(days=3))
        cursor = timezone.now() - timedelta(days=1)
        after = LeadFactory()

        response = api(marketing).get("/api/v1/leads/", {"updated_since": cursor.isoformat()})

        assert listed_ids(response) == {after.pk}

    def test_created_range(self, api, marketing):
        old = LeadFactory()
        Lead.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
        recent = LeadFactory()
        since = (timezone.now() - timedelta(days=5)).isoformat()
        assert listed_ids(api(marketing).get("/api/v1/leads/", {"created_after": since})) == {recent.pk}
        assert listed_ids(api(marketing).get("/api/v1/leads/", {"created_before": since})) == {old.pk}

    def test_search_on_name_email_company(self, api, marketing):
        jane = LeadFactory(first_name="Janet", email="jj@x.example", company="Initech")
        LeadFactory(first_name="Bob", email="bob@y.example", company="Globex")
        client = api(marketing)
        for term in ("janet", "jj@x", "initech"):
            assert listed_ids(client.get("/api/v1/leads/", {"search": term})) == {jane.pk}

    def test_bad_filter_values_are_400(self, api, marketing):
        client = api(marketing)
        for query in ("stage=pending", "min_score=abc", "updated_since=yesterday", "grade=Z"):
            response = client.get(f"/api/v1/leads/?{query}")
            assert response.status_code == 400, query
            assert response.json()

    def test_pages_are_bounded(self, api, marketing):
        LeadFactory.create_batch(7)
        body = api(marketing).get("/api/v1/leads/?page_size=3&page=2").json()
        assert (body["count"], len(body["results"])) == (7, 3)
        assert body["next"] and body["previous"]


def test_time_filters_with_exotic_offsets_are_converted_not_crashed(api, marketing):
    lead = LeadFactory()
    # ISO 8601 allows -20:23; PostgreSQL does not. 2000-01-01T00:00-20:23 is 20:23 UTC.
    response = api(marketing).get("/api/v1/leads/", {"created_after": "2000-01-01T00:00-20:23"})
    assert listed_ids(response) == {lead.pk}
    assert api(marketing).get("/api/v1/leads/", {"updated_since": "0001-01-01T00:00+10:00"}).status_code == 400


def test_the_api_answers_429_beyond_the_rate_limit(api, marketing, monkeypatch):
    from django.core.cache import cache

    from leads.api.throttling import FixedWindowUserRateThrottle
    from leads.api.views import LeadViewSet

    class ThreePerMinute(FixedWindowUserRateThrottle):
        rate = "3/minute"

    monkeypatch.setattr(LeadViewSet, "throttle_classes", [ThreePerMinute])
    cache.clear()
    client = api(marketing)

    responses = [client.get("/api/v1/leads/") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert 0 < int(responses[-1]["Retry-After"]) <= 60
    cache.clear()
