"""One call for ``ganctl export --format onnx|pt2``: load, trace, write, verify."""

from __future__ import annotations

import os
from pathlib import Path

from ganctl.export.options import PIP_EXTRA, Exported, ExportError, check_options, metadata, missing_onnx, output_path


def export(generator: Path, fmt: str, output: str | os.PathLike, mode: str = "eval") -> Exported:
    """Export the generator file ``generator`` as ``fmt`` ("onnx" or "pt2") to ``output``,
    verified; return what was written and the difference measured."""
    check_options(fmt, mode)
    if fmt == "onnx":
        lib = missing_onnx()
        if lib:
            raise ExportError(f"--format onnx needs {lib}, which is not installed: {PIP_EXTRA}")
    from ganctl.export import graph, writers

    traced = graph.prepare(generator, mode)
    out = output_path(output, fmt)
    write = writers.write_onnx if fmt == "onnx" else writers.write_pt2
    diff = write(traced, out, metadata(traced.meta, mode, traced.size_multiple, traced.min_size))
    return Exported(out, diff, tuple(tuple(c[0].shape) for c in traced.checks), traced.meta)
