"""A per-user request limit that costs the same at any rate, and that fails open.

DRF's SimpleRateThrottle keeps a list with one timestamp per request in the cache and inserts at
its front: at 100,000 requests an hour that is a 100,000-item list rewritten on every call (about
6 ms measured). A fixed window needs one counter: add it, increment it.

The counters live in the shared cache (Redis when REDIS_URL is set). A rate limit protects the
portal; it is not worth refusing a lead for. When the cache does not answer, every request is let
through: one warning is logged, and the cache is left alone for CACHE_PAUSE_S, so requests during a
Redis outage do not each wait for a connection timeout.
"""

from __future__ import annotations

import logging
import time

from rest_framework.throttling import UserRateThrottle

log = logging.getLogger("leadportal.throttling")

CACHE_PAUSE_S = 5.0
_cache_down_until = 0.0


def cache_errors() -> tuple[type[BaseException], ...]:
    """What a cache call raises when its server is down or unreachable."""
    errors: list[type[BaseException]] = [OSError]
    try:
        import redis.exceptions

        errors.append(redis.exceptions.RedisError)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return tuple(errors)


class FixedWindowUserRateThrottle(UserRateThrottle):
    # SimpleRateThrottle.__init__ sets these from the rate (parse_rate); its stubs do not declare them.
    num_requests: int
    duration: int

    def allow_request(self, request, view) -> bool:
        global _cache_down_until
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = time.time()
        if time.monotonic() < _cache_down_until:
            return True
        try:
            count = self._count()
        except cache_errors() as exc:
            _cache_down_until = time.monotonic() + CACHE_PAUSE_S
            log.warning(
                "Cache unavailable (%s: %s); API rate limits off for %.0f s", type(exc).__name__, exc, CACHE_PAUSE_S
            )
            return True
        return count <= self.num_requests

    def _count(self) -> int:
        window = int(self.now // self.duration)
        key = f"{self.key}:{window}"
        self.window_end = (window + 1) * self.duration
        self.cache.add(key, 0, timeout=self.duration + 1)
        try:
            return self.cache.incr(key)
        except ValueError:  # expired between add and incr
            self.cache.set(key, 1, timeout=self.duration + 1)
            return 1

    def wait(self) -> float:
        return max(self.window_end - self.now, 0.0)
