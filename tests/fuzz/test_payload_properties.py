"""Property tests on the readers of untrusted input: publish bodies, NDJSON lines and page tokens. Whatever
arrives, the answer is a parsed request or a clear InvalidRequest (a 400), never another exception."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api_shim.wire import decode_page_token, encode_page_token
from ingest.errors import InvalidRequest
from ingest.notset import NOT_SET
from ingest.payload import Limits, PublishRequest, parse_job_body, parse_ndjson_lines, parse_request

LIMITS = Limits(max_entries_per_request=50, max_id_length=255, max_name_length=255)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Text PostgreSQL can store: ids and names outside it are refused (tests/fuzz/test_unstorable_text.py).
storable = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
numbers = st.integers(min_value=-(10**400), max_value=10**400) | st.floats(allow_nan=True, allow_infinity=True)
entries = st.fixed_dictionaries({"name": st.text(storable, max_size=40), "value": numbers | st.none()})
requests = st.fixed_dictionaries(
    {"session_id": st.text(storable, min_size=1, max_size=40), "metrics": st.lists(entries, max_size=8)},
    optional={"device_id": st.none() | st.text(storable, min_size=1, max_size=40) | st.just({})},
)


def check_parsed(parsed: PublishRequest, source: dict) -> None:
    assert parsed.session_id == source["session_id"]
    assert len(parsed.entries) == len(source["metrics"])
    for (name, value), entry in zip(parsed.entries, source["metrics"], strict=True):
        assert name == entry["name"]
        assert value is None or (isinstance(value, float) and math.isfinite(value))
    assert (parsed.device_id is NOT_SET) == (source.get("device_id", {}) == {})
    # The compact form stored in the outbox round-trips.
    assert PublishRequest.from_compact(json.loads(json.dumps(parsed.to_compact()))).entries == [
        tuple(e) for e in parsed.entries
    ]


@FUZZ
@given(requests)
def test_well_formed_requests_parse(obj):
    check_parsed(parse_request(obj, LIMITS), obj)


@FUZZ
@given(json_values)
@example({"session_id": "s", "metrics": [{"name": "n", "value": True}]})
@example({"session_id": "s", "metrics": [{"name": "n", "value": 10**400}]})
@example({"session_id": "s", "device_id": {"x": 1}, "metrics": []})
@example({"session_id": "s", "metrics": [{"name": 1, "value": 1}]})
def test_any_json_value_parses_or_is_invalid(obj):
    try:
        parse_request(obj, LIMITS)
    except InvalidRequest as err:
        assert isinstance(err, InvalidRequest) and err.message
    try:
        parse_job_body(obj, LIMITS, 10)
    except InvalidRequest as err:
        assert err.message


def ndjson_line(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


@FUZZ
@given(
    st.lists(requests, min_size=1, max_size=5),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
    st.integers(min_value=0, max_value=3),
)
def test_ndjson_lines_with_crlf_bom_and_blank_lines(objs, eol, bom, blanks):
    raw = eol.join(ndjson_line(o) for o in objs) + eol + eol * blanks
    if bom:
        raw = b"\xef\xbb\xbf" + raw
    lines = raw.splitlines(keepends=True)
    # A UTF-8 byte order mark at the start of the upload is tolerated (editors on Windows write one).
    parsed = list(parse_ndjson_lines(lines, LIMITS))
    assert len(parsed) == len(objs)
    for p, o in zip(parsed, objs, strict=True):
        check_parsed(p, o)


@FUZZ
@given(st.lists(requests, min_size=1, max_size=5), st.data())
def test_truncated_or_garbled_ndjson_names_the_line(objs, data):
    raw = b"\n".join(ndjson_line(o) for o in objs)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    junk = data.draw(st.binary(max_size=8))
    lines = (raw[:cut] + junk).split(b"\n")
    try:
        parsed = list(parse_ndjson_lines(lines, LIMITS))
    except InvalidRequest as err:
        assert err.message.startswith("line ")
        lineno = int(err.message.split()[1].rstrip(":").split(".")[0])
        assert 1 <= lineno <= len(lines)
        return
    # Everything that parsed is a real line: nothing skipped but blank lines.
    assert len(parsed) == sum(1 for line in lines if line.strip())


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_as_ndjson(raw):
    try:
        for _ in parse_ndjson_lines(raw.splitlines(), LIMITS):
            pass
    except InvalidRequest as err:
        assert err.message.startswith("line ")


@pytest.mark.parametrize(
    "line",
    [
        b'{"session_id": "s", "metrics": [{"name": "n", "value": 1e999}]}',
        b'{"session_id": "s", "metrics": [{"name": "n", "value": -1e-400}]}',
        b'{"session_id": "s", "metrics": [{"name": "n", "value": NaN}]}',
        b'{"session_id": "s", "metrics": [{"name": "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "value": 1}]}',
    ],
)
def test_extreme_numbers_and_unicode_names(line):
    (parsed,) = parse_ndjson_lines([line], LIMITS)
    ((name, value),) = parsed.entries
    assert value is None or math.isfinite(value)
    assert isinstance(name, str)


@pytest.mark.parametrize("raw", [b'{"session_id": "s", "metrics": [', b"\xff\xfe{}", b"[1, 2", b'"\\ud800"'])
def test_broken_lines_are_a_clear_error(raw):
    with pytest.raises(InvalidRequest, match=r"^line 1\b"):
        list(parse_ndjson_lines([raw], LIMITS))


tokens = st.text(max_size=64) | st.binary(max_size=64).map(lambda b: base64.urlsafe_b64encode(b).decode())


@FUZZ
@given(tokens, st.none() | st.text(max_size=10))
@example(base64.urlsafe_b64encode(b'{"p": [1]}').decode(), None)
@example(base64.urlsafe_b64encode(b'{"p": {}, "b": "other"}').decode(), "mine")
@example(base64.urlsafe_b64encode(b"[]").decode(), None)
@example(base64.urlsafe_b64encode(b"\xff").decode(), None)
@example("====", None)
def test_forged_page_tokens_are_a_400(token, bound):
    try:
        position = decode_page_token(token, bound_to=bound)
    except InvalidRequest as err:
        assert isinstance(err, InvalidRequest) and "page_token" in err.message
        return
    assert isinstance(position, dict)


@FUZZ
@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3), st.text(max_size=10))
def test_page_tokens_round_trip_and_stay_bound(position, bound):
    token = encode_page_token(position, bound_to=bound)
    assert decode_page_token(token, bound_to=bound) == position
    with pytest.raises(InvalidRequest):
        decode_page_token(token, bound_to=bound + "x")
