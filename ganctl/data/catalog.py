"""The datasets ganctl knows by name: where they are published and how to check them.

Plain data, no torch. Checksums are the ones the publishers give (MNIST and Fashion-MNIST publish
MD5s; torchvision's loaders carry the same values).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ganctl.data.download import RemoteFile
from ganctl.errors import did_you_mean
from ganctl.store import datasets_dir

PACKAGE_DATA = Path(__file__).parent


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    summary: str
    layout: str  # "idx": gzipped IDX files; "embedded": in the package; "zip": an archive of images
    channels: int
    native_size: int
    classes: tuple[str, ...]
    files: tuple[RemoteFile, ...] = ()
    mirrors: tuple[str, ...] = ()
    source: str = ""
    license: str = ""
    split_files: dict = field(default_factory=dict)  # split -> (images file, labels file)
    image_folder: str = ""  # "zip" layout: the folder of images inside the extracted archive

    @property
    def download_size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def downloadable(self) -> bool:
        return bool(self.files)

    def local_dir(self) -> Path:
        return PACKAGE_DATA if self.layout == "embedded" else datasets_dir() / self.name

    def is_present(self) -> bool:
        if self.layout == "zip":
            return (self.local_dir() / self.image_folder).is_dir()
        return all((self.local_dir() / f.name).is_file() for f in self.files) if self.files else True


_IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry(
            name="digits",
            summary="UCI handwritten digits, 1,797 8x8 grayscale images, 10 classes (ships with ganctl)",
            layout="embedded",
            channels=1,
            native_size=8,
            classes=tuple(str(i) for i in range(10)),
            source="UCI ML hand-written digits (Alpaydin & Kaynak, 1998), as copied in scikit-learn",
            license="CC BY 4.0",
            split_files={"all": ("digits-images-idx3-ubyte.gz", "digits-labels-idx1-ubyte.gz")},
        ),
        CatalogEntry(
            name="mnist",
            summary="MNIST handwritten digits, 70,000 28x28 grayscale images, 10 classes",
            layout="idx",
            channels=1,
            native_size=28,
            classes=tuple(str(i) for i in range(10)),
            files=(
                RemoteFile("train-images-idx3-ubyte.gz", 9912422, "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                RemoteFile("train-labels-idx1-ubyte.gz", 28881, "md5:d53e105ee54ea40749a09fcbcd1e9432"),
                RemoteFile("t10k-images-idx3-ubyte.gz", 1648877, "md5:9fb629c4189551a2d022fa330f9573f3"),
                RemoteFile("t10k-labels-idx1-ubyte.gz", 4542, "md5:ec29112dd5afa0611ce80d1b7f02629c"),
            ),
            mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
            source="Y. LeCun, C. Cortes, C. Burges",
            license="CC BY-SA 3.0",
            split_files=_IDX_SPLITS,
        ),
        CatalogEntry(
            name="fashion-mnist",
            summary="Zalando Fashion-MNIST, 70,000 28x28 grayscale images, 10 classes",
            layout="idx",
            channels=1,
            native_size=28,
            classes=(
                "t-shirt", "trouser", "pullover", "dress", "coat",
                "sandal", "shirt", "sneaker", "bag", "ankle-boot",
            ),
            files=(
                RemoteFile("train-images-idx3-ubyte.gz", 26421880, "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                RemoteFile("train-labels-idx1-ubyte.gz", 29515, "md5:25c81989df183df01b3e8a0aad5dffbe"),
                RemoteFile("t10k-images-idx3-ubyte.gz", 4422102, "md5:bef4ecab320f06d8554ea6380940ec79"),
                RemoteFile("t10k-labels-idx1-ubyte.gz", 5148, "md5:bb300cfdad3c16e7a12a480ee83cd310"),
            ),
            mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            source="Xiao, Rasul & Vollgraf (2017), Zalando Research",
            license="MIT",
            split_files=_IDX_SPLITS,
        ),
        CatalogEntry(
            name="celeba",
            summary="CelebA aligned faces, 202,599 178x218 RGB photos (trained centre-cropped, 64x64)",
            layout="zip",
            channels=3,
            native_size=178,
            classes=(),
            files=(
                # published on Google Drive only (torchvision uses the same file id and MD5);
                # --mirror URL fetches <URL>/img_align_celeba.zip instead
                RemoteFile(
                    "img_align_celeba.zip",
                    None,
                    "md5:00d2c5bc6d35e252742224ab0c1e8fcb",
                    url="https://drive.usercontent.google.com/download?id=0B7EVK8r0v71pZjFTYXZWM3FlRnM&export=download&confirm=t",
                ),
            ),
            source="Liu, Luo, Wang & Tang (2015), CUHK Multimedia Lab",
            license="non-commercial research use only (see the CelebA agreement)",
            image_folder="img_align_celeba",
        ),
    )
}


def get(name: str) -> CatalogEntry:
    if name not in CATALOG:
        raise did_you_mean("dataset", name, sorted(CATALOG))
    return CATALOG[name]


def mirrors_for(entry: CatalogEntry, mirror: str | None = None) -> list[str]:
    """Base URLs to try: an explicit --mirror (or GANCTL_MIRROR) replaces the published ones."""
    mirror = mirror or os.environ.get("GANCTL_MIRROR")
    if mirror:
        return [mirror]
    return list(entry.mirrors) or [f.url for f in entry.files if f.url][:1]
