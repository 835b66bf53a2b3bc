"""Write a traced generator as ONNX or as a pt2 ExportedProgram, each run and checked before it
takes its name: the file is written under a temporary name (ganctl.core.atomic), loaded back by the
runtime that will use it (onnxruntime; torch.export.load), run on the check inputs and compared
with PyTorch. Over :data:`ganctl.export.options.TOLERANCE` it is an ExportError and the file is removed.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from ganctl.core.atomic import atomic_path
from ganctl.export.graph import Traced, export_program, tracing
from ganctl.export.options import TOLERANCE, ExportError

PT2_META = "ganctl.json"  # the pt2 archive's extra file with the metadata (torch.export.load(extra_files=...))


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and warnings go to stderr, never to stdout (it carries the path)."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _compare(got: list[np.ndarray], traced: Traced, what: str) -> float:
    """The largest |got - expected| over every check; an ExportError when over the tolerance."""
    worst = 0.0
    for out, want, inputs in zip(got, traced.expected, traced.checks, strict=True):
        out = np.asarray(out, dtype=np.float32)
        want = want.float().numpy()
        shape = tuple(inputs[0].shape)
        if out.shape != want.shape:
            raise ExportError(f"the exported {what} gives an output of shape {out.shape} for an input of shape "
                              f"{shape}, PyTorch {tuple(want.shape)}: nothing written; please report it")
        diff = float(np.max(np.abs(out - want))) if out.size else 0.0
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise ExportError(f"the exported {what} differs from the PyTorch generator by {diff:.3g} (max abs, "
                              f"limit {TOLERANCE:g}) on an input of shape {shape}: nothing written; please report it")
        worst = max(worst, diff)
    return worst


def onnx_model(traced: Traced, metadata: dict[str, str]):
    """The ONNX ModelProto of ``traced`` (torch.onnx.export's dynamo path), with ``metadata`` in its metadata_props."""
    with _quiet(), tracing(traced, "PyTorch's ONNX exporter"):
        program = torch.onnx.export(traced.model, traced.example, dynamo=True, dynamic_shapes=traced.dynamic_shapes,
                                    input_names=traced.input_names, output_names=traced.output_names,
                                    optimize=True, verbose=False)
    model = program.model_proto
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "ganctl"
    return model


def write_onnx(traced: Traced, out: Path, metadata: dict[str, str]) -> float:
    """Write ``traced`` as the ONNX file ``out`` once onnxruntime reproduces PyTorch on the checks; the difference."""
    import onnx
    import onnxruntime as ort

    model = onnx_model(traced, metadata)
    with tracing(traced, "the ONNX checker"):
        onnx.checker.check_model(model)
    data = model.SerializeToString()
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        got = [session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0] for inputs in traced.checks]
        return _compare(got, traced, "ONNX model")


def write_pt2(traced: Traced, out: Path, metadata: dict[str, str]) -> float:
    """Write ``traced`` as the pt2 file ``out`` (torch.export.save) once the program loaded back
    with torch.export.load reproduces PyTorch on the checks; the difference."""
    buf = io.BytesIO()  # torch.export.save wants a name ending in .pt2 or a buffer, not the temporary name
    with _quiet():
        torch.export.save(export_program(traced), buf, extra_files={PT2_META: json.dumps(metadata, sort_keys=True)})
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.getvalue())
        with _quiet():
            loaded = torch.export.load(io.BytesIO(tmp.read_bytes())).module()
            with torch.no_grad():
                got = [loaded(*inputs).numpy() for inputs in traced.checks]
        return _compare(got, traced, "program")
