"""``recopt logaas`` / ``python -m recopt.keys.logaas``: the LOGAAS key search from the shell.

Prints the ranking of the best round shares per niche and the best key's splits
(:func:`recopt.keys.logaas.search`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recopt.cli.args import positive_int
from recopt.data.instance import load
from recopt.errors import RecoptError
from recopt.keys.logaas import OBJECTIVES, search


def main(argv: Sequence[str] | None = None) -> int:
    """``recopt logaas INSTANCE ...`` (= ``python -m recopt.keys.logaas``)."""
    ap = argparse.ArgumentParser(
        prog="python -m recopt.keys.logaas",
        description="Multi-round static keys: the best round shares per niche (LOGAAS).")
    ap.add_argument("instance", help="a recopt instance (.nc)")
    ap.add_argument("--method", choices=("grid", "ga"), default="grid")
    ap.add_argument("--rounds", type=positive_int, default=3, help="at most this many rounds")
    ap.add_argument("--resolution", type=positive_int, default=20,
                    help="shares are multiples of 1/resolution (20: steps of 5 %%)")
    ap.add_argument("--objective", choices=tuple(OBJECTIVES), default="surplus")
    ap.add_argument("--no-carry", action="store_true",
                    help="energy a round leaves is not re-offered in later rounds")
    ap.add_argument("--population", type=positive_int, default=6)
    ap.add_argument("--generations", type=positive_int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="progress lines (a bar on a terminal without -v)")
    a = ap.parse_args(argv)
    if a.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("recopt").setLevel(logging.INFO)
    kw = dict(n_rounds=a.rounds, resolution=a.resolution, objective=a.objective,
              carry=not a.no_carry)
    if a.method == "ga":
        kw.update(population=a.population, generations=a.generations, seed=a.seed)
    try:
        inst = load(a.instance)
        res = search(inst, a.method, **kw)
    except RecoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an I/O failure: one line, not a traceback
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    cols = ["rank", "niche", "shares", "surplus", "self_consumption_rate",
            "collective_bill", "gini", "min_saving_ratio"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(f"LOGAAS {a.method}: objective {a.objective}, {a.rounds} rounds, "
              f"shares in steps of 1/{a.resolution}, {res.evaluations} evaluations")
        print(res.ranking[cols].to_string(index=False))
        best = res.ranking.iloc[0]
        splits = pd.DataFrame(
            np.asarray(best["splits"], dtype=float).T,
            index=pd.Index(inst["member"].values, name="member"),
            columns=[f"round {r + 1} ({share:g})" for r, share in enumerate(best["shares"])])
        print(f"\nbest key (rank 1): static split of each round among members\n"
              f"{splits.round(4).to_string()}")
    return 0

