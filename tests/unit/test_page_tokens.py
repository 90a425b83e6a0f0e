"""Opaque page tokens: they round-trip, are bound to the request that made them, and a forged one is a 400."""

from __future__ import annotations

import pytest

from api_shim import wire
from ingest.errors import InvalidRequest


def test_page_tokens_round_trip_and_refuse_forgeries():
    token = wire.encode_page_token({"after": "x"}, bound_to="org1")
    assert wire.decode_page_token(token, bound_to="org1") == {"after": "x"}
    for bad, bound in ((token, "org2"), ("%%%", "org1"), ("bm90IGpzb24", "org1"), ("W10", "org1")):
        with pytest.raises(InvalidRequest):
            wire.decode_page_token(bad, bound_to=bound)


def test_an_unbound_token_decodes_anywhere_and_a_bound_one_needs_its_binding():
    free = wire.encode_page_token({"s": 1, "o": 2})
    assert wire.decode_page_token(free) == {"s": 1, "o": 2}
    bound = wire.encode_page_token({"s": 1}, bound_to="jb_1:failed")
    with pytest.raises(InvalidRequest, match="different request"):
        wire.decode_page_token(bound, bound_to="jb_1:")


def test_tokens_are_url_safe_without_padding():
    token = wire.encode_page_token({"after": "a/b+c?" * 7}, bound_to="org")
    assert "=" not in token and "/" not in token and "+" not in token


def test_keyset_page_uses_the_extra_row_only_to_say_there_is_more():
    rows = [{"n": i} for i in range(4)]
    page = wire.keyset_page(rows, 3, lambda r: {"after": r["n"]}, "b", lambda r: r["n"])["data"]
    assert page["items"] == [0, 1, 2]
    assert wire.decode_page_token(page["next_token"], bound_to="b") == {"after": 2}
    last = wire.keyset_page(rows[:3], 3, lambda r: {"after": r["n"]}, "b", lambda r: r["n"])["data"]
    assert last == {"items": [0, 1, 2], "next_token": None}
