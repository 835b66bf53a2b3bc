"""Atomic writes: a file or folder appears under its final name complete, or not at all.

Every write goes to a temporary name beside the destination and is renamed onto it only when the
block succeeds, so a crash never leaves a half-written file under its final name. A write that
fails for want of space is one :class:`~ganctl.core.errors.NoSpaceError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ganctl.core.errors import NoSpaceError, StoreError, is_disk_full


def _file_mode() -> int:
    """0666 less the umask: what open() would have given the file (mkstemp makes it 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _output_target(dest: Path) -> tuple[Path, bool]:
    """(the path to write, whether to write through it) for ``dest``; refuse a folder.

    A symlink is followed, and the file it points to is replaced atomically: users link outputs on
    purpose (latest.png -> a dated file), and replacing the link with a file would silently cut it.
    A device, FIFO or socket (``-o /dev/null``, ``-o /dev/stdout`` into a pipe) is opened and written
    through: renaming a file onto it would replace the node itself.
    """
    try:
        st = os.stat(dest)  # follows symlinks, including /dev/stdout's /proc/self/fd/N
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise StoreError(f"cannot write {dest}: {e.strerror or e}") from e
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{dest} is a folder, not a file: give the path of a file to write")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return dest, True
    if st is not None:
        check_writable(dest, st)
    if dest.is_symlink():  # to a regular file, or dangling: write beside the file it names
        target = Path(os.path.realpath(dest))
        if not target.parent.is_dir():
            raise StoreError(f"{dest} is a link to {target}, whose folder does not exist: create it or remove the link")
        return target, False
    return dest, False


def check_can_write(dest: Path, folder: bool = False) -> None:
    """Refuse, before any work, an output that the write at the end would refuse: a folder where a
    file is asked for, a read-only file, a missing link target's folder, a file where a folder
    would be made, or a folder this user cannot write into. ``folder``: ``dest`` is a folder the
    outputs go into (made if missing)."""
    dest = Path(dest)

    def existing_folder(base: Path) -> Path:
        while not base.exists() and base != base.parent:  # the folders the write would make
            base = base.parent
        if not base.is_dir():
            raise StoreError(f"cannot write {dest}: {base} is a file, not a folder")
        return base

    if folder:
        base = existing_folder(dest)
    else:
        existing_folder(dest.parent)
        target, through = _output_target(dest)
        if through:  # a device or a FIFO: opened as it is
            return
        base = existing_folder(target.parent)
    if not os.access(base, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write {dest}: the folder {base} is not writable; write somewhere else")


def check_writable(dest: Path, st: os.stat_result | None = None) -> None:
    """Refuse to replace an existing regular file that is read-only, as a shell's ``>`` does.

    Replacing goes by a rename, which the file's own mode does not stop, so without this a
    chmod a-w file would be silently replaced. Read-only means this user may not write it, or no
    one may (no write bit at all: root may, but the mode says the file is not to be changed).
    Every output and store write passes here (:func:`atomic_path`)."""
    if st is None:
        try:
            st = os.stat(dest)
        except OSError:
            return
    if not stat.S_ISREG(st.st_mode):
        return
    if not st.st_mode & 0o222 or not os.access(dest, os.W_OK):
        raise StoreError(f"{dest} is read-only: make it writable (chmod u+w) or write to another path")


def _existing_mode(dest: Path) -> int | None:
    """The permission bits of the regular file ``dest`` if it exists: a replaced file keeps them,
    as a file a shell's ``>`` writes into does."""
    try:
        st = os.stat(dest)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


@contextlib.contextmanager
def _write_through(dest: Path) -> Iterator[Path]:
    """Build the output in a private temporary file, then copy it into the device or FIFO ``dest``."""
    fd, tmp = tempfile.mkstemp(prefix="ganctl-", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            with open(tmp_path, "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        except OSError as e:
            raise StoreError(f"cannot write {dest}: {e.strerror or e}") from e
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    Only regular files are ever replaced: a symlink's target is replaced (the link stays), a device
    or FIFO is written through, a folder is refused (see :func:`_output_target`).
    """
    dest, through = _output_target(Path(dest))
    if through:
        with _write_through(dest) as tmp_path:
            yield tmp_path
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    mode = _existing_mode(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, _file_mode() if mode is None else mode)
        os.replace(tmp_path, dest)
    except BaseException as e:
        full = disk_full(e, tmp_path.parent)  # before the unlink frees the space the write took
        tmp_path.unlink(missing_ok=True)
        if full:
            raise NoSpaceError(dest) from e
        raise


def disk_full(e: BaseException, folder: Path) -> bool:
    """Whether a write into ``folder`` failed for want of space. torch.save given a path writes
    in C++ and raises a bare RuntimeError with no errno, so for that one the filesystem is asked."""
    if isinstance(e, NoSpaceError):
        return False  # already says which file
    if is_disk_full(e):
        return True
    if type(e) is RuntimeError:
        try:
            st = os.statvfs(folder)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < (1 << 20)
    return False


def atomic_write(dest: Path, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def atomic_write_json(dest: Path, obj: object) -> Path:
    return atomic_write(dest, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; it becomes ``dest`` only when the block succeeds.

    ``dest`` must not exist yet (folders cannot be swapped atomically); callers write new,
    versioned folder names and point to them with :func:`atomic_write`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        os.chmod(tmp, _file_mode() | 0o111)  # mkdtemp makes it 0700
        os.rename(tmp, dest)
    except BaseException as e:
        full = isinstance(e, NoSpaceError) or disk_full(e, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if full:  # name the folder being written, not a file inside its temporary name
            raise NoSpaceError(dest) from e
        raise
