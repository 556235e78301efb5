"""Set-based test data for the scoring suite: leads and their activities, made by PostgreSQL itself.

One `INSERT … SELECT … FROM generate_series` per chunk (no Python per row), deterministic
(`setseed`), into a migrated bench database:

* leads: the fields the demo scoring rules read vary realistically (job titles from C-level to
  students, target and other industries, company sizes from 1 to 100,000 and unknown, core and
  other countries, ~8 % free-mail and ~1 % competitor domains, a few journalists and applicants).
  Every generated lead is in stage `new` (a stage scoring never moves to MQL), except those an
  exclusion rule disqualifies, which are already `disqualified` — as the previous model would
  have left them — so that a full rescoring makes no lifecycle moves and measures scoring alone.
* activities: `per_lead` per lead, types and properties matching the demo BEHAVIOR rules
  (page views of /pricing and /blog, demo requests, webinars, whitepaper downloads, e-mail opens
  and clicks, form submits, unsubscribes, bounces) plus some types no rule scores (captured,
  note, stage_change); `occurred_at` spread over the last 180 days; `external_id` NULL, source
  `bench`. The table is filled in time order and each row belongs to a pseudo-random lead (a
  multiplicative permutation of the row number), so a lead's activities are scattered over the
  table as they are when events arrive over months — not clustered by lead, which would flatter
  the per-batch index scans of the rescoring.

Any NOT NULL column without a default that this module does not know (a migration added after it
was written) gets an empty value of its type, so the generator keeps working as the schema grows.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import psycopg

from bench import database

FREE_MAIL = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "gmx.de", "web.de")
COMPETITORS = ("rivalsoft.example", "competitor.example")
# (job title, cumulative share): C-level, VPs, heads, directors, individual contributors, students …
JOB_TITLES = (
    ("CTO", 0.05),
    ("CEO", 0.09),
    ("CFO", 0.11),
    ("CIO", 0.13),
    ("VP Sales", 0.17),
    ("VP Engineering", 0.21),
    ("Head of Marketing", 0.28),
    ("Head of IT", 0.34),
    ("IT Director", 0.40),
    ("Marketing Director", 0.45),
    ("Software Developer", 0.58),
    ("Data Analyst", 0.66),
    ("Operations Lead", 0.73),
    ("Consultant", 0.80),
    ("Project Manager", 0.87),
    ("Office Manager", 0.92),
    ("Student", 0.97),
    ("Journalist", 0.98),
    ("Job Applicant", 0.99),
    ("", 1.0),
)
INDUSTRIES = (
    "Software",
    "Financial Services",
    "Manufacturing",
    "Healthcare",
    "Retail",
    "Education",
    "Government",
    "Media",
    "Logistics",
    "",
)
COUNTRIES = ("DE", "DE", "DE", "AT", "CH", "GB", "US", "US", "NL", "SE", "FR", "IT", "ES", "PL", "BR", "")
LANGUAGES = ("de", "en", "fr", "")
PRODUCTS = ("crm", "analytics", "platform", "")
# (type, cumulative share, properties expression over the row's second random number v)
ACTIVITY_TYPES = (
    (
        "page_view",
        0.45,
        "jsonb_build_object('url', CASE WHEN v < 0.25 THEN '/pricing' WHEN v < 0.75 THEN '/blog/post-' "
        "|| (v * 1000)::int WHEN v < 0.9 THEN '/product' ELSE '/docs/start' END)",
    ),
    ("email_open", 0.63, "jsonb_build_object('campaign', 'nl-' || (v * 50)::int)"),
    ("email_click", 0.71, "jsonb_build_object('campaign', 'nl-' || (v * 50)::int)"),
    (
        "download",
        0.77,
        "jsonb_build_object('asset', CASE WHEN v < 0.6 THEN 'whitepaper-' WHEN v < 0.85 THEN 'case-study-' "
        "ELSE 'ebook-' END || (v * 20)::int)",
    ),
    ("webinar", 0.81, "jsonb_build_object('webinar', 'w-' || (v * 12)::int)"),
    ("form_submit", 0.85, "jsonb_build_object('form', 'contact')"),
    ("demo_request", 0.865, "'{}'::jsonb"),
    ("unsubscribe", 0.87, "'{}'::jsonb"),
    ("email_bounce", 0.875, "'{}'::jsonb"),
    ("captured", 0.93, "jsonb_build_object('source', 'web_form')"),
    ("note", 0.96, "jsonb_build_object('text', 'called, no answer')"),
    ("stage_change", 1.0, "jsonb_build_object('from', 'new', 'to', 'mal')"),
)
ACTIVITY_DAYS = 180
LEADS_PER_STATEMENT = 100_000  # one transaction each (the activities of as many leads with them)


def _array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _pick(values: tuple[str, ...], u: str) -> str:
    """SQL: one of `values`, chosen uniformly by the random number `u` in [0, 1)."""
    return f"({_array(values)})[1 + floor({u} * {len(values)})::int]"


def _cumulative(pairs: tuple[tuple[str, float], ...], u: str) -> str:
    whens = " ".join(f"WHEN {u} < {share} THEN '{value}'" for value, share in pairs[:-1])
    return f"CASE {whens} ELSE '{pairs[-1][0]}' END"


LEAD_VALUES = {
    # column: SQL over g (the lead's number), r1 … r6 (random numbers) and domain (a subquery column)
    "email": "'lead' || g || '@' || domain",
    "first_name": "'First' || mod(g, 997)",
    "last_name": "'Last' || mod(g, 1009)",
    "phone": "''",
    "company": "CASE WHEN free THEN '' ELSE initcap(split_part(domain, '.', 1)) END",
    "company_domain": "CASE WHEN free THEN '' ELSE domain END",
    "job_title": "job_title",
    "industry": _pick(INDUSTRIES, "r2"),
    "company_size": "CASE WHEN r3 < 0.10 THEN NULL WHEN r3 < 0.40 THEN 1 + floor(r4 * 199)::int "
    "WHEN r3 < 0.85 THEN 200 + floor(r4 * 4801)::int ELSE 5001 + floor(r4 * 95000)::int END",
    "annual_revenue": "NULL",
    "country": _pick(COUNTRIES, "r5"),
    "language": _pick(LANGUAGES, "r6"),
    "product_interest": _pick(PRODUCTS, "r4"),
    "source": "'bench'",
    "campaign": "''",
    "utm_source": "''",
    "utm_medium": "''",
    "utm_campaign": "''",
    "utm_term": "''",
    "utm_content": "''",
    "consent_status": "'none'",
    "consent_at": "NULL",
    "stage": "CASE WHEN competitor OR job_title IN ('Journalist', 'Job Applicant') THEN 'disqualified' ELSE 'new' END",
    "score": "0",
    "fit_score": "0",
    "engagement_score": "0",
    "grade": "''",
    "marketing_suppressed": "false",
    "attributes": "'{}'::jsonb",
    "created_at": "now() - interval '200 days' - r6 * interval '365 days'",
    "updated_at": "now() - interval '200 days'",
    "owner_id": "NULL",
    "partner_id": "NULL",
    "scored_at": "NULL",
    "scoring_version": "NULL",
    "handed_over_at": "NULL",
    "respond_by": "NULL",
}
ACTIVITY_VALUES = {
    "lead_id": "lead_id",
    "type": "type",
    "occurred_at": "occurred_at",
    "properties": "properties",
    "source": "'bench'",
    "external_id": "NULL",
    "created_by_id": "NULL",
    "created_at": "occurred_at",
}
EMPTY_BY_TYPE = {
    "character varying": "''",
    "text": "''",
    "boolean": "false",
    "jsonb": "'{}'::jsonb",
    "timestamp with time zone": "now()",
    "date": "current_date",
}


def _unknown_required(conn: psycopg.Connection, table: str, known: dict[str, str]) -> dict[str, str]:
    """Empty values for NOT NULL columns without a default that `known` does not cover."""
    rows = conn.execute(
        """
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = %s AND is_nullable = 'NO'
          AND column_default IS NULL AND is_identity = 'NO'
        """,
        (table,),
    ).fetchall()
    return {name: EMPTY_BY_TYPE.get(kind, "0") for name, kind in rows if name not in known}


def _leads_sql(values: dict[str, str]) -> str:
    columns = ", ".join(values)
    return f"""
        INSERT INTO leads_lead ({columns})
        SELECT {", ".join(values.values())}
        FROM (
            SELECT g, r2, r3, r4, r5, r6, free, competitor, {_cumulative(JOB_TITLES, "r1")} AS job_title,
                   CASE WHEN free THEN {_pick(FREE_MAIL, "rd")}
                        WHEN competitor THEN {_pick(COMPETITORS, "rd")}
                        ELSE 'company' || floor(rd * 20000)::int || '.example' END AS domain
            FROM (
                SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
                       random() AS r6, random() AS rd, rk < 0.08 AS free, rk >= 0.08 AND rk < 0.09 AS competitor
                FROM (SELECT g, random() AS rk FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g) s0
            ) s1
        ) s2
    """


def _activities_sql(values: dict[str, str]) -> str:
    type_case = _cumulative(tuple((t, share) for t, share, _ in ACTIVITY_TYPES), "u")
    props = " ".join(f"WHEN '{t}' THEN {expr}" for t, _, expr in ACTIVITY_TYPES)
    columns = ", ".join(values)
    return f"""
        INSERT INTO leads_activity ({columns})
        SELECT {", ".join(values.values())}
        FROM (
            SELECT lead_id, type, occurred_at, CASE type {props} END AS properties
            FROM (
                SELECT %(first_id)s::bigint + (r * %(step)s::bigint) %% %(leads)s::bigint AS lead_id,
                       {type_case} AS type, v,
                       now() - %(days)s * interval '1 day' * (1 - r::float8 / %(rows)s)
                           - w * interval '1 hour' AS occurred_at
                FROM (
                    SELECT r, random() AS u, random() AS v, random() AS w
                    FROM generate_series(%(from_row)s::bigint, %(to_row)s::bigint) AS r
                ) s0
            ) s1
        ) s2
    """


def _coprime_step(n: int) -> int:
    """A multiplier that permutes 0 … n-1 (coprime to n) and scatters neighbours far apart."""
    step = int(n * 0.6180339887) | 1
    while math.gcd(step, n) != 1:
        step += 2
    return step


@dataclass
class Generated:
    leads: int
    activities: int
    first_id: int
    last_id: int
    leads_s: float
    activities_s: float
    analyze_s: float

    @property
    def total_s(self) -> float:
        return self.leads_s + self.activities_s + self.analyze_s

    def as_dict(self) -> dict:
        return {
            "leads": self.leads,
            "activities": self.activities,
            "lead_ids": [self.first_id, self.last_id],
            "leads_s": round(self.leads_s, 1),
            "activities_s": round(self.activities_s, 1),
            "vacuum_analyze_s": round(self.analyze_s, 1),
            "total_s": round(self.total_s, 1),
        }


def _deferrable_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that back no constraint (those can be dropped for a
    bulk load and rebuilt by a sort afterwards, which is several times faster than 10 million
    random-order inserts into each of them)."""
    return conn.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY i.relname
        """,
        (table,),
    ).fetchall()


def _parallel(dbname: str, statements: list[tuple[str, dict | None, float | None]], workers: int = 2) -> None:
    """Run independent statements on `workers` connections at once (both cores of the machine);
    each (statement, parameters, seed) seeds random() first when it has a seed, so the data do
    not depend on which connection ran which statement."""
    pending = list(reversed(statements))
    errors: list[BaseException] = []

    def work() -> None:
        with psycopg.connect(database.conninfo(dbname), autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("SET maintenance_work_mem = '256MB'")
            while pending and not errors:
                try:
                    statement, params, seed = pending.pop()
                except IndexError:
                    return
                try:
                    if seed is not None:
                        conn.execute("SELECT setseed(%s)", (seed,))
                    conn.execute(statement, params)
                except BaseException as exc:
                    errors.append(exc)
                    raise

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def generate(
    dbname: str,
    leads: int,
    per_lead: int = 10,
    seed: int = 2026,
    progress=None,
    lead_values: dict[str, str] | None = None,
) -> Generated:
    """Add `leads` leads and `per_lead` activities for each of them, then VACUUM ANALYZE both tables
    (hint bits and visibility map set, statistics fresh — as on a table that has been live for a
    while); return the timings. Indexes that back no constraint are dropped during the load and
    rebuilt after it (the rebuild is inside the reported time).

    `lead_values` replaces the SQL of some columns of LEAD_VALUES (e.g. owner and stage); the
    expressions may use g (the lead's number), r2 … r6 and the other columns of LEAD_VALUES' subquery,
    and must write a literal % as %%."""
    with psycopg.connect(database.conninfo(dbname), autocommit=True) as conn:
        known = {**LEAD_VALUES, **(lead_values or {})}
        lead_values = {**known, **_unknown_required(conn, "leads_lead", known)}
        activity_values = {**ACTIVITY_VALUES, **_unknown_required(conn, "leads_activity", ACTIVITY_VALUES)}
        before = conn.execute("SELECT coalesce(max(id), 0) FROM leads_lead").fetchone()[0]
        number = conn.execute("SELECT count(*) FROM leads_lead WHERE source = 'bench'").fetchone()[0]
        indexes = {t: _deferrable_indexes(conn, t) for t in ("leads_lead", "leads_activity")}

    def seed_for(chunk: int) -> float:
        return (seed * 7919 + number + chunk) % 1_000_003 / 1_000_003

    start = time.perf_counter()
    _parallel(dbname, [(f"DROP INDEX IF EXISTS {name}", None, None) for name, _ in indexes["leads_lead"]], workers=1)
    statement = _leads_sql(lead_values)
    _parallel(
        dbname,
        [
            (
                statement,
                {"first": number + offset + 1, "last": number + min(offset + LEADS_PER_STATEMENT, leads)},
                seed_for(offset),
            )
            for offset in range(0, leads, LEADS_PER_STATEMENT)
        ],
        workers=1,  # one connection: lead ids follow the lead numbers
    )
    _parallel(dbname, [(definition, None, None) for _, definition in indexes["leads_lead"]])
    leads_s = time.perf_counter() - start
    with psycopg.connect(database.conninfo(dbname), autocommit=True) as conn:
        first_id, last_id, made = conn.execute(
            "SELECT min(id), max(id), count(*) FROM leads_lead WHERE id > %s", (before,)
        ).fetchone()
    if made != leads or last_id - first_id + 1 != leads:
        raise RuntimeError(f"expected {leads} consecutive new lead ids, got {made} in [{first_id}, {last_id}]")
    if progress:
        progress(f"{leads:,} leads in {leads_s:.1f} s ({len(indexes['leads_lead'])} indexes rebuilt)")

    start = time.perf_counter()
    rows = leads * per_lead
    statement = _activities_sql(activity_values)
    chunk = LEADS_PER_STATEMENT * per_lead
    _parallel(
        dbname, [(f"DROP INDEX IF EXISTS {name}", None, None) for name, _ in indexes["leads_activity"]], workers=1
    )
    _parallel(
        dbname,
        [
            (
                statement,
                {
                    "first_id": first_id,
                    "step": _coprime_step(leads),
                    "leads": leads,
                    "days": ACTIVITY_DAYS,
                    "rows": rows,
                    "from_row": offset,
                    "to_row": min(offset + chunk, rows) - 1,
                },
                seed_for(rows + offset),
            )
            for offset in range(0, rows, chunk)
        ],
    )
    _parallel(dbname, [(definition, None, None) for _, definition in indexes["leads_activity"]])
    activities_s = time.perf_counter() - start
    if progress:
        progress(f"{rows:,} activities in {activities_s:.1f} s ({len(indexes['leads_activity'])} indexes rebuilt)")

    start = time.perf_counter()
    _parallel(dbname, [("VACUUM (ANALYZE) leads_lead", None, None), ("VACUUM (ANALYZE) leads_activity", None, None)])
    analyze_s = time.perf_counter() - start
    return Generated(leads, rows, first_id, last_id, leads_s, activities_s, analyze_s)
