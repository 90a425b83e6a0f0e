"""Streaming readers: a file becomes a sequence of `Row`s (one per metric value) and `LineError`s (one per line
that cannot be read). Constant memory for any file size; a bad line never stops the read and never vanishes.

The checks here are the shape limits the job API enforces for a whole request body (ids and name lengths, value
types), so that one bad line fails alone instead of failing the chunk it travels in. Whether a name is valid or a
value finite is the worker's decision, reported per item like any other publish.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ingest.notset import NOT_SET  # device_id not given: the server infers it from the session

MAX_ID_LENGTH = 255  # Settings.max_id_length default: longer ids fail a whole request at the API
MAX_NAME_CHARS = 1020  # 4 x max_name_length: longer names fail a whole request at the API (shape error)


@dataclass(frozen=True)
class Row:
    line: int
    session_id: str
    device_id: Any  # str, None (explicitly no device) or NOT_SET
    name: str
    value: float | None  # None: not finite (NaN, +-inf, overflow); the worker fails it as Roboto does


@dataclass(frozen=True)
class LineError:
    line: int
    message: str
    raw: str


Record = Row | LineError


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".ndjson", ".jsonl", ".json"):
        return "ndjson"
    return "csv"


def read_file(path: Path, fmt: str) -> Iterator[Record]:
    with open(path, "rb") as fh:
        yield from read_stream(fh, fmt)


def read_stream(fh: BinaryIO, fmt: str) -> Iterator[Record]:
    return read_ndjson(fh) if fmt == "ndjson" else read_csv(fh)


# -- shared checks -------------------------------------------------------------------------------------------
def _id_problem(what: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} is longer than {MAX_ID_LENGTH} characters"
    if "\x00" in value:
        return f"{what} contains a NUL character"
    return None


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return "name must be a string"
    if len(name) > MAX_NAME_CHARS:
        return f"name is longer than {MAX_NAME_CHARS} characters"
    return None


def _finite_or_none(value: float | int) -> float | None:
    try:
        f = float(value)
    except OverflowError:  # an integer too large for a double
        return None
    return f if math.isfinite(f) else None


BLANK = " \t\r\n\f\v"  # what makes a line blank; str.strip() would also drop \x1c-\x1f and \x85


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


# -- NDJSON --------------------------------------------------------------------------------------------------
def read_ndjson(fh: BinaryIO) -> Iterator[Record]:
    """One PublishMetricsRequest per line (extra keys such as a failures file's `error` are ignored)."""
    for lineno, raw in enumerate(fh, start=1):
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip(BLANK.encode()):
            continue
        yield from _ndjson_line(lineno, raw)


def _ndjson_line(lineno: int, raw: bytes) -> Iterator[Record]:
    def error(message: str) -> LineError:
        return LineError(lineno, message, _text(raw))

    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        yield error("line is not valid UTF-8")
        return
    except (ValueError, RecursionError):
        yield error("line is not valid JSON")
        return
    if not isinstance(obj, dict):
        yield error("line must be a JSON object (a PublishMetricsRequest)")
        return
    if "session_id" not in obj and isinstance(obj.get("error"), dict):
        # a failures-file line for a line that could not be read: report its original error again
        yield error(str(obj["error"].get("message") or "unreadable line"))
        return
    problem = _id_problem("session_id", obj.get("session_id"))
    if problem:
        yield error(problem)
        return
    device: Any = NOT_SET
    if "device_id" in obj:
        raw_device = obj["device_id"]
        if raw_device is None:
            device = None
        elif isinstance(raw_device, dict) and not raw_device:
            device = NOT_SET
        else:
            problem = _id_problem("device_id", raw_device)
            if problem:
                yield error(problem.replace("a non-empty string", "a non-empty string, null or {}"))
                return
            device = raw_device
    metrics = obj.get("metrics")
    if not isinstance(metrics, list):
        yield error("metrics must be a list")
        return
    rows: list[Row] = []
    for i, entry in enumerate(metrics):
        if not isinstance(entry, dict):
            yield error(f"metrics[{i}] must be an object with name and value")
            return
        name = entry.get("name")
        problem = _name_problem(name)
        if problem or not isinstance(name, str):
            yield error(f"metrics[{i}].{problem or 'name must be a string'}")
            return
        value = entry.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            yield error(f"metrics[{i}].value must be a number or null")
            return
        rows.append(Row(lineno, obj["session_id"], device, name, None if value is None else _finite_or_none(value)))
    yield from rows


# -- CSV -----------------------------------------------------------------------------------------------------
REQUIRED_COLUMNS = ("session_id", "name", "value")


def read_csv(fh: BinaryIO) -> Iterator[Record]:
    """Columns `session_id,name,value[,device_id]` named by a header row (any order; extra columns ignored).

    Each physical line is one record (ids, names and numbers never contain a line break), so a stray quote
    fails its own line only and every line number in an error is exact."""
    header: dict[str, int] | None = None
    header_problem: str | None = None
    for lineno, raw in enumerate(fh, start=1):
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield LineError(lineno, "line is not valid UTF-8 text", _text(raw))
            continue
        line = line.rstrip("\r\n")
        if not line.strip(BLANK):
            continue  # a blank line (control characters such as \x1c are content, reported, not skipped)
        if "\x00" in line:
            yield LineError(lineno, "line contains a NUL character", line.replace("\x00", "\ufffd"))
            continue
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as err:
            yield LineError(lineno, f"malformed CSV: {err}", line)
            continue
        if header is None and header_problem is None:
            names = [f.strip().lower() for f in fields]
            missing = [c for c in REQUIRED_COLUMNS if c not in names]
            if missing:
                header_problem = (
                    f"the header row lacks column(s) {', '.join(missing)}; expected session_id,name,value[,device_id]"
                )
                yield LineError(lineno, header_problem, line)
            else:
                header = {n: names.index(n) for n in (*REQUIRED_COLUMNS, "device_id") if n in names}
            continue
        if header is None:
            yield LineError(lineno, header_problem or "no header row", line)
            continue
        yield _csv_row(lineno, fields, header, line)


def _csv_row(lineno: int, fields: list[str], header: dict[str, int], raw: str) -> Record:
    width = max(header.values()) + 1
    if len(fields) < width:
        return LineError(lineno, f"expected at least {width} fields, found {len(fields)}", raw)
    session_id = fields[header["session_id"]].strip()
    problem = _id_problem("session_id", session_id)
    if problem:
        return LineError(lineno, problem, raw)
    name = fields[header["name"]].strip()
    problem = _name_problem(name)
    if problem:
        return LineError(lineno, problem, raw)
    text_value = fields[header["value"]].strip()
    if not text_value:
        return LineError(lineno, "value is empty", raw)
    try:
        value = float(text_value)
    except ValueError:
        return LineError(lineno, f"value {text_value[:40]!r} is not a number", raw)
    device: Any = NOT_SET
    if "device_id" in header:
        d = fields[header["device_id"]].strip()
        if d:
            problem = _id_problem("device_id", d)
            if problem:
                return LineError(lineno, problem, raw)
            device = d
    return Row(lineno, session_id, device, name, _finite_or_none(value))
