"""Sign-in sessions of the web console, and the rate limit of its sign-in form.

A session is created when an API token signs in. The browser keeps only a random session id (in a cookie); the
database keeps its SHA-256, the token it came from, the org and principal it acts as, and a CSRF secret. A session
is alive while it has not expired AND its token is neither revoked nor expired: revoking a token ends its console
sessions at their next request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest.auth import Principal, hash_token


@dataclass(frozen=True)
class ConsoleSession:
    session_hash: str
    token_id: str
    org_id: str
    principal: str
    csrf_secret: str


def start_session(conn: Connection, principal: Principal, org_id: str, ttl_s: float) -> tuple[str, ConsoleSession]:
    """Store a new session for an authenticated token; returns (the session id for the cookie, the session).
    It ends after `ttl_s` seconds, or sooner when the token expires."""
    conn.execute(text("DELETE FROM console_sessions WHERE expires_at < now()"))
    session_id = secrets.token_urlsafe(32)
    csrf_secret = secrets.token_urlsafe(32)
    session = ConsoleSession(hash_token(session_id), principal.token_id, org_id, principal.principal, csrf_secret)
    conn.execute(
        text(
            "INSERT INTO console_sessions (session_hash, token_id, org_id, principal, csrf_secret, expires_at) "
            "SELECT :h, t.token_id, :o, t.principal, :c, "
            "LEAST(now() + make_interval(secs => :ttl), COALESCE(t.expires_at, 'infinity')) "
            "FROM api_tokens t WHERE t.token_id = :t"
        ),
        {"h": session.session_hash, "t": session.token_id, "o": org_id, "c": session.csrf_secret, "ttl": ttl_s},
    )
    return session_id, session


def find_session(conn: Connection, session_id: str | None) -> ConsoleSession | None:
    """The live session behind a cookie value, or None (unknown, expired, signed out, token revoked or expired)."""
    if not session_id:
        return None
    digest = hash_token(session_id)
    row = conn.execute(
        text(
            "SELECT s.session_hash, s.token_id, s.org_id, s.principal, s.csrf_secret, "
            "(s.expires_at > now() AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) "
            " AND s.org_id = ANY(t.org_ids)) AS alive, "
            "s.last_seen < now() - interval '60 seconds' AS stale "
            "FROM console_sessions s JOIN api_tokens t USING (token_id) WHERE s.session_hash = :h"
        ),
        {"h": digest},
    ).first()
    if row is None:
        return None
    if not row.alive:
        end_session(conn, session_id)
        return None
    if row.stale:  # `last seen` is kept to the minute: one write per session per minute, not per request
        conn.execute(text("UPDATE console_sessions SET last_seen = now() WHERE session_hash = :h"), {"h": digest})
    return ConsoleSession(row.session_hash, row.token_id, row.org_id, row.principal, row.csrf_secret)


def end_session(conn: Connection, session_id: str) -> None:
    conn.execute(text("DELETE FROM console_sessions WHERE session_hash = :h"), {"h": hash_token(session_id)})


def count_signin_attempt(conn: Connection, client: str, per_minute: int) -> int | None:
    """Count one sign-in attempt from `client` in the current minute. None when it is allowed, else the seconds
    until the next minute starts (for Retry-After)."""
    conn.execute(text("DELETE FROM console_signin_attempts WHERE window_start < now() - interval '2 minutes'"))
    row = conn.execute(
        text(
            "INSERT INTO console_signin_attempts (client, window_start) VALUES (:c, date_trunc('minute', now())) "
            "ON CONFLICT (client, window_start) DO UPDATE SET attempts = console_signin_attempts.attempts + 1 "
            "RETURNING attempts, "
            "CEIL(EXTRACT(EPOCH FROM (date_trunc('minute', now()) + interval '1 minute' - now()))) AS retry_after"
        ),
        {"c": client},
    ).one()
    if row.attempts <= per_minute:
        return None
    return max(1, int(row.retry_after))
