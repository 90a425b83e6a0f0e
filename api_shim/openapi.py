"""OpenAPI descriptions of the bodies that routes read themselves (to stream them, or to check them by hand)."""

from __future__ import annotations

from typing import Any

METRIC_ENTRY = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {
        "name": {"type": "string", "description": "URL-safe name [A-Za-z0-9-._~]"},
        "value": {"type": ["number", "null"], "description": "null stands for NaN/inf and fails that entry"},
    },
}

PUBLISH_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["session_id", "metrics"],
    "properties": {
        "session_id": {"type": "string", "minLength": 1},
        "device_id": {
            "description": "A device id; null for no device; {} (or absent) to infer it from the session",
            "anyOf": [{"type": "string", "minLength": 1}, {"type": "null"}, {"type": "object", "maxProperties": 0}],
        },
        "metrics": {"type": "array", "items": METRIC_ENTRY},
    },
}

JOB_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["requests"],
    "properties": {"requests": {"type": "array", "items": PUBLISH_BODY}},
}


def body_doc(schema: dict, *, ndjson: bool = False) -> dict:
    content = {"application/json": {"schema": schema}}
    if ndjson:
        content["application/x-ndjson"] = {
            "schema": {"type": "string", "description": "one PublishMetricsRequest JSON object per line"}
        }
    return {"requestBody": {"required": True, "content": content}}
