"""Reads that several callers need. Scoping by role lives here, once."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django_countries.fields import Country

from .conditions import LEAD_FIELDS
from .models import Activity, Lead, Role, User

# Roles that see every lead of the company.
ALL_LEADS_ROLES = {Role.MARKETING, Role.SALES_MANAGER}


def can_see_all_leads(user: User) -> bool:
    return user.is_superuser or user.is_staff or user.role in ALL_LEADS_ROLES


def can_read_leads(user: User) -> bool:
    """Who may read the internal API and dashboard's leads. Partners are not among them: they read
    their organisation's leads through partners.selectors, field by field what is theirs."""
    return can_see_all_leads(user) or user.role == Role.SALES_REP


def can_capture(user: User) -> bool:
    """Integration clients (web forms, marketing automation, CRMs) and marketing may feed leads in."""
    return user.is_superuser or user.is_staff or user.role in {Role.INTEGRATION, Role.MARKETING}


def handles_data_requests(user: User) -> bool:
    """Who may export or erase a person's data (leads.erasure): marketing managers and superusers."""
    return user.is_superuser or user.role == Role.MARKETING


def lead_visible_to(user: User) -> QuerySet[Lead]:
    """The leads this user may see inside the company: everything for marketing, sales managers and
    staff; a rep's own; nothing for anyone else (so another's lead is a 404). Partners see theirs
    through partners.selectors.partner_leads, never through this."""
    leads = Lead.objects.all()
    if can_see_all_leads(user):
        return leads
    if user.role == Role.SALES_REP:
        return leads.filter(owner=user)
    return leads.none()


def lead_timeline(lead: Lead) -> QuerySet[Activity]:
    """The lead's activities, newest first."""
    return lead.activities.select_related("created_by").order_by("-occurred_at", "-pk")


def lead_facts(lead: Lead) -> dict[str, Any]:
    """The lead as plain data for the engines: every field a condition may look at."""
    facts = {name: getattr(lead, name) for name in LEAD_FIELDS}
    # The django plugin types a CountryField as the CharField it extends (str); it holds a Country.
    facts["country"] = cast(Country, lead.country).code if lead.country else ""
    return facts
