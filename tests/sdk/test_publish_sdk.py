"""Metric.publish and Metric.get_by_session through the real SDK: the seed's three examples, mixed entries."""

from __future__ import annotations

import pytest
from roboto.domain.metrics import Metric, MetricEntry
from roboto.exceptions import RobotoInvalidRequestException, RobotoNotFoundException


def test_seed_examples_053(sdk, tenant):
    robot = tenant.device("dv_robot01")
    ss = tenant.session("ss_abc123", devices=(robot,))

    # 1. explicit device
    result = Metric.publish(
        session_id=ss,
        metrics=[MetricEntry(name="cpu.usage_max", value=87.2)],
        device_id="dv_robot01",
        roboto_client=sdk,
    )
    assert len(result.succeeded) == 1 and result.failed == []
    m = result.succeeded[0]
    assert (m.name, m.value, m.device_id, m.session_id, m.org_id) == ("cpu.usage_max", 87.2, robot, ss, tenant.org_id)
    assert m.metric_id.startswith("mt_")
    assert m.published_by == tenant.principal
    assert (m.min_timestamp_ns, m.max_timestamp_ns) == (1_714_521_600_000_000_000, 1_714_525_200_000_000_000)
    assert m.invocation_id is None

    # 2. device inferred from the session's single attached device
    result = Metric.publish(
        session_id=ss, metrics=[MetricEntry(name="memory.peak_mb", value=2048.0)], roboto_client=sdk
    )
    assert [x.device_id for x in result.succeeded] == [robot]

    # 3. explicitly no device
    result = Metric.publish(
        session_id=ss, metrics=[MetricEntry(name="run.duration_s", value=42.0)], device_id=None, roboto_client=sdk
    )
    assert [x.device_id for x in result.succeeded] == [None]

    by_session = {m.name: m for m in Metric.get_by_session(ss, roboto_client=sdk)}
    assert set(by_session) == {"cpu.usage_max", "memory.peak_mb", "run.duration_s"}
    assert by_session["memory.peak_mb"].value == 2048.0
    assert by_session["run.duration_s"].device_id is None


def test_mixed_entries_and_errors_053(sdk, tenant):
    ss = tenant.session(devices=(tenant.device("dv_a"),))
    result = Metric.publish(
        session_id=ss,
        metrics=[
            MetricEntry(name="cpu.usage_max", value=87.2),
            MetricEntry(name="mem.peak_mb", value=2048),
            MetricEntry(name="bad name!", value=1.0),
            MetricEntry(name="nan.metric", value=float("nan")),
            MetricEntry(name="inf.metric", value=float("inf")),
        ],
        roboto_client=sdk,
    )
    assert sorted(m.name for m in result.succeeded) == ["cpu.usage_max", "mem.peak_mb"]
    failed = {f.name: f.error for f in result.failed}
    assert failed["bad name!"] == "Metric name 'bad name!' contains characters outside [A-Za-z0-9-._~]"
    assert failed["nan.metric"] == "Value for metric 'nan.metric' is not finite"
    assert "inf.metric" in failed

    with pytest.raises(RobotoNotFoundException):
        Metric.publish(session_id="ss_missing", metrics=[MetricEntry(name="a", value=1.0)], roboto_client=sdk)
    two = tenant.session(devices=(tenant.device("dv_b"), tenant.device("dv_c")))
    with pytest.raises(RobotoInvalidRequestException):
        Metric.publish(session_id=two, metrics=[MetricEntry(name="a", value=1.0)], roboto_client=sdk)
    with pytest.raises(RobotoNotFoundException):
        Metric.get_by_session("ss_missing", roboto_client=sdk)
    # An empty publish still answers with both (empty) lists.
    empty = Metric.publish(session_id=ss, metrics=[], roboto_client=sdk)
    assert empty.succeeded == [] and empty.failed == []


def test_publish_062(run062, tenant):
    robot = tenant.device("dv_robot01")
    ss = tenant.session(devices=(robot,))
    out = run062(
        f"""
        from roboto.domain.metrics import Metric, MetricEntry
        from roboto.exceptions import RobotoNotFoundException
        r = Metric.publish(session_id="{ss}", metrics=[MetricEntry(name="cpu.usage_max", value=87.2)],
                           device_id="{robot}", roboto_client=client)
        emit([(m.name, m.value, m.device_id) for m in r.succeeded])
        r = Metric.publish(session_id="{ss}", metrics=[MetricEntry(name="memory.peak_mb", value=2048.0)],
                           roboto_client=client)
        emit([(m.name, m.device_id) for m in r.succeeded])
        r = Metric.publish(session_id="{ss}", metrics=[MetricEntry(name="run.duration_s", value=42.0)],
                           device_id=None, roboto_client=client)
        emit([(m.name, m.device_id) for m in r.succeeded])
        r = Metric.publish(session_id="{ss}", metrics=[
            MetricEntry(name="cpu.usage_max", value=90.0), MetricEntry(name="bad name!", value=1.0),
            MetricEntry(name="nan.metric", value=float("nan")), MetricEntry(name="cpu.usage_max", value=91.5)],
            roboto_client=client)
        emit({{"n": len(r.responses), "ok": [m.value for m in r.succeeded],
              "failed": [type(e).__name__ + ":" + str(e) for e in r.failed]}})
        try:
            Metric.publish(session_id="ss_missing", metrics=[MetricEntry(name="a", value=1.0)], roboto_client=client)
        except RobotoNotFoundException:
            emit("missing-session")
        emit(sorted((m.name, m.value) for m in Metric.get_by_session("{ss}", roboto_client=client)))
        """
    )
    assert out[0] == [["cpu.usage_max", 87.2, robot]]
    assert out[1] == [["memory.peak_mb", robot]]
    assert out[2] == [["run.duration_s", None]]
    # One element per entry in request order; a repeated name reports the final (last written) record twice.
    assert out[3]["n"] == 4
    assert out[3]["ok"] == [91.5, 91.5]
    assert out[3]["failed"] == [
        "RobotoInvalidRequestException:Metric name 'bad name!' contains characters outside [A-Za-z0-9-._~]",
        "RobotoInvalidRequestException:Value for metric 'nan.metric' is not finite",
    ]
    assert out[4] == "missing-session"
    assert out[5] == [["cpu.usage_max", 91.5], ["memory.peak_mb", 2048.0], ["run.duration_s", 42.0]]
