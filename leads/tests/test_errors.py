"""One application error, mapped once: an AppError raised anywhere behind a view gets its status and
body from leads.api.errors (the API) and its message and answer from leads.pages (the pages), with
no try/except in the view. New kinds of error below exist only here: no view knows them."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpResponse
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from leadportal.urls import urlpatterns as site_urlpatterns
from leads import services
from leads.errors import AppError, Invalid, Refused
from leads.lifecycle import TransitionRefused
from leads.models import Activity, Stage
from leads.pages import shows_errors
from leads.tests.factories import LeadFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


class QuotaRefused(Refused):
    code = "quota_reached"


class Locked(AppError):
    status = 423
    code = "locked"


class NotYours(Refused):
    status = 404
    code = "not_yours"


RAISED: dict[str, Exception] = {
    "quota": QuotaRefused("You have used your 3 exports this month.", extra={"limit": 3, "used": 3}),
    "locked": Locked("The lead is being merged; try again in a minute."),
    "invalid": Invalid({"name": "Say who it is.", NON_FIELD_ERRORS: ["Give a name or an e-mail."]}),
    "not_yours": NotYours("This lead belongs to another organisation."),
}


@api_view(["POST"])
@permission_classes([AllowAny])
def api_raises(request, kind):
    raise RAISED[kind]


def page_raises(request, kind):
    raise RAISED[kind]


def back_to_form(request, kind):
    return HttpResponse(f"the form again ({kind})")


@shows_errors(back_to_form)
def page_with_back(request, kind):
    raise RAISED[kind]


urlpatterns = [
    path("api/v1/test-errors/<str:kind>/", api_raises),
    path("test-errors/<str:kind>/", page_raises),
    path("test-errors-back/<str:kind>/", page_with_back),
    *site_urlpatterns,
]


# --- the API --------------------------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_a_new_refusal_is_a_409_with_detail_code_and_its_extra_fields(api):
    response = api().post("/api/v1/test-errors/quota/", {}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "You have used your 3 exports this month.",
        "code": "quota_reached",
        "limit": 3,
        "used": 3,
    }


@pytest.mark.urls(__name__)
def test_an_error_answers_the_status_it_names(api):
    response = api().post("/api/v1/test-errors/locked/", {}, format="json")

    assert response.status_code == 423
    assert response.json() == {"detail": "The lead is being merged; try again in a minute.", "code": "locked"}


@pytest.mark.urls(__name__)
def test_invalid_input_is_a_400_in_the_serializers_shape(api):
    response = api().post("/api/v1/test-errors/invalid/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"name": ["Say who it is."], "non_field_errors": ["Give a name or an e-mail."]}


@pytest.mark.urls(__name__)
def test_a_404_error_answers_like_any_404_and_does_not_say_why(api):
    response = api().post("/api/v1/test-errors/not_yours/", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_real_endpoint_answers_a_new_error_of_its_service_without_knowing_it(api, rep_a, monkeypatch):
    lead = LeadFactory(owner=rep_a, stage=Stage.SAL)

    def refuse(**kwargs):
        raise QuotaRefused("Notes are closed on this lead.", extra={"limit": 0})

    monkeypatch.setattr(services, "lead_note_add", refuse)
    response = api(rep_a).post(f"/api/v1/leads/{lead.pk}/notes/", {"text": "Called back"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "Notes are closed on this lead.", "code": "quota_reached", "limit": 0}
    assert not Activity.objects.filter(lead=lead, type="note").exists()


def test_the_kinds_keep_their_bodies():
    refused = TransitionRefused(Stage.NEW, Stage.WON, "A lead cannot move from new to won (allowed: mal).")

    assert (refused.status, refused.body()) == (
        409,
        {
            "detail": "A lead cannot move from new to won (allowed: mal).",
            "code": "transition_refused",
            "from": "new",
            "to": "won",
            "allowed": ["mal", "disqualified"],
        },
    )
    invalid = services.LeadInvalid({"amount": "Give the deal's value."})
    assert (invalid.status, invalid.body(), invalid.message) == (
        400,
        {"amount": ["Give the deal's value."]},
        "Give the deal's value.",
    )
    assert isinstance(invalid, ValueError)  # as before it became an AppError


# --- the pages ------------------------------------------------------------------------------------


@pytest.fixture
def rep_client(client, rep_a):
    client.force_login(rep_a)
    return client


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


@pytest.mark.urls(__name__)
def test_a_page_without_its_own_answer_shows_the_message_and_goes_back(rep_client):
    response = rep_client.post("/test-errors/quota/", HTTP_REFERER="http://testserver/app/")

    assert (response.status_code, response["Location"]) == (302, "http://testserver/app/")
    assert _messages(response) == [("error", "You have used your 3 exports this month.")]


@pytest.mark.urls(__name__)
def test_htmx_is_told_to_go_back_and_another_sites_referer_is_not_followed(rep_client):
    response = rep_client.post("/test-errors/locked/", HTTP_REFERER="https://evil.example/", **HTMX)

    assert (response.status_code, response["HX-Redirect"]) == (204, "/")
    assert _messages(response) == [("error", "The lead is being merged; try again in a minute.")]


@pytest.mark.urls(__name__)
def test_a_page_answers_a_404_error_with_the_404_page(rep_client):
    response = rep_client.get("/test-errors/not_yours/")

    assert response.status_code == 404
    assert b"another organisation" not in response.content
    assert _messages(response) == []


@pytest.mark.urls(__name__)
def test_a_page_that_names_its_answer_gets_it_with_the_message(rep_client):
    response = rep_client.post("/test-errors-back/quota/")

    assert (response.status_code, response.content) == (200, b"the form again (quota)")
    assert _messages(response) == [("error", "You have used your 3 exports this month.")]


def test_the_lead_page_shows_a_new_error_of_its_service_without_knowing_it(rep_a, rep_client, monkeypatch):
    lead = LeadFactory(owner=rep_a, stage=Stage.SAL)

    def refuse(**kwargs):
        raise QuotaRefused("Notes are closed on this lead.")

    monkeypatch.setattr(services, "lead_note_add", refuse)

    plain = rep_client.post(f"/app/leads/{lead.pk}/note/", {"text": "Called back"})
    assert (plain.status_code, plain["Location"]) == (302, f"/app/leads/{lead.pk}/")
    assert _messages(plain) == [("error", "Notes are closed on this lead.")]

    swapped = rep_client.post(f"/app/leads/{lead.pk}/note/", {"text": "Called back"}, **HTMX)
    assert swapped.status_code == 200
    assert b"Notes are closed on this lead." in swapped.content and b"Note added." not in swapped.content
    assert not Activity.objects.filter(lead=lead, type="note").exists()
