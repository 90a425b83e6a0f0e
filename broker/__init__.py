"""The message broker adapter: Celery on Redis, behind the domain's port (`ingest.broker_port.Broker`).

Both edges use it: the API sends chunk messages after the outbox commit, the worker consumes them (its Celery app is
built from `celery_app.make_celery`) and its sweeper re-sends lost ones."""

from broker.producer import CeleryBroker

__all__ = ["CeleryBroker"]
