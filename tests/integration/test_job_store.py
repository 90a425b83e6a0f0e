"""The outbox and the work counters, called directly on a real PostgreSQL database (no API, no worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from ingest import counters, jobs
from ingest.config import to_sqlalchemy_url
from ingest.errors import Conflict, PayloadTooLarge
from ingest.notset import NOT_SET
from ingest.payload import PublishRequest, decode_chunk


@pytest.fixture(scope="module")
def engine(servers) -> Iterator[Engine]:
    made = create_engine(to_sqlalchemy_url(servers.new_database()))
    with made.begin() as conn:
        conn.execute(text("INSERT INTO orgs (org_id) VALUES ('og_store')"))
    yield made
    made.dispose()


def requests(sizes: list[int]) -> list[PublishRequest]:
    return [PublishRequest(f"ss_{i}", NOT_SET, [(f"m{j}", float(j)) for j in range(n)]) for i, n in enumerate(sizes)]


def store(conn, reqs, **kw) -> jobs.NewJob:
    args = dict(org_id="og_store", principal="p", invocation_id=None, source="jobs", lane="bulk", chunk_items=10)
    args.update(kw)
    return jobs.create_job(conn, requests=reqs, **args)


def chunks_of(conn, job_id: str) -> list[dict]:
    return jobs.chunk_rows(conn, job_id, 0, 100, with_payload=True)


def test_whole_requests_are_grouped_into_chunks_of_about_chunk_items(engine):
    with engine.begin() as conn:
        job = store(conn, requests([4, 4, 4, 15, 1]))
        chunks = chunks_of(conn, job.job_id)
        row = jobs.get_job(conn, "og_store", job.job_id)
    assert job.chunk_seqs == [0, 1, 2] and not job.existing
    assert [(c["first_request"], c["item_count"]) for c in chunks] == [(0, 12), (3, 15), (4, 1)]
    assert [len(decode_chunk(c["payload"])) for c in chunks] == [3, 1, 1]
    assert decode_chunk(chunks[1]["payload"])[0].entries[14] == ("m14", 14.0)
    assert (row["state"], row["total"], row["chunks_total"]) == ("queued", 28, 3)


def test_a_lazy_stream_gets_its_totals_when_it_ends(engine):
    with engine.begin() as conn:
        job = store(conn, iter(requests([7, 7, 7])))
        row = jobs.get_job(conn, "og_store", job.job_id)
    assert (row["total"], row["chunks_total"]) == (21, 2)


def test_an_empty_publish_still_gets_one_trivial_chunk(engine):
    with engine.begin() as conn:
        job = store(conn, [])
        assert [c["item_count"] for c in chunks_of(conn, job.job_id)] == [0]


def test_an_oversized_stream_is_refused_and_stores_nothing(engine):
    def stored() -> tuple:
        with engine.begin() as conn:
            return conn.execute(text("SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_chunks)")).one()

    before = stored()
    with pytest.raises(PayloadTooLarge), engine.begin() as conn:
        store(conn, iter(requests([10] * 5)), max_items=30)
    assert stored() == before


def test_an_idempotency_key_returns_the_first_job_and_refuses_another_body(engine):
    with engine.begin() as conn:
        first = store(conn, requests([2]), idempotency_key="k1", body_digest="d1")
    with engine.begin() as conn:
        again = store(conn, requests([2]), idempotency_key="k1", body_digest="d1")
    assert (again.job_id, again.existing) == (first.job_id, True)
    with pytest.raises(Conflict), engine.begin() as conn:
        store(conn, requests([3]), idempotency_key="k1", body_digest="d2")


def test_counters_add_up_over_shards_and_record_a_finished_job(engine):
    with engine.begin() as conn:
        before = counters.read_totals(conn)
    for _ in range(20):  # enough increments to land on several shards
        with engine.begin() as conn:
            counters.count_chunk(conn, lane="bulk", succeeded=3, failed=1)
    with engine.begin() as conn:
        counters.count_chunk(conn, lane="bulk", succeeded=0, failed=0, finished_state="succeeded", duration_s=0.3)
        after = counters.read_totals(conn)
        shards = conn.execute(text("SELECT count(DISTINCT shard) FROM telemetry_counters")).scalar()
    assert after.get(counters.ITEMS, "bulk", "succeeded") - before.get(counters.ITEMS, "bulk", "succeeded") == 60
    assert after.get(counters.ITEMS, "bulk", "failed") - before.get(counters.ITEMS, "bulk", "failed") == 20
    assert after.get(counters.JOBS, "bulk", "succeeded") - before.get(counters.JOBS, "bulk", "succeeded") == 1
    assert after.get(counters.DURATION_BUCKET, "bulk", "0.5") - before.get(counters.DURATION_BUCKET, "bulk", "0.5") == 1
    assert shards > 1


def test_duration_buckets_are_upper_bounds():
    assert counters.bucket_for(0.1) == "0.1" and counters.bucket_for(0.11) == "0.25"
    assert counters.bucket_for(10**9) == "+Inf"
