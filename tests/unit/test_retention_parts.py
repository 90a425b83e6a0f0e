"""Pure parts of retention: durations as written in settings and on the command line, and the item keys a done
chunk keeps in place of its payload."""

from __future__ import annotations

import pytest

from ingest.config import ConfigError, Settings, get_settings
from ingest.durations import format_duration, parse_duration
from ingest.notset import NOT_SET
from ingest.payload import PublishRequest, decode_keys, encode_chunk, encode_keys


@pytest.mark.parametrize(("text", "seconds"), [("45s", 45), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("0s", 0)])
def test_durations(text: str, seconds: int):
    assert parse_duration(text) == seconds
    if seconds:
        assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["", "7", "7 days", "1w", "-5m", "1.5h", "5mm", "d7"])
def test_bad_durations_name_the_expected_form(text: str):
    with pytest.raises(ValueError, match="45s, 30m, 12h or 7d"):
        parse_duration(text)


def test_retention_setting(monkeypatch: pytest.MonkeyPatch):
    assert Settings().job_retention == 7 * 86400
    monkeypatch.setenv("METRICS_INGEST_JOB_RETENTION", "12h")
    assert Settings().job_retention == 43200
    for bad in ("a week", "0s"):
        monkeypatch.setenv("METRICS_INGEST_JOB_RETENTION", bad)
        get_settings.cache_clear()
        with pytest.raises(ConfigError) as err:
            get_settings()
        assert "METRICS_INGEST_JOB_RETENTION" in str(err.value) and "\n" not in str(err.value)
    get_settings.cache_clear()


def test_item_keys_keep_sessions_and_names_in_order_and_are_small():
    names = [f"metric.{j}" for j in range(10)]
    requests = [
        PublishRequest(f"ss_{i:04d}", NOT_SET, [(n, float(i * j)) for j, n in enumerate(names)]) for i in range(500)
    ]
    requests.append(PublishRequest("ss_last", "dv_1", [("other", 1.0), ("metric.0", None)]))
    keys = encode_keys(requests)
    back = decode_keys(keys)
    assert [(r.session_id, [n for n, _ in r.entries]) for r in back] == [
        (r.session_id, [n for n, _ in r.entries]) for r in requests
    ]
    assert all(v is None for r in back for _, v in r.entries)
    assert len(keys) * 3 < len(encode_chunk(requests))  # shared name lists: about a session id per request
