"""An org with a token and helpers to register sessions and devices, created straight in the database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx
import psycopg

from ingest.auth import hash_token
from ingest.config import to_libpq_url
from ingest.ids import token_id, token_secret


@dataclass
class Tenant:
    org_id: str
    token: str
    principal: str
    database_url: str
    api_url: str

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {self.token}", **headers}, timeout=60
        )

    def sql(self, query: str, *params):
        with psycopg.connect(to_libpq_url(self.database_url), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def device(self, device_id: str) -> str:
        self.sql("INSERT INTO devices (org_id, device_id) VALUES (%s, %s)", self.org_id, device_id)
        return device_id

    def session(
        self,
        session_id: str | None = None,
        start_ns: int = 1_714_521_600_000_000_000,
        end_ns: int = 1_714_525_200_000_000_000,
        devices: tuple[str, ...] = (),
    ) -> str:
        session_id = session_id or "ss_" + secrets.token_hex(6)
        self.sql(
            "INSERT INTO sessions (org_id, session_id, start_ns, end_ns) VALUES (%s, %s, %s, %s)",
            self.org_id,
            session_id,
            start_ns,
            end_ns,
        )
        for d in devices:
            self.sql(
                "INSERT INTO session_devices (org_id, session_id, device_id) VALUES (%s, %s, %s)",
                self.org_id,
                session_id,
                d,
            )
        return session_id

    def token_for(self, principal: str, invocation_id: str | None = None, orgs: tuple[str, ...] = ()) -> str:
        secret = token_secret()
        if invocation_id:
            self.sql(
                "INSERT INTO invocations (invocation_id, org_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                invocation_id,
                self.org_id,
            )
        self.sql(
            "INSERT INTO api_tokens (token_id, token_hash, principal, org_ids, invocation_id) "
            "VALUES (%s, %s, %s, %s, %s)",
            token_id(),
            hash_token(secret),
            principal,
            [self.org_id, *orgs],
            invocation_id,
        )
        return secret


def new_tenant(database_url: str, api_url: str, prefix: str = "og_") -> Tenant:
    org_id = prefix + secrets.token_hex(6)
    principal = f"user-{secrets.token_hex(3)}@example.com"
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO orgs (org_id) VALUES (%s)", (org_id,))
    tenant = Tenant(org_id, "", principal, database_url, api_url)
    tenant.token = tenant.token_for(principal)
    return tenant
