"""The fast row check accepts only what the capture serializer accepts, and answers what it answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imports.services import fast_row
from leads.api.serializers import LeadCaptureSerializer

TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "@", ".", " ", "ä"]), max_size=260)
EMAILS = st.one_of(st.emails().map(str), TEXT, st.sampled_from(["a@b.example", "A@B.EXAMPLE", "x@y", "@x.example"]))
ROWS = st.fixed_dictionaries(
    {"email": EMAILS},
    optional={
        "first_name": TEXT,
        "company": TEXT,
        "phone": TEXT,
        "company_domain": TEXT,
        "country": st.one_of(st.sampled_from(["DE", "de", "XX", "AT ", ""]), TEXT),
        "language": st.one_of(st.sampled_from(["de", "EN", "xx"]), TEXT),
        "source": TEXT,
        "company_size": st.sampled_from(["12", "many"]),
        "attributes": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    },
).map(lambda row: {k: v.strip() if isinstance(v, str) else v for k, v in row.items() if v != ""})


@settings(max_examples=400, deadline=None)
@given(ROWS)
def test_the_fast_check_agrees_with_the_serializer(row):
    fast = fast_row(row)
    if fast is None:
        return  # the serializer decides
    serializer = LeadCaptureSerializer(data=row)
    assert serializer.is_valid(), (row, serializer.errors)
    expected = dict(serializer.validated_data)
    expected.pop("double_opt_in")
    assert fast == expected


@pytest.mark.parametrize(
    "row",
    [
        {"email": "a@b.example", "first_name": "Ann", "country": "de", "language": "DE", "company_domain": "B.example"},
        {"email": "a@müller.example", "attributes": {"booth": "3"}},
    ],
)
def test_plain_rows_take_the_fast_path(row):
    assert fast_row(row) is not None
