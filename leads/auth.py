"""Who is asking: the request's user as the `User` it is.

Django and DRF type `request.user` as `User | AnonymousUser`. Every view that passes a person on to a
service or a selector lets only signed-in users in (`login_required`, `sales_required`,
`partner_required`, DRF's `IsAuthenticated` default), so there it is a `User`; `signed_in_user` says
so once, with a check, instead of each call site casting it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

from .models import User


def signed_in_user(request: HttpRequest | Request) -> User:
    """The signed-in user of a view that only signed-in users reach. Anyone else (a view whose guard
    was forgotten) is refused with 403, never served as nobody."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied
    return user
