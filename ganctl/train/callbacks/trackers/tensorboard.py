"""``--log tensorboard``: event files in ``RUN/tensorboard`` (``tensorboard --logdir RUN/tensorboard``,
or the runs folder to compare runs), written with PyTorch's own ``SummaryWriter``."""

from __future__ import annotations

import json
from pathlib import Path

from ganctl.train.callbacks.trackers import TrackerCallback, flat_config, store

FOLDER = "tensorboard"


class TensorBoardTracker(TrackerCallback):
    name = "tensorboard"

    def start(self, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.dir = self.run_dir / FOLDER
        # a resumed run writes on in the same folder from step + 1; purge_step hides what an earlier
        # session logged past the checkpoint this one starts from (a crash after the last save)
        self.writer = SummaryWriter(str(self.dir), purge_step=step + 1 if self.resume and step else None)
        # the hyperparameters in the run's own folder (add_hparams would write them into a new sub-run)
        for summary in hparams(flat_config(self.cfg_json), {}):
            self.writer.file_writer.add_summary(summary, step)
        self.writer.add_text("config", "```\n" + json.dumps(self.cfg_json, indent=2) + "\n```", step)
        self.writer.flush()
        store(self.run_dir, self.name, {"dir": FOLDER})
        self.say(f"tensorboard: logging to {self.dir}; view it with: tensorboard --logdir {self.dir}")

    def scalars(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        for step, values in rows:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def picture(self, step: int, epoch: int, path: Path) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")
        self.writer.flush()  # an epoch's numbers and picture show in TensorBoard as soon as it ends

    def close(self, failed: bool) -> None:
        self.writer.close()
