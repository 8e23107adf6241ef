"""A time-separable LP as one step's structure and every step's numbers: :class:`StepLP`.

A model that is separable by ``(scenario, time step)`` (``ModelSpec.separable ==
"time"``) is, step by step, the same small LP with other numbers: the constraint
matrix of one step does not change, only costs, column bounds and row bounds do.
A :class:`StepLP` holds that one-step matrix (compressed columns) and the numbers
of every step as NumPy arrays on ``(scenario, time, column)`` / ``(scenario, time,
row)``, computed vectorised from the instance by the model module next to its
Pyomo builder (``ModelSpec.step_lp``). A block of ``L`` steps is the block-diagonal
of ``L`` copies of the step matrix (:meth:`StepLP.block_matrix`); a solver adapter
keeps it compiled once and re-parameterises it per block
(:class:`recopt.solvers.highs.HighsStepLP`).

The Pyomo model stays the source of truth: a ``StepLP`` is the same LP without the
builder's exact reductions (a column the builder leaves out is 0 in the StepLP too:
bounds ``[0, 0]``, or forced by the rows in an inactive step), and the tests solve
both and compare the objective, the variables (where the optimum is unique) and the
bills (``tests/test_step_lp.py``). It is solver-neutral: infinite bounds are
``math.inf``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepLP:
    """``min sum_(s,t) cost[s,t]·x[s,t] + offset`` subject to, for every step,
    ``row_lower[s,t] <= A x[s,t] <= row_upper[s,t]`` and
    ``col_lower[s,t] <= x[s,t] <= col_upper[s,t]``.

    Attributes
    ----------
    a_start, a_index, a_value : ndarray
        The one-step matrix ``A`` (``n_row x n_col``) in compressed columns; its
        pattern is every step's, its values ``a_value`` either every step's (shape
        ``(nnz,)``) or per step (shape ``(S, T, nnz)``: LP3's ``G k`` terms).
    cost, col_lower, col_upper : ndarray, shape (S, T, n_col)
        Per-step objective coefficients (EUR per unit of the column, the scenario's
        probability included) and column bounds.
    row_lower, row_upper : ndarray, shape (S, T, n_row)
        Per-step row bounds.
    offset : float
        The objective's constant over the whole instance (EUR).
    columns : dict
        ``name -> slice`` of one step's columns (``"community_intake"`` is the first
        ``U`` columns, say).
    steps_per_block : int, optional
        Steps per block found fastest (see the field).
    """

    a_start: np.ndarray
    a_index: np.ndarray
    a_value: np.ndarray
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    offset: float
    columns: dict
    steps_per_block: int | None = None
    """The block length found fastest for this LP (None: about ``BLOCK_CELLS`` cells of
    :mod:`recopt.decomp.blocks`); the user's ``block_steps`` overrides it."""

    @property
    def n_col(self) -> int:
        return int(self.cost.shape[-1])

    @property
    def n_row(self) -> int:
        return int(self.row_lower.shape[-1])

    @property
    def per_step_matrix(self) -> bool:
        """Whether the matrix values change from step to step."""
        return self.a_value.ndim == 3

    @property
    def shape(self) -> tuple[int, int]:
        """(scenarios, steps)."""
        return int(self.cost.shape[0]), int(self.cost.shape[1])

    def block_matrix(self, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(start, index, value)`` of the block-diagonal of ``steps`` copies of ``A``
        (columns ordered step-major: step 0's columns, then step 1's, ...)."""
        nnz = len(self.a_index)
        k = np.arange(steps)
        start = (self.a_start[None, :-1] + nnz * k[:, None]).ravel()
        start = np.append(start, nnz * steps).astype(np.int32)
        index = (self.a_index[None, :] + self.n_row * k[:, None]).ravel().astype(np.int32)
        value = (np.zeros(nnz * steps) if self.per_step_matrix
                 else np.tile(self.a_value, steps).astype(float))
        return start, index, value

    def block(self, scenario: int, t0: int, t1: int) -> dict[str, np.ndarray]:
        """The numbers of steps ``t0:t1`` of ``scenario``, flattened step-major."""
        sl = (scenario, slice(t0, t1))
        names: tuple[str, ...] = ("cost", "col_lower", "col_upper", "row_lower", "row_upper")
        if self.per_step_matrix:
            names += ("a_value",)
        return {name: np.ascontiguousarray(getattr(self, name)[sl], dtype=float).ravel()
                for name in names}

    def steps(self, scenario: int, t0: int, t1: int) -> StepLP:
        """The StepLP of steps ``t0:t1`` of one scenario (shape ``(1, t1 - t0)``)."""
        per_step = ("cost", "col_lower", "col_upper", "row_lower", "row_upper") + (
            ("a_value",) if self.per_step_matrix else ())
        return dataclasses.replace(self, **{f: getattr(self, f)[scenario:scenario + 1, t0:t1]
                                            for f in per_step})

    def scatter(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The solution ``x`` of shape (S, T, n_col) as ``name -> (S, T, width)`` arrays."""
        return {name: x[..., sl] for name, sl in self.columns.items()}


def one_row_matrix(coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The compressed columns of a one-row matrix with these coefficients (zeros dropped)."""
    coefficients = np.asarray(coefficients, dtype=float)
    nz = coefficients != 0
    start = np.concatenate(([0], np.cumsum(nz))).astype(np.int32)
    return start, np.zeros(int(nz.sum()), dtype=np.int32), coefficients[nz]


def csc(columns: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compressed columns from, per column, its ``(row, value)`` entries."""
    start = np.concatenate(([0], np.cumsum([len(c) for c in columns]))).astype(np.int32)
    index = np.array([r for c in columns for r, _ in c], dtype=np.int32)
    value = np.array([v for c in columns for _, v in c], dtype=float)
    return start, index, value
