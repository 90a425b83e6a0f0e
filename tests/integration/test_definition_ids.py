"""Workers remember definition ids (ingest.publish.DefinitionIds); a definition deleted meanwhile is created again."""

from __future__ import annotations

OLD = {"X-Roboto-Api-Version": "2026-05-20"}


def publish_one(tenant, name: str, value: float) -> dict:
    body = {"session_id": tenant.session(), "device_id": None, "metrics": [{"name": name, "value": value}]}
    with tenant.client(**OLD) as c:
        response = c.post("/v1/metrics", json=body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["failed"] == [] and len(data["succeeded"]) == 1, data
    return data["succeeded"][0]


def test_a_deleted_definition_is_created_again_by_every_worker(tenant):
    # enough publishes that every worker process of the stack has the id in memory
    first = {publish_one(tenant, "kept.id", float(k))["metric_id"] for k in range(8)}
    assert len(first) == 1
    with tenant.client() as c:
        assert c.delete("/v1/metrics/definition/kept.id").status_code == 200
    again = {publish_one(tenant, "kept.id", float(k))["metric_id"] for k in range(8)}
    assert len(again) == 1 and again != first  # a new definition, used by every worker
    stored = tenant.sql(
        "SELECT count(*) FROM metric_values v JOIN metric_definitions d USING (metric_id) "
        "WHERE d.org_id = %s AND d.name = 'kept.id'",
        tenant.org_id,
    )
    assert stored == [(8,)]
