"""Model options, typed once: :class:`Option`, the value parsers, and :class:`Tuning`.

A model declares its options as :class:`Option` objects in its ``ModelSpec``;
``--option name=value`` on the CLI and ``name=value`` in Python both go through
:func:`resolve_options`, so a value means the same everywhere:

* ``type=bool``: :func:`parse_bool` (``1/true/yes/on`` and ``0/false/no/off``,
  any case; anything else is refused naming the option);
* ``choices=(...)``: the value must be one of them (an enum);
* any other ``type``: called on the string (``int``, ``float``, a model's parser).

:class:`Tuning` is how a model says what it wants from a solver without naming
one (read by :func:`recopt.solvers.tuned_options`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recopt.errors import ModelError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(value) -> bool:
    """``True``/``False`` from a bool, 0/1 or one of :data:`TRUE_WORDS` / :data:`FALSE_WORDS`.

    Raises ValueError for anything else (``"nope"`` is not silently false).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"not a yes/no value: {value!r} (use one of "
                     f"{', '.join(TRUE_WORDS)} / {', '.join(FALSE_WORDS)})")


@dataclass(frozen=True)
class Option:
    """One model option: ``--option name=value`` on the CLI, ``name=value`` in Python.

    ``type`` is ``bool`` (parsed by :func:`parse_bool`), ``int``, ``float``, ``str``
    or a parser ``str -> value``; ``choices`` makes it an enum.
    """

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: tuple | None = None

    def parse(self, value, model: str = "?"):
        """The option's typed value from ``value`` (a string from the CLI, or typed)."""
        parser = parse_bool if self.type is bool else self.type
        if self.type is bool and not isinstance(value, bool):
            try:
                value = parse_bool(value)
            except ValueError as exc:
                raise ModelError(f"option {self.name} of model {model}: {exc}") from exc
        elif isinstance(value, str) and self.type is not str:
            try:
                value = parser(value)
            except (TypeError, ValueError) as exc:
                raise ModelError(
                    f"option {self.name} of model {model}: cannot read {value!r} ({exc})"
                ) from exc
        if self.type in (int, float):  # typed values too (a suite file, Python)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                if value is not None or self.default is not None:
                    raise ModelError(f"option {self.name} of model {model} must be a "
                                     f"number, got {value!r}")
            elif not math.isfinite(value) and not _nan_default(self.default, value):
                raise ModelError(f"option {self.name} of model {model} must be a finite "
                                 f"number, got {value!r}")
            elif self.type is int and value != int(float(value)):
                raise ModelError(f"option {self.name} of model {model} must be an "
                                 f"integer, got {value!r}")
            else:
                if self.type is int:  # exact for big integers (seeds)
                    value = int(value) if isinstance(value, numbers.Integral) \
                        else int(float(value))
                else:
                    value = float(value)
        elif isinstance(value, float) and not math.isfinite(value) \
                and not _nan_default(self.default, value):
            raise ModelError(f"option {self.name} of model {model} must be a finite "
                             f"number, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ModelError(
                f"option {self.name} of model {model} must be one of "
                f"{', '.join(map(str, self.choices))}; got {value!r}"
            )
        return value


def _nan_default(default, value) -> bool:
    """NaN is a value only for an option whose default is NaN ("not set")."""
    return (isinstance(default, float) and math.isnan(default)
            and isinstance(value, float) and math.isnan(value))


def resolve_options(options: tuple[Option, ...], given: dict, model: str = "?") -> dict:
    """Defaults filled in, values parsed, unknown names refused with a clear error."""
    known = {o.name: o for o in options}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ModelError(
            f"model {model} has no option {', '.join(unknown)}; its options are: "
            + (", ".join(known) or "none")
        )
    return {name: opt.parse(given.get(name, opt.default), model)
            for name, opt in known.items()}


@dataclass(frozen=True)
class Tuning:
    """What a model wants from a solver, without naming one.

    ``presolve=False``: the solver's presolve costs more than it saves on this
    model; ``lp_method="ipm"`` / ``"simplex"``: the LP algorithm found faster.
    ``None`` leaves the solver's default. Measured with HiGHS; read by
    :func:`recopt.solvers.tuned_options`.
    """

    presolve: bool | None = None
    lp_method: str | None = None
