"""Every pooled database connection busy is overload, and overload is shed: a request that finds no free connection
within `DB_POOL_TIMEOUT_S` gets 429 with Retry-After in the Roboto envelope (the SDK retries it), never a 5xx, and
the requests that held the connections finish normally."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from ingest.config import to_libpq_url
from tests.support.polling import wait_until
from tests.support.tenant import new_tenant


def test_no_free_connection_is_a_429_with_retry_after(make_stack):
    # One API process with two pooled connections (pool 1 + overflow 1), a short wait for one, a long lock time-out.
    stack = make_stack(DB_POOL_SIZE=1, DB_POOL_TIMEOUT_S=1, DB_LOCK_TIMEOUT_MS=120_000)
    tenant = new_tenant(stack.database_url, stack.url)
    with tenant.client() as client, ThreadPoolExecutor(2) as pool:
        assert client.get("/v1/metrics/jobs").status_code == 200
        with psycopg.connect(to_libpq_url(stack.database_url)) as locker:
            locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")  # job listings wait, each on its connection

            blocked = [pool.submit(client.get, "/v1/metrics/jobs") for _ in range(2)]

            def both_waiting() -> bool:  # asked outside the locker's transaction: its view of the stats is frozen
                rows = tenant.sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'metrics-ingest' "
                    "AND wait_event_type = 'Lock' AND datname = current_database()"
                )
                return rows[0][0] == 2

            wait_until(both_waiting, 60, "two requests to hold both pooled connections")
            shed = client.get("/v1/metrics/definitions/")
            locker.rollback()  # the lock goes: the two waiting requests finish
        assert shed.status_code == 429, shed.text
        assert shed.json()["error"]["error_code"] == "RobotoLimitExceededException"
        assert "busy" in shed.json()["error"]["message"]
        assert int(shed.headers["Retry-After"]) >= 1
        assert [f.result().status_code for f in blocked] == [200, 200]
    assert '"status_code": 5' not in stack.logs()
