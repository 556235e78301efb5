"""What marketing and sales tune: scoring model versions and their rules, with a preview before
activation. No JSON: rules are rows with a field dropdown, an operator dropdown and a value."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from leads.admin import RecordAdmin, html_table, register_lead_panel
from leads.auth import signed_in_user
from leads.models import Lead

from . import preview, selectors, services
from .forms import RuleFormSet, ScoringModelForm
from .models import BehaviorRule, ExclusionRule, FitRule, RescoreRun, ScoringModel, ScoringModelChange


class DraftOnlyInline(admin.TabularInline):
    """Rules are edited on drafts only; an active or archived version is a record of what ran."""

    extra = 0
    formset = RuleFormSet

    def _editable(self, obj) -> bool:
        return obj is None or obj.status == ScoringModel.Status.DRAFT

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class FitRuleInline(DraftOnlyInline):
    model = FitRule
    fields = ["label", "field", "operator", "value", "points"]
    verbose_name = "fit rule (profile → points)"


class BehaviorRuleInline(DraftOnlyInline):
    model = BehaviorRule
    fields = ["label", "activity_type", "property", "operator", "value", "points", "max_points", "max_occurrences"]
    verbose_name = "behaviour rule (activity → points, decaying)"


class ExclusionRuleInline(DraftOnlyInline):
    model = ExclusionRule
    fields = ["label", "category", "field", "operator", "value", "action", "points"]
    verbose_name = "exclusion rule"


class ChangeInline(admin.TabularInline):
    model = ScoringModelChange
    fields = ("at", "action", "actor", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "audit trail"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ScoringModel)
class ScoringModelAdmin(admin.ModelAdmin):
    list_display = [
        "version_label",
        "name",
        "status",
        "mql_threshold",
        "min_grade",
        "half_life_days",
        "activated_at",
        "activated_by",
    ]
    list_filter = ["status"]
    form = ScoringModelForm
    readonly_fields = [
        "status",
        "activated_at",
        "activated_by",
        "created_by",
        "updated_by",
        "latest_run",
        "reachable_score",
    ]
    fieldsets = [
        (None, {"fields": ["name", "status", "notes"]}),
        ("Qualification", {"fields": [("mql_threshold", "min_grade"), "reachable_score", "half_life_days"]}),
        ("Grade bands (fit score)", {"fields": [("grade_a_min", "grade_b_min", "grade_c_min")]}),
        ("Record", {"fields": ["latest_run", ("activated_at", "activated_by"), ("created_by", "updated_by")]}),
    ]
    inlines = [FitRuleInline, BehaviorRuleInline, ExclusionRuleInline, ChangeInline]
    actions = ["clone_models"]
    change_form_template = "admin/scoring/scoringmodel/change_form.html"

    @admin.display(description="Version", ordering="pk")
    def version_label(self, model: ScoringModel) -> str:
        return f"v{model.pk}"

    @admin.display(description="Highest reachable score")
    def reachable_score(self, model: ScoringModel) -> str:
        if model.pk is None:
            return "Save the draft with its rules to see how high a lead can score."
        return model.ceiling().describe()

    @admin.display(description="Rescoring")
    def latest_run(self, model: ScoringModel) -> str:
        run = model.runs.first()
        return format_run(run) if run else "—"

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != ScoringModel.Status.DRAFT:
            return False  # read-only record; clone it to change it
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return (
            obj is not None and obj.status == ScoringModel.Status.DRAFT and super().has_delete_permission(request, obj)
        )

    def save_model(self, request, obj: ScoringModel, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        ScoringModelChange.objects.create(model=obj, action="edited" if change else "created", actor=request.user)

    @admin.action(description="Clone into a new draft")
    def clone_models(self, request, queryset) -> None:
        for model in queryset:
            draft = services.scoring_model_clone(source=model, actor=request.user)
            self.message_user(request, f"v{draft.pk} is a new draft cloned from v{model.pk}.", messages.SUCCESS)

    def get_urls(self):
        return [
            path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view), name="scoring_preview"),
            path("<int:pk>/clone/", self.admin_site.admin_view(self.clone_view), name="scoring_clone"),
            *super().get_urls(),
        ]

    def clone_view(self, request: HttpRequest, pk: int):
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        source = get_object_or_404(ScoringModel, pk=pk)
        draft = services.scoring_model_clone(source=source, actor=signed_in_user(request))
        self.message_user(request, f"v{draft.pk} is a new draft cloned from v{source.pk}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:scoring_scoringmodel_change", args=[draft.pk]))

    def preview_view(self, request: HttpRequest, pk: int):
        draft = get_object_or_404(ScoringModel, pk=pk)
        if not self.has_view_permission(request, draft):
            raise PermissionDenied
        active = selectors.active_model()
        # A threshold or band no lead can meet (or below 0) is neither previewed nor activated.
        problems = draft.qualification_problems()
        if request.method == "POST":
            if not self.has_change_permission(request, draft) or request.POST.get("confirm") != "yes":
                raise PermissionDenied
            if not problems:
                run = services.scoring_model_activate(model=draft, actor=signed_in_user(request))
                self.message_user(
                    request,
                    f"v{draft.pk} is now active; rescoring {run.total} leads in the background.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:scoring_rescorerun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview v{draft.pk} against the active model",
            "opts": self.model._meta,
            "draft": draft,
            "active": active,
            "can_activate": draft.status == ScoringModel.Status.DRAFT and self.has_change_permission(request, draft),
            "problems": problems,
        }
        if problems:
            return TemplateResponse(request, "admin/scoring/preview.html", context)
        try:
            context["preview"] = preview.preview(draft, active)
        except ValueError as exc:  # a rule that does not parse
            context["error"] = str(exc)
        return TemplateResponse(request, "admin/scoring/preview.html", context)


def format_run(run: RescoreRun) -> str:
    percent = 100 * run.done / run.total if run.total else 100
    rate = f"{run.rate:,.0f} leads/s" if run.rate else "—"
    left = f", about {run.seconds_left:,.0f} s left" if run.seconds_left is not None else ""
    return format_html(
        "{} — {}: {} / {} leads ({}%), {}{}; {} became MQL",
        run.get_kind_display(),
        run.get_status_display(),
        f"{run.done:,}",
        f"{run.total:,}",
        f"{percent:.0f}",
        rate,
        left,
        run.became_mql,
    )


# A run at a glance: its row in the list, and the top of its page.
RUN_SUMMARY = ("model", "kind", "status", "progress", "rate_display", "eta")


@admin.register(RescoreRun)
class RescoreRunAdmin(RecordAdmin):
    list_display = ["pk", *RUN_SUMMARY, "became_mql", "started_at", "finished_at"]
    list_filter = ["status", "kind"]
    readonly_fields = (
        *RUN_SUMMARY,
        "as_of",
        "total",
        "done",
        "cursor",
        "batch_size",
        "became_mql",
        "started_at",
        "finished_at",
        "started_by",
    )
    fields = readonly_fields

    @admin.display(description="Done / total")
    def progress(self, run: RescoreRun) -> str:
        percent = 100 * run.done / run.total if run.total else 100
        return format_html(
            '<progress value="{}" max="{}" class="lp-progress"></progress> {} / {} ({}%)',
            run.done,
            run.total or 1,
            f"{run.done:,}",
            f"{run.total:,}",
            f"{percent:.0f}",
        )

    @admin.display(description="Rate")
    def rate_display(self, run: RescoreRun) -> str:
        return f"{run.rate:,.0f} leads/s" if run.rate else "—"

    @admin.display(description="Time left")
    def eta(self, run: RescoreRun) -> str:
        return f"about {run.seconds_left:,.0f} s" if run.seconds_left is not None else "—"


def score_panel(lead: Lead) -> str:
    spec, score = services.lead_score_explain(lead=lead)
    if spec is None or score is None:
        return "No scoring model is active."
    summary = format_html(
        "<p><strong>{}</strong> = fit {} + engagement {}; grade <strong>{}</strong> (model v{}){}</p>",
        f"{score.total:.1f}",
        f"{score.fit:.1f}",
        f"{score.engagement:.1f}",
        score.grade,
        spec.version,
        " — disqualified by an exclusion rule" if score.disqualified else "",
    )
    table = html_table(
        ["Rule", "Kind", "Times", "Points before decay", "Points now"],
        ((c.label, c.kind, c.occurrences, f"{c.raw:+.1f}", f"{c.points:+.2f}") for c in score.breakdown),
    )
    return format_html("{}{}", summary, table)


register_lead_panel("Why this score", score_panel)
