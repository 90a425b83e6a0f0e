from __future__ import annotations


def test_publish_roundtrip(tenant):
    dev = tenant.device("dv_robot01")
    ss = tenant.session(devices=(dev,))
    with tenant.client(**{"X-Roboto-Api-Version": "2026-05-20"}) as c:
        r = c.post(
            "/v1/metrics",
            json={
                "session_id": ss,
                "device_id": {},
                "metrics": [
                    {"name": "cpu.usage_max", "value": 87.2},
                    {"name": "bad name!", "value": 1.0},
                    {"name": "nan.metric", "value": None},
                ],
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()["data"]
    assert [m["name"] for m in body["succeeded"]] == ["cpu.usage_max"]
    assert body["succeeded"][0]["device_id"] == dev
    assert {f["name"] for f in body["failed"]} == {"bad name!", "nan.metric"}
