"""Transport settings chosen from the broker URL: what the Celery app, the worker and the database connections are
given (no server needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from broker.celery_app import make_celery, prefetch_for, publish_options, retry_countdown
from ingest.config import Settings
from ingest.db import connect_args

AMQP = "amqp://mi:secret@rabbit:5672/metrics"
REDIS = "redis://redis:6379/0"


@pytest.mark.parametrize("url", [AMQP, "amqps://mi:secret@rabbit:5671/metrics", REDIS, "rediss://r:6380/0"])
def test_broker_urls_accepted(url):
    assert Settings(broker_url=url).effective_broker_url == url


@pytest.mark.parametrize("url", ["http://rabbit:15672/", "kafka://k:9092", "rabbit:5672"])
def test_other_broker_urls_refused_naming_the_schemes(url):
    with pytest.raises(ValidationError, match="redis://, rediss://, amqp:// or amqps://"):
        Settings(broker_url=url)


def test_rabbitmq_queues_are_durable_quorum_on_topic_exchanges_with_confirms():
    app = make_celery(Settings(broker_url=AMQP, broker_heartbeat_s=15))
    queues = {q.name: q for q in app.conf.task_queues}
    assert set(queues) == {"interactive", "bulk"}
    for lane, queue in queues.items():
        assert queue.durable and not queue.auto_delete
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (lane, "topic", lane)
    assert app.conf.broker_transport_options["confirm_publish"] is True
    assert app.conf.broker_heartbeat == 15
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_detect_quorum_queues
    classic = make_celery(Settings(broker_url=AMQP, amqp_queue_type="classic"))
    assert {q.queue_arguments["x-queue-type"] for q in classic.conf.task_queues} == {"classic"}


def test_redis_keeps_direct_queues_and_the_visibility_timeout_setting():
    app = make_celery(Settings(broker_url=REDIS, broker_visibility_timeout_s=120))
    assert {(q.name, q.exchange.type) for q in app.conf.task_queues} <= {("interactive", "direct"), ("bulk", "direct")}
    assert app.conf.broker_transport_options["visibility_timeout"] == 120
    assert "confirm_publish" not in app.conf.broker_transport_options


def test_prefetch_per_lane():
    settings = Settings(interactive_prefetch=1, bulk_prefetch=3)
    assert prefetch_for(settings, ["interactive"]) == 1
    assert prefetch_for(settings, ["bulk"]) == 3
    assert prefetch_for(settings, ["bulk", "interactive"]) == 3


def test_retry_countdown_in_whole_seconds_on_rabbitmq_only():
    assert retry_countdown(make_celery(Settings(broker_url=AMQP)), 0.3) == 1.0
    assert retry_countdown(make_celery(Settings(broker_url=AMQP)), 2.2) == 3.0
    assert retry_countdown(make_celery(Settings(broker_url=REDIS)), 0.3) == 0.3


def test_database_connections_notice_a_vanished_peer():
    args = connect_args(Settings(db_keepalive_idle_s=20, db_keepalive_interval_s=5, db_keepalive_count=4))
    assert (args["keepalives"], args["keepalives_idle"], args["keepalives_interval"], args["keepalives_count"]) == (
        1,
        20,
        5,
        4,
    )
    assert args["tcp_user_timeout"] == 40_000  # idle + interval * count, in ms
    options = dict(part.split("=", 1) for part in args["options"].replace("-c ", "").split())
    assert options["tcp_keepalives_idle"] == "20" and options["tcp_keepalives_count"] == "4"
    assert options["tcp_user_timeout"] == "40000"
    assert options["client_connection_check_interval"] == "5000"
    assert options["idle_in_transaction_session_timeout"] == "300000"
    assert options["lock_timeout"] == "30000"


def test_a_rabbitmq_publish_waits_for_its_confirm_a_bounded_time():
    assert publish_options(Settings(broker_url=AMQP)) == {"confirm_timeout": 5}
    assert publish_options(Settings(broker_url=REDIS)) == {}  # Redis: the client's socket time-out bounds it
