"""``python -m recopt.generate``: write Chasseray-protocol instances to netCDF.

Examples::

    python -m recopt.generate --preset reference --actors 30 --days 7 --seed 3 -o x.nc
    python -m recopt.generate --preset 30_act_7_d --replicates 100 -o runs/   # 100 files
    python -m recopt.generate --preset dens_2 --set tilt=45 --set 'mix={"household": 0.6,
        "pro1": 0.3, "pro2": 0.1}' --scenarios 5 -o dense.nc
    python -m recopt.generate --preset period_sum --scenarios 20 \
        --scenario-method bootstrap --history-years 5 -o summer_boot.nc
    python -m recopt.generate --history measured_5_years.nc --scenarios 500 --seed 1 \
        -o boot.nc           # seasonal block bootstrap of your own history (Ospina 4.4.2)
    python -m recopt.generate --list-presets

Replicate ``r`` uses seed ``seed + r``. With ``--replicates`` > 1 the output is a
folder (files ``<preset>_s<seed>.nc``) or a pattern containing ``{seed}``; a plain
file name gets ``_s<seed>`` inserted before its suffix.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from recopt.cli.args import positive_int
from recopt.data import instance_hash, load, save
from recopt.errors import OutputError, RecoptError
from recopt.generate.bootstrap import seasonal_block_bootstrap
from recopt.generate.chasseray import PRESETS, generate, settings_for
from recopt.solve.result import check_output_path

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2  # as recopt.solvers.status


def _parse_set(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set takes name=value, got {text!r}")
    name, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return name.strip(), parsed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recopt.generate",
        description="Generate instances of the Chasseray et al. test protocol "
                    "(arXiv 2404.04428 §4.1-4.2) as netCDF files.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1],
    )
    p.add_argument("--preset", default="reference",
                   help="configuration name (Table 5 / Table 7; see --list-presets)")
    p.add_argument("--actors", type=positive_int, help="number of actors (default: the preset's)")
    p.add_argument("--days", type=positive_int, help="horizon in days (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first replicate")
    p.add_argument("--replicates", type=positive_int, default=1,
                   help="number of instances, seeds seed..seed+replicates-1")
    p.add_argument("--placement", choices=("clustered", "uniform"), default=None,
                   help="default: the preset's (clustered but for the stress presets)")
    p.add_argument("--scenarios", type=positive_int, default=1,
                   help="equiprobable stochastic realisations per instance")
    p.add_argument("--scenario-method", choices=("independent", "bootstrap"),
                   help="independent draws (default) or the seasonal block bootstrap of a "
                        "generated --history-years history")
    p.add_argument("--history-years", type=positive_int,
                   help="bootstrap history length (default 5)")
    p.add_argument("--history", metavar="FILE.nc",
                   help="bootstrap this multi-year instance instead of generating actors: "
                        "--scenarios synthetic years (seasonal block bootstrap, Ospina 4.4.2)")
    p.add_argument("--step-minutes", type=int, choices=(15, 30, 60),
                   help="step length (default 60, as Table 7's sizes imply)")
    p.add_argument("--set", action="append", type=_parse_set, default=[],
                   metavar="NAME=VALUE",
                   help="any other generator setting, value as JSON (repeatable)")
    p.add_argument("-o", "--output", help="output file, folder or {seed} pattern")
    p.add_argument("--float32", action="store_true",
                   help="store time series as float32 (smaller, not bit-exact)")
    p.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="processes writing replicates in parallel (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def presets_text() -> str:
    lines = [f"{'preset':<15} {'actors':>6} {'days':>5} {'steps':>6} {'n+steps':>7} "
             f"{'azimuth':>7} {'tilt':>5} {'density':>8} {'Wmax kW':>8} {'Dmax km':>7} "
             f"{'placement':<9}  start"]
    for name in PRESETS:
        s = settings_for(name)
        lines.append(f"{name:<15} {s.actors:>6} {s.days:>5} {s.n_steps:>6} "
                     f"{s.actors + s.n_steps:>7} {s.azimuth:>7g} {s.tilt:>5g} "
                     f"{s.density:>8g} {s.max_loop_power_kw:>8g} {s.max_distance_km:>7g} "
                     f"{s.placement:<9}  {s.start}")
    return "\n".join(lines)


def output_path(output: str | None, preset: str, seed: int, replicates: int) -> Path:
    """Where replicate ``seed`` goes (see the module docstring)."""
    if output is None:
        return Path(f"{preset}_s{seed}.nc")
    if "{" in output:
        try:
            return Path(output.format(seed=seed, preset=preset))
        except (KeyError, IndexError, ValueError) as exc:
            raise OutputError(f"-o {output!r}: a pattern may hold {{seed}} and {{preset}} "
                              f"only ({type(exc).__name__}: {exc})") from None
    path = Path(output)
    if path.is_dir() or output.endswith(("/", "\\")):
        return path / f"{preset}_s{seed}.nc"
    if replicates > 1:
        suffix = path.suffix or ".nc"
        return path.with_name(f"{path.stem}_s{seed}{suffix}")
    return path


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_presets:
        print(presets_text())
        return EXIT_OK
    if args.replicates < 1 or args.workers < 1:
        print("error: --replicates and --workers must be >= 1", file=sys.stderr)
        return EXIT_BAD_INPUT

    if args.history is not None:
        return _bootstrap_history(args)
    overrides = dict(args.set)
    for name in ("step_minutes", "scenario_method", "history_years"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    t0 = time.perf_counter()
    try:
        paths = [check_output_path(output_path(args.output, args.preset, args.seed + r,
                                               args.replicates))
                 for r in range(args.replicates)]  # before generating anything
        jobs = [(args.preset, args.actors, args.days, args.seed + r, args.placement,
                 args.scenarios, overrides, str(paths[r]), args.float32)
                for r in range(args.replicates)]
        settings_for(args.preset, actors=args.actors, days=args.days,  # fail fast
                     placement=args.placement, scenarios=args.scenarios, **overrides)
        if args.workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                lines = pool.map(_write_one, jobs)
                for line in lines:
                    if not args.quiet:
                        print(line, flush=True)
        else:
            for job in jobs:
                line = _write_one(job)
                if not args.quiet:
                    print(line, flush=True)
    except (RecoptError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # an I/O failure: one line, not a traceback
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        if args.replicates > 1:
            print(f"{args.replicates} instances in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def _bootstrap_history(args) -> int:
    """``--history FILE``: N synthetic years of a user's own multi-year instance."""
    if args.output is None:
        print("error: --history needs -o OUTPUT.nc", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        check_output_path(args.output)
        boot = seasonal_block_bootstrap(load(args.history), args.scenarios, seed=args.seed)
        save(boot, args.output, float32=args.float32)
    except RecoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        print(f"{args.output}: {boot.sizes['scenario']} bootstrap years of {args.history} "
              f"({boot.sizes['member']} members x {boot.sizes['time']} steps), seed "
              f"{args.seed}, instance_hash {instance_hash(boot)[:16]}")
    return EXIT_OK


def _write_one(job) -> str:
    """Generate and save one replicate; returns its summary line."""
    preset, actors, days, seed, placement, scenarios, overrides, path, float32 = job
    ds = generate(preset, actors=actors, days=days, seed=seed, placement=placement,
                  scenarios=scenarios, **overrides)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(ds, path, float32=float32)
    return (f"{path}: {ds.sizes['member']} actors x {ds.sizes['time']} steps x "
            f"{ds.sizes['scenario']} scenario(s), seed {seed}, "
            f"instance_hash {instance_hash(ds)[:16]}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
