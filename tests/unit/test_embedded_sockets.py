"""Where the embedded servers of a data dir listen, and the URLs every process derives from it alone."""

from __future__ import annotations

from pathlib import Path

import redis

from broker.celery_app import kombu_url, redis_py_url
from ingest.config import SOCKET_DIR_RECORD, EmbeddedSockets, Settings, fits_socket_paths


def test_urls_come_from_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", database_url=None, broker_url=None)  # whatever the environment says
    root = (tmp_path / "d").resolve()
    assert settings.effective_database_url == (f"postgresql://postgres@/metrics_ingest?host={root}/postgres&port=5432")
    assert settings.effective_broker_url == f"unix://{root}/redis/redis.sock?db=0"
    other = Settings(data_dir=tmp_path / "e", database_url=None, broker_url=None)
    assert other.effective_database_url != settings.effective_database_url  # one instance per data dir


def test_a_deep_data_dir_reads_its_recorded_socket_folder(tmp_path):
    deep = tmp_path / ("x" * 100)
    assert not fits_socket_paths(deep)
    assert EmbeddedSockets.of(deep).root == deep.resolve()  # not started yet: nothing recorded
    deep.mkdir()
    (deep / SOCKET_DIR_RECORD).write_text("/tmp/metrics-ingest-abc\n")
    assert EmbeddedSockets.of(deep).redis_socket == Path("/tmp/metrics-ingest-abc/redis/redis.sock")


def test_a_redis_socket_url_in_both_spellings():
    assert kombu_url("unix:///a/b/redis.sock?db=3") == "redis+socket:///a/b/redis.sock?virtual_host=3"
    assert redis_py_url("redis+socket:///a/b/redis.sock?virtual_host=3") == "unix:///a/b/redis.sock?db=3"
    assert kombu_url("redis://h:1/0") == "redis://h:1/0" and redis_py_url("amqp://h") == "amqp://h"
    client = redis.Redis.from_url(redis_py_url(kombu_url("unix:///a/b/redis.sock?db=3")))
    assert client.connection_pool.connection_kwargs["path"] == "/a/b/redis.sock"
    assert client.connection_pool.connection_kwargs["db"] == 3
    assert Settings(broker_url="redis+socket:///a/b/redis.sock").effective_broker_url.startswith("redis+socket://")
