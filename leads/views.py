"""HTML views of the leads app: the rep dashboard's queue and lead page, "/" and the health check.

Other apps add to the dashboard through `leads.dashboard` (navigation, lead-page panels) and serve
their own pages (routing: accept/reject, pool, availability, team) with `render_lead` and
`sales_required` from here.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from . import consent, dashboard, listing, notifications, selectors, services, sql
from .auth import signed_in_user
from .filters import LEGACY_SORTS, SORT_CHOICES, LeadListFilter, QueueFilter
from .formatting import format_money
from .forms import CloseLostForm, CloseWonForm, ContactLogForm, NoteForm, QualifyForm
from .models import Lead, Qualification, Role, Stage
from .pages import shows_errors


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker status for load balancers: 200 when both answer, 503 otherwise."""
    checks = {"database": _database_ok(), "broker": _broker_status()}
    healthy = all(value in ("ok", "eager") for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


# A database that answers `SELECT 1` can still be stuck: a lock held on the leads table, a statement
# queue. The check reads one lead within these bounds, like a real request would.
HEALTH_LOCK_TIMEOUT_MS = 1000
HEALTH_STATEMENT_TIMEOUT_MS = 2000


def _database_ok() -> str:
    try:
        sql.health_probe(lock_timeout_ms=HEALTH_LOCK_TIMEOUT_MS, statement_timeout_ms=HEALTH_STATEMENT_TIMEOUT_MS)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return f"error: {exc.__class__.__name__}"


def _broker_status() -> str:
    if settings.CELERY_BROKER_URL.startswith(("amqp://", "pyamqp://")):
        return _amqp_status(settings.CELERY_BROKER_URL)
    if not settings.REDIS_URL:
        return "eager"  # tasks run in-process; there is no broker to ask
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {exc.__class__.__name__}"


def _amqp_status(url: str) -> str:
    from kombu import Connection
    from kombu.exceptions import OperationalError as BrokerError

    try:
        with Connection(url, connect_timeout=1) as conn:
            conn.ensure_connection(max_retries=0)  # one try, no waiting between retries
        return "ok"
    except (BrokerError, OSError) as exc:
        return f"error: {exc.__class__.__name__}"


# --- the rep dashboard -----------------------------------------------------------------------------

QUEUE_PAGE_SIZE = 25
TIMELINE_LIMIT = 100


def sales_required(view):
    """Signed-in sales reps and managers only; anyone else signed in gets 404 (nothing here is theirs)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not dashboard.is_sales(signed_in_user(request)):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Where "/" (and sign-in) takes each persona: its home (leads.dashboard.home_for) — a rep to the
    queue, a sales manager to the team page, marketing to the lead list, a partner to the portal,
    staff to the admin, an integration client to the API's documentation."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return redirect(dashboard.home_for(user)[0])


def marketing_required(view):
    """Signed-in marketing (and the others who see every lead: managers, staff) only; 404 otherwise."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = signed_in_user(request)
        if not (user.is_active and selectors.can_see_all_leads(user)):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """/app/: a rep's queue. Anyone else signed in is taken to their own home (a sales manager to
    the team page; the manager's own queue is at /app/queue/)."""
    user = signed_in_user(request)
    if user.role != Role.SALES_REP or not dashboard.is_sales(user):
        home_url = dashboard.home_for(user)[0]
        if home_url == request.path:
            raise Http404
        return redirect(home_url)
    return my_queue(request)


@require_GET
@sales_required
def my_queue(request: HttpRequest) -> HttpResponse:
    """The person's own leads: filters, a search (name, e-mail, company) and header sorting, all in
    the URL; the count follows them."""
    mine = Lead.objects.filter(owner=signed_in_user(request))
    params = _legacy_sort(request.GET)
    filterset = QueueFilter(params, queryset=mine)
    q = listing.search_query(params)
    sorting = listing.Sorting.read(params, QUEUE_COLUMNS, default="-handover")
    rows = sorting.apply(listing.search(filterset.qs, q))
    page = Paginator(rows.only(*QUEUE_FIELDS), QUEUE_PAGE_SIZE).get_page(params.get("page"))
    return render(
        request,
        "leads/queue.html",
        {
            "filter": filterset,
            "page": page,
            "q": q,
            "sorting": sorting,
            "headers": sorting.headers(params),
            "sort_choices": _sort_choices(sorting.value),
            "query": listing.page_query(params),
            "now": timezone.now(),
        },
    )


QUEUE_COLUMNS = listing.lead_columns("lead", "score", "stage", "country", "product", "handover", "sla")


def _legacy_sort(params: QueryDict) -> QueryDict:
    legacy = LEGACY_SORTS.get(params.get("sort") or "")
    if legacy:
        params = params.copy()
        params["sort"] = legacy
    return params


def _sort_choices(current: str) -> list[tuple[str, str]]:
    """The sort menu, with the current header sort in it even if the menu has no name for it."""
    choices = [(value, gettext(label)) for value, label in SORT_CHOICES]
    if current not in dict(choices):
        choices.append((current, current))
    return choices


QUEUE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "company",
    "company_domain",
    "job_title",
    "country",
    "product_interest",
    "source",
    "stage",
    "score",
    "grade",
    "handed_over_at",
    "respond_by",
    "created_at",
)


@require_GET
@login_required
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The lead page: a rep's or manager's, with its actions; marketing's, read-only (every lead,
    the same profile, score and history, no buttons)."""
    user = signed_in_user(request)
    if dashboard.is_sales(user):
        return render_lead(request, lead_or_404(request, pk))
    if user.is_active and user.role == Role.MARKETING:
        return render_lead(request, lead_or_404(request, pk), read_only=True)
    raise Http404


MARKETING_COLUMNS = listing.lead_columns("lead", "score", "stage", "source", "owner", "created")
MARKETING_PAGE_SIZE = 50


@require_GET
@marketing_required
def lead_list(request: HttpRequest) -> HttpResponse:
    """Marketing's read-only list of every lead: search, filters (stage, grade, source …), header
    sorting, 50 a page; each row opens the read-only lead page."""
    params = request.GET
    filterset = LeadListFilter(params, queryset=Lead.objects.select_related("owner"))
    q = listing.search_query(params)
    sorting = listing.Sorting.read(params, MARKETING_COLUMNS, default="-created")
    rows = sorting.apply(listing.search(filterset.qs, q))
    page = Paginator(rows, MARKETING_PAGE_SIZE).get_page(params.get("page"))
    context = {
        "filter": filterset,
        "page": page,
        "q": q,
        "headers": sorting.headers(params),
        "query": listing.page_query(params),
    }
    return render(request, "leads/lead_list.html", context)


def lead_or_404(request: HttpRequest, pk: int) -> Lead:
    """The lead if this user may see it; anyone else's is a 404."""
    visible = selectors.lead_visible_to(signed_in_user(request))
    return get_object_or_404(visible.select_related("owner", "partner"), pk=pk)


def render_lead(
    request: HttpRequest, lead: Lead, forms: dict | None = None, status: int = 200, *, read_only: bool = False
) -> HttpResponse:
    """The lead page. Actions answer with it too: htmx swaps the #lead block in place. `read_only`
    (marketing): no action panels, no forms."""
    try:
        qualification = lead.qualification
    except Qualification.DoesNotExist:
        qualification = None
    bound = forms or {}
    context = {
        "lead": lead,
        "timeline": list(selectors.lead_timeline(lead)[:TIMELINE_LIMIT]),
        "qualification": qualification,
        "now": timezone.now(),
        "forms": {
            "note": bound.get("note") or NoteForm(),
            "log": bound.get("log") or ContactLogForm(),
            "qualify": bound.get("qualify") or QualifyForm(initial=_bant_initial(qualification)),
            "won": bound.get("won") or CloseWonForm(),
            "lost": bound.get("lost") or CloseLostForm(),
        },
        "action_panels": [] if read_only else dashboard.panels_for(request, lead, "actions"),
        "read_only": read_only,
        "side_panels": dashboard.panels_for(request, lead, "side"),
        "can_act": not read_only and lead.owner_id == request.user.pk,
        "can_work": not read_only and lead.owner_id == request.user.pk and lead.stage in (Stage.SAL, Stage.SQL),
    }
    return render(request, "leads/lead_detail.html", context, status=status)


def _bant_initial(qualification: Qualification | None) -> dict:
    if qualification is None:
        return {}
    return {field: getattr(qualification, field) for name in Qualification.CRITERIA for field in (name, f"{name}_note")}


def answer_action(
    request: HttpRequest, lead: Lead, forms: dict | None = None, *, page=None, url_name: str = "leads:lead"
) -> HttpResponse:
    """After an action: htmx gets the refreshed lead page (422 when a form needs fixing), a plain
    browser is redirected back to it (post/redirect/get). `page(request, lead, forms, status)`
    renders the page (the rep's by default; the partner portal passes its own)."""
    page = page or render_lead
    if forms:
        return page(request, lead, forms, status=422)
    if _htmx(request):
        return page(request, lead)
    return redirect(url_name, pk=lead.pk)


def _htmx(request: HttpRequest) -> bool:
    """Whether htmx sent the request. django-htmx's middleware (settings.MIDDLEWARE) adds `htmx` to
    every request; HttpRequest's stub cannot know."""
    details: HtmxDetails = request.htmx  # type: ignore[attr-defined]
    return bool(details)


def leave_lead(request: HttpRequest, url_name: str) -> HttpResponse:
    """After an action that takes the lead away from this person (reject, decline): to their list;
    htmx is told to go there too."""
    if _htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = redirect(url_name).url
        return response
    return redirect(url_name)


def _note(request, lead, form):
    services.lead_note_add(lead=lead, text=form.cleaned_data["text"], actor=request.user)
    return "Note added."


def _log(request, lead, form):
    data = form.cleaned_data
    services.lead_contact_log(
        lead=lead, kind=data["kind"], summary=data["summary"], occurred_at=data["occurred_at"], actor=request.user
    )
    return f"{dict(ContactLogForm.KINDS)[data['kind']]} logged."


def _qualify(request, lead, form):
    qualification = services.lead_qualify(lead=lead, criteria=form.criteria(), actor=request.user)
    if qualification.complete:
        return "BANT complete: the lead is sales-qualified."
    return f"BANT saved ({qualification.confirmed_count} of 4 confirmed)."


def _won(request, lead, form):
    data = form.cleaned_data
    services.lead_close(lead=lead, won=True, amount=data["amount"], currency=data["currency"], actor=request.user)
    return f"Closed won: {format_money(data['amount'], data['currency'])}."


def _lost(request, lead, form):
    data = form.cleaned_data
    services.lead_close(lead=lead, won=False, reason=data["reason"], note=data["note"], actor=request.user)
    return "Closed lost."


def _show_errors(form, invalid: services.LeadInvalid) -> None:
    """The service's field messages on the form's fields (the rest as the form's own errors)."""
    names = getattr(form, "service_fields", {})
    for field, texts in invalid.errors.items():
        name = names.get(field, field)
        form.add_error(name if name in form.fields else None, texts)


# action name → (form, handler returning the success message)
ACTIONS = {
    "note": (NoteForm, _note),
    "log": (ContactLogForm, _log),
    "qualify": (QualifyForm, _qualify),
    "won": (CloseWonForm, _won),
    "lost": (CloseLostForm, _lost),
}


def back_to_lead(request: HttpRequest, pk: int, *args, **kwargs) -> HttpResponse:
    """After a refused action on the lead page: the page as it is now (shows_errors' `back`)."""
    return answer_action(request, lead_or_404(request, pk))


@require_POST
@sales_required
@shows_errors(back_to_lead)
def lead_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One of the lead's own actions; each goes through the same service as the API. A refusal
    (TransitionRefused …) is shown on the lead page by shows_errors; field errors on the form."""
    lead = lead_or_404(request, pk)
    if action not in ACTIONS:
        raise Http404
    if lead.owner_id != request.user.pk:
        messages.error(request, "Only the lead's owner can do that.")
        return answer_action(request, lead)
    form_class, handler = ACTIONS[action]
    form = form_class(request.POST)
    if not form.is_valid():
        return answer_action(request, lead, {action: form})
    try:
        messages.success(request, handler(request, lead, form))
    except services.LeadInvalid as invalid:
        _show_errors(form, invalid)
        return answer_action(request, lead, {action: form})
    lead.refresh_from_db()
    return answer_action(request, lead)


# --- notifications ---------------------------------------------------------------------------------


def notified_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not notifications.has_notifications(signed_in_user(request)):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@notified_required
def notification_list(request: HttpRequest) -> HttpResponse:
    """My notices, newest first; those unread until now are marked, and now read (opening the list
    is reading it: the badge goes to 0)."""
    user = signed_in_user(request)
    shown = list(notifications.recent(user)[: notifications.LIST_LIMIT])
    unread = {n.pk for n in shown if n.read_at is None}
    notifications.mark_read(user, unread)
    return render(request, "leads/notifications.html", {"shown": shown, "unread_ids": unread})


@require_GET
@notified_required
def notification_badge(request: HttpRequest) -> HttpResponse:
    """The nav's unread badge alone: what htmx polls every 30 s."""
    return render(request, "leads/_badge.html", {"unread": notifications.unread_count(signed_in_user(request))})


# --- consent: the public pages of the double opt-in and the unsubscribe link ---------------------

CONSENT_ACTIONS = {"confirm": consent.consent_confirm, "unsubscribe": consent.consent_unsubscribe}


@csrf_exempt
def consent_page(request: HttpRequest, token: str, purpose: str) -> HttpResponse:
    """A link of a lead's e-mail (no sign-in). GET shows the page and its button and changes nothing
    (mail scanners open links); the button's POST confirms or unsubscribes. A tampered or expired
    link says so, and changes nothing. The page shows nothing of the lead but its e-mail, masked.

    Exempt from CSRF: the signed token in the URL is the only credential (there is no session to
    ride), and a mail client's one-click unsubscribe (RFC 8058) POSTs without a form."""
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405)
    if request.method == "POST":
        outcome, lead = CONSENT_ACTIONS[purpose](token=token)
    else:
        reading = consent.token_read(token, purpose)
        outcome, lead = ("ask" if reading.lead else reading.problem), reading.lead
    context = {"purpose": purpose, "outcome": outcome, "email": consent.masked(lead.email) if lead else ""}
    return render(request, "leads/consent.html", context)
