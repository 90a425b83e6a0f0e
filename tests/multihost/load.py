"""Interactive publishers for the multihost scenarios: threads in the test process (a client machine on the bridge),
each with its own unmodified roboto 0.53 SDK client, publishing 20 new metrics per call to a session of its own until
told to stop (or a bounded number of calls). Every call's latency and answer is kept for the checks."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.support.tenant import Tenant

METRICS_PER_CALL = 20


@dataclass
class Publisher:
    session_id: str
    prefix: str
    latencies_ms: list[float] = field(default_factory=list)
    sent: dict[str, float] = field(default_factory=dict)  # name -> value, of calls answered with every entry stored
    errors: list[str] = field(default_factory=list)


def _client(tenant: Tenant):
    from roboto.http import BearerTokenDecorator, HttpClientOptions, HttpRetryOptions, RobotoClient

    return RobotoClient(
        endpoint=tenant.api_url,
        auth_decorator=BearerTokenDecorator(token=tenant.token),
        http_client_kwargs={"default_timeout": 60.0, "options": HttpClientOptions(retry=HttpRetryOptions())},
    )


def _publish_until(tenant: Tenant, me: Publisher, stop: threading.Event, max_calls: int) -> None:
    from roboto.domain.metrics import Metric, MetricEntry

    client = _client(tenant)
    for call in range(max_calls):
        if stop.is_set():
            return
        entries = {f"{me.prefix}.c{call}.m{k}": float(call * METRICS_PER_CALL + k) for k in range(METRICS_PER_CALL)}
        started = time.perf_counter()
        try:
            result = Metric.publish(
                session_id=me.session_id,
                metrics=[MetricEntry(name=n, value=v) for n, v in entries.items()],
                roboto_client=client,
            )
        except Exception as err:  # kept and asserted on: no call may fail
            me.errors.append(f"{type(err).__name__}: {err}")
            continue
        me.latencies_ms.append((time.perf_counter() - started) * 1000)
        if result.failed or len(result.succeeded) != METRICS_PER_CALL:
            me.errors.append(f"call {call}: {len(result.succeeded)} stored, failed {result.failed}")
        else:
            me.sent.update(entries)


class Publishers:
    """`with Publishers(tenant, 8) as pubs:` publishes in the background until the block ends."""

    def __init__(self, tenant: Tenant, count: int, tag: str, max_calls: int = 400) -> None:
        self.tenant = tenant
        self.publishers = [Publisher(tenant.session(), f"pub{tag}.{i}") for i in range(count)]
        self.max_calls = max_calls
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(count)

    def __enter__(self) -> Publishers:
        self._futures = [
            self._pool.submit(_publish_until, self.tenant, p, self._stop, self.max_calls) for p in self.publishers
        ]
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()

    @property
    def latencies_ms(self) -> list[float]:
        return [ms for p in self.publishers for ms in p.latencies_ms]

    def p50_p95(self) -> tuple[float, float]:
        found = sorted(self.latencies_ms)
        return statistics.median(found), found[int(0.95 * (len(found) - 1))]

    def assert_all_stored(self) -> int:
        """Every call answered with all its entries stored, and the rows hold exactly what was sent; returns items."""
        errors = [e for p in self.publishers for e in p.errors]
        assert not errors, errors[:5]
        for p in self.publishers:
            rows = self.tenant.sql(
                "SELECT d.name, v.value FROM metric_values v JOIN metric_definitions d USING (metric_id) "
                "WHERE v.org_id = %s AND v.session_id = %s",
                self.tenant.org_id,
                p.session_id,
            )
            assert len(rows) == len({n for n, _ in rows}), "more than one row for a (metric, session)"
            assert dict(rows) == p.sent
        return sum(len(p.sent) for p in self.publishers)
