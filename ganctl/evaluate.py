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

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganctl import __version__, checkpoint, inference, store
from ganctl.data import catalog, datasets
from ganctl.data.datasets import ImageData
from ganctl.errors import CheckpointError, DatasetError, GanctlError

ProgressFn = Callable[[str], None]

CLASSIFIER_FILE = "classifier.safetensors"
# bump when the network or its training changes: cached classifiers of another version are retrained
CLASSIFIER_VERSION = 1
CLASSIFIER_SEED = 0
FEATURE_DIM = 128
HOLDOUT_EVERY = 10  # folders: every 10th image of each class is held out as the test split
# about 120,000 training samples at most: 2 epochs of MNIST (about a minute on 2 CPU cores),
# 15 epochs of digits' 1,500 images
SAMPLE_BUDGET = 120_000
MAX_EPOCHS = 15
MIN_EPOCHS = 2
BATCH = 128
LR = 2e-3
FEATURE_BATCH = 500

UNLABELLED = (
    "evaluate needs a labelled dataset to train its classifier on, and {what} has no class labels: "
    "it works for runs trained on digits, mnist, fashion-mnist or a folder with one sub-folder per class"
)


# ---------------------------------------------------------------- Frechet distance


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix; rounding's tiny negative
    eigenvalues are clamped to 0 (sample covariances of N < D points are singular)."""
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of two feature sets (N, D) and (M, D):
    ||mu_a - mu_b||^2 + Tr(Sa + Sb - 2 (Sa^1/2 Sb Sa^1/2)^1/2), as in FID (Heusel et al., 2017).

    Computed in float64 with symmetric eigendecompositions (the symmetric form of the matrix
    square root: scipy's general sqrtm is not needed and can return complex noise).
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("a covariance needs at least 2 samples in each feature set")
    a = a.detach().to("cpu", torch.float64)
    b = b.detach().to("cpu", torch.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = a - mu_a, b - mu_b
    cov_a = ca.T @ ca / (a.shape[0] - 1)  # unbiased, as numpy.cov in the FID reference code
    cov_b = cb.T @ cb / (b.shape[0] - 1)
    root_a = _sqrt_psd(cov_a)
    inner = root_a @ cov_b @ root_a
    inner = (inner + inner.T) / 2  # symmetric up to rounding; make it exactly so for eigh
    trace_sqrt = torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum()
    d = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(float(d), 0.0)


# ---------------------------------------------------------------- the classifier


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DatasetClassifier(nn.Module):
    """A small CNN for [-1, 1] images of any size from 8 px, 1 or 3 channels.

    Three conv-BN-ReLU blocks (16, 32, 64 channels) with two 2x2 poolings, an adaptive pool to
    2x2, then a 128-d feature layer and a linear head. Images wider than 32 px are average-pooled
    to 32 px first: class evidence in these datasets survives that, and it keeps training cheap.
    """

    MAX_SIZE = 32

    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 16, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(channels, width),
            nn.MaxPool2d(2),
            _conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            _conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.embed = nn.Sequential(nn.Linear(16 * width, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations (N, 128): the space the Frechet distance is measured in."""
        if x.shape[-1] > self.MAX_SIZE or x.shape[-2] > self.MAX_SIZE:
            x = F.adaptive_avg_pool2d(x, self.MAX_SIZE)
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the generators' range (as the training loop does)."""
    return images.float().div_(127.5).sub_(1.0) if images.dtype == torch.uint8 else images.float()


def _memory_format(device: torch.device) -> torch.memory_format:
    # NHWC convolutions: 1.3-1.45x faster for this network on a CPU (oneDNN, measured at 28 and
    # 32 px, batch 128), and the usual layout for cuDNN
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def _on(model: DatasetClassifier, device: torch.device) -> DatasetClassifier:
    return model.to(device).to(memory_format=_memory_format(device))


def _batch(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return _to_float(images).to(device).contiguous(memory_format=_memory_format(device))


@torch.no_grad()
def _features_and_logits(model: DatasetClassifier, images: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    feats, logits = [], []
    for chunk in images.split(FEATURE_BATCH):
        f = model.features(_batch(chunk, device))
        feats.append(f.cpu())
        logits.append(model.head(f).cpu())
    return torch.cat(feats), torch.cat(logits)


# ---------------------------------------------------------------- real data


@dataclass
class RealSplits:
    dataset: str
    train: ImageData
    test: ImageData
    classes: tuple[str, ...]
    fingerprint: str | None  # folders: a hash of the training images, so an edited folder retrains


def dataset_key(dataset: str) -> str:
    """A file-name-safe cache key: the catalog name, or the folder name plus a hash of its path."""
    if not datasets.is_path_like(dataset):
        return dataset
    path = str(Path(dataset).expanduser().resolve())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).name).strip("-.")[:40] or "folder"
    return f"{slug}-{hashlib.sha256(path.encode()).hexdigest()[:10]}"


def classifier_dir(dataset: str, image_size: int, channels: int) -> Path:
    return store.home() / "evaluators" / f"{dataset_key(dataset)}-{image_size}px-{channels}ch"


def _holdout(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A test mask: every 10th image of each class in file order, at least one per class that
    has two or more images (a class of one image stays in training)."""
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(num_classes):
        idx = (labels == c).nonzero().flatten()
        if len(idx) < 2:
            continue
        pick = idx[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY]
        mask[pick if len(pick) else idx[-1:]] = True
    return mask


def _subset(data: ImageData, mask: torch.Tensor) -> ImageData:
    labels = data.labels[mask] if data.labels is not None else None
    return ImageData(data.name, data.images[mask].contiguous(), labels, data.classes, data.source)


def _fingerprint(data: ImageData) -> str:
    h = hashlib.sha256()
    h.update(data.images.contiguous().numpy().tobytes())
    h.update(data.labels.numpy().tobytes())
    h.update(json.dumps(list(data.classes)).encode())
    return h.hexdigest()[:16]


def load_splits(dataset: str, image_size: int, channels: int, progress: ProgressFn | None = None) -> RealSplits:
    """The labelled train and test splits of a catalog dataset or a class-folder dataset."""
    if datasets.is_path_like(dataset):
        data = datasets.load(dataset, image_size, channels, warn=progress)
        if data.labels is None or not data.classes:
            raise DatasetError(UNLABELLED.format(what=f"the folder {dataset} (its images are not sorted into two or more class sub-folders)"))
        test = _holdout(data.labels, len(data.classes))
        if int(test.sum()) < 2:
            raise DatasetError(
                f"{dataset} has too few images to hold some out for testing: "
                "evaluate needs at least two images in some class sub-folders"
            )
        train = _subset(data, ~test)
        return RealSplits(dataset, train, _subset(data, test), data.classes, _fingerprint(train))
    entry = catalog.CATALOG.get(dataset)
    if entry is not None and not entry.classes:
        raise DatasetError(UNLABELLED.format(what=dataset))
    train = datasets.load(dataset, image_size, channels, split="train", warn=progress)
    test = datasets.load(dataset, image_size, channels, split="test", warn=progress)
    return RealSplits(dataset, train, test, tuple(train.classes), None)


# ---------------------------------------------------------------- training and the cache


def classifier_epochs(n_train: int) -> int:
    return max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(SAMPLE_BUDGET / max(n_train, 1))))


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light augmentation: a random translation of up to 1/8 of the image per sample."""
    n = x.shape[0]
    t = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.25  # grid units: 2 = the whole image
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = t
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _accuracy(model: DatasetClassifier, data: ImageData, device: torch.device) -> float:
    _, logits = _features_and_logits(model, data.images, device)
    return float((logits.argmax(1) == data.labels).float().mean())


def _new_classifier(channels: int, num_classes: int) -> DatasetClassifier:
    # its initial weights come from a fixed seed, not the global random stream: building one in
    # the middle of a training run must not change that run's noise (exact resume)
    with inference.seeded_rng("cpu", CLASSIFIER_SEED):  # built on the CPU, then moved
        return DatasetClassifier(channels, num_classes)


def train_classifier(splits: RealSplits, device: torch.device, progress: ProgressFn | None = None) -> tuple[DatasetClassifier, dict]:
    """Train the classifier on the training split: Adam, a fixed seed, a bounded sample budget.

    It uses no global random state (its own seeded generators), so calling it in the middle of a
    training run leaves that run's random stream, and so its exact resume, untouched.
    """
    t0 = time.perf_counter()
    train = splits.train
    num_classes = len(splits.classes)
    model = _on(_new_classifier(train.channels, num_classes), device).train()
    gen = torch.Generator().manual_seed(CLASSIFIER_SEED)
    epochs = classifier_epochs(len(train))
    steps = epochs * math.ceil(len(train) / BATCH)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    images, labels = train.images, train.labels
    correct = seen = 0
    for epoch in range(epochs):
        perm = torch.randperm(len(train), generator=gen)
        correct = seen = 0
        for idx in perm.split(BATCH):
            x = _shift(_to_float(images[idx]).to(device), gen).contiguous(memory_format=_memory_format(device))
            y = labels[idx].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        if progress and (epochs <= 5 or (epoch + 1) % 5 == 0):
            progress(f"  classifier epoch {epoch + 1}/{epochs}: training accuracy {correct / seen:.3f}")
    model.eval()
    info = {
        "dataset": splits.dataset,
        "image_size": train.image_size,
        "channels": train.channels,
        "classes": list(splits.classes),
        "train_accuracy": round(correct / max(seen, 1), 4),  # last epoch, on augmented batches
        "test_accuracy": round(_accuracy(model, splits.test, device), 4),
        "epochs": epochs,
        "train_images": len(train),
        "test_images": len(splits.test),
        "seconds": round(time.perf_counter() - t0, 1),
        "fingerprint": splits.fingerprint,
        "classifier_version": CLASSIFIER_VERSION,
        "ganctl_version": __version__,
    }
    return model, info


def _load_cached(path: Path, splits: RealSplits, device: torch.device) -> tuple[DatasetClassifier, dict] | None:
    """The cached classifier if it is readable and made for exactly these data; else None."""
    meta = checkpoint.read_meta(path)  # CheckpointError when unreadable
    expected = {
        "image_size": splits.train.image_size,
        "channels": splits.train.channels,
        "classes": list(splits.classes),
        "fingerprint": splits.fingerprint,
        "classifier_version": CLASSIFIER_VERSION,
    }
    if any(meta.get(k) != v for k, v in expected.items()):
        return None
    model = _new_classifier(splits.train.channels, len(splits.classes))
    checkpoint.load_weights(path, model)
    return _on(model, device).eval(), meta


def _classifier_for(splits: RealSplits, device: torch.device, progress: ProgressFn | None) -> tuple[DatasetClassifier, dict]:
    path = classifier_dir(splits.dataset, splits.train.image_size, splits.train.channels) / CLASSIFIER_FILE
    if path.is_file():
        try:
            found = _load_cached(path, splits, device)
        except CheckpointError as e:
            found = None
            if progress:
                progress(f"the cached classifier is unreadable ({e}): training it again")
        if found is not None:
            model, meta = found
            return model, {**meta, "path": str(path), "cached": True}
        if progress and path.is_file():
            progress(f"the cached classifier {path} was made for other data: training it again")
    if progress:
        name = Path(splits.dataset).name if datasets.is_path_like(splits.dataset) else splits.dataset
        progress(
            f"training the {name} classifier at {splits.train.image_size}px on {len(splits.train):,} images "
            "(cached for next time)..."
        )
    model, meta = train_classifier(splits, device, progress)
    store.ensure_cache_dir(path.parent.parent)  # re-creatable: tagged for backup tools to skip
    checkpoint.save_weights(path, model, meta)  # atomic: temp file, then rename
    if progress:
        progress(f"classifier trained in {meta['seconds']:.1f}s: test accuracy {meta['test_accuracy']:.3f}")
    return model, {**meta, "path": str(path), "cached": False}


def get_classifier(
    dataset: str,
    image_size: int,
    channels: int,
    classes: tuple[str, ...] | None,
    device: torch.device | str,
    progress: ProgressFn | None = None,
) -> tuple[DatasetClassifier, dict]:
    """The classifier for (dataset, size, channels): from the store's cache, or trained and cached.

    ``classes``, when given, must be the dataset's class names (as a generator's metadata holds
    them); a dataset whose classes changed since is refused.
    """
    splits = load_splits(dataset, image_size, channels, progress)
    _check_classes(splits, classes)
    return _classifier_for(splits, torch.device(device), progress)


def _check_classes(splits: RealSplits, classes) -> None:
    if classes and tuple(classes) != splits.classes:
        raise DatasetError(
            f"the classes of {splits.dataset} ({', '.join(splits.classes)}) are not the ones the model was "
            f"trained with ({', '.join(classes)}): restore the dataset as it was, or train the model again"
        )


# ---------------------------------------------------------------- evaluation


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
    splits = load_splits(dataset, size, channels, progress)
    model, info = _classifier_for(splits, device, progress)
    f_test, _ = _features_and_logits(model, splits.test.images, device)
    # the floor: real training images, as many as generated (when there are that many)
    pick = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))[:n]
    f_train, _ = _features_and_logits(model, splits.train.images[pick], device)
    return _Reference(splits, model, info, f_test, f_train)


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
    if meta.get("arch") == "pix2pix" or not meta.get("z_dim"):
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
    splits, model, info = ref.splits, ref.model, ref.info
    if conditional:
        _check_classes(splits, meta.get("classes"))
    elif meta.get("classes") and tuple(meta["classes"]) != splits.classes and progress:
        progress(f"note: the classes of {dataset} changed since this model was trained")
    num_classes = len(splits.classes)

    labels = torch.arange(n) % num_classes if conditional else None
    z = inference.latents(n, gen.z_dim, seed)
    if progress:
        what = f"{n:,} images{' (labels balanced over the classes)' if conditional else ''}"
        progress(f"generating {what} with {gen.path.parent.name or 'the generator'}")
    fake = inference.generate(gen, z, labels)
    if tuple(fake.shape[1:]) != (channels, size, size):
        raise CheckpointError(f"{gen.path} generates {tuple(fake.shape[1:])} images, its metadata says ({channels}, {size}, {size})")

    f_fake, logits = _features_and_logits(model, fake.clamp(-1, 1), device)
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
    device = torch.device(device)
    if checkpoint_path is None:
        path = inference.generator_file(run)
    else:
        path = Path(checkpoint_path).expanduser()
        in_run = run.path / "checkpoints" / str(checkpoint_path)
        if not path.exists() and not path.is_absolute() and in_run.is_dir():
            path = in_run
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
    store.atomic_write_json(out, result)
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
