"""leads/caches.py: a process cache keeps, expires, empties when full, and clears on its models' changes."""

import pytest

from leads import caches
from leads.models import Lead
from leads.tests.factories import LeadFactory


@pytest.fixture
def make_cache():
    made = []

    def make(**options):
        cache = caches.ProcessCache(f"test.cache{len(made)}", **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:  # forget them: the next test makes its own
        caches._registry.pop(cache.name)
        for signal in (caches.post_save, caches.post_delete, caches.m2m_changed):
            signal.disconnect(dispatch_uid=f"{cache.name}:{Lead._meta.label}", sender=Lead)


def test_a_value_is_built_once_and_kept_until_cleared(make_cache):
    cache, built = make_cache(), []

    def build(key):
        built.append(key)
        return f"value of {key}"

    assert [cache.get("a", build), cache.get("a", build), cache.get("b", build)] == [
        "value of a",
        "value of a",
        "value of b",
    ]
    assert built == ["a", "b"] and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None
    assert cache.get("a", build) == "value of a" and built == ["a", "b", "a"]


def test_a_timed_value_expires_after_its_ttl(make_cache, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(caches.time, "monotonic", lambda: clock[0])
    cache = make_cache(ttl=2.0)
    cache.set("k", 1)
    clock[0] = 102.0
    assert cache.get("k") == 1  # 2 s old: still good
    clock[0] = 102.5
    assert cache.get("k") is None
    assert cache.get("k", lambda key: 2) == 2


def test_a_full_cache_is_emptied_before_a_new_key(make_cache):
    cache = make_cache(max_entries=2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("b", 3)  # a known key replaces its value
    assert (len(cache), cache.get("b")) == (2, 3)
    cache.set("c", 4)
    assert (len(cache), cache.get("a"), cache.get("c")) == (1, None, 4)


def test_two_caches_of_one_name_are_refused(make_cache):
    cache = make_cache()
    with pytest.raises(ValueError, match="exists already"):
        caches.ProcessCache(cache.name)


@pytest.mark.django_db
def test_a_save_or_delete_of_a_watched_model_empties_the_cache(make_cache):
    watching, other = make_cache(), make_cache()
    caches.clear_on_change(watching, Lead)
    watching.set("emails", ["ann@a.example"])
    other.set("emails", ["ann@a.example"])

    lead = LeadFactory(email="bo@b.example")
    assert (len(watching), len(other)) == (0, 1)  # the other cache watches nothing

    watching.set("emails", ["ann@a.example", "bo@b.example"])
    lead.delete()
    assert len(watching) == 0


def test_clear_empties_every_registered_cache(make_cache):
    first, second = make_cache(), make_cache()
    first.set(1, "one")
    second.set(2, "two")
    assert caches.registered()[first.name] is first
    caches.clear()
    assert (len(first), len(second)) == (0, 0)
