"""Identifiers: short prefixed random ids like the ones Roboto uses (`mt_...`, `jb_...`)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int = 20) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def metric_id() -> str:
    return new_id("mt_")


def job_id() -> str:
    return new_id("jb_")


def token_id() -> str:
    return new_id("tk_", 16)


def token_secret() -> str:
    return "mi_" + secrets.token_urlsafe(32)
