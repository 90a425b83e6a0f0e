"""The broker adapter on a real RabbitMQ (a virtual host of its own on the test session's server): queues declared
durable and quorum by whoever sends first, queue lengths read by a passive declare (a queue not declared yet holds
nothing), a probe that outlives a dropped connection, and an unreachable server: probes answer false or raise
(bounded), and chunks it cannot take are reported as not sent (the sweeper sends them later)."""

from __future__ import annotations

import socket

import pytest
from kombu import Connection

from broker import CeleryBroker
from ingest.config import Settings
from runtime.embedded import free_port
from tests.support import rabbitmq
from tests.support.servers import Servers

pytestmark = pytest.mark.skipif(rabbitmq.missing_reason() is not None, reason=str(rabbitmq.missing_reason()))


@pytest.fixture
def amqp_url(servers: Servers) -> str:
    return servers.new_amqp_broker()


def test_lengths_count_messages_ready_and_queues_are_quorum(amqp_url):
    broker = CeleryBroker.from_settings(Settings(broker_url=amqp_url))
    assert broker.ping()
    assert broker.queue_lengths() == {"interactive": 0, "bulk": 0}  # nothing declared yet: nothing waiting
    assert broker.send_chunks("jb_probe", "bulk", [0, 1, 2])
    assert broker.send_chunks("jb_probe2", "interactive", [0])
    assert broker.queue_lengths() == {"interactive": 1, "bulk": 3}
    with Connection(amqp_url) as conn:
        channel = conn.channel()
        # a declare with other arguments than the existing queue's is refused: the queue is durable and quorum
        channel.queue_declare(
            "bulk", durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"}, passive=False
        )
        with pytest.raises(Exception, match="PRECONDITION_FAILED"):
            conn.channel().queue_declare("bulk", durable=True, auto_delete=False, arguments={"x-queue-type": "classic"})
        # a message taken by a consumer and not acknowledged is no longer counted as waiting
        message = conn.channel().basic_get("bulk", no_ack=False)
        assert message is not None
        assert broker.queue_lengths()["bulk"] == 2


def test_probe_of_an_unreachable_server_answers_false():
    broker = CeleryBroker.from_settings(Settings(broker_url=f"amqp://mi:x@127.0.0.1:{free_port()}/v"))
    assert broker.ping() is False
    with pytest.raises(Exception):  # noqa: B017 - any transport error: the sweeper skips its tick
        broker.queue_lengths()
    assert broker.send_chunks("jb_nowhere", "bulk", [0]) is False


def test_a_probe_connection_dropped_meanwhile_is_replaced(amqp_url):
    """The probe keeps its connection between calls; one the server closed in between (idle, restarted) must not
    make the next readiness probe fail."""
    broker = CeleryBroker.from_settings(Settings(broker_url=amqp_url))
    assert broker.ping()
    kept = broker._probe._conn  # type: ignore[union-attr]
    kept.connection.transport.sock.shutdown(socket.SHUT_RDWR)  # what the client sees when the server hangs up
    assert broker.ping()
    assert broker._probe._conn is not kept  # type: ignore[union-attr]
