"""`NOT_SET`: a field the caller did not give, as distinct from `null`. On the Roboto wire it is `{}` (the SDK's
NotSet): a device to infer from the session, a filter not applied, a definition field left unchanged."""

from __future__ import annotations

from typing import Any


class _NotSet:
    _instance: _NotSet | None = None

    def __new__(cls) -> _NotSet:  # one instance, also after a copy or a pickle round trip
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_SET"

    def __reduce__(self) -> str:
        return "NOT_SET"


NOT_SET: Any = _NotSet()
