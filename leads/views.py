"""HTML views of the leads app (the rep dashboard comes with its issue) and the health check."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker status for load balancers: 200 when both answer, 503 otherwise."""
    checks = {"database": _database_ok(), "broker": _broker_status()}
    healthy = all(value in ("ok", "eager") for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


def _database_ok() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return f"error: {exc.__class__.__name__}"


def _broker_status() -> str:
    if not settings.REDIS_URL:
        return "eager"  # tasks run in-process; there is no broker to ask
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {exc.__class__.__name__}"
