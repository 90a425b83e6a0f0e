"""The one place where configuration is read: environment (METRICS_INGEST_*) and an optional `.env`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.durations import HINT, parse_duration

BROKER_SCHEMES = ("redis://", "rediss://", "unix://", "redis+socket://", "amqp://", "amqps://", "pyamqp://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_INGEST_", env_file=".env", extra="ignore")

    # Servers. Unset = the embedded default (PostgreSQL and Redis started from PyPI wheels in data_dir, reached
    # through unix sockets there: no TCP port, nothing to choose, one instance per data dir).
    database_url: str | None = None
    broker_url: str | None = None
    data_dir: Path = Path(".metrics-ingest")

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int = Field(1, ge=1, le=64)
    db_pool_size: int = Field(10, ge=1, le=200)
    # A request waiting this long for a free pooled connection is shed with 429 (overload), not left to hang.
    db_pool_timeout_s: float = Field(10.0, gt=0)
    # A statement waiting this long for a row/table lock fails (and is retried) instead of hanging a worker.
    db_lock_timeout_ms: int = Field(30_000, ge=0)
    # A peer that vanished (host down, network cut) is noticed by both ends of a database connection within about
    # idle + interval * count seconds: TCP keepalives and TCP_USER_TIMEOUT on the client (libpq) and on the server
    # (set per session), and PostgreSQL checks the client socket every `interval` seconds while a statement runs.
    # So a worker cut off mid-chunk loses its row lock and its transaction, and another worker takes the chunk.
    db_keepalive_idle_s: int = Field(30, ge=1, le=3600)
    db_keepalive_interval_s: int = Field(10, ge=1, le=600)
    db_keepalive_count: int = Field(3, ge=1, le=50)
    # A transaction left open by a client that does not come back is rolled back after this long (0 = never).
    db_idle_in_transaction_timeout_s: int = Field(300, ge=0)

    # Workers
    worker_concurrency: int = Field(2, ge=1, le=64)
    interactive_worker: bool = True  # `up` also runs a worker process that serves only the interactive lane
    # `up` gives up (exits non-zero) when one child died more than this many times within the window.
    up_max_restarts: int = Field(5, ge=0, le=1000)
    up_restart_window_s: float = Field(60.0, gt=0)
    chunk_items: int = Field(5000, ge=1, le=100_000)  # items per chunk (one Celery message, one upsert)
    interactive_max_items: int = Field(2000, ge=1)  # jobs up to this size go to the interactive lane
    task_time_limit_s: int = Field(300, ge=10)
    task_max_retries: int = Field(8, ge=0, le=50)
    # Messages each worker process reserves: an interactive-only worker takes one at a time; a worker with the bulk
    # lane keeps the next chunk on hand (hides the broker round trip).
    interactive_prefetch: int = Field(1, ge=1, le=100)
    bulk_prefetch: int = Field(2, ge=1, le=100)

    # Broker transport. Redis: a message a worker took and never acknowledged (the worker vanished) is delivered
    # again after the visibility timeout; keep it longer than any chunk may run. RabbitMQ: the heartbeat by which
    # both ends notice a dead connection (RabbitMQ then delivers the worker's unacknowledged messages again), and
    # the queue type (quorum: replicated, needs RabbitMQ 3.8+; classic for older or single-node servers).
    broker_visibility_timeout_s: int = Field(3600, ge=1)
    broker_heartbeat_s: int = Field(30, ge=0, le=600)
    amqp_queue_type: Literal["quorum", "classic"] = "quorum"
    requeue_after_s: float = Field(30.0, gt=0)  # a queued chunk not started this long after its enqueue is re-sent
    sweep_interval_s: float = Field(5.0, gt=0)
    heartbeat_interval_s: float = Field(5.0, gt=0)
    # Retention: a finished job (its row, chunks and outcomes) is deleted this long after it finished, by the sweep
    # each worker runs every `purge_interval_s`. Written as a duration: 45s, 30m, 12h, 7d.
    job_retention: int = 7 * 86400
    purge_interval_s: float = Field(60.0, gt=0, le=60)
    worker_alive_s: float = Field(30.0, gt=0)  # readiness: a worker heartbeat must be newer than this
    # Rollups (ingest/rollups.py): the sweep recomputes a dirty (metric, UTC day) once it has had no new write for
    # `rollup_quiet_s` (a bulk load is not slowed by recomputing the days it keeps touching), or once its oldest
    # mark waited `rollup_max_delay_s`; `rollup_batch_pairs` days per transaction, at most `rollup_tick_s` of
    # work per sweep tick. Reads are exact either way (dirty days are read raw); this only decides how soon
    # aggregates get fast again after writes.
    rollup_quiet_s: float = Field(5.0, ge=0)
    rollup_max_delay_s: float = Field(300.0, ge=0)
    rollup_batch_pairs: int = Field(50, ge=1, le=100_000)
    rollup_tick_s: float = Field(2.0, gt=0)

    # Roboto publish (synchronous): how long the API waits for the worker before answering 503
    publish_wait_s: float = Field(25.0, gt=0)

    # Limits
    max_backlog_items: int = Field(5_000_000, ge=1)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_ndjson_bytes: int = Field(1024 * 1024 * 1024, ge=1024)
    body_read_timeout_s: float = Field(30.0, gt=0)  # an upload sending no data this long is cut off (400)
    # ... and one slower than this on average, once its first `body_read_timeout_s` are over (a trickle)
    body_min_rate_bytes_s: int = Field(1024, ge=1)
    # A request's line and headers must arrive within this (408 and the connection closed): api_shim/server.py
    header_read_timeout_s: float = Field(30.0, gt=0)
    max_entries_per_request: int = Field(25_000, ge=1)
    max_requests_per_job: int = Field(200_000, ge=1)
    max_items_per_job: int = Field(2_000_000, ge=1)
    max_name_length: int = Field(255, ge=1, le=1000)
    max_id_length: int = Field(255, ge=1, le=1000)
    max_results: int = Field(10_000, ge=1)
    definitions_page_size: int = Field(100, ge=1, le=10_000)
    job_results_page_size: int = Field(1000, ge=1, le=100_000)

    # Web console (/console)
    console_session_ttl_s: float = Field(8 * 3600.0, gt=0)  # a sign-in lasts this long (sign-out/revoke end it sooner)
    console_signin_per_minute: int = Field(10, ge=1)  # sign-in attempts per client address and minute, then 429

    # Operations
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_token: str | None = None  # when set, GET /metrics requires `Authorization: Bearer <metrics_token>`

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not v.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return v

    @field_validator("job_retention", mode="before")
    @classmethod
    def _job_retention(cls, v: object) -> int:
        seconds = v if isinstance(v, int) and not isinstance(v, bool) else parse_duration(str(v))
        if seconds <= 0:
            raise ValueError(f"must be {HINT}, more than 0")
        return seconds

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not v.startswith(BROKER_SCHEMES):
            raise ValueError("must be a redis://, rediss://, amqp:// or amqps:// URL")
        return v

    # Unset URLs mean the embedded servers that `metrics-ingest up` runs from `data_dir`: every process of the same
    # settings (API, workers, admin commands) finds them on its own, and the settings object is never changed.
    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def embedded(self) -> EmbeddedSockets:
        return EmbeddedSockets.of(self.data_dir)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.embedded.database_url()

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.embedded.broker_url()

    @property
    def sqlalchemy_url(self) -> str:
        return to_sqlalchemy_url(self.effective_database_url)


EMBEDDED_DATABASE = "metrics_ingest"
EMBEDDED_PG_PORT = 5432  # names the socket file only: the embedded PostgreSQL listens on no TCP port
SOCKET_PATH_MAX = 103  # bytes of a unix socket path (sun_path: 108 with its NUL on Linux, 104 on macOS and BSD)
SOCKET_DIR_RECORD = "socket-dir"  # in the data dir: the short folder the sockets went to when the data dir is too deep


@dataclass(frozen=True)
class EmbeddedSockets:
    """Where the embedded servers of a data dir listen: unix sockets under `root`, which is the data dir itself, or,
    when a socket path there would pass the kernel's limit, a short private folder under /tmp that the server start
    made and recorded in `<data dir>/socket-dir` (read here, so every command of the same data dir finds it)."""

    root: Path

    @classmethod
    def of(cls, data_dir: Path) -> EmbeddedSockets:
        data_dir = data_dir.resolve()
        if fits_socket_paths(data_dir):
            return cls(data_dir)
        try:
            return cls(Path((data_dir / SOCKET_DIR_RECORD).read_text().strip()))
        except OSError:  # never started: nothing listens anyway
            return cls(data_dir)

    @property
    def pg_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def pg_socket(self) -> Path:
        return self.pg_dir / f".s.PGSQL.{EMBEDDED_PG_PORT}"

    @property
    def redis_socket(self) -> Path:
        return self.root / "redis" / "redis.sock"

    def database_url(self, database: str = EMBEDDED_DATABASE) -> str:
        return f"postgresql://postgres@/{database}?host={quote(str(self.pg_dir), safe='/')}&port={EMBEDDED_PG_PORT}"

    def broker_url(self, db: int = 0) -> str:
        return f"unix://{quote(str(self.redis_socket), safe='/')}?db={db}"


def fits_socket_paths(root: Path) -> bool:
    """Whether both servers' sockets under `root` are short enough for the kernel."""
    longest = EmbeddedSockets(root).pg_socket
    return len(str(longest).encode()) <= SOCKET_PATH_MAX


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line meant for the operator."""


def to_sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def to_libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def describe_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "settings"
        parts.append(f"METRICS_INGEST_{field.upper()}: {e['msg']}")
    return "invalid configuration: " + "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err)) from None
