"""A quality number for generators of labelled small-image datasets.

The Frechet Inception Distance (Heusel et al., 2017) compares Gaussian fits of real and generated
images in the feature space of an ImageNet Inception network. Inception knows nothing about 8x8
digits, and ganctl downloads no weights, so ganctl trains its own small classifier on the
dataset's training split (once, cached in the store) and measures the same Frechet distance in
that classifier's penultimate layer: generated images against the real *test* split. For
conditional generators the same classifier also says how often a sample shows the label it was
asked for.

The number is only comparable between runs evaluated with the same classifier (same dataset,
image size and channels), and it is biased upwards for small samples, so every result also holds
the distance between real training images and the test images: the floor a perfect generator
would reach.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganctl import __version__, checkpoint, inference, store
from ganctl.atomic import atomic_write_json
from ganctl.errors import CheckpointError, GanctlError
from ganctl.evaluation import cache, classifier, splits
from ganctl.evaluation.classifier import DatasetClassifier
from ganctl.evaluation.frechet import frechet_distance
from ganctl.evaluation.splits import RealSplits

ProgressFn = Callable[[str], None]


@dataclass
class _Reference:
    """What a score is measured against, the same for every generator of one dataset and size:
    the real splits, the classifier, and its features of the test split and of ``n`` training
    images (the real floor)."""

    splits: RealSplits
    model: DatasetClassifier
    info: dict
    f_test: torch.Tensor
    f_train: torch.Tensor


def _reference(dataset: str, size: int, channels: int, n: int, seed: int, device: torch.device,
               progress: ProgressFn | None) -> _Reference:
    real = splits.load_splits(dataset, size, channels, progress)
    model, info = cache.classifier_for(real, device, progress)
    f_test, _ = classifier.features_and_logits(model, real.test.images, device)
    # the floor: real training images, as many as generated (when there are that many)
    pick = torch.randperm(len(real.train), generator=torch.Generator().manual_seed(seed))[:n]
    f_train, _ = classifier.features_and_logits(model, real.train.images[pick], device)
    return _Reference(real, model, info, f_test, f_train)


def evaluate_generator(
    gen: inference.LoadedGenerator,
    *,
    n: int = 2000,
    seed: int = 0,
    device: torch.device | str,
    progress: ProgressFn | None = None,
    references: dict | None = None,
) -> dict:
    """Frechet distance of ``n`` generated images to the real test split, the real floor, and
    (conditional generators) the label accuracy. The dataset, size and channels come from the
    generator's metadata. ``references``: a dict kept by the caller across calls (training
    evaluates every few epochs), so the splits are loaded and the real features computed once."""
    if n < 2:
        raise GanctlError("-n must be at least 2 (a covariance needs two samples)")
    device = torch.device(device)
    meta = gen.meta
    if not meta.get("z_dim"):  # image-to-image generators (pix2pix) draw no noise
        raise GanctlError(
            f"evaluate scores generators that draw images from noise, and {gen.path} holds a "
            f"{meta.get('family', 'non-noise')!r} generator: pix2pix runs record validation L1, PSNR and SSIM "
            "in their metrics.jsonl instead"
        )
    dataset, size, channels = meta.get("dataset"), meta.get("image_size"), meta.get("channels")
    if not dataset or not size or not channels:
        raise CheckpointError(f"{gen.path} does not say which dataset it was trained on: it cannot be evaluated")
    size, channels = int(size), int(channels)
    conditional = bool(meta.get("conditional"))
    key = (dataset, size, channels, n, seed, str(device))
    ref = references.get(key) if references is not None else None
    if ref is None:
        ref = _reference(dataset, size, channels, n, seed, device, progress)
        if references is not None:
            references[key] = ref
    real, model, info = ref.splits, ref.model, ref.info
    if conditional:
        splits.check_classes(real, meta.get("classes"))
    elif meta.get("classes") and tuple(meta["classes"]) != real.classes and progress:
        progress(f"note: the classes of {dataset} changed since this model was trained")
    num_classes = len(real.classes)

    labels = torch.arange(n) % num_classes if conditional else None
    z = inference.latents(n, gen.z_dim, seed)
    if progress:
        what = f"{n:,} images{' (labels balanced over the classes)' if conditional else ''}"
        progress(f"generating {what} with {gen.path.parent.name or 'the generator'}")
    fake = inference.generate(gen, z, labels)
    if tuple(fake.shape[1:]) != (channels, size, size):
        raise CheckpointError(f"{gen.path} generates {tuple(fake.shape[1:])} images, its metadata says ({channels}, {size}, {size})")

    f_fake, logits = classifier.features_and_logits(model, fake.clamp(-1, 1), device)
    result = {
        "frechet_distance": round(frechet_distance(f_fake, ref.f_test), 4),
        "real_train_vs_test_frechet_distance": round(frechet_distance(ref.f_train, ref.f_test), 4),
        "label_accuracy": round(float((logits.argmax(1) == labels).float().mean()), 4) if conditional else None,
        "classifier_test_accuracy": info["test_accuracy"],
        "n": n,
        "seed": seed,
        "dataset": dataset,
        "image_size": size,
        "classifier": Path(info["path"]).parent.name,
    }
    return result


def _epoch_of(ckpt: Path) -> int | None:
    m = re.fullmatch(r"epoch_(\d+)", ckpt.name)
    if m:
        return int(m.group(1))
    try:  # an interrupt checkpoint (step_*): the epochs completed before it
        return checkpoint.load_trainer(ckpt).epoch
    except CheckpointError:
        return None


def evaluate_run(
    run: store.RunInfo,
    *,
    n: int = 2000,
    seed: int = 0,
    device: torch.device | str,
    checkpoint_path: Path | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict, Path]:
    """Evaluate a run's newest generator (or ``checkpoint_path``: a generator file, checkpoint
    folder, or a checkpoint's name such as ``epoch_0010``); write ``eval.json`` (the latest
    result) and append to ``evaluations.jsonl`` (the history) in the run folder."""
    from ganctl import generators

    device = torch.device(device)
    path = generators.choose(run.family, run=str(run.path), checkpoint=checkpoint_path).path
    gen = inference.load_generator(path, device)
    result = evaluate_generator(gen, n=n, seed=seed, device=device, progress=progress)
    ckpt = gen.path.parent
    result = {
        "run": run.id,
        "checkpoint": ckpt.name,
        "epoch": _epoch_of(ckpt),
        **result,
        "generator": str(gen.path),
        "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ganctl_version": __version__,
    }
    out = run.path / "eval.json"
    atomic_write_json(out, result)
    with open(run.path / "evaluations.jsonl", "a") as f:
        f.write(json.dumps(result, sort_keys=True) + "\n")
    return result, out


def evaluate_during_training(
    G: nn.Module,
    meta: dict,
    *,
    n: int = 1000,
    seed: int = 0,
    device: torch.device | str,
    progress: ProgressFn | None = None,
    references: dict | None = None,
) -> dict:
    """Evaluate the in-memory generator ``G`` (``meta`` as engine.generator_meta gives it);
    ``references`` as for :func:`evaluate_generator`.

    G is put in eval mode for the measurement and back in its former mode after. No global random
    state is used, so a training run that evaluates every few epochs still resumes exactly.
    """
    was_training = G.training
    G.eval()
    try:
        gen = inference.LoadedGenerator(G, meta, Path(f"<{meta.get('run') or 'generator'} in training>"))
        return evaluate_generator(gen, n=n, seed=seed, device=device, progress=progress, references=references)
    finally:
        G.train(was_training)
