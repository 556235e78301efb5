"""Reads for routing: rules and candidates as engine data, queues and histories."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.lifecycle import OPEN_STAGES
from leads.models import Lead, PartnerOrganization, User

from . import engine
from .models import Account, Assignment, RepProfile, RoutingCounter, RoutingRule, RuleCondition, expand_territories


@dataclass(frozen=True)
class Plan:
    """The rule set compiled once for the engine, plus the rule rows by id."""

    rows: dict[int, RoutingRule]
    ruleset: engine.RuleSet


_plans: dict[tuple[str, ...], tuple[tuple, Plan]] = {}


def _fingerprint() -> tuple:
    """Changes whenever rules, their conditions or partners, or team membership change (through
    the admin or services): one cheap query instead of loading 500 rules for every lead."""
    tables = {
        "rule": RoutingRule._meta.db_table,
        "condition": RuleCondition._meta.db_table,
        "partners": RoutingRule.partners.through._meta.db_table,
        "profile": RepProfile._meta.db_table,
    }
    sql = (  # noqa: S608 - our own table names, no input
        "SELECT (SELECT COUNT(*) FROM {rule}), (SELECT MAX(updated_at) FROM {rule}),"
        " (SELECT COUNT(*) FROM {condition}), (SELECT MAX(id) FROM {condition}),"
        " (SELECT COUNT(*) FROM {partners}), (SELECT MAX(id) FROM {partners}),"
        " (SELECT COUNT(*) FROM {profile}), (SELECT MAX(updated_at) FROM {profile})"
    ).format(**tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


def plan(statuses: tuple[str, ...] = (RoutingRule.Status.ACTIVE,)) -> Plan:
    """The current rule set, rebuilt only when its fingerprint changed (cached per process)."""
    fingerprint = _fingerprint()
    cached = _plans.get(statuses)
    if cached and cached[0] == fingerprint:
        return cached[1]
    rows = rules(statuses)
    listed = engine_rules(rows)
    result = Plan({r.pk: r for r in rows}, engine.compile_rules(listed))
    _plans[statuses] = (fingerprint, result)
    return result


def rules(statuses: Iterable[str] = (RoutingRule.Status.ACTIVE,)) -> list[RoutingRule]:
    return list(
        RoutingRule.objects.filter(status__in=list(statuses))
        .prefetch_related("conditions", "partners")
        .order_by("priority", "pk")
    )


def engine_rules(rule_rows: list[RoutingRule]) -> list[engine.Rule]:
    team_ids = {r.team_id for r in rule_rows if r.team_id}
    members: dict[int, list[int]] = {}
    for team_id, user_id in (
        RepProfile.objects.filter(team_id__in=team_ids).order_by("user_id").values_list("team_id", "user_id")
    ):
        members.setdefault(team_id, []).append(user_id)
    result = []
    for r in rule_rows:
        if r.target == RoutingRule.Target.REP:
            keys = (("rep", r.rep_id),) if r.rep_id else ()
        elif r.target == RoutingRule.Target.TEAM:
            keys = tuple(("rep", uid) for uid in members.get(r.team_id, []))
        elif r.target == RoutingRule.Target.PARTNERS:
            keys = tuple(("partner", p.pk) for p in sorted(r.partners.all(), key=lambda p: p.pk))
        elif r.is_hybrid_pool:
            keys = tuple(("rep", uid) for uid in members.get(r.team_id, []))  # whom a lead may be offered to
        else:
            keys = ()
        result.append(
            engine.Rule(
                id=r.pk,
                name=r.name,
                strategy=r.strategy,
                conditions=tuple(c.condition() for c in r.conditions.all()),
                candidates=keys,
                match_profile=r.match_profile,
                min_seniority=r.min_seniority,
                pool_size=r.pool_size if r.is_hybrid_pool else 0,
            )
        )
    return result


def account_owner(lead: Lead) -> engine.Key | None:
    return domain_owner(lead.company_domain)


def domain_owner(domain: str) -> engine.Key | None:
    """The owner of the Account with this company domain, as a candidate key."""
    domain = (domain or "").strip().lower()
    if not domain:
        return None
    owner_id = Account.objects.filter(domain=domain, owner__isnull=False).values_list("owner_id", flat=True).first()
    return ("rep", owner_id) if owner_id else None


def _open_count(column: str) -> Subquery:
    """Open leads (MQL, SAL, SQL) of the candidate in the outer row, as a correlated subquery."""
    return Coalesce(
        Subquery(
            Lead.objects.filter(**{column: OuterRef("pk" if column == "partner_id" else "user_id")})
            .filter(stage__in=OPEN_STAGES)
            .order_by()
            .values(column)
            .annotate(n=Count("pk"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def account_owners(leads: Iterable[Lead]) -> dict[int, engine.Key]:
    """`account_owner` for many leads in one query: lead id → the owner of its domain's account."""
    domains = {lead.pk: lead.company_domain.lower() for lead in leads if lead.company_domain}
    if not domains:
        return {}
    owners = dict(
        Account.objects.filter(domain__in=set(domains.values()), owner__isnull=False).values_list("domain", "owner_id")
    )
    return {pk: ("rep", owners[domain]) for pk, domain in domains.items() if domain in owners}


@lru_cache(maxsize=4096)
def _lower_set(items: tuple[str, ...]) -> frozenset[str]:
    return frozenset(x.lower() for x in items)


@lru_cache(maxsize=4096)
def _territories(items: tuple[str, ...]) -> frozenset[str]:
    return expand_territories(list(items))


REP_COLUMNS = (
    "user_id",
    "user__first_name",
    "user__last_name",
    "user__username",
    "user__is_active",
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
)


def _rep_rows(rep_ids: list[int]) -> list[tuple]:
    """REP_COLUMNS and the open-lead count of these reps' profiles. On PostgreSQL one prepared-shape
    raw statement: building the ORM query (a correlated subquery) cost more than running it."""
    if connection.vendor != "postgresql":
        return list(
            RepProfile.objects.filter(user_id__in=rep_ids)
            .order_by()
            .annotate(open_leads=_open_count("owner_id"))
            .values_list(*REP_COLUMNS, "open_leads")
        )
    with connection.cursor() as cursor:
        cursor.execute(_REP_SQL, [[s.value for s in OPEN_STAGES], rep_ids])
        rows = cursor.fetchall()
    json_at = [i for i, c in enumerate(REP_COLUMNS) if c in ("territories", "languages", "products", "industries")]
    result = []
    for row in rows:
        row = list(row)
        for i in json_at:
            if isinstance(row[i], str):  # Django reads jsonb as text and decodes it in the field
                row[i] = json.loads(row[i])
        result.append(tuple(row))
    return result


_REP_SQL = f"""
    SELECT p.user_id, u.first_name, u.last_name, u.username, u.is_active, p.active, p.away_until,
           p.capacity, p.weight, p.seniority, p.territories, p.languages, p.products, p.industries,
           p.min_company_size, p.max_company_size,
           (SELECT COUNT(*) FROM {Lead._meta.db_table} l WHERE l.owner_id = p.user_id AND l.stage = ANY(%s))
    FROM {RepProfile._meta.db_table} p JOIN {User._meta.db_table} u ON u.id = p.user_id
    WHERE p.user_id = ANY(%s)
"""  # noqa: S608


def candidates(keys: Iterable[engine.Key], now=None) -> dict[engine.Key, engine.Candidate]:
    """The candidates' state as the engine needs it, read now (call after locking their rows):
    one query for the reps (profile, user and open leads, as plain rows), one for partners."""
    now = now or timezone.now()
    keys = list(keys)
    rep_ids = {k[1] for k in keys if k[0] == "rep"}
    partner_ids = {k[1] for k in keys if k[0] == "partner"}
    result: dict[engine.Key, engine.Candidate] = {}
    if rep_ids:
        rows = _rep_rows(sorted(rep_ids))
        missing = rep_ids - {row[0] for row in rows}  # a rep without a profile routes with the defaults
        if missing:
            open_counts = dict(
                Lead.objects.filter(owner_id__in=missing, stage__in=OPEN_STAGES)
                .values("owner_id")
                .annotate(n=Count("pk"))
                .values_list("owner_id", "n")
            )
            default = RepProfile()
            for user in User.objects.filter(pk__in=missing):
                profile = tuple(getattr(default, column) for column in REP_COLUMNS[5:])
                user_row = (user.pk, user.first_name, user.last_name, user.get_username(), user.is_active)
                rows.append((*user_row, *profile, open_counts.get(user.pk, 0)))
        for (
            user_id,
            first_name,
            last_name,
            username,
            user_active,
            active,
            away_until,
            capacity,
            weight,
            seniority,
            territories,
            languages,
            products,
            industries,
            min_size,
            max_size,
            open_leads,
        ) in rows:
            key = ("rep", user_id)
            result[key] = engine.Candidate(
                key=key,
                # User.get_full_name(), without a model instance per rep
                name=f"{first_name} {last_name}".strip() or username,
                active=user_active and active,
                away=away_until is not None and away_until > now,  # RepProfile.is_away
                open_leads=open_leads,
                capacity=capacity,
                weight=weight,
                seniority=seniority,
                territories=_territories(tuple(territories)),
                languages=_lower_set(tuple(languages)),
                products=_lower_set(tuple(products)),
                industries=_lower_set(tuple(industries)),
                min_company_size=min_size,
                max_company_size=max_size,
            )
    if partner_ids:
        scores = partner_scores()
        for org in PartnerOrganization.objects.filter(pk__in=partner_ids).annotate(
            open_leads=_open_count("partner_id")
        ):
            result[("partner", org.pk)] = engine.Candidate(
                key=("partner", org.pk),
                name=org.name,
                active=org.active,
                open_leads=org.open_leads,
                capacity=org.capacity,
                territories=expand_territories(org.territories),
                products=frozenset(x.lower() for x in org.products),
                performance=scores.get(org.pk, 1.0),
            )
    return result


PERFORMANCE_TTL = 60.0  # seconds: outcomes change by the day, not by the lead
_scores: tuple[float, dict[int, float]] = (0.0, {})

PartnerWeights = Callable[[], dict[int, float]]
# The outcome figures are partners' (feedback, the chase), and partners sits above routing: it hands
# its function over from PartnersConfig.ready(), the way it registers its dashboard entries, so routing
# never imports partners. Without one every partner organisation weighs 1.0.
_partner_weights: PartnerWeights | None = None


def register_partner_weights(weights: PartnerWeights) -> None:
    """Set the function that gives every partner organisation's routing weight by id (the
    "performance-weighted" strategy's; partners registers partners.selectors.partner_weights)."""
    global _partner_weights, _scores
    _partner_weights = weights
    _scores = (0.0, {})


def partner_scores() -> dict[int, float]:
    """Every partner organisation's outcome score from the registered weights (partners: a few
    aggregate queries), computed at most once a minute per process."""
    global _scores
    expires, scores = _scores
    if time.monotonic() >= expires:
        scores = _partner_weights() if _partner_weights is not None else {}
        _scores = (time.monotonic() + PERFORMANCE_TTL, scores)
    return scores


def counters(rule_ids: Iterable[int]) -> dict[tuple[int, engine.Key], int]:
    result = {}
    for rule_id, user_id, partner_id, n in RoutingCounter.objects.filter(rule_id__in=list(rule_ids)).values_list(
        "rule_id", "user_id", "partner_id", "assigned"
    ):
        key = ("rep", user_id) if user_id else ("partner", partner_id)
        result[(rule_id, key)] = n
    return result


def previous_assignees(lead: Lead) -> frozenset[engine.Key]:
    keys = set()
    for user_id, partner_id in Assignment.objects.filter(lead=lead).values_list("user_id", "partner_id"):
        if user_id:
            keys.add(("rep", user_id))
        if partner_id:
            keys.add(("partner", partner_id))
    return frozenset(keys)


def pool_for(user: User) -> QuerySet[Assignment]:
    """Pooled leads this rep may claim, oldest first: those of the rep's team's pools, except the
    hybrid ones offered to a few other reps."""
    team_id = RepProfile.objects.filter(user=user).values_list("team_id", flat=True).first()
    if team_id is None:
        return Assignment.objects.none()
    offered_elsewhere = Exists(Assignment.offered_to.through.objects.filter(assignment_id=OuterRef("pk")))
    offered_to_me = Exists(Assignment.offered_to.through.objects.filter(assignment_id=OuterRef("pk"), user_id=user.pk))
    return (
        Assignment.objects.filter(status=Assignment.Status.POOLED, pool_team_id=team_id)
        .filter(~offered_elsewhere | offered_to_me)
        .select_related("lead", "rule")
        .order_by("assigned_at", "pk")
    )


def lead_assignments(lead: Lead) -> QuerySet[Assignment]:
    return lead.assignments.select_related("user", "partner", "rule", "created_by").order_by("-assigned_at", "-pk")
