"""The wall-clock deadline of a run: one object the runner, the adapters and the
algorithms all read.

``recopt solve --time-limit 10`` means 10 s of the user's time, from the moment
:func:`recopt.solve.solve` is called: loading, preparing (loop enumeration),
building and compiling the model count, and the solver gets what is left. The
runner makes a :class:`Deadline` and opens a :func:`deadline_scope` around the run;
inside it

* :func:`recopt.solvers.solve_pyomo` clips every solver call's ``time_limit`` to
  :meth:`Deadline.remaining` (so an algorithm's sub-problems and masters stop at the
  run's deadline even if the algorithm forgets), and the HiGHS adapter subtracts its
  own compile time from what it passes to HiGHS;
* an algorithm (Benders, column generation, ...) reads
  ``current_deadline().remaining()`` (``None``: no limit) or
  ``current_deadline().expired()`` between its iterations and stops there, keeping
  its best bound.

The deadline is a point in ``time.time()`` (seconds since the epoch), so it can be
sent to worker processes (pickled with the task) and means the same there; a worker
opens its own scope (``with deadline_scope(d): ...``). API::

    d = Deadline.after(10.0)          # or Deadline.after(None): no limit
    d.remaining()                     # seconds left (>= 0) or None
    d.expired()                       # True once the deadline has passed
    d.clip(time_limit)                # min(time_limit, remaining) (None when both are)
    with deadline_scope(d): ...       # current_deadline() is d inside
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from recopt.errors import RecoptError


@dataclass(frozen=True)
class Deadline:
    """A wall-clock deadline: ``at`` in ``time.time()`` seconds, or None (no limit)."""

    at: float | None = None

    @classmethod
    def after(cls, seconds: float | None, start: float | None = None) -> Deadline:
        """The deadline ``seconds`` after ``start`` (default: now); None means no limit.

        ``seconds`` must be a positive finite number (a :class:`RecoptError` names it).
        """
        if seconds is None:
            return cls(None)
        seconds = check_time_limit(seconds)
        return cls((time.time() if start is None else start) + seconds)

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a limit."""
        return None if self.at is None else max(0.0, self.at - time.time())

    def expired(self) -> bool:
        return self.at is not None and time.time() >= self.at

    def clip(self, time_limit: float | None) -> float | None:
        """``time_limit`` shortened to what is left (None when neither limits)."""
        left = self.remaining()
        if left is None:
            return time_limit
        return left if time_limit is None else min(float(time_limit), left)


NO_DEADLINE = Deadline(None)

_CURRENT: contextvars.ContextVar[Deadline] = contextvars.ContextVar(
    "recopt_deadline", default=NO_DEADLINE)


def current_deadline() -> Deadline:
    """The deadline of the run in progress (:data:`NO_DEADLINE` outside any run)."""
    return _CURRENT.get()


@contextlib.contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Make ``deadline`` the current one inside the block (an earlier enclosing
    deadline still wins: the tighter of the two is current)."""
    outer = _CURRENT.get()
    if outer.at is not None and (deadline.at is None or outer.at < deadline.at):
        deadline = outer
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


def check_time_limit(value) -> float:
    """A time limit as a positive finite float, or a RecoptError naming the value."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RecoptError(f"time limit must be a number of seconds, got {value!r}") from None
    if not math.isfinite(out) or out <= 0:
        raise RecoptError(f"time limit must be a positive finite number of seconds, got "
                          f"{value!r}")
    return out
