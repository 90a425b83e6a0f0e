"""Token lifecycle: `token create/list/revoke` and expiry through the real CLI; a revoked or expired token is
refused at once by every API process; every route answers another org's ids with 404 and a revoked token with
401, and nothing of the other org leaks."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from ingest.auth import hash_token
from tests.support.cli import run_cli
from tests.support.stack import Stack
from tests.support.tenant import Tenant


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env={"METRICS_INGEST_DATABASE_URL": stack.database_url})


@pytest.fixture(scope="module")
def second_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Another API process on the shared stack's database, as a scaled-out deployment runs."""
    other = Stack(stack.database_url, stack.broker_url, tmp_path_factory.mktemp("second_api"))
    other.start_api()
    yield other
    other.stop()


def test_create_list_revoke_through_the_cli(stack: Stack, second_api: Stack, tenant: Tenant):
    made = cli(stack, "token", "create", "--org", tenant.org_id, "--principal", "ci@example.com")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    token_id = re.search(r"created token (\S+)", made.stderr).group(1)  # type: ignore[union-attr]

    for api in (stack, second_api):
        ok = httpx.get(api.url + "/v1/metrics/jobs", headers={"Authorization": f"Bearer {secret}"})
        assert ok.status_code == 200, ok.text

    listed = cli(stack, "token", "list", "--org", tenant.org_id)
    assert listed.returncode == 0, listed.stderr
    assert token_id in listed.stdout and "ci@example.com" in listed.stdout
    assert secret not in listed.stdout and hash_token(secret) not in listed.stdout
    # Tokens are stored hashed: the secret appears nowhere in the database.
    assert tenant.sql("SELECT count(*) FROM api_tokens WHERE token_hash = %s", secret) == [(0,)]
    assert tenant.sql("SELECT last_used IS NOT NULL FROM api_tokens WHERE token_id = %s", token_id) == [(True,)]

    revoked = cli(stack, "token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    for api in (stack, second_api):  # immediately, on every API process
        refused = httpx.get(api.url + "/v1/metrics/jobs", headers={"Authorization": f"Bearer {secret}"})
        assert refused.status_code == 401
        assert refused.json()["error"]["error_code"] == "RobotoUnauthorizedException"
    again = cli(stack, "token", "revoke", token_id)
    assert again.returncode == 1 and "already revoked" in again.stderr
    (line,) = [x for x in cli(stack, "token", "list", "--org", tenant.org_id).stdout.splitlines() if token_id in x]
    assert tenant.sql("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE token_id = %s", token_id) == [(True,)]
    assert line.rstrip().split("\t")[-1].startswith("20"), line  # the revoked column is filled in


def test_expiry(stack: Stack, tenant: Tenant):
    made = cli(stack, "token", "create", "--org", tenant.org_id, "--principal", "p@x", "--expires-days", "1")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    token_id = re.search(r"created token (\S+)", made.stderr).group(1)  # type: ignore[union-attr]
    (in_a_day,) = tenant.sql(
        "SELECT expires_at BETWEEN now() + interval '23 hours' AND now() + interval '25 hours' "
        "FROM api_tokens WHERE token_id = %s",
        token_id,
    )
    assert in_a_day == (True,)
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(stack.url + "/v1/metrics/jobs", headers=headers).status_code == 200
    tenant.sql("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_id = %s", token_id)
    assert httpx.get(stack.url + "/v1/metrics/jobs", headers=headers).status_code == 401


# -- every route -----------------------------------------------------------------------------------------------
BODIES = {
    ("post", "/v1/metrics/query"): lambda ids: {"name": ids["name"]},
    ("post", "/v1/metrics/aggregate"): lambda ids: {
        "name": ids["name"],
        "period": "daily",
        "aggregation": "mean",
        "start_time_ns": 0,
        "end_time_ns": 2 * 10**18,
    },
    ("post", "/v1/metrics/definition/"): lambda ids: {"name": ids["name"]},
    ("put", "/v1/metrics/definition/{name}"): lambda ids: {"description": "x"},
    ("post", "/v1/devices"): lambda ids: {"device_id": "d-" + secrets.token_hex(3)},
    ("post", "/v1/sessions"): lambda ids: {
        "session_id": "s-" + secrets.token_hex(3),
        "start_time_ns": 1,
        "end_time_ns": 2,
    },
    ("post", "/v1/sessions/batch"): lambda ids: {
        "sessions": [{"session_id": "s-" + secrets.token_hex(3), "start_time_ns": 1, "end_time_ns": 2}]
    },
    ("put", "/v1/sessions/{session_id}"): lambda ids: {"start_time_ns": 1, "end_time_ns": 5},
    ("post", "/v1/metrics"): lambda ids: {"session_id": ids["session_id"], "metrics": [{"name": "m", "value": 1}]},
    ("post", "/v1/metrics/jobs"): lambda ids: {
        "requests": [{"session_id": ids["session_id"], "metrics": [{"name": "m", "value": 1}]}]
    },
}


@pytest.fixture
def victim(stack: Stack, other_tenant: Tenant) -> dict[str, str]:
    """Another org's objects, created through its own token."""
    device = other_tenant.device("dev-" + secrets.token_hex(4))
    session = other_tenant.session(devices=(device,))
    name = "secret.metric." + secrets.token_hex(3)
    with other_tenant.client() as client:
        assert client.post("/v1/metrics/definition/", json={"name": name}).status_code == 200
        published = client.post("/v1/metrics", json={"session_id": session, "metrics": [{"name": name, "value": 42.5}]})
        assert published.status_code == 200, published.text
        job = client.post(
            "/v1/metrics/jobs", json={"requests": [{"session_id": session, "metrics": [{"name": name, "value": 1}]}]}
        )
    return {
        "org_id": other_tenant.org_id,
        "device_id": device,
        "session_id": session,
        "name": name,
        "job_id": job.json()["data"]["job_id"],
    }


def operations(stack: Stack) -> list[tuple[str, str]]:
    doc = httpx.get(stack.url + "/openapi.json").json()
    return [(m, p) for p, ops in doc["paths"].items() if p.startswith("/v1/") for m in ops]


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), ids["session_id"]), path)


def no_leak(resp: httpx.Response, ids: dict[str, str]) -> None:
    for key in ("org_id", "device_id", "session_id", "name", "job_id"):
        if resp.status_code >= 400 and key in ("device_id", "session_id", "name", "job_id"):
            continue  # a 404 may echo the id the caller sent; it must not reveal anything else
        assert ids[key] not in resp.text, (key, resp.text[:300])
    assert "42.5" not in resp.text


def test_every_route_with_another_orgs_ids_is_404(stack: Stack, tenant: Tenant, victim: dict[str, str]):
    tenant.session(victim["session_id"] + "-mine")  # the caller has data of its own
    with tenant.client() as client:
        for method, path in operations(stack):
            url = fill(path, victim)
            body = BODIES.get((method, path), lambda ids: None)(victim)
            if "{" in path:
                resp = client.request(method.upper(), url, json=body)
                assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
                assert resp.json()["error"]["error_code"] == "RobotoNotFoundException"
                if method in ("get", "put", "delete"):
                    assert victim["org_id"] not in resp.text
            # Acting for the other org by header: its org is not found for this token.
            for header in ("X-Roboto-Org-Id", "X-Roboto-Resource-Owner-Id"):
                resp = client.request(method.upper(), url, json=body, headers={header: victim["org_id"]})
                assert resp.status_code == 404, (method, path, header, resp.status_code, resp.text)
        # Reads by another org's metric name: not found for this org.
        for path in ("/v1/metrics/query", "/v1/metrics/aggregate"):
            if ("post", path) in operations(stack):
                resp = client.post(path, json=BODIES[("post", path)](victim))
                assert resp.status_code == 404, (path, resp.text)
                no_leak(resp, victim)
        # Lists show only the caller's own objects.
        for path in ("/v1/metrics/definitions/", "/v1/metrics/jobs"):
            resp = client.get(path)
            assert resp.status_code == 200
            no_leak(resp, victim)
        # The caller's own publish to a session id the other org uses: not found for this org.
        resp = client.post("/v1/metrics", json={"session_id": victim["session_id"], "metrics": []})
        assert resp.status_code == 404
    # And nothing of the victim's changed.
    assert tenant.sql(
        "SELECT count(*) FROM metric_values v JOIN metric_definitions d USING (metric_id) WHERE d.name = %s",
        victim["name"],
    ) == [(1,)]


def test_every_route_with_a_revoked_token_is_401(stack: Stack, tenant: Tenant, victim: dict[str, str]):
    secret = tenant.token_for("soon-revoked@example.com")
    tenant.sql("UPDATE api_tokens SET revoked_at = now() WHERE token_hash = %s", hash_token(secret))
    for token in (secret, "mi_" + secrets.token_urlsafe(32), None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as client:
            for method, path in operations(stack):
                body = BODIES.get((method, path), lambda ids: None)(victim)
                resp = client.request(method.upper(), fill(path, victim), json=body)
                assert resp.status_code == 401, (method, path, resp.status_code, resp.text)
                assert resp.json() == {
                    "error": {"error_code": "RobotoUnauthorizedException", "message": resp.json()["error"]["message"]}
                }
                no_leak(resp, victim)
