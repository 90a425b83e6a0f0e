"""broker/celery_app.py replaces kombu's `Channel.conn_or_acquire` so that a Redis channel keeps one `redis.Redis`
client instead of building one per publish and per acknowledgement. These tests fail if a kombu release changes what
the patch relies on (the attributes it reads, the method it replaces) or if the patched channel stops moving messages
on a real Redis."""

from __future__ import annotations

import inspect

from kombu import Connection, Exchange, Queue
from kombu.transport import redis as redis_transport

from broker.celery_app import KOMBU_CONN_OR_ACQUIRE, _kept_redis_client, kombu_url
from tests.support.servers import Servers

REPLACED = """    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
        else:
            yield self._create_client()
"""


def test_the_patch_replaces_the_method_kombu_still_has_and_calls():
    assert redis_transport.Channel.conn_or_acquire.__wrapped__ is _kept_redis_client
    # kombu's method is still the one the patch was written against; a kombu release that changes it fails here
    assert inspect.getsource(KOMBU_CONN_OR_ACQUIRE) == REPLACED
    # kombu's publish and acknowledgement paths still go through it, or the patch no longer does anything
    assert "conn_or_acquire" in inspect.getsource(redis_transport.Channel._put)
    assert "conn_or_acquire" in inspect.getsource(redis_transport.QoS.pipe_or_acquire)
    # what the patch reads on the channel
    assert callable(redis_transport.Channel._create_client)
    assert "pool" in dir(redis_transport.Channel)


def test_one_client_per_channel_and_messages_still_flow(servers: Servers):
    url = kombu_url(servers.new_broker())
    queue = Queue("patch-check", Exchange("patch-check", type="direct"), routing_key="patch-check")
    with Connection(url) as conn:
        channel = conn.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert first.ping()
        given = object()
        with channel.conn_or_acquire(client=given) as passed:  # a client handed in is used as is
            assert passed is given
        producer = conn.Producer(serializer="json")
        for i in range(3):
            producer.publish({"i": i}, exchange=queue.exchange, routing_key="patch-check", declare=[queue])
        received = []
        with conn.SimpleQueue(queue) as simple:
            for _ in range(3):
                message = simple.get(timeout=5)
                received.append(message.payload["i"])
                message.ack()
        assert received == [0, 1, 2]
        with channel.conn_or_acquire() as again:
            assert again is first  # the same client served every publish and ack
