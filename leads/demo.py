"""Demo data hooks. `seed_demo` creates the leads app's users and leads, then runs the seeders
that other apps register in their own `demo.py` (found with Django's autodiscover_modules), in
order — so `leads` never imports them."""

from __future__ import annotations

from collections.abc import Callable

Seeder = Callable[[Callable[[str], None]], None]
_SEEDERS: list[tuple[int, str, Seeder]] = []


def seeder(order: int) -> Callable[[Seeder], Seeder]:
    """Register `func(say)` to run after the leads are seeded; lower `order` runs first."""

    def register(func: Seeder) -> Seeder:
        key = f"{func.__module__}.{func.__qualname__}"
        if all(existing != key for _, existing, _ in _SEEDERS):
            _SEEDERS.append((order, key, func))
        return func

    return register


def seeders() -> list[Seeder]:
    return [func for _, _, func in sorted(_SEEDERS, key=lambda entry: (entry[0], entry[1]))]
