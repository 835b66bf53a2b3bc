"""The epoch grid of image families (ganctl.train.callbacks.pictures.SampleGrid)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ganctl import models
from ganctl.config import make_config
from ganctl.runtime.runtime import Runtime
from ganctl.train.callbacks.pictures import SampleGrid
from ganctl.train.engine import Loop, Position


def _generator():
    cfg = make_config("dcgan", "mnist", "grid", channels=1, classes=None, preset_key="mnist", batch_size=8)
    torch.manual_seed(0)
    G = models.build_generator(cfg.arch, cfg.generator)
    models.init_weights(cfg.arch, G, cfg.init)
    return cfg, G


@pytest.mark.parametrize("precision,autocast_on", [("fp32", False), ("bf16", True)])
def test_grid_is_drawn_in_the_training_precision_and_keeps_train_mode(tmp_path, precision, autocast_on):
    cfg, G = _generator()
    seen = []
    G.register_forward_pre_hook(lambda m, _a: seen.append((torch.is_autocast_enabled("cpu"), m.training)))
    G.train()
    grid = SampleGrid(tmp_path, G, cfg.z_dim, seed=3, rt=Runtime(torch.device("cpu"), precision), classes=None)
    grid.on_epoch_end(Loop(epochs=5, batches=1, batch_size=8, position=Position(epoch=3)))
    assert seen == [(autocast_on, False)]  # in eval mode, under autocast only when training uses it
    assert G.training
    with Image.open(tmp_path / "samples" / "epoch_0003.png") as im:
        assert im.size[0] == im.size[1] >= 8 * 64  # 8 x 8 cells of 64x64 samples


def test_grid_is_the_same_latents_every_epoch(tmp_path):
    cfg, G = _generator()
    G.eval()  # no batch statistics: the same weights give the same picture
    rt = Runtime(torch.device("cpu"), "bf16")
    grid = SampleGrid(tmp_path, G, cfg.z_dim, seed=3, rt=rt, classes=None)
    for epoch in (1, 2):
        grid.on_epoch_end(Loop(epochs=2, batches=1, batch_size=8, position=Position(epoch=epoch)))
    pictures = [(tmp_path / "samples" / f"epoch_{e:04d}.png").read_bytes() for e in (1, 2)]
    assert pictures[0] == pictures[1]
