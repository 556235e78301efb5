"""Demo routing: one inside-sales team, accounts, and rules that exercise every strategy."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from leads.demo import seeder
from leads.models import Lead, Stage, User
from partners.models import PartnerOrganization

from . import services
from .models import Account, Assignment, RepProfile, RoutingRule, RuleCondition, Seniority, Team

ACCOUNTS = [("granitesoft.example", "Granite Software", "rep3"), ("lumentel.example", "Lumen Telecom", "rep3")]


@seeder(order=5)  # before scoring activates its model, so the MQLs it makes are routed live
def seed_routing(say: Callable[[str], None]) -> None:
    managers, _ = Group.objects.get_or_create(name="Sales managers")
    managers.permissions.add(*Permission.objects.filter(content_type__app_label="routing"))
    if RoutingRule.objects.exists():
        return
    users = {u.username: u for u in User.objects.filter(username__in=["salesmanager", "rep1", "rep2", "rep3"])}
    alpine = PartnerOrganization.objects.get(name="Alpine Resellers GmbH")
    nordic = PartnerOrganization.objects.get(name="Nordic Channel AB")
    with transaction.atomic():
        team = Team.objects.create(name="Inside sales", manager=users["salesmanager"])
        profiles = {
            "rep1": {"territories": ["DACH"], "languages": ["de", "en"], "seniority": Seniority.MID},
            "rep2": {"territories": [], "languages": ["en", "fr"], "seniority": Seniority.SENIOR, "weight": 2},
            "rep3": {"territories": ["UKI", "NA"], "languages": ["en"], "seniority": Seniority.MID},
        }
        for username, values in profiles.items():
            RepProfile.objects.create(user=users[username], team=team, capacity=40, **values)
        for domain, name, owner in ACCOUNTS:
            Account.objects.create(domain=domain, name=name, owner=users[owner], existing_customer=True)
        rules = [
            (
                10,
                "Existing customers → account owner",
                {"target": "team", "team": team, "strategy": "account_owner"},
                [],
            ),
            (
                20,
                "Nordics → Nordic Channel",
                {"target": "partners", "strategy": "least_loaded"},
                [("country", "in", "SE, NO, DK, FI")],
            ),
            (
                30,
                "Grade A → senior rep",
                {"target": "rep", "rep": users["rep2"], "strategy": "direct"},
                [("grade", "eq", "A")],
            ),
            (
                40,
                "Austria and Switzerland, small → Alpine Resellers",
                {"target": "partners", "strategy": "direct"},
                [("country", "in", "AT, CH"), ("company_size", "lte", "3000")],
            ),
            (
                50,
                "DACH → territory rep",
                {"target": "rep", "rep": users["rep1"], "strategy": "direct"},
                [("country", "in", "DE, AT, CH")],
            ),
            (
                60,
                "Integrations interest → shark-tank pool",
                {"target": "pool", "team": team, "strategy": "pool", "pool_mode": "shark_tank"},
                [("product_interest", "eq", "Integrations")],
            ),
            (
                90,
                "Everyone else → inside sales round robin",
                {"target": "team", "team": team, "strategy": "weighted_round_robin", "on_reject": "reroute"},
                [],
            ),
        ]
        for priority, name, fields, conditions in rules:
            rule = RoutingRule.objects.create(priority=priority, name=name, sla_minutes=120, **fields)
            for field, operator, value in conditions:
                RuleCondition.objects.create(rule=rule, field=field, operator=operator, value=value)
            if "Nordic" in name:
                rule.partners.set([nordic])
            if "Alpine" in name:
                rule.partners.set([alpine])
    # MQLs that waited for these rules (the seeded ones, and any made before the rules existed).
    waiting = Lead.objects.filter(stage=Stage.MQL).exclude(
        assignments__status__in=[Assignment.Status.ACTIVE, Assignment.Status.POOLED]
    )
    routed = 0
    for lead_id in waiting.values_list("pk", flat=True):
        routed += services.lead_route(lead_id=lead_id) is not None
    say(f"Routing: team 'Inside sales', {len(rules)} rules; {routed} waiting MQLs routed.")
