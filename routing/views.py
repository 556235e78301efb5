"""Routing's pages of the rep dashboard: accept / reject, the pool, availability, the team and its
funnel. Every action calls the same service as the API."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leads import listing
from leads.auth import signed_in_user
from leads.errors import Refused
from leads.formatting import format_datetime
from leads.models import Lead, Role
from leads.pages import shows_errors
from leads.selectors import lead_visible_to
from leads.views import answer_action, back_to_lead, lead_or_404, leave_lead, render_lead, sales_required

from . import dashboard, selectors, services
from .forms import AvailabilityForm, BulkForm, FunnelForm, ReassignForm, RejectForm
from .models import RepProfile, RoutingRule


def manager_required(view):
    @sales_required
    def wrapper(request: HttpRequest, *args, **kwargs):
        if signed_in_user(request).role != Role.SALES_MANAGER:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


# --- accept / reject / reassign (lead page) ------------------------------------------------------------


# A refusal (RoutingError, TransitionRefused) is shown on the page `back` answers with: shows_errors.


@require_POST
@sales_required
@shows_errors(back_to_lead)
def accept(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_or_404(request, pk)
    services.assignment_accept(lead=lead, user=signed_in_user(request))
    messages.success(request, "Accepted: the lead is yours (SAL).")
    lead.refresh_from_db()
    return answer_action(request, lead)


@require_POST
@sales_required
@shows_errors(back_to_lead)
def reject(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_or_404(request, pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A rejection needs a reason.")
        return answer_action(request, lead)
    services.assignment_reject(lead=lead, user=signed_in_user(request), reason=form.cleaned_data["reason"])
    messages.success(request, f"Rejected: {lead} is no longer in your queue.")
    return leave_lead(request, "leads:queue")


def _back_from_reassign(request: HttpRequest, pk: int) -> HttpResponse:
    """To the team page when the reassignment was asked there, else to the lead page."""
    if request.POST.get("next", "") == "team":
        return redirect("routing:team")
    return back_to_lead(request, pk)


@require_POST
@manager_required
@shows_errors(_back_from_reassign)
def reassign(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_or_404(request, pk)
    form = ReassignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the rep to hand the lead to.")
        return _back_from_reassign(request, pk)
    data = form.cleaned_data
    to_user = data["to_user"]
    try:
        services.assignment_reassign(
            lead=lead,
            to_user=to_user,
            actor=signed_in_user(request),
            note=data["note"],
            over_capacity=data["over_capacity"],
        )
    except services.RoutingError as refused:
        if refused.code != "over_capacity":
            raise  # shown by shows_errors
        # Not a refusal but a question, asked on the lead page with the choice kept: "hand over
        # anyway" or leave it.
        messages.warning(request, refused.message)
        # Read by the lead page's reassign panel (routing.dashboard.reassign_panel) as it renders.
        request.reassign_confirm = {"to_user": to_user, "note": data["note"]}  # type: ignore[attr-defined]
        lead.refresh_from_db()
        return render_lead(request, lead, status=422)
    messages.success(request, f"{lead} reassigned to {to_user.get_full_name() or to_user.get_username()}.")
    return _back_from_reassign(request, pk)


# --- pool --------------------------------------------------------------------------------------------


POOL_COLUMNS = [
    *listing.lead_columns("lead", "name", "score", "country", "product", prefix="lead__"),
    listing.Column("waiting", _("Waiting"), ["assigned_at"]),
]
POOL_LIMIT = 200


@require_GET
@sales_required
def pool(request: HttpRequest) -> HttpResponse:
    """The pooled leads I may claim, each named (person and company) — but a blind pool's only as a
    count: nothing of them shows until "Get next lead" hands one over. Search and header sorting
    cover the named ones; the count follows the search."""
    pooled = selectors.pool_for(signed_in_user(request))
    blind = pooled.filter(pool_mode=RoutingRule.PoolMode.BLIND).count()
    q = listing.search_query(request.GET)
    sorting = listing.Sorting.read(request.GET, POOL_COLUMNS, default="waiting")
    named = sorting.apply(listing.search(pooled.exclude(pool_mode=RoutingRule.PoolMode.BLIND), q, prefix="lead__"))
    visible = list(named[:POOL_LIMIT])
    context = {
        "visible": visible,
        "blind": blind,
        "shown": len(visible),
        "q": q,
        "sorting": sorting,
        "headers": sorting.headers(request.GET),
    }
    return render(request, "routing/pool.html", context)


def _back_to_pool(request: HttpRequest) -> HttpResponse:
    return redirect("routing:pool")


@require_POST
@sales_required
@shows_errors(_back_to_pool)
def claim(request: HttpRequest) -> HttpResponse:
    """Claim the lead named (cherry-pick, shark tank, hybrid), or "Get next lead" from a blind pool."""
    lead_id = request.POST.get("lead", "")
    lead = None
    if lead_id:
        if not lead_id.isdigit():
            raise Http404
        lead = Lead.objects.filter(pk=int(lead_id)).first()
        if lead is None:
            raise Http404
    assignment = services.pool_claim(user=signed_in_user(request), lead=lead)
    messages.success(request, f"Claimed {assignment.lead}: it is in your queue now.")
    return redirect("leads:lead", pk=assignment.lead_id)


# --- availability -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@sales_required
def availability(request: HttpRequest) -> HttpResponse:
    profile = RepProfile.objects.filter(user=signed_in_user(request)).first()
    if request.method == "POST":
        form = AvailabilityForm(request.POST)
        if request.POST.get("available"):
            services.rep_set_availability(user=signed_in_user(request), away_until=None)
            messages.success(request, "You are available: new leads will reach you.")
            return redirect("routing:availability")
        if form.is_valid() and form.cleaned_data["away_until"]:
            until = form.cleaned_data["away_until"]
            services.rep_set_availability(user=signed_in_user(request), away_until=until)
            messages.success(request, f"You are away until {format_datetime(until)}: routing skips you.")
            return redirect("routing:availability")
        if form.is_valid():
            form.add_error("away_until", "Say until when you are away.")
        status = 422
    else:
        form = AvailabilityForm(initial={"away_until": profile.away_until if profile else None})
        status = 200
    away = profile is not None and profile.is_away()
    return render(request, "routing/availability.html", {"form": form, "profile": profile, "away": away}, status=status)


# --- team and funnel (sales managers) -----------------------------------------------------------------

TEAM_PAGE_SIZE = 25


TEAM_COLUMNS = listing.lead_columns("lead", "owner", "score", "stage", "sla")


@require_GET
@manager_required
def team(request: HttpRequest) -> HttpResponse:
    """The team's load, breaches, waiting leads, and its open leads: searched, sorted by header,
    counted as filtered, and picked for a bulk accept or reassign."""
    return _team_page(request)


def _team_page(request: HttpRequest, bulk_form: BulkForm | None = None, status: int = 200) -> HttpResponse:
    now = timezone.now()
    teams = dashboard.teams_of(signed_in_user(request))
    members = dashboard.team_members(teams)
    member_ids = [m.user_id for m in members]
    q = listing.search_query(request.GET)
    sorting = listing.Sorting.read(request.GET, TEAM_COLUMNS, default="sla")
    rows = sorting.apply(listing.search(dashboard.team_open_leads(member_ids), q))
    open_leads = Paginator(rows, TEAM_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "q": q,
        "sorting": sorting,
        "headers": sorting.headers(request.GET),
        "query": listing.page_query(request.GET),
        "teams": list(teams),
        "load": dashboard.rep_load(members, now),
        "open_leads": open_leads,
        "breaches": list(dashboard.team_open_leads(member_ids).filter(respond_by__lt=now)[:20]),
        "unassigned": list(dashboard.unassigned_queue()[:50]),
        "stalled": list(dashboard.stalled_pool(teams)[:50]),
        # Hand leads within the team (any sales user is accepted from the lead page).
        "reps": [m.user for m in members if m.user.is_active and m.active],
        "now": now,
        "bulk_form": bulk_form,
    }
    return render(request, "routing/team.html", context, status=status)


@require_GET
@manager_required
def funnel(request: HttpRequest) -> HttpResponse:
    form = FunnelForm(request.GET or None)
    days = (form.cleaned_data.get("days") if form.is_valid() else None) or 30
    teams = dashboard.teams_of(signed_in_user(request))
    steps = dashboard.funnel(teams, days)
    return render(request, "routing/funnel.html", {"form": form, "steps": steps, "days": days, "teams": teams})


@require_POST
@manager_required
def team_bulk(request: HttpRequest) -> HttpResponse:
    """Bulk accept or reassign of the leads ticked on the team page: one POST, each lead through the
    same service as one at a time (its own transaction), so one refusal stops only that lead. The
    page then says, in words, what was done and which leads were refused and why."""
    form = BulkForm(request.POST)
    if not form.is_valid():
        # 400: the team page again, its bulk bar saying what to fix; nothing was done.
        return _team_page(request, form, status=400)
    data = form.cleaned_data
    manager = signed_in_user(request)
    leads = list(selectors_visible_leads(request, data["lead"]))
    done, refused = [], []
    for lead in leads:
        try:
            if data["action"] == BulkForm.ACCEPT:
                services.assignment_accept(lead=lead, user=manager)
            else:
                services.assignment_reassign(lead=lead, to_user=data["to_user"], actor=manager, note=data["note"])
        except Refused as refusal:
            refused.append(f"{lead}: {refusal.message}")
        else:
            done.append(str(lead))
    if done:
        if data["action"] == BulkForm.ACCEPT:
            text = ngettext("Accepted %(n)d lead: %(leads)s.", "Accepted %(n)d leads: %(leads)s.", len(done))
        else:
            to_user = data["to_user"]
            text = ngettext(
                "Reassigned %(n)d lead to %(rep)s: %(leads)s.",
                "Reassigned %(n)d leads to %(rep)s: %(leads)s.",
                len(done),
            )
            text = text.replace("%(rep)s", to_user.get_full_name() or to_user.get_username())
        messages.success(request, text % {"n": len(done), "leads": ", ".join(done)})
    for line in refused:
        messages.error(request, gettext("Not done — %(why)s") % {"why": line})
    return redirect(reverse("routing:team") + ("?" + data["back"] if data["back"] else ""))


def selectors_visible_leads(request: HttpRequest, ids: list[int]):
    """The ticked leads this manager may see (every lead: leads.selectors), in the order ticked;
    an id that is no lead is left out (the page had it; it was deleted since)."""
    visible = {lead.pk: lead for lead in lead_visible_to(signed_in_user(request)).filter(pk__in=ids)}
    return [visible[pk] for pk in ids if pk in visible]
