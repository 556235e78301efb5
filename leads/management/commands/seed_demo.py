"""Demo data: one user per role and a few hundred realistic leads. Safe to run again (idempotent)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from rest_framework.authtoken.models import Token

from leads import demo, services
from leads.models import Lead, Role, Stage, User
from partners.models import PartnerOrganization

DEMO_PASSWORD = "leadportal"  # noqa: S105 - printed on purpose: demo logins only
LEAD_COUNT = 300
SEED = 2026

# username, first, last, role, staff
USERS = [
    ("admin", "Ada", "Admin", "", True),
    ("marketing", "Maria", "Marketing", Role.MARKETING, True),
    ("salesmanager", "Sam", "Sales", Role.SALES_MANAGER, True),
    ("rep1", "Rita", "Reyes", Role.SALES_REP, False),
    ("rep2", "Rob", "Roth", Role.SALES_REP, False),
    ("rep3", "Ravi", "Rao", Role.SALES_REP, False),
    ("integration", "Web", "Forms", Role.INTEGRATION, False),
]
PARTNERS = [
    ("partner-a", "Pia", "Partner", "Alpine Resellers GmbH", ["AT", "CH"], ["Automation"]),
    ("partner-b", "Paul", "Porter", "Nordic Channel AB", ["SE", "NO", "DK", "FI"], ["Analytics", "Automation"]),
]
STAFF_GROUPS = {
    "Marketing": ["leads.view_lead", "leads.change_lead", "partners.view_partnerorganization"],
    "Sales managers": [
        "leads.view_lead",
        "leads.change_lead",
        "leads.view_user",
        "partners.view_partnerorganization",
        "partners.change_partnerorganization",
    ],
}

FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Lars",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uwe",
    "Vera",
    "Will",
    "Yara",
    "Zoe",
]
LAST = [
    "Andersen",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Keller",
    "Larsen",
    "Moreau",
    "Nowak",
    "Olsen",
    "Peters",
    "Rossi",
    "Schmidt",
    "Smith",
    "Weber",
]
COMPANIES = [  # name, domain, industry, employees, country
    ("Brightwave Logistics", "brightwave.example", "Logistics", 850, "DE"),
    ("Cobalt Health", "cobalthealth.example", "Healthcare", 2400, "US"),
    ("Dunmore Retail", "dunmore.example", "Retail", 320, "GB"),
    ("Edelweiss Bank", "edelweiss-bank.example", "Financial services", 5200, "CH"),
    ("Fjord Energy", "fjordenergy.example", "Energy", 1200, "NO"),
    ("Granite Software", "granitesoft.example", "Software", 140, "US"),
    ("Helix Pharma", "helixpharma.example", "Pharmaceuticals", 3100, "DE"),
    ("Ivory Insurance", "ivoryins.example", "Insurance", 900, "FR"),
    ("Juniper Manufacturing", "junipermfg.example", "Manufacturing", 2700, "AT"),
    ("Kestrel Media", "kestrelmedia.example", "Media", 60, "GB"),
    ("Lumen Telecom", "lumentel.example", "Telecommunications", 8000, "SE"),
    ("Meridian Foods", "meridianfoods.example", "Food and beverage", 450, "NL"),
    ("Nimbus Cloud", "nimbuscloud.example", "Software", 35, "US"),
    ("Orchid Hotels", "orchidhotels.example", "Hospitality", 1500, "ES"),
    ("Polar Robotics", "polarrobotics.example", "Manufacturing", 210, "FI"),
    ("Quarry Construction", "quarrybuild.example", "Construction", 640, "DK"),
    ("Riviera Travel", "rivieratravel.example", "Travel", 95, "IT"),
    ("Summit Consulting", "summitconsult.example", "Professional services", 25, "CH"),
]
TITLES = [
    "CEO",
    "CTO",
    "CIO",
    "VP Marketing",
    "VP Sales",
    "Head of Operations",
    "IT Director",
    "Marketing Manager",
    "Procurement Lead",
    "Software Engineer",
    "Operations Analyst",
    "Student",
    "Office Assistant",
]
PRODUCTS = ["Analytics", "Automation", "Integrations"]
SOURCES = ["web_form", "webinar", "trade_show", "content_download", "referral", "paid_search"]
CAMPAIGNS = ["spring-launch", "dach-roadshow", "analytics-webinar", "q3-nurture", ""]
LANGUAGE_BY_COUNTRY = {
    "DE": "de",
    "AT": "de",
    "CH": "de",
    "FR": "fr",
    "ES": "es",
    "IT": "it",
    "NL": "nl",
    "SE": "sv",
    "NO": "nb",
    "DK": "da",
    "FI": "fi",
}
EVENTS = [
    ("page_view", {"url": "/pricing"}),
    ("page_view", {"url": "/product/tour"}),
    ("page_view", {"url": "/blog"}),
    ("email_open", {"campaign": "q3-nurture"}),
    ("email_click", {"campaign": "q3-nurture"}),
    ("download", {"asset": "whitepaper-lead-scoring"}),
    ("webinar", {"title": "Analytics in practice"}),
    ("form_submit", {"form": "contact"}),
    ("demo_request", {"form": "demo"}),
]
# Weighted mix of target stages and the path of moves that reaches each.
STAGE_MIX = [
    (Stage.NEW, 30),
    (Stage.MAL, 110),
    (Stage.MQL, 45),
    (Stage.SAL, 35),
    (Stage.SQL, 25),
    (Stage.WON, 15),
    (Stage.LOST, 20),
    (Stage.DISQUALIFIED, 20),
]
PATHS = {
    Stage.NEW: [],
    Stage.MAL: [Stage.MAL],
    Stage.MQL: [Stage.MAL, Stage.MQL],
    Stage.SAL: [Stage.MAL, Stage.MQL, Stage.SAL],
    Stage.SQL: [Stage.MAL, Stage.MQL, Stage.SAL, Stage.SQL],
    Stage.WON: [Stage.MAL, Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON],
    Stage.LOST: [Stage.MAL, Stage.MQL, Stage.SAL, Stage.LOST],
    Stage.DISQUALIFIED: [Stage.DISQUALIFIED],
}


class Command(BaseCommand):
    help = "Create demo users (one per role), two partner organisations and a few hundred leads. Idempotent."

    def handle(self, *args, **options) -> None:
        users = self._users()
        created = self._leads(users)
        autodiscover_modules("demo")
        for seed in demo.seeders():
            seed(self.stdout.write)
        token = Token.objects.get_or_create(user=users["integration"])[0]
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {Lead.objects.count()} leads ({created} new)."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, _first, _last, role, _staff in USERS:
            self.stdout.write(f"  {username:<13} {Role(role).label if role else 'Superuser'}")
        for username, _first, _last, org, _terr, _prod in PARTNERS:
            self.stdout.write(f"  {username:<13} Channel partner ({org})")
        self.stdout.write(f"API token of the integration user (capture, events): {token.key}")
        reader = Token.objects.get_or_create(user=users["marketing"])[0]
        self.stdout.write(f"API token of the marketing manager (reads every lead): {reader.key}")

    @transaction.atomic
    def _users(self) -> dict[str, User]:
        groups = {}
        for name, perms in STAFF_GROUPS.items():
            group, _ = Group.objects.get_or_create(name=name)
            for perm in perms:
                app_label, codename = perm.split(".")
                group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
            groups[name] = group
        users: dict[str, User] = {}
        for username, first, last, role, staff in USERS:
            users[username] = self._user(username, first, last, role, is_staff=staff, is_superuser=username == "admin")
        users["marketing"].groups.add(groups["Marketing"])
        users["salesmanager"].groups.add(groups["Sales managers"])
        for username, first, last, org_name, territories, products in PARTNERS:
            org, _ = PartnerOrganization.objects.get_or_create(
                name=org_name, defaults={"territories": territories, "products": products}
            )
            users[username] = self._user(username, first, last, Role.PARTNER, partner_organization=org)
        return users

    def _user(self, username: str, first: str, last: str, role: str, **extra) -> User:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@leadportal.example",
                "role": role,
                **extra,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        return user

    def _leads(self, users: dict[str, User]) -> int:
        rng = random.Random(SEED)
        now = timezone.now()
        reps = [users["rep1"], users["rep2"], users["rep3"]]
        partner_orgs = list(PartnerOrganization.objects.order_by("name"))
        stages = [stage for stage, weight in STAGE_MIX for _ in range(weight)]
        existing = set(Lead.objects.values_list("email", flat=True))
        created = 0
        for n in range(LEAD_COUNT):
            # Draw every value even for existing leads, so a re-run sees the same sequence.
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company, domain, industry, employees, country = rng.choice(COMPANIES)
            email = f"{first}.{last}.{n}@{domain}".lower()
            target = rng.choice(stages)
            title = rng.choice(TITLES)
            product, source, campaign = rng.choice(PRODUCTS), rng.choice(SOURCES), rng.choice(CAMPAIGNS)
            events = [rng.choice(EVENTS) for _ in range(rng.randint(2, 12))]
            ages = [rng.uniform(0, 90) for _ in events]
            owner_pick, partner_pick = rng.choice(reps), rng.random()
            handed_over = now - timedelta(days=rng.uniform(1, 30))
            deal_value = rng.randint(5, 120) * 1000
            phone = f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(100000, 999999)}"
            if email in existing:
                continue
            lead, _ = services.lead_capture(
                data={
                    "email": email,
                    "first_name": first,
                    "last_name": last,
                    "company": company,
                    "job_title": title,
                    "industry": industry,
                    "company_size": employees,
                    "country": country,
                    "language": LANGUAGE_BY_COUNTRY.get(country, "en"),
                    "product_interest": product,
                    "campaign": campaign,
                    "utm_source": "demo",
                    "utm_campaign": campaign,
                    "consent_status": "confirmed" if target != Stage.NEW else "pending",
                    "phone": phone,
                },
                source=source,
            )
            services.events_ingest(
                events=[
                    {
                        "lead_id": lead.pk,
                        "type": kind,
                        "properties": props,
                        "source": "demo",
                        "external_id": f"demo-{n}-{i}",
                        "occurred_at": now - timedelta(days=age),
                    }
                    for i, ((kind, props), age) in enumerate(zip(events, ages, strict=True))
                ]
            )
            for to_stage in PATHS[target]:
                if lead.stage == to_stage:  # a confirmed opt-in already made it marketing's
                    continue
                reason = "Recycled after no response" if to_stage == Stage.MAL and lead.stage == Stage.SAL else ""
                actor = None if to_stage in (Stage.MAL, Stage.MQL) else owner_pick
                lead = services.lead_transition(lead=lead, to_stage=to_stage, reason=reason, actor=actor)
            if target in (Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST):
                # Ownership placeholder until routing seeds real assignments.
                owned = {"marketing_suppressed": True, "handed_over_at": handed_over}
                if target == Stage.WON:
                    owned |= {"deal_value": deal_value, "deal_currency": "EUR", "closed_at": now}
                if target == Stage.LOST:
                    owned |= {"lost_reason": "no_budget", "closed_at": now}
                if partner_orgs and partner_pick < 0.2 and country in {"AT", "CH", "SE", "NO", "DK", "FI"}:
                    partner = partner_orgs[0 if country in {"AT", "CH"} else 1]
                    Lead.objects.filter(pk=lead.pk).update(partner=partner, **owned)
                else:
                    Lead.objects.filter(pk=lead.pk).update(owner=owner_pick, **owned)
            created += 1
        return created
