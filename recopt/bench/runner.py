"""Run a suite's jobs on Dask, one process per job, and store a record per job.

:func:`run_suite` expands the suite (:mod:`recopt.bench.suite`), writes every
instance into the store once, skips the jobs that already have a record (unless
``force``), and submits the others to Dask: by default a
:class:`distributed.LocalCluster` of ``workers`` worker processes (one thread each,
so one job at a time per worker), or the cluster whose scheduler is at
``scheduler`` (``tcp://host:8786``).

Each Dask task (:func:`execute`) starts the job as its own process
(``python -m recopt.bench.job``) in a new process group, polls it, and kills the
whole group with SIGKILL when the job exceeds its ``timeout``: the record then
says ``status = "timeout"``; a job process that dies otherwise gives
``status = "crashed"`` with its exit code and the end of its stderr. Only that job
is lost; the Dask worker goes on with the next one. The job process dies with its
Dask worker (``PR_SET_PDEATHSIG``) and the Dask worker processes with the runner
(distributed's nanny watches its parent), so killing the runner leaves no process
behind, and running the suite again resumes: finished jobs are skipped.

Records are written by the runner (the Dask client) as results arrive, with an
atomic rename (:class:`~recopt.bench.store.Store`), so a runner killed at any
moment leaves whole records only. On a real cluster the workers need not share a
file system with the runner: instances travel through Dask as netCDF bytes,
replicated on every worker (``broadcast=True``), so a lost worker costs only the
job it was running. A job whose *Dask task* failed (its worker was killed, its
input lost) has not run to its end: it gets no record, it is resubmitted (at most
:data:`DASK_ATTEMPTS` times), and a job still without a record stays unfinished
(``summary["lost"]``) so the next run retries it. A job process that dies on its
own is a record (``crashed``). Runners sharing a store claim each job first
(:meth:`~recopt.bench.store.Store.claim`): two runners never run one job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
from tqdm import tqdm

from recopt.bench.job import child
from recopt.bench.record import machine_info, tree_rss
from recopt.bench.store import Store, tmp_name
from recopt.bench.suite import InstanceSpec, Job, expand, instance_meta, load_suite
from recopt.data import instance_hash, save

log = logging.getLogger("recopt.bench")

#: Seconds between two polls of a job process (timeout check and RSS sampling).
POLL_SECONDS = 0.1
#: Characters of a crashed job's stderr kept in its record.
STDERR_TAIL = 4000


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _instance_file(job: dict, instance_bytes: bytes | None, workdir: Path) -> str:
    path = job.get("instance_path")
    if path and os.path.isfile(path):
        return path
    if instance_bytes is None:
        raise FileNotFoundError(f"instance file {path} is not on this machine and no bytes "
                                "were sent")
    cache = Path(tempfile.gettempdir()) / f"recopt-bench-{job['instance_hash'][:32]}.nc"
    if not cache.is_file():
        tmp = workdir / "instance.nc"
        tmp.write_bytes(instance_bytes)
        os.replace(tmp, cache)
    return str(cache)


class _Subprocess:
    """A job in a fresh interpreter (``python -m recopt.bench.job``): the fallback."""

    def __init__(self, job_file, out_file, err_file):
        with open(err_file, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "recopt.bench.job", str(job_file), str(out_file),
                 str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True)
        self.pid = self.proc.pid

    def poll(self):
        return self.proc.poll()

    def wait(self):
        return self.proc.wait()


class _Forked:
    """A job forked from the warm fork server (:mod:`recopt.bench.preload`)."""

    def __init__(self, job_file, out_file, err_file):
        self.proc = _context().Process(target=child, args=(str(job_file), str(out_file),
                                                           str(err_file)))
        self.proc.start()
        self.pid = self.proc.pid

    def poll(self):
        return self.proc.exitcode

    def wait(self):
        self.proc.join()
        return self.proc.exitcode


_CTX = None


def _noop() -> None:
    pass


def _context():
    """The multiprocessing context of job processes: a fork server preloaded warm.

    The first call starts the server and waits for its warm-up (a trivial process is
    forked and joined), so that no job's timeout pays for it.
    """
    global _CTX
    if _CTX is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["recopt.bench.preload"])
        p = ctx.Process(target=_noop)
        p.start()
        p.join()
        _CTX = ctx
    return _CTX


def _can_fork_server() -> bool:
    # a daemonic process (a Dask worker started with distributed.worker.daemon = True,
    # dask's default) may not have multiprocessing children
    return "forkserver" in mp.get_all_start_methods() and not mp.current_process().daemon


def execute(job: dict, instance_bytes: bytes | None = None) -> dict:
    """Run one job in its own process group and return its record (a Dask task).

    Parameters
    ----------
    job : dict
        :meth:`Job.to_dict`.
    instance_bytes : bytes, optional
        The instance's netCDF file, for workers that cannot read ``job["instance_path"]``.
    """
    starter = _Forked if _can_fork_server() else _Subprocess
    if starter is _Forked:
        _context()  # start the warm fork server outside the job's time
    workdir = Path(tempfile.mkdtemp(prefix="recopt-bench-job-"))
    started = _now()
    t0 = time.perf_counter()
    record = {**job, "instance": job["instance_meta"], "started_at": started}
    record.pop("instance_meta")
    try:
        inst = _instance_file(job, instance_bytes, workdir)
        job_file, out_file, err_file = (workdir / n for n in ("job.json", "out.json",
                                                               "stderr.txt"))
        job_file.write_text(json.dumps({"job": job, "instance_path": inst}))
        err_file.touch()
        proc = starter(job_file, out_file, err_file)
        record["job_process"] = "forkserver" if starter is _Forked else "subprocess"
        ps = psutil.Process(proc.pid)
        peak = 0
        timed_out = False
        deadline = t0 + float(job["timeout"])
        try:
            while proc.poll() is None:
                peak = max(peak, tree_rss(ps))
                if time.perf_counter() > deadline:
                    timed_out = True
                    break
                time.sleep(POLL_SECONDS)
        finally:
            # the whole group (the job's own solver workers too); the job itself in case
            # it had not yet made its group
            _kill_group(proc.pid)
            try:
                ps.kill()
            except psutil.Error:
                pass
            proc.wait()
        elapsed = time.perf_counter() - t0
        rc = proc.poll()
        record["returncode"] = rc
        if out_file.is_file() and not timed_out:
            out = json.loads(out_file.read_text())
            _fill_from_result(record, out, peak)
        elif timed_out:
            record.update(status="timeout", message=f"killed after the job's timeout of "
                          f"{job['timeout']:g} s", peak_rss_mib=peak / 2**20)
        else:
            tail = err_file.read_text(errors="replace")[-STDERR_TAIL:]
            why = f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exit code {rc}"
            record.update(status="crashed", message=f"job process died ({why})",
                          stderr_tail=tail, peak_rss_mib=peak / 2**20)
        record.setdefault("times", {})["job"] = elapsed
        if "machine" not in record:
            record["machine"] = machine_info()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record["finished_at"] = _now()
    record["worker_pid"] = os.getpid()
    return record


def _fill_from_result(record: dict, out: dict, polled_peak: int) -> None:
    a = out["attrs"]
    record.update(
        status=a.get("status"), message=a.get("message", ""),
        solver_version=a.get("solver_version"),
        objective=a.get("objective"), bound=a.get("bound"), gap=a.get("gap"),
        times={k: a.get(f"{k}_seconds") for k in ("build", "compile", "solve", "extract",
                                                   "wall")}
        | {"load": out.get("load_seconds"), "warmup": out.get("warmup_seconds")},
        sizes={"variables": a.get("n_variables"), "constraints": a.get("n_constraints"),
               "integers": a.get("n_integer"), "blocks": a.get("blocks")},
        # polled tree RSS can miss a short peak; getrusage cannot, but is per process
        peak_rss_mib=max(polled_peak / 2**20, out.get("peak_rss_mib_self", 0.0),
                         out.get("peak_rss_mib_children", 0.0)),
        result_attrs=a, machine=out.get("machine"),
    )
    for k in ("root_gap", "root_bound", "lp_bound", "iterations"):  # MILPs may report them
        if k in a:
            record[k] = a[k]
    rel = out.get("relaxation")
    if rel is not None:
        record["relaxation"] = rel
        if rel.get("lp_status") == "optimal":
            record.setdefault("lp_bound", rel["lp_bound"])
        if rel.get("root_bound") is not None:
            record.setdefault("root_bound", rel["root_bound"])
    obj = a.get("objective")
    for bound, gap in (("lp_bound", "lp_gap"), ("root_bound", "root_gap")):
        if gap not in record:
            record[gap] = relative_gap(obj, record.get(bound))


def relative_gap(objective, bound):
    """(objective - bound) / |objective| (as ``benchmarks/bench_loops.py``), None if unknown.

    Positive for a minimisation whose bound is below the objective.
    """
    if not isinstance(objective, int | float) or not isinstance(bound, int | float):
        return None
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return None
    return (objective - bound) / max(abs(objective), 1e-9)


# --------------------------------------------------------------------------- the runner
def _materializer(store: Store):
    """spec -> (hash, path in the store, meta); each instance written to the store once."""
    index = store.index()

    def materialize(spec: InstanceSpec):
        key = spec.key
        hit = index.get(key)
        if spec.source != "file" and hit and store.instance_path(hit["hash"]).is_file():
            return hit["hash"], str(store.instance_path(hit["hash"])), hit["meta"]
        ds = spec.materialize()
        h = instance_hash(ds)
        meta = instance_meta(ds, spec)
        path = store.instance_path(h)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            if spec.source == "file":
                assert spec.path is not None  # a file instance always has its path
                tmp = tmp_name(path)  # unique: runners sharing a store never collide
                try:
                    shutil.copyfile(spec.path, tmp)
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                save(ds, path)
        index[key] = {"hash": h, "meta": meta, "label": spec.label}
        store.write_index(index)
        return h, str(path), meta

    return materialize


def _failure_record(job: Job, exc: BaseException) -> dict:
    rec = {**job.to_dict(), "instance": job.instance_meta}
    rec.pop("instance_meta")
    rec.update(status="crashed", message=f"the Dask task failed: {type(exc).__name__}: {exc}",
               times={}, finished_at=_now())
    return rec


def plan(suite_path, store_dir, *, models=None, force=False, rerun=()):
    """(suite, all jobs, jobs to run) without running anything (instances are written).

    A job runs when it has no record, when ``force``, or when its record's status is in
    ``rerun`` (e.g. ``("timeout", "crashed")`` after raising the suite's ``timeout``,
    which is not part of the job id).
    """
    suite = load_suite(suite_path, models=models)
    store = Store(store_dir)
    jobs = expand(suite, _materializer(store), models=models)
    done = store.finished_ids()
    rerun = set(rerun or ())
    todo = [j for j in jobs if force or j.job_id not in done
            or (rerun and (store.read_valid(j.job_id) or {}).get("status") in rerun)]
    return suite, jobs, todo


#: Times a job is submitted to Dask before the run leaves it unfinished (its Dask task
#: failed each time: a lost worker, a lost input); the next run retries it.
DASK_ATTEMPTS = 3


def run_suite(suite_path, store_dir, *, workers: int | None = None,
              scheduler: str | None = None, force: bool = False,
              models: list[str] | None = None, progress: bool = True,
              rerun=()) -> dict:
    """Run a suite into a store; returns counts (jobs, skipped, ran, per status).

    Parameters
    ----------
    suite_path : path
        A suite TOML file (:mod:`recopt.bench.suite`).
    store_dir : path
        The result store (:mod:`recopt.bench.store`); created if absent.
    workers : int, optional
        Local Dask worker processes (default: the machine's cores). Ignored with
        ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).
    force : bool
        Rerun jobs that already have a record (the record is replaced).
    rerun : sequence of str
        Rerun the jobs whose record has one of these statuses (``timeout``, ``crashed``,
        ``time_limit``, ...).
    models : list of str, optional
        Only these model labels of the suite.
    progress : bool
        Show a tqdm progress bar on stderr.
    """
    from distributed import Client, LocalCluster, as_completed

    if not log.isEnabledFor(logging.INFO):  # distributed logs each worker start/stop at INFO
        logging.getLogger("distributed").setLevel(logging.ERROR)

    store = Store(store_dir)
    store.clean()
    suite, jobs, todo = plan(suite_path, store_dir, models=models, force=force, rerun=rerun)
    store.write_suite({**suite.to_json(), "jobs": len(jobs)})
    summary = {"suite": suite.name, "store": str(store.root), "jobs": len(jobs),
               "skipped": len(jobs) - len(todo), "ran": 0, "statuses": {}}
    if not todo:
        log.info("suite %s: all %d jobs already in %s", suite.name, len(jobs), store.root)
        return summary

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        import dask

        n = workers or os.cpu_count() or 1
        # non-daemonic workers may fork job processes from a warm fork server
        with dask.config.set({"distributed.worker.daemon": False}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   memory_limit=0, dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
    statuses: Counter = Counter()
    claimed: list[Job] = []
    lost: list[dict] = []
    elsewhere = 0
    try:
        for j in todo:  # one runner at a time owns a job (claims/, under a store flock)
            if not store.claim(j.job_id):
                elsewhere += 1
            elif not force and not rerun and store.has(j.job_id):  # finished meanwhile
                store.release(j.job_id)
                summary["skipped"] += 1
            else:
                claimed.append(j)
        payload: dict = {}

        def submit(j: Job, attempt: int):
            data = None
            if scheduler:  # workers may not see our files: the bytes on every worker
                if j.instance_hash not in payload:
                    assert j.instance_path is not None
                    payload[j.instance_hash] = client.scatter(
                        Path(j.instance_path).read_bytes(), hash=False, broadcast=True)
                data = payload[j.instance_hash]
            return client.submit(execute, j.to_dict(), data,
                                 key=f"recopt-job-{j.job_id}-{attempt}-{time.time_ns()}",
                                 pure=False, retries=0)

        futures = {submit(j, 1): (j, 1) for j in claimed}
        bar = tqdm(total=len(jobs), initial=summary["skipped"], desc=suite.name,
                   unit="job", disable=not progress, file=sys.stderr)
        pending = as_completed(futures)
        for fut in pending:
            job, attempt = futures.pop(fut)
            try:
                rec = fut.result()
            except Exception as exc:  # the Dask task failed (a lost worker, lost data):
                # the job did not run to its end, so it gets no record; it is resubmitted
                log.warning("job %s: the Dask task failed (attempt %d of %d): %s: %s",
                            job.job_id, attempt, DASK_ATTEMPTS, type(exc).__name__, exc)
                if attempt < DASK_ATTEMPTS:
                    payload.pop(job.instance_hash, None)  # scatter it again
                    new = submit(job, attempt + 1)
                    futures[new] = (job, attempt + 1)
                    pending.add(new)
                else:  # left unfinished: the next run retries it
                    lost.append(_failure_record(job, exc))
                    store.release(job.job_id)
                continue
            rec["runner"] = {"host": socket.gethostname(), "pid": os.getpid(),
                             "dask_attempts": attempt}
            store.write(rec)
            store.release(job.job_id)
            statuses[rec["status"]] += 1
            bar.update(1)
            bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
        bar.close()
    finally:
        for j in claimed:  # never keep a claim past this run (records written above)
            store.release(j.job_id)
        client.close()
        if cluster is not None:
            cluster.close()
    summary["ran"] = sum(statuses.values())
    summary["statuses"] = dict(statuses)
    summary["claimed_elsewhere"] = elsewhere
    summary["lost"] = [{"job_id": r["job_id"], "message": r["message"]} for r in lost]
    return summary
