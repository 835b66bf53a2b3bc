"""How tests/data/legacy-runs was made: runs in the layout of ganctl before the redesign (a3d9e21).

    git archive a3d9e21 | tar -x -C /tmp/old && cd /tmp/old && PYTHONPATH=. python make.py /tmp/legacy

runs/ was then copied here without samples/, losses.png and .lock; of run dcgan/old-2epochs only
its epoch_0002 weights were kept, as reference/dcgan-2epochs-*.safetensors.
"""

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
os.environ["GANCTL_HOME"] = str(out / "home")

import torch  # noqa: E402

from ganctl import engine, runtime, store  # noqa: E402
from ganctl.config import make_config  # noqa: E402
from ganctl.data import catalog, datasets, fetch, paired  # noqa: E402

CPU = runtime.Runtime(torch.device("cpu"), "fp32")
data = datasets.load("digits", 16)
data.images, data.labels = data.images[:64], data.labels[:64]
cfg = make_config("dcgan", "digits", "old", channels=1, classes=data.classes, preset_key="digits", epochs=1,
                  batch_size=16, image_size=16)
cfg = replace(cfg, generator={**cfg.generator, "features": 4}, discriminator={**cfg.discriminator, "features": 4})
engine.train(cfg, data, store.run_path("dcgan", "old"), CPU)
# the reference for an exact resume: the same run trained 2 epochs in one go
engine.train(replace(cfg, epochs=2, run_name="old-2epochs"), data, store.run_path("dcgan", "old-2epochs"), CPU)

fetch.fetch(catalog.CATALOG["synthetic-facades"], None, None)
train = paired.load_paired("synthetic-facades", "train", 36, limit=8)
val = paired.load_paired("synthetic-facades", "val", 32, limit=2)
cfg = make_config("pix2pix", "synthetic-facades", "old", channels=3, classes=None, preset_key="synthetic-facades",
                  epochs=1, batch_size=4, image_size=32, generator_overrides={"num_downs": 5, "ngf": 4},
                  discriminator_overrides={"ndf": 4}, objective_overrides={"epochs_decay": 0},
                  data_overrides={"direction": "AtoB", "load_size": 36})
engine.train(cfg, train, store.run_path("pix2pix", "old"), CPU, val_data=val)
