"""Find and sort on the dashboard's lists (the queue, the team page, the pool, marketing's list, the
partner portal): one reading of `?q=` (search) and `?sort=` (header sorting) for all of them.

Sorting lives in the URL (`sort=score` / `sort=-score`), so a sorted list can be bookmarked, works
without JavaScript (the headers are plain links) and with htmx (the same links, swapped in place).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import F, OrderBy, Q, QuerySet
from django.http import QueryDict
from django.utils.functional import Promise as StrPromise
from django.utils.translation import gettext_lazy as _

SEARCH_MAX = 100  # characters of a search kept; longer input is cut, never an error


@dataclass(frozen=True)
class Column:
    """A sortable column: its key in the URL, its header, the fields it orders by (ascending), and
    the direction a first click gives (numbers and dates: highest / newest first)."""

    key: str
    label: str | StrPromise
    fields: Sequence[str]
    first: str = "asc"


def search_query(params: QueryDict) -> str:
    return (params.get("q") or "").strip()[:SEARCH_MAX]


def search(queryset: QuerySet, text: str, prefix: str = "") -> QuerySet:
    """Rows whose person's name, e-mail or company contains every word of `text` (any case). A
    word may hit any of the fields ("anna meridian": Anna at Meridian Foods). `prefix` reaches the
    lead through a relation (`lead__` for assignments)."""
    for word in text.split():
        queryset = queryset.filter(
            Q(**{f"{prefix}first_name__icontains": word})
            | Q(**{f"{prefix}last_name__icontains": word})
            | Q(**{f"{prefix}email__icontains": word})
            | Q(**{f"{prefix}company__icontains": word})
        )
    return queryset


def _order(field: str, descending: bool) -> OrderBy:
    expression = F(field)
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)


@dataclass(frozen=True)
class Sorting:
    """The list's columns and the current choice read from `?sort=`; an unknown value is the default."""

    columns: Sequence[Column]
    key: str
    descending: bool

    @classmethod
    def read(cls, params: QueryDict, columns: Sequence[Column], default: str) -> Sorting:
        raw = params.get("sort") or default
        key, descending = raw.removeprefix("-"), raw.startswith("-")
        if key not in {c.key for c in columns}:
            key, descending = default.removeprefix("-"), default.startswith("-")
        return cls(columns, key, descending)

    @property
    def value(self) -> str:
        return f"-{self.key}" if self.descending else self.key

    def apply(self, queryset: QuerySet, tiebreak: str = "pk") -> QuerySet:
        column = next(c for c in self.columns if c.key == self.key)
        order = [_order(field, self.descending) for field in column.fields]
        return queryset.order_by(*order, f"-{tiebreak}" if self.descending else tiebreak)

    def headers(self, params: QueryDict) -> dict[str, dict[str, str]]:
        """Per column key: the link that sorts by it (the other direction when it is the current
        one), its arrow and aria-sort; the list's other parameters kept, the page dropped."""
        out = {}
        for column in self.columns:
            current = column.key == self.key
            descending = not self.descending if current else column.first == "desc"
            query = params.copy()
            query.pop("page", None)
            query["sort"] = f"-{column.key}" if descending else column.key
            out[column.key] = {
                "label": str(column.label),
                "url": "?" + query.urlencode(),
                "arrow": ("▼" if self.descending else "▲") if current else "",
                "aria": ("descending" if self.descending else "ascending") if current else "none",
            }
        return out


def page_query(params: QueryDict) -> str:
    """The list's parameters without the page, for the pager's links."""
    query = params.copy()
    query.pop("page", None)
    return query.urlencode()


LEAD_COLUMNS = {
    "lead": Column("lead", _("Lead"), ["company", "last_name", "first_name"]),
    "name": Column("name", _("Name"), ["last_name", "first_name"]),
    "score": Column("score", _("Score"), ["score"], first="desc"),
    "stage": Column("stage", _("Stage"), ["stage"]),
    "country": Column("country", _("Country"), ["country"]),
    "product": Column("product", _("Product"), ["product_interest"]),
    "handover": Column("handover", _("Handed over"), ["handed_over_at"], first="desc"),
    "sla": Column("sla", _("SLA"), ["respond_by"]),
    "created": Column("created", _("Created"), ["created_at"], first="desc"),
    "owner": Column("owner", _("Owner"), ["owner__last_name", "owner__first_name", "owner__username"]),
    "source": Column("source", _("Source"), ["source"]),
}


def lead_columns(*keys: str, prefix: str = "") -> list[Column]:
    """Columns of a list of leads; `prefix` when the rows are another model's (`lead__`)."""
    columns = []
    for key in keys:
        column = LEAD_COLUMNS[key]
        columns.append(Column(column.key, column.label, [prefix + f for f in column.fields], column.first))
    return columns
