"""The backfill readers under generated input: BOM, CRLF, quoting, extreme numbers, unicode, truncation, noise.
Every non-blank line yields a row or a per-line error; nothing raises and nothing is silently dropped."""

from __future__ import annotations

import csv
import io
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.backfill.readers import MAX_ID_LENGTH, NOT_SET, LineError, Row, read_csv, read_ndjson

FIELD_CHARS = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)
ids = st.text(FIELD_CHARS, min_size=1, max_size=40).filter(lambda s: s.strip() != "")
names = st.text(FIELD_CHARS, min_size=1, max_size=60).filter(lambda s: s.strip() != "")
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(["1e400", "-1e400", "1e-400", "5e-324", "1.7976931348623157e308", "0", "-0.0"]),
)


def csv_bytes(rows: list[list[str]], *, bom: bool, crlf: bool, header: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" if bom else b"") + data


def expected_value(text: str) -> float | None:
    v = float(text)
    return v if math.isfinite(v) else None


def same_value(a: float | None, b: float | None) -> bool:
    return a == b or (a is None and b is None)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(ids, names, numbers, st.one_of(st.none(), ids)), max_size=30),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_csv_round_trip(rows, bom, crlf, with_device):
    header = ["session_id", "name", "value"] + (["device_id"] if with_device else [])
    written = [
        [s, n, repr(v) if isinstance(v, float) else str(v)] + ([d or ""] if with_device else []) for s, n, v, d in rows
    ]
    records = list(read_csv(io.BytesIO(csv_bytes(written, bom=bom, crlf=crlf, header=header))))
    assert [r.line for r in records] == list(range(2, len(rows) + 2))  # one record per line, in order
    for record, (s, n, _v, d), text in zip(records, rows, written, strict=True):
        too_long = len(s.strip()) > MAX_ID_LENGTH or (with_device and d and len(d.strip()) > MAX_ID_LENGTH)
        if too_long:
            assert isinstance(record, LineError)
            continue
        assert isinstance(record, Row), record
        assert (record.session_id, record.name) == (s.strip(), n.strip())
        assert same_value(record.value, expected_value(text[2]))
        assert record.device_id == (d.strip() if with_device and d else NOT_SET)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ids, names, numbers), min_size=1, max_size=20), st.data())
def test_csv_truncated_anywhere(rows, data):
    body = csv_bytes([[s, n, str(v)] for s, n, v in rows], bom=False, crlf=True, header=["session_id", "name", "value"])
    cut = data.draw(st.integers(min_value=0, max_value=len(body)))
    truncated = body[:cut]
    records = list(read_csv(io.BytesIO(truncated)))
    lines = truncated.split(b"\n")
    full_header = lines[0].rstrip(b"\r") == b"session_id,name,value"
    non_blank = [i for i, line in enumerate(lines, start=1) if line.strip() and not (i == 1 and full_header)]
    assert [r.line for r in records] == non_blank
    if not full_header and truncated.strip():
        assert all(isinstance(r, LineError) for r in records)  # a cut header: every line says so


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=15))
def test_csv_noise_never_raises_and_accounts_for_every_line(chunks):
    body = b"session_id,name,value\n" + b"\n".join(c.replace(b"\n", b" ") for c in chunks)
    records = list(read_csv(io.BytesIO(body)))
    lines = body.split(b"\n")
    reported = [r.line for r in records]
    assert reported == sorted(set(reported))
    for i, line in enumerate(lines[1:], start=2):
        blank = not line.decode("utf-8", errors="replace").strip(" \t\r\f\v")
        assert (i in reported) or blank or not line.strip()


def test_csv_header_variants_and_specific_errors():
    body = (
        "\ufeffName,Session_ID,value,device_id\r\n"
        'cpu.max,"ss_1,with comma",1.5,\r\n'
        "cpu.max,ss_2,abc,\r\n"
        "cpu.max,ss_3\r\n"
        '"unterminated,ss_4,1\r\n'
        "cpu.max,ss_5,1e999,dv_1\r\n"
        "\r\n"
        "é.名前,ss_6,-0.0000001,\r\n"
    ).encode()
    records = list(read_csv(io.BytesIO(body)))
    assert [(type(r).__name__, r.line) for r in records] == [
        ("Row", 2),
        ("LineError", 3),
        ("LineError", 4),
        ("LineError", 5),
        ("Row", 6),
        ("Row", 8),
    ]
    assert records[0].session_id == "ss_1,with comma" and records[0].device_id is NOT_SET
    assert "not a number" in records[1].message
    assert records[4].value is None and records[4].device_id == "dv_1"
    assert records[5].name == "é.名前"


def test_csv_without_header_reports_every_line():
    records = list(read_csv(io.BytesIO(b"ss_1,cpu,1\nss_2,cpu,2\n")))
    assert [(type(r).__name__, r.line) for r in records] == [("LineError", 1), ("LineError", 2)]


def test_csv_invalid_utf8_fails_its_line_only():
    records = list(read_csv(io.BytesIO(b"session_id,name,value\nss_\xff,cpu,1\nss_2,cpu,2\n")))
    assert isinstance(records[0], LineError) and records[0].line == 2
    assert isinstance(records[1], Row) and records[1].line == 3


# -- NDJSON --------------------------------------------------------------------------------------------------
json_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.none(),
)
requests = st.fixed_dictionaries(
    {
        "session_id": ids.filter(lambda s: len(s) <= MAX_ID_LENGTH),
        "metrics": st.lists(st.fixed_dictionaries({"name": names, "value": json_numbers}), max_size=5),
    },
    optional={"device_id": st.one_of(st.none(), st.just({}), ids)},
)


@settings(max_examples=150, deadline=None)
@given(st.lists(requests, max_size=15), st.booleans(), st.booleans())
def test_ndjson_round_trip(docs, bom, crlf):
    sep = "\r\n" if crlf else "\n"
    body = ("\ufeff" if bom else "") + sep.join(json.dumps(d, ensure_ascii=False) for d in docs) + sep
    records = list(read_ndjson(io.BytesIO(body.encode())))
    expected = []
    for lineno, d in enumerate(docs, start=1):
        device = d.get("device_id", {})
        if isinstance(device, str) and len(device) > MAX_ID_LENGTH:
            expected.append(("error", lineno))
            continue
        for m in d["metrics"]:
            expected.append(("row", lineno, d["session_id"], m["name"], m["value"], device))
    got = []
    for r in records:
        if isinstance(r, LineError):
            got.append(("error", r.line))
        else:
            got.append(("row", r.line, r.session_id, r.name, r.value, {} if r.device_id is NOT_SET else r.device_id))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        if e[0] == "error":
            assert g == e
            continue
        assert g[:4] == e[:4] and g[5] == e[5]
        value = e[4]
        if value is not None:
            try:
                value = float(value)
            except OverflowError:
                value = None
        assert same_value(g[4], value if value is None or math.isfinite(value) else None)


@settings(max_examples=150, deadline=None)
@given(st.lists(requests, min_size=1, max_size=8), st.data())
def test_ndjson_truncated_anywhere(docs, data):
    body = "".join(json.dumps(d) + "\n" for d in docs).encode()
    truncated = body[: data.draw(st.integers(min_value=0, max_value=len(body)))]
    records = list(read_ndjson(io.BytesIO(truncated)))
    lines = truncated.split(b"\n")
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        mine = [r for r in records if r.line == i]
        complete = i < len(lines)  # followed by a newline: written whole
        if complete:
            assert all(isinstance(r, Row) for r in mine)
            assert len(mine) == len(docs[i - 1]["metrics"])
        else:  # the cut line: parsed only if the cut happened to leave valid JSON, else one error
            # (a cut that leaves a whole request with no metrics is valid and yields no rows)
            assert mine or json.loads(line).get("metrics") == [], "a cut line must not vanish"
            assert all(isinstance(r, Row) for r in mine) or (len(mine) == 1 and isinstance(mine[0], LineError))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=60), st.from_regex(r'\{"session_id":.{0,30}', fullmatch=True).map(str.encode)),
        max_size=10,
    )
)
def test_ndjson_noise_never_raises(lines):
    body = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    records = list(read_ndjson(io.BytesIO(body)))
    for i, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            mine = [r for r in records if r.line == i]
            # a line is either rows (a valid request) or one error; a valid request with no metrics has no rows
            assert all(isinstance(r, Row) for r in mine) or len(mine) == 1


def test_ndjson_specific_errors():
    body = b"\n".join(
        [
            b'{"session_id":"ss_1","metrics":[{"name":"a","value":true}]}',
            b'{"session_id":"","metrics":[]}',
            b"[1,2]",
            b'{"session_id":"ss_1","device_id":5,"metrics":[]}',
            b'{"session_id":"ss_1","metrics":[{"name":"a","value":1e999}, {"name":"b","value":' + b"9" * 500 + b"}]}",
            b'{"error":{"error_code":"X","message":"was bad"},"source":{"line":3},"raw":"zz"}',
        ]
    )
    records = list(read_ndjson(io.BytesIO(body)))
    kinds = [(type(r).__name__, r.line) for r in records]
    assert kinds == [
        ("LineError", 1),
        ("LineError", 2),
        ("LineError", 3),
        ("LineError", 4),
        ("Row", 5),
        ("Row", 5),
        ("LineError", 6),
    ]
    assert records[4].value is None  # 1e999 overflows: sent as null, the worker fails it as not finite
    assert records[5].value is None  # a 500-digit integer is beyond a double: not finite
    assert records[6].message == "was bad"
