from rest_framework.permissions import SAFE_METHODS, BasePermission

from leads import selectors
from leads.models import Role


class LeadAccess(BasePermission):
    """Reading needs a role that may see leads (the queryset then scopes it); capturing needs an
    integration client or marketing; changing a lead needs an internal role (not a partner)."""

    message = "Your role may not do this with leads."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user.is_authenticated:
            return False
        if view.action == "create":
            return selectors.can_capture(user)
        if not selectors.can_read_leads(user):
            return False
        if request.method in SAFE_METHODS:
            return True
        return user.role != Role.PARTNER


class CanCapture(BasePermission):
    message = "Only integration clients and marketing may send leads and events."

    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and selectors.can_capture(request.user)
