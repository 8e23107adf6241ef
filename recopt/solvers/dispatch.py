"""Solve a Pyomo model with any solver and say what happened: :func:`solve_pyomo`.

It loads the primal solution (and, for LPs, the duals into a ``model.dual`` Suffix
when the model declares one) back into the Pyomo model, so a user who added their
own variables reads them as usual, and returns a :class:`SolveOutcome`.

Back-ends
---------
``highs`` (default)
    :mod:`recopt.solvers.highs` (highspy fed by Pyomo's standard-form compiler).
``gurobi``
    Pyomo's ``gurobi_direct`` (needs ``gurobipy``), :mod:`recopt.solvers.pyomo_factory`.
any other name
    ``pyomo.environ.SolverFactory(name)`` (``cbc``, ``glpk``, ``cplex``, ``appsi_highs``...).

Tuning
------
Models do not name solvers: they declare a :class:`~recopt.models.options.Tuning`
(capabilities such as "presolve off", "interior point") and :func:`tuned_options`
turns it into the options of the solver actually used. Only the HiGHS adapter
reads tuning today (the defaults were measured with HiGHS); other solvers get
their own defaults.
"""

from __future__ import annotations

from recopt.errors import RecoptError
from recopt.solvers.deadline import current_deadline
from recopt.solvers.highs import solve_highs, tuning_options
from recopt.solvers.outcome import SolveOutcome
from recopt.solvers.pyomo_factory import factory_available, solve_factory
from recopt.solvers.safety import check_solver, check_solver_options
from recopt.solvers.status import Status


def tuned_options(solver: str, tuning) -> dict:
    """The options of ``solver`` that realise a model's ``tuning`` (``None``: none).

    Each adapter translates the capabilities it knows: HiGHS through
    :func:`recopt.solvers.highs.tuning_options`; the Pyomo ``SolverFactory``
    solvers get none (their defaults were not measured against recopt's models).
    """
    if tuning is None:
        return {}
    if solver.lower() == "highs":
        return tuning_options(tuning)
    return {}


def solve_pyomo(model, solver: str = "highs", *, time_limit: float | None = None,
                mip_gap: float | None = None, threads: int | None = None,
                options: dict | None = None, warm_start: bool = False) -> SolveOutcome:
    """Solve a Pyomo model and load its solution back into it.

    Parameters
    ----------
    model : pyomo.environ.ConcreteModel
        Any linear (MI)LP with one active objective.
    solver : str
        ``"highs"`` (embedded default), ``"gurobi"``, or any Pyomo solver name.
    time_limit : float, optional
        Seconds; clipped to the run's wall-clock deadline
        (:func:`recopt.solvers.deadline.current_deadline`) when one is set.
    mip_gap : float, optional
        Relative MIP gap at which the solver may stop.
    threads : int, optional
    options : dict, optional
        Passed to the solver unchanged (HiGHS option names for ``highs``).
    warm_start : bool
        Offer the variables' current values as a MIP start (HiGHS ``setSolution``;
        other solvers when Pyomo says they are warm-start capable).

    Returns
    -------
    SolveOutcome

    Raises
    ------
    SolverUnavailableError
        The solver is not installed / licensed here.
    SolverError
        The solver crashed or refused an option.
    SolverOptionError
        The solver name is not allowed, or an option writes files
        (:mod:`recopt.solvers.safety`).
    """
    name = check_solver(solver).lower()
    options = check_solver_options(options) or None
    deadline = current_deadline()
    if deadline.expired():  # the run's wall-clock limit (recopt.solvers.deadline)
        return SolveOutcome(Status.TIME_LIMIT, message="the run's time limit was reached "
                            "before this solve", solver=name)
    time_limit = deadline.clip(time_limit)
    if name == "highs":
        return solve_highs(model, time_limit=time_limit, mip_gap=mip_gap, threads=threads,
                           options=options, warm_start=warm_start)
    return solve_factory(model, name, time_limit=time_limit, mip_gap=mip_gap,
                         threads=threads, options=options, warm_start=warm_start)


def solver_available(solver: str) -> bool:
    """Whether ``solver`` can be used here (never raises; a solver name that is not
    allowed, :func:`recopt.solvers.safety.check_solver`, is not available)."""
    try:
        name = check_solver(solver).lower()
    except RecoptError:
        return False
    if name == "highs":
        return True  # highspy is a hard dependency (imported by recopt.solvers.highs)
    return factory_available(name)
