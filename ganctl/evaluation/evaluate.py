"""Quality numbers for generators that draw images from noise.

Two feature spaces, both measured through torch-fidelity (:mod:`ganctl.evaluation.fidelity`):

- **inception** (:mod:`ganctl.evaluation.standard`): FID, KID and precision/recall on the pool
  features of the TensorFlow FID Inception-v3, the numbers papers and other tools report. The
  default for RGB runs (celeba, folders) and for folders without class labels.
- **classifier** (:mod:`ganctl.evaluation.in_domain`): the Frechet distance and KID in the feature
  space of a small classifier ganctl trains on the dataset itself (Inception knows nothing about
  8x8 digits), with the same numbers for real training images (the floor) at the same sample
  size, and label accuracy for conditional generators. The default for grayscale labelled sets:
  digits, mnist, fashion-mnist and class folders.

Every result holds its protocol (feature space, weights' sha256, sample counts, reference split,
resize filter), and the real side's features are cached in the store.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganctl import __version__
from ganctl.core import images
from ganctl.core.atomic import atomic_write_json
from ganctl.core.errors import CheckpointError, GanctlError
from ganctl.data import catalog
from ganctl.store import checkpoint, layout
from ganctl.use import inference

ProgressFn = Callable[[str], None]
SPACES = ("auto", "inception", "classifier")


def choose_space(dataset: str, channels: int, features: str = "auto") -> str:
    """``features`` as asked, or for ``auto``: the classifier for grayscale labelled sets (catalog
    sets with classes, grayscale folders), Inception for everything else."""
    if features not in SPACES:
        raise GanctlError(f"unknown feature space {features!r}: use {', '.join(SPACES)}")
    if features != "auto":
        return features
    if catalog.is_path_like(dataset):
        return "classifier" if channels == 1 and _has_class_folders(dataset) else "inception"
    entry = catalog.CATALOG.get(dataset)
    return "classifier" if entry is not None and entry.classes and channels == 1 else "inception"


def check_ready(dataset: str, channels: int, features: str = "auto") -> str:
    """Raise the one-line error evaluate would give for a missing torch-fidelity or missing Inception
    weights, before a training run with --eval-every starts; return the feature space."""
    from ganctl.evaluation import fidelity, weights

    space = choose_space(dataset, channels, features)
    fidelity.library()
    if space == "inception":
        weights.require()
    return space


def _has_class_folders(folder: str) -> bool:
    root = Path(folder).expanduser()
    return sum(1 for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) >= 2 if root.is_dir() else False


def _fakes(gen: inference.LoadedGenerator, seed: int, conditional: bool, shape: tuple, progress: ProgressFn | None):
    def make(n: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        labels = torch.arange(n) % num_classes if conditional else None
        if progress:
            what = f"{n:,} images{' (labels balanced over the classes)' if conditional else ''}"
            progress(f"generating {what} with {gen.path.parent.name or 'the generator'}")
        fake = inference.generate(gen, inference.latents(n, gen.z_dim, seed), labels)
        if tuple(fake.shape[1:]) != shape:
            raise CheckpointError(f"{gen.path} generates {tuple(fake.shape[1:])} images, its metadata says {shape}")
        return images.to_uint8(fake), labels

    return make


def evaluate_generator(
    gen: inference.LoadedGenerator,
    *,
    n: int = 2000,
    seed: int = 0,
    device: torch.device | str,
    progress: ProgressFn | None = None,
    references: dict | None = None,
    features: str = "auto",
    reference_n: int | None = None,
) -> dict:
    """Score ``n`` generated images (see the module's docstring). The dataset, size and channels
    come from the generator's metadata. ``references``: a dict kept by the caller across calls
    (training evaluates every few epochs), so the real side is loaded and measured once."""
    if n < 2:
        raise GanctlError("-n must be at least 2 (a covariance needs two samples)")
    device = torch.device(device)
    meta = gen.meta
    if not meta.get("z_dim"):  # image-to-image generators (pix2pix) draw no noise
        raise GanctlError(
            f"evaluate scores generators that draw images from noise, and {gen.path} holds a "
            f"{meta.get('family', 'non-noise')!r} generator: score it on its test pairs with 'ganctl evaluate RUN'"
        )
    dataset, size, channels = meta.get("dataset"), meta.get("image_size"), meta.get("channels")
    if not dataset or not size or not channels:
        raise CheckpointError(f"{gen.path} does not say which dataset it was trained on: it cannot be evaluated")
    size, channels = int(size), int(channels)
    space = choose_space(dataset, channels, features)
    from ganctl.evaluation import fidelity, in_domain, splits, standard

    fidelity.library()  # a missing extra is answered before anything is loaded
    conditional = bool(meta.get("conditional"))
    make = _fakes(gen, seed, conditional, (channels, size, size), progress)
    ref_n = reference_n or standard.REFERENCE_N
    key = (space, dataset, size, channels, n, seed, ref_n, str(device))
    ref = references.get(key) if references is not None else None
    if space == "classifier":
        if ref is None:
            ref = in_domain.InDomainReference(dataset, size, channels, n, seed, device, progress)
        if conditional:
            splits.check_classes(ref.splits, meta.get("classes"))
        elif meta.get("classes") and tuple(meta["classes"]) != ref.splits.classes and progress:
            progress(f"note: the classes of {dataset} changed since this model was trained")
        if ref.n < n and progress:
            progress(f"{dataset} has {ref.n:,} training images: scoring {ref.n:,} generated images, "
                     "so that the real floor is measured at the same sample size")
        result = in_domain.score(ref, make, conditional)
    else:
        if ref is None:
            ref = standard.InceptionReference(dataset, size, channels, ref_n, device, progress)
        result = standard.score(ref, make, n, len(meta.get("classes") or ()) or 1)
    if references is not None:
        references[key] = ref
    result["protocol"]["reference"]["dataset"] = dataset
    result = {**result, "feature_space": space, "seed": seed, "dataset": dataset, "image_size": size}
    return fewer_than_asked(result, n, f"{dataset} has {result['n']:,} training images, the real floor's sample size")


def fewer_than_asked(result: dict, n: int | None, why: str) -> dict:
    """``result`` saying, when it scored fewer images than the ``n`` asked for, how many were asked
    and why (``n_requested``, ``n_limit``): a number of another sample size is another number.
    (pix2pix's -n is documented as a cap on the test pairs, whose count its result shows.)"""
    if n is None or not isinstance(result.get("n"), int) or result["n"] >= n:
        return result
    return {**result, "n_requested": n, "n_limit": why}



def _epoch_of(ckpt: Path) -> int | None:
    m = re.fullmatch(r"epoch_(\d+)", ckpt.name)
    if m:
        return int(m.group(1))
    try:  # an interrupt checkpoint (step_*): the epochs completed before it
        return checkpoint.load_trainer(ckpt).epoch
    except CheckpointError:
        return None


def evaluate_run(
    run: layout.RunInfo,
    *,
    n: int = 2000,
    seed: int = 0,
    device: torch.device | str,
    checkpoint_path: Path | None = None,
    progress: ProgressFn | None = None,
    features: str = "auto",
    reference_n: int | None = None,
    mode: str = "paper",
    direction: str | None = None,
) -> tuple[dict, Path]:
    """Evaluate a run's newest generator (or ``checkpoint_path``: a generator file, checkpoint
    folder, or a checkpoint's name such as ``epoch_0010``); write ``eval.json`` (the latest
    result) and append to ``evaluations.jsonl`` (the history) in the run folder. A pix2pix run is
    scored on its dataset's test pairs (at most ``n``) in ``mode``; a run whose data kind scores
    its generators itself (unpaired: a CycleGAN) on its test split, each direction (``direction``: one)."""
    from ganctl.use import generators

    device = torch.device(device)
    evaluator = _kind_evaluator(run.family)
    if direction is not None and not evaluator:
        raise GanctlError(f"--direction applies to models with a generator each way (such as cyclegan), not to {run.family}")
    if evaluator:
        gens, ckpt = run_generators(run, checkpoint_path, direction, device)
        from ganctl.families.familyspec import resolve

        result = resolve(evaluator)(gens, run.config()["dataset"], n=n, seed=seed, mode=mode, device=device,
                                    progress=progress)
        path = next(iter(gens.values())).path
    else:
        path = generators.choose(run.family, run=str(run.path), checkpoint=checkpoint_path).path
        gen = inference.load_generator(path, device)
        if is_image_to_image(gen.meta):
            from ganctl.evaluation import pairs

            result = pairs.evaluate_pairs(gen, gen.meta.get("dataset") or run.config().get("dataset"), mode=mode,
                                          seed=seed, device=device, n=n, progress=progress)
        else:
            result = evaluate_generator(gen, n=n, seed=seed, device=device, progress=progress, features=features,
                                        reference_n=reference_n)
        ckpt = gen.path.parent
    result = {
        "run": run.id,
        "checkpoint": ckpt.name,
        "epoch": _epoch_of(ckpt),
        **result,
        "generator": str(path),
        "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ganctl_version": __version__,
    }
    out = run.path / "eval.json"
    atomic_write_json(out, result)
    with open(run.path / "evaluations.jsonl", "a") as f:
        f.write(json.dumps(result, sort_keys=True) + "\n")
    return result, out


def _kind_evaluator(family: str) -> str:
    """The ``"module:function"`` that scores the generators of ``family``'s data kind ('' when
    its generator files score themselves, or the family is not one this ganctl knows)."""
    from ganctl.families import registry

    return registry.get(family).kind.evaluate if family in registry.FAMILIES else ""


def run_generators(run: layout.RunInfo, checkpoint_path: Path | None, direction: str | None,
                   device: torch.device) -> tuple[dict, Path]:
    """({direction: loaded generator}, checkpoint folder) of a run with a generator each way: the
    one ``direction`` names, else each one, all from one checkpoint (the newest readable one, or
    ``checkpoint_path``; a generator file given there is scored alone, in its own direction)."""
    from ganctl.use import generators

    chosen = generators.choose_each(run.family, run=str(run.path), checkpoint=checkpoint_path, direction=direction)
    gens = {}
    for way, choice in chosen.items():
        gen = inference.load_generator(choice.path, device)
        if direction is not None and way != direction:
            raise GanctlError(f"{choice.path} translates {way or 'no direction'}, not {direction}: give --direction "
                              f"{way}, or another checkpoint")
        gens[way] = gen
    path = next(iter(chosen.values())).path
    # a checkpoint folder holds each generator in a folder of its own (G_A/generator.safetensors)
    return gens, path.parent.parent if path.parent.parent.parent.name == "checkpoints" else path.parent


def is_image_to_image(meta: dict) -> bool:
    """A pix2pix generator: it draws no noise and translates in a direction."""
    return not meta.get("z_dim") and meta.get("direction") in ("AtoB", "BtoA")


def evaluate_pretrained(name: str, dataset: str, *, mode: str = "paper", seed: int = 0, n: int | None = None,
                        device: torch.device | str, progress: ProgressFn | None = None) -> dict:
    """Score pretrained image-to-image model ``name`` (in the store) on the test split of
    ``dataset``: pix2pix on its test pairs, a model of a kind that scores its generators (a CycleGAN
    generator, unpaired) in its own direction."""
    from ganctl.evaluation import pairs
    from ganctl.store import pretrained

    device = torch.device(device)
    gen = inference.load_generator(pretrained.generator_path(name), device)
    if not is_image_to_image(gen.meta):
        raise GanctlError(f"{name} draws images from noise: evaluate a run of it, or give --pretrained a pix2pix "
                          "or cyclegan model")
    evaluator = _kind_evaluator(gen.meta.get("family", ""))
    if evaluator:
        from ganctl.families.familyspec import resolve

        result = resolve(evaluator)({gen.meta["direction"]: gen}, dataset, n=n, seed=seed, mode=mode, device=device,
                                    progress=progress)
    else:
        result = pairs.evaluate_pairs(gen, dataset, mode=mode, seed=seed, device=device, n=n, progress=progress)
    return {"pretrained": name, **result, "generator": str(gen.path),
            "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "ganctl_version": __version__}


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
