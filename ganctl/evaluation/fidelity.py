"""FID, KID and precision/recall computed by torch-fidelity (the ``metrics`` extra), in any feature
space: its own Inception-v3 (``inception-v3-compat``) or a custom feature extractor such as
ganctl's dataset classifier.

ganctl hands the library uint8 images (a ``Dataset``), its feature extractor, and takes the
features back through ``torch_fidelity.utils.get_featuresdict_from_dataset``: the very function
``torch_fidelity.calculate_metrics`` uses. The numbers come from the library's own metric functions
(``fid_statistics_to_metric``, ``kid_features_to_metric``, ``prc_features_to_metric``) with its
defaults, so a ganctl number equals ``calculate_metrics`` on the same images and weights. ganctl
adds only what the library leaves to its caller: where the images and weights come from, and the
cache of the real side's features (:mod:`.reference`).

Why torch-fidelity rather than torchmetrics: it takes a weights path
(``feature_extractor_weights_path``), so ganctl's downloader owns the file; its Inception resizes
inside the network exactly as TensorFlow 1.x did for the original FID code, so its FID is
comparable with the published numbers (torchmetrics wraps this same extractor); it computes FID,
KID and precision/recall from one set of features; and it accepts a custom feature extractor.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ganctl.core.errors import GanctlError

PIP_COMMAND = "pip install 'torch-fidelity>=0.4,<0.5'"  # a dependency of ganctl; only a damaged environment lacks it
INCEPTION = "inception-v3-compat"
INCEPTION_LAYER = "2048"  # the pool3 features FID is defined on
KID_SUBSETS = 100  # torch-fidelity's defaults (Binkowski et al., 2018: 100 subsets of 1,000)
KID_SUBSET_SIZE = 1000
PRC_NEIGHBORHOOD = 3  # Kynkaenniemi et al. (2019): k = 3
RNG_SEED = 2020  # torch-fidelity's default seed for choosing KID's subsets
BATCH = 64  # torch-fidelity's default batch size

# how the numbers are made, saved with each of them
KID_KERNEL = "polynomial, degree 3, gamma 1/dim, coef0 1 (Binkowski et al., 2018)"
INCEPTION_RESIZE = (
    "torch-fidelity's TensorFlow-1.x-compatible bilinear resize to 299x299 (no antialiasing), inside "
    "the network, as the original TensorFlow FID code resized"
)


class MissingDependencyError(GanctlError):
    """torch-fidelity is a dependency of ganctl; an install that lacks it (a --no-deps install, or a
    package removed afterwards) gets this one line naming the pip command."""


def library():
    """The torch_fidelity module, or a one-line error naming the pip command that installs it."""
    try:
        import torch_fidelity
    except ImportError as e:
        raise MissingDependencyError(
            f"FID, KID and precision/recall need torch-fidelity, which is not installed: run {PIP_COMMAND}"
        ) from e
    return torch_fidelity


def version() -> str:
    return f"torch-fidelity {library().__version__}"


def inception_extractor(weights: Path, device: torch.device):
    """torch-fidelity's Inception-v3 with the weights file ``weights`` (never its own download)."""
    library()
    from torch_fidelity.utils import create_feature_extractor

    fe = create_feature_extractor(INCEPTION, [INCEPTION_LAYER], cuda=False,
                                  feature_extractor_weights_path=str(weights), verbose=False)
    return fe.to(_run_on(device))


def _run_on(device: torch.device) -> torch.device:
    # the library moves batches to the GPU or leaves them on the CPU: no other device
    return device if device.type == "cuda" else torch.device("cpu")


class UInt8Images(Dataset):
    """(N, C, H, W) uint8 images as the library reads them; with ``rgb``, grayscale images are
    replicated to 3 channels (what PIL's convert('RGB') does to a grayscale file)."""

    def __init__(self, images: torch.Tensor, rgb: bool):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected (N, C, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
        self.images, self.rgb = images, rgb

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1).contiguous() if self.rgb and x.shape[0] == 1 else x


def features(extractor, data: Dataset, device: torch.device, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The features ``layers`` of every image of ``data`` (uint8 tensors), on the CPU, through the
    library's own loop (no worker processes: ``save_cpu_ram``)."""
    library()
    from torch_fidelity.utils import get_featuresdict_from_dataset

    # the library's DataLoader draws a seed from the global random stream: keep a training run's
    # stream (and so its exact resume) as it was
    with torch.random.fork_rng(devices=[]):
        found = get_featuresdict_from_dataset(data, extractor, BATCH, _run_on(device).type == "cuda", True, False)
    return {k: found[k] for k in layers}


def kid_subset_size(*counts: int) -> int:
    """The library's subset size of 1,000, or the smaller sample's size when there are fewer."""
    return min(KID_SUBSET_SIZE, *counts)


def frechet(fake: torch.Tensor, real: torch.Tensor) -> float:
    """The library's Frechet distance between Gaussian fits of two feature sets (N, D)."""
    library()
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    if fake.ndim != 2 or real.ndim != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {tuple(fake.shape)} and {tuple(real.shape)}")
    if fake.shape[0] < 2 or real.shape[0] < 2:
        raise ValueError("a covariance needs at least 2 samples in each feature set")
    dtype = torch.float64 if torch.float64 in (fake.dtype, real.dtype) else torch.float32
    stats = [fid_features_to_statistics(f.detach().cpu().to(dtype)) for f in (fake, real)]
    return float(fid_statistics_to_metric(stats[0], stats[1], False)[KEY_METRIC_FID])


def kid(fake: torch.Tensor, real: torch.Tensor, subset_size: int | None = None) -> tuple[float, float]:
    """The library's KID: mean and standard deviation of the unbiased MMD^2 over ``KID_SUBSETS``
    random subsets (polynomial kernel)."""
    library()
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    size = subset_size or kid_subset_size(len(fake), len(real))
    out = kid_features_to_metric(fake.detach().cpu().float(), real.detach().cpu().float(), kid_subsets=KID_SUBSETS,
                                 kid_subset_size=size, rng_seed=RNG_SEED, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def precision_recall(fake: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
    """The library's improved precision and recall (Kynkaenniemi et al., 2019), k = 3."""
    library()
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    out = prc_features_to_metric(fake.detach().cpu().float(), real.detach().cpu().float(),
                                 prc_neighborhood=PRC_NEIGHBORHOOD, verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def all_scores(fake: torch.Tensor, real: torch.Tensor) -> dict:
    """FID, KID (mean, std) and precision/recall of generated features against real ones."""
    if len(fake) < 2 or len(real) < 2:
        raise GanctlError("FID needs at least 2 images on each side (a covariance needs two samples)")
    size = kid_subset_size(len(fake), len(real))
    kid_mean, kid_std = kid(fake, real, size)
    out = {"frechet_distance": frechet(fake, real), "kid_mean": kid_mean, "kid_std": kid_std, "kid_subset_size": size}
    if min(len(fake), len(real)) > PRC_NEIGHBORHOOD:
        out["precision"], out["recall"] = precision_recall(fake, real)
    return out


def folder_dataset(folder: Path) -> Dataset:
    """The images of ``folder`` (png, jpg, jpeg; not its sub-folders) as the library reads a folder:
    files sorted by path, each converted to RGB by PIL, at its own size."""
    library()
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.defaults import DEFAULTS
    from torch_fidelity.utils import glob_samples_paths

    files = glob_samples_paths(str(folder), False, DEFAULTS["samples_find_ext"], None, False)
    if len(files) < 2:
        raise GanctlError(f"{folder} holds {len(files)} images (png, jpg, jpeg): FID needs at least 2")
    return ImagesPathDataset(files)


def compare_folders(fake: Path, real: Path, weights: Path, device: torch.device | str = "cpu") -> dict:
    """FID, KID and precision/recall of the images in folder ``fake`` against those in ``real``, on
    Inception-v3 pool features with the weights file ``weights``."""
    device = torch.device(device)
    net = inception_extractor(weights, device)
    f_fake = features(net, folder_dataset(Path(fake)), device, (INCEPTION_LAYER,))[INCEPTION_LAYER]
    f_real = features(net, folder_dataset(Path(real)), device, (INCEPTION_LAYER,))[INCEPTION_LAYER]
    return all_scores(f_fake, f_real)
