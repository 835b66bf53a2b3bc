"""``ganctl train ... --nproc-per-node N``: start N training processes through torchrun's own
machinery (``torch.distributed.run``), each running ``python -m ganctl train ...`` without the
launcher's options, exactly as ``torchrun --nproc_per_node N -m ganctl train ...`` would.

The launcher and its workers share a folder (``GANCTL_LAUNCH_DIR``): rank 0 leaves its result
there (the run folder, where it stopped) and a worker that fails leaves its one-line error, so the
launcher prints the result, or that line, as a single-process ``ganctl train`` does. Torch-free
until :func:`launch` runs.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path

from ganctl.core.errors import GanctlError

LAUNCH_DIR = "GANCTL_LAUNCH_DIR"
# after Ctrl-C (or a kill) of the launcher, what the workers get to finish their batch and save
# before SIGKILL: torchrun's own default is 30 s, and its SIGKILL then waits on each worker in turn
SHUTDOWN_GRACE_S = 10  # set for the workers of `ganctl train --nproc-per-node`
# the launcher's own options, with the number of values each takes; the workers get the others
LAUNCHER_OPTIONS = {"--nproc-per-node": 1, "--nnodes": 1, "--node-rank": 1, "--rdzv-endpoint": 1}
RESULT = "result.json"


def worker_args(args: list[str]) -> list[str]:
    """The arguments of ``ganctl train`` without the launcher's options (``--opt V`` and ``--opt=V``)."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            out.extend(args[i:])
            break
        flag = a.split("=", 1)[0]
        if flag in LAUNCHER_OPTIONS:
            i += 1 if "=" in a else 1 + LAUNCHER_OPTIONS[flag]
            continue
        out.append(a)
        i += 1
    return out


def processes_per_node(value: str) -> int:
    """``--nproc-per-node``: a number, or ``auto`` (this machine's GPUs)."""
    if value == "auto":
        import torch

        n = torch.cuda.device_count()
        if n < 1:
            raise GanctlError("--nproc-per-node auto starts one process per GPU, and this machine has none: give a number "
                              "(on a CPU, each process gets the cores divided by the number of processes)")
        return n
    try:
        n = int(value)
    except ValueError:
        raise GanctlError(f"--nproc-per-node takes a number of processes or auto, not {value!r}") from None
    if n < 1:
        raise GanctlError("--nproc-per-node must be at least 1")
    return n


def check_options(nproc: str | None, nnodes: int | None, node_rank: int | None, rdzv_endpoint: str | None,
                  batch_size: int | None) -> None:
    """The launcher's options, checked before torch loads (``auto`` is counted later)."""
    if nproc is None:
        if nnodes is not None or node_rank is not None or rdzv_endpoint is not None:
            raise GanctlError("--nnodes, --node-rank and --rdzv-endpoint start a job with --nproc-per-node: give it too")
        return
    n = None if nproc == "auto" else processes_per_node(nproc)
    if nnodes is not None and nnodes < 1:
        raise GanctlError("--nnodes must be at least 1")
    if (nnodes or 1) > 1 and not rdzv_endpoint:
        raise GanctlError("several machines (--nnodes) meet at --rdzv-endpoint HOST:PORT (the first machine's address)")
    if node_rank is not None and not 0 <= node_rank < (nnodes or 1):
        raise GanctlError(f"--node-rank must be between 0 and {(nnodes or 1) - 1} (--nnodes {nnodes or 1})")
    if rdzv_endpoint is not None and ":" not in rdzv_endpoint:
        raise GanctlError(f"--rdzv-endpoint takes HOST:PORT, not {rdzv_endpoint!r}")
    if n is not None and batch_size is not None:
        from ganctl.runtime import distributed

        distributed.check_batch(batch_size, n * (nnodes or 1))


def check_capacity(n: int, device: str) -> None:
    """Refuse, before any process starts, a job this machine cannot hold: on GPUs more processes
    than devices (each rank owns one); on the CPU more processes than the cores this process may
    use (each gets cores // n threads, so more only time-slice the same cores and multiply the
    memory); and, where Linux says it, more memory than is available for n bare workers (each one
    holds at least what this process holds now, torch loaded, before it loads any data). With
    several machines this is each machine's own check: --nproc-per-node is per machine."""
    import torch

    from ganctl.runtime import distributed, runtime

    dev = runtime.resolve_device(device)
    if dev.type == "cuda":
        gpus = torch.cuda.device_count()
        if n > gpus:
            raise GanctlError(f"--nproc-per-node {n} starts {n} processes, one per GPU, and this machine has {gpus} "
                              f"GPU(s): use at most {gpus} (or --nproc-per-node auto)")
    elif dev.type == "cpu":
        cores = distributed.usable_cpus()
        if n > cores:
            raise GanctlError(f"--nproc-per-node {n} starts {n} processes, and this machine gives ganctl {cores} CPU "
                              f"core(s): use at most {cores} (more processes than cores only share the same cores, "
                              "each with its own copy of the job in memory)")
    else:
        raise GanctlError(f"multi-process training runs on CUDA GPUs or CPUs, not on {dev.type}: pass --device cpu")
    check_memory(n, worker_floor_bytes(), available_bytes())


def check_memory(n: int, per_process: int | None, available: int | None) -> None:
    """n processes that each need at least ``per_process`` bytes, against ``available`` (either
    unknown: nothing is said)."""
    if not per_process or available is None or n * per_process <= available:
        return
    gib = 2**30
    fits = available // per_process
    hint = f"use at most {fits}" if fits >= 1 else "free some memory first"
    raise GanctlError(f"--nproc-per-node {n} needs at least {n * per_process / gib:.1f} GiB before loading any data "
                      f"({per_process / gib:.2f} GiB a process), and this machine has {available / gib:.1f} GiB "
                      f"available: {hint}")


def worker_floor_bytes() -> int | None:
    """This process's own anonymous memory (torch loaded): what a worker holds at least, as the
    shared libraries' pages are shared between processes and this is not (Linux; None elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> int | None:
    """MemAvailable, or less where this process's cgroup (a container) allows less (Linux; None elsewhere)."""
    found = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    try:
        group = Path("/sys/fs/cgroup")
        limit = (group / "memory.max").read_text().strip()
        if limit != "max" and found is not None:
            found = min(found, max(0, int(limit) - int((group / "memory.current").read_text())))
    except (OSError, ValueError):
        pass
    return found


def torchrun_args(nproc: int, nnodes: int, node_rank: int | None, rdzv_endpoint: str | None, timeout_s: float,
                  train_args: list[str]) -> list[str]:
    """torchrun's command line for this job. One machine: a rendezvous on a free local port. Several:
    at ``rdzv_endpoint``, the static rendezvous when each machine says its ``node_rank``, the
    c10d one (ranks in the order the machines arrive) when none does."""
    wait = int(max(1, timeout_s))
    args = ["--nproc-per-node", str(nproc), "--nnodes", str(nnodes), "--max-restarts", "0",
            "--rdzv-conf", f"join_timeout={wait},timeout={wait}"]
    if nnodes == 1 and not rdzv_endpoint:
        args.append("--standalone")
    elif node_rank is not None:
        args += ["--rdzv-backend", "static", "--node-rank", str(node_rank), "--rdzv-endpoint", rdzv_endpoint]
    else:
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint]
    return [*args, "-m", "ganctl", "train", *train_args]


def parse_torchrun(argv: list[str]):
    """torchrun's options from ``argv``. The workers' options are ganctl's: with abbreviations on,
    argparse would take `--log` for an ambiguous prefix of torchrun's --log-dir, --log-line-prefix-template..."""
    from torch.distributed import run as torchrun

    parser = torchrun.get_args_parser()
    parser.allow_abbrev = False
    return parser.parse_args(argv)


def launch(raw_args: list[str], nproc: str, nnodes: int | None, node_rank: int | None, rdzv_endpoint: str | None,
           timeout_s: float, device: str = "auto") -> dict:
    """Run the job; returns rank 0's result (see :func:`write_result`), or raises the first
    failure as one line: which rank, and its error (or the signal that ended it)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    n = processes_per_node(nproc)
    check_capacity(n, device)
    argv = torchrun_args(n, nnodes or 1, node_rank, rdzv_endpoint, timeout_s, worker_args(raw_args))
    # torchrun's agent logs every start and stop (each of its loggers has its own level); the
    # workers' own output is what the user reads
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="ganctl-launch-") as shared:
        before = os.environ.get(LAUNCH_DIR)
        os.environ[LAUNCH_DIR] = shared
        try:
            run_torchrun(argv)
        except ChildFailedError as e:
            raise GanctlError(_failure_line(e, Path(shared))) from None
        except SignalException:  # Ctrl-C (or a kill) of the launcher: the workers got it too
            if not (Path(shared) / RESULT).is_file():  # rank 0 did not get to save and report
                raise KeyboardInterrupt from None
        finally:
            if before is None:
                os.environ.pop(LAUNCH_DIR, None)
            else:
                os.environ[LAUNCH_DIR] = before
        result = Path(shared) / RESULT
        if not result.is_file():  # rank 0 ran on another machine
            return {}
        return json.loads(result.read_text())


def run_torchrun(argv: list[str], grace_s: float = SHUTDOWN_GRACE_S) -> None:
    """torchrun with ``argv``, whose workers are all gone when this returns or raises.

    On SIGTERM or SIGINT torchrun's agent sends it on to the workers, waits ``grace_s`` (for
    Ctrl-C, the time to finish a batch and save) and SIGKILLs what remains. Its own handler makes a
    second signal during that wait (Ctrl-C pressed twice) start the wait over, and a third leave
    the workers running on their own; here a second one SIGKILLs every worker at once. torchrun
    keeps its handlers for SIGHUP and SIGQUIT."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException

    args = parse_torchrun(argv)
    args.shutdown_timeout = max(1, int(grace_s))
    args.signals_to_handle = "SIGHUP,SIGQUIT"
    before = set(_children())
    received = []

    def on_signal(signum, frame):
        received.append(signum)
        if len(received) == 1:  # as torchrun's own handler: the agent forwards it and waits
            raise SignalException(f"Process {os.getpid()} got signal: {signal.Signals(signum)}",
                                  sigval=signal.Signals(signum))
        _kill_workers(set(_children()) - before)  # the agent's wait then ends at once

    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    except ValueError:  # not the main thread: torchrun's handlers alone
        args.signals_to_handle = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"
    try:
        torchrun.run(args)
    finally:
        _kill_workers(set(_children()) - before)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _children() -> list[int]:
    """This process's child processes (Linux; none elsewhere)."""
    pids = []
    try:
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    except (OSError, ValueError):
        pass
    return pids


def _kill_workers(pids: set[int]) -> None:
    """SIGKILL each worker's process group (torchrun starts each worker in a session of its own, so
    what it started goes too). Only children that lead their own group are torchrun's workers."""
    for pid in pids:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _failure_line(e, shared: Path) -> str:
    """The cause, in this order: a rank's own error; a rank killed by a signal (it could not say
    why, and the others then lose their connection to it); a rank that lost its connection to
    another; torchrun's first failure."""
    def first(pattern: str) -> Path | None:
        files = sorted(shared.glob(pattern), key=lambda p: p.stat().st_mtime_ns)
        return files[0] if files else None

    def rank_of(path: Path) -> str:
        return path.stem.split("-")[-1]

    said = first("error-rank-*.txt")
    if said:  # the first rank that failed, not the ones that lost it in a collective after
        return f"rank {rank_of(said)} of the job failed: {said.read_text().strip()}"
    killed = {rank: f for rank, f in e.failures.items() if f.exitcode < 0}
    lost = first("lost-rank-*.txt")
    if lost and not killed:
        return f"rank {rank_of(lost)} of the job failed: {lost.read_text().strip()}"
    rank, failure = min(killed.items(), key=lambda rf: rf[1].timestamp) if killed else e.get_first_failure()
    if failure.exitcode < 0:
        try:
            why = f"killed by {signal.Signals(-failure.exitcode).name}"
        except ValueError:
            why = f"killed by signal {-failure.exitcode}"
    else:
        why = f"exit code {failure.exitcode}"
    return f"rank {rank} of the job failed ({why}); the other ranks were stopped"


def launched() -> Path | None:
    """The launcher's shared folder, when this process is one of its workers."""
    value = os.environ.get(LAUNCH_DIR)
    return Path(value) if value else None


def write_result(result: dict) -> None:
    """Rank 0 of a launched job: what the launcher prints."""
    shared = launched()
    if shared is not None and shared.is_dir():
        (shared / RESULT).write_text(json.dumps(result))


def write_error(message: str, lost_peer: bool = False) -> bool:
    """A worker of a launched job: its error, for the launcher to print (True when written).
    ``lost_peer``: the error is this rank's connection to another one breaking, the consequence of
    that rank's failure, which the launcher names instead when it can."""
    shared = launched()
    if shared is None or not shared.is_dir():
        return False
    rank = os.environ.get("RANK", "0")
    (shared / f"{'lost' if lost_peer else 'error'}-rank-{rank}.txt").write_text(message)
    return True


# what gloo and NCCL say when the process at the other end of a collective has gone
_LOST_PEER_SIGNS = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "gloo/transport",
                    "NCCL communicator was aborted")


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another rank went away (torch-free)."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"DistNetworkError", "DistBackendError"}) or any(s in str(exc) for s in _LOST_PEER_SIGNS)
