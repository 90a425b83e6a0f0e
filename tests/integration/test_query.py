"""POST /v1/metrics/query over HTTP against the live stack: window, filters, order, keyset pages, tokens, errors."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.support.metric_rows import Row, define, insert

S = 1_000_000_000
T0 = 1_777_593_600 * S  # 2026-05-01T00:00Z


def body(name: str, **overrides) -> dict:
    b = {
        "name": name,
        "time_filter": "end_time",
        "start_time_ns": None,
        "end_time_ns": None,
        "max_results": 10000,
        "include_device_ids": {},
        "include_session_ids": {},
        "include_invocation_ids": {},
    }
    b.update(overrides)
    return b


@pytest.fixture
def seeded(tenant):
    metric_id = define(tenant, "cpu.usage_max")
    rows = [
        Row("ss_a", 1.0, T0, T0 + 10 * S, "robot01", "iv_1"),
        Row("ss_b", 2.0, T0 + 5 * S, T0 + 10 * S, None, None),  # same end as ss_a: session_id breaks the tie
        Row("ss_c", 3.0, T0 + 1 * S, T0 + 20 * S, "robot02", "iv_2"),
        Row("ss_d", -4.5, T0 - 100 * S, T0 + 30 * S, "robot01", None),
    ]
    insert(tenant, metric_id, rows)
    return tenant, metric_id


def post(client, b: dict, token: str | None = None):
    return client.post("/v1/metrics/query", json=b, params={"page_token": token} if token else None)


def pages(client, b: dict):
    """Every page of a query, following next_token as the SDK does (same body, ?page_token=)."""
    token = None
    while True:
        resp = post(client, b, token)
        yield resp
        token = resp.json()["data"]["next_token"]
        if token is None:
            return


def sessions(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r["session_id"] for r in resp.json()["data"]["items"]]


def test_default_window_order_and_record_shape(seeded):
    tenant, metric_id = seeded
    with tenant.client() as c:
        resp = post(c, body("cpu.usage_max"))
    assert sessions(resp) == ["ss_a", "ss_b", "ss_c", "ss_d"]
    data = resp.json()["data"]
    assert data["next_token"] is None and data["total_count"] == 4
    first = data["items"][0]
    assert first["org_id"] == tenant.org_id and first["metric_id"] == metric_id and first["name"] == "cpu.usage_max"
    assert first["min_timestamp_ns"] == T0 and first["max_timestamp_ns"] == T0 + 10 * S
    assert first["device_id"] == "robot01" and first["invocation_id"] == "iv_1" and first["value"] == 1.0
    assert first["published"] == "2026-05-01T12:00:00.000000Z" and first["published_by"] == tenant.principal


def test_time_filter_and_half_open_window(seeded):
    tenant, _ = seeded
    with tenant.client() as c:
        by_end = post(c, body("cpu.usage_max", start_time_ns=T0 + 10 * S, end_time_ns=T0 + 30 * S))
        by_start = post(c, body("cpu.usage_max", time_filter="start_time", start_time_ns=T0, end_time_ns=T0 + 5 * S))
    assert sessions(by_end) == ["ss_a", "ss_b", "ss_c"]  # 30 s is excluded
    assert sessions(by_start) == ["ss_a", "ss_c"]  # ss_d starts before, ss_b at the (exclusive) end


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"include_device_ids": ["robot01"]}, ["ss_a", "ss_d"]),
        ({"include_device_ids": None}, ["ss_b"]),
        ({"include_device_ids": []}, []),
        ({"include_invocation_ids": None}, ["ss_b", "ss_d"]),
        ({"include_invocation_ids": ["iv_2", "iv_9"]}, ["ss_c"]),
        ({"include_session_ids": ["ss_c", "ss_a"]}, ["ss_a", "ss_c"]),
        ({"include_device_ids": ["robot01"], "include_invocation_ids": None}, ["ss_d"]),
    ],
)
def test_id_filters(seeded, filters, expected):
    tenant, _ = seeded
    with tenant.client() as c:
        assert sessions(post(c, body("cpu.usage_max", **filters))) == expected


def test_absent_keys_mean_not_set(seeded):
    tenant, _ = seeded
    with tenant.client() as c:
        assert sessions(post(c, {"name": "cpu.usage_max"})) == ["ss_a", "ss_b", "ss_c", "ss_d"]


def test_pages_with_bound_token(seeded):
    tenant, _ = seeded
    b = body("cpu.usage_max", max_results=1)
    seen, token = [], None
    with tenant.client() as c:
        for _ in range(10):
            resp = post(c, b, token)
            seen += sessions(resp)
            token = resp.json()["data"]["next_token"]
            assert resp.json()["data"]["total_count"] == 4
            if token is None:
                break
    assert seen == ["ss_a", "ss_b", "ss_c", "ss_d"]


def test_token_with_other_body_or_forged_is_400(seeded, other_tenant):
    tenant, _ = seeded
    with tenant.client() as c:
        token = post(c, body("cpu.usage_max", max_results=1)).json()["data"]["next_token"]
        other = post(c, body("cpu.usage_max", max_results=2), token)
        assert other.status_code == 400
        assert other.json()["error"]["error_code"] == "RobotoInvalidRequestException"
        for forged in ("garbage", "eyJwIjoxfQ", token[:-3] + "AAA"):
            resp = post(c, body("cpu.usage_max", max_results=1), forged)
            assert resp.status_code == 400, (forged, resp.text)
        # A well-formed token with the right binding but a position of the wrong types: still a 400.
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        for bad in ({"k": "x", "s": 1, "n": 1, "c": 1}, {"k": 1, "s": "a", "n": "now", "c": 1}, {}):
            raw = json.dumps({"p": bad, "b": doc["b"]}).encode()
            t = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            resp = post(c, body("cpu.usage_max", max_results=1), t)
            assert resp.status_code == 400, (bad, resp.text)
    # Another org re-sending the same body with the token: not its token.
    define(other_tenant, "cpu.usage_max")
    with other_tenant.client() as c:
        assert post(c, body("cpu.usage_max", max_results=1), token).status_code == 400


@pytest.mark.parametrize(
    "bad",
    [
        {"max_results": 0},
        {"max_results": 10001},
        {"max_results": "5"},
        {"include_session_ids": None},
        {"include_device_ids": "robot01"},
        {"include_device_ids": {"a": 1}},
        {"time_filter": "middle"},
        {"start_time_ns": "yesterday"},
        {"sort_by": "colour"},
        {"sort_by": "group_key"},
        {"descending": "yes"},
    ],
)
def test_invalid_bodies_are_400(seeded, bad):
    tenant, _ = seeded
    with tenant.client() as c:
        resp = post(c, body("cpu.usage_max", **bad))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["error_code"] == "RobotoInvalidRequestException"


def test_unknown_metric_and_other_org_are_404(seeded, other_tenant):
    tenant, _ = seeded
    with tenant.client() as c:
        resp = post(c, body("never.defined"))
    assert resp.status_code == 404 and resp.json()["error"]["error_code"] == "RobotoNotFoundException"
    with other_tenant.client() as c:
        assert post(c, body("cpu.usage_max")).status_code == 404


@pytest.mark.parametrize(
    ("sort_by", "descending", "expected"),
    [
        ("time", True, ["ss_d", "ss_c", "ss_b", "ss_a"]),
        ("value", False, ["ss_d", "ss_a", "ss_b", "ss_c"]),
        ("value", True, ["ss_c", "ss_b", "ss_a", "ss_d"]),
        ("device_id", False, ["ss_a", "ss_d", "ss_c", "ss_b"]),  # nulls last
        ("device_id", True, ["ss_c", "ss_d", "ss_a", "ss_b"]),  # nulls still last
        ("invocation_id", False, ["ss_a", "ss_c", "ss_b", "ss_d"]),
        ("session_id", True, ["ss_d", "ss_c", "ss_b", "ss_a"]),
        ("published", False, ["ss_a", "ss_b", "ss_c", "ss_d"]),
    ],
)
def test_sort_by_and_descending_across_pages(seeded, sort_by, descending, expected):
    tenant, _ = seeded
    b = body("cpu.usage_max", max_results=1, sort_by=sort_by, descending=descending, condition=None, group_by=None)
    with tenant.client() as c:
        seen = [s for resp in pages(c, b) for s in sessions(resp)]
    assert seen == expected


def test_group_by_device_sets_group_key_and_counts(seeded):
    tenant, _ = seeded
    b = body("cpu.usage_max", group_by="device.device_id", sort_by="group_key", max_results=2)
    items, token = [], None
    with tenant.client() as c:
        while True:
            resp = post(c, b, token)
            assert resp.status_code == 200, resp.text
            data = resp.json()["data"]
            assert data["total_groups"] == 2 and data["groups_truncated"] is False
            items += data["items"]
            token = data["next_token"]
            if token is None:
                break
    assert [(i["session_id"], i["group_key"]) for i in items] == [
        ("ss_a", "robot01"),
        ("ss_d", "robot01"),
        ("ss_c", "robot02"),
        ("ss_b", None),
    ]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "session.session_id", "comparator": "EQUALS", "value": "ss_c"}, ["ss_c"]),
        ({"field": "sessions.id", "comparator": "NOT_EQUALS", "value": "ss_c"}, ["ss_a", "ss_b", "ss_d"]),
        ({"field": "device.device_id", "comparator": "NOT_EQUALS", "value": "robot01"}, ["ss_c"]),
        ({"field": "device.device_id", "comparator": "IS_NULL"}, ["ss_b"]),
        ({"field": "device.id", "comparator": "BEGINS_WITH", "value": "robot"}, ["ss_a", "ss_c", "ss_d"]),
        ({"field": "device.device_id", "comparator": "LIKE", "value": "%02"}, ["ss_c"]),
        ({"field": "session.start_time", "comparator": "LESS_THAN", "value": T0}, ["ss_d"]),
        (
            {
                "field": "session.min_timestamp_ns",
                "comparator": "GREATER_THAN_OR_EQUAL",
                "value": "2026-05-01T00:00:01Z",
            },
            ["ss_b", "ss_c"],
        ),
        ({"field": "session.duration", "comparator": "GREATER_THAN", "value": 15 * S}, ["ss_c", "ss_d"]),
        ({"field": "session.end_time", "comparator": "EQUALS", "value": (T0 + 20 * S) / S}, ["ss_c"]),
        (
            {
                "operator": "OR",
                "conditions": [
                    {"field": "device.device_id", "comparator": "EQUALS", "value": "robot02"},
                    {
                        "operator": "AND",
                        "conditions": [
                            {"field": "device.device_id", "comparator": "IS_NOT_NULL"},
                            {"field": "session.session_id", "comparator": "CONTAINS", "value": "d"},
                        ],
                    },
                ],
            },
            ["ss_c", "ss_d"],
        ),
    ],
)
def test_conditions(seeded, condition, expected):
    tenant, _ = seeded
    with tenant.client() as c:
        assert sessions(post(c, body("cpu.usage_max", condition=condition))) == expected


@pytest.mark.parametrize(
    ("extra", "names_field"),
    [
        ({"condition": {"field": "session.custom.region", "comparator": "EQUALS", "value": "emea"}}, "session.custom"),
        ({"condition": {"field": "collection.id", "comparator": "EQUALS", "value": "cl_1"}}, "collection.id"),
        ({"condition": {"field": "session.tags", "comparator": "CONTAINS", "value": "x"}}, "session.tags"),
        ({"condition": {"field": "name", "comparator": "EQUALS", "value": "x"}}, "name"),
        ({"condition": {"field": "session.duration", "comparator": "LIKE", "value": "1%"}}, "session.duration"),
        ({"condition": {"field": "session.start_time", "comparator": "EQUALS", "value": "soon"}}, "session.start"),
        ({"condition": {"operator": "NOT", "conditions": []}}, "NOT"),
        ({"group_by": "session.custom.region"}, "session.custom.region"),
        ({"group_by": "session.session_id"}, "session.session_id"),
    ],
)
def test_unsupported_condition_or_group_is_illegal_argument(seeded, extra, names_field):
    tenant, _ = seeded
    with tenant.client() as c:
        resp = post(c, body("cpu.usage_max", **extra))
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["error_code"] == "RobotoIllegalArgumentException"
    assert names_field in err["message"] or names_field.lower() in err["message"].lower()


def test_pages_are_stable_under_concurrent_inserts(tenant):
    metric_id = define(tenant, "stable.metric")
    insert(tenant, metric_id, [Row(f"ss_{i:03d}", float(i), T0, T0 + i * S) for i in range(0, 100, 2)])
    b = body("stable.metric", max_results=7)
    seen, extra = [], 0
    with tenant.client() as c:
        for resp in pages(c, b):
            seen += sessions(resp)
            # Rows land before and after the cursor between pages.
            insert(tenant, metric_id, [Row(f"ss_{extra:03d}x", 0.0, T0, T0 + extra * S + 1)])
            extra += 13
    original = [f"ss_{i:03d}" for i in range(0, 100, 2)]
    assert [s for s in seen if not s.endswith("x")] == original
    assert len(seen) == len(set(seen))


def test_records_rendered_by_postgres_match_wire_metric_record(tenant):
    """Values of every type survive the page path (binary cursor, wire.metric_record, JSON) unchanged."""
    from datetime import UTC, datetime

    from api_shim import wire

    metric_id = define(tenant, "render.check")
    tenant.sql("UPDATE metric_definitions SET unit = %s WHERE metric_id = %s", 'm/s "fast"', metric_id)
    published = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    values = [1e-300, 123456789.123456789, -0.0, 2.5e300, 1 / 3]
    insert(
        tenant,
        metric_id,
        [Row(f"ss_{i}", v, T0 + i, T0 + 2 * i, "dev\u00e9", 'iv_"q"', published) for i, v in enumerate(values)],
    )
    cols = (
        "v.org_id, v.metric_id, d.name, d.unit, v.session_id, v.value, v.device_id, v.invocation_id, "
        "v.session_start_ns, v.session_end_ns, v.published_by, v.published"
    )
    stored = tenant.sql(
        f"SELECT {cols} FROM metric_values v JOIN metric_definitions d USING (metric_id) "
        "WHERE v.metric_id = %s ORDER BY v.session_end_ns",
        metric_id,
    )
    names = [c.strip().split(".")[1] for c in cols.split(",")]
    expected = [wire.metric_record({**dict(zip(names, r, strict=True)), "group_key": None}) for r in stored]
    with tenant.client() as c:
        got = post(c, body("render.check")).json()["data"]["items"]
    assert got == expected
    assert [g["value"] for g in got] == values


def test_conditions_on_session_and_device_rows(seeded):
    """session.created / session.modified / device.created read the sessions and devices tables."""
    tenant, _ = seeded
    tenant.session("ss_a")
    tenant.session("ss_c")
    tenant.device("robot01")
    cases = [
        ({"field": "session.created", "comparator": "IS_NOT_NULL"}, ["ss_a", "ss_c"]),
        ({"field": "session.created", "comparator": "GREATER_THAN", "value": "2020-01-01T00:00:00Z"}, ["ss_a", "ss_c"]),
        ({"field": "session.modified", "comparator": "LESS_THAN", "value": "2020-01-01T00:00:00Z"}, []),
        ({"field": "device.created", "comparator": "IS_NOT_NULL"}, ["ss_a", "ss_d"]),
    ]
    with tenant.client() as c:
        for condition, expected in cases:
            assert sessions(post(c, body("cpu.usage_max", condition=condition))) == expected, condition


def test_resource_owner_header_picks_the_org(seeded, other_tenant):
    tenant, _ = seeded
    # A token of the other org that may also act for the tenant's org reads it through the owner header.
    token = other_tenant.token_for("multi@example.com", orgs=(tenant.org_id,))
    with httpx.Client(base_url=tenant.api_url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert post(c, body("cpu.usage_max")).status_code == 404  # its own org has no such metric
        c.headers["X-Roboto-Resource-Owner-Id"] = tenant.org_id
        assert sessions(post(c, body("cpu.usage_max"))) == ["ss_a", "ss_b", "ss_c", "ss_d"]
        agg = c.post(
            "/v1/metrics/aggregate",
            json={
                "name": "cpu.usage_max",
                "period": "yearly",
                "aggregation": "count",
                "start_time_ns": 0,
                "end_time_ns": T0 + 100 * S,
            },
        )
        assert agg.status_code == 200 and agg.json()["data"]["records"][0]["total"] == 4
    with tenant.client(**{"X-Roboto-Resource-Owner-Id": other_tenant.org_id}) as c:
        assert post(c, body("cpu.usage_max")).status_code == 404  # not an org this token may read
