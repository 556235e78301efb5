"""Per-token scopes: a view says which scope it needs, TokenHasScope refuses a token without it.

Modelled on django-oauth-toolkit's TokenHasScope. A view names its scope in `required_scope`: a
scope, or a dict by viewset action (e.g. {"create": "capture"}) whose missing actions fall back
to the rule by method. Without one, reading (GET, HEAD, OPTIONS) needs `read` and anything else
`work`, so a new internal view is covered. Listed last on a view: the role checks before it decide
first (a partner on an internal endpoint stays a 404), the scope only narrows what a token may do.
A session (the browsable API in a browser) is not a token and is not limited by scopes.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from leads.models import ApiToken, Scope

VERBS: dict[str, str] = {  # keyed by Scope; required_scope() answers its value
    Scope.CAPTURE: "capture leads or events",
    Scope.READ: "read the internal API",
    Scope.WORK: "work on leads",
    Scope.PARTNER: "use the partner API",
    Scope.WEBHOOKS: "manage webhooks",
}


def required_scope(request, view) -> str:
    wanted = getattr(view, "required_scope", None)
    if isinstance(wanted, dict):
        wanted = wanted.get(getattr(view, "action", None))
    if wanted:
        return wanted
    return Scope.READ if request.method in SAFE_METHODS else Scope.WORK


class TokenHasScope(BasePermission):
    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        if getattr(view, request.method.lower(), None) is None:
            return True  # the view has no such method: its 405 says more than a scope would
        scope = required_scope(request, view)
        if scope in token.scope_list:
            return True
        self.message = f"This token may not {VERBS[scope]} (scope {scope}); its scopes: {', '.join(token.scope_list)}."
        return False
