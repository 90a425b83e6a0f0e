"""Roboto 0.62 `condition` trees compiled to a SQL predicate over `metric_values v`.

Only the session and device fields our model holds are accepted; any other field (custom fields, tags, metadata,
collections, names), a comparator the field's type does not take, a value the field cannot convert, or a NOT group
is a RobotoIllegalArgumentException naming the problem.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.errors import IllegalArgument
from ingest.numbers import json_integer

MAX_DEPTH = 16
MAX_CONDITIONS = 200

# canonical field -> (SQL expression over `v`, type)
_SESSION_FIELDS: dict[str, tuple[str, str]] = {
    "session_id": ("v.session_id", "text"),
    "min_timestamp_ns": ("v.session_start_ns", "time"),
    "max_timestamp_ns": ("v.session_end_ns", "time"),
    "duration": ("(v.session_end_ns - v.session_start_ns)", "int"),
    "created": (
        "(SELECT s.created FROM sessions s WHERE s.org_id = v.org_id AND s.session_id = v.session_id)",
        "timestamptz",
    ),
    "modified": (
        "(SELECT s.modified FROM sessions s WHERE s.org_id = v.org_id AND s.session_id = v.session_id)",
        "timestamptz",
    ),
}
_SESSION_ALIASES = {"id": "session_id", "start_time": "min_timestamp_ns", "end_time": "max_timestamp_ns"}
_DEVICE_FIELDS: dict[str, tuple[str, str]] = {
    "device_id": ("v.device_id", "text"),
    "created": (
        "(SELECT d.created FROM devices d WHERE d.org_id = v.org_id AND d.device_id = v.device_id)",
        "timestamptz",
    ),
}
_DEVICE_ALIASES = {"id": "device_id"}
_ENTITIES = {"session": "session", "sessions": "session", "device": "device", "devices": "device"}
_KNOWN_UNMODELLED = {"collection", "collections", "dataset", "datasets", "file", "files", "topic", "topics"}


def documented_fields() -> dict[str, str]:
    """Every field name a condition accepts (`session.start_time`, ...), with the type its value takes."""
    found: dict[str, str] = {}
    for entity, fields, aliases in (
        ("session", _SESSION_FIELDS, _SESSION_ALIASES),
        ("device", _DEVICE_FIELDS, _DEVICE_ALIASES),
    ):
        for name, (_, typ) in fields.items():
            found[f"{entity}.{name}"] = typ
        for alias, canonical in aliases.items():
            found[f"{entity}.{alias}"] = fields[canonical][1]
    return found


_ORDERED = {
    "EQUALS": "=",
    "NOT_EQUALS": "<>",
    "GREATER_THAN": ">",
    "GREATER_THAN_OR_EQUAL": ">=",
    "LESS_THAN": "<",
    "LESS_THAN_OR_EQUAL": "<=",
}
_NULLNESS = {"IS_NULL": True, "NOT_EXISTS": True, "IS_NOT_NULL": False, "EXISTS": False}
_TEXT_ONLY = {"CONTAINS", "NOT_CONTAINS", "BEGINS_WITH", "LIKE", "NOT_LIKE"}
ORDERED_COMPARATORS = tuple(_ORDERED)
NULLNESS_COMPARATORS = tuple(_NULLNESS)
TEXT_COMPARATORS = tuple(sorted(_TEXT_ONLY))


@dataclass
class Compiled:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def resolve_field(name: object) -> tuple[str, str, str]:
    """`session.start_time` -> (canonical name, SQL expression, type). Unmodelled fields are refused by name."""
    if not isinstance(name, str) or "." not in name:
        raise IllegalArgument(
            f"Condition field {name!r} must be prefixed with the entity it filters on, such as 'session.session_id'"
        )
    entity, _, rest = name.partition(".")
    kind = _ENTITIES.get(entity.lower())
    if kind is None:
        if entity.lower() in _KNOWN_UNMODELLED:
            raise IllegalArgument(f"Condition field '{name}' is not supported by this service")
        raise IllegalArgument(f"Condition field '{name}' is not a known field")
    fields, aliases = (_SESSION_FIELDS, _SESSION_ALIASES) if kind == "session" else (_DEVICE_FIELDS, _DEVICE_ALIASES)
    canonical = aliases.get(rest, rest)
    if canonical not in fields:
        raise IllegalArgument(f"Condition field '{name}' is not supported by this service")
    expr, typ = fields[canonical]
    return f"{kind}.{canonical}", expr, typ


def to_epoch_ns(value: Any, field_name: str) -> int:
    """Roboto's `to_epoch_nanoseconds` rules: int = ns; float/Decimal/numeric string = seconds; ISO-8601 string."""
    if isinstance(value, bool) or value is None:
        raise IllegalArgument(f"Condition value for '{field_name}' must be a time")
    if isinstance(value, int):
        return value
    try:
        if isinstance(value, float | decimal.Decimal):
            return int(decimal.Decimal(str(value)) * 1_000_000_000)
        if isinstance(value, str):
            try:
                return int(decimal.Decimal(value) * 1_000_000_000)
            except decimal.InvalidOperation:
                text = value[:-1] + "+00:00" if value.endswith("Z") else value
                dt = datetime.fromisoformat(text)
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=UTC)
                delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
                return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    except (ValueError, OverflowError, decimal.InvalidOperation):
        pass
    raise IllegalArgument(f"Condition value {value!r} for '{field_name}' is not a time")


def _convert(value: Any, typ: str, field_name: str) -> Any:
    if typ == "text":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise IllegalArgument(f"Condition value {value!r} for '{field_name}' must be a string")
    if typ == "time":  # a time beyond what int64 nanoseconds hold compares as the end of that range
        return min(max(to_epoch_ns(value, field_name), -(2**63)), 2**63 - 1)
    if typ == "int":
        value = json_integer(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return min(max(value, -(2**63)), 2**63 - 1)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise IllegalArgument(f"Condition value {value!r} for '{field_name}' must be an integer count of nanoseconds")
    # timestamptz
    us = to_epoch_ns(value, field_name) // 1_000
    lowest, highest = ((end - _EPOCH) // timedelta(microseconds=1) for end in (_FIRST, _LAST))
    return _EPOCH + timedelta(microseconds=min(max(us, lowest), highest))  # beyond the calendar: its first/last day


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_CAST = {"text": "text", "time": "bigint", "int": "bigint", "timestamptz": "timestamptz"}


class _Compiler:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.count = 0

    def bind(self, value: Any, typ: str) -> str:
        name = f"c{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {_CAST[typ]})"

    def node(self, node: Any, depth: int) -> str:
        self.count += 1
        if depth > MAX_DEPTH or self.count > MAX_CONDITIONS:
            raise IllegalArgument(f"condition is too large (at most {MAX_CONDITIONS} nodes, {MAX_DEPTH} levels)")
        if not isinstance(node, dict):
            raise IllegalArgument("condition must be an object: a condition or a group of conditions")
        if "operator" in node or "conditions" in node:
            return self.group(node, depth)
        return self.leaf(node)

    def group(self, node: dict, depth: int) -> str:
        op = node.get("operator")
        children = node.get("conditions")
        if not isinstance(op, str) or op.upper() not in ("AND", "OR", "NOT"):
            raise IllegalArgument(f"condition group operator {op!r} must be AND or OR")
        if op.upper() == "NOT":
            raise IllegalArgument("condition groups with the NOT operator are not accepted; negate the comparators")
        if not isinstance(children, list):
            raise IllegalArgument("condition group needs a list of conditions")
        if not children:
            return "TRUE" if op.upper() == "AND" else "FALSE"
        parts = [self.node(c, depth + 1) for c in children]
        return "(" + f" {op.upper()} ".join(parts) + ")"

    def leaf(self, node: dict) -> str:
        name = str(node.get("field"))  # messages name the field as the caller wrote it
        _, expr, typ = resolve_field(node.get("field"))
        comparator = node.get("comparator")
        if not isinstance(comparator, str):
            raise IllegalArgument(f"Condition on '{name}' needs a comparator")
        comparator = comparator.upper()
        value = node.get("value")
        if comparator in _NULLNESS:
            return f"({expr} IS {'' if _NULLNESS[comparator] else 'NOT '}NULL)"
        if comparator in _ORDERED:
            return f"({expr} {_ORDERED[comparator]} {self.bind(_convert(value, typ, name), typ)})"
        if comparator in _TEXT_ONLY:
            if typ != "text":
                raise IllegalArgument(f"Comparator {comparator} does not apply to '{name}'")
            text = _convert(value, typ, name)
            if comparator in ("CONTAINS", "NOT_CONTAINS"):
                test = f"strpos({expr}, {self.bind(text, 'text')}) > 0"
                return f"({test})" if comparator == "CONTAINS" else f"(NOT ({test}))"
            if comparator == "BEGINS_WITH":
                return f"(left({expr}, char_length({self.bind(text, 'text')})) = {self.bind(text, 'text')})"
            test = f"{expr} LIKE {self.bind(text, 'text')}"
            return f"({test})" if comparator == "LIKE" else f"(NOT ({test}))"
        raise IllegalArgument(f"Comparator {comparator!r} is not a known comparator")


def compile_condition(condition: Any) -> Compiled | None:
    """None for no condition; otherwise the predicate and its bind parameters (named c0, c1, ...)."""
    if condition is None:
        return None
    compiler = _Compiler()
    sql = compiler.node(condition, 0)
    return Compiled(sql, compiler.params)
