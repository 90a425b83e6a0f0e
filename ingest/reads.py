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


def metric_rows(alias: str = "v") -> str:
    """The predicate selecting one metric's rows of metric_values (bound parameter `:metric_id`). The indexes lead
    with the compact `metric_key` (unique per definition, ingest.schema), so every metric_values range is written
    through this."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}metric_key = hashtextextended(CAST(:metric_id AS text), 0)"


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


def where_sql(metric_id: str, filters: Filters, lo: int, hi: int) -> tuple[str, dict]:
    col = f"v.{filters.time_column}"
    parts = [metric_rows(), f"{col} >= :lo", f"{col} < :hi"]
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
        total_count = conn.execute(text(f"SELECT count(*) FROM metric_values v WHERE {where}"), params).scalar_one()
    else:
        total_count = position.get("c")
        if isinstance(total_count, bool) or not isinstance(total_count, int):
            raise InvalidRequest("page_token is not a valid page token")
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
