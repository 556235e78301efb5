"""Per-process caches: one kind of cache, one registry, one `clear()`.

Every value a process keeps between requests or tasks (a rule set, an engine model, compiled SQL, a
few seconds of candidates' state) is a `ProcessCache` declared in its app's `caches.py`
(`routing/caches.py`, `scoring/caches.py`; `leads` sits below them and names none of their models).
Each states its rule in one place:

- the key carries a version read from the database (a rule set's fingerprint, a model's
  `(pk, updated_at)`): another process's change, which no signal of ours reaches, gives a new key;
- or a `ttl`: state that changes with every lead (open leads, partner outcomes) is reused for a
  few seconds at most;
- and `clear_on_change(cache, Model, …)` empties it on the models' post_save / post_delete (and
  m2m_changed of a through table) in this process, as `django.contrib.sites` does with
  `SITE_CACHE`: an admin save is seen by the next call in the same process without waiting.

`clear()` empties every registered cache (the test suite calls it between tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save

_registry: dict[str, ProcessCache] = {}


class ProcessCache:
    """A dict of computed values kept by this process, at most `max_entries` (emptied when full:
    the keys are few and the values cheap to rebuild) and, with `ttl`, each for `ttl` seconds."""

    def __init__(self, name: str, *, max_entries: int = 8, ttl: float | None = None) -> None:
        if name in _registry:
            raise ValueError(f"A process cache named {name!r} exists already.")
        self.name = name
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        _registry[name] = self

    def get(self, key: Hashable, build: Callable[[Any], Any] | None = None) -> Any:
        """The value kept for `key`; if there is none (or it expired): `build(key)`, kept and
        returned, or None without `build`."""
        entry = self._entries.get(key)
        if entry is not None and (self.ttl is None or time.monotonic() - entry[0] <= self.ttl):
            return entry[1]
        if build is None:
            return None
        value = build(key)
        self.set(key, value)
        return value

    def set(self, key: Hashable, value: Any) -> None:
        if key not in self._entries and len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), value)

    def clear(self, *args: Any, **kwargs: Any) -> None:
        """Forget every value (takes and ignores a signal's arguments, so it can be a receiver)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<ProcessCache {self.name}: {len(self)} entries>"


def clear_on_change(cache: ProcessCache, *senders: type[models.Model]) -> None:
    """Empty `cache` whenever one of these models is saved or deleted in this process; for an
    auto-created many-to-many table (`Model.field.through`) whenever its rows change."""
    for sender in senders:
        uid = f"{cache.name}:{sender._meta.label}"
        if sender._meta.auto_created:
            m2m_changed.connect(cache.clear, sender=sender, weak=False, dispatch_uid=uid)
            continue
        post_save.connect(cache.clear, sender=sender, weak=False, dispatch_uid=uid)
        post_delete.connect(cache.clear, sender=sender, weak=False, dispatch_uid=uid)


def registered() -> dict[str, ProcessCache]:
    """Every process cache by name (those whose modules have been imported)."""
    return dict(_registry)


def clear() -> None:
    """Empty every process cache."""
    for cache in _registry.values():
        cache.clear()
