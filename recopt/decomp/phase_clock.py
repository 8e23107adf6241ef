"""The clock of a decomposition's phases: how the time an algorithm was given is split.

Column generation for MLCol (card ``models/MLCol-column-generation.md``, choice 6)
and MLColExt on the generated loops (Benders, card ``models/SLExt-MLColExt.md``) run
several phases one after the other: set-up, pricing rounds, integer designs, Benders
iterations. A single ``--time-limit`` covers all of them, so each phase must be told
how much time is *left*, not the limit it was given at the start. :class:`PhaseClock`
is that clock: it is created once from the ``time_limit`` option (seconds, or None
for no limit), checked between rounds and iterations (:meth:`expired`), and asked for
the seconds to pass to every solver call (:meth:`remaining`). :meth:`share` hands a
phase an earlier deadline (the rest of the time is kept for the phases after it).

It never outlasts the run: :meth:`PhaseClock.remaining` is also clipped to the
runner's wall-clock deadline (:func:`recopt.solvers.deadline.current_deadline`, the
one ``--time-limit`` of the whole command); this module only splits what the
algorithm was given among its phases (:meth:`share`).

Units: seconds of ``time.perf_counter()``.
"""

from __future__ import annotations

import math
import time

from recopt.errors import ModelError
from recopt.solvers.deadline import current_deadline


class PhaseClock:
    """``limit`` seconds from now (None: never), on the ``perf_counter`` clock."""

    def __init__(self, limit: float | None = None, *, start: float | None = None):
        if limit is not None and (not math.isfinite(float(limit)) or float(limit) < 0):
            raise ModelError(f"time_limit must be a non-negative number of seconds; got "
                             f"{limit!r}")
        self.start = time.perf_counter() if start is None else float(start)
        self.limit = None if limit is None else float(limit)

    @classmethod
    def until(cls, end: float | None, *, start: float | None = None) -> PhaseClock:
        """The deadline ending at ``end`` (a ``perf_counter`` time; None: never)."""
        t0 = time.perf_counter() if start is None else float(start)
        return cls(None if end is None else max(0.0, float(end) - t0), start=t0)

    @property
    def end(self) -> float | None:
        """The ``perf_counter`` time at which the deadline passes (None: never)."""
        return None if self.limit is None else self.start + self.limit

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        """Seconds left (>= 0), None without a limit: pass this to every solver call."""
        run_left = current_deadline().remaining()  # the whole run's deadline
        if self.limit is None:
            return run_left
        left = max(0.0, self.limit - self.elapsed())
        return left if run_left is None else min(left, run_left)

    def expired(self) -> bool:
        """True once the deadline has passed."""
        left = self.remaining()
        return left is not None and left <= 0.0

    def share(self, fraction: float) -> PhaseClock:
        """The deadline at ``fraction`` of this one's limit from its start (never after
        this one): a phase that must leave the rest of the time to the next phases."""
        if not 0.0 <= fraction <= 1.0:
            raise ModelError(f"a deadline share must be in [0, 1]; got {fraction!r}")
        if self.limit is None:
            return PhaseClock(None, start=self.start)
        return PhaseClock(fraction * self.limit, start=self.start)


__all__ = ["PhaseClock"]
