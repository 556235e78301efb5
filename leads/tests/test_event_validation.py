"""The fast path for well-formed events must agree with the full DRF validation it short-cuts."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from leads.api.serializers import EventSerializer, fast_event

NOW = datetime.now(UTC)
texts = st.one_of(st.text(max_size=8), st.sampled_from(["", " x", "ok", "a" * 201, "nul\x00", "e-1"]))
events = st.dictionaries(
    keys=st.sampled_from(["email", "lead", "type", "occurred_at", "external_id", "source", "properties", "extra"]),
    values=st.one_of(
        st.sampled_from(["a@b.example", "A@B.example", " a@b.example", "not-an-email", "x@y"]),
        st.sampled_from(["page_view", "download", "stage_change", "nope"]),
        st.integers(-2, 10**12),
        st.booleans(),
        st.none(),
        texts,
        st.sampled_from(
            [
                (NOW - timedelta(days=3)).isoformat(),
                "2026-11-20T10:00:00Z",
                "2026-11-20T10:00:00",
                (NOW + timedelta(days=3)).isoformat(),
                "20261120T100000Z",
                "0001-01-01T00:00:00+05:00",
            ]
        ),
        st.sampled_from([{"url": "/pricing"}, {"k": "nul\x00"}, [], {}, "text"]),
    ),
)


def slow_path(data):
    serializer = EventSerializer()
    try:
        return serializers.Serializer.run_validation(serializer, data)
    except serializers.ValidationError:
        return "invalid"


@settings(max_examples=1500, deadline=None)
@given(events)
def test_the_fast_path_accepts_only_what_the_full_validation_accepts_and_gives_the_same_result(data):
    fast = fast_event(data)
    if fast is None:
        return  # the full validation decides
    slow = slow_path(data)
    assert slow != "invalid", data
    if "occurred_at" not in data:
        slow.pop("occurred_at"), fast.pop("occurred_at")
    assert fast == slow


def test_a_typical_event_takes_the_fast_path():
    event = {
        "email": "a@b.example",
        "type": "page_view",
        "occurred_at": "2026-11-20T10:00:00Z",
        "external_id": "e1",
        "source": "web",
        "properties": {"url": "/pricing"},
    }
    assert fast_event(event) == {**event, "occurred_at": datetime(2026, 11, 20, 10, tzinfo=UTC)}
