"""What FastAPI's generated document cannot say by itself. Everything else comes from the routes' declared models
(`api_shim/models.py`).

- Routes that read their body themselves (to stream NDJSON, or to tell the SDK's `{}` from null) document it with
  `body_of(Model)`; the model's schema is added to the components here.
- No 422: request validation errors are answered 400 with the Roboto envelope (`api_shim/errors.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_SELF_READ: dict[str, type[BaseModel]] = {}
REF = "#/components/schemas/{model}"


def body_of(model: type[BaseModel], *, ndjson: bool = False) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: the body `model` describes (and, with `ndjson`, the
    same requests one JSON object per line)."""
    _SELF_READ[model.__name__] = model
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
    if ndjson:
        content["application/x-ndjson"] = {
            "schema": {"type": "string", "description": "one PublishMetricsRequest JSON object per line"}
        }
    return {"requestBody": {"required": True, "content": content}}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _SELF_READ.items():
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    return doc
