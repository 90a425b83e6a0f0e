"""Metric.query and Metric.aggregate through the real SDK: roboto 0.53.0 in-process, 0.62.0 in its own virtualenv."""

from __future__ import annotations

import datetime

import pytest
from roboto.domain.metrics import AggregationPeriod, Metric, MetricEntry, MetricTimeFilter, NumericAggregation
from roboto.exceptions import RobotoInvalidRequestException, RobotoNotFoundException

from tests.support.metric_rows import Row, insert

S = 1_000_000_000
UTC = datetime.UTC


def ns(*args) -> int:
    d = datetime.datetime(*args, tzinfo=UTC) - datetime.datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86400 + d.seconds) * S


@pytest.fixture
def published(tenant, sdk):
    """Three sessions published through the SDK (the live worker stores them) plus 20 rows written directly."""
    tenant.device("robot01")
    for i, day in enumerate((3, 10, 17)):
        sid = tenant.session(f"ss_sdk{i}", start_ns=ns(2026, 5, day), end_ns=ns(2026, 5, day, 1), devices=("robot01",))
        result = Metric.publish(sid, [MetricEntry(name="cpu.usage_max", value=float(i))], roboto_client=sdk)
        assert not result.failed
    metric_id = tenant.sql("SELECT metric_id FROM metric_definitions WHERE org_id = %s", tenant.org_id)[0][0]
    rows = [
        Row(f"ss_row{i:02d}", 10.0 + i, ns(2026, 1 + i % 10, 1 + i), ns(2026, 1 + i % 10, 1 + i, 2), None)
        for i in range(20)
    ]
    insert(tenant, metric_id, rows)
    return tenant


def test_query_iterates_every_page_053(published, sdk):
    got = list(Metric.query("cpu.usage_max", max_results=4, roboto_client=sdk))
    assert len(got) == 23
    keys = [(m.max_timestamp_ns, m.session_id) for m in got]
    assert keys == sorted(keys)
    sdk_rows = [m for m in got if m.session_id.startswith("ss_sdk")]
    assert [(m.session_id, m.value, m.device_id) for m in sdk_rows] == [
        ("ss_sdk0", 0.0, "robot01"),
        ("ss_sdk1", 1.0, "robot01"),
        ("ss_sdk2", 2.0, "robot01"),
    ]
    assert sdk_rows[0].record.published_by == published.principal


def test_query_window_and_filters_053(published, sdk):
    may = list(
        Metric.query(
            "cpu.usage_max",
            start_time="2026-05-01T00:00:00Z",
            end_time=datetime.datetime(2026, 6, 1, tzinfo=UTC),
            time_filter=MetricTimeFilter.StartTime,
            max_results=2,
            roboto_client=sdk,
        )
    )
    assert [m.session_id for m in may] == ["ss_sdk0", "ss_row04", "ss_sdk1", "ss_row14", "ss_sdk2"]
    no_device = list(Metric.query("cpu.usage_max", include_device_ids=None, max_results=7, roboto_client=sdk))
    assert len(no_device) == 20 and all(m.device_id is None for m in no_device)
    picked = list(Metric.query("cpu.usage_max", include_session_ids=["ss_sdk1", "ss_row03"], roboto_client=sdk))
    assert [m.session_id for m in picked] == ["ss_row03", "ss_sdk1"]


@pytest.mark.parametrize("period", list(AggregationPeriod))
def test_aggregate_every_period_053(published, sdk, period):
    records = Metric.aggregate(
        "cpu.usage_max",
        period=period,
        aggregation=NumericAggregation.Count,
        start_time=datetime.datetime(2026, 5, 2, tzinfo=UTC),
        end_time=datetime.datetime(2026, 5, 18, tzinfo=UTC),
        roboto_client=sdk,
    )
    assert records, period
    assert [r.start_time for r in records] == sorted(r.start_time for r in records)
    assert all(r.period == period and r.aggregation == NumericAggregation.Count for r in records)
    total = sum(r.total for r in records)
    # Widened to whole periods: 3 SDK sessions + ss_row04 and ss_row14 in May; Q2 adds 4 rows in April and June.
    expected = {"daily": 5, "weekly": 5, "monthly": 5, "quarterly": 9, "yearly": 23}[period.value]
    assert total == expected
    assert all(r.value == float(r.total) for r in records)


@pytest.mark.parametrize("aggregation", list(NumericAggregation))
def test_aggregate_every_function_053(published, sdk, aggregation):
    (record,) = Metric.aggregate(
        "cpu.usage_max",
        period=AggregationPeriod.Monthly,
        aggregation=aggregation,
        start_time=ns(2026, 5, 1),
        end_time=ns(2026, 5, 31),
        include_device_ids=["robot01"],
        roboto_client=sdk,
    )
    assert record.start_time == ns(2026, 5, 1) and record.end_time == ns(2026, 6, 1) and record.total == 3
    assert record.value == {"sum": 3.0, "mean": 1.0, "max": 2.0, "min": 0.0, "count": 3.0}[aggregation.value]


def test_unknown_metric_raises_not_found_053(tenant, sdk):
    with pytest.raises(RobotoNotFoundException):
        list(Metric.query("no.such.metric", roboto_client=sdk))
    with pytest.raises(RobotoNotFoundException):
        Metric.aggregate("no.such.metric", AggregationPeriod.Daily, NumericAggregation.Sum, 0, 1, roboto_client=sdk)


def test_bad_time_filter_raises_invalid_request_053(published, sdk):
    from roboto.domain.metrics.record import QueryMetricsRequest

    body = QueryMetricsRequest(name="cpu.usage_max").model_dump(mode="json")
    body["time_filter"] = "sideways"
    with pytest.raises(RobotoInvalidRequestException):
        sdk.post("v1/metrics/query", data=body, idempotent=True)


def test_062_query_parameters_and_aggregate(published, run062):
    out = run062(
        """
        from roboto.domain.metrics import Metric, AggregationPeriod, NumericAggregation, DayOfWeek
        from roboto.query import Condition, ConditionGroup, ConditionOperator, Comparator
        from roboto.exceptions import RobotoIllegalArgumentException, RobotoInvalidRequestException
        top = list(Metric.query("cpu.usage_max", sort_by="value", descending=True, max_results=3, roboto_client=client))
        emit([m.value for m in top])
        grouped = list(Metric.query("cpu.usage_max", group_by="device.device_id", sort_by="group_key",
                                    max_results=5, roboto_client=client))
        emit([m.record.group_key for m in grouped])
        cond = ConditionGroup(operator=ConditionOperator.And, conditions=[
            Condition(field="device.device_id", comparator=Comparator.Equals, value="robot01"),
            Condition(field="session.start_time", comparator=Comparator.GreaterThanOrEqual,
                      value="2026-05-10T00:00:00Z"),
        ])
        emit([m.session_id for m in Metric.query("cpu.usage_max", condition=cond, max_results=1, roboto_client=client)])
        recs = Metric.aggregate("cpu.usage_max", AggregationPeriod.Weekly, NumericAggregation.Sum,
                                start_time="2026-05-01T00:00:00Z", end_time="2026-05-31T00:00:00Z",
                                time_zone="Europe/Berlin", week_start=DayOfWeek.Sunday,
                                group_by="device.device_id", roboto_client=client)
        emit([[r.start_time, r.end_time, r.total, r.value, r.group_key] for r in recs])
        for kwargs in ({"time_zone": "CET"}, {"time_zone": "Not/AZone"}, {"group_by": "session.custom.region"},
                       {"condition": Condition(field="session.custom.region", comparator=Comparator.Equals,
                                               value="emea")}):
            try:
                Metric.aggregate("cpu.usage_max", AggregationPeriod.Daily, NumericAggregation.Sum, 0, 1,
                                 roboto_client=client, **kwargs)
                emit("no error")
            except RobotoIllegalArgumentException as exc:
                emit(["illegal", str(exc)])
        try:
            list(Metric.query("cpu.usage_max", sort_by="colour", roboto_client=client))
        except RobotoInvalidRequestException:
            emit("invalid")
        """
    )
    values, group_keys, conditioned, weekly, *errors, sort_error = out
    assert values == sorted(values, reverse=True) and values[0] == 29.0 and len(values) == 23
    assert group_keys == ["robot01"] * 3 + [None] * 20
    assert conditioned == ["ss_sdk1", "ss_sdk2"]
    berlin_may3 = ns(2026, 5, 2, 22)  # Sunday 2026-05-03 00:00 in Berlin (UTC+2)
    week = 7 * 24 * 3600 * S
    assert [w for w in weekly if w[4] == "robot01"] == [
        [berlin_may3, berlin_may3 + week, 1, 0.0, "robot01"],
        [berlin_may3 + week, berlin_may3 + 2 * week, 1, 1.0, "robot01"],
        [berlin_may3 + 2 * week, berlin_may3 + 3 * week, 1, 2.0, "robot01"],
    ]
    assert all(e[0] == "illegal" for e in errors), errors
    assert "CET" in errors[0][1] and "session.custom.region" in errors[2][1]
    assert sort_error == "invalid"
