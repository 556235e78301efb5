"""Reads for routing: rules and candidates as engine data, queues and histories."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from leads.lifecycle import OPEN_STAGES
from leads.models import Lead, PartnerOrganization, User

from . import caches, engine, sql
from .models import Account, Assignment, RepProfile, RoutingCounter, RoutingRule, expand_territories


@dataclass(frozen=True)
class Plan:
    """The rule set compiled once for the engine, plus the rule rows by id."""

    rows: dict[int, RoutingRule]
    ruleset: engine.RuleSet


def plan(statuses: tuple[str, ...] = (RoutingRule.Status.ACTIVE,)) -> Plan:
    """The current rule set, rebuilt only when its fingerprint changed (`routing.caches.plans`)."""
    return caches.plans.get((statuses, sql.rules_fingerprint()), _plan)


def _plan(key: tuple[tuple[str, ...], tuple]) -> Plan:
    rows = rules(key[0])
    return Plan({r.pk: r for r in rows}, engine.compile_rules(engine_rules(rows)))


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
        team = members.get(r.team_id, []) if r.team_id is not None else []
        keys: tuple[engine.Key, ...]
        if r.target == RoutingRule.Target.REP:
            keys = (("rep", r.rep_id),) if r.rep_id else ()
        elif r.target == RoutingRule.Target.TEAM:
            keys = tuple(("rep", uid) for uid in team)
        elif r.target == RoutingRule.Target.PARTNERS:
            keys = tuple(("partner", p.pk) for p in sorted(r.partners.all(), key=lambda p: p.pk))
        elif r.is_hybrid_pool:
            keys = tuple(("rep", uid) for uid in team)  # whom a lead may be offered to
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


def candidates(keys: Iterable[engine.Key], now: datetime | None = None) -> dict[engine.Key, engine.Candidate]:
    """The candidates' state as the engine needs it, read now (call after locking their rows):
    one query for the reps (profile, user and open leads, as plain rows), one for partners."""
    now = now or timezone.now()
    keys = list(keys)
    rep_ids = {k[1] for k in keys if k[0] == "rep"}
    partner_ids = {k[1] for k in keys if k[0] == "partner"}
    result: dict[engine.Key, engine.Candidate] = {}
    if rep_ids:
        rows = sql.rep_rows(sorted(rep_ids))
        missing = rep_ids - {row.user_id for row in rows}  # a rep without a profile routes with the defaults
        if missing:
            open_counts = dict(
                Lead.objects.filter(owner_id__in=missing, stage__in=OPEN_STAGES)
                .values("owner_id")
                .annotate(n=Count("pk"))
                .values_list("owner_id", "n")
            )
            default = RepProfile()
            for user in User.objects.filter(pk__in=missing):
                rows.append(
                    sql.RepRow(
                        user_id=user.pk,
                        first_name=user.first_name,
                        last_name=user.last_name,
                        username=user.get_username(),
                        user_active=user.is_active,
                        open_leads=open_counts.get(user.pk, 0),
                        **{name: getattr(default, name) for name in sql.REP_PROFILE_FIELDS},
                    )
                )
        for row in rows:
            key = ("rep", row.user_id)
            result[key] = engine.Candidate(
                key=key,
                # User.get_full_name(), without a model instance per rep
                name=f"{row.first_name} {row.last_name}".strip() or row.username,
                active=row.user_active and row.active,
                away=row.away_until is not None and row.away_until > now,  # RepProfile.is_away
                open_leads=row.open_leads,
                capacity=row.capacity,
                weight=row.weight,
                seniority=row.seniority,
                territories=_territories(tuple(row.territories)),
                languages=_lower_set(tuple(row.languages)),
                products=_lower_set(tuple(row.products)),
                industries=_lower_set(tuple(row.industries)),
                min_company_size=row.min_company_size,
                max_company_size=row.max_company_size,
            )
    if partner_ids:
        scores = partner_scores()
        for org in PartnerOrganization.objects.filter(pk__in=partner_ids).annotate(
            open_leads=sql.open_leads_count("partner_id")
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


PartnerWeights = Callable[[], dict[int, float]]
# The outcome figures are partners' (feedback, the chase), and partners sits above routing: it hands
# its function over from PartnersConfig.ready(), the way it registers its dashboard entries, so routing
# never imports partners. Without one every partner organisation weighs 1.0.
_partner_weights: PartnerWeights | None = None


def register_partner_weights(weights: PartnerWeights) -> None:
    """Set the function that gives every partner organisation's routing weight by id (the
    "performance-weighted" strategy's; partners registers partners.selectors.partner_weights)."""
    global _partner_weights
    _partner_weights = weights
    caches.partner_scores.clear()


def partner_scores() -> dict[int, float]:
    """Every partner organisation's outcome score from the registered weights (partners: a few
    aggregate queries), computed at most once a minute per process (`routing.caches.partner_scores`)."""
    return caches.partner_scores.get("all", _partner_scores)


def _partner_scores(_key: str) -> dict[int, float]:
    return _partner_weights() if _partner_weights is not None else {}


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
