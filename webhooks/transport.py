"""One HTTP POST of one delivery: the body, its headers and signature, and the guarded connection.

The body is the exact bytes signed: `X-LeadPortal-Signature: sha256=<hex HMAC-SHA256 of the raw
body with the subscription's secret>`. Connections go only to an address `webhooks.guard` allowed
(resolved once, checked, then connected to that very address); redirects are not followed; short
timeouts (`WEBHOOK_TIMEOUT`, connect and read, seconds); no proxy from the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from . import guard

USER_AGENT = "LeadPortal-Webhooks/1"
ERROR_MAX = 300  # WebhookDelivery.last_error


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    response_code: int | None
    error: str  # "" when delivered; else why, in a few words


def body_of(*, event_id: str, type: str, created_at: datetime, sent_at: datetime, data: dict[str, Any]) -> bytes:
    """The JSON body, as the bytes that are signed and sent."""
    document = {
        "id": event_id,
        "type": type,
        "created_at": created_at.isoformat(),
        "sent_at": sent_at.isoformat(),
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(*, event_id: str, type: str, sent_at: datetime, secret: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-LeadPortal-Event": type,
        "X-LeadPortal-Event-Id": event_id,
        "X-LeadPortal-Timestamp": str(int(sent_at.timestamp())),
        "X-LeadPortal-Signature": signature(secret, body),
    }


class _Guarded:
    """A urllib3 connection that connects only to addresses the guard allowed for its host: the
    name is resolved and checked once, and the socket is opened to those very addresses (so a DNS
    answer that changes in between cannot slip through). `host` — the Host header, TLS's SNI and
    certificate check — stays the name: only the address of the TCP connection is pinned."""

    _dns_host: str
    port: int

    def _new_conn(self):
        name = self._dns_host
        addresses = guard.checked_addresses(name, self.port)  # raises guard.Refused
        try:
            for number, address in enumerate(addresses, start=1):
                self._dns_host = str(address)
                try:
                    return super()._new_conn()  # type: ignore[misc]
                except NewConnectionError:
                    if number == len(addresses):
                        raise
        finally:
            self._dns_host = name
        raise AssertionError("unreachable")


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no HTTP(S)_PROXY: a proxy would call what the guard refuses
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post(*, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST once; 2xx is delivered, anything else (a refused address, a timeout, a connection
    error, another status) is a failed attempt with its reason."""
    try:
        guard.check_url(url)
        with _session() as session:
            response = session.post(
                url,
                data=body,
                headers=headers,
                timeout=tuple(settings.WEBHOOK_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
            response.close()  # the receiver's answer is not read: only its status counts
    except guard.Refused as refused:
        return Outcome(False, None, _short(f"Refused: {refused}"))
    except requests.Timeout as exc:
        kind = "connecting" if isinstance(exc, requests.ConnectTimeout) else "waiting for the answer"
        return Outcome(False, None, _short(f"Timed out {kind} ({_timeout_text()})"))
    except requests.RequestException as exc:
        return Outcome(False, None, _short(f"Connection failed: {type(exc).__name__}: {_root(exc)}"))
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, "")
    return Outcome(False, response.status_code, _short(f"HTTP {response.status_code} from {url}"))


def _timeout_text() -> str:
    connect, read = settings.WEBHOOK_TIMEOUT
    return f"connect {connect:g} s, read {read:g} s"


def _root(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc)


def _short(text: str) -> str:
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"
