"""What every benchmark script shares: the machine line and its section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
# ganctl train's per-epoch lines (on stderr, progress bars off): the epoch, its seconds and its
# images/s; every line but the last ends with ", eta ..."
EPOCH_LINE = re.compile(r"^epoch (?P<epoch>\d+)/\d+ .* (?P<seconds>[0-9.]+)s (?P<rate>[0-9.,]+) img/s(?:, eta .*)?$",
                        re.M)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    if flags:  # what bf16 runs on: AMX tiles (Intel Sapphire Rapids on), AVX-512 BF16, or neither
        bf16 = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16")) if flag in flags]
        cpu += f" (bf16: {' and '.join(bf16) if bf16 else 'emulated'}{'' if 'amx_bf16' in flags else ', no AMX'})"
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return f"{cpu}, {os.cpu_count()} cores, GPU: {gpu}, torch {torch.__version__}"


def write_section(name: str, heading: str, body: str) -> Path:
    """Replace the text between this benchmark's markers in docs/benchmarks.md (read just now:
    other scripts write other sections), or add it at the end under ``heading``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{body.strip()}\n{end}"
    path = DOCS / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, count=1, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{section}\n"
    path.write_text(text)
    return path


def notes(name: str) -> str:
    """What follows the first table of this benchmark's section in docs/benchmarks.md (the reading
    written there by hand), so that a script rewriting its generated part can keep it; "" if none."""
    path = DOCS / "benchmarks.md"
    text = path.read_text() if path.exists() else ""
    found = re.search(re.escape(f"<!-- {name}:begin -->") + "(.*?)" + re.escape(f"<!-- {name}:end -->"), text, re.S)
    lines = found[1].strip().splitlines() if found else []
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[end:]).strip()


def mean_sd(values: list[float], fmt: str) -> str:
    """``mean ± sd`` of repeated measurements (seeds), each formatted with ``fmt``; one value alone as it is."""
    import statistics

    if len(values) < 2:
        return format(values[0], fmt)
    return f"{format(statistics.mean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def epoch_seconds(stderr: str) -> list[float]:
    """The seconds of each epoch line in ``stderr`` (:data:`EPOCH_LINE`)."""
    return [float(m["seconds"]) for m in EPOCH_LINE.finditer(stderr)]
