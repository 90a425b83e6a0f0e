"""API tokens (stored as SHA-256 digests, compared in constant time) and org resolution."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from ingest import ids
from ingest.db import statement
from ingest.errors import NotFound, Unauthorized


@dataclass(frozen=True)
class Principal:
    token_id: str
    principal: str
    org_ids: tuple[str, ...]
    invocation_id: str | None

    @property
    def default_org(self) -> str:
        return self.org_ids[0]

    def org_for(self, requested: str | None) -> str:
        """The org a request acts on. An org this token may not act for behaves as not found."""
        if requested is None or requested == "":
            return self.default_org
        if requested not in self.org_ids:
            raise NotFound(f"Organization '{requested}' not found")
        return requested


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def authenticate(conn: Connection, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized("Missing bearer token")
    digest = hash_token(secret)
    found = conn.execute(
        statement(
            "SELECT token_id, token_hash, principal, org_ids, invocation_id, "
            "(last_used IS NULL OR last_used < now() - interval '60 seconds') AS stale "
            "FROM api_tokens "
            "WHERE token_hash = :h AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
        ),
        {"h": digest},
    ).first()
    if found is None or not hmac.compare_digest(found.token_hash, digest):
        raise Unauthorized("Invalid, expired or revoked token")
    if found.stale:  # `last used` is kept to the minute: one write per token per minute, not per request
        conn.execute(statement("UPDATE api_tokens SET last_used = now() WHERE token_id = :t"), {"t": found.token_id})
    return Principal(found.token_id, found.principal, tuple(found.org_ids), found.invocation_id)


def create_token(
    conn: Connection,
    *,
    org_ids: list[str],
    principal: str,
    invocation_id: str | None = None,
    expires_in_days: float | None = None,
) -> tuple[str, str]:
    """Create a token; returns (token_id, secret). The secret is shown once and never stored."""
    for org in org_ids:
        if conn.execute(statement("SELECT 1 FROM orgs WHERE org_id = :o"), {"o": org}).first() is None:
            raise NotFound(f"Organization '{org}' not found")
    if invocation_id:
        conn.execute(
            statement(
                "INSERT INTO invocations (invocation_id, org_id) VALUES (:i, :o) ON CONFLICT (invocation_id) DO NOTHING"
            ),
            {"i": invocation_id, "o": org_ids[0]},
        )
    token_id, secret = ids.token_id(), ids.token_secret()
    conn.execute(
        statement(
            "INSERT INTO api_tokens (token_id, token_hash, principal, org_ids, invocation_id, expires_at) "
            "VALUES (:id, :h, :p, :orgs, :inv, "
            "CASE WHEN CAST(:days AS float8) IS NULL THEN NULL "
            "ELSE now() + make_interval(secs => CAST(:days AS float8) * 86400) END)"
        ),
        {
            "id": token_id,
            "h": hash_token(secret),
            "p": principal,
            "orgs": org_ids,
            "inv": invocation_id,
            "days": expires_in_days,
        },
    )
    return token_id, secret


def list_tokens(conn: Connection, org_id: str) -> list[dict]:
    rows = conn.execute(
        statement(
            "SELECT token_id, principal, org_ids, invocation_id, created, last_used, expires_at, revoked_at "
            "FROM api_tokens WHERE :o = ANY(org_ids) ORDER BY created"
        ),
        {"o": org_id},
    )
    return [dict(r._mapping) for r in rows]


def revoke_token(conn: Connection, token_id: str) -> None:
    res = conn.execute(
        statement("UPDATE api_tokens SET revoked_at = now() WHERE token_id = :t AND revoked_at IS NULL"),
        {"t": token_id},
    )
    if res.rowcount == 0:
        raise NotFound(f"Token '{token_id}' not found or already revoked")
