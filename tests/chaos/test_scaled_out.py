"""Scenario 6: two API processes and two workers on one PostgreSQL and one Redis, as a scaled-out deployment runs.

Clients publish concurrently to the same (metric, session) and to brand-new metric names through both APIs: every
request is answered 200 (no deadlock or conflict surfaces to a client), there is one row per (metric, session)
and one definition per name."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.tenant import new_tenant

pytestmark = pytest.mark.slow

CLIENTS = 8
ROUNDS = 6


def test_two_apis_two_workers_concurrent_publishes(fresh, stack_on):
    database_url, broker_url = fresh
    first = stack_on(database_url, broker_url)
    second = stack_on(database_url, broker_url)
    first.start_api()
    second.start_api()
    first.start_worker(concurrency=2)
    second.start_worker(concurrency=2)
    tenant = new_tenant(database_url, first.url)
    sessions = [tenant.session() for _ in range(2)]
    shared = [f"shared.{secrets.token_hex(2)}.{i}" for i in range(5)]
    tag = secrets.token_hex(2)

    def client_run(n: int) -> list[tuple[int, str]]:
        url = (first if n % 2 == 0 else second).url
        answers = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tenant.token}"}, timeout=60) as client:
            for r in range(ROUNDS):
                metrics = [{"name": name, "value": float(n * 100 + r)} for name in shared]
                # New names, some of which every client invents at once (the same name from 8 clients).
                metrics += [{"name": f"new.{tag}.r{r}.{k}", "value": float(k)} for k in range(20)]
                metrics += [{"name": f"own.{tag}.c{n}.r{r}", "value": 1.0}]
                body = {"session_id": sessions[r % 2], "device_id": None, "metrics": metrics}
                resp = client.post("/v1/metrics", json=body)
                answers.append((resp.status_code, resp.text))
        return answers

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for batch in pool.map(client_run, range(CLIENTS)) for a in batch]

    assert [s for s, _ in answers] == [200] * (CLIENTS * ROUNDS), [a for a in answers if a[0] != 200][:3]
    for _, text in answers:
        assert '"failed":[]' in text.replace(" ", "")

    names = tenant.sql("SELECT name, count(*) FROM metric_definitions WHERE org_id = %s GROUP BY name", tenant.org_id)
    assert all(count == 1 for _, count in names)
    expected_names = set(shared) | {f"new.{tag}.r{r}.{k}" for r in range(ROUNDS) for k in range(20)}
    expected_names |= {f"own.{tag}.c{n}.r{r}" for n in range(CLIENTS) for r in range(ROUNDS)}
    assert {n for n, _ in names} == expected_names

    rows = tenant.sql(
        "SELECT d.name, v.session_id, count(*) FROM metric_values v JOIN metric_definitions d USING (metric_id) "
        "WHERE v.org_id = %s GROUP BY d.name, v.session_id",
        tenant.org_id,
    )
    assert all(count == 1 for _, _, count in rows)
    # Shared names were written in both sessions, new.* names in the session of their round.
    assert {(n, s) for n, s, _ in rows if n in shared} == {(n, s) for n in shared for s in sessions}
    assert len(rows) == len(shared) * 2 + ROUNDS * 20 + CLIENTS * ROUNDS
