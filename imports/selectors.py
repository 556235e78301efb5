"""Who may import, and which imports they see."""

from __future__ import annotations

from django.db.models import QuerySet

from leads.models import Role, User

from .models import ImportJob, SavedMapping


def can_import(user: User) -> bool:
    """Marketing managers, integration clients (through the API, token scope `capture`) and staff
    without a role (administrators). A sales manager, staff for the admin's tuning screens, exports
    but does not import."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.role in {Role.MARKETING, Role.INTEGRATION} or (user.is_staff and not user.role)


def imports_visible_to(user: User) -> QuerySet[ImportJob]:
    """Staff and marketing see every import; an integration client only its own (another's is a 404)."""
    jobs = ImportJob.objects.select_related("created_by")
    if not can_import(user):
        return jobs.none()
    if user.role != Role.INTEGRATION:
        return jobs
    return jobs.filter(created_by=user)


def mappings_visible_to(user: User) -> QuerySet[SavedMapping]:
    return SavedMapping.objects.all() if can_import(user) else SavedMapping.objects.none()
