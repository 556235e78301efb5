"""Lead admin for marketing and sales: list with filters and search, timeline and stage history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import erasure, export, selectors, services, tokens
from .auth import signed_in_user
from .errors import AppError
from .formatting import format_code, format_datetime, format_points, format_reason
from .limits import json_object_problem
from .models import ApiToken, Lead, Scope, Stage, TokenRevokedReason, User
from .templatetags.dashboard import describe

TIMELINE_LIMIT = 100

# Panels other apps add to the lead page (scoring: "why this score", routing: assignment trace),
# so that `leads` shows them without importing those apps: (title, render(lead) -> html).
LEAD_PANELS: list[tuple[str, Callable[[Lead], str]]] = []


def register_lead_panel(title: str, render: Callable[[Lead], str]) -> None:
    if all(existing != title for existing, _ in LEAD_PANELS):
        LEAD_PANELS.append((title, render))


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "role", "partner_organization", "is_staff", "is_active"]
    list_filter = ["role", "is_staff", "is_active"]
    fieldsets = [
        *(DjangoUserAdmin.fieldsets or ()),
        ("LeadPortal", {"fields": ["role", "partner_organization"]}),
    ]


def _transition_action(to_stage: str, label: str):
    def move(modeladmin, request, queryset):
        moved, refused = 0, []
        for lead in queryset:
            try:
                # The action has no reason field: it says who moved the lead, and where.
                reason = f"Moved in the admin by {request.user.get_username()}"
                services.lead_transition(lead=lead, to_stage=to_stage, reason=reason, actor=request.user)
                moved += 1
            except AppError as exc:  # one lead's refusal (the table's, routing's …): say it, go on
                refused.append(f"{lead.email}: {exc.message}")
        if moved:
            modeladmin.message_user(request, f"{moved} lead(s) moved to {label}.", messages.SUCCESS)
        for line in refused[:10]:
            modeladmin.message_user(request, line, messages.WARNING)

    move.__name__ = f"move_to_{to_stage}"
    return admin.action(description=f"Move selected leads to {label}")(move)


class CountryFilter(admin.SimpleListFilter):
    """The countries the leads come from, by name: not the ~250 of the field's choices."""

    title = "country"
    parameter_name = "country"

    def lookups(self, request, model_admin):
        from django_countries import countries

        codes = Lead.objects.exclude(country="").order_by().values_list("country", flat=True).distinct()
        return sorted(((code, countries.name(code) or code) for code in codes), key=lambda item: str(item[1]))

    def queryset(self, request, queryset):
        return queryset.filter(country=self.value()) if self.value() else queryset


class LeadAdminForm(forms.ModelForm):
    def clean_attributes(self):
        # The same bounds as the API (leads.limits): a value the API refuses is refused here too.
        value = self.cleaned_data["attributes"]
        if (problem := json_object_problem(value)) is not None:
            raise ValidationError(problem)
        return value


class SourceFilter(admin.SimpleListFilter):
    """The sources leads came from, in words ("Web form", not `web_form`)."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        sources = Lead.objects.exclude(source="").order_by("source").values_list("source", flat=True).distinct()
        return [(source, format_code(source)) for source in sources]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    form = LeadAdminForm
    # Fits 1366 px (and scrolls sideways on a phone): who, where in the funnel, how hot, whose.
    list_display = ["email", "full_name", "company", "stage", "points", "grade", "owner"]
    list_filter = [
        "stage",
        "grade",
        CountryFilter,
        SourceFilter,
        "consent_status",
        "marketing_suppressed",
        "created_at",
    ]
    search_fields = ["email", "first_name", "last_name", "company", "company_domain"]
    list_select_related = ["owner"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    show_full_result_count = False  # COUNT(*) over a large table on every page is slow
    actions = [
        _transition_action(Stage.MAL, "marketing accepted (MAL)"),
        _transition_action(Stage.DISQUALIFIED, "disqualified"),
        "export_csv",
        "export_xlsx",
    ]
    readonly_fields = [
        "email",
        *services.STATE_FIELDS,
        "points",  # the scores in whole points (leads.formatting), as every page shows them
        "fit_points",
        "engagement_points",
        # Consent is the person's (leads.consent): the confirmation link gives it, withdrawal takes it.
        *services.CONSENT_FIELDS,
        # The latest touch is written by capture only (the first touch stays editable above).
        *services.LATEST_TOUCH_FIELDS,
        "created_at",
        "updated_at",
        "erased_at",
        "erased_by",
        "panels",
        "stage_history",
        "timeline",
    ]
    fieldsets = [
        (None, {"fields": ["email", ("first_name", "last_name"), "phone", "job_title", "language"]}),
        ("Company", {"fields": ["company", "company_domain", "industry", "company_size", "annual_revenue", "country"]}),
        (
            "Lifecycle",
            {
                "fields": [
                    "stage",
                    ("points", "fit_points", "engagement_points", "grade"),
                    "owner",
                    "partner",
                    "marketing_suppressed",
                ]
            },
        ),
        (
            "Source and consent",
            {
                "fields": [
                    "source",
                    "product_interest",
                    "campaign",
                    ("utm_source", "utm_medium", "utm_campaign"),
                    ("utm_term", "utm_content"),
                    ("latest_source", "latest_campaign", "latest_touch_at"),
                    ("latest_utm_source", "latest_utm_medium", "latest_utm_campaign"),
                    ("latest_utm_term", "latest_utm_content"),
                    ("consent_status", "consent_at"),
                    ("erased_at", "erased_by"),
                    "attributes",
                ]
            },
        ),
        ("Insights", {"fields": ["panels"]}),
        ("History", {"fields": ["stage_history", "timeline", "created_at", "updated_at"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return False  # leads arrive through capture (API, forms, imports)

    # A person's data export and erasure (leads.erasure): buttons on the lead's page, for marketing
    # managers and superusers only (selectors.handles_data_requests).
    def get_urls(self):
        own = [
            path(
                "<int:lead_id>/personal-data/",
                self.admin_site.admin_view(self.personal_data_view),
                name="leads_lead_personal_data",
            ),
            path("<int:lead_id>/erase/", self.admin_site.admin_view(self.erase_view), name="leads_lead_erase"),
        ]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        user = signed_in_user(request)
        extra = {**(extra_context or {}), "handles_data_requests": selectors.handles_data_requests(user)}
        return super().change_view(request, object_id, form_url, extra)

    def _data_request_lead(self, request: HttpRequest, lead_id: int) -> Lead:
        if not selectors.handles_data_requests(signed_in_user(request)):
            raise PermissionDenied
        return get_object_or_404(Lead, pk=lead_id)

    def personal_data_view(self, request: HttpRequest, lead_id: int) -> HttpResponse:
        lead = self._data_request_lead(request, lead_id)
        answer = JsonResponse(erasure.lead_export(lead), json_dumps_params={"indent": 2, "ensure_ascii": False})
        answer["Content-Disposition"] = f'attachment; filename="lead-{lead.pk}-personal-data.json"'
        return answer

    def erase_view(self, request: HttpRequest, lead_id: int) -> HttpResponse:
        lead = self._data_request_lead(request, lead_id)
        if request.method == "POST" and lead.erased_at is None:
            lead = erasure.lead_erase(lead=lead, actor=signed_in_user(request))
            self.message_user(request, f"The person's data was erased; the lead is now {lead}.", messages.SUCCESS)
            return redirect(reverse("admin:leads_lead_change", args=[lead.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "lead": lead,
            "title": "Erase this person's data?",
            "kept": [
                "stage and its history (without reasons)",
                "score and grade",
                "company, industry, country",
                "source and campaign",
                "activity types and times",
                "deal value and dates",
            ],
        }
        return TemplateResponse(request, "admin/leads/lead/erase.html", context)

    # The selected leads (or, with "select all", the whole filtered list) as a file whose cells no
    # spreadsheet runs as formulas (leads/export.py); the API's /api/v1/leads/export/ is the same.
    @admin.action(description=_("Export selected leads as CSV"))
    def export_csv(self, request, queryset):
        response = StreamingHttpResponse(
            export.csv_lines(export.lead_rows(queryset.order_by("-created_at", "-id")), export.headers()),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="leads.csv"'
        return response

    @admin.action(description=_("Export selected leads as Excel"))
    def export_xlsx(self, request, queryset):
        content = export.xlsx_bytes(export.lead_rows(queryset.order_by("-created_at", "-id")), export.headers())
        response = HttpResponse(content, content_type=export.XLSX_CONTENT_TYPE)
        response["Content-Disposition"] = 'attachment; filename="leads.xlsx"'
        return response

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    @admin.display(description="Name")
    def full_name(self, lead: Lead) -> str:
        return f"{lead.first_name} {lead.last_name}".strip()

    @admin.display(description="Details")
    def panels(self, lead: Lead) -> str:
        if not LEAD_PANELS:
            return "—"
        return format_html_join(
            "", "<h4 class='lp-panel-title'>{}</h4>{}", ((title, render(lead)) for title, render in LEAD_PANELS)
        )

    @admin.display(description="Score", ordering="score")
    def points(self, lead: Lead) -> str:
        return format_points(lead.score)

    @admin.display(description="Fit")
    def fit_points(self, lead: Lead) -> str:
        return format_points(lead.fit_score)

    @admin.display(description="Engagement")
    def engagement_points(self, lead: Lead) -> str:
        return format_points(lead.engagement_score)

    @admin.display(description="Stage history")
    def stage_history(self, lead: Lead) -> str:
        rows = lead.stage_changes.select_related("actor").order_by("at", "pk")
        return html_table(
            ["When", "From", "To", "By", "Reason"],
            (
                (
                    format_datetime(c.at),
                    c.get_from_stage_display(),
                    c.get_to_stage_display(),
                    c.actor_label,
                    format_reason(c.reason),
                )
                for c in rows
            ),
        )

    @admin.display(description=f"Timeline (latest {TIMELINE_LIMIT})")
    def timeline(self, lead: Lead) -> str:
        rows = selectors.lead_timeline(lead)[:TIMELINE_LIMIT]
        return html_table(
            ["When", "What", "Details", "Source", "By"],
            (
                (
                    format_datetime(a.occurred_at),
                    *describe(a),  # in words, as on the lead page: no codes, no Python dicts
                    format_code(a.source) if a.source else "",
                    a.created_by.get_username() if a.created_by else "",
                )
                for a in rows
            ),
        )

    def save_model(self, request, obj: Lead, form, change: bool) -> None:
        # Admin edits go through the service, so they are recorded on the timeline like any other.
        data = {field: form.cleaned_data[field] for field in form.changed_data if field in services.PROFILE_FIELDS}
        if "attributes" in form.changed_data:
            data["attributes"] = form.cleaned_data["attributes"]
        services.lead_update(lead=obj, data=data, actor=request.user)


class RecordAdmin(admin.ModelAdmin):
    """A record the services write (a run, an assignment, feedback): the admin shows it and never
    adds or changes it."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def html_table(headers: list[str], rows) -> str:
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in r)),) for r in rows)
    )
    if not body:
        return "—"
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


class ApiTokenAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all the user's role allows (integration: capture; marketing: capture, read, "
        "work; sales: read, work; partner: partner).",
    )
    days = forms.IntegerField(min_value=0, help_text="Valid for this many days; 0: never expires.")

    class Meta:
        model = ApiToken
        fields = ["user", "name"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].initial = tokens.default_days()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("user") is not None:
            try:
                data["scopes"] = tokens.scopes_validate(user=data["user"], scopes=data.get("scopes") or None)
            except ValidationError as error:
                self.add_error("scopes", error)
        return data


TOKEN_FIELDS = (
    "user",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "revoked_reason",
)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are told apart by name and prefix; the key is shown once, on the page after "add",
    and neither it nor its digest is ever shown again."""

    list_display = ["name", "user", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_reason", "scopes"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    ordering = ["-created_at"]
    actions = ["revoke"]
    fields = TOKEN_FIELDS
    readonly_fields = TOKEN_FIELDS

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["user", "name", "scopes", "days"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # nothing of a token changes but its revocation (the action)

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("leads.change_apitoken")

    def save_model(self, request, obj: ApiToken, form, change: bool) -> None:
        token, key = tokens.token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            days=form.cleaned_data["days"],
        )
        for field in ApiToken._meta.concrete_fields:  # the admin logs and answers about `obj`
            setattr(obj, field.attname, getattr(token, field.attname))
        request._api_token_key = key

    def response_add(self, request, obj: ApiToken, post_url_continue=None):
        # The key is rendered into this answer only: not into a message (the session or a cookie
        # would hold it until the next page) and nowhere it could be fetched again.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token created",
            "token": obj,
            "key": request._api_token_key,
        }
        return TemplateResponse(request, "admin/leads/apitoken/created.html", context)

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset) -> None:
        revoked = tokens.token_revoke(tokens=queryset, reason=TokenRevokedReason.ADMIN)
        self.message_user(request, f"{revoked} token(s) revoked; they answer 401 from now on.", messages.SUCCESS)
