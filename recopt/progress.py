"""The one progress reporter of recopt: a bar on a terminal, log lines otherwise.

Every loop that can run longer than a few seconds reports through :func:`progress`
(or :func:`track` around an iterable): the time blocks of separable models and the
billing periods of KoR9/KoR10 (:func:`recopt.decomp.parallel.map_in_workers`), the
scenario chunks of a key evaluation, the brute force's candidates, the LOGAAS grid,
Benders iterations and column-generation rounds.

Where it goes, decided once per run:

* ``enabled=False`` (or the ``recopt`` logger above WARNING: a quiet command) --
  nothing;
* stderr is a terminal -- a tqdm bar on stderr, shown only after ``delay`` seconds
  (short loops stay silent) and removed when done;
* otherwise -- ``INFO`` lines on the ``recopt.progress`` logger, at most one every
  ``interval`` seconds plus a final one (seen with ``-v``, or in a job's log).

The CLI's ``-v`` sets the ``recopt`` logger to INFO, which turns the log lines on; a
terminal shows the bar unless the command is quiet. Nothing here is printed on
stdout, so a command's output stays parseable.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["Progress", "progress", "track", "LOG_INTERVAL", "BAR_DELAY"]

#: Seconds between two progress log lines (when stderr is not a terminal).
LOG_INTERVAL = 5.0
#: Seconds before a terminal bar appears (loops shorter than this show nothing).
BAR_DELAY = 2.0

log = logging.getLogger("recopt.progress")
T = TypeVar("T")


def _is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # closed or replaced stderr
        return False


class Progress:
    """Progress of one loop of ``total`` steps (None: unknown), named ``desc``.

    ``update(n, **postfix)`` after each step (``postfix``: a few values shown beside the
    count, e.g. ``gap=1e-3``); ``close()`` at the end (or use it as a context manager).
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", *,
                 enabled: bool | None = None, bar: bool | None = None,
                 interval: float | None = None, delay: float | None = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.t0 = time.perf_counter()
        self.interval = float(LOG_INTERVAL if interval is None else interval)
        delay = BAR_DELAY if delay is None else delay
        self._last = self.t0
        self._logged = False
        self._postfix: dict[str, Any] = {}
        quiet = logging.getLogger("recopt").getEffectiveLevel() > logging.WARNING
        self.enabled = (not quiet) if enabled is None else bool(enabled)
        use_bar = _is_tty() if bar is None else bool(bar)
        if self.enabled and use_bar:
            from tqdm import tqdm  # optional: a bar on a terminal only (start-up stays lean)
        self._bar = (tqdm(total=total, desc=desc, unit=unit, leave=False, delay=delay,
                          file=sys.stderr, dynamic_ncols=True)
                     if self.enabled and use_bar else None)
        self._lines = self.enabled and self._bar is None

    def update(self, n: int = 1, **postfix: Any) -> None:
        """``n`` more steps done; ``postfix`` values are shown beside the count."""
        self.n += n
        if postfix:
            self._postfix = postfix
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)
        elif self._lines:
            now = time.perf_counter()
            if now - self._last >= self.interval:
                self._last = now
                self._emit(now)

    def line(self, now: float | None = None) -> str:
        """The text of a progress line: count, share, elapsed and remaining time."""
        now = time.perf_counter() if now is None else now
        elapsed = now - self.t0
        text = f"{self.desc}: {self.n}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100.0 * self.n / self.total:.0f} %)"
        else:
            text += f" {self.unit}"
        text += f", {elapsed:.1f} s"
        if self.total and 0 < self.n < self.total:
            text += f", about {elapsed / self.n * (self.total - self.n):.0f} s left"
        if self._postfix:
            text += "; " + ", ".join(f"{k} {v}" for k, v in self._postfix.items())
        return text

    def _emit(self, now: float) -> None:
        self._logged = True
        log.info("%s", self.line(now))

    def close(self) -> None:
        """End the loop: remove the bar, or log the final line (when any was logged or
        the loop took longer than the log interval)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines:
            now = time.perf_counter()
            if self._logged or now - self.t0 >= self.interval:
                self._emit(now)
            self._lines = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int | None = None, desc: str = "", unit: str = "it", *,
             enabled: bool | None = None, **kw) -> Progress:
    """A :class:`Progress` (see the module docstring for where it reports)."""
    return Progress(total, desc, unit, enabled=enabled, **kw)


def track(iterable: Iterable[T], desc: str, unit: str = "it", *, total: int | None = None,
          enabled: bool | None = None, **kw) -> Iterator[T]:
    """``iterable``'s items, reporting one step per item."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, unit, enabled=enabled, **kw) as p:
        for item in iterable:
            yield item
            p.update(1)
