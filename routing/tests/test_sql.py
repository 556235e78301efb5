"""routing/sql.py: each PostgreSQL statement gives what its portable twin gives, on the same data."""

from datetime import UTC, datetime, timedelta

import pytest

from leads.models import Lead, Stage
from leads.tests.factories import LeadFactory, UserFactory
from routing import sql
from routing.models import RepProfile

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.django_db
def test_rep_rows_and_the_ownership_update_give_the_same_both_ways(sql_twins):
    ann = UserFactory(username="ann", first_name="Ann", last_name="Berg")
    bob = UserFactory(username="bob", first_name="", last_name="", is_active=False)
    RepProfile.objects.create(
        user=ann,
        away_until=AT + timedelta(days=2),
        capacity=7,
        weight=3,
        seniority=3,
        territories=["DACH", "fr"],
        languages=["de", "en"],
        products=["Core"],
        industries=["Retail"],
        min_company_size=10,
        max_company_size=500,
    )
    RepProfile.objects.create(user=bob, active=False)
    nobody = UserFactory(username="cleo")  # no profile: not a row
    for stage in (Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON, Stage.MAL):
        LeadFactory(owner=ann, stage=stage)

    pg, portable = sql_twins(sql, lambda: sorted(sql.rep_rows([bob.pk, ann.pk, nobody.pk])))
    assert pg[0] == portable[0] == [
        sql.RepRow(
            ann.pk, "Ann", "Berg", "ann", True, True, AT + timedelta(days=2), 7, 3, 3,
            ["DACH", "fr"], ["de", "en"], ["Core"], ["Retail"], 10, 500, 3,
        ),
        sql.RepRow(bob.pk, "", "", "bob", False, False, None, 25, 1, 2, [], [], [], [], None, None, 0),
    ]  # fmt: skip
    assert ["ANY(" in q for q in pg[2]] == [True] and not any("ANY(" in q for q in portable[2])

    first, second, control = LeadFactory(owner=ann), LeadFactory(), LeadFactory(owner=ann)

    def hand_over():
        leads = list(Lead.objects.filter(pk__in=[first.pk, second.pk]).order_by("pk"))
        leads[0].owner_id, leads[0].handed_over_at, leads[0].marketing_suppressed = None, None, False
        leads[1].owner_id, leads[1].handed_over_at, leads[1].marketing_suppressed = bob.pk, AT, True
        leads[1].respond_by = AT + timedelta(hours=4)
        sql.leads_update(leads, ("owner", "partner", "marketing_suppressed", "handed_over_at", "respond_by"), AT)

    def held():
        return list(
            Lead.objects.order_by("pk")
            .filter(pk__in=[first.pk, second.pk, control.pk])
            .values_list("owner_id", "partner_id", "marketing_suppressed", "handed_over_at", "respond_by", "updated_at")
        )

    pg, portable = sql_twins(sql, hand_over, held)
    assert pg[1] == portable[1]
    assert pg[1][:2] == [
        (None, None, False, None, None, AT),
        (bob.pk, None, True, AT, AT + timedelta(hours=4), AT),
    ]
    assert pg[1][2][:5] == (ann.pk, None, False, None, None) and pg[1][2][5] != AT  # the control row untouched
    assert [q.startswith("UPDATE") and "unnest" in q for q in pg[2]] == [False, True]  # the read, one UPDATE
    assert not any("unnest" in q for q in portable[2])
