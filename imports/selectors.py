"""Who may import, and which imports they see."""

from __future__ import annotations

from django.db.models import QuerySet

from leads.models import Role, User

from .models import ImportJob, SavedMapping


def can_import(user: User) -> bool:
    """Staff, marketing managers and integration clients (through the API, token scope `capture`)."""
    return user.is_authenticated and (
        user.is_superuser or user.is_staff or user.role in {Role.MARKETING, Role.INTEGRATION}
    )


def imports_visible_to(user: User) -> QuerySet[ImportJob]:
    """Staff and marketing see every import; an integration client only its own (another's is a 404)."""
    jobs = ImportJob.objects.select_related("created_by")
    if not can_import(user):
        return jobs.none()
    if user.is_superuser or user.is_staff or user.role == Role.MARKETING:
        return jobs
    return jobs.filter(created_by=user)


def mappings_visible_to(user: User) -> QuerySet[SavedMapping]:
    return SavedMapping.objects.all() if can_import(user) else SavedMapping.objects.none()
