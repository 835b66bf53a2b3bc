"""How long training takes: steps timed after the warm-up, and times worded for people."""

from __future__ import annotations

from collections import deque

WARMUP_STEPS = 2  # a fit's first steps build caches and pick kernels: never timed
RATE_WINDOW_S = 60.0  # the rate and the ETAs follow the last minute's steps


def duration(seconds: float) -> str:
    """A time as a reader wants it: '45 s', '3 min 10 s', '2 h 5 min'."""
    s = max(round(seconds), 1)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m} min" if m else f"{h} h"


def clock_text(seconds: float | None) -> str:
    """h:mm:ss, as rich shows elapsed time."""
    if seconds is None:
        return "-:--:--"
    h, rest = divmod(max(round(seconds), 0), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def speed_text(per_step: float | None) -> str:
    """Steps per second, or seconds per step when a step takes more than a second."""
    if per_step is None:
        return ""
    return f"{1 / per_step:.1f} it/s" if per_step <= 1 else f"{per_step:.1f} s/it"


def steps_text(plan) -> str:
    """The run's optimizer steps (and, when resuming, how many are left), counted as the engine
    counts them: a step is a batch; WGANs update the generator after every n_critic-th step."""
    total, left = plan.total_steps, plan.steps_left
    resumed = left != total
    if plan.n_critic == 1:
        text = f"{total:,} steps (each a D and a G update)"
        return f"{text}, {left:,} left" if resumed else text
    g_total = plan.generator_steps(total)
    text = f"{total:,} critic steps and {g_total:,} generator steps (1 per {plan.n_critic} critic steps)"
    if resumed:
        text += f", {left:,} critic and {plan.generator_steps(total, plan.start_step):,} generator steps left"
    return text


class Pace:
    """Seconds per step, timed from the end of the first :data:`WARMUP_STEPS` steps of a fit: over
    all steps since (``overall``), or over about the last :data:`RATE_WINDOW_S` seconds. The step
    times include whatever runs between steps (data, callbacks, the end-of-epoch saves)."""

    def __init__(self, warmup: int = WARMUP_STEPS, window: float = RATE_WINDOW_S):
        self.warmup, self.window = warmup, window
        self.first: tuple[float, int] | None = None
        self.samples: deque[tuple[float, int]] = deque()

    def tick(self, done: int, now: float) -> None:
        """``done`` steps of this fit are done at time ``now``."""
        if done < self.warmup:
            return
        if self.first is None:
            self.first = (now, done)
        if len(self.samples) >= 2 and now - self.samples[-2][0] < 0.1:
            self.samples[-1] = (now, done)  # keep the window's samples sparse
        else:
            self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def timed(self) -> tuple[float, int]:
        """Seconds and steps timed so far."""
        if self.first is None:
            return 0.0, 0
        return self.samples[-1][0] - self.first[0], self.samples[-1][1] - self.first[1]

    def per_step(self, overall: bool = False) -> float | None:
        if self.first is None:
            return None
        (t0, n0), (t1, n1) = (self.first if overall else self.samples[0]), self.samples[-1]
        return (t1 - t0) / (n1 - n0) if n1 > n0 else None
