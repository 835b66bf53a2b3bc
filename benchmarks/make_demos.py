"""Train the demo generators shipped in the package (ganctl/demos/) and score them.

For each demo, ``ganctl train FAMILY --dataset digits`` with the family's digits defaults in a fresh
store, then its newest generator is written to ``ganctl/demos/NAME/`` as float16 safetensors with
its ``config.json`` (ganctl loads it as float32), and both the run and the shipped file are scored
with ``ganctl evaluate`` (2,000 samples, Frechet distance to digits' test images). With --write,
replaces the demos section of docs/benchmarks.md.

    python benchmarks/make_demos.py                       # every demo
    python benchmarks/make_demos.py digits-cgan --write
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine, write_section  # noqa: E402

from ganctl import demos  # noqa: E402
from ganctl.store import genspec  # noqa: E402

DESCRIPTIONS = {
    "dcgan": "DCGAN trained by ganctl on the embedded digits (32x32), shipped with ganctl",
    "cgan": "class-conditional GAN trained by ganctl on the embedded digits (16x16), shipped with ganctl",
}


def ganctl(env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "ganctl", *args], env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"ganctl {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def scores(env: dict, family: str, extra: list[str] = ()) -> dict:
    ganctl(env, "evaluate", f"{family}/demo", "-n", "2000", *extra)
    return json.loads((Path(env["GANCTL_HOME"]) / "runs" / family / "demo" / "eval.json").read_text())


def ship(generator: Path, name: str, family: str) -> Path:
    """Write ``generator`` (a run's generator.safetensors) as demo ``name``: float16 tensors, the
    run's spec marked as this pretrained model."""
    import torch
    from safetensors.torch import load_file, save_file

    from ganctl.store.checkpoint import read_spec

    spec = read_spec(generator)
    spec = genspec.make(**{k: v for k, v in spec.items() if k not in ("schema_version", "ganctl_version", "run")},
                        run=None, pretrained=name, description=DESCRIPTIONS[family],
                        source_url="python benchmarks/make_demos.py (ganctl repository)")
    state = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(generator)).items()}
    dest = demos.ROOT / name
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / demos.GENERATOR
    save_file({k: v.contiguous() for k, v in state.items()}, str(out), metadata={"ganctl": json.dumps(spec, sort_keys=True)})
    (dest / genspec.FILE).write_bytes(genspec.to_json(spec))
    for file in (out, dest / genspec.FILE):
        file.chmod(0o644)  # installed as package data: readable by every user
    assert all(t.dtype in (torch.float16, torch.int64) for t in load_file(str(out)).values())
    return out


def make(name: str, extra: list[str]) -> dict:
    family = demos.DEMOS[name]
    home = Path(tempfile.mkdtemp(prefix=f"ganctl-demo-{name}-"))
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
    t0 = time.perf_counter()
    proc = ganctl(env, "train", family, "--dataset", "digits", "--name", "demo", *extra)
    wall = time.perf_counter() - t0
    run = home / "runs" / family / "demo"
    cfg = json.loads((run / "config.json").read_text())
    trained = scores(env, family)
    latest = (run / "checkpoints" / "latest").read_text().strip()
    out = ship(run / "checkpoints" / latest / demos.GENERATOR, name, family)
    shipped = scores(env, family, ["--checkpoint", str(out)])
    first = proc.stderr.splitlines()[0] if proc.stderr else ""
    shutil.rmtree(home, ignore_errors=True)
    return {"name": name, "family": family, "epochs": cfg["epochs"], "size": cfg["image_size"], "wall": wall,
            "trained": trained, "shipped": shipped, "bytes": out.stat().st_size, "first": first,
            "command": " ".join(["ganctl train", family, "--dataset digits", *extra])}


def table(results: list[dict]) -> str:
    lines = [
        "| demo | trained with | size | training wall time | file (float16) | Frechet distance: run, shipped file (real floor) | label accuracy: run, shipped |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t, s = r["trained"], r["shipped"]
        acc = (f"{t['label_accuracy']:.1%}, {s['label_accuracy']:.1%}" if t.get("label_accuracy") is not None else "-")
        lines.append(
            f"| {r['name']} | `{r['command']}` ({r['epochs']} epochs) | {r['size']}x{r['size']} | {r['wall'] / 60:.1f} min | "
            f"{r['bytes'] / 1e6:.2f} MB | {t['frechet_distance']:.2f}, {s['frechet_distance']:.2f} "
            f"({t['real_train_vs_test_frechet_distance']:.2f}) | {acc} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"default: every demo ({', '.join(demos.DEMOS)})")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--extra", default="", help="extra train options, e.g. '--epochs 2' for a quick check")
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in demos.DEMOS]
    if unknown:
        raise SystemExit(f"unknown demo {unknown[0]!r}: {', '.join(demos.DEMOS)}")
    results = []
    for name in args.names or list(demos.DEMOS):
        print(f"making {name} ...", file=sys.stderr, flush=True)
        results.append(make(name, args.extra.split()))
        print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    section = (
        f"Machine: {machine()}. Command: `python benchmarks/make_demos.py [NAME ...] --write` (each demo: "
        "`ganctl train FAMILY --dataset digits` in a fresh store, its newest generator written to "
        "`ganctl/demos/NAME/` in float16, then `ganctl evaluate` of the run and of the shipped file, 2,000 samples; "
        "wall times depend on what else the machine runs).\n\n" + table(results)
    )
    print(section)
    if args.write:
        rows = table(results).splitlines()
        old = _previous_rows()
        key = lambda row: row.split("|")[1].strip()  # noqa: E731
        fresh = {key(r): r for r in rows[2:]}
        merged = [fresh.pop(key(r), r) for r in old[2:]] + list(fresh.values())
        write_section("make_demos", "## Demo generators shipped with ganctl", section.replace(table(results), "\n".join(rows[:2] + merged)))


def _previous_rows() -> list[str]:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else ""
    m = re.search(r"<!-- make_demos:begin -->(.*?)<!-- make_demos:end -->", text, re.S)
    return [ln for ln in m.group(1).splitlines() if ln.startswith("|")] if m else []


if __name__ == "__main__":
    main()
