"""Demo data: one user per role and a few hundred realistic leads. Safe to run again (idempotent)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from leads import consent, demo, services, tokens
from leads.models import ApiToken, Lead, PartnerOrganization, Role, Scope, User

DEMO_PASSWORD = "leadportal"  # noqa: S105 - printed on purpose: demo logins only
LEAD_COUNT = 300
DEMO_TOKEN_NAME = "Demo (seed_demo)"  # noqa: S105 - a label, not a secret
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
    "Marketing": ["leads.view_lead", "leads.change_lead", "leads.view_partnerorganization"],
    "Sales managers": [
        "leads.view_lead",
        "leads.change_lead",
        "leads.view_user",
        "leads.view_partnerorganization",
        "leads.change_partnerorganization",
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
COMPANIES = [  # name, domain, industry, employees, country, share of the leads (most come from the core markets)
    ("Brightwave Logistics", "brightwave.example", "Logistics", 850, "DE", 3),
    ("Cobalt Health", "cobalthealth.example", "Healthcare", 2400, "US", 3),
    ("Dunmore Retail", "dunmore.example", "Retail", 320, "GB", 3),
    ("Edelweiss Bank", "edelweiss-bank.example", "Financial services", 5200, "CH", 2),
    ("Fjord Energy", "fjordenergy.example", "Energy", 1200, "NO", 1),
    ("Granite Software", "granitesoft.example", "Software", 140, "US", 1),
    ("Helix Pharma", "helixpharma.example", "Pharmaceuticals", 3100, "DE", 3),
    ("Ivory Insurance", "ivoryins.example", "Insurance", 900, "FR", 2),
    ("Juniper Manufacturing", "junipermfg.example", "Manufacturing", 2700, "AT", 1),
    ("Kestrel Media", "kestrelmedia.example", "Media", 60, "GB", 2),
    ("Lumen Telecom", "lumentel.example", "Telecommunications", 8000, "SE", 1),
    ("Meridian Foods", "meridianfoods.example", "Food and beverage", 450, "NL", 2),
    ("Nimbus Cloud", "nimbuscloud.example", "Software", 35, "US", 3),
    ("Orchid Hotels", "orchidhotels.example", "Hospitality", 1500, "ES", 2),
    ("Polar Robotics", "polarrobotics.example", "Manufacturing", 210, "FI", 1),
    ("Quarry Construction", "quarrybuild.example", "Construction", 640, "DK", 1),
    ("Riviera Travel", "rivieratravel.example", "Travel", 95, "IT", 2),
    ("Summit Consulting", "summitconsult.example", "Professional services", 25, "CH", 2),
]
# Leads the demo scoring model's exclusion rules disqualify: a competitor, the press, an applicant.
COMPETITOR = ("RivalSoft", "rivalsoft.example", "Software", 400, "DE", 0)
EXCLUDED_TITLES = ["Journalist", "Job applicant"]
SENIOR_TITLES = ["CEO", "CTO", "CIO", "VP Marketing", "VP Sales", "Head of Operations", "IT Director"]
TITLES = [
    *SENIOR_TITLES,
    "Marketing Manager",
    "Procurement Lead",
    "Software Engineer",
    "Operations Analyst",
    "Student",
    "Office Assistant",
]
FREE_MAIL = ["gmail.com", "outlook.com", "gmx.de"]
PRODUCTS = [("Analytics", 4), ("Automation", 4), ("Integrations", 2)]
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
# What a lead did, by how interested it is. The stage follows from the data: the scoring model
# makes the hot ones MQL (and routing hands them to sales), the others stay with marketing.
HOT_EVENTS = [  # type, properties, age in days: a demo request, pricing, a contact form, a webinar
    ("demo_request", {"form": "demo"}, (0.2, 8)),
    ("form_submit", {"form": "contact"}, (0.2, 10)),
    ("page_view", {"url": "/pricing"}, (0.1, 10)),
    ("page_view", {"url": "/pricing"}, (0.1, 10)),
    ("webinar", {"title": "Analytics in practice"}, (1, 20)),
]
ANY_EVENTS = [
    ("page_view", {"url": "/pricing"}),
    ("page_view", {"url": "/product/tour"}),
    ("page_view", {"url": "/blog"}),
    ("email_open", {"campaign": "q3-nurture"}),
    ("email_click", {"campaign": "q3-nurture"}),
    ("download", {"asset": "whitepaper-lead-scoring"}),
    ("webinar", {"title": "Analytics in practice"}),
    ("form_submit", {"form": "contact"}),
]
BROWSING = [  # what a lead that is not (yet) interested does, weeks ago
    ("page_view", {"url": "/product/tour"}),
    ("page_view", {"url": "/blog"}),
    ("email_open", {"campaign": "q3-nurture"}),
    ("email_click", {"campaign": "q3-nurture"}),
]
WHITEPAPER = ("download", {"asset": "whitepaper-lead-scoring"})
HOT, WARM, NEW, EXCLUDED = "hot", "warm", "new", "excluded"
KINDS = [(HOT, 136), (WARM, 106), (NEW, 34), (EXCLUDED, 24)]


class Command(BaseCommand):
    help = "Create demo users (one per role), two partner organisations and a few hundred leads. Idempotent."
    _password: str | None = None

    def handle(self, *args, **options) -> None:
        users = self._users()
        created = self._leads()
        # Routing's rules, scoring's model (whose first run scores every lead and makes the hot ones MQL,
        # routed as they commit), the stories of the leads handed over, the partners' feedback.
        autodiscover_modules("demo")
        for seed in demo.seeders():
            seed(self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {Lead.objects.count()} leads ({created} new)."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, _first, _last, role, _staff in USERS:
            self.stdout.write(f"  {username:<13} {Role(role).label if role else 'Superuser'}")
        for username, _first, _last, org, _terr, _prod in PARTNERS:
            self.stdout.write(f"  {username:<13} Channel partner ({org})")
        self._token(users["integration"], "the integration user (capture, events)", [Scope.CAPTURE])
        self._token(users["marketing"], "the marketing manager (reads every lead)", [Scope.READ])

    def _token(self, user: User, who: str, scopes: list[str]) -> None:
        """A demo token, its key printed when it is made: only its hash is kept, so a later run
        cannot print it again and says how to make another."""
        live = ApiToken.objects.filter(user=user, name=DEMO_TOKEN_NAME, revoked_at__isnull=True).exclude(
            expires_at__lte=timezone.now()
        )
        if earlier := live.first():
            self.stdout.write(
                f"API token of {who}: made by an earlier run ({earlier.prefix}…), its key shown then; a new one: "
                f"python manage.py token_create --user {user.username} --scopes {','.join(scopes)} --name Demo"
            )
            return
        _token, key = tokens.token_create(user=user, name=DEMO_TOKEN_NAME, scopes=scopes)
        self.stdout.write(f"API token of {who}: {key}")

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
            # Hashed once for all demo users (half a second each with the default hasher): the password
            # is printed on screen anyway.
            if self._password is None:
                self._password = make_password(DEMO_PASSWORD)
            user.password = self._password
            user.save(update_fields=["password"])
        return user

    @transaction.atomic  # loaded as one import: one commit instead of six hundred
    def _leads(self) -> int:
        """The leads and what they did. Their stage is what capture (a confirmed opt-in makes a lead
        marketing's) and, later, scoring and routing make of it: nothing here sets it."""
        rng = random.Random(SEED)
        now = timezone.now()
        existing = set(Lead.objects.values_list("email", flat=True))
        kinds = [kind for kind, weight in KINDS for _ in range(weight)]
        companies = [company for company in COMPANIES for _ in range(company[-1])]
        products = [product for product, weight in PRODUCTS for _ in range(weight)]
        created = 0
        for n in range(LEAD_COUNT):
            # Draw every value even for existing leads, so a re-run sees the same sequence.
            kind = rng.choice(kinds)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company, domain, industry, employees, country, _ = rng.choice(companies)
            title = rng.choice(SENIOR_TITLES if kind == HOT else TITLES)
            if kind == EXCLUDED:
                if rng.random() < 0.5:
                    company, domain, industry, employees, country, _ = COMPETITOR
                else:
                    title = rng.choice(EXCLUDED_TITLES)
            if kind == WARM and rng.random() < 0.15:
                domain = rng.choice(FREE_MAIL)  # the free-mail penalty
            product, source, campaign = rng.choice(products), rng.choice(SOURCES), rng.choice(CAMPAIGNS)
            events = self._events(rng, kind)
            phone = f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(100000, 999999)}"
            email = f"{first}.{last}.{n}@{domain}".lower()
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
                    "consent_status": "pending",
                    "phone": phone,
                },
                source=source,
            )
            if kind != NEW:  # as if the person had clicked the confirmation e-mail's link
                consent.consent_confirm(token=consent.token_for(lead, consent.CONFIRM), source="demo")
            services.events_ingest(
                events=[
                    {
                        "lead_id": lead.pk,
                        "type": event_type,
                        "properties": props,
                        "source": "demo",
                        "external_id": f"demo-{n}-{i}",
                        "occurred_at": now - timedelta(days=age),
                    }
                    for i, (event_type, props, age) in enumerate(events)
                ]
            )
            created += 1
        return created

    @staticmethod
    def _events(rng: random.Random, kind: str) -> list[tuple[str, dict, float]]:
        if kind == HOT:
            events = [(t, props, rng.uniform(*ages)) for t, props, ages in HOT_EVENTS]
            return events + [(*rng.choice(ANY_EVENTS), rng.uniform(0, 90)) for _ in range(rng.randint(1, 5))]
        # Browsing weeks ago, a whitepaper at most: well below the MQL threshold whatever the fit.
        events = [(*rng.choice(BROWSING), rng.uniform(20, 120)) for _ in range(rng.randint(1, 5))]
        if rng.random() < 0.3:
            events.append((*WHITEPAPER, rng.uniform(20, 120)))
        return events
