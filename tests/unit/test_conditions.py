"""roboto 0.62 `condition` trees compiled to SQL: fields, aliases, comparators, value conversion, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.conditions import MAX_CONDITIONS, compile_condition, resolve_field, to_epoch_ns
from ingest.errors import IllegalArgument


def test_no_condition_compiles_to_nothing():
    assert compile_condition(None) is None


@pytest.mark.parametrize(
    ("name", "canonical", "expr"),
    [
        ("session.id", "session.session_id", "v.session_id"),
        ("sessions.start_time", "session.min_timestamp_ns", "v.session_start_ns"),
        ("session.end_time", "session.max_timestamp_ns", "v.session_end_ns"),
        ("device.id", "device.device_id", "v.device_id"),
        ("Devices.device_id", "device.device_id", "v.device_id"),
    ],
)
def test_fields_and_their_aliases_resolve(name, canonical, expr):
    found, sql, _ = resolve_field(name)
    assert (found, sql) == (canonical, expr)


@pytest.mark.parametrize("name", ["session_id", "dataset.id", "session.tags", "robot.id", 7, None])
def test_unknown_or_unmodelled_fields_are_refused_by_name(name):
    with pytest.raises(IllegalArgument):
        resolve_field(name)


def test_leaf_binds_its_value_with_the_fields_type():
    compiled = compile_condition({"field": "session.duration", "comparator": "GREATER_THAN", "value": "60"})
    assert compiled is not None
    assert compiled.sql == "((v.session_end_ns - v.session_start_ns) > CAST(:c0 AS bigint))"
    assert compiled.params == {"c0": 60}


def test_groups_nest_and_number_their_parameters_in_order():
    compiled = compile_condition(
        {
            "operator": "OR",
            "conditions": [
                {"field": "device.id", "comparator": "EQUALS", "value": "dv_1"},
                {
                    "operator": "AND",
                    "conditions": [
                        {"field": "session.id", "comparator": "BEGINS_WITH", "value": "ss_"},
                        {"field": "device.id", "comparator": "IS_NULL"},
                    ],
                },
            ],
        }
    )
    assert compiled is not None
    assert compiled.sql.startswith("((v.device_id = CAST(:c0 AS text)) OR (")
    assert "v.device_id IS NULL" in compiled.sql
    assert compiled.params == {"c0": "dv_1", "c1": "ss_", "c2": "ss_"}


def test_empty_groups_are_neutral():
    assert compile_condition({"operator": "AND", "conditions": []}).sql == "TRUE"  # type: ignore[union-attr]
    assert compile_condition({"operator": "OR", "conditions": []}).sql == "FALSE"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "condition",
    [
        {"operator": "NOT", "conditions": [{"field": "device.id", "comparator": "IS_NULL"}]},
        {"operator": "XOR", "conditions": []},
        {"operator": "AND", "conditions": "nope"},
        {"field": "session.start_time", "comparator": "CONTAINS", "value": "1"},
        {"field": "device.id", "comparator": "SIMILAR", "value": "x"},
        {"field": "device.id"},
        {"field": "session.start_time", "comparator": "EQUALS", "value": "yesterday"},
        {"field": "session.duration", "comparator": "EQUALS", "value": 1.5},
        ["not", "an", "object"],
    ],
)
def test_malformed_conditions_are_illegal_arguments(condition):
    with pytest.raises(IllegalArgument):
        compile_condition(condition)


def test_a_condition_tree_is_bounded():
    wide = {"operator": "AND", "conditions": [{"field": "device.id", "comparator": "IS_NULL"}] * MAX_CONDITIONS}
    with pytest.raises(IllegalArgument, match="too large"):
        compile_condition(wide)
    deep: dict = {"field": "device.id", "comparator": "IS_NULL"}
    for _ in range(20):
        deep = {"operator": "AND", "conditions": [deep]}
    with pytest.raises(IllegalArgument, match="too large"):
        compile_condition(deep)


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        (1_700_000_000_000_000_000, 1_700_000_000_000_000_000),  # an int is nanoseconds
        (1.5, 1_500_000_000),  # a float is seconds
        ("2.25", 2_250_000_000),  # so is a numeric string
        ("1970-01-01T00:00:01Z", 1_000_000_000),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1970-01-01T00:00:00.000001", 1_000),  # no zone: UTC
    ],
)
def test_times_convert_like_the_sdk(value, ns):
    assert to_epoch_ns(value, "session.start_time") == ns


def test_timestamps_compare_as_timestamps():
    compiled = compile_condition({"field": "session.created", "comparator": "LESS_THAN", "value": 86_400.0})
    assert compiled is not None and compiled.params == {"c0": datetime(1970, 1, 2, tzinfo=UTC)}


def test_times_beyond_the_representable_range_compare_as_its_ends():
    far = compile_condition({"field": "session.created", "comparator": "LESS_THAN", "value": 10**30})
    before = compile_condition({"field": "session.start_time", "comparator": "GREATER_THAN", "value": -1e40})
    assert far is not None and far.params["c0"].year == 9999
    assert before is not None and before.params["c0"] == -(2**63)


def test_a_json_integer_may_come_as_a_float():
    compiled = compile_condition({"field": "session.duration", "comparator": "EQUALS", "value": 60.0})
    assert compiled is not None and compiled.params == {"c0": 60}
