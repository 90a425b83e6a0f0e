"""The backfill's spool directories: a run's own is removed when it ends; one left by a killed run is removed by the
next run; one whose run is alive is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.backfill import spool

KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from runtime.backfill import spool
spool.root = lambda: Path(sys.argv[1])
with spool.spool_dir() as d:
    (d / "chunk0.ndjson").write_text("{}")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(spool, "root", lambda: tmp_path)
    return tmp_path


def test_a_run_removes_its_own_spool(root: Path):
    with spool.spool_dir() as d:
        (d / "chunk0.ndjson").write_text("{}")
        assert d.parent == root and d.name.startswith(spool.PREFIX)
    assert not d.exists()


def test_the_spool_of_a_killed_run_is_removed_and_a_live_one_kept(root: Path):
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(root)], check=False)
    assert killed.returncode == -signal.SIGKILL
    [left] = list(root.glob(spool.PREFIX + "*"))
    assert (left / "chunk0.ndjson").exists()
    with spool.spool_dir() as alive:  # the next run: removes the orphan first
        assert not left.exists()
        assert spool.remove_orphans() == 0  # another run starting meanwhile leaves this live one alone
        assert alive.exists()


def test_a_directory_without_its_lock_file_is_removed_only_once_old(root: Path):
    young = root / (spool.PREFIX + "young")
    young.mkdir()
    old = root / (spool.PREFIX + "old")
    old.mkdir()
    then = time.time() - 2 * spool.GRACE_S
    os.utime(old, (then, then))
    assert spool.remove_orphans() == 1
    assert young.exists() and not old.exists()
