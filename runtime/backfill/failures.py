"""The failures file: NDJSON the same command accepts again (one PublishMetricsRequest per failed value), each
line carrying why it failed (`error`) and where it came from (`source`). The extra keys are ignored on re-read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runtime.backfill.readers import LineError


def default_path(input_path: Path) -> Path:
    return input_path.with_name(input_path.name + ".failed.ndjson")


class FailuresWriter:
    """Written to `<path>.partial` and moved into place on close; removed when nothing failed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.fh = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.count = 0

    def _write(self, doc: dict) -> None:
        self.fh.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.count += 1

    def line_error(self, source: str, err: LineError) -> None:
        self._write(
            {
                "error": {"error_code": "RobotoInvalidRequestException", "message": err.message},
                "source": {"file": source, "line": err.line},
                "raw": err.raw,
            }
        )

    def item(self, source: str, line: int, session_id: str, device_id: Any, entry: dict, error: dict) -> None:
        self._write(
            {
                "session_id": session_id,
                "device_id": device_id,
                "metrics": [entry],
                "error": error,
                "source": {"file": source, "line": line},
            }
        )

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.partial.unlink(missing_ok=True)

    def close(self) -> Path | None:
        self.fh.close()
        if self.count == 0:
            self.partial.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)  # a previous run's failures are resolved
            return None
        os.replace(self.partial, self.path)
        return self.path
