"""The read path: `query` (keyset pages of stored values) and `aggregate` (calendar buckets), as SQL builders.

Rows are filtered, ordered, paged, grouped and aggregated by PostgreSQL; Python only resolves the metric, computes
period edges (ingest.periods) and shapes the result.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest import periods
from ingest.conditions import Compiled, compile_condition
from ingest.db import fetch_tuples, one_row
from ingest.errors import IllegalArgument, InvalidRequest, NotFound
from ingest.notset import NOT_SET
from ingest.numbers import json_integer

MAX_PAGE = 10_000
MAX_GROUPS = 100
TIME_COLUMNS = {"start_time": "session_start_ns", "end_time": "session_end_ns"}
AGGREGATIONS = {"sum": "sum", "mean": "avg", "max": "max", "min": "min", "count": "count"}
GROUP_FIELDS = {"device.device_id": "v.device_id", "devices.device_id": "v.device_id", "device.id": "v.device_id"}
# A page holds one metric of one org: org_id and metric_id come from the definition, not from each row.
VALUE_COLUMNS = (
    "v.session_id, v.value, v.device_id, v.invocation_id, v.session_start_ns, v.session_end_ns, v.published_by, "
    "v.published"
)
VALUE_FIELDS = (
    "session_id",
    "value",
    "device_id",
    "invocation_id",
    "session_start_ns",
    "session_end_ns",
    "published_by",
    "published",
    "group_key",
)


# ---------------------------------------------------------------------------------------------------------------
# Shared parts: the metric, the filters, the group key


@dataclass
class Filters:
    time_column: str
    device_ids: Any = NOT_SET  # NOT_SET | None (IS NULL) | list[str]
    session_ids: Any = NOT_SET  # NOT_SET | list[str]
    invocation_ids: Any = NOT_SET  # NOT_SET | None | list[str]
    condition: Compiled | None = None
    group_by: str | None = None  # canonical group field name
    group_expr: str | None = None


def time_column(time_filter: object) -> str:
    if time_filter is None:
        return TIME_COLUMNS["end_time"]
    if not isinstance(time_filter, str) or time_filter not in TIME_COLUMNS:
        raise InvalidRequest("time_filter must be 'start_time' or 'end_time'")
    return TIME_COLUMNS[time_filter]


def id_filter(value: Any, field_name: str, *, allow_null: bool = True) -> Any:
    if value is NOT_SET or (value is None and allow_null):
        return value
    if value is None:
        raise InvalidRequest(f"{field_name} must not be null")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{field_name} must be a list of strings")
    return value


def group_expression(group_by: object) -> tuple[str | None, str | None]:
    if group_by is None:
        return None, None
    if not isinstance(group_by, str):
        raise IllegalArgument("group_by must be a field name, such as 'device.device_id'")
    if group_by in GROUP_FIELDS:
        return "device.device_id", GROUP_FIELDS[group_by]
    raise IllegalArgument(f"group_by field '{group_by}' is not supported by this service (use 'device.device_id')")


def build_filters(body: dict, ids: dict[str, Any]) -> Filters:
    """`ids` holds the three include_* fields already decoded from the wire (NOT_SET for not set)."""
    group_by, group_expr = group_expression(body.get("group_by"))
    return Filters(
        time_column=time_column(body.get("time_filter")),
        device_ids=id_filter(ids["include_device_ids"], "include_device_ids"),
        session_ids=id_filter(ids["include_session_ids"], "include_session_ids", allow_null=False),
        invocation_ids=id_filter(ids["include_invocation_ids"], "include_invocation_ids"),
        condition=compile_condition(body.get("condition")),
        group_by=group_by,
        group_expr=group_expr,
    )


def metric_name(body: dict) -> str:
    name, names = body.get("name"), body.get("names")
    if name is None and isinstance(names, list) and len(names) == 1:
        name = names[0]
    elif names is not None and name is None:
        raise IllegalArgument("names with more than one metric is not supported by this service; pass name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name must be a metric name")
    return name


def resolve_metric(conn: Connection, org_id: str, name: str) -> dict:
    return one_row(
        conn,
        "SELECT org_id, metric_id, name, unit FROM metric_definitions WHERE org_id = :o AND name = :n",
        {"o": org_id, "n": name},
        NotFound(f"Metric '{name}' not found"),
    )


def metric_rows(alias: str = "v", metric: str = ":metric_id") -> str:
    """The predicate selecting one metric's rows of metric_values (`metric`: an SQL expression of its id, by default
    the bound parameter `:metric_id`). The indexes lead with the compact `metric_key` (unique per definition,
    ingest.schema), so every metric_values range is written through this."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}metric_key = hashtextextended(CAST({metric} AS text), 0)"


def time_extent(conn: Connection, metric_id: str, time_column: str) -> tuple[int, int] | None:
    """The earliest and latest session time (of `time_column`) among a metric's rows: two index probes."""
    if time_column not in TIME_COLUMNS.values():
        raise InvalidRequest("time_filter must be 'start_time' or 'end_time'")
    row = conn.execute(
        text(f"SELECT min({time_column}) AS lo, max({time_column}) AS hi FROM metric_values WHERE {metric_rows('')}"),
        {"metric_id": metric_id},
    ).one()
    return None if row.lo is None else (row.lo, row.hi)


def window_ns(value: object, field_name: str, default: int | None) -> int:
    if value is None and default is not None:
        return default
    value = json_integer(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{field_name} must be an integer count of nanoseconds")
    if not -(2**63) <= value < 2**63:
        raise InvalidRequest(f"{field_name} is out of range")
    return value


def value_range(alias: str, column: str, metric: str, lo: str, hi: str) -> str:
    """The one predicate of every raw range scan of metric_values (reads here, recomputes in ingest/rollups.py):
    the rows of `metric` whose `column` lies in [lo, hi), all SQL expressions. The time indexes serve it; when they
    change, this is the one place to follow."""
    return f"{metric_rows(alias, metric)} AND {alias}.{column} >= {lo} AND {alias}.{column} < {hi}"


def where_sql(metric_id: str, filters: Filters, lo: int, hi: int) -> tuple[str, dict]:
    parts = [value_range("v", filters.time_column, ":metric_id", ":lo", ":hi")]
    params: dict[str, Any] = {"metric_id": metric_id, "lo": lo, "hi": hi}
    for name, column, value in (
        ("devices", "v.device_id", filters.device_ids),
        ("sessions", "v.session_id", filters.session_ids),
        ("invocations", "v.invocation_id", filters.invocation_ids),
    ):
        if value is None:
            parts.append(f"{column} IS NULL")
        elif value is not NOT_SET:
            parts.append(f"{column} = ANY(CAST(:{name} AS text[]))")
            params[name] = value
    if filters.condition is not None:
        parts.append(filters.condition.sql)
        params.update(filters.condition.params)
    return " AND ".join(parts), params


@dataclass
class Groups:
    kept: list[str] | None = None  # None: ungrouped
    total: int | None = None
    truncated: bool = False

    def clause(self, expr: str | None, params: dict) -> str:
        if self.kept is None or expr is None:
            return "TRUE"
        if not self.truncated:
            return "TRUE"
        params["kept_groups"] = self.kept
        return f"({expr} IS NULL OR {expr} = ANY(CAST(:kept_groups AS text[])))"


def rank_groups(conn: Connection, filters: Filters, where: str, params: dict) -> Groups:
    """The named groups with the most sessions in the window (ties by value), at most MAX_GROUPS of them."""
    if filters.group_expr is None:
        return Groups()
    rows = conn.execute(
        text(
            f"SELECT g, count(*) OVER () AS total FROM (SELECT {filters.group_expr} AS g, count(*) AS n "
            f"FROM metric_values v WHERE {where} AND {filters.group_expr} IS NOT NULL GROUP BY 1) x "
            "ORDER BY n DESC, g LIMIT :max_groups"
        ),
        {**params, "max_groups": MAX_GROUPS},
    ).all()
    total = rows[0].total if rows else 0
    return Groups([r.g for r in rows], total, total > MAX_GROUPS)


# ---------------------------------------------------------------------------------------------------------------
# query


SORT_KEYS = {
    "time": None,  # the time column
    "value": "v.value",
    "published": "v.published",
    "device_id": "v.device_id",
    "session_id": "v.session_id",
    "invocation_id": "v.invocation_id",
    "group_key": None,  # the group_by expression
}
NULLABLE_SORT_KEYS = {"device_id", "invocation_id", "group_key"}


@dataclass
class QuerySpec:
    metric: dict
    filters: Filters
    start_ns: int
    end_ns: int | None  # None: now (frozen at the first page)
    limit: int
    sort_by: str = "time"
    descending: bool = False


@dataclass
class QueryPage:
    items: list[tuple]  # VALUE_FIELDS of each row, in that order (`published` naive, in UTC: ingest.db.fetch_tuples)
    next_position: dict | None
    total_count: int
    total_groups: int | None = None
    groups_truncated: bool = False


def parse_sort(sort_by: object, descending: object, grouped: bool) -> tuple[str, bool]:
    if sort_by is None:
        sort_by = "time"
    if not isinstance(sort_by, str) or sort_by not in SORT_KEYS:
        raise InvalidRequest(f"sort_by must be one of {', '.join(SORT_KEYS)}")
    if sort_by == "group_key" and not grouped:
        raise InvalidRequest("sort_by 'group_key' needs group_by")
    if descending is None:
        descending = False
    if not isinstance(descending, bool):
        raise InvalidRequest("descending must be true or false")
    return sort_by, descending


def page_size(value: object) -> int:
    if value is None:
        return MAX_PAGE
    value = json_integer(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise InvalidRequest(f"max_results must be an integer from 1 to {MAX_PAGE}")
    return value


def _sort_expr(spec: QuerySpec) -> str:
    if spec.sort_by == "time":
        return f"v.{spec.filters.time_column}"
    if spec.sort_by == "group_key":
        return spec.filters.group_expr or "NULL"
    return SORT_KEYS[spec.sort_by] or f"v.{spec.filters.time_column}"


def _key_param(spec: QuerySpec, raw: Any) -> Any:
    """The sort key from a page token, checked against its type (a forged token is a 400, never a 500)."""
    bad = InvalidRequest("page_token is not a valid page token")
    if spec.sort_by == "time":
        if isinstance(raw, bool) or not isinstance(raw, int) or not -(2**63) <= raw < 2**63:
            raise bad
        return raw
    if spec.sort_by == "value":
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise bad
        return float(raw)
    if spec.sort_by == "published":
        try:
            dt = datetime.fromisoformat(raw)
        except (TypeError, ValueError):
            raise bad from None
        if dt.tzinfo is None:
            raise bad
        return dt
    if raw is not None and not isinstance(raw, str):
        raise bad
    return raw


def _keyset(spec: QuerySpec, position: dict, params: dict) -> str:
    sid = position.get("s")
    if not isinstance(sid, str):
        raise InvalidRequest("page_token is not a valid page token")
    params["k_sid"] = sid
    op = "<" if spec.descending else ">"
    if spec.sort_by == "session_id":
        return f"v.session_id {op} :k_sid"
    expr = _sort_expr(spec)
    key = _key_param(spec, position.get("k"))
    if key is None:
        if spec.sort_by not in NULLABLE_SORT_KEYS:
            raise InvalidRequest("page_token is not a valid page token")
        return f"({expr} IS NULL AND v.session_id {op} :k_sid)"
    params["k_key"] = key
    cast = {"time": "bigint", "value": "double precision", "published": "timestamptz"}.get(spec.sort_by, "text")
    k = f"CAST(:k_key AS {cast})"
    if spec.sort_by in NULLABLE_SORT_KEYS:
        return f"({expr} IS NULL OR {expr} {op} {k} OR ({expr} = {k} AND v.session_id {op} :k_sid))"
    # A row comparison: PostgreSQL starts the index scan at the cursor instead of filtering from the window start.
    return f"({expr}, v.session_id) {op} ({k}, CAST(:k_sid AS text))"


def _order(spec: QuerySpec) -> str:
    direction = "DESC" if spec.descending else "ASC"
    if spec.sort_by == "session_id":
        return f"v.session_id {direction}"
    nulls = " NULLS LAST" if spec.sort_by in NULLABLE_SORT_KEYS else ""
    return f"{_sort_expr(spec)} {direction}{nulls}, v.session_id {direction}"


def _key_sql(spec: QuerySpec) -> str:
    """The sort key of a row, as carried in the next page token."""
    return "v.session_id" if spec.sort_by == "session_id" else _sort_expr(spec)


def query_page(conn: Connection, spec: QuerySpec, position: dict | None) -> QueryPage:
    """One page. `position` is None on the first page, else what the previous page's `next_position` held."""
    first = position is None
    position = position or {}
    if first:
        now_ns = time.time_ns()
    else:
        given = position.get("n")
        if isinstance(given, bool) or not isinstance(given, int):
            raise InvalidRequest("page_token is not a valid page token")
        now_ns = given
    hi = spec.end_ns if spec.end_ns is not None else now_ns
    where, params = where_sql(spec.metric["metric_id"], spec.filters, spec.start_ns, hi)
    groups = rank_groups(conn, spec.filters, where, params) if spec.start_ns < hi else Groups()
    if spec.filters.group_expr is not None and groups.kept is None:
        groups = Groups([], 0, False)
    where = f"{where} AND {groups.clause(spec.filters.group_expr, params)}"

    if spec.start_ns >= hi:
        return QueryPage([], None, 0, groups.total, groups.truncated)
    if first:
        if rollups_apply(spec.filters) and spec.filters.group_expr is None:
            total_count = count_combined(conn, spec.metric["metric_id"], spec.filters, spec.start_ns, hi)
        else:
            total_count = count_raw(conn, where, params)
    else:
        carried = position.get("c")
        if isinstance(carried, bool) or not isinstance(carried, int):
            raise InvalidRequest("page_token is not a valid page token")
        total_count = carried
    keyset = "TRUE" if first else _keyset(spec, position, params)
    group_col = spec.filters.group_expr or "CAST(NULL AS text)"
    params["limit"] = spec.limit + 1
    rows = fetch_tuples(
        conn,
        f"SELECT {VALUE_COLUMNS}, {group_col} AS group_key, {_key_sql(spec)} AS k FROM metric_values v "
        f"WHERE {where} AND {keyset} ORDER BY {_order(spec)} LIMIT :limit",
        params,
        naive_utc_times=True,
    )
    next_position = None
    if len(rows) > spec.limit:
        rows = rows[: spec.limit]
        last = rows[-1]
        key = last[-1].replace(tzinfo=UTC).isoformat() if isinstance(last[-1], datetime) else last[-1]
        next_position = {"k": key, "s": last[0], "n": now_ns, "c": total_count}
    items = rows  # tuples in VALUE_FIELDS order (plus the sort key): no per-row dict for a 10,000-row page
    return QueryPage(items, next_position, total_count, groups.total, groups.truncated)


# ---------------------------------------------------------------------------------------------------------------
# aggregate


@dataclass
class AggregateSpec:
    metric: dict
    filters: Filters
    period: str
    aggregation: str
    start_ns: int
    end_ns: int
    zone: Any  # ZoneInfo
    week_start: int = 0
    widen: bool = True


@dataclass
class Bucket:
    start_ns: int
    end_ns: int
    total: int
    value: float
    group_key: str | None = None


@dataclass
class AggregateResult:
    buckets: list[Bucket]
    total_groups: int | None = None
    groups_truncated: bool = False


def parse_period(period: object) -> str:
    if period not in periods.PERIODS:
        raise InvalidRequest(f"period must be one of {', '.join(periods.PERIODS)}")
    return str(period)


def parse_aggregation(aggregation: object) -> str:
    if not isinstance(aggregation, str) or aggregation not in AGGREGATIONS:
        raise InvalidRequest(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    return str(aggregation)


def aggregate(conn: Connection, spec: AggregateSpec) -> AggregateResult:
    """From the rollups where the filters allow (time window, devices, group_by device), else from raw rows."""
    if rollups_apply(spec.filters):
        return aggregate_combined(conn, spec)
    return aggregate_raw(conn, spec)


def aggregate_raw(conn: Connection, spec: AggregateSpec) -> AggregateResult:
    """Every value in the window, grouped by bucket: the reference the rollups are compared with."""
    lo, hi = periods.clamp_window(spec.start_ns, spec.end_ns)
    edges = periods.period_edges(lo, hi, spec.period, spec.zone, spec.week_start)
    if not edges:
        return AggregateResult([], 0 if spec.filters.group_expr else None)
    if spec.widen:
        lo, hi = edges[0], edges[-1]
    where, params = where_sql(spec.metric["metric_id"], spec.filters, lo, hi)
    groups = rank_groups(conn, spec.filters, where, params)
    where = f"{where} AND {groups.clause(spec.filters.group_expr, params)}"
    group_col = spec.filters.group_expr or "CAST(NULL AS text)"
    params["edges"] = edges
    fn = AGGREGATIONS[spec.aggregation]
    rows = conn.execute(
        text(
            f"SELECT width_bucket(v.{spec.filters.time_column}, CAST(:edges AS bigint[])) AS b, {group_col} AS g, "
            f"count(*) AS total, CAST({fn}(v.value) AS double precision) AS value "
            f"FROM metric_values v WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST"
        ),
        params,
    ).all()
    buckets = [Bucket(edges[r.b - 1], edges[r.b], r.total, r.value, r.g) for r in rows]
    return AggregateResult(buckets, groups.total, groups.truncated)


def count_raw(conn: Connection, where: str, params: dict) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM metric_values v WHERE {where}"), params).scalar_one())


# ---------------------------------------------------------------------------------------------------------------
# Rollups (ingest/rollups.py keeps them): cells for whole clean hours, raw rows for the rest, in one statement

HOUR_NS = 3600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS
KIND_OF_COLUMN = {"session_end_ns": 0, "session_start_ns": 1}  # cells per device; + ALL_DEVICES: over all devices
ALL_DEVICES = 2  # kind + 2: the same hour over all devices (device_id NULL), read when no device matters


def rollups_apply(filters: Filters) -> bool:
    """Cells hold (hour, device) only: a filter on sessions, invocations or a condition needs the raw rows."""
    return filters.session_ids is NOT_SET and filters.invocation_ids is NOT_SET and filters.condition is None


def _device_clause(expr: str, device_ids: Any, params: dict) -> str:
    if device_ids is NOT_SET:
        return "TRUE"
    if device_ids is None:
        return f"{expr} IS NULL"
    params["devices"] = device_ids
    return f"{expr} = ANY(CAST(:devices AS text[]))"


def fringe_hours(points: list[int], lo: int, hi: int) -> list[int]:
    """The hours holding a bucket or window edge that is not on the hour (a :30/:45 zone's midnight, a window ending
    at 10:17): their cells mix buckets or reach outside the window, so their rows are read raw."""
    return sorted({p - p % HOUR_NS for p in points if lo <= p <= hi and p % HOUR_NS})


def _combined_sql(metric_id: str, filters: Filters, edges: list[int], lo: int, hi: int) -> tuple[str, dict]:
    """CTEs ending in `combined (b, g, n, s, lo, hi)`: per bucket of `edges` (width_bucket) and group, the count,
    sum, min and max of the values in [lo, hi), from the cells of hours that lie wholly inside the window and one
    bucket and whose UTC day has no dirty row, plus the raw rows of every other hour (fringe hours, dirty days).
    Cells and dirty rows are read by one statement, hence in one snapshot (the argument in ingest/rollups.py)."""
    column = filters.time_column
    grouped = filters.group_expr is not None
    any_device = not grouped and filters.device_ids is NOT_SET
    params: dict[str, Any] = {
        "metric_id": metric_id,
        # kinds 2/3 hold one cell per hour over all devices: enough when no device matters
        "kind": KIND_OF_COLUMN[column] + (ALL_DEVICES if any_device else 0),
        "lo": lo,
        "hi": hi,
        "last_hour": hi - HOUR_NS,
        "day_lo": lo // DAY_NS,
        "day_hi": (hi - 1) // DAY_NS,
        "edges": edges,
    }
    fringe = fringe_hours([*edges, lo, hi], lo, hi)
    params["f_lo"] = [max(h, lo) for h in fringe]
    params["f_hi"] = [min(h + HOUR_NS, hi) for h in fringe]
    params["f_day"] = [h // DAY_NS for h in fringe]
    cell_group = "c.device_id" if grouped else "CAST(NULL AS text)"
    raw_group = "v.device_id" if grouped else "CAST(NULL AS text)"
    edges_sql = "CAST(:edges AS bigint[])"
    sql = (
        "WITH dirty AS (SELECT DISTINCT day FROM rollup_dirty WHERE metric_id = :metric_id "
        "AND day >= :day_lo AND day <= :day_hi), "
        "ranges AS (SELECT f.a, f.b FROM unnest(CAST(:f_lo AS bigint[]), CAST(:f_hi AS bigint[]), "
        "CAST(:f_day AS bigint[])) AS f(a, b, day) WHERE f.day NOT IN (SELECT day FROM dirty) "
        f"UNION ALL SELECT greatest(d.day * {DAY_NS}, :lo), "
        f"CAST(least(CAST(d.day + 1 AS numeric) * {DAY_NS}, :hi) AS bigint) FROM dirty d), "
        f"cells AS (SELECT width_bucket(c.hour_ns, {edges_sql}) AS b, {cell_group} AS g, "
        "CAST(sum(c.n) AS bigint) AS n, "
        "sum(c.total) AS s, min(c.lo) AS lo, max(c.hi) AS hi FROM metric_rollups c "
        "WHERE c.metric_id = :metric_id AND c.kind = :kind AND c.hour_ns >= :lo AND c.hour_ns <= :last_hour "
        f"AND width_bucket(c.hour_ns, {edges_sql}) = width_bucket(c.hour_ns + {HOUR_NS - 1}, {edges_sql}) "
        "AND rollup_day(c.hour_ns) NOT IN (SELECT day FROM dirty) "
        f"AND {_device_clause('c.device_id', filters.device_ids, params)} "
        "GROUP BY 1, 2), "
        f"raw AS (SELECT width_bucket(v.t, {edges_sql}) AS b, v.g, count(*) AS n, sum(v.value) AS s, "
        "min(v.value) AS lo, max(v.value) AS hi FROM ranges r "
        f"CROSS JOIN LATERAL (SELECT v.{column} AS t, {raw_group} AS g, v.value FROM metric_values v "
        f"WHERE {value_range('v', column, ':metric_id', 'r.a', 'r.b')} "
        f"AND {_device_clause('v.device_id', filters.device_ids, params)} OFFSET 0) AS v GROUP BY 1, 2), "
        "combined AS (SELECT b, g, CAST(sum(n) AS bigint) AS n, sum(s) AS s, min(lo) AS lo, max(hi) AS hi "
        "FROM (SELECT * FROM cells UNION ALL SELECT * FROM raw) AS x GROUP BY b, g) "
    )
    return sql, params


def count_combined(conn: Connection, metric_id: str, filters: Filters, lo: int, hi: int) -> int:
    """`total_count` of a query page: rows in [lo, hi), from the rollups (one bucket spanning the window)."""
    sql, params = _combined_sql(metric_id, filters, [lo, hi], lo, hi)
    return int(conn.execute(text(sql + "SELECT COALESCE(sum(n), 0) FROM combined"), params).scalar_one())


def _bucket_value(aggregation: str, n: int, s: float, lo: float, hi: float) -> float:
    if aggregation == "sum":
        return s
    if aggregation == "mean":
        return s / n
    if aggregation == "max":
        return hi
    if aggregation == "min":
        return lo
    return float(n)


def aggregate_combined(conn: Connection, spec: AggregateSpec) -> AggregateResult:
    lo, hi = periods.clamp_window(spec.start_ns, spec.end_ns)
    edges = periods.period_edges(lo, hi, spec.period, spec.zone, spec.week_start)
    grouped = spec.filters.group_expr is not None
    if not edges:
        return AggregateResult([], 0 if grouped else None)
    if spec.widen:
        lo, hi = edges[0], edges[-1]
    if lo >= hi:
        return AggregateResult([], 0 if grouped else None)
    sql, params = _combined_sql(spec.metric["metric_id"], spec.filters, edges, lo, hi)
    if grouped:
        params["max_groups"] = MAX_GROUPS
        sql += (
            ", ranked AS (SELECT g, sum(n) AS gn FROM combined WHERE g IS NOT NULL GROUP BY g), "
            "top AS (SELECT g FROM ranked ORDER BY gn DESC, g LIMIT :max_groups) "
            "SELECT b, g, n, s, lo, hi, (SELECT count(*) FROM ranked) AS total_groups FROM combined "
            "WHERE g IS NULL OR g IN (SELECT g FROM top) ORDER BY b, g NULLS LAST"
        )
    else:
        sql += "SELECT b, g, n, s, lo, hi, NULL AS total_groups FROM combined ORDER BY b"
    rows = conn.execute(text(sql), params).all()
    buckets = [
        Bucket(edges[r.b - 1], edges[r.b], int(r.n), _bucket_value(spec.aggregation, r.n, r.s, r.lo, r.hi), r.g)
        for r in rows
    ]
    if not grouped:
        return AggregateResult(buckets)
    total = int(rows[0].total_groups) if rows else 0
    return AggregateResult(buckets, total, total > MAX_GROUPS)
