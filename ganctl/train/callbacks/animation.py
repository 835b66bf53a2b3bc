"""``progress.gif``: every epoch's picture of a run as one animation (``ganctl report`` shows it)."""

from __future__ import annotations

import sys
from pathlib import Path

from ganctl.report import progress_gif
from ganctl.train.engine import Callback, Loop


class ProgressAnimation(Callback):
    """``progress.gif`` from ``samples/epoch_NNNN.png``, written when training ends: at its last
    epoch, on Ctrl-C, and after an error (then quietly: the error is the one to report). A second
    Ctrl-C asks to stop at once, so it writes nothing then."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def on_fit_end(self, loop: Loop) -> None:
        ending = sys.exc_info()[1]  # the engine calls this in a `finally`: the error that ends training, if any
        if isinstance(ending, KeyboardInterrupt):
            return
        try:
            progress_gif.write(self.run_dir, upto_epoch=loop.position.epoch)
        except Exception:
            if ending is None:
                raise
