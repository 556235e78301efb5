"""The partner portal at /partner/: the leads routed to my organisation, a lead page with what a
partner may see, accept / decline, outcome feedback, and my organisation's history and figures.
Every action goes through partners.services.feedback_record, as the partner API does."""

from __future__ import annotations

from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from leads import listing
from leads.auth import signed_in_user
from leads.lifecycle import OPEN_STAGES
from leads.models import ActivityType, Lead, Role, Stage
from leads.pages import shows_errors
from leads.views import answer_action, leave_lead
from routing.models import Assignment

from . import selectors, services
from .forms import DeclineForm, FeedbackForm
from .models import FeedbackStatus

if TYPE_CHECKING:
    from .selectors import PartnerLead

PAGE_SIZE = 25
# What a partner sees of a lead's history: the lead's own engagement, stage moves and its own
# organisation's feedback — not the company's internal notes, calls, BANT or routing decisions.
SHARED_ACTIVITY = (
    ActivityType.CAPTURED,
    ActivityType.FORM_SUBMIT,
    ActivityType.PAGE_VIEW,
    ActivityType.DOWNLOAD,
    ActivityType.EMAIL_OPEN,
    ActivityType.EMAIL_CLICK,
    ActivityType.WEBINAR,
    ActivityType.EVENT,
    ActivityType.DEMO_REQUEST,
    ActivityType.STAGE_CHANGE,
    ActivityType.PARTNER_FEEDBACK,
)
# The list's columns (header sorting, leads.listing) and its sort menu, in the same `sort` values.
COLUMNS = [
    *listing.lead_columns("lead", "score", "stage", "country", "handover"),
    listing.Column("due", _("Due"), ["feedback_due_at"]),
]
SORTS = [
    ("-handover", _("Newest handover")),
    ("due", _("Feedback due first")),
    ("-score", _("Highest score")),
    ("handover", _("Oldest handover")),
    ("score", _("Lowest score")),
    ("lead", _("Company A–Z")),
    ("-lead", _("Company Z–A")),
    ("stage", _("Stage")),
    ("country", _("Country A–Z")),
]
STAGE_FILTERS = {"": ("Open", OPEN_STAGES), "all": ("All stages", None)} | {
    s: (Stage(s).label, (s,)) for s in (Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST)
}


def partner_required(view):
    """Signed-in partner users of an organisation only; anyone else gets 404."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = signed_in_user(request)
        if user.role != Role.PARTNER or not user.partner_organization_id or not user.is_active:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@partner_required
def lead_list(request: HttpRequest) -> HttpResponse:
    """My organisation's leads: stage and feedback filters, a search (name, e-mail, company) and
    header sorting, in the URL; the count follows them."""
    stage = request.GET.get("stage", "")
    _, stages = STAGE_FILTERS.get(stage, STAGE_FILTERS[""])
    sorting = listing.Sorting.read(request.GET, COLUMNS, default="-handover")
    q = listing.search_query(request.GET)
    leads = selectors.partner_leads(signed_in_user(request))
    if stages:
        leads = leads.filter(stage__in=stages)
    if request.GET.get("due") == "overdue":
        leads = leads.filter(feedback_due_at__lt=timezone.now())
    leads = sorting.apply(listing.search(leads, q))
    page = Paginator(leads, PAGE_SIZE).get_page(request.GET.get("page"))
    sorts = [(key, str(label)) for key, label in SORTS]
    if sorting.value not in dict(sorts):
        sorts.append((sorting.value, sorting.value))
    context = {
        "page": page,
        "query": listing.page_query(request.GET),
        "q": q,
        "headers": sorting.headers(request.GET),
        "stage": stage,
        "sort": sorting.value,
        "due": request.GET.get("due", ""),
        "stages": [(key, label) for key, (label, _) in STAGE_FILTERS.items()],
        "sorts": sorts,
        "now": timezone.now(),
    }
    return render(request, "partners/leads.html", context)


def _lead(request: HttpRequest, pk: int) -> PartnerLead:
    return get_object_or_404(selectors.partner_leads(signed_in_user(request)), pk=pk)


def render_partner_lead(
    request: HttpRequest, lead: PartnerLead, forms: dict | None = None, status: int = 200
) -> HttpResponse:
    org_id = signed_in_user(request).partner_organization_id
    history = [
        activity
        for activity in lead.activities.filter(type__in=SHARED_ACTIVITY).order_by("-occurred_at", "-pk")[:100]
        if activity.type != ActivityType.PARTNER_FEEDBACK or activity.properties.get("partner") == org_id
    ]
    waiting = (
        lead.stage == Stage.MQL
        and Assignment.objects.filter(lead=lead, partner_id=org_id, status=Assignment.Status.ACTIVE).exists()
    )
    bound = forms or {}
    due: datetime | None
    if waiting and lead.respond_by:
        due, due_label = lead.respond_by, ""
    else:
        due, due_label = lead.feedback_due_at, "feedback due"
    context = {
        "lead": lead,
        "due": due,
        "due_label": due_label,
        "timeline": history,
        "waiting": waiting,
        "open": lead.stage in OPEN_STAGES,
        "decline_form": bound.get("decline") or DeclineForm(),
        "feedback_form": bound.get("feedback") or FeedbackForm(),
        "now": timezone.now(),
    }
    return render(request, "partners/lead.html", context, status=status)


@require_GET
@partner_required
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render_partner_lead(request, _lead(request, pk))


def _answer(request: HttpRequest, lead: Lead, forms: dict | None = None) -> HttpResponse:
    lead = _lead(request, lead.pk)  # fresh, with the portal's annotations
    return answer_action(request, lead, forms, page=render_partner_lead, url_name="partners:lead")


def _back(request: HttpRequest, pk: int) -> HttpResponse:
    """After a refused action (FeedbackRefused …): the lead page as it is now (shows_errors' `back`)."""
    return answer_action(request, _lead(request, pk), page=render_partner_lead, url_name="partners:lead")


def _record(request: HttpRequest, lead: Lead, form_name: str, form, **feedback) -> HttpResponse | None:
    """feedback_record with its field errors on the form (refusals are shown by shows_errors)."""
    try:
        services.feedback_record(lead=lead, user=signed_in_user(request), **feedback)
    except services.FeedbackInvalid as invalid:
        for field, message in invalid.errors.items():
            form.add_error(field if field in form.fields else None, message)
        return _answer(request, lead, {form_name: form})
    return None


@require_POST
@partner_required
@shows_errors(_back)
def accept(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _lead(request, pk)
    invalid = _record(request, lead, "feedback", FeedbackForm(), status=FeedbackStatus.ACCEPTED)
    if invalid:
        return invalid
    messages.success(request, "Accepted: the lead is yours to work. Report back how it goes.")
    return _answer(request, lead)


@require_POST
@partner_required
@shows_errors(_back)
def decline(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _lead(request, pk)
    form = DeclineForm(request.POST)
    if not form.is_valid():
        return _answer(request, lead, {"decline": form})
    data = form.cleaned_data
    invalid = _record(
        request, lead, "decline", form, status=FeedbackStatus.DECLINED, reason=data["reason"], note=data["note"]
    )
    if invalid:
        return invalid
    messages.success(request, f"Declined: {lead.company or lead.email} goes to someone else.")
    return leave_lead(request, "partners:leads")


@require_POST
@partner_required
@shows_errors(_back)
def feedback(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _lead(request, pk)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return _answer(request, lead, {"feedback": form})
    data = form.cleaned_data
    won = data["status"] == FeedbackStatus.WON
    invalid = _record(
        request,
        lead,
        "feedback",
        form,
        status=data["status"],
        reason=data["reason"] if data["status"] == FeedbackStatus.LOST else "",
        note=data["note"],
        deal_value=data["deal_value"] if won else None,
        currency=data["currency"] if won else "",
    )
    if invalid:
        return invalid
    messages.success(request, f"Thanks — “{FeedbackStatus(data['status']).label}” is recorded.")
    return _answer(request, lead)


@require_GET
@partner_required
def history(request: HttpRequest) -> HttpResponse:
    organization = signed_in_user(request).partner_organization
    if organization is None:  # partner_required let only an organisation's users in
        raise Http404
    figures = selectors.partner_performance(organization)[organization.pk]
    page = Paginator(selectors.feedback_history(organization), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "partners/feedback.html", {"organization": organization, "figures": figures, "page": page})
