"""``ganctl export --format onnx|pt2``: a generator as a file that runs without ganctl.

Both formats come from one ``torch.export`` trace of the generator (:mod:`ganctl.export.graph`):
``pt2`` saves that ExportedProgram, ``onnx`` converts it with PyTorch's own ONNX exporter (the
dynamo path of ``torch.onnx.export``). Every file is run on fixed inputs and compared with the
PyTorch generator before it takes its name (:mod:`ganctl.export.writers`); a mismatch is an
:class:`ExportError` and nothing is left behind. ``official`` (a pix2pix ``.pth`` for the
official code) lives in :mod:`ganctl.export.official`.

The package: :mod:`~ganctl.export.options` (torch-free: formats, modes, metadata, the error),
:mod:`~ganctl.export.graph` (the trace), :mod:`~ganctl.export.writers` (ONNX, pt2) and
:mod:`~ganctl.export.exporter` (one call for the CLI).
"""
