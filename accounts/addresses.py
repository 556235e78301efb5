"""The client address that sign-in lockouts and reset limits count by."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, unless LOGIN_TRUSTED_PROXIES = n > 0 proxies of ours sit in front of gunicorn.

    Then the address is the n-th entry from the right of X-Forwarded-For: each of our proxies appends
    the address it received the request from, so those right-most n entries are ours and trustworthy,
    while anything further left came from the client and may be forged. A header with fewer entries
    (the request did not pass our proxies) or an entry that is not an address falls back to REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.LOGIN_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote
