"""``--log wandb``: a Weights & Biases run, through the ``wandb`` library and its own settings
(``WANDB_MODE``, ``WANDB_PROJECT``, ``WANDB_ENTITY``, ``WANDB_DIR``, ...).

No login is needed: with no API key and no ``WANDB_MODE``, the run is logged offline (said on
stderr) and ``wandb sync`` uploads it later. Its files go to ``WANDB_DIR``, by default the run
folder (``RUN/wandb``), so a run's record stays with the run. Steps are logged against a ``step``
metric of their own (the run's optimizer step), so a resumed run, whose first step may repeat one
an earlier session logged after its last checkpoint, is never refused by W&B's own step counter.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from ganctl.train.callbacks.trackers import TrackerCallback, store, stored


def has_api_key() -> bool:
    """Whether W&B would find credentials: ``WANDB_API_KEY``, an identity token, or the netrc
    entry ``wandb login`` writes for the W&B host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        auth = netrc.netrc(os.environ.get("NETRC") or None).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


class WandbTracker(TrackerCallback):
    name = "wandb"

    def start(self, step: int) -> None:
        import wandb

        mode = None  # the library's own: WANDB_MODE, its settings file, online when logged in
        if not os.environ.get("WANDB_MODE") and not has_api_key():
            mode = "offline"
            self.say("wandb: no W&B API key and WANDB_MODE is not set: logging offline "
                     "('wandb login' or WANDB_MODE=online to upload as it trains)")
        # the progress display is not worth capturing into the run's output.log: metrics are logged as such
        settings = wandb.Settings(console=os.environ.get("WANDB_CONSOLE") or "off")
        kwargs = dict(project=os.environ.get("WANDB_PROJECT") or "ganctl", name=self.run_label, config=self.cfg_json,
                      dir=os.environ.get("WANDB_DIR") or str(self.run_dir), mode=mode, settings=settings)
        earlier = stored(self.run_dir, self.name) if self.resume else {}
        if earlier.get("id"):
            kwargs.update(id=earlier["id"], resume="allow")
        self.run = wandb.init(**kwargs)
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")
        if self.resume:  # --epochs, --save-every and the like may have changed
            self.run.config.update(self.cfg_json, allow_val_change=True)
        store(self.run_dir, self.name, {"id": self.run.id, "project": self.run.project})
        self.say(f"wandb: run {self.run.id} ({self.run.settings.mode}) in {Path(self.run.dir).parent}")

    def scalars(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        for step, values in rows:
            self.run.log({"step": step, **values})

    def picture(self, step: int, epoch: int, path: Path) -> None:
        import wandb

        self.run.log({"step": step, "samples": wandb.Image(str(path), caption=f"epoch {epoch}")})

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)
