"""The store: where datasets, training runs and pretrained weights live.

The root is ``GANCTL_HOME`` if set, else platformdirs' user data dir. It is resolved at call
time, never at import, so tests and users can point it elsewhere per process. Every write goes
through :func:`atomic_write` or :func:`atomic_dir` (temp + rename), so a crash never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ganctl.errors import NoSpaceError, StoreError, UnknownNameError, is_disk_full

# \Z, not $: '$' also matches before a trailing newline, which would let "run\n" through
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_NAME_MAX = 100
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder holds files ganctl can download again; backup tools may skip it.\n"
)


def home() -> Path:
    """The store root."""
    env = os.environ.get("GANCTL_HOME")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_data_path

    return user_data_path("ganctl", appauthor=False)


def datasets_dir() -> Path:
    return home() / "datasets"


def runs_dir() -> Path:
    return home() / "runs"


def pretrained_dir() -> Path:
    return home() / "pretrained"


def check_name(name: str, what: str = "name") -> str:
    """Refuse names that could leave the store or confuse the shell ('../x', 'a/b', '.hidden')."""
    if not _NAME_RE.match(name) or ".." in name:
        raise StoreError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit), at most 100 characters"
        )
    return name


def ensure_cache_dir(path: Path) -> Path:
    """Create a folder of re-downloadable files, tagged so backup tools skip it."""
    path.mkdir(parents=True, exist_ok=True)
    tag = path / "CACHEDIR.TAG"
    if not tag.exists():
        atomic_write(tag, _CACHEDIR_TAG.encode())
    return path


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
    if dest.is_symlink():  # to a regular file, or dangling: write beside the file it names
        target = Path(os.path.realpath(dest))
        if not target.parent.is_dir():
            raise StoreError(f"{dest} is a link to {target}, whose folder does not exist: create it or remove the link")
        return target, False
    return dest, False


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
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, _file_mode())
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


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it is an empty directory (left by a failed download); else leave it."""
    try:
        folder.rmdir()
    except OSError:
        pass


class LockBusyError(StoreError):
    """Another process holds the lock; ``pid`` is the holder's, when it wrote it."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


def _try_lock(fd: int, blocking: bool = False) -> bool:
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


def _holder_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or "x")
    except (OSError, ValueError):  # not written yet, or unreadable while locked (Windows)
        return None


class _Gone(Exception):
    """The lock file was removed (its folder deleted or renamed) while we opened or waited for it."""


def _acquire(path: Path, wait: bool, on_wait: Callable[[int | None], None] | None) -> int:
    """Open and lock ``path``; return the descriptor (closing it releases the lock)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        raise _Gone() from None
    try:
        if not _try_lock(fd):
            pid = _holder_pid(fd)
            if not wait:
                raise LockBusyError(f"{path} is locked by another process (pid {pid})", pid)
            if on_wait:
                on_wait(pid)
            _try_lock(fd, blocking=True)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:
            raise _Gone()
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
            fd = _acquire(path, wait, on_wait)
            break
        except _Gone:  # the holder replaced or removed the file: take the one there now
            path.parent.mkdir(parents=True, exist_ok=True)
    else:
        raise StoreError(f"cannot lock {path}: it keeps being replaced; is another program deleting it?")
    try:
        yield
    finally:
        os.close(fd)


RUN_LOCK = ".lock"


def _busy_message(run_id: str, pid: int | None, then: str) -> str:
    who = f"another process (pid {pid})" if pid else "another process"
    return f"run {run_id} is being trained by {who}: wait for it to finish, {then}"


@contextlib.contextmanager
def run_lock(path: Path, run_id: str, *, new: bool = False, then: str = "or use another --name") -> Iterator[None]:
    """Be the one process writing the run folder ``path`` for the block (train, resume, rm).

    ``new``: the folder is created if missing, and refused if it already holds a run (another
    process may have started one under the same name since the name was checked). Otherwise the
    folder must still be there once locked: ``rm`` may have removed it meanwhile.
    """
    path = Path(path)
    created = new and not path.exists()
    if new:
        path.mkdir(parents=True, exist_ok=True)
    try:
        fd = _acquire(path / RUN_LOCK, False, None)
    except LockBusyError as e:
        raise LockBusyError(_busy_message(run_id, e.pid, then), e.pid) from None
    except _Gone:
        raise StoreError(f"run {run_id} no longer exists in {path.parent} (was it deleted?)") from None
    try:
        if new and (path / "config.json").exists():
            raise StoreError(
                f"run {run_id} already exists: pass --resume to continue it, choose another --name, "
                "or delete it with 'ganctl rm'"
            )
        yield
    except BaseException:
        if created and not (path / "config.json").exists():  # failed before it became a run: free the name
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def check_run_idle(path: Path, run_id: str, then: str = "or use another --name") -> None:
    """Refuse at once when a process is training the run at ``path`` (an early, lock-free check)."""
    try:
        fd = os.open(Path(path) / RUN_LOCK, os.O_RDWR)
    except OSError:
        return  # no lock file: nobody has trained it since locks exist
    try:
        if not _try_lock(fd):
            pid = _holder_pid(fd)
            raise LockBusyError(_busy_message(run_id, pid, then), pid)
    finally:
        os.close(fd)


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


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunInfo:
    family: str
    name: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}"

    @cached_property
    def _checked(self) -> tuple[dict, str | None]:
        from ganctl.config import read_json

        path = self.path / "config.json"
        try:
            return read_json(path), None
        except ValueError as e:
            return {}, f"{path}: {e}"
        except OSError as e:
            return {}, f"{path} cannot be read ({e.strerror or e})"

    def config(self) -> dict:
        """The run's config.json, checked field by field; {} when it is damaged (see :attr:`damage`)."""
        return self._checked[0]

    @property
    def damage(self) -> str | None:
        """Why the run's config.json cannot be used (naming the file), or None when it is sound."""
        return self._checked[1]

    def check(self) -> RunInfo:
        """This run, or a StoreError if its config.json is damaged (it can still be listed and removed)."""
        if self.damage:
            raise StoreError(f"run {self.id} is damaged: {self.damage}; delete it with 'ganctl rm {self.id}'")
        return self


def run_path(family: str, name: str) -> Path:
    return runs_dir() / check_name(family, "model") / check_name(name, "run name")


def list_runs(family: str | None = None) -> list[RunInfo]:
    """Runs in the store, oldest first (by creation time recorded in the folder's mtime)."""
    root = runs_dir()
    if not root.is_dir():
        return []
    runs = []
    for fam_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if family is not None and fam_dir.name != family:
            continue
        for run in fam_dir.iterdir():
            if run.is_dir() and not run.name.startswith(".") and (run / "config.json").is_file():
                runs.append(RunInfo(fam_dir.name, run.name, run))
    # damaged runs have no "created": they sort first, so the newest run is a sound one if any is
    runs.sort(key=lambda r: (r.config().get("created", ""), r.path.stat().st_mtime))
    return runs


def newest_run(family: str) -> RunInfo | None:
    runs = list_runs(family)
    return runs[-1] if runs else None


def find_run(ref: str, family: str | None = None) -> RunInfo:
    """Resolve 'NAME', 'FAMILY/NAME' or a run folder path to a run."""
    p = Path(ref).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return RunInfo(p.parent.name, p.name, p.resolve())
    if "/" in ref:
        fam, _, name = ref.partition("/")
        parts = (fam, name)
    else:
        fam, name, parts = "", ref, (ref,)
    if ref.count("/") > 1 or not all(_NAME_RE.match(x) and ".." not in x for x in parts):
        what = "a folder, but not a run folder (it holds no config.json)" if p.is_dir() else "not a run name or run folder"
        raise UnknownNameError(
            f"{ref!r} is {what}: give NAME, FAMILY/NAME or the folder of a run ('ganctl list --runs' shows them)"
        )
    family = fam or family
    candidates = [r for r in list_runs(family) if r.name == name]
    if not candidates:
        have = [r.id for r in list_runs(family)]
        where = f" of {family!r}" if family else ""
        listing = f" Runs{where}: {', '.join(have)}." if have else " There are no runs yet: train one with 'ganctl train'."
        raise UnknownNameError(f"no run named {ref!r}{where} in {runs_dir()}.{listing}")
    if len(candidates) > 1:
        ids = ", ".join(r.id for r in candidates)
        raise UnknownNameError(f"run name {name!r} is ambiguous ({ids}): give it as FAMILY/NAME.")
    return candidates[0]


def next_run_name(family: str, base: str) -> str:
    """'base', then 'base-2', 'base-3', ... whichever is free; always a valid run name (a long
    base is shortened so that it fits the length limit with its suffix)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base)
    base = re.sub(r"\.{2,}", ".", base)  # '..' is refused in names
    base = re.sub(r"^[^A-Za-z0-9]+", "", base).rstrip("-.") or "run"
    parent = runs_dir() / family
    name, k = base[:_NAME_MAX].rstrip("-."), 1
    while (parent / name).exists():
        k += 1
        suffix = f"-{k}"
        name = base[: _NAME_MAX - len(suffix)].rstrip("-.") + suffix
    return check_name(name, "run name")


def in_runs_dir(path: Path) -> bool:
    """True when ``path``, resolved, is a ``runs/FAMILY/NAME`` folder of this store (not a look-alike
    such as ``runs-backup/...``, and not a link out of the store)."""
    root = runs_dir().resolve()
    real = Path(path).resolve()
    return real.is_relative_to(root) and len(real.relative_to(root).parts) == 2


def delete_run(run: RunInfo) -> None:
    """Remove a run: rename it out of the way first, so a half-deleted run is never listed.

    Refused for a folder outside ``runs/`` and for a run another process is training.
    """
    if not in_runs_dir(run.path):
        raise StoreError(f"{run.path} is not a run in the store ({runs_dir()}); ganctl only deletes its own runs")
    with run_lock(run.path, run.id, then="or stop it, then delete it"):
        trash = run.path.parent / f".deleting-{run.name}"
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(run.path, trash)
        shutil.rmtree(trash, ignore_errors=True)
