"""What each epoch shows: a grid of samples from fixed noise (image families), translations of
fixed validation pairs with their scores (pairs), and ``--eval-every`` quality numbers."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganctl.core import images
from ganctl.data import loading
from ganctl.data.feeders import orient, to_unit
from ganctl.evaluation import scores
from ganctl.runtime.runtime import Runtime
from ganctl.train.engine import Callback, Loop
from ganctl.use import inference

SAMPLE_GRID = 64  # fixed-noise images in each epoch's grid
VAL_SHOWN = 4  # of which shown in the epoch picture


def _picture(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / "samples" / f"epoch_{epoch:04d}.png"


class SampleGrid(Callback):
    """``samples/epoch_NNNN.png``: the same 64 latents every epoch (one row per class for
    conditional generators, labelled with the class names), drawn in the training's precision
    (autocast, as the validation pairs): a preview, twice as fast in bf16 on a CPU as in fp32;
    ``ganctl sample`` draws in fp32."""

    def __init__(self, run_dir: Path, G: nn.Module, z_dim: int, seed: int, rt: Runtime, classes: tuple[str, ...] | None):
        self.run_dir, self.G, self.classes, self.rt = run_dir, G, classes, rt
        n, self.fixed_y, self.per_row = SAMPLE_GRID, None, 8
        if classes:  # one row per class
            self.per_row = max(1, SAMPLE_GRID // len(classes))
            n = self.per_row * len(classes)
            self.fixed_y = inference.grid_labels(n, len(classes)).to(rt.device)
        self.fixed_z = inference.latents(n, z_dim, seed=seed).to(rt.device)

    def on_epoch_end(self, loop: Loop) -> None:
        was_training = self.G.training
        self.G.eval()
        with torch.no_grad(), self.rt.autocast():
            fake = self.G(self.fixed_z, self.fixed_y).float()
        self.G.train(was_training)
        path = _picture(self.run_dir, loop.position.epoch)
        if self.fixed_y is not None:
            images.save_grid(fake, path, nrow=self.per_row, row_labels=list(self.classes))
        else:
            images.save_grid(fake, path, nrow=8)


class Evaluation(Callback):
    """Every ``every`` epochs, :mod:`ganctl.evaluation.evaluate`'s numbers of the generator in training
    (``eval_*`` in the metrics log). The real images and their features are loaded once."""

    KEEP = ("frechet_distance", "real_train_vs_test_frechet_distance", "kid_mean", "real_train_vs_test_kid_mean",
            "precision", "recall", "label_accuracy")

    def __init__(self, G: nn.Module, spec: dict, every: int, seed: int, rt: Runtime):
        self.G, self.spec, self.every, self.seed, self.rt = G, spec, every, seed, rt
        self._references: dict = {}

    def on_epoch_end(self, loop: Loop) -> None:
        if loop.position.epoch % self.every:
            return
        from ganctl.evaluation import evaluate

        res = evaluate.evaluate_during_training(self.G, self.spec, seed=self.seed, device=self.rt.device,
                                                references=self._references)
        numbers = loop.logs.setdefault("epoch_numbers", {})
        numbers.update({f"eval_{k}": float(res[k]) for k in self.KEEP if res.get(k) is not None})


class PairValidation(Callback):
    """``samples/epoch_NNNN.png``: input | output | target rows for fixed validation pairs, and
    their L1, PSNR and SSIM (``val_*`` in the metrics log).

    Validation runs as translate does by default: the paper's test-time network (dropout on,
    batch statistics), one image at a time, seeded so every epoch is scored alike. The pairs are
    resized straight to the training size (load = crop, as the official test script)."""

    def __init__(self, run_dir: Path, G: nn.Module, val, direction: str, seed: int, rt: Runtime, channels_last: bool):
        self.run_dir, self.G, self.seed, self.rt = run_dir, G, seed, rt
        n_val = min(loading.VAL_PAIRS, len(val))
        a, b = val.batch(torch.arange(n_val))
        x, y = orient(a, b, direction)
        self.val_x = to_unit(x, rt.device, channels_last)
        self.val_y = to_unit(y, rt.device, channels_last)

    def on_epoch_end(self, loop: Loop) -> None:
        outs = []
        with inference.paper_mode(self.G, seed=self.seed), torch.no_grad(), self.rt.autocast():
            for i in range(len(self.val_x)):
                outs.append(self.G(self.val_x[i : i + 1]).float())
        out = torch.cat(outs)
        k = min(VAL_SHOWN, len(out))
        rows = torch.stack([self.val_x[:k].float(), out[:k], self.val_y[:k].float()], dim=1).flatten(0, 1)
        images.save_grid(rows, _picture(self.run_dir, loop.position.epoch), nrow=3)
        numbers = loop.logs.setdefault("epoch_numbers", {})
        numbers.update({f"val_{k}": v for k, v in scores.image_scores(out, self.val_y).items()})


# ---------------------------------------------------------------- the data kinds' epoch pictures
# (ganctl.families.familyspec.KINDS names these: each builds its kind's callbacks for a run)


def image_pictures(run_dir: Path, nets: dict[str, nn.Module], val, cfg, rt: Runtime, channels_last: bool) -> list[Callback]:
    """A grid from fixed noise each epoch, and ``--eval-every``'s numbers."""
    from ganctl.store import genspec

    G, conditional = nets["generator"], bool(cfg.generator.get("num_classes"))
    shows: list[Callback] = [SampleGrid(run_dir, G, cfg.z_dim, cfg.seed, rt, cfg.classes if conditional else None)]
    if cfg.eval_every:
        shows.append(Evaluation(G, genspec.for_run(cfg), cfg.eval_every, cfg.seed, rt))
    return shows


def pair_pictures(run_dir: Path, nets: dict[str, nn.Module], val, cfg, rt: Runtime, channels_last: bool) -> list[Callback]:
    """Validation pairs translated and scored each epoch."""
    return [PairValidation(run_dir, nets["generator"], val, cfg.data_args["direction"], cfg.seed, rt, channels_last)]


class CycleValidation(Callback):
    """``samples/epoch_NNNN.png`` of a CycleGAN: rows A -> G_A(A) -> G_B(G_A(A)) for fixed A images,
    then B -> G_B(B) -> G_A(G_B(B)) for fixed B images, the generators in eval mode (instance norm
    keeps no running statistics, so eval and training mode compute the same). When the preview
    images are aligned (a test split of the same scenes: maps, facades), the A -> B translations
    are scored against the true B images (``val_*`` in the metrics log)."""

    def __init__(self, run_dir: Path, G_A: nn.Module, G_B: nn.Module, preview, rt: Runtime, channels_last: bool):
        self.run_dir, self.G_A, self.G_B, self.rt = run_dir, G_A, G_B, rt
        self.a = to_unit(preview.a[:VAL_SHOWN], rt.device, channels_last)
        self.b = to_unit(preview.b[:VAL_SHOWN], rt.device, channels_last)
        self.aligned = bool(preview.aligned)
        self.truth = to_unit(preview.b, rt.device, channels_last) if self.aligned else None
        self.scored = to_unit(preview.a, rt.device, channels_last) if self.aligned else None

    def _run(self, G: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([G(x[i : i + 1]).float() for i in range(len(x))])

    def on_epoch_end(self, loop: Loop) -> None:
        modes = self.G_A.training, self.G_B.training
        self.G_A.eval()
        self.G_B.eval()
        try:
            with torch.no_grad(), self.rt.autocast():
                ab = self._run(self.G_A, self.a)
                aba = self._run(self.G_B, ab)
                ba = self._run(self.G_B, self.b)
                bab = self._run(self.G_A, ba)
                scored = self._run(self.G_A, self.scored) if self.aligned else None
        finally:
            self.G_A.train(modes[0])
            self.G_B.train(modes[1])
        rows = torch.cat([torch.stack([self.a.float(), ab, aba], dim=1).flatten(0, 1),
                          torch.stack([self.b.float(), ba, bab], dim=1).flatten(0, 1)])
        images.save_grid(rows, _picture(self.run_dir, loop.position.epoch), nrow=3)
        if scored is not None:
            numbers = loop.logs.setdefault("epoch_numbers", {})
            numbers.update({f"val_{k}": v for k, v in scores.image_scores(scored, self.truth).items()})


def cycle_pictures(run_dir: Path, nets: dict[str, nn.Module], preview, cfg, rt: Runtime, channels_last: bool) -> list[Callback]:
    """The unpaired kind's epoch pictures: translations there and back, each way."""
    return [CycleValidation(run_dir, nets["G_A"], nets["G_B"], preview, rt, channels_last)]

