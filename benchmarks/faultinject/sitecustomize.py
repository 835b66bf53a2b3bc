"""Fault injection into ganctl's checkpoint saves and prunes, from outside ganctl (for
benchmarks/faults.py, tests/test_faults.py and tests/test_distributed.py; ganctl has no hook).

Python imports ``sitecustomize`` at start-up from the first folder of ``sys.path`` that holds one,
so every process whose PYTHONPATH starts with this folder runs this file (torchrun's workers, which
inherit the environment, included). Unless ``FAULTINJECT`` or ``FAULTINJECT_LOG`` is set it does
nothing but hand over to the next ``sitecustomize`` on the path, if any.

Armed, it wraps the filesystem calls through which a save and a prune change the disk
(ganctl/store/checkpoint.py, ganctl/store/retention.py, ganctl/core/atomic.py): ``tempfile.mkdtemp``,
``os.fsync`` (of files and of folders), ``os.rename``, ``os.replace``, ``shutil.rmtree``,
``os.unlink`` and ``os.remove``. Each such call that completes on a path under a run's
``checkpoints/`` folder is a fault point, numbered from 1 over the process (an ``rmtree`` of a
path that did not exist is none; calls made inside another wrapped call are none):

- ``FAULTINJECT=save:<n>``: the process SIGKILLs itself right after the n-th point;
- ``FAULTINJECT=save:<suffix>``: right after the first point whose label ends with ``<suffix>``;
- ``FAULTINJECT_LOG=<file>``: every point appends ``<n> <label>`` to the file.

A kill between a write and its fsync leaves what a kill after the fsync leaves (the data is in
the page cache), so the fsync stands for both. Labels come from the call and its path relative to
``checkpoints/``, with the random part of temporary names dropped, so a run and a rerun of it
number and name the same points:

- ``epoch_0002:tmp-created``: mkdtemp of the save's temporary folder ``.epoch_0002.<random>.tmp``;
- ``epoch_0002:generator.safetensors-synced``, ``epoch_0002:G_B/generator.safetensors-synced``,
  ``epoch_0002:trainer.pt-synced`` ...: a file of that folder written and fsynced;
- ``epoch_0002:G_B-folder-synced``, ``epoch_0002:folder-synced``: a folder of it, or itself, fsynced;
- ``epoch_0002:old-moved-aside``, ``epoch_0002:renamed``: ``epoch_0002`` renamed to ``.old-epoch_0002``
  (a re-save), the temporary folder renamed onto ``epoch_0002``;
- ``epoch_0002:old-deleted``, ``epoch_0002:tmp-deleted``: ``.old-epoch_0002``, a temporary folder deleted
  (a resume's clean-up); ``epoch_0001:broken-moved-aside``: a resume moved a damaged one aside;
- ``root-synced``, ``latest-tmp-synced``, ``latest-written``, ``latest-tmp-deleted``: ``checkpoints/``
  fsynced, the temporary file of ``latest`` fsynced, renamed onto ``latest``, deleted (a clean-up);
- ``prune-epoch_0001-moved-aside``, ``prune-epoch_0001-deleted``: ``epoch_0001`` renamed to
  ``.prune-epoch_0001``, that deleted.

Points whose path names no checkpoint (``root-``, ``latest-``, ``prune-``) are prefixed with the
tag of the last temporary folder the process created, the save they belong to
(``epoch_0002:root-synced``, ``epoch_0002:prune-epoch_0001-deleted``); in a process that has
created none (``ganctl prune``, a resume's clean-up) they stand alone. Anything else under
``checkpoints/`` gets a label of the same kind (``<path>-deleted``, ``<path>-renamed-to-<path>``).
An fsync's path is read from ``/proc/self/fd`` (Linux; ``F_GETPATH`` on macOS).
"""

from __future__ import annotations

import os
import sys


def _chain() -> None:
    """Run the ``sitecustomize`` that this one hides, if any (a distribution's or a virtual environment's)."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


def _arm(spec: str, log: str | None) -> None:
    import functools
    import re
    import shutil
    import signal
    import stat
    import tempfile
    import threading

    want = spec[len("save:"):] if spec.startswith("save:") else None
    tmp_name = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp\Z")  # tempfile's random part: 8 characters
    lock, local = threading.Lock(), threading.local()
    state = {"count": 0, "save": ""}

    def relative(path) -> list[str] | None:
        """The parts of ``path`` below its last ``checkpoints`` folder, or None when it is not under one."""
        if isinstance(path, int):
            return None
        parts = os.path.abspath(os.fsdecode(path)).split(os.sep)
        if "checkpoints" not in parts:
            return None
        return parts[len(parts) - parts[::-1].index("checkpoints"):]

    def what(parts: list[str]) -> tuple[str, str, str]:
        """(kind, name, rest) of a path under ``checkpoints/``: kind ``root``, ``tmp`` (a temporary
        folder or file of ``name``), ``old``, ``prune``, ``broken`` (moved aside) or ``final``."""
        if not parts:
            return "root", "", ""
        head, rest = parts[0], "/".join(parts[1:])
        m = tmp_name.match(head)
        if m:
            return "tmp", m["name"], rest
        for prefix, kind in ((".old-", "old"), (".prune-", "prune"), (".broken-", "broken")):
            if head.startswith(prefix):
                return kind, head[len(prefix):], rest
        return "final", head, rest

    def plain(parts: list[str]) -> str:
        kind, name, rest = what(parts)
        head = {"root": "root", "tmp": f"{name}-tmp", "final": name}.get(kind, f"{kind}-{name}")
        return "/".join(filter(None, [head, rest]))

    def in_save(text: str) -> str:
        return f"{state['save']}:{text}" if state["save"] else text

    def point(label: str) -> None:
        with lock:
            state["count"] += 1
            n = state["count"]
            if log:
                with open(log, "a") as f:
                    f.write(f"{n} {label}\n")
        if want is not None and ((want.isdigit() and int(want) == n) or (not want.isdigit() and label.endswith(want))):
            if hasattr(signal, "SIGKILL"):
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(137)

    def wrap(module, name: str, label_of, pre=None) -> None:
        """Replace ``module.name`` by a call that, once it completed, is a fault point labelled
        ``label_of(args, kwargs, result)`` (None: no point); ``pre(args, kwargs)``, asked before the
        call, can rule the point out beforehand."""
        original = getattr(module, name)

        @functools.wraps(original)  # keeps rmtree.avoids_symlink_attacks
        def wrapped(*args, **kwargs):
            if getattr(local, "busy", False):  # inside another wrapped call (rmtree's unlinks)
                return original(*args, **kwargs)
            local.busy = True
            try:
                counts = pre is None or pre(args, kwargs)
                result = original(*args, **kwargs)
                label = label_of(args, kwargs, result) if counts else None
            finally:
                local.busy = False
            if label:
                point(label)
            return result

        setattr(module, name, wrapped)

    def mkdtemp(args, kwargs, made):
        parts = relative(made) if isinstance(made, (str, bytes)) else None
        if parts is None:
            return None
        kind, name, rest = what(parts)
        if kind != "tmp" or rest:
            return in_save(f"{plain(parts)}-created")
        state["save"] = name  # the save this process is writing: the prefix of its tagless points
        return f"{name}:tmp-created"

    def fsync(args, kwargs, result):
        fd = args[0] if args else kwargs.get("fd")
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            try:
                import fcntl

                path = os.fsdecode(fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024))).rstrip("\0")
            except (ImportError, AttributeError, OSError):
                return None
        parts = relative(path)
        if parts is None:
            return None
        try:
            folder = "-folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else ""
        except OSError:
            return None
        kind, name, rest = what(parts)
        if kind == "root":
            return in_save("root-synced")
        if kind == "tmp" and not rest and not folder:  # an atomic write's temporary file (latest's)
            return in_save(f"{name}-tmp-synced")
        if kind in ("tmp", "final") and (rest or folder):  # a save's temporary folder, a file or folder in it
            return f"{name}:{rest}{folder}-synced" if rest else f"{name}:folder-synced"
        return in_save(f"{plain(parts)}{folder}-synced")

    def rename(args, kwargs, result):
        src = args[0] if args else kwargs.get("src")
        dst = args[1] if len(args) > 1 else kwargs.get("dst")
        if kwargs.get("src_dir_fd") is not None or kwargs.get("dst_dir_fd") is not None:
            return None
        a, b = relative(src), relative(dst)
        if a is None and b is None:
            return None
        if a is None or b is None:
            return in_save(f"{plain(a or b)}-{'moved-in' if a is None else 'moved-out'}")
        (ka, na, ra), (kb, nb, rb) = what(a), what(b)
        if len(a) == 1 and kb == "prune" and nb == a[0] and not rb:  # a prune: any folder, .broken- ones too
            return in_save(f"prune-{nb}-moved-aside")
        if not ra and not rb and na == nb:
            if (ka, kb) in (("final", "old"), ("final", "broken")):
                return f"{na}:{kb}-moved-aside"
            if (ka, kb) == ("tmp", "final"):
                return f"{na}:renamed" if os.path.isdir(dst) else in_save(f"{nb}-written")
        return in_save(f"{plain(a)}-renamed-to-{plain(b)}")

    def exists(args, kwargs):
        path = args[0] if args else kwargs.get("path")
        return kwargs.get("dir_fd") is None and relative(path) is not None and os.path.lexists(path)

    def delete(args, kwargs, result, folder=False):
        path = args[0] if args else kwargs.get("path")
        if os.path.lexists(path):  # rmtree(ignore_errors=True) that failed
            return None
        parts = relative(path)
        kind, name, rest = what(parts)
        if kind == "tmp" and not rest and not folder:  # an atomic write's temporary file (latest's)
            return in_save(f"{name}-tmp-deleted")
        if kind in ("old", "tmp", "broken") and not rest:
            return f"{name}:{kind}-deleted"
        if kind == "prune" and not rest:
            return in_save(f"prune-{name}-deleted")
        if kind == "final" and rest:
            return f"{name}:{rest}-deleted"
        return in_save(f"{plain(parts)}-deleted")

    wrap(tempfile, "mkdtemp", mkdtemp)
    wrap(os, "fsync", fsync)
    wrap(os, "rename", rename)
    wrap(os, "replace", rename)
    wrap(shutil, "rmtree", functools.partial(delete, folder=True), pre=exists)
    wrap(os, "unlink", delete, pre=exists)
    wrap(os, "remove", delete, pre=exists)


if os.environ.get("FAULTINJECT") or os.environ.get("FAULTINJECT_LOG"):
    _arm(os.environ.get("FAULTINJECT", ""), os.environ.get("FAULTINJECT_LOG") or None)
_chain()
