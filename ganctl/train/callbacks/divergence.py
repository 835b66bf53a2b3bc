"""Stopping a run that diverged: its losses or weights became NaN or infinite.

A diverged run left alone trains on and saves non-finite weights over its last finite checkpoint
(with ``--keep 1``, the only one). Two checks stop it, neither of which makes a step wait for the
device:

- :class:`DivergenceGuard` looks at the metric rows :class:`~ganctl.train.callbacks.MetricsLog` has just
  read back (every few steps and at each epoch's end): a non-finite value stops training there.
  Under fp16 loss scaling a step whose scaled gradients overflow is skipped by the scaler and its
  metrics may be infinite while the weights stay as they were; there only weights that went
  non-finite anyway are divergence, so a block of rows with an infinite value has the networks'
  weights checked (a read-back, at that block alone).
- :class:`~ganctl.train.callbacks.Checkpointer` checks the host copy of the weights it saves and refuses
  a non-finite one (so the divergence of the last steps before a save is caught there).

Both raise :class:`~ganctl.core.errors.DivergedError`; the trainer adds what to try.
"""

from __future__ import annotations

import math

from torch import nn

from ganctl.core.errors import DivergedError
from ganctl.store import checkpoint
from ganctl.train.callbacks.metrics import MetricsLog
from ganctl.train.engine import Callback, Loop

# the epoch rows' validation and evaluation numbers are measurements, not training: a PSNR of
# identical images is infinite
_NOT_TRAINING = ("step", "epoch")
_MEASURED = ("val_", "eval_")


def nonfinite_values(row: dict) -> list[tuple[str, float]]:
    """The training metrics of a metrics-log row that are NaN or infinite."""
    return [(k, v) for k, v in row.items() if k not in _NOT_TRAINING and not k.startswith(_MEASURED)
            and isinstance(v, float) and not math.isfinite(v)]


def nonfinite_weights(nets: dict[str, nn.Module]) -> str | None:
    """'the generator's weights (main.0.weight)' for the first network holding a NaN or an
    infinity, or None. Reads the device's tensors back: only after a row showed a non-finite value."""
    for name, net in nets.items():
        bad = checkpoint.nonfinite(dict(net.state_dict()))
        if bad is not None:
            return f"the {name}'s weights ({bad})"
    return None


class DivergenceGuard(Callback):
    """Placed after the metrics log: stops training with a :class:`DivergedError` at the first
    read-back whose rows hold a non-finite training metric. ``scaled``: the run uses fp16 loss
    scaling, so such a row counts only when the weights of ``nets`` are not finite either."""

    def __init__(self, log: MetricsLog, nets: dict[str, nn.Module], scaled: bool):
        self.log, self.nets, self.scaled = log, nets, scaled
        self._seen = 0  # rows of the log already looked at

    def on_fit_start(self, loop: Loop) -> None:
        self._seen = len(self.log.rows)  # those of the sessions before: each was looked at then

    def check(self) -> None:
        rows = self.log.rows
        new, self._seen = rows[self._seen:], len(rows)
        for row in new:
            bad = nonfinite_values(row)
            if not bad:
                continue
            values = ", ".join(f"{k} = {v}" for k, v in bad)
            if not self.scaled:
                raise DivergedError(f"the training metrics are not finite ({values})", row["epoch"], row["step"])
            weights = nonfinite_weights(self.nets)
            if weights is None:
                return  # overflow steps the loss scaler skipped: the weights are as they were
            last = rows[-1]
            raise DivergedError(f"{weights} are not finite ({values} at step {row['step']})", last["epoch"], last["step"])

    def on_step_end(self, loop: Loop, metrics: dict) -> None:
        if len(self.log.rows) != self._seen:  # the log read a block back at this step
            self.check()

    def on_epoch_end(self, loop: Loop) -> None:
        self.check()

    def on_interrupt(self, loop: Loop) -> None:
        self.check()

