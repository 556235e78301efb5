from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission

from leads import selectors
from leads.models import Role


class InternalOnly(BasePermission):
    """The internal API is the company's: a partner user gets 404 on every endpoint of it, as if it
    did not exist. Partners have their own API (/api/v1/partner/…) and portal, which show them their
    share of a lead and nothing of the company's notes, calls, attributes, campaign, routing or score.

    Listed first on every internal view (and in DEFAULT_PERMISSION_CLASSES); tests/test_access_matrix.py
    checks every URL pattern, by status and by content."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user.is_authenticated and user.role == Role.PARTNER:
            raise NotFound()
        return True


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
        return request.method in SAFE_METHODS or user.role != Role.PARTNER


class CanCapture(BasePermission):
    message = "Only integration clients and marketing may send leads and events."

    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and selectors.can_capture(request.user)


class HandlesDataRequests(BasePermission):
    """A person's data export and erasure (GDPR): marketing managers (who answer data protection
    requests) and superusers. The lead must also be visible (it is, to both)."""

    message = "Only marketing managers handle a person's data export and erasure."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return user.is_authenticated and selectors.handles_data_requests(user)
