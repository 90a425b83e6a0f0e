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


# -- responses -----------------------------------------------------------------------------------------------
# Routes return plain dicts (the Roboto wire shapes of api_shim/wire.py); these schemas describe them, and every
# error as the Roboto envelope. FastAPI's own 422 never leaves the API, so it is removed from the document.

NULLABLE_STRING = {"type": ["string", "null"]}
TIMESTAMP = {"type": "string", "format": "date-time"}
ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["error_code", "message"],
            "additionalProperties": False,
            "properties": {
                "error_code": {"type": "string", "pattern": "^Roboto[A-Za-z]+Exception$"},
                "message": {"type": "string"},
            },
        }
    },
}
ITEM_ERROR = ERROR_ENVELOPE["properties"]["error"]

DEFINITION = {
    "type": "object",
    "required": ["org_id", "metric_id", "name", "created", "modified"],
    "properties": {
        "org_id": {"type": "string"},
        "metric_id": {"type": "string"},
        "name": {"type": "string"},
        "description": NULLABLE_STRING,
        "unit": NULLABLE_STRING,
        "created_by": NULLABLE_STRING,
        "created": TIMESTAMP,
        "modified_by": NULLABLE_STRING,
        "modified": TIMESTAMP,
    },
}
DEVICE = {
    "type": "object",
    "required": ["org_id", "device_id", "created"],
    "properties": {"org_id": {"type": "string"}, "device_id": {"type": "string"}, "created": TIMESTAMP},
}
SESSION = {
    "type": "object",
    "required": ["org_id", "session_id", "start_time_ns", "end_time_ns", "device_ids"],
    "properties": {
        "org_id": {"type": "string"},
        "session_id": {"type": "string"},
        "start_time_ns": {"type": "integer"},
        "end_time_ns": {"type": "integer"},
        "device_ids": {"type": "array", "items": {"type": "string"}},
        "created": TIMESTAMP,
        "modified": TIMESTAMP,
    },
}
METRIC_RECORD = {
    "type": "object",
    "required": ["org_id", "metric_id", "name", "session_id", "value", "published"],
    "properties": {
        "org_id": {"type": "string"},
        "metric_id": {"type": "string"},
        "name": {"type": "string"},
        "session_id": {"type": "string"},
        "min_timestamp_ns": {"type": "integer"},
        "max_timestamp_ns": {"type": "integer"},
        "session_start_time_ns": {"type": "integer"},
        "session_end_time_ns": {"type": "integer"},
        "value": {"type": "number"},
        "device_id": NULLABLE_STRING,
        "invocation_id": NULLABLE_STRING,
        "published_by": {"type": "string"},
        "published": TIMESTAMP,
        "unit": NULLABLE_STRING,
        "group_key": NULLABLE_STRING,
    },
}
JOB = {
    "type": "object",
    "required": ["job_id", "org_id", "state", "lane", "source", "created", "counts"],
    "properties": {
        "job_id": {"type": "string"},
        "org_id": {"type": "string"},
        "state": {"type": "string", "enum": ["queued", "running", "succeeded", "completed_with_errors", "failed"]},
        "lane": {"type": "string", "enum": ["interactive", "bulk"]},
        "source": {"type": "string"},
        "idempotency_key": NULLABLE_STRING,
        "request_id": NULLABLE_STRING,
        "created": TIMESTAMP,
        "started": {"type": ["string", "null"], "format": "date-time"},
        "finished": {"type": ["string", "null"], "format": "date-time"},
        "counts": {
            "type": "object",
            "required": ["total", "succeeded", "failed", "pending"],
            "properties": {k: {"type": "integer", "minimum": 0} for k in ("total", "succeeded", "failed", "pending")},
        },
        "error": {"anyOf": [{"type": "null"}, ERROR_ENVELOPE]},
    },
}
JOB_ITEM = {
    "type": "object",
    "required": ["request_index", "entry_index", "session_id", "name", "status", "record", "error"],
    "properties": {
        "request_index": {"type": "integer"},
        "entry_index": {"type": ["integer", "null"]},
        "session_id": {"type": ["string", "null"]},
        "name": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": ["succeeded", "failed"]},
        "record": {"anyOf": [{"type": "null"}, METRIC_RECORD]},
        "error": {"anyOf": [{"type": "null"}, ITEM_ERROR]},
    },
}
PUBLISH_RESPONSE = {
    "description": "Without X-Roboto-Api-Version (or before 2026-10-05): succeeded records and failed names; "
    "from 2026-10-05: one response per entry, in request order.",
    "anyOf": [
        {
            "type": "object",
            "required": ["succeeded", "failed"],
            "properties": {
                "succeeded": {"type": "array", "items": METRIC_RECORD},
                "failed": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "error"],
                        "properties": {"name": {"type": "string"}, "error": {"type": "string"}},
                    },
                },
            },
        },
        {
            "type": "object",
            "required": ["responses"],
            "properties": {
                "responses": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["data", "error"],
                        "properties": {
                            "data": {"anyOf": [{"type": "null"}, METRIC_RECORD]},
                            "error": {"anyOf": [{"type": "null"}, ERROR_ENVELOPE]},
                        },
                    },
                }
            },
        },
    ],
}


def data_of(schema: dict) -> dict:
    return {"type": "object", "required": ["data"], "properties": {"data": schema}}


def page_of(item: dict) -> dict:
    return data_of(
        {
            "type": "object",
            "required": ["items", "next_token"],
            "properties": {"items": {"type": "array", "items": item}, "next_token": NULLABLE_STRING},
        }
    )


QUERY_PAGE = data_of(
    {
        "type": "object",
        "required": ["items", "next_token"],
        "properties": {
            "items": {"type": "array", "items": METRIC_RECORD},
            "next_token": NULLABLE_STRING,
            "total_count": {"type": ["integer", "null"]},
            "total_groups": {"type": ["integer", "null"]},
            "groups_truncated": {"type": ["boolean", "null"]},
        },
    }
)
AGGREGATE_RECORD = {
    "type": "object",
    "required": ["metric_id", "name", "period", "start_time", "end_time", "total", "value", "aggregation"],
    "properties": {
        "metric_id": {"type": "string"},
        "name": {"type": "string"},
        "period": {"type": "string"},
        "start_time": {"type": "integer"},
        "end_time": {"type": "integer"},
        "total": {"type": "integer"},
        "value": {"type": ["number", "null"]},
        "unit": NULLABLE_STRING,
        "aggregation": {"type": "string"},
        "group_key": NULLABLE_STRING,
    },
}
AGGREGATE_RESPONSE = data_of(
    {
        "type": "object",
        "required": ["aggregation", "records"],
        "properties": {
            "aggregation": {"type": "string"},
            "records": {"type": "array", "items": AGGREGATE_RECORD},
            "total_groups": {"type": ["integer", "null"]},
            "groups_truncated": {"type": ["boolean", "null"]},
        },
    }
)

SUCCESS: dict[tuple[str, str], dict] = {
    ("post", "/v1/metrics/query"): QUERY_PAGE,
    ("post", "/v1/metrics/aggregate"): AGGREGATE_RESPONSE,
    ("get", "/healthz"): {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    ("post", "/v1/metrics/definition/"): data_of(DEFINITION),
    ("get", "/v1/metrics/definitions/"): page_of(DEFINITION),
    ("get", "/v1/metrics/definition/{name}"): data_of(DEFINITION),
    ("put", "/v1/metrics/definition/{name}"): data_of(DEFINITION),
    ("delete", "/v1/metrics/definition/{name}"): data_of({"type": "null"}),
    ("post", "/v1/devices"): data_of(DEVICE),
    ("get", "/v1/devices/{device_id}"): data_of(DEVICE),
    ("post", "/v1/sessions"): data_of(SESSION),
    ("get", "/v1/sessions/{session_id}"): data_of(SESSION),
    ("put", "/v1/sessions/{session_id}"): data_of(SESSION),
    ("post", "/v1/metrics"): data_of(PUBLISH_RESPONSE),
    ("get", "/v1/metrics/session/{session_id}/"): data_of({"type": "array", "items": METRIC_RECORD}),
    ("post", "/v1/metrics/jobs"): data_of(JOB),
    ("get", "/v1/metrics/jobs"): page_of(JOB),
    ("get", "/v1/metrics/jobs/{job_id}"): data_of(JOB),
    ("get", "/v1/metrics/jobs/{job_id}/results"): page_of(JOB_ITEM),
}
ERROR_TEXT = {
    "400": "Invalid request (RobotoInvalidRequestException / RobotoIllegalArgumentException)",
    "401": "Missing, invalid, expired or revoked token (RobotoUnauthorizedException)",
    "404": "Not found, or owned by another org (RobotoNotFoundException)",
    "409": "Already exists, or Idempotency-Key reused with another body (RobotoConflictException)",
    "413": "Body or job over a size limit (RobotoLimitExceededException)",
    "429": "Backlog over its limit; retry later (RobotoLimitExceededException)",
    "503": "Database or workers unavailable; retry after Retry-After (RobotoServiceUnavailableException)",
}
EXTRA_ERRORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/v1/metrics/definition/"): ("409",),
    ("post", "/v1/devices"): ("409",),
    ("post", "/v1/sessions"): ("409",),
    ("post", "/v1/metrics"): ("429",),
    ("post", "/v1/metrics/jobs"): ("409", "429"),
}


READINESS = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}},
    "description": "status ok, or the failed checks by name",
}
OPERATOR_ROUTES = ("/metrics", "/ops/status")  # 401 with the envelope when METRICS_INGEST_METRICS_TOKEN is set


def describe_operations(doc: dict, error_ref: dict) -> None:
    paths = doc.get("paths", {})
    if "get" in paths.get("/readyz", {}):
        responses = paths["/readyz"]["get"]["responses"]
        for status in ("200", "503"):
            responses[status] = {
                "description": "Ready" if status == "200" else "Not ready: the body names the failed checks",
                "content": {"application/json": {"schema": READINESS}},
            }
    if "get" in paths.get("/metrics", {}):
        paths["/metrics"]["get"]["responses"]["200"]["content"] = {
            "text/plain": {"schema": {"type": "string", "description": "Prometheus text exposition format"}}
        }
    for path in OPERATOR_ROUTES:
        if "get" in paths.get(path, {}):
            paths[path]["get"]["responses"]["401"] = {"description": ERROR_TEXT["401"], "content": error_ref}


def describe_responses(doc: dict) -> dict:
    """Make the generated document truthful: success schemas, the error envelope for every error a route can
    answer, no 422 (validation errors are answered 400 with the envelope)."""
    doc.setdefault("components", {}).setdefault("schemas", {})["RobotoError"] = ERROR_ENVELOPE
    for name in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(name, None)
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/RobotoError"}}}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            success = SUCCESS.get((method, path))
            if success is not None:
                for status, response in responses.items():
                    if status.startswith("2"):
                        response["content"] = {"application/json": {"schema": success}}
            if method == "post" and path == "/v1/metrics/jobs":
                responses["200"] = {
                    "description": "The job already accepted under this Idempotency-Key",
                    "content": {"application/json": {"schema": SUCCESS[(method, path)]}},
                }
            if not path.startswith("/v1/"):
                continue
            op["security"] = [{"bearer": []}]
            codes = ["400", "401", "404", "503", *EXTRA_ERRORS.get((method, path), ())]
            if "requestBody" in op:
                codes.append("413")
            for code in sorted(set(codes)):
                responses[code] = {"description": ERROR_TEXT[code], "content": error_ref}
    describe_operations(doc, error_ref)
    return doc
