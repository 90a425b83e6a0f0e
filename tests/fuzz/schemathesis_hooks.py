"""What the service checks that JSON Schema cannot say (a relation between two fields), told to schemathesis so that
the cases it calls valid are valid. Loaded by tests/fuzz/test_schemathesis_cli.py (`hooks` in its config)."""

from __future__ import annotations

import schemathesis


@schemathesis.hook("filter_body").apply_to(method="POST", path="/v1/sessions")
def session_ends_after_it_starts(_context, body) -> bool:
    if not isinstance(body, dict):
        return True
    start, end = body.get("start_time_ns"), body.get("end_time_ns")
    return not (isinstance(start, int | float) and isinstance(end, int | float)) or end >= start


@schemathesis.hook("filter_body").apply_to(method="PUT", path_regex=r"^/v1/sessions/")
def changed_times_keep_their_order(_context, body) -> bool:
    """One bound alone is checked against the stored other one, which earlier cases may have moved: only cases that
    give both (in order) or neither are known valid."""
    if not isinstance(body, dict):
        return True
    start, end = body.get("start_time_ns"), body.get("end_time_ns")
    if not all(isinstance(t, int | float | None) for t in (start, end)):
        return True  # not valid anyway: whatever it is, it is refused
    return (start is None and end is None) or (start is not None and end is not None and end >= start)


@schemathesis.hook("filter_body").apply_to(method="POST", path="/v1/metrics/query")
def sorting_by_group_needs_a_group(_context, body) -> bool:
    return not isinstance(body, dict) or body.get("sort_by") != "group_key" or body.get("group_by") is not None


# Some generated reads, publishes and sessions name the fixture's real session, metric and device (the rest keep
# their random, unknown names and get their 404), so that every operation also reaches its core logic.
FIXTURE = {"session_id": "ss_fuzz", "name": "fuzz.a", "device_id": "dv_fuzz"}


def _half(body: dict) -> bool:
    return sum(map(ord, repr(sorted(body.items())))) % 2 == 0


@schemathesis.hook("map_body").apply_to(method="POST", path="/v1/metrics")
def publish_to_the_fixture_session(_context, body):
    if isinstance(body, dict) and _half(body):
        body["session_id"] = FIXTURE["session_id"]
    return body


@schemathesis.hook("map_body").apply_to(method="POST", path_regex=r"^/v1/metrics/(query|aggregate)$")
def read_the_fixture_metric(_context, body):
    if isinstance(body, dict) and _half(body):
        body["name"] = FIXTURE["name"]
    return body


@schemathesis.hook("map_body").apply_to(path_regex=r"^/v1/sessions")
def attach_the_fixture_device(_context, body):
    if isinstance(body, dict) and isinstance(body.get("device_ids"), list) and _half(body):
        body["device_ids"] = [FIXTURE["device_id"]]
    return body
