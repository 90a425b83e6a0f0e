"""Migration 0006 both ways: a done chunk's item keys go back into a payload of the old form on downgrade (values
null), so the previous version still lists the job's results; upgrade again keeps every row."""

from __future__ import annotations

import psycopg
from alembic import command

from ingest.config import to_libpq_url, to_sqlalchemy_url
from ingest.db import alembic_config, migrate
from ingest.notset import NOT_SET
from ingest.payload import PublishRequest, decode_chunk, encode_chunk, encode_keys


def test_downgrade_writes_item_keys_back_as_a_payload(servers):
    url = servers.new_database()
    requests = [
        PublishRequest("ss_a", NOT_SET, [("m1", 1.0), ("m2", 2.0)]),
        PublishRequest("ss_b", "dv_1", [("m1", 3.0), ("m2", 4.0)]),
        PublishRequest("ss_c", None, [("x", 5.0)]),
    ]
    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO orgs (org_id) VALUES ('og_m')")
        conn.execute(
            "INSERT INTO jobs (job_id, org_id, lane, state, source, principal, total, chunks_total) "
            "VALUES ('jb_m', 'og_m', 'bulk', 'succeeded', 'jobs', 'p', 5, 3)"
        )
        for seq, (payload, keys) in enumerate(
            [(None, encode_keys(requests)), (encode_chunk(requests[:1]), None), (None, encode_keys([]))]
        ):
            conn.execute(
                "INSERT INTO job_chunks (job_id, seq, lane, state, first_request, request_count, item_count, payload, "
                "item_keys) VALUES ('jb_m', %s, 'bulk', 'done', 0, 3, 5, %s, %s)",
                (seq, payload, keys),
            )
    command.downgrade(alembic_config(to_sqlalchemy_url(url)), "0005")
    with psycopg.connect(to_libpq_url(url)) as conn:
        payloads = [bytes(p) for (p,) in conn.execute("SELECT payload FROM job_chunks ORDER BY seq")]
    assert [(r.session_id, r.entries) for r in decode_chunk(payloads[0])] == [
        ("ss_a", [("m1", None), ("m2", None)]),
        ("ss_b", [("m1", None), ("m2", None)]),
        ("ss_c", [("x", None)]),
    ]
    assert payloads[1] == encode_chunk(requests[:1])  # a payload still there is left alone
    assert decode_chunk(payloads[2]) == []
    migrate(url)
    with psycopg.connect(to_libpq_url(url)) as conn:
        assert conn.execute("SELECT count(*), count(payload), count(item_keys) FROM job_chunks").fetchone() == (3, 3, 0)
