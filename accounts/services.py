"""Password-reset e-mail limits: at most PASSWORD_RESET_PER_EMAIL links an hour to one e-mail address
and PASSWORD_RESET_PER_ADDRESS requests an hour from one client address.

Counted in the database (PasswordResetRequest), not the cache: the cache is Redis in production and
Redis may be down. Failing open then would let anyone mail-bomb an account during an outage, and
failing closed would lock everyone out of resets; the database is needed for the reset anyway.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import PasswordResetRequest

WINDOW = timedelta(hours=1)


class ResetVerdict(enum.Enum):
    MAIL = "mail"  # under both limits: the form sends the link (if an account has the address)
    QUIET = "quiet"  # this e-mail address had its links for the hour: the same answer, no e-mail
    TOO_MANY = "too_many"  # this client asked too often: 429, it may know it is limited


def password_reset_admit(*, email: str, ip_address: str | None) -> ResetVerdict:
    """Decide whether a reset request for `email` from `ip_address` may send an e-mail, and count it if so.

    Only admitted requests are stored, so a client past its limit writes nothing and an account gets
    at most PASSWORD_RESET_PER_EMAIL rows an hour. The answer for QUIET must look exactly like MAIL's
    to the client: whether an account has the address is never revealed.
    """
    email = email.strip().lower()
    now = timezone.now()
    since = now - WINDOW
    PasswordResetRequest.objects.filter(requested_at__lt=since).delete()
    with transaction.atomic():
        # Parallel requests for one account are counted one after another: the lock on its user row
        # (PostgreSQL) turns count-then-insert into a queue, so 21 at once still send exactly the limit.
        # An address no account has sends nothing whatever the count, so it needs no lock.
        list(get_user_model().objects.select_for_update().filter(email__iexact=email).values_list("pk", flat=True))
        recent = PasswordResetRequest.objects.filter(requested_at__gte=since)
        if ip_address and recent.filter(ip_address=ip_address).count() >= settings.PASSWORD_RESET_PER_ADDRESS:
            return ResetVerdict.TOO_MANY
        if recent.filter(email=email).count() >= settings.PASSWORD_RESET_PER_EMAIL:
            return ResetVerdict.QUIET
        PasswordResetRequest.objects.create(email=email, ip_address=ip_address, requested_at=now)
    return ResetVerdict.MAIL
