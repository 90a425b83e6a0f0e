"""The job API over HTTP, with the retries a long backfill needs: 429/503 (honouring Retry-After), 502/504 and
connection errors are retried with capped exponential backoff; any other error is returned to the caller."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import structlog

from ingest import backoff

log = structlog.get_logger(__name__)

RETRY_STATUSES = (429, 502, 503, 504)


@dataclass
class ApiError(Exception):
    status: int
    error_code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.error_code}: {self.message}"


@dataclass
class Submitted:
    job: dict
    existing: bool  # 200: the key was accepted before (a resumed run); 202: a new job


class JobClient:
    def __init__(
        self,
        endpoint: str,
        api_key: str,
        org: str | None = None,
        *,
        timeout_s: float = 300.0,
        max_attempts: int = 30,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "metrics-ingest-backfill"}
        if org:
            headers["X-Roboto-Org-Id"] = org
        self.http = httpx.Client(base_url=endpoint.rstrip("/"), headers=headers, timeout=timeout_s)
        self.max_attempts = max_attempts
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the progress

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as err:
                if attempt >= self.max_attempts:
                    raise
                delay = backoff.jittered(attempt, base_s=0.5, floor_s=0.5)
                log.warning("request.retry", url=url, attempt=attempt, in_s=round(delay, 2), error=type(err).__name__)
                time.sleep(delay)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_attempts:
                delay = _retry_after(response) or backoff.jittered(attempt, base_s=0.5, floor_s=0.5)
                log.info("request.retry", url=url, attempt=attempt, status=response.status_code, in_s=round(delay, 2))
                time.sleep(delay)
                continue
            if response.status_code >= 400:
                raise _api_error(response)
            return response

    def submit(self, body: bytes, key: str, lane: str = "bulk") -> Submitted:
        response = self._send(
            "POST",
            "/v1/metrics/jobs",
            params={"lane": lane},
            content=body,
            headers={"Content-Type": "application/x-ndjson", "Idempotency-Key": key},
        )
        return Submitted(response.json()["data"], existing=response.status_code == 200)

    def create_sessions(self, sessions: list[dict]) -> dict:
        """`POST /v1/sessions/batch`: per-item outcomes (see `metrics-ingest sessions import`)."""
        return self._send("POST", "/v1/sessions/batch", json={"sessions": sessions}).json()["data"]

    def job(self, job_id: str) -> dict:
        return self._send("GET", f"/v1/metrics/jobs/{job_id}").json()["data"]

    def results(self, job_id: str, status: str | None = None, page_size: int = 5000) -> Iterator[dict]:
        params: dict[str, str | int] = {"max_results": page_size}
        if status:
            params["status"] = status
        while True:
            data = self._send("GET", f"/v1/metrics/jobs/{job_id}/results", params=params).json()["data"]
            yield from data["items"]
            token = data.get("next_token")
            if not token:
                return
            params["page_token"] = token


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(60.0, max(0.0, float(response.headers.get("Retry-After", ""))))
    except ValueError:
        return None


def _api_error(response: httpx.Response) -> ApiError:
    try:
        err = response.json()["error"]
        return ApiError(response.status_code, err.get("error_code", "?"), err.get("message", ""))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "HTTPError", response.text[:200])
