"""The datasets ganctl knows by name: where they are published and how to check them.

Plain data, no torch. Checksums are the ones the publishers give (MNIST and Fashion-MNIST publish
MD5s; torchvision's loaders carry the same values). The pix2pix archives have no published
checksums: they are checked by reading them to the end and counting the images of each split, and
the sha256 of what was downloaded is recorded next to the extracted dataset. The CycleGAN archives
(unpaired, ``trainA/ trainB/ testA/ testB/``) have no published checksums either: they are read to
the end, their layout checked, and their sha256 and image counts recorded the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ganctl.core.errors import DatasetError, did_you_mean
from ganctl.core.storedirs import datasets_dir
from ganctl.data.catalog_unpaired import UNPAIRED_SUFFIX, unpaired_entries
from ganctl.data.download import RemoteFile

PACKAGE_DATA = Path(__file__).parent


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    summary: str
    # "idx": gzipped IDX files; "embedded": in the package; "zip": an archive of images;
    # "pix2pix": one NAME.tar.gz of side-by-side A|B images in split folders; "cyclegan": one
    # NAME.zip of NAME/trainA, trainB, testA, testB (unpaired); "generated": made by ganctl on first
    # use; "manual": cannot be downloaded (``instructions`` says how to prepare it)
    layout: str
    channels: int
    native_size: int
    classes: tuple[str, ...]
    files: tuple[RemoteFile, ...] = ()
    mirrors: tuple[str, ...] = ()
    source: str = ""
    license: str = ""
    split_files: dict = field(default_factory=dict)  # split -> (images file, labels file)
    image_folder: str = ""  # "zip", "pix2pix", "generated": the folder of images inside local_dir()
    paired: bool = False  # A|B image pairs (pix2pix), not a set of single images
    default_direction: str = ""  # paired sets: "AtoB" or "BtoA", the translation usually trained
    # paired sets: split -> number of pairs (checked on download); unpaired sets: split folder
    # (trainA...) -> number of images, as commonly reported (recorded, not enforced: see _CYCLEGAN)
    expected_counts: dict = field(default_factory=dict)
    approx_size: int | None = None  # bytes, for listings, when no exact size is published
    instructions: str = ""  # "manual" layout: how to prepare the dataset by hand
    unpaired: bool = False  # two unaligned domains (CycleGAN: trainA/, trainB/...), not pairs nor single images
    domains: tuple[str, ...] = ()  # unpaired sets: what domain A and domain B hold, for messages and pictures

    @property
    def kind(self) -> str:
        """The data kind a family trains on: "pairs", "unpaired", "labelled" or "images"."""
        if self.paired:
            return "pairs"
        if self.unpaired:
            return "unpaired"
        return "labelled" if self.classes else "images"

    @property
    def download_size(self) -> int:
        exact = sum(f.size or 0 for f in self.files)
        return exact or self.approx_size or 0

    @property
    def downloadable(self) -> bool:
        return bool(self.files)

    def local_dir(self) -> Path:
        return PACKAGE_DATA if self.layout == "embedded" else datasets_dir() / self.name

    def data_dir(self) -> Path:
        """The folder that holds the images once the dataset is in the store."""
        return self.local_dir() / self.image_folder if self.image_folder else self.local_dir()

    def is_present(self) -> bool:
        if self.layout == "manual":
            return False
        if self.image_folder:  # zip, pix2pix and generated sets
            # only ever renamed into place whole and verified, so its existence is enough
            return self.data_dir().is_dir()
        return all((self.local_dir() / f.name).is_file() for f in self.files) if self.files else True


_IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"

# name, summary, approximate archive size (the server's listing; no exact sizes or checksums are
# published), pairs per split (the counts commonly cited for the official archives), default
# direction (the one the pix2pix docs and pretrained models use), side of one half, source.
# A is the left half of each image, B the right half.
_PIX2PIX = (
    ("facades", "CMP Facades photo|label pairs, 400 train / 100 val / 106 test, 256x256", 30_000_000,
     {"train": 400, "val": 100, "test": 106}, "BtoA", 256,
     "CMP Facade Database (Tylecek & Sara, 2013)"),
    ("maps", "aerial photo|Google map pairs of New York, 1,096 train / 1,098 val, 600x600", 250_000_000,
     {"train": 1096, "val": 1098}, "BtoA", 600,
     "scraped from Google Maps by the pix2pix authors"),
    ("edges2shoes", "HED edges|photo pairs of shoes, 49,825 train / 200 val, 256x256", 2_200_000_000,
     {"train": 49825, "val": 200}, "AtoB", 256,
     "UT Zappos50K (Yu & Grauman, 2014), edges by HED"),
    ("edges2handbags", "HED edges|photo pairs of handbags, 138,567 train / 200 val, 256x256", 8_600_000_000,
     {"train": 138567, "val": 200}, "AtoB", 256,
     "iGAN handbags (Zhu et al., 2016, from Amazon), edges by HED"),
    ("night2day", "night|day webcam pairs, 17,823 train / 2,287 val / 10,348 test, 256x256", 2_000_000_000,
     {"train": 17823, "val": 2287, "test": 10348}, "AtoB", 256,
     "Transient Attributes (Laffont et al., 2014)"),
)


def _pix2pix(name, summary, size, counts, direction, native, source) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        summary=summary,
        layout="pix2pix",
        channels=3,
        native_size=native,
        classes=(),
        files=(RemoteFile(f"{name}.tar.gz"),),  # no size: only an approximate one is known
        mirrors=(PIX2PIX_URL,),
        source=f"pix2pix (Isola et al., 2017) archive of {source}",
        license=f"research use; the terms of the original source apply ({source})",
        image_folder=name,  # the archive holds NAME/train/..., moved into place as is
        paired=True,
        default_direction=direction,
        expected_counts=counts,
        approx_size=size,
    )


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
        *(_pix2pix(*row) for row in _PIX2PIX),
        CatalogEntry(
            name="cityscapes",
            summary="Cityscapes photo|label pairs for pix2pix, 2,975 train / 500 val, 256x256",
            layout="manual",
            channels=3,
            native_size=256,
            classes=(),
            source="Cordts et al. (2016), the Cityscapes dataset; pairs as made by the pix2pix authors' "
            "datasets/prepare_cityscapes_dataset.py",
            license="Cityscapes terms of use: registration required, no redistribution",
            paired=True,
            default_direction="BtoA",
            expected_counts={"train": 2975, "val": 500},
            instructions=(
                "cityscapes cannot be downloaded by ganctl (its licence forbids redistribution): register at "
                "https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
                "leftImg8bit_trainvaltest.zip, build 512x256 side-by-side photo|label pairs in train/ and val/ "
                "folders (the pix2pix repository's datasets/prepare_cityscapes_dataset.py does this), "
                "then pass that folder with --dataset PATH"
            ),
        ),
        CatalogEntry(
            name="synthetic-facades",
            summary="synthetic facade renderings|label maps, 64 train / 16 val / 16 test, 256x256",
            layout="generated",
            channels=3,
            native_size=256,
            classes=(),
            source="generated deterministically by ganctl (ganctl.data.synthetic_facades, seed 0)",
            license="CC0 (no rights reserved)",
            # bump the version when the generator's output changes, so stale copies are not used
            image_folder="v1",
            paired=True,
            default_direction="BtoA",  # A = rendering (left), B = label map (right), as in facades
            expected_counts={"train": 64, "val": 16, "test": 16},
        ),
        *unpaired_entries(CatalogEntry, {row[0] for row in _PIX2PIX}),
    )
}


def get(name: str) -> CatalogEntry:
    if name not in CATALOG:
        raise did_you_mean("dataset", name, sorted(CATALOG))
    return CATALOG[name]


def is_path_like(spec: str) -> bool:
    """Catalog names win over a same-named folder in the current directory; './name' is a path."""
    if spec in CATALOG:
        return False
    return "/" in spec or "\\" in spec or spec.startswith((".", "~")) or Path(spec).exists()


def check_spec(spec: str, paired: bool | None = None) -> None:
    """The checks of a ``--dataset`` value that read no image (and need no torch): a catalog name,
    or a folder that exists; with ``paired``, a catalog set of that kind (pairs for pix2pix)."""
    if is_path_like(spec):
        path = Path(spec).expanduser()
        if not path.exists():
            raise DatasetError(f"dataset folder {spec} does not exist")
        if not path.is_dir():
            raise DatasetError(f"--dataset {spec} is a file: give a folder of images (or a dataset name)")
        return
    if spec not in CATALOG:
        err = did_you_mean("dataset", spec, sorted(CATALOG))
        raise DatasetError(f"{err} Or give the path of a folder of images.")
    entry = CATALOG[spec]
    if entry.unpaired and paired is not None:
        raise DatasetError(f"{spec} is an unpaired set (domains A and B, no pairs) for CycleGAN: "
                           f"'ganctl train cyclegan --dataset {spec}'")
    if paired is True and not entry.paired:
        raise DatasetError(f"{spec} holds single images, not pairs: pix2pix trains on {', '.join(paired_names())}, "
                           "or a folder of pairs")
    if paired is False and entry.paired:
        raise DatasetError(f"{spec} is a set of image pairs for pix2pix: 'ganctl train pix2pix --dataset {spec}'")


def paired_names() -> list[str]:
    return sorted(n for n, e in CATALOG.items() if e.paired)


def unpaired_names() -> list[str]:
    return sorted(n for n, e in CATALOG.items() if e.unpaired)


def unpaired_name(name: str) -> str:
    """The catalog name of the unpaired set ``name`` means for a family that trains on unpaired data:
    ``maps`` and ``facades`` are the pix2pix archives in the catalog, ``maps-unpaired`` and
    ``facades-unpaired`` the CycleGAN ones; any other name is itself."""
    twin = name + UNPAIRED_SUFFIX
    return twin if twin in CATALOG and CATALOG[twin].unpaired else name


def mirrors_for(entry: CatalogEntry, mirror: str | None = None, remote: RemoteFile | None = None) -> list[str]:
    """Base URLs to try for ``remote`` (or for the entry as a whole).

    An explicit --mirror (or GANCTL_MIRROR) replaces the published ones. A file published at its
    own URL is fetched from that URL first, then from the entry's mirrors.
    """
    mirror = mirror or os.environ.get("GANCTL_MIRROR")
    if mirror:
        return [mirror]
    if remote is not None and remote.url:
        return [remote.url, *entry.mirrors]
    return list(entry.mirrors) or [f.url for f in entry.files if f.url][:1]
