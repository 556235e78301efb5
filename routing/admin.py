"""What sales managers tune: ordered rules (same condition editor as scoring), teams, rep profiles,
accounts; a dry-run simulator and a replay of recent MQLs; the unassigned queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from leads.admin import RecordAdmin, html_table, register_lead_panel
from leads.conditions import FIELD_LABEL_CHOICES, LEAD_FIELDS, describe, field_label
from leads.formatting import format_code, format_datetime
from leads.forms import CountryListField, LanguageListField, ListField, country_names
from leads.lifecycle import OPEN_STAGES
from leads.models import Lead, Role, User
from leads.selectors import lead_facts
from leads.services import email_domain

from . import selectors, simulate
from .forms import RoutingRuleForm
from .models import REGIONS, Account, Assignment, RepProfile, RoutingRule, RuleCondition, Strategy, Team


def lead_takers() -> QuerySet[User]:
    """People who can take a lead: active sales reps and sales managers (not marketing, partner or
    integration accounts)."""
    return User.objects.filter(is_active=True, role__in=[Role.SALES_REP, Role.SALES_MANAGER]).order_by(
        "first_name", "last_name", "username"
    )


def sales_managers() -> QuerySet[User]:
    return lead_takers().filter(role=Role.SALES_MANAGER)


TAKER_ONLY = "Only an active sales rep or sales manager can take leads; pick one of the list."
MANAGER_ONLY = "Only an active sales manager can manage a team; pick one of the list."


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    _AdminBase = admin.options.BaseModelAdmin
else:
    _AdminBase = object  # a mixin: the ModelAdmin or inline it is mixed into is the next in line


class _TeamCounts(TypedDict):
    n: int


class _ProfileLoad(TypedDict):
    open_leads: int


class UserPickers(_AdminBase):
    """Each user dropdown of this admin lists only the people who can hold that job: field name →
    (who, what the form says when another user is sent)."""

    user_pickers: dict[str, tuple] = {}

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.user_pickers:
            people, refusal = self.user_pickers[db_field.name]
            kwargs["queryset"] = people()
            kwargs["error_messages"] = {"invalid_choice": refusal}
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class RepProfileForm(forms.ModelForm):
    territories = CountryListField(
        regions=REGIONS, help_text="Country codes or regions, comma-separated: SE, NO, DK or DACH, NORDICS, BENELUX"
    )
    languages = LanguageListField()
    products = ListField(help_text="Comma-separated: Cloud, Analytics")
    industries = ListField(help_text="Comma-separated: Software, Retail")

    class Meta:
        model = RepProfile
        fields = [
            "user",
            "team",
            "active",
            "away_until",
            "capacity",
            "weight",
            "seniority",
            "territories",
            "languages",
            "products",
            "industries",
            "min_company_size",
            "max_company_size",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.fields.get("user")
        if isinstance(user, forms.ModelChoiceField) and user.queryset is not None and self.instance.user_id:
            # The profile of someone who left stays editable (to turn it off); nobody else is added.
            user.queryset = user.queryset | User.objects.filter(pk=self.instance.user_id)


class RepProfileInline(UserPickers, admin.TabularInline):
    model = RepProfile
    form = RepProfileForm
    user_pickers = {"user": (lead_takers, TAKER_ONLY)}
    fields = ["user", "active", "away_until", "capacity", "weight", "seniority"]
    extra = 0


@admin.register(Team)
class TeamAdmin(UserPickers, admin.ModelAdmin):
    list_display = ["name", "manager", "members"]
    inlines = [RepProfileInline]
    user_pickers = {"manager": (sales_managers, MANAGER_ONLY)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n=Count("reps"))

    @admin.display(description="Members", ordering="n")
    def members(self, team: WithAnnotations[Team, _TeamCounts]) -> int:
        return team.n


@admin.register(RepProfile)
class RepProfileAdmin(UserPickers, admin.ModelAdmin):
    form = RepProfileForm
    user_pickers = {"user": (lead_takers, TAKER_ONLY)}
    list_display = ["__str__", "team", "active", "availability", "load", "covers"]
    list_filter = ["team", "active", "seniority"]
    list_select_related = ["user", "team"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]

    def get_queryset(self, request):
        open_leads = Count("user__owned_leads", filter=Q(user__owned_leads__stage__in=OPEN_STAGES))
        return super().get_queryset(request).annotate(open_leads=open_leads)

    @admin.display(description="Available")
    def availability(self, profile: RepProfile) -> str:
        return f"away until {format_datetime(profile.away_until)}" if profile.is_away() else "yes"

    @admin.display(description="Territories")
    def covers(self, profile: RepProfile) -> str:
        return ", ".join(profile.territories) or "anywhere"

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "territory_names"]

    @admin.display(description="Countries covered")
    def territory_names(self, profile: RepProfile) -> str:
        return country_names(profile.territories, REGIONS) if profile.territories else "anywhere"

    @admin.display(description="Open leads / capacity", ordering="open_leads")
    def load(self, profile: WithAnnotations[RepProfile, _ProfileLoad]) -> str:
        return f"{profile.open_leads} / {profile.capacity}"


@admin.register(Account)
class AccountAdmin(UserPickers, admin.ModelAdmin):
    list_display = ["name", "domain", "owner", "existing_customer"]
    user_pickers = {"owner": (lead_takers, TAKER_ONLY)}
    list_filter = ["existing_customer"]
    search_fields = ["name", "domain"]


class RuleConditionInline(admin.TabularInline):
    model = RuleCondition
    fields = ["field", "operator", "value"]
    extra = 0
    verbose_name = "condition"
    verbose_name_plural = "conditions (all must hold)"

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "field":  # the lead fields by their labels ("Company size")
            kwargs["choices"] = [("", "---------"), *FIELD_LABEL_CHOICES]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(RoutingRule)
class RoutingRuleAdmin(UserPickers, admin.ModelAdmin):
    """The rule list names each rule's target in words; the form shows the fields of the chosen
    target only (static/js/admin_rule_form.js shows and hides the fieldsets marked `lp-for-…`;
    without the script every fieldset shows, and the form says which field a target needs)."""

    form = RoutingRuleForm
    user_pickers = {"rep": (lead_takers, TAKER_ONLY)}
    list_display = ["priority", "name", "status", "target_text", "conditions_text", "sla"]
    list_display_links = ["name"]
    list_editable = ["priority", "status"]
    list_filter = ["status", "target", "strategy"]
    filter_horizontal = ["partners"]
    inlines = [RuleConditionInline]
    fieldsets = [
        (None, {"fields": [("name", "priority", "status")]}),
        ("Who gets it", {"fields": ["target"], "classes": ["lp-target-choice"]}),
        ("A rep", {"fields": ["rep"], "classes": ["lp-target", "lp-for-rep"]}),
        (
            "The team",
            {
                "fields": ["team"],
                "classes": ["lp-target", "lp-for-team", "lp-for-pool", "lp-for-rep"],
                "description": "For a rep: only for a fallback to the team's pool.",
            },
        ),
        ("Partners", {"fields": ["partners"], "classes": ["lp-target", "lp-for-partners"]}),
        ("How", {"fields": ["strategy"], "classes": ["lp-target", "lp-for-rep", "lp-for-team", "lp-for-partners"]}),
        ("The pool", {"fields": [("pool_mode", "pool_size")], "classes": ["lp-target", "lp-for-pool"]}),
        (
            "Who may take it",
            {
                "fields": [("match_profile", "min_seniority")],
                "classes": ["lp-target", "lp-for-team", "lp-for-pool", "lp-for-partners"],
            },
        ),
        (
            "Service level",
            {
                "fields": [("sla_minutes", "on_sla_breach"), "fallback", "on_reject"],
                "description": "A change to the SLA applies to leads assigned from now on. Leads already"
                " waiting for acceptance keep the deadline they were given.",
            },
        ),
    ]
    change_list_template = "admin/routing/routingrule/change_list.html"

    class Media:
        js = ["js/admin_rule_form.js"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rep", "team").prefetch_related("conditions", "partners")

    @admin.display(description="Goes to", ordering="target")
    def target_text(self, rule: RoutingRule) -> str:
        return target_text(rule)

    @admin.display(description="Conditions")
    def conditions_text(self, rule: RoutingRule) -> str:
        return conditions_text(rule)

    @admin.display(description="SLA", ordering="sla_minutes")
    def sla(self, rule: RoutingRule) -> str:
        return minutes_text(rule.sla_minutes)

    def get_urls(self):
        return [
            path("simulate/", self.admin_site.admin_view(self.simulate_view), name="routing_simulate"),
            path("replay/", self.admin_site.admin_view(self.replay_view), name="routing_replay"),
            *super().get_urls(),
        ]

    def _context(self, request, title: str) -> dict:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta}

    def simulate_view(self, request):
        context = self._context(request, "Where would this lead go?")
        form = SimulateForm(request.GET or None)
        if form.is_valid():
            lead = form.cleaned_data.get("lead_obj")
            facts = lead_facts(lead) if lead else form.facts()
            context["decision"] = simulate.simulate(
                facts, include_drafts=form.cleaned_data["include_drafts"], lead=lead
            )
            context["facts"] = facts_in_words(facts)
            context["summary"] = next(s["result"] for s in reversed(context["decision"].trace) if "result" in s)
            rule = RoutingRule.objects.filter(pk=context["decision"].rule_id).prefetch_related("conditions").first()
            if rule is not None:
                context["rule_words"] = f"{rule.name}: {conditions_text(rule)} → {target_text(rule)}"
        context["form"] = form
        return TemplateResponse(request, "admin/routing/simulate.html", context)

    def replay_view(self, request):
        context = self._context(request, "Replay recent MQLs under the draft rules")
        try:
            n = max(1, min(int(request.GET.get("n", 100)), 5000))
        except ValueError:
            n = 100
        context["n"] = n
        context["replay"] = simulate.replay(n)
        return TemplateResponse(request, "admin/routing/replay.html", context)


POOL_MODE_WORDS = {
    RoutingRule.PoolMode.CHERRY_PICK: "cherry-pick",
    RoutingRule.PoolMode.SHARK_TANK: "shark tank",
    RoutingRule.PoolMode.BLIND: "blind pull",
    RoutingRule.PoolMode.HYBRID: "hybrid",
}


def strategy_text(code: str) -> str:
    """`strategy_label` in the middle of a sentence ("Team Inside sales, weighted round robin")."""
    label = strategy_label(code)
    return label[:1].lower() + label[1:]


def target_text(rule: RoutingRule) -> str:
    """Whom a rule hands its leads to, in words: "Team Inside sales, round robin", "Rep Rita Meyer",
    "Partners Alpine Resellers, Nordic Channel", "Pool of Inside sales (shark tank)"."""
    team = rule.team.name if rule.team else "no team"
    if rule.target == RoutingRule.Target.REP:
        if rule.rep is None:
            return "Rep: none chosen"
        name = rule.rep.get_full_name() or rule.rep.get_username()
        return f"Rep {name}" + (", account owner first" if rule.strategy == Strategy.ACCOUNT_OWNER else "")
    if rule.target == RoutingRule.Target.TEAM:
        return f"Team {team}, {strategy_text(rule.strategy)}"
    if rule.target == RoutingRule.Target.PARTNERS:
        names = ", ".join(p.name for p in rule.partners.all()) or "none chosen"
        return f"Partners {names}" + ("" if rule.strategy == Strategy.DIRECT else f", {strategy_text(rule.strategy)}")
    mode = POOL_MODE_WORDS.get(RoutingRule.PoolMode(rule.pool_mode), rule.pool_mode)
    size = f", offered to {rule.pool_size}" if rule.is_hybrid_pool else ""
    return f"Pool of {team} ({mode}{size})"


def conditions_text(rule: RoutingRule) -> str:
    return " and ".join(describe(c) for c in rule.conditions.all()) or "Every lead"


def facts_in_words(facts: dict) -> dict[str, str]:
    """The lead's facts the simulator used, by their labels, countries by name: {"Country": "Germany"}."""
    shown = {}
    for key, value in facts.items():
        if value in (None, ""):
            continue
        if key == "country":
            value = country_names([value])
        elif isinstance(value, float):
            value = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        shown[field_label(key)] = str(value)
    return shown


def minutes_text(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day{'s' if minutes != 1440 else ''}"
    if minutes >= 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h" + (f" {rest:02d} min" if rest else "")
    return f"{minutes} min"


class SimulateForm(forms.Form):
    lead = forms.CharField(required=False, label="Lead id or e-mail")
    include_drafts = forms.BooleanField(required=False, label="Include draft rules")
    email = forms.EmailField(
        required=False,
        label="E-mail",
        help_text="The imagined lead's e-mail; without a company domain, its domain is used, as lead capture does",
    )
    country = forms.CharField(required=False, max_length=2)
    language = forms.CharField(required=False)
    industry = forms.CharField(required=False)
    product_interest = forms.CharField(required=False)
    job_title = forms.CharField(required=False)
    company_size = forms.IntegerField(required=False, min_value=0)
    company_domain = forms.CharField(required=False)
    grade = forms.ChoiceField(required=False, choices=[("", "—"), *[(g, g) for g in "ABCD"]])
    score = forms.FloatField(required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        ref = (data.get("lead") or "").strip()
        if ref:
            lead = (
                Lead.objects.filter(pk=int(ref)).first()
                if ref.isdigit()
                else Lead.objects.filter(email=ref.lower()).first()
            )
            if lead is None:
                raise forms.ValidationError({"lead": f"No lead {ref}."})
            data["lead_obj"] = lead
        return data

    def facts(self) -> dict:
        facts = dict.fromkeys(LEAD_FIELDS, "")
        facts.update({k: v for k, v in self.cleaned_data.items() if k in LEAD_FIELDS and v not in (None, "")})
        facts["country"] = (facts.get("country") or "").upper()
        facts["company_domain"] = facts["company_domain"].strip().lower()
        if not facts["company_domain"] and facts["email"]:
            facts["company_domain"] = email_domain(facts["email"])  # what lead capture stores
        return facts


class StrategyFilter(admin.SimpleListFilter):
    title = "strategy"
    parameter_name = "strategy"

    def lookups(self, request, model_admin):
        codes = Assignment.objects.exclude(strategy="").order_by("strategy").values_list("strategy", flat=True)
        return [(code, strategy_label(code)) for code in codes.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(strategy=self.value()) if self.value() else queryset


@admin.register(Assignment)
class AssignmentAdmin(RecordAdmin):
    list_display = ["lead", "status", "assignee", "rule", "strategy_words", "assigned_at", "due_at", "accepted_at"]
    list_filter = ["status", StrategyFilter, "rule"]
    list_select_related = ["lead", "user", "partner", "rule"]
    search_fields = ["lead__email", "user__username"]
    readonly_fields = [
        "lead",
        "user",
        "partner",
        "rule",
        "strategy_words",
        "status",
        "trace_table",
        "assigned_at",
        "due_at",
        "accepted_at",
        "ended_at",
        "note",
        "created_by",
    ]
    exclude = ["trace", "strategy"]  # the strategy in words: strategy_words

    @admin.display(description="Assignee")
    def assignee(self, assignment: Assignment) -> str:
        label = assignment.assignee_label
        return label if assignment.user_id or assignment.partner_id else label.capitalize()

    @admin.display(description="Strategy", ordering="strategy")
    def strategy_words(self, assignment: Assignment) -> str:
        return strategy_label(assignment.strategy)

    @admin.display(description="Decision trace")
    def trace_table(self, assignment: Assignment) -> str:
        return render_trace(assignment.trace)


def strategy_label(code: str) -> str:
    """A routing strategy in words ("Weighted round robin"); codes that are no strategy of a rule
    (a manual reassignment, a pool fallback) spelled out."""
    try:
        return str(Strategy(code).label)
    except ValueError:
        return format_code(code)


def describe_step(step: dict) -> str:
    """One entry of a decision trace in words (the simulator's template says the same)."""
    if "skipped_rules" in step:
        return f"{step['skipped_rules']} rules ({step['first']} … {step['last']}): conditions not met"
    if "rule" not in step:
        return step.get("result", "")
    if not step.get("matched"):
        return f"{step['rule']}: conditions not met"
    skipped = "; ".join(f"{s['candidate']} skipped ({s['why']})" for s in step.get("skipped", []))
    line = f"{step['rule']} ({strategy_label(step.get('strategy', ''))}): {step.get('result', '')}"
    return line + (f" — {skipped}" if skipped else "")


def render_trace(trace: list[dict]) -> str:
    lines = [(describe_step(step),) for step in trace]
    return format_html("<ol class='trace-steps'>{}</ol>", format_html_join("", "<li>{}</li>", lines))


def assignments_panel(lead: Lead) -> str:
    rows = list(selectors.lead_assignments(lead)[:20])
    if not rows:
        return "Not routed yet."
    return html_table(
        ["When", "Status", "Assignee", "Rule", "Due", "Why"],
        (
            (
                format_datetime(a.assigned_at),
                a.get_status_display(),
                a.assignee_label,
                a.rule.name if a.rule else a.strategy,
                format_datetime(a.due_at) if a.due_at else "",
                render_trace(a.trace),
            )
            for a in rows
        ),
    )


register_lead_panel("Assignments", assignments_panel)
