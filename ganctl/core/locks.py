"""Exclusive file locks that the OS releases when their process dies (flock; msvcrt on Windows)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ganctl.core.errors import StoreError


class LockBusyError(StoreError):
    """Another process holds the lock; ``pid`` is the holder's, when it wrote it."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


def try_lock(fd: int, blocking: bool = False) -> bool:
    """Take an exclusive lock on the open file ``fd``; False when another holder has it (non-blocking)."""
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
                time.sleep(0.5)  # LK_LOCK gives up after 10 s; a download may take longer
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def holder_pid(fd: int) -> int | None:
    """The pid the lock's holder wrote on the file's first line, if it did and it can be read.

    Only the first line counts: a holder that writes its pid without truncating leaves the tail of
    a longer pid written before it ("497\\n5\\n" after "12345\\n").
    """
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).split(b"\n", 1)[0].decode().strip() or "x")
    except (OSError, ValueError):  # not written yet, or unreadable while locked (Windows)
        return None


class LockGone(Exception):
    """The lock file was removed (its folder deleted or renamed) while we opened or waited for it."""


def acquire(path: Path, wait: bool, on_wait: Callable[[int | None], None] | None) -> int:
    """Open and lock ``path``; return the descriptor (closing it releases the lock)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        raise LockGone() from None
    try:
        if not try_lock(fd):
            pid = holder_pid(fd)
            if not wait:
                raise LockBusyError(f"{path} is locked by another process (pid {pid})", pid)
            if on_wait:
                on_wait(pid)
            try_lock(fd, blocking=True)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:
            raise LockGone()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def lock_file(path: Path, *, wait: bool = False, on_wait: Callable[[int | None], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    The OS releases it when the process dies, even by SIGKILL, so a lock is never stale. The file
    itself is left in place: deleting a lock file lets a third process lock a fresh one while the
    second holds the old. Without ``wait``, a held lock raises :class:`LockBusyError` at once;
    with it, ``on_wait(pid)`` is called once and the call blocks until the holder is done.
    """
    path = Path(path)
    for _ in range(100):
        try:
            fd = acquire(path, wait, on_wait)
            break
        except LockGone:  # the holder replaced or removed the file: take the one there now
            path.parent.mkdir(parents=True, exist_ok=True)
    else:
        raise StoreError(f"cannot lock {path}: it keeps being replaced; is another program deleting it?")
    try:
        yield
    finally:
        os.close(fd)
