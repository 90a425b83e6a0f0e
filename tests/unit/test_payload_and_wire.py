"""Pure functions: request shape checks, chunking, answer shapes, page tokens, device inference."""

from __future__ import annotations

import pytest

from api_shim import wire
from ingest.errors import InvalidRequest, ItemError, NotFound
from ingest.jobs import chunked
from ingest.notset import NOT_SET
from ingest.payload import Limits, PublishRequest, decode_chunk, encode_chunk, parse_request
from ingest.publish import Session, entry_problem, infer_device
from ingest.results import Item

LIMITS = Limits(max_entries_per_request=3, max_id_length=10, max_name_length=8)


def test_device_field_three_ways():
    assert parse_request({"session_id": "s", "metrics": []}, LIMITS).device_id is NOT_SET
    assert parse_request({"session_id": "s", "device_id": {}, "metrics": []}, LIMITS).device_id is NOT_SET
    assert parse_request({"session_id": "s", "device_id": None, "metrics": []}, LIMITS).device_id is None
    assert parse_request({"session_id": "s", "device_id": "d", "metrics": []}, LIMITS).device_id == "d"


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"session_id": "s", "metrics": [{"name": "a", "value": 1}] * 4}, "limit is 3"),
        ({"session_id": "s" * 11, "metrics": []}, "longer than 10"),
        ({"session_id": "s", "device_id": 5, "metrics": []}, "device_id"),
        ({"session_id": "s", "metrics": [{"name": 1, "value": 1}]}, "metrics[0].name"),
        ({"session_id": "s", "metrics": [{"name": "a", "value": False}]}, "metrics[0].value"),
        ({"session_id": "", "metrics": []}, "session_id"),
    ],
)
def test_shape_errors_name_the_field(body, needle):
    with pytest.raises(InvalidRequest) as err:
        parse_request(body, LIMITS)
    assert needle in err.value.message


def test_non_finite_and_ints_become_floats_or_null():
    req = parse_request(
        {
            "session_id": "s",
            "metrics": [{"name": "a", "value": 2}, {"name": "b", "value": float("inf")}, {"name": "c", "value": None}],
        },
        LIMITS,
    )
    assert req.entries == [("a", 2.0), ("b", None), ("c", None)]
    assert decode_chunk(encode_chunk([req]))[0].entries == req.entries


def test_entry_problems():
    assert entry_problem("cpu.max-1_~", 1.0, 255) is None
    assert "outside" in entry_problem("a b", 1.0, 255)
    assert "longer than 3" in entry_problem("abcd", 1.0, 3)
    assert "not finite" in entry_problem("ok", None, 255)
    assert "empty" in entry_problem("", 1.0, 255)


def test_chunking_keeps_requests_whole():
    reqs = [PublishRequest(f"s{i}", None, [("m", 1.0)] * n) for i, n in enumerate([3, 3, 1, 5, 1])]
    sizes = [[len(r.entries) for r in c] for c in chunked(reqs, 4)]
    assert sizes == [[3, 3], [1, 5], [1]]


def test_infer_device():
    one, two, none = Session(0, 1, ["d1"]), Session(0, 1, ["d1", "d2"]), Session(0, 1, [])
    infer = PublishRequest("s", NOT_SET, [])
    assert infer_device(infer, one, set()) == "d1"
    assert infer_device(infer, none, set()) is None
    with pytest.raises(InvalidRequest):
        infer_device(infer, two, set())
    assert infer_device(PublishRequest("s", None, []), two, set()) is None
    assert infer_device(PublishRequest("s", "d2", []), two, {"d2"}) == "d2"
    with pytest.raises(NotFound):
        infer_device(PublishRequest("s", "dx", []), two, {"d2"})


def record(name: str, value: float) -> dict:
    from datetime import UTC, datetime

    return {
        "org_id": "o",
        "metric_id": "mt_1",
        "name": name,
        "session_id": "s",
        "session_start_ns": 1,
        "session_end_ns": 2,
        "value": value,
        "device_id": None,
        "invocation_id": None,
        "published_by": "p",
        "published": datetime(2026, 5, 1, 12, tzinfo=UTC),
        "unit": None,
    }


def test_publish_response_shapes():
    err = {"error_code": "RobotoInvalidRequestException", "message": "bad"}
    items = [
        Item(0, 0, 0, 0, "s", "a", None, record("a", 3.0)),
        Item(0, 1, 0, 1, "s", "b b", ItemError(**err)),
        Item(0, 2, 0, 2, "s", "a", None, record("a", 3.0)),
    ]
    old = wire.publish_response(items, "2026-05-20")["data"]
    assert [r["name"] for r in old["succeeded"]] == ["a"] and old["failed"] == [{"name": "b b", "error": "bad"}]
    assert old["succeeded"][0]["published"] == "2026-05-01T12:00:00.000000Z"
    new = wire.publish_response(items, "2026-10-06")["data"]["responses"]
    assert [r["error"] for r in new] == [None, {"error": err}, None]
    assert wire.publish_response(items, None)["data"].keys() == {"succeeded", "failed"}
