"""The backfill's spool directory: chunk bodies on disk while their jobs run, removed when the file is done.

A run killed without cleanup (SIGKILL, a power cut) leaves its directory behind; the next backfill removes it. A
directory is its run's for as long as the run holds an exclusive `flock` on the lock file inside it: the kernel
drops the lock when the process dies, so a lock that can be taken means nobody owns the directory any more
(no PID files, no reuse of a PID to be fooled by)."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PREFIX = "metrics-ingest-backfill-"
LOCK = ".lock"
GRACE_S = 60.0  # a directory without a lock file younger than this may be one another run is creating right now


def root() -> Path:
    return Path(tempfile.gettempdir())


@contextlib.contextmanager
def spool_dir() -> Iterator[Path]:
    """A new spool directory, locked for this run, removed on the way out; orphans of killed runs go first."""
    remove_orphans()
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root()))
    with open(path / LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def remove_orphans() -> int:
    """Remove the spool directories of backfills that are no longer running; how many were removed."""
    removed = 0
    for path in root().glob(PREFIX + "*"):
        try:
            if _orphaned(path):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
                log.info("backfill.spool_removed", path=str(path))
        except OSError:  # another account's directory, or gone meanwhile: not ours to judge
            continue
    return removed


def _orphaned(path: Path) -> bool:
    if not path.is_dir() or path.is_symlink():
        return False
    lock_path = path / LOCK
    if not lock_path.exists():
        return time.time() - path.stat().st_mtime > GRACE_S
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its run is alive
        return True  # the lock is released when the file closes; the directory is removed right after
