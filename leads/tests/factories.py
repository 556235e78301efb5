from __future__ import annotations

from collections.abc import Iterable

import factory
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from leads.models import Activity, ActivityType, Lead, PartnerOrganization, User


class PartnerOrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerOrganization

    name = factory.Sequence(lambda n: f"Partner {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    email = factory.Sequence(lambda n: f"lead{n}@acme-{n % 7}.example")
    first_name = "Lena"
    last_name = factory.Sequence(lambda n: f"Lead{n}")
    company = "Acme"
    company_domain = factory.LazyAttribute(lambda lead: lead.email.rpartition("@")[2])
    country = "DE"


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    lead = factory.SubFactory(LeadFactory)
    type = ActivityType.PAGE_VIEW
    occurred_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyFunction(lambda: {"url": "/pricing"})


def client_for(user, *, apps: Iterable[str] = ()) -> Client:
    """A Django test client signed in as `user` (pages; the API has the `api` fixture), who is first
    given every permission of these `apps` (the admin's screens)."""
    if apps:
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=apps))
    client = Client()
    client.force_login(user)
    return client
