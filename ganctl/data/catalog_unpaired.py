"""The unpaired sets of the catalog (CycleGAN): the official archives, cityscapes, and a generated set.

Plain data, no torch; :mod:`ganctl.data.catalog` builds its entries with :func:`unpaired_entries`.
"""

from __future__ import annotations

from ganctl.data.download import RemoteFile

CYCLEGAN_URL = "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/"
# where the maintainers point since the first host was restricted (the official
# datasets/download_cyclegan_dataset.sh now fetches from here, over http)
CYCLEGAN_MIRROR = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/"

# Names the CycleGAN archives share with the pix2pix ones: the CycleGAN entry is NAME-unpaired in
# the catalog (so 'ganctl download maps' stays the pix2pix archive), and a family that trains on
# unpaired data reads NAME as NAME-unpaired (unpaired_name).
UNPAIRED_SUFFIX = "-unpaired"

# name (the archive is NAME.zip holding NAME/), domains A and B, approximate archive size (bytes; no
# sizes are published), images per split folder, side of the images, source.
# Counts: the official docs/datasets.md gives training counts only, some of them older than the
# archives (horse2zebra: "939 horse images and 1177 zebra images"); the per-folder counts below are
# those commonly reported for the archives (TensorFlow Datasets' cycle_gan builder lists the same;
# horse2zebra's 2,661 images in all and apple2orange's testA 266 / trainB 1,019 agree with the
# Hugging Face copies gigant/horse2zebra and huggan/apple2orange). As they are not the publisher's,
# a download that finds other counts is recorded and reported, not refused.
_CYCLEGAN = (
    ("apple2orange", ("apple", "orange"), 78_000_000,
     {"trainA": 995, "trainB": 1019, "testA": 266, "testB": 248}, 256, "ImageNet ('apple', 'navel orange')"),
    ("summer2winter_yosemite", ("summer Yosemite", "winter Yosemite"), 126_000_000,
     {"trainA": 1231, "trainB": 962, "testA": 309, "testB": 238}, 256, "Flickr"),
    ("horse2zebra", ("horse", "zebra"), 117_000_000,
     {"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140}, 256, "ImageNet ('wild horse', 'zebra')"),
    ("monet2photo", ("Monet painting", "photo"), 291_000_000,
     {"trainA": 1072, "trainB": 6287, "testA": 121, "testB": 751}, 256, "WikiArt and Flickr"),
    ("cezanne2photo", ("Cezanne painting", "photo"), 267_000_000,
     {"trainA": 525, "trainB": 6287, "testA": 58, "testB": 751}, 256, "WikiArt and Flickr"),
    ("ukiyoe2photo", ("ukiyo-e print", "photo"), 279_000_000,
     {"trainA": 562, "trainB": 6287, "testA": 263, "testB": 751}, 256, "WikiArt and Flickr"),
    ("vangogh2photo", ("Van Gogh painting", "photo"), 292_000_000,
     {"trainA": 400, "trainB": 6287, "testA": 400, "testB": 751}, 256, "WikiArt and Flickr"),
    ("maps", ("aerial photo", "Google map"), 1_400_000_000,
     {"trainA": 1096, "trainB": 1096, "testA": 1098, "testB": 1098}, 600, "Google Maps, New York"),
    ("facades", ("facade photo", "label map"), 34_000_000,
     {"trainA": 400, "trainB": 400, "testA": 106, "testB": 106}, 256, "CMP Facade Database (Tylecek & Sara, 2013)"),
    ("iphone2dslr_flower", ("iPhone flower photo", "DSLR flower photo"), 324_000_000,
     {"trainA": 1812, "trainB": 3325, "testA": 569, "testB": 480}, 256, "Flickr"),
    # a few photos the authors test on; its folders are not documented
    ("ae_photos", ("photo",), 10_000_000, {}, 256, "photos by the CycleGAN authors"),
)


def _cyclegan(entry_cls, taken: set[str], name, domains, size, counts, native, source):
    key = name + UNPAIRED_SUFFIX if name in taken else name
    if len(domains) == 2:
        counts_text = "".join(f", {counts[f'{s}A']:,} / {counts[f'{s}B']:,} {s}" for s in ("train", "test") if f"{s}A" in counts)
        summary = f"{domains[0]} | {domains[1]} images, unpaired (CycleGAN){counts_text}, {native}x{native}"
    else:
        summary = f"{domains[0]}s the CycleGAN authors test on (folders undocumented)"
    return entry_cls(
        name=key,
        summary=summary,
        layout="cyclegan",
        channels=3,
        native_size=native,
        classes=(),
        files=(RemoteFile(f"{name}.zip"),),  # no size: only an approximate one is known
        mirrors=(CYCLEGAN_URL, CYCLEGAN_MIRROR),
        source=f"CycleGAN (Zhu et al., 2017) archive of {source}",
        license=f"research use; the terms of the original source apply ({source})",
        image_folder=name,  # the archive holds NAME/trainA/...
        unpaired=True,
        domains=domains,
        expected_counts=counts,
        approx_size=size,
    )


def unpaired_entries(entry_cls, taken: set[str]) -> list:
    """The catalog entries (of class ``entry_cls``) of the unpaired sets; ``taken``: names already used
    by other entries (the pix2pix archives), which the CycleGAN ones then take with -unpaired."""
    return [
        *(_cyclegan(entry_cls, taken, *row) for row in _CYCLEGAN),
        entry_cls(
            name="cityscapes-unpaired",
            summary="Cityscapes photos | label maps for CycleGAN, 2,975 train / 500 test each, 256x256",
            layout="manual",
            channels=3,
            native_size=256,
            classes=(),
            source="Cordts et al. (2016), the Cityscapes dataset",
            license="Cityscapes terms of use: registration required, no redistribution",
            unpaired=True,
            domains=("street photo", "label map"),
            expected_counts={"trainA": 2975, "trainB": 2975, "testA": 500, "testB": 500},
            instructions=(
                "cityscapes cannot be downloaded by ganctl (its licence forbids redistribution; the official "
                "download_cyclegan_dataset.sh refuses it too): register at https://www.cityscapes-dataset.com, "
                "download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, put the photos in trainA/ and "
                "testA/ and their colour label maps in trainB/ and testB/ (train and val cities), "
                "then pass that folder with --dataset PATH"
            ),
        ),
        entry_cls(
            name="synthetic-facades-unpaired",
            summary="synthetic label maps (A) and facade renderings (B), unpaired: 64 + 64 train, "
            "16 aligned test pairs, 256x256",
            layout="generated",
            channels=3,
            native_size=256,
            classes=(),
            source="generated deterministically by ganctl (ganctl.data.synthetic_unpaired, from "
            "ganctl.data.synthetic_facades)",
            license="CC0 (no rights reserved)",
            image_folder="v1",  # bump when the generator's output changes
            unpaired=True,
            domains=("label map", "facade"),
            expected_counts={"trainA": 64, "trainB": 64, "testA": 16, "testB": 16},
        ),
    ]
