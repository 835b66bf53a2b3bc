"""A stand-in for the FID Inception weights file: torch-fidelity's Inception-v3 with random weights,
saved as the real file is (``torch.save`` of the network's state dict: the same 566 tensors under
the same names and shapes, about 95 MB)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest
import torch

from ganctl.evaluation import weights


def random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights whose batch norms are calibrated on random images, so that the pool features
    are of order 1 (plain random init makes them vanish through the 90-odd layers)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # the constructor insists on loading a file: give it none, keep the random init
        with mock.patch.object(fe.torch, "load", return_value={}), \
                mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict"):
            net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="-")
        bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in bns:
            m.momentum = 1.0  # running statistics = those of the calibration batch
        net.train()
        with torch.no_grad():
            net(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
        net.eval()
        return net.state_dict()


def write_random_inception(path: Path, seed: int = 0) -> Path:
    torch.save(random_inception_state(seed), path)
    return path


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory) -> Path:
    """The random weights file, under the real file's name (written once per session)."""
    return write_random_inception(tmp_path_factory.mktemp("inception") / weights.INCEPTION.file)


def pin(monkeypatch, data: bytes) -> None:
    """Pin the size and sha256 of ``data`` in place of the real file's."""
    monkeypatch.setitem(weights.CATALOG, "inception", replace(
        weights.INCEPTION, size=len(data), sha256=hashlib.sha256(data).hexdigest()))
