"""The Inception-v3 weights that FID, KID and precision/recall are measured with, fetched by
ganctl's one downloader (:mod:`ganctl.data.download`: resume, retries, ``--mirror``) into the store.

The file is the standard port of the TensorFlow FID Inception graph (``2015-12-05``) to PyTorch that
pytorch-fid publishes as ``pt_inception-2015-12-05-6726825d.pth`` and torch-fidelity as
``weights-inception-2015-12-05-6726825d.pth`` (the same bytes). Neither library pins a full
checksum in its code: both name the file the way ``torch.hub`` does, with the first 8 hex digits of
its sha256 (``6726825d``), which ``torch.hub.load_state_dict_from_url(check_hash=True)`` checks. The
full sha256 and size pinned below are the ones independent projects that vendor the file record
for it (and they begin with those 8 digits).

A downloaded file is accepted only when its size and sha256 match and it loads (safely:
``torch.load(weights_only=True)``) as exactly the state dict torch-fidelity's
``FeatureExtractorInceptionV3`` holds; anything else is deleted, so the store never keeps a file
that evaluate would then fail on. torch-fidelity is never asked to download anything itself.

Torch-free at import: ``ganctl download`` lists and fetches through it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganctl.core.errors import CheckpointError, GanctlError
from ganctl.core.paths import home
from ganctl.core.storedirs import ensure_cache_dir, remove_if_empty
from ganctl.data.download import ProgressFn, RemoteFile, download


class MissingWeightsError(GanctlError):
    pass


@dataclass(frozen=True)
class FeatureWeights:
    name: str  # what 'ganctl download NAME' takes
    file: str  # the published file name, kept as is in the store
    size: int
    sha256: str
    urls: tuple[str, ...]  # tried in turn; --mirror URL replaces them (it serves the same file name)
    description: str

    @property
    def remote(self) -> RemoteFile:
        # a base URL serves <base>/<file>; the last published URL is the file itself (another name)
        return RemoteFile(self.file, self.size, f"sha256:{self.sha256}", url=self.urls[-1])


INCEPTION = FeatureWeights(
    name="inception",
    file="pt_inception-2015-12-05-6726825d.pth",
    size=95_628_359,
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    urls=(
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/",
        # the same bytes under torch-fidelity's name
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    ),
    description="Inception-v3 of TensorFlow's FID (pytorch-fid / torch-fidelity port), for FID, KID and precision/recall",
)

CATALOG: dict[str, FeatureWeights] = {INCEPTION.name: INCEPTION}


def weights_dir() -> Path:
    """Not under evaluators/: those are caches 'ganctl rm --cache' deletes, these are a download."""
    return home() / "weights"


def path_of(w: FeatureWeights) -> Path:
    return weights_dir() / w.file


def is_present(w: FeatureWeights) -> bool:
    return path_of(w).is_file()


def require(name: str = INCEPTION.name) -> tuple[Path, FeatureWeights]:
    """The weights file in the store and its catalog entry, or a one-line error that says how to get it."""
    w = CATALOG[name]
    path = path_of(w)
    if not path.is_file():
        raise MissingWeightsError(
            f"the {w.name} weights are not in the store: run 'ganctl download {w.name}' "
            f"(or 'ganctl download {w.name} --mirror URL' where a mirror serves {w.file})"
        )
    return path, w


def _bases(w: FeatureWeights, mirror: str | None) -> list[str]:
    mirror = mirror or os.environ.get("GANCTL_MIRROR")
    return [mirror] if mirror else list(w.urls)


def fetch(
    name: str = INCEPTION.name,
    mirror: str | None = None,
    progress_for: Callable[[str], ProgressFn] | None = None,
) -> Path:
    """Download the weights ``name`` into the store (verified: size, sha256, and that they load as
    the network); return their path. Already there: returned as they are."""
    w = CATALOG[name]
    final = path_of(w)
    if final.is_file():
        return final
    # downloaded beside the final name, renamed onto it only once it has loaded as the network; an
    # interrupted transfer stays as '<file>.unchecked.incomplete' and the next run resumes it
    staged = final.with_name(final.name + ".unchecked")
    from ganctl.evaluation import fidelity

    fidelity.library()  # the check needs torch-fidelity: say so before 95 MB are fetched
    try:
        if not staged.is_file():  # a complete one (size and sha256 checked) is left only by a stopped check
            download(w.remote, _bases(w, mirror), staged, progress=progress_for(w.file) if progress_for else None)
        try:
            check_inception_file(staged)
        except CheckpointError as e:
            staged.unlink(missing_ok=True)
            raise CheckpointError(f"the downloaded {w.file} is not the Inception network ({e}): it was deleted; "
                                  "run the same command again, or pass --mirror URL") from e
        ensure_cache_dir(weights_dir())  # re-downloadable: tagged for backup tools to skip
        os.replace(staged, final)
        return final
    finally:  # a failed download leaves no empty folder behind (a partial file, kept to resume, stays)
        remove_if_empty(weights_dir())


def check_inception_file(path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` holds only tensors (read with
    ``torch.load(weights_only=True)``, so no pickled code runs) and builds torch-fidelity's Inception
    network (strict: the same keys and shapes). Needs torch-fidelity."""
    import pickle
    import zipfile

    import torch

    from ganctl.evaluation import fidelity

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as e:
        raise CheckpointError(f"unreadable: {_first_line(e)}") from e
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("not a state dict of tensors")
    del state
    try:
        fidelity.inception_extractor(path, torch.device("cpu"))
    except RuntimeError as e:  # load_state_dict(strict=True): missing, unexpected or mis-shaped tensors
        raise CheckpointError(f"does not fit the network: {_first_line(e)}") from e


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return " ".join(lines[:2])[:240] if lines else type(e).__name__
