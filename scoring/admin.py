"""What marketing and sales tune: scoring model versions and their rules, with a preview before
activation. No JSON: rules are rows with a field dropdown, an operator dropdown and a value."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from leads.admin import RecordAdmin, html_table, register_lead_panel
from leads.auth import signed_in_user
from leads.conditions import FIELD_LABEL_CHOICES, describe
from leads.formatting import format_duration
from leads.models import Lead

from . import audit, preview, selectors, services
from .forms import RuleFormSet, ScoringModelForm
from .models import (
    BehaviorRule,
    ExclusionRule,
    FitRule,
    RescoreRun,
    ScoringModel,
    ScoringModelChange,
    points_text,
)


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

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "field":  # the lead fields by their labels ("Company size")
            kwargs["choices"] = [("", "---------"), *FIELD_LABEL_CHOICES]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


class FitRuleInline(DraftOnlyInline):
    model = FitRule
    fields = ["label", "field", "operator", "value", "points"]
    verbose_name = "fit rule"
    verbose_name_plural = "fit rules (profile → points)"


class BehaviorRuleInline(DraftOnlyInline):
    model = BehaviorRule
    fields = ["label", "activity_type", "property", "operator", "value", "points", "max_points", "max_occurrences"]
    verbose_name = "behaviour rule"
    verbose_name_plural = "behaviour rules (activity → points, decaying)"


class ExclusionRuleInline(DraftOnlyInline):
    model = ExclusionRule
    fields = ["label", "category", "field", "operator", "value", "action", "points"]
    verbose_name = "exclusion rule"
    verbose_name_plural = "exclusion rules"


class ChangeInline(admin.TabularInline):
    model = ScoringModelChange
    fields = ("at", "action_words", "actor", "what_changed")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "change"
    verbose_name_plural = "audit trail"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="What")
    def action_words(self, change: ScoringModelChange) -> str:
        return change.action.capitalize()

    @admin.display(description="What changed")
    def what_changed(self, change: ScoringModelChange) -> str:
        lines = [line for line in change.note.splitlines() if line.strip()]
        if not lines:
            return "—"
        items = format_html_join("", "<li>{}</li>", ((line,) for line in lines))
        return format_html("<ul class='lp-changes'>{}</ul>", items)


@admin.register(ScoringModel)
class ScoringModelAdmin(admin.ModelAdmin):
    list_display = ["version_label", "name", "status", "qualifies", "half_life_days", "activated_at"]
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
        "rules_in_words",
    ]
    fieldsets = [
        (None, {"fields": ["name", "status", "notes"]}),
        ("Qualification", {"fields": [("mql_threshold", "min_grade"), "reachable_score", "half_life_days"]}),
        ("Grade bands (fit score)", {"fields": [("grade_a_min", "grade_b_min", "grade_c_min")]}),
        ("The rules in words", {"fields": ["rules_in_words"], "classes": ["collapse"]}),
        ("Record", {"fields": ["latest_run", ("activated_at", "activated_by"), ("created_by", "updated_by")]}),
    ]
    inlines = [FitRuleInline, BehaviorRuleInline, ExclusionRuleInline, ChangeInline]
    actions = ["clone_models"]
    change_form_template = "admin/scoring/scoringmodel/change_form.html"

    @admin.display(description="Version", ordering="pk")
    def version_label(self, model: ScoringModel) -> str:
        return f"v{model.pk}"

    @admin.display(description="Becomes MQL at", ordering="mql_threshold")
    def qualifies(self, model: ScoringModel) -> str:
        return f"{points_text(model.mql_threshold)} points, grade {model.min_grade} or better"

    @admin.display(description="Rules")
    def rules_in_words(self, model: ScoringModel) -> str:
        if model.pk is None:
            return "—"
        return rules_table(model)

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
        # The state before this edit, for the audit trail's "what changed" (written once the rules are saved).
        before = ScoringModel.objects.filter(pk=obj.pk).first() if change else None
        request._scoring_before = audit.snapshot(before) if before else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before = getattr(request, "_scoring_before", None)
        if before is None:
            ScoringModelChange.objects.create(model=obj, action="created", actor=request.user)
            return
        lines = audit.diff(before, audit.snapshot(obj)) or ["Saved without changes"]
        ScoringModelChange.objects.create(model=obj, action="edited", actor=request.user, note="\n".join(lines))

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
                run.refresh_from_db()  # with an eager or fast worker it may be done already: say what is true
                said = f"v{draft.pk} is now active. {run_status(run)['headline']}"
                self.message_user(request, said, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:scoring_rescorerun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview v{draft.pk} against the active model",
            "opts": self.model._meta,
            "draft": draft,
            "active": active,
            "can_activate": draft.status == ScoringModel.Status.DRAFT and self.has_change_permission(request, draft),
            "problems": problems,
            "rules_table": rules_table(draft),
        }
        if problems:
            return TemplateResponse(request, "admin/scoring/preview.html", context)
        try:
            context["preview"] = preview.preview(draft, active)
        except ValueError as exc:  # a rule that does not parse
            context["error"] = str(exc)
        return TemplateResponse(request, "admin/scoring/preview.html", context)


def rules_table(model: ScoringModel) -> str:
    """Every rule of a version as a sentence with its points (the page and the preview show it)."""
    rows = [
        ("Fit", rule.label or "—", describe(rule), _signed(rule.points)) for rule in model.fit_rules.all()
    ]
    rows += [
        (
            "Behaviour",
            rule.label or "—",
            rule.describe() + _caps(rule),
            _signed(rule.points),
        )
        for rule in model.behavior_rules.all()
    ]
    rows += [
        (
            f"Exclusion ({rule.get_category_display()})",
            rule.label or "—",
            describe(rule),
            "disqualifies" if rule.action == ExclusionRule.Action.DISQUALIFY else _signed(rule.points),
        )
        for rule in model.exclusion_rules.all()
    ]
    return html_table(["Kind", "Label", "When", "Points"], rows)


def _signed(points: float) -> str:
    text = points_text(points)
    return text if text.startswith("-") else f"+{text}"


def _caps(rule: BehaviorRule) -> str:
    caps = []
    if rule.max_points is not None:
        caps.append(f"at most {points_text(rule.max_points)} points")
    if rule.max_occurrences:
        caps.append(f"the latest {rule.max_occurrences} count")
    return f" ({', '.join(caps)})" if caps else ""


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
    change_form_template = "admin/scoring/rescorerun/change_form.html"

    def get_urls(self):
        status = self.admin_site.admin_view(self.status_view)
        return [path("<int:pk>/status/", status, name="scoring_rescorerun_status"), *super().get_urls()]

    # On a run's page these are in the self-refreshing box at the top (templates/admin/scoring/_run_status.html):
    # shown twice, the static copy would go stale while the box moves on.
    LIVE = {"status", "progress", "rate_display", "eta", "total", "done", "cursor", "became_mql", "finished_at"}

    def get_fields(self, request, obj=None):
        return [f for f in super().get_fields(request, obj) if obj is None or f not in self.LIVE]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = RescoreRun.objects.filter(pk=object_id).select_related("model").first()
        extra = {**(extra_context or {}), "run_status": run_status(run) if run else None}
        return super().change_view(request, object_id, form_url, extra)

    def status_view(self, request: HttpRequest, pk: int):
        """The run's progress as a fragment: the page asks for it every 2 s while the run is running
        (htmx); a finished run's fragment carries no trigger, so the polling stops."""
        run = get_object_or_404(RescoreRun.objects.select_related("model"), pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return TemplateResponse(request, "admin/scoring/_run_status.html", {"run": run, "status": run_status(run)})

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


def run_status(run: RescoreRun) -> dict:
    """What the run's page says about it, in words: running (with progress) or finished (with its result)."""
    running = run.status == RescoreRun.Status.RUNNING
    percent = 100 * run.done / run.total if run.total else 100
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    if running:
        left = f", about {format_duration(run.seconds_left)} left" if run.seconds_left is not None else ""
        rate = f" at {run.rate:,.0f} leads/s" if run.rate else ""
        headline = f"Rescoring with v{run.model_id}: {run.done:,} of {run.total:,} leads ({percent:.0f} %){rate}{left}."
        result = f"{run.became_mql:,} became MQL so far." if run.became_mql else "No lead became MQL so far."
    elif run.status == RescoreRun.Status.DONE:
        seconds = f" in {format_duration(took)}" if took is not None else ""
        headline = f"Done: {run.done:,} leads rescored with v{run.model_id}{seconds}."
        result = (
            f"{run.became_mql:,} lead{'s' if run.became_mql != 1 else ''} became MQL and went to routing,"
            " which hands them to reps, pools or partners."
            if run.became_mql
            else "No lead became MQL: nobody was handed a lead."
        )
    else:
        headline = f"Superseded after {run.done:,} of {run.total:,} leads: a newer run took over."
        result = f"{run.became_mql:,} became MQL before that."
    return {"running": running, "percent": round(percent), "headline": headline, "result": result}


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
