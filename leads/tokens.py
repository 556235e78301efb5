"""API tokens: created with a key shown once, stored as its SHA-256, checked on every API call.

Every write to ApiToken goes through here: the admin, `manage.py token_create`, seed_demo, the
password-change hook on User.save and the authentication class (last used).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import ApiToken, Role, Scope, TokenRevokedReason, User

PREFIX_LENGTH = 8
# last_used_at is written at most this often per token: the capture hot path pays one UPDATE a
# minute per client, not one per request.
TOUCH_EVERY = timedelta(minutes=1)

# What a token may be used for, by its user's role; a new token gets all of them unless told less.
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    Role.INTEGRATION: (Scope.CAPTURE,),
    Role.MARKETING: (Scope.CAPTURE, Scope.READ, Scope.WORK, Scope.WEBHOOKS),
    Role.SALES_MANAGER: (Scope.READ, Scope.WORK),
    Role.SALES_REP: (Scope.READ, Scope.WORK),
    Role.PARTNER: (Scope.PARTNER,),
}
STAFF_SCOPES = (Scope.CAPTURE, Scope.READ, Scope.WORK, Scope.WEBHOOKS)  # staff and superusers without a role


class TokenRefused(Exception):
    """The key is unknown, revoked or expired, or its user is inactive; `message` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def scopes_allowed(user: User) -> tuple[str, ...]:
    """The scopes a token of this user may have, in Scope's order."""
    if user.role in ROLE_SCOPES:
        return ROLE_SCOPES[user.role]
    return STAFF_SCOPES if user.is_staff or user.is_superuser else ()


def scopes_validate(*, user: User, scopes: Iterable[str] | None) -> list[str]:
    """The scopes asked for (None: all the user's role allows), in Scope's order; a ValidationError
    names those the role does not allow."""
    allowed = scopes_allowed(user)
    if not allowed:
        raise ValidationError(f"{user.get_username()} has no role that may use the API.", code="no_scopes")
    wanted = set(allowed if scopes is None else scopes)
    if not wanted:
        raise ValidationError("A token needs at least one scope.", code="no_scopes")
    unknown = sorted(wanted - set(Scope.values))
    if unknown:
        raise ValidationError(f"Unknown scope(s): {', '.join(unknown)}.", code="unknown_scope")
    refused = [s for s in Scope.values if s in wanted and s not in allowed]
    if refused:
        role = Role(user.role).label if user.role else "staff"
        raise ValidationError(
            f"A token of {user.get_username()} ({role}) may have {', '.join(allowed)}; not {', '.join(refused)}.",
            code="scope_not_allowed",
        )
    return [s for s in Scope.values if s in wanted]


def default_days() -> int:
    return settings.API_TOKEN_DEFAULT_DAYS


def token_create(
    *, user: User, name: str, scopes: Iterable[str] | None = None, days: int | None = None
) -> tuple[ApiToken, str]:
    """A new token and its key. The key is returned this once and never stored: show it, then forget it.

    `scopes` None gives all the user's role allows; `days` None the default expiry
    (API_TOKEN_DEFAULT_DAYS), 0 no expiry.
    """
    checked = scopes_validate(user=user, scopes=scopes)
    days = default_days() if days is None else days
    if days < 0:
        raise ValidationError("The number of days may not be negative.", code="days")
    key = secrets.token_urlsafe(30)  # 40 characters
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:PREFIX_LENGTH],
        digest=key_digest(key),
        scopes=" ".join(checked),
        expires_at=timezone.now() + timedelta(days=days) if days else None,
    )
    return token, key


def token_authenticate(*, key: str, now: datetime | None = None) -> ApiToken:
    """The live token with this key (its user loaded), its last use recorded; TokenRefused otherwise."""
    now = now or timezone.now()
    digest = key_digest(key)
    candidates = ApiToken.objects.select_related("user").filter(prefix=key[:PREFIX_LENGTH])
    token = next((t for t in candidates if hmac.compare_digest(t.digest, digest)), None)
    if token is None:
        raise TokenRefused("Invalid token.")
    if token.revoked_at is not None:
        why = TokenRevokedReason(token.revoked_reason).label if token.revoked_reason else "revoked"
        raise TokenRefused(f"The token has been revoked ({why[0].lower()}{why[1:]}).")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused("The token has expired.")
    if not token.user.is_active:
        raise TokenRefused("User inactive or deleted.")
    token_touch(token=token, now=now)
    return token


def token_touch(*, token: ApiToken, now: datetime) -> None:
    """Record a use, at most once per TOUCH_EVERY: a conditional UPDATE, so parallel requests of
    one client write it once."""
    stale = now - TOUCH_EVERY
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=token.pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)).update(
        last_used_at=now
    )
    token.last_used_at = now


def token_revoke(*, tokens: QuerySet[ApiToken], reason: str) -> int:
    """Revoke these tokens (those not revoked yet); how many were."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_reason=reason)


def token_revoke_for_user(*, user: User, reason: str) -> int:
    return token_revoke(tokens=ApiToken.objects.filter(user=user), reason=reason)
