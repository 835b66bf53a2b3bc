"""What a training run writes and shows, as :class:`ganctl.train.engine.Callback` objects.

:func:`ganctl.train.trainer.train` builds the list for a run: the epoch pictures and numbers of its data
kind (:mod:`.pictures`), the metrics log and loss chart (:mod:`.metrics`), the checkpointer
(:mod:`.checkpointer`), the divergence guard (:mod:`.divergence`), the progress display
(:mod:`.progress`), the experiment trackers of ``--log`` (:mod:`.trackers`) and the session log
(:mod:`.session`), in that order: each reads what the ones before it put in ``loop.logs``.
"""

from ganctl.train.callbacks.checkpointer import Checkpointer, PublishCheckpoint
from ganctl.train.callbacks.divergence import DivergenceGuard
from ganctl.train.callbacks.metrics import LossChart, MetricsLog
from ganctl.train.callbacks.pictures import Evaluation, PairValidation, SampleGrid
from ganctl.train.callbacks.progress import NullReporter, Progress, Reporter
from ganctl.train.callbacks.session import SessionLog

__all__ = ["Checkpointer", "DivergenceGuard", "Evaluation", "LossChart", "MetricsLog", "NullReporter", "PairValidation", "Progress", "PublishCheckpoint",
           "Reporter", "SampleGrid", "SessionLog"]
