"""The API does what the rep dashboard does: BANT, close won/lost, notes, calls and meetings, through
the same services with the same rules, leaving the same state and the same timeline entry; and
/transition/ refuses the moves that need data or belong to someone, naming the endpoint to use."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from leads.models import Activity, ActivityType, Lead, LostReason, Qualification, Stage, StageChange

from .factories import LeadFactory, client_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
BANT = {name: {"confirmed": True, "note": f"{name} ok"} for name in Qualification.CRITERIA}
BANT_FORM = {**dict.fromkeys(Qualification.CRITERIA, "on"), **{f"{n}_note": f"{n} ok" for n in Qualification.CRITERIA}}


def owned(owner, stage: str = Stage.SAL, created_days_ago: int = 30) -> Lead:
    lead = LeadFactory(owner=owner, stage=stage, handed_over_at=timezone.now())
    Lead.objects.filter(pk=lead.pk).update(created_at=timezone.now() - timedelta(days=created_days_ago))
    lead.refresh_from_db()
    return lead


def snapshot(lead: Lead) -> tuple:
    """Everything an action could change: the lead row, its timeline, moves and BANT."""
    row = Lead.objects.filter(pk=lead.pk).values().get()
    qualification = Qualification.objects.filter(lead=lead).values().first()
    return row, Activity.objects.filter(lead=lead).count(), StageChange.objects.filter(lead=lead).count(), qualification


def refused(client, lead: Lead, action: str, payload: dict, status: int):
    """POSTs `payload` to the lead's `action`, which must answer `status` and change nothing."""
    before = snapshot(lead)
    response = client.post(f"/api/v1/leads/{lead.pk}/{action}/", payload)
    assert response.status_code == status
    assert snapshot(lead) == before
    return response


def assert_errors(response, errors: dict | str) -> None:
    """The 400's field errors exactly, or (a field name) only that field refused."""
    assert response.json() == errors if isinstance(errors, dict) else list(response.json()) == [errors]


def outcome(lead: Lead) -> dict:
    """The state an action leaves, comparable between two leads."""
    lead.refresh_from_db()
    qualification = Qualification.objects.filter(lead=lead).first()
    return {
        "stage": lead.stage,
        "deal_value": lead.deal_value,
        "deal_currency": lead.deal_currency,
        "lost_reason": lead.lost_reason,
        "closed": lead.closed_at is not None,
        "bant": {
            name: (getattr(qualification, name), getattr(qualification, f"{name}_note"))
            for name in Qualification.CRITERIA
        }
        if qualification
        else None,
        "moves": list(lead.stage_changes.order_by("pk").values_list("from_stage", "to_stage", "reason", "actor")),
        "timeline": [
            (a.type, a.properties, a.created_by_id)
            for a in lead.activities.exclude(type=ActivityType.STAGE_CHANGE).order_by("pk")
        ],
        "stage_entries": [a.properties for a in lead.activities.filter(type=ActivityType.STAGE_CHANGE).order_by("pk")],
    }


# --- qualify -----------------------------------------------------------------------------------------


def test_qualify_with_all_four_confirmed_makes_the_lead_sql_and_answers_the_qualification(api, rep_a):
    lead = owned(rep_a)

    response = api(rep_a).post(f"/api/v1/leads/{lead.pk}/qualify/", BANT)

    assert response.status_code == 200
    body = response.json()
    body.pop("updated_at")
    assert body == {"lead": lead.pk, "stage": "sql", **BANT, "confirmed_count": 4, "complete": True}
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    change = lead.stage_changes.get()
    assert (change.from_stage, change.to_stage, change.reason, change.actor) == ("sal", "sql", "BANT confirmed", rep_a)
    entry = lead.activities.get(type=ActivityType.QUALIFICATION)
    assert (entry.properties, entry.created_by) == (BANT, rep_a)


def test_qualify_keeps_the_criteria_not_given(api, rep_a):
    lead = owned(rep_a)
    client = api(rep_a)

    first = client.post(f"/api/v1/leads/{lead.pk}/qualify/", {"budget": {"confirmed": True, "note": "50k"}})
    assert (first.status_code, first.json()["stage"], first.json()["confirmed_count"]) == (200, "sal", 1)
    second = client.post(f"/api/v1/leads/{lead.pk}/qualify/", {n: BANT[n] for n in ("authority", "need", "timing")})

    assert second.json()["budget"] == {"confirmed": True, "note": "50k"}
    assert (second.json()["stage"], second.json()["complete"]) == ("sql", True)
    q = Qualification.objects.get(lead=lead)
    assert (q.budget_note, q.authority_note, q.need_note, q.timing_note) == (
        "50k",
        "authority ok",
        "need ok",
        "timing ok",
    )


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"budget": {"confirmed": True}}, {"budget": ["Say what confirms the budget."]}),
        ({"budget": {"confirmed": True, "note": "   "}}, {"budget": ["Say what confirms the budget."]}),
        ({}, {"non_field_errors": ["Give at least one of budget, authority, need, timing."]}),
        ({"need": {"note": "no flag"}}, {"need": {"confirmed": ["This field is required."]}}),
        ({"timing": {"confirmed": False, "note": "x" * 1001}}, "timing"),
    ],
)
def test_bad_bant_is_a_400_and_changes_nothing(api, rep_a, payload, errors):
    assert_errors(refused(api(rep_a), owned(rep_a), "qualify", payload, 400), errors)


def test_qualify_before_the_lead_is_accepted_is_a_409(api, rep_a):
    response = refused(api(rep_a), owned(rep_a, stage=Stage.MQL), "qualify", BANT, 409)
    assert response.json()["detail"] == "Accept the lead before qualifying it."


# --- close -------------------------------------------------------------------------------------------


def test_close_won_records_the_deal_and_shows_it_on_the_lead(api, rep_a):
    lead = owned(rep_a, stage=Stage.SQL)

    response = api(rep_a).post(
        f"/api/v1/leads/{lead.pk}/close/", {"outcome": "won", "deal_value": "18500.00", "currency": "eur"}
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["stage"], body["deal_value"], body["deal_currency"], body["lost_reason"]) == (
        "won",
        "18500.00",
        "EUR",
        "",
    )
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value, lead.deal_currency, lead.lost_reason) == (
        Stage.WON,
        Decimal("18500.00"),
        "EUR",
        "",
    )
    assert lead.closed_at is not None and body["closed_at"] is not None
    change = lead.stage_changes.get()
    assert (change.from_stage, change.to_stage, change.reason, change.actor) == (
        "sql",
        "won",
        "won 18500.00 EUR",
        rep_a,
    )
    entry = lead.activities.get(type=ActivityType.STAGE_CHANGE)
    assert entry.properties == {"from": "sql", "to": "won", "reason": "won 18500.00 EUR"}


def test_close_won_defaults_to_eur(api, rep_a):
    lead = owned(rep_a, stage=Stage.SQL)
    response = api(rep_a).post(f"/api/v1/leads/{lead.pk}/close/", {"outcome": "won", "deal_value": "990"})
    assert (response.status_code, response.json()["deal_value"], response.json()["deal_currency"]) == (
        200,
        "990.00",
        "EUR",
    )


def test_close_lost_records_the_reason(api, rep_a):
    lead = owned(rep_a, stage=Stage.SAL)

    response = api(rep_a).post(
        f"/api/v1/leads/{lead.pk}/close/", {"outcome": "lost", "reason": "competitor", "note": "Went with Acme"}
    )

    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.stage, lead.lost_reason, lead.deal_value, lead.deal_currency) == (Stage.LOST, "competitor", None, "")
    assert lead.closed_at is not None
    assert response.json()["lost_reason"] == "competitor"
    assert lead.stage_changes.get().reason == "Chose a competitor: Went with Acme"


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"outcome": "won"}, {"deal_value": ["A won deal needs its value (greater than 0)."]}),
        ({"outcome": "won", "deal_value": "0"}, {"deal_value": ["A won deal needs its value (greater than 0)."]}),
        ({"outcome": "won", "deal_value": "-5"}, {"deal_value": ["A won deal needs its value (greater than 0)."]}),
        (
            {"outcome": "won", "deal_value": "100", "currency": "E1R"},
            {"currency": ["A currency is a three-letter ISO 4217 code, e.g. EUR."]},
        ),
        (
            {"outcome": "won", "deal_value": "100", "reason": "price"},
            {"reason": ["A won deal has no lost reason."]},
        ),
        (
            {"outcome": "lost"},
            {"reason": [f"A lost deal needs a reason, one of: {', '.join(LostReason.values)}."]},
        ),
        ({"outcome": "lost", "reason": "bored"}, {"reason": ['"bored" is not a valid choice.']}),
        ({"outcome": "lost", "reason": "price", "deal_value": "10"}, {"deal_value": ["A lost deal has no value."]}),
        ({"outcome": "draw"}, {"outcome": ['"draw" is not a valid choice.']}),
        ({"outcome": "won", "deal_value": "1e20"}, "deal_value"),
        ({"outcome": "won", "deal_value": "NaN"}, "deal_value"),
    ],
)
def test_bad_close_input_is_a_400_and_changes_nothing(api, rep_a, payload, errors):
    assert_errors(refused(api(rep_a), owned(rep_a, stage=Stage.SQL), "close", payload, 400), errors)


@pytest.mark.parametrize(
    ("stage", "payload"),
    [
        (Stage.SAL, {"outcome": "won", "deal_value": "100"}),  # not qualified yet
        (Stage.MQL, {"outcome": "lost", "reason": "price"}),
        (Stage.WON, {"outcome": "lost", "reason": "price"}),
        (Stage.NEW, {"outcome": "won", "deal_value": "100"}),
    ],
)
def test_close_from_a_stage_that_cannot_close_is_a_409(api, sales_manager, stage, payload):
    response = refused(api(sales_manager), owned(None, stage=stage), "close", payload, 409)
    assert response.json()["code"] == "transition_refused"


# --- notes, calls, meetings --------------------------------------------------------------------------


def test_a_note_is_a_timeline_entry(api, rep_a):
    lead = owned(rep_a)

    response = api(rep_a).post(f"/api/v1/leads/{lead.pk}/notes/", {"text": "  Prefers e-mail  "})

    assert response.status_code == 201
    entry = lead.activities.get()
    assert response.json() == {
        "id": entry.pk,
        "type": "note",
        "occurred_at": response.json()["occurred_at"],
        "properties": {"text": "Prefers e-mail"},
        "source": "",
        "external_id": None,
        "created_by": "rita",
        "created_at": response.json()["created_at"],
    }
    assert (entry.type, entry.properties, entry.created_by) == (ActivityType.NOTE, {"text": "Prefers e-mail"}, rep_a)


def test_a_call_is_logged_at_the_time_given_and_a_meeting_at_now(api, rep_a):
    lead = owned(rep_a)
    when = timezone.now() - timedelta(days=2)
    client = api(rep_a)

    call = client.post(
        f"/api/v1/leads/{lead.pk}/calls/", {"kind": "call", "summary": "Pricing", "occurred_at": when.isoformat()}
    )
    before = timezone.now()
    meeting = client.post(f"/api/v1/leads/{lead.pk}/calls/", {"kind": "meeting", "summary": "Demo"})

    assert (call.status_code, meeting.status_code) == (201, 201)
    logged = {a.type: a for a in lead.activities.all()}
    assert (logged["call"].occurred_at, logged["call"].properties) == (when, {"summary": "Pricing"})
    assert logged["meeting"].properties == {"summary": "Demo"}
    assert before <= logged["meeting"].occurred_at <= timezone.now()
    assert call.json()["type"] == "call" and meeting.json()["type"] == "meeting"


def test_a_call_within_a_minute_of_clock_skew_is_accepted(api, rep_a):
    lead = owned(rep_a)
    ahead = timezone.now() + timedelta(seconds=30)
    response = api(rep_a).post(
        f"/api/v1/leads/{lead.pk}/calls/", {"kind": "call", "summary": "Quick", "occurred_at": ahead.isoformat()}
    )
    assert response.status_code == 201
    assert lead.activities.get().occurred_at == ahead


@pytest.mark.parametrize(
    ("path", "payload", "errors"),
    [
        ("notes", {"text": "   "}, {"text": ["This field may not be blank."]}),
        ("notes", {}, {"text": ["This field is required."]}),
        ("notes", {"text": "x" * 5001}, "text"),
        ("notes", {"text": "nul \x00"}, "text"),
        (
            "calls",
            {"kind": "call", "summary": "From the future", "occurred_at": "2030-01-01T10:00:00Z"},
            {"occurred_at": ["This time lies in the future: log a call or meeting once it has taken place."]},
        ),
        ("calls", {"kind": "call", "summary": "Ancient", "occurred_at": "1999-01-01T10:00:00Z"}, "occurred_at"),
        ("calls", {"kind": "call", "summary": "Overflow", "occurred_at": "9999-12-31T23:59:59-14:00"}, "occurred_at"),
        ("calls", {"kind": "email", "summary": "Wrong kind"}, "kind"),
        ("calls", {"kind": "call", "summary": ""}, {"summary": ["This field may not be blank."]}),
    ],
)
def test_bad_notes_and_calls_are_a_400_and_change_nothing(api, rep_a, path, payload, errors):
    assert_errors(refused(api(rep_a), owned(rep_a), path, payload, 400), errors)


def test_a_call_before_the_lead_existed_is_refused(api, rep_a):
    lead = owned(rep_a, created_days_ago=3)
    when = (timezone.now() - timedelta(days=4)).isoformat()
    too_early = {"kind": "call", "summary": "Too early", "occurred_at": when}
    response = refused(api(rep_a), lead, "calls", too_early, 400)
    assert response.json()["occurred_at"] == [
        f"This time is before the lead was created ({lead.created_at:%Y-%m-%d %H:%M} UTC)."
    ]


# --- /transition/ refuses what belongs elsewhere -----------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "to", "use", "words"),
    [
        (Stage.SAL, Stage.SQL, "qualify", "A lead becomes sales-qualified when its BANT is recorded"),
        (Stage.SQL, Stage.WON, "close", "Closing a deal as won needs its value and currency."),
        (Stage.SQL, Stage.LOST, "close", "Closing a deal as lost needs a reason from the list."),
        (Stage.SAL, Stage.LOST, "close", "Closing a deal as lost needs a reason from the list."),
        (Stage.MQL, Stage.SAL, "accept", "Only the lead's assignee accepts it."),
    ],
)
def test_transition_refuses_moves_that_need_data_and_names_the_endpoint(api, sales_manager, stage, to, use, words):
    lead = owned(None, stage=stage)

    response = refused(api(sales_manager), lead, "transition", {"to": to, "reason": "because"}, 409)

    body = response.json()
    url = f"/api/v1/leads/{lead.pk}/{use}/"
    assert body["use"] == url
    assert body["detail"].startswith(words) and body["detail"].endswith(f" Use POST {url}.")
    assert (body["code"], body["from"], body["to"]) == ("transition_refused", stage, to)
    assert to in body["allowed"]


@pytest.mark.parametrize(
    ("stage", "to"),
    [(Stage.SAL, Stage.MAL), (Stage.LOST, Stage.MAL), (Stage.MQL, Stage.MAL), (Stage.MQL, Stage.DISQUALIFIED)],
)
def test_the_other_moves_stay_on_transition(api, sales_manager, stage, to):
    lead = owned(None, stage=stage)
    response = api(sales_manager).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": to, "reason": "Recycled"})
    assert (response.status_code, response.json()["stage"]) == (200, to)
    assert list(lead.stage_changes.values_list("from_stage", "to_stage")) == [(stage, to)]


def test_a_move_the_table_forbids_keeps_its_answer_without_use(api, sales_manager):
    lead = owned(None, stage=Stage.MQL)
    response = api(sales_manager).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "won"})
    assert response.status_code == 409
    assert "use" not in response.json()


# --- who may call them -------------------------------------------------------------------------------

ACTIONS = {
    "qualify": BANT,
    "close": {"outcome": "lost", "reason": "price"},
    "notes": {"text": "Hello"},
    "calls": {"kind": "call", "summary": "Hello"},
}


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize(
    ("persona", "expected"),
    [("rep_b", 404), ("partner_a", 404), ("partner_b", 404), ("integration", 403), (None, 401)],
)
def test_wrong_personas_are_refused_and_change_nothing(request, api, rep_a, partner_org_a, path, persona, expected):
    # Rep A's lead, also routed to partner A's organisation (for which the internal API does not exist).
    lead = owned(rep_a)
    Lead.objects.filter(pk=lead.pk).update(partner=partner_org_a)
    user = request.getfixturevalue(persona) if persona else None

    refused(api(user), lead, path, ACTIONS[path], expected)


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("persona", ["rep_a", "sales_manager", "marketing"])
def test_the_owner_and_internal_roles_that_see_all_leads_may_call_them(request, api, rep_a, path, persona):
    lead = owned(rep_a)
    response = api(request.getfixturevalue(persona)).post(f"/api/v1/leads/{lead.pk}/{path}/", ACTIONS[path])
    assert response.status_code == (201 if path in ("notes", "calls") else 200)


# --- the same input through both doors gives the same state ------------------------------------------


CALL_AT = (timezone.now() - timedelta(days=2)).replace(second=0, microsecond=0)

SAME_INPUT = {
    "bant complete": (Stage.SAL, "qualify", BANT, "qualify", BANT_FORM),
    "bant partial": (
        Stage.SAL,
        "qualify",
        {
            **{n: BANT[n] for n in ("budget", "need")},
            **{n: {"confirmed": False, "note": ""} for n in ("authority", "timing")},
        },
        "qualify",
        {"budget": "on", "budget_note": "budget ok", "need": "on", "need_note": "need ok"},
    ),
    "won": (
        Stage.SQL,
        "close",
        {"outcome": "won", "deal_value": "25000", "currency": "USD"},
        "won",
        {"amount": "25000", "currency": "USD"},
    ),
    "lost": (
        Stage.SQL,
        "close",
        {"outcome": "lost", "reason": "price", "note": "Half the price elsewhere"},
        "lost",
        {"reason": "price", "note": "Half the price elsewhere"},
    ),
    "note": (Stage.SAL, "notes", {"text": "Called the CFO"}, "note", {"text": "Called the CFO"}),
    "call": (
        Stage.SAL,
        "calls",
        {"kind": "call", "summary": "Budget talk", "occurred_at": CALL_AT.isoformat()},
        "log",
        {"kind": "call", "summary": "Budget talk", "occurred_at": CALL_AT.strftime("%Y-%m-%d %H:%M")},
    ),
    "meeting": (
        Stage.SQL,
        "calls",
        {"kind": "meeting", "summary": "Demo"},
        "log",
        {"kind": "meeting", "summary": "Demo"},
    ),
}


@pytest.mark.parametrize("case", SAME_INPUT)
def test_the_api_and_the_page_leave_the_same_state_and_timeline_entry(api, rep_a, case):
    stage, api_path, api_payload, page_action, page_data = SAME_INPUT[case]
    by_api, by_page = owned(rep_a, stage=stage), owned(rep_a, stage=stage)

    api_response = api(rep_a).post(f"/api/v1/leads/{by_api.pk}/{api_path}/", api_payload)
    page_response = client_for(rep_a).post(f"/app/leads/{by_page.pk}/{page_action}/", page_data, **HTMX)

    assert api_response.status_code in (200, 201)
    assert page_response.status_code == 200
    assert outcome(by_api) == outcome(by_page)
    assert outcome(by_api)["timeline"] or outcome(by_api)["moves"]  # the action left something to compare
    if case == "call":
        assert by_api.activities.get().occurred_at == by_page.activities.get().occurred_at == CALL_AT


SAME_REFUSAL = {
    "confirmed without a note": (
        Stage.SAL,
        "qualify",
        {"budget": {"confirmed": True, "note": ""}},
        "qualify",
        {"budget": "on"},
        "Say what confirms the budget.",
    ),
    "won without a value": (
        Stage.SQL,
        "close",
        {"outcome": "won", "deal_value": "0", "currency": "EUR"},
        "won",
        {"amount": "0", "currency": "EUR"},
        "A won deal needs its value (greater than 0).",
    ),
    "a call in 2030": (
        Stage.SAL,
        "calls",
        {"kind": "call", "summary": "Later", "occurred_at": "2030-01-01T10:00:00Z"},
        "log",
        {"kind": "call", "summary": "Later", "occurred_at": "2030-01-01 10:00"},
        "This time lies in the future: log a call or meeting once it has taken place.",
    ),
    "a call before the lead existed": (
        Stage.SAL,
        "calls",
        {"kind": "call", "summary": "Early", "occurred_at": "2001-01-01T10:00:00Z"},
        "log",
        {"kind": "call", "summary": "Early", "occurred_at": "2001-01-01 10:00"},
        "This time is before the lead was created",
    ),
}


@pytest.mark.parametrize("case", SAME_REFUSAL)
def test_the_api_and_the_page_refuse_the_same_input_with_the_same_words(api, rep_a, case):
    stage, api_path, api_payload, page_action, page_data, message = SAME_REFUSAL[case]
    by_api, by_page = owned(rep_a, stage=stage), owned(rep_a, stage=stage)
    before_api, before_page = snapshot(by_api), snapshot(by_page)

    api_response = api(rep_a).post(f"/api/v1/leads/{by_api.pk}/{api_path}/", api_payload)
    page_response = client_for(rep_a).post(f"/app/leads/{by_page.pk}/{page_action}/", page_data, **HTMX)

    assert (api_response.status_code, page_response.status_code) == (400, 422)
    assert message in str(api_response.json())
    assert message in page_response.content.decode()
    assert (snapshot(by_api), snapshot(by_page)) == (before_api, before_page)
