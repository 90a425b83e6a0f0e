"""Sessions in bulk: `POST /v1/sessions/batch` (per-item outcomes with the single route's rules) and
`metrics-ingest sessions import FILE` (CSV and NDJSON, re-runnable)."""

from __future__ import annotations

import json

from tests.support import cli
from tests.support.cli import client_env

S = 1_000_000_000


def test_batch_answers_each_item_like_the_single_route(tenant, other_tenant):
    tenant.device("dv_b1")
    tenant.device("dv_b2")
    tenant.session("ss_taken", 10, 20, ("dv_b1",))
    items = [
        {"session_id": "ss_b_new", "start_time_ns": 100, "end_time_ns": 200, "device_ids": ["dv_b1", "dv_b2"]},
        {"session_id": "ss_taken", "start_time_ns": 10, "end_time_ns": 20, "device_ids": ["dv_b1"]},  # identical
        {"session_id": "ss_taken", "start_time_ns": 10, "end_time_ns": 21},  # differs: conflict
        {"session_id": "ss_b_bad", "start_time_ns": 5, "end_time_ns": 1},  # ends before it starts
        {"session_id": "ss_b_dev", "start_time_ns": 1, "end_time_ns": 2, "device_ids": ["dv_nope"]},
        {"session_id": "ss_b_shape", "start_time_ns": "x", "end_time_ns": 2},
        {"session_id": "ss_b_new", "start_time_ns": 100, "end_time_ns": 200, "device_ids": ["dv_b2", "dv_b1"]},
        {"session_id": "ss_b_new", "start_time_ns": 100, "end_time_ns": 300},
        "not an object",
        {"session_id": "ss_b_plain", "start_time_ns": 0, "end_time_ns": 0},
    ]
    with tenant.client() as c:
        r = c.post("/v1/sessions/batch", json={"sessions": items})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        got = [(i["session_id"], i["status"], (i.get("error") or {}).get("error_code")) for i in data["items"]]
        assert got == [
            ("ss_b_new", "created", None),
            ("ss_taken", "exists", None),
            ("ss_taken", "failed", "RobotoConflictException"),
            ("ss_b_bad", "failed", "RobotoInvalidRequestException"),
            ("ss_b_dev", "failed", "RobotoNotFoundException"),
            ("ss_b_shape", "failed", "RobotoInvalidRequestException"),
            ("ss_b_new", "exists", None),
            ("ss_b_new", "failed", "RobotoConflictException"),
            (None, "failed", "RobotoInvalidRequestException"),
            ("ss_b_plain", "created", None),
        ]
        assert (data["created"], data["existing"], data["failed"]) == (2, 2, 6)
        # The single route's messages, word for word.
        single = c.post("/v1/sessions", json=items[3]).json()["error"]["message"]
        assert data["items"][3]["error"]["message"] == single
        single = c.post("/v1/sessions", json=items[4]).json()["error"]["message"]
        assert data["items"][4]["error"]["message"] == single
        stored = c.get("/v1/sessions/ss_b_new").json()["data"]
        assert (stored["start_time_ns"], stored["end_time_ns"], stored["device_ids"]) == (100, 200, ["dv_b1", "dv_b2"])
        assert c.get("/v1/sessions/ss_b_dev").status_code == 404
        # Sending it all again: nothing new, nothing lost.
        again = c.post("/v1/sessions/batch", json={"sessions": items}).json()["data"]
        assert again["created"] == 0 and again["existing"] == 4
    with other_tenant.client() as c:
        assert c.get("/v1/sessions/ss_b_new").status_code == 404


def test_batch_refuses_bad_bodies_with_the_envelope(tenant):
    with tenant.client() as c:
        for body, status in (
            ([], 400),
            ({"sessions": {}}, 400),
            ({"sessions": [], "extra": 1}, 400),
            ({"sessions": [{"session_id": "x", "start_time_ns": 1, "end_time_ns": 2}] * 10_001}, 413),
        ):
            r = c.post("/v1/sessions/batch", json=body)
            assert r.status_code == status, r.text
            assert set(r.json()) == {"error"}
        r = c.post("/v1/sessions/batch", content=b"{", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["error_code"] == "RobotoInvalidRequestException"
        r = c.post("/v1/sessions/batch", json={"sessions": []})
        assert r.status_code == 200 and r.json()["data"]["items"] == []


def test_unstorable_text(tenant):
    """A NUL fails its item alone; a lone surrogate anywhere is a 400 for the call, as on every route."""
    items = [
        {"session_id": "a\u0000b", "start_time_ns": 1, "end_time_ns": 2},
        {"session_id": "ss_u1", "start_time_ns": 1, "end_time_ns": 2, "device_ids": ["d\u0000"]},
        {"session_id": "ss_u2", "start_time_ns": 1, "end_time_ns": 2},
    ]
    with tenant.client(**{"Content-Type": "application/json"}) as c:
        r = c.post("/v1/sessions/batch", content=json.dumps({"sessions": items}))
        assert r.status_code == 200, r.text
        assert [i["status"] for i in r.json()["data"]["items"]] == ["failed", "failed", "created"]
        bad = [{"session_id": "a\ud877b", "start_time_ns": 1, "end_time_ns": 2}]
        r = c.post("/v1/sessions/batch", content=json.dumps({"sessions": bad}))
        assert r.status_code == 400 and r.json()["error"]["error_code"] == "RobotoInvalidRequestException"


def test_batch_of_ten_thousand_then_publish(tenant):
    tenant.device("dv_many")
    items = [
        {"session_id": f"ss_many_{i:05d}", "start_time_ns": i * S, "end_time_ns": i * S + S, "device_ids": ["dv_many"]}
        for i in range(10_000)
    ]
    with tenant.client() as c:
        data = c.post("/v1/sessions/batch", json={"sessions": items}).json()["data"]
        assert data["created"] == 10_000
        body = {"session_id": "ss_many_09999", "metrics": [{"name": "bulk.m", "value": 1.5}]}
        r = c.post("/v1/metrics", json=body, headers={"X-Roboto-Api-Version": "2026-05-20"})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["succeeded"][0]["device_id"] == "dv_many"


def test_sessions_import_csv_and_ndjson(tenant, tmp_path):
    tenant.device("dv_imp")
    csv_path = tmp_path / "sessions.csv"
    lines = ["session_id,start_time_ns,end_time_ns,device_ids"]
    lines += [f"ss_imp_{i:04d},{i},{i + 10},dv_imp" for i in range(2500)]
    lines += ["ss_imp_bad,20,10,", "ss_imp_garbled,x,1,", "ss_imp_nodev,1,2,dv_nope;dv_imp"]
    csv_path.write_text("\n".join(lines) + "\n")
    env = client_env(tenant)
    first = cli.run_cli("sessions", "import", str(csv_path), "--batch-size", "700", env=env)
    assert first.returncode == 1, first.stderr
    assert "2,500 created" in first.stderr and "3 failed" in first.stderr, first.stderr
    failed = [json.loads(x) for x in (tmp_path / "sessions.csv.failed.ndjson").read_text().splitlines()]
    assert sorted(f["error"]["error_code"] for f in failed) == [
        "RobotoInvalidRequestException",
        "RobotoInvalidRequestException",
        "RobotoNotFoundException",
    ]
    again = cli.run_cli("sessions", "import", str(csv_path), env=env)
    assert "2,500 existing" in again.stderr, again.stderr

    nd = tmp_path / "sessions.ndjson"
    nd.write_text(
        "\n".join(
            json.dumps({"session_id": f"ss_nd_{i}", "start_time_ns": i, "end_time_ns": i, "device_ids": []})
            for i in range(30)
        )
        + "\n"
    )
    clean = cli.run_cli("sessions", "import", str(nd), env=env)
    assert clean.returncode == 0, clean.stderr
    assert "30 created" in clean.stderr
    with tenant.client() as c:
        got = c.get("/v1/sessions/ss_imp_0042").json()["data"]
        assert (got["start_time_ns"], got["end_time_ns"], got["device_ids"]) == (42, 52, ["dv_imp"])
