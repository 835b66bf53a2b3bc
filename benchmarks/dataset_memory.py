"""Memory of each process when a job's processes share one decoded copy of a large image folder.

Makes a CelebA-sized synthetic folder (200,000 JPEGs at 64x64 by default), then trains
``ganctl train dcgan`` on it three times, each stopped with Ctrl-C a minute into training (an epoch
takes 25 minutes on 2 cores; the data, not the training, is the point):

1. one process, no cache yet: the folder is decoded (threads on every core) and cached in the store;
2. one process again, from the cache;
3. ``--nproc-per-node N`` from the cache.

While each run lasts, every process of it (the launcher and each rank) is sampled from /proc
every 0.2 s: peak RSS (``VmHWM``, which counts the mapped dataset pages a process touched, shared
or not), the largest private anonymous memory (``RssAnon``: what a process holds on its own) and
the largest proportional share (``Pss``: shared pages split between the processes that map them;
the sum over the processes is what the job costs the machine).

    python benchmarks/dataset_memory.py                   # 200,000 images, 1 and 2 processes
    python benchmarks/dataset_memory.py --images 20000    # a quick look
    python benchmarks/dataset_memory.py --write           # record it in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def make_folder(root: Path, n: int, size: int = 64) -> None:
    """``n`` JPEGs of smooth random colour fields (CelebA-like file sizes, ~2 KB at 64x64)."""
    import torch
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    if len(list(root.glob("*.jpg"))) == n:
        return

    def write(start: int) -> None:
        g = torch.Generator().manual_seed(start)
        coarse = torch.randint(0, 256, (min(1000, n - start), 3, 4, 4), generator=g, dtype=torch.uint8)
        fine = torch.nn.functional.interpolate(coarse.float(), size=(size, size), mode="bilinear", align_corners=False)
        arrays = fine.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        for i, a in enumerate(arrays):
            Image.fromarray(a).save(root / f"{start + i:06d}.jpg", quality=90)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write, range(0, n, 1000)))


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1]) * 1024
    return out


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        frontier += [p for p, pp in parents.items() if pp == pid]
    return found


def _role(pid: int) -> str:
    try:
        env = dict(kv.split("=", 1) for kv in open(f"/proc/{pid}/environ").read().split("\0") if "=" in kv)
    except OSError:
        return "?"
    return f"rank {env['RANK']}" if "RANK" in env else "ganctl"


def run(cmd: list[str], home: Path, train_s: float) -> tuple[dict[str, dict[str, int]], int, float]:
    """{role: peaks} over the run's python processes, the peak of their summed PSS (what the job
    cost the machine at its most), and its wall time. The run is stopped with
    Ctrl-C (ganctl's agreed stop) ``train_s`` seconds after it says it started training."""
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ganctl", *cmd], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    training = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            err.append(line)
            if line.startswith("training "):
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peaks: dict[int, dict[str, int]] = {}
    roles: dict[int, str] = {}
    started = interrupted = None
    job_pss = 0
    while proc.poll() is None:
        pss_now = 0
        for pid in _descendants(proc.pid):
            try:
                if pid not in roles:
                    if "python" not in os.readlink(f"/proc/{pid}/exe"):
                        continue
                    roles[pid] = _role(pid)
                now = _status(pid)
            except OSError:
                continue
            best = peaks.setdefault(pid, {})
            for k, v in now.items():
                best[k] = max(best.get(k, 0), v)
            pss_now += now.get("Pss", 0)
        job_pss = max(job_pss, pss_now)
        if training.is_set() and started is None:
            started = time.perf_counter()
        if started is not None and not interrupted and time.perf_counter() - started > train_s:
            proc.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.2)
    reader.join(5)
    if proc.returncode not in ((0, 130) if interrupted else (0,)):
        raise SystemExit(f"ganctl {' '.join(cmd)} failed ({proc.returncode}):\n{''.join(err)[-3000:]}")
    ranked = any(r.startswith("rank") for r in roles.values())
    named = {("launcher" if ranked and roles[p] == "ganctl" else roles[p]): v for p, v in sorted(peaks.items()) if p in roles}
    return named, job_pss, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200_000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--folder", type=Path, help="where the synthetic folder goes (kept; default: a temporary one)")
    ap.add_argument("--train-seconds", type=float, default=60,
                    help="Ctrl-C each run this long after its training starts (an epoch of 200,000 images at 64x64 "
                         "takes about 25 minutes on 2 cores)")
    ap.add_argument("--write", action="store_true", help="record the table in docs/benchmarks.md")
    args = ap.parse_args()
    from report import machine, write_section

    with tempfile.TemporaryDirectory(prefix="ganctl-mem-") as tmp:
        folder = args.folder or Path(tmp) / "faces"
        t0 = time.perf_counter()
        make_folder(folder, args.images)
        print(f"folder of {args.images:,} JPEGs ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        home = Path(tmp) / "home"
        train = ["train", "dcgan", "--dataset", str(folder), "--epochs", "1", "--image-size", "64",
                 "--batch-size", "128", "--device", "cpu"]
        gib = 2**30
        decoded = args.images * 3 * 64 * 64 / gib
        lines = [f"{machine()}: `python benchmarks/dataset_memory.py --images {args.images} --processes "
                 f"{args.processes} --train-seconds {args.train_seconds:g}`: `ganctl train dcgan --dataset FOLDER --image-size 64 "
                 f"--batch-size 128 --device cpu` on {args.images:,} synthetic 64x64 JPEGs (decoded: {decoded:.2f} GiB), "
                 f"stopped with Ctrl-C {args.train_seconds:g} s after training started. "
                 "Peak RSS counts the mapped dataset pages a process touched, shared or not; private is its largest "
                 "anonymous memory (its own); PSS splits shared pages between the processes that map them (each "
                 "column is that process's largest value over the run); the job's PSS is the largest sum over its "
                 "processes at one moment: what the job cost the machine at its most.",
                 "", "| run | process | peak RSS | private (RssAnon) | PSS | job's PSS | run took |",
                 "|---|---|---|---|---|---|---|"]
        for label, extra in (("1 process, decoding the folder", []), ("1 process, from the cache", []),
                             (f"{args.processes} processes, from the cache", ["--nproc-per-node", str(args.processes)])):
            peaks, job_pss, took = run([*train, "--name", f"r{len(lines)}", *extra], home, args.train_seconds)
            for role, p in peaks.items():
                lines.append(f"| {label} | {role} | {p['VmHWM'] / gib:.2f} GiB | {p['RssAnon'] / gib:.2f} GiB | "
                             f"{p['Pss'] / gib:.2f} GiB | {job_pss / gib:.2f} GiB | {took:.0f} s |")
                print(lines[-1], file=sys.stderr, flush=True)
    body = "\n".join(lines)
    print(body)
    if args.write:
        print(write_section("dataset_memory", "## Memory of a large dataset, shared by a job's processes", body),
              file=sys.stderr)


if __name__ == "__main__":
    main()
