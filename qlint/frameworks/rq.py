"""Everything qlint knows about RQ: ``@job`` functions, enqueued functions, queues, ``Retry``.

Defaults from rq 2.x: ``Queue.DEFAULT_TIMEOUT = 180`` (queue.py), ``-1`` is no limit and ``0``
is rejected at enqueue (``ValueError('0 timeout is not allowed...')``), durations may be
strings such as ``"10m"`` (utils.py ``parse_timeout``), ``Retry(max, interval=0)`` (job.py),
and the default serializer is pickle (serializers.py).
"""

from __future__ import annotations

import math

from qlint.frameworks._shapes import (
    all_calls, decorated_task, duration_string, find_instances, function_for, imports_package, invalid_duration,
    is_or_subclass, match_decorator,
    resolved, scaled, undecorated_task,
)
from qlint.lint.facts import CallFact, FileFacts, Span
from qlint.lint.model import UNKNOWN, Profile, Project, Resolved, Site, Task, Unit
from qlint.manifests.commands import WorkerCli

FRAMEWORK = "rq"
# Top-level packages whose import means the project uses rq (``engine._used``).
PACKAGE_HINTS = ("rq",)
JOB = frozenset({"rq.decorators.job", "rq.job", "django_rq.job", "django_rq.decorators.job"})
QUEUE = frozenset({"rq.Queue", "rq.queue.Queue"})
WORKER = frozenset({"rq.Worker", "rq.worker.Worker", "rq.SimpleWorker", "rq.worker.SimpleWorker",
                    "rq.SpawnWorker", "rq.worker.SpawnWorker"})
RETRY = frozenset({"rq.Retry", "rq.job.Retry"})
DEFAULT_TIMEOUT = 180
# Enqueue methods: where the function is among the positional arguments, and the timeout's name.
ENQUEUE = {"enqueue": (0, "job_timeout"), "enqueue_call": (0, "timeout"), "enqueue_in": (1, "job_timeout"),
           "enqueue_at": (1, "job_timeout")}
PACKAGES = ("rq", "django_rq")

# ``rq worker`` / ``rq worker-pool`` (rq/cli/cli.py, workers.py), django-rq's ``rqworker``.
CLI = WorkerCli(
    programs=("rq", "rqworker"), roles={"worker": "worker", "worker-pool": "worker"},
    django_commands={"rqworker": "worker", "rqworker-pool": "worker"},
    value_flags={"-u": "url", "--url": "url", "-c": "config", "--config": "config", "-S": "serializer",
                 "--serializer": "serializer", "-n": "num_workers", "--num-workers": "num_workers",
                 "-w": "worker_class", "--worker-class": "worker_class", "--max-jobs": "max_jobs",
                 "--logging_level": "logging_level", "-P": "path", "--path": "path"},
    bool_flags={"-s": "with_scheduler", "--with-scheduler": "with_scheduler", "-b": "burst", "--burst": "burst"},
    # cli/workers.py: only ``worker-pool`` starts processes (``-n/--num-workers``); ``rq worker -n`` is a name.
    process_flags=("num_workers",), process_commands=("worker-pool", "rqworker-pool"),
    burst_flag="burst",
)

PROFILE = Profile(
    FRAMEWORK, "RQ", time_limit=Unit("timeout"), timeout_exceptions=("rq.timeouts.JobTimeoutException",),
)
INVENTORY = {
    "queue": {"option": "queue", "default": "default"},
    "time_limit": {"norm": "time_limit"},
    "max_retries": {"norm": "max_retries"},
}


def _unbounded(value) -> bool:
    return value == -1 or isinstance(value, float) and math.isinf(value)


def _seconds(r: Resolved) -> Resolved:
    if isinstance(r.value, str):
        parsed = duration_string(r.value)
        r = Resolved(UNKNOWN if parsed is None else parsed, r.source, r.keyword, r.file, r.env)
    return scaled(r, 1, _unbounded)


# What RQ does with a bad timeout (queue.py, utils.py ``parse_timeout``, timeouts.py).
INVALID = {
    "zero": "RQ raises `ValueError('0 timeout is not allowed. Use -1 for infinite timeout')` at enqueue",
    "string": "RQ raises `TimeoutFormatError` at enqueue (durations are digits and one of s, m, h, d)",
    "negative": "RQ sets no alarm, so the job never gets `JobTimeoutException`; the worker kills the work "
                "horse later without one (-1 is the way to say \"no limit\")",
}


def _limit(r: Resolved, owner) -> Resolved:
    reason = invalid_duration(r, INVALID, strings=True, minus_one=True)
    if reason is not None:
        owner.invalid_values.append((r.keyword, reason))
    return _seconds(r)


def collect(project: Project) -> None:
    tasks: list[Task] = []
    by_function: dict[int, Task] = {}
    for facts in project.parsed_files():
        for fn in facts.functions:
            if not fn.decorators or fn.class_name is not None:
                continue
            for dec in fn.decorators:
                with project.parsed_only("job" not in dec.dotted.lower()):
                    match = match_decorator(project, dec, JOB.__contains__)
                if match is None:
                    continue
                task = decorated_task(project, PROFILE, facts, fn, dec, match)
                if dec.args:
                    task.options.setdefault("queue", resolved_value(project, dec, facts))
                task.name = f"{facts.module}.{fn.name}"
                tasks.append(task)
                by_function[id(fn)] = task
                break
    queues = find_instances(project, QUEUE.__contains__)
    sites = _queue_sites(project)
    for facts, call in _enqueue_calls(project, queues):
        site = _enqueue_site(project, facts, call)
        position, _ = ENQUEUE[call.method]
        target = call.kwargs["f"].value if "f" in call.kwargs else call.kwargs["func"].value if (
            "func" in call.kwargs) else (call.args[position] if len(call.args) > position else None)
        found = function_for(project, target) if target is not None else None
        if found is not None:
            where, fn = found
            task = by_function.get(id(fn))
            if task is None:
                task = undecorated_task(PROFILE, where, fn)
                task.name = f"{where.module}.{fn.name}"
                tasks.append(task)
                by_function[id(fn)] = task
            site.task = task
        sites.append(site)
    for task in tasks:
        _normalise(task, [s for s in sites if s.task is task])
    project.tasks.extend(tasks)
    project.sites.extend(sites)
    project.sites.extend(_retry_sites(project))


def resolved_value(project: Project, dec: CallFact, facts: FileFacts) -> Resolved:
    folded = project.fold(dec.args[0])
    return Resolved(folded.value, "decorator", None, facts, folded.env)


def _enqueue_calls(project: Project, queues):
    for facts in project.parsed_files():
        rq_file = imports_package(facts, PACKAGES)
        for call in all_calls(facts):
            if call.method not in ENQUEUE:
                continue
            with project.parsed_only():
                receiver = project.canonical(call.qualified.rpartition(".")[0]) if call.receiver else ""
            if rq_file or receiver in queues or call.inner is not None and (
                    call.inner.dotted.rpartition(".")[2] in ("Queue", "get_queue")):
                yield facts, call


def _enqueue_site(project: Project, facts: FileFacts, call: CallFact) -> Site:
    site = Site(FRAMEWORK, "enqueue", facts, call, PROFILE, anchor=call.span)
    site.options = {k: resolved(project, kw, facts, f"{call.method}(...)") for k, kw in call.kwargs.items()}
    _, timeout_name = ENQUEUE[call.method]
    for name in {timeout_name, "job_timeout"}:
        if name in site.options:
            site.norm["time_limit"] = _limit(site.options[name], site)
    return site


def _queue_sites(project: Project) -> list[Site]:
    """``Queue(...)`` and ``Worker(...)`` constructions: default timeouts and serializers."""
    sites = []
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if not call.qualified.endswith(("Queue", "Worker")):
                continue
            target = project.canonical(call.qualified)
            kind = "queue" if is_or_subclass(project, target, QUEUE.__contains__) else "worker" if \
                is_or_subclass(project, target, WORKER.__contains__) else None
            if kind is None:
                continue
            site = Site(FRAMEWORK, kind, facts, call, PROFILE, anchor=call.span)
            site.options = {k: resolved(project, kw, facts, f"{call.dotted}(...)") for k, kw in call.kwargs.items()}
            timeout = site.options.get("default_timeout")
            if timeout is not None:
                site.norm["time_limit"] = _seconds(timeout)  # 0 falls back to 180 s: not rejected
            serializer = site.options.get("serializer")
            if serializer is None:
                site.norm["serializer"] = Resolved("pickle" if not call.has_star else UNKNOWN, "default")
            else:
                site.norm["serializer"] = Resolved(_serializer_name(project, serializer), serializer.source,
                                                   serializer.keyword, facts)
            sites.append(site)
    return sites


def _serializer_name(project: Project, r: Resolved):
    value = r.keyword.value if r.keyword is not None else None
    if isinstance(r.value, str):
        return "json" if "json" in r.value.lower() else "pickle" if "pickle" in r.value.lower() or \
            r.value.endswith("DefaultSerializer") else UNKNOWN
    if value is not None and value.kind == "name":
        name = project.canonical(value.qualified).rpartition(".")[2]
        return "pickle" if name in ("DefaultSerializer", "pickle") else "json" if "JSON" in name or name == "json" \
            else UNKNOWN
    return UNKNOWN


def _retry_sites(project: Project) -> list[Site]:
    sites = []
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if (call.method or call.dotted) != "Retry":
                continue
            if project.canonical(call.qualified) not in RETRY:
                continue
            site = Site(FRAMEWORK, "retry", facts, call, PROFILE, anchor=call.span)
            site.options = {k: resolved(project, kw, facts, "Retry(...)") for k, kw in call.kwargs.items()}
            if call.args:
                folded = project.fold(call.args[0])
                site.options.setdefault("max", Resolved(folded.value, "Retry(...)", None, facts, folded.env))
            if len(call.args) > 1:
                folded = project.fold(call.args[1])
                site.options.setdefault("interval", Resolved(folded.value, "Retry(...)", None, facts, folded.env))
            if "max" in site.options:
                site.norm["max_retries"] = site.options["max"]
            interval = site.options.get("interval")
            if interval is None:
                site.norm["retry_delay"] = Resolved(0, "default")
            elif isinstance(interval.value, (list, tuple)):
                known = [v for v in interval.value if isinstance(v, (int, float))]
                site.norm["retry_delay"] = Resolved(min(known) if known else UNKNOWN, interval.source,
                                                    interval.keyword, facts)
            else:
                site.norm["retry_delay"] = scaled(interval)
            sites.append(site)
    return sites


def _normalise(task: Task, enqueues: list[Site]) -> None:
    task.norm["max_retries"] = Resolved(0, "default")  # RQ retries only with ``retry=Retry(...)`` (a site)
    timeout = task.options.get("timeout")
    if timeout is not None:
        task.norm["time_limit"] = _limit(timeout, task)
        return
    written = [s.norm["time_limit"] for s in enqueues if "time_limit" in s.norm]
    unbounded = next((r for r in written if r.value == math.inf), None)
    if unbounded is not None:
        task.norm["time_limit"] = unbounded
    elif written and len(written) == len(enqueues) and all(isinstance(r.value, (int, float)) for r in written):
        task.norm["time_limit"] = max(written, key=lambda r: r.value)
    else:
        task.norm["time_limit"] = Resolved(DEFAULT_TIMEOUT, "default")


def apply_workers(project: Project) -> None:
    """``Retry(interval=...)`` parks each retry in the ScheduledJobRegistry: only a worker started
    with ``--with-scheduler`` (or a worker pool) moves it back to the queue (rq/job.py, rq/cli)."""
    workers = [w for w in project.workers if w.framework == FRAMEWORK and "worker" in w.command.roles]
    if not workers or any("with_scheduler" in w.command.flags or w.command.tokens[1:2] and
                          w.command.tokens[1].text == "worker-pool" for w in workers):
        return  # no worker seen (it may be started elsewhere), or one runs the scheduler
    names = ", ".join(sorted({f"{w.workload.kind} `{w.workload.name}`" for w in workers}))
    for site in project.sites:
        if site.framework != FRAMEWORK or site.kind != "retry":
            continue
        delay = site.norm.get("retry_delay")
        if delay is not None and isinstance(delay.value, (int, float)) and delay.value > 0:
            site.retry_blocker = (f"no RQ worker runs `--with-scheduler` ({names}), so the retries wait in the "
                                  "ScheduledJobRegistry forever")


def exported_names(project: Project) -> set[str]:
    """Project wrappers of ``rq.decorators.job`` and the project's queues."""
    names: set[str] = set()
    for facts in project.parsed_files():
        for name, kw in facts.assigns.items():
            v = kw.value
            if v.kind == "call" and v.call is not None and ("job" in v.call.dotted.lower() or any(
                    a.kind == "name" and "job" in a.dotted for a in v.call.args[:1])):
                fake = CallFact(dotted=name, qualified=f"{facts.module}.{name}", span=Span(0, 0), is_call=False)
                if match_decorator(project, fake, JOB.__contains__) is not None:
                    names.add(name)
    names.update(q.rpartition(".")[2] for q in find_instances(project, QUEUE.__contains__))
    return names
