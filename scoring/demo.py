"""Demo scoring model: sensible B2B rules and a threshold that some demo leads cross.

Scoring comes before routing: the model's first run scores every demo lead as soon as it is
activated, and the leads whose score reaches the threshold become MQL in that same transaction —
so routing, which reacts to the move, hands them over with their real score. After the other
seeders (handovers, partner feedback, stories moved back in time), whatever rescoring they asked
for is done before `seed_demo` ends, so every stored score is the engine's."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from leads.demo import seeder

from . import services
from .models import BehaviorRule, ExclusionRule, FitRule, PendingRescore, RescoreRun, ScoringModel

FIT = [  # field, operator, value, points, label
    ("job_title", "in", "ceo, cto, cio, cfo, coo", 20, "C-level"),
    ("job_title", "startswith", "vp", 15, "Vice president"),
    ("job_title", "contains", "head of", 10, "Head of a department"),
    ("job_title", "contains", "director", 10, "Director"),
    ("job_title", "contains", "student", -15, "Student"),
    ("industry", "in", "software, financial services, manufacturing, healthcare", 10, "Target industry"),
    ("company_size", "between", "200, 5000", 10, "Mid-market"),
    ("company_size", "gte", "5001", 5, "Enterprise"),
    ("country", "in", "DE, AT, CH, GB, US, NL, SE", 5, "Core market"),
]
BEHAVIOR = [  # type, property, operator, value, points, max_points, max_occurrences, label
    ("demo_request", "", "", "", 30, None, None, "Requested a demo"),
    ("page_view", "url", "contains", "/pricing", 10, None, 3, "Viewed pricing"),
    ("page_view", "", "", "", 1, 10, None, "Page views"),
    ("webinar", "", "", "", 15, None, 2, "Attended a webinar"),
    ("download", "asset", "contains", "whitepaper", 8, None, None, "Downloaded a whitepaper"),
    ("form_submit", "", "", "", 10, None, None, "Submitted a form"),
    ("email_click", "", "", "", 3, 12, None, "Clicked an e-mail"),
    ("email_open", "", "", "", 1, 5, None, "Opened an e-mail"),
    ("unsubscribe", "", "", "", -30, None, None, "Unsubscribed"),
    ("email_bounce", "", "", "", -20, None, None, "E-mail bounced"),
    # Partner feedback closes the loop: what the partner learnt weighs on the score.
    ("partner_feedback", "status", "eq", "meeting", 15, None, 1, "Partner: meeting held"),
    ("partner_feedback", "status", "eq", "proposal", 20, None, 1, "Partner: proposal sent"),
    ("partner_feedback", "status", "eq", "unreachable", -15, None, 2, "Partner: could not reach"),
    ("partner_feedback", "reason", "eq", "no_budget", -25, None, 1, "Partner: no budget"),
]
EXCLUSIONS = [  # category, field, operator, value, action, points, label
    (
        "competitor",
        "company_domain",
        "domain_in",
        "rivalsoft.example, competitor.example",
        "disqualify",
        0,
        "Competitor",
    ),
    ("press", "job_title", "contains", "journalist", "disqualify", 0, "Press"),
    ("applicant", "job_title", "contains", "applicant", "disqualify", 0, "Job applicant"),
    (
        "free_mail",
        "email",
        "domain_in",
        "gmail.com, yahoo.com, hotmail.com, outlook.com, gmx.de, web.de",
        "penalty",
        -20,
        "Free e-mail address",
    ),
]


GROUP_PERMISSIONS = {
    "Marketing": [
        f"{action}_{model}"
        for model in ("scoringmodel", "fitrule", "behaviorrule", "exclusionrule")
        for action in ("add", "change", "delete", "view")
    ]
    + ["view_rescorerun", "view_scoringmodelchange"],
    "Sales managers": [
        "view_scoringmodel",
        "view_fitrule",
        "view_behaviorrule",
        "view_exclusionrule",
        "view_rescorerun",
    ],
}


@seeder(order=10)
def seed_scoring(say: Callable[[str], None]) -> None:
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="scoring", codename__in=codenames))
    if ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).exists():
        return
    with transaction.atomic():
        model = create_demo_model()
        run = services.scoring_model_activate(model=model)
    # The run's steps are queued too (and, without a broker, have already run): stepping it here does
    # not wait for a worker, and a queued step that comes later finds the run moved on.
    cursor = services.rescore_run_step(run_id=run.pk)
    while cursor is not None:
        cursor = services.rescore_run_step(run_id=run.pk, cursor=cursor)
    run = RescoreRun.objects.get(pk=run.pk)
    say(
        f"Scoring model v{model.pk} active (MQL at {model.mql_threshold:g}, grade {model.min_grade} or better): "
        f"{run.done} leads scored, {run.became_mql} became MQL."
    )


@seeder(order=90)
def settle_scores(say: Callable[[str], None]) -> None:
    """Rescore what the seeders changed and nobody has rescored yet (a broker's worker would, later)."""
    pending = list(PendingRescore.objects.order_by("lead_id").values_list("lead_id", flat=True))
    for start in range(0, len(pending), services.TASK_CHUNK):
        services.rescore_leads(lead_ids=pending[start : start + services.TASK_CHUNK])


def create_demo_model(name: str = "B2B default") -> ScoringModel:
    """A draft with the demo rules (also used by `make bench`)."""
    model = ScoringModel.objects.create(
        name=name,
        mql_threshold=60,
        min_grade="C",
        half_life_days=30,
        grade_a_min=35,
        grade_b_min=20,
        grade_c_min=10,
    )
    FitRule.objects.bulk_create(
        FitRule(model=model, field=f, operator=o, value=v, points=p, label=label) for f, o, v, p, label in FIT
    )
    BehaviorRule.objects.bulk_create(
        BehaviorRule(
            model=model,
            activity_type=t,
            property=prop,
            operator=o,
            value=v,
            points=p,
            max_points=mp,
            max_occurrences=mo,
            label=label,
        )
        for t, prop, o, v, p, mp, mo, label in BEHAVIOR
    )
    ExclusionRule.objects.bulk_create(
        ExclusionRule(model=model, category=c, field=f, operator=o, value=v, action=a, points=p, label=label)
        for c, f, o, v, a, p, label in EXCLUSIONS
    )
    return model
