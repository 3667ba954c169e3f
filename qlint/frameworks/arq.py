"""Everything qlint knows about arq: ``WorkerSettings`` classes, ``func``/``cron`` options,
``enqueue_job`` results and serializers.

Defaults from arq 0.26 ``worker.py``: ``job_timeout=300`` s, ``max_tries=5`` (cron jobs:
``max_tries=1``, ``cron.py``), a function's ``timeout=None`` falls back to ``job_timeout``,
and jobs are pickled unless ``job_serializer`` is set on both the pool and the worker.
"""

from __future__ import annotations

from qlint.frameworks._shapes import (
    all_calls, function_for, imports_package, invalid_duration, resolved, scaled, undecorated_task,
)
from qlint.lint.facts import FileFacts, Span, Value
from qlint.lint.model import UNKNOWN, Profile, Project, Resolved, Site, Task, Unit
from qlint.manifests.commands import WorkerCli

FRAMEWORK = "arq"
# Top-level packages whose import means the project uses arq (``engine._used``).
PACKAGE_HINTS = ("arq",)
FUNC = frozenset({"arq.func", "arq.worker.func"})
CRON = frozenset({"arq.cron", "arq.cron.cron"})
CREATE_POOL = frozenset({"arq.create_pool", "arq.connections.create_pool"})
DEFAULT_JOB_TIMEOUT = 300
DEFAULT_MAX_TRIES = 5
CRON_MAX_TRIES = 1

# What the worker does with a bad ``timeout`` (``asyncio.wait_for(..., timeout_s)``).
INVALID = {
    "string": "arq keeps it as given and the worker fails at start-up with `TypeError` when it adds 10 s to the "
              "longest timeout",
    "negative": "`asyncio.wait_for` times out at once: the job fails on every run",
    "zero": "`asyncio.wait_for(..., 0)` times out at once: the job fails on every run",
}

# ``arq module.WorkerSettings`` (arq/cli.py).
CLI = WorkerCli(programs=("arq",), roles={"": "worker"},
                value_flags={"--custom-log-dict": "custom_log_dict", "--watch": "watch"},
                bool_flags={"--burst": "burst", "--no-burst": "no_burst", "--check": "check", "-v": "verbose",
                            "--verbose": "verbose"},
                # worker.py: ``job_completion_wait=0`` cancels running jobs as soon as SIGTERM/SIGINT arrives;
                # ``handle_signals=False`` installs no handler for either (meant for a worker run inside
                # another event loop), so SIGTERM ends the process with its jobs in flight.
                shutdown_setting="job_completion_wait", shutdown_default=0.0, burst_flag="burst",
                signals_setting="handle_signals",
                # cli.py: ``--check`` runs a health check and exits (no worker); ``--watch DIR`` reloads the
                # worker when a file under DIR changes (a development aid).
                probe_flags=("check",), dev_flags=("watch",))

PROFILE = Profile(
    FRAMEWORK, "arq", time_limit=Unit("timeout"),
    async_loop="every job of the worker (`max_jobs`, 10 by default)",
    implicit_retries="re-runs a job up to 5 times in all when it is cancelled, cut off by a shutdown or "
                     "raises `Retry`",
)
INVENTORY = {
    "queue": {"default": "arq:queue"},
    "time_limit": {"norm": "time_limit"},
    "max_retries": {"norm": "max_retries"},
    "serializer": {"norm": "serializer"},
}


PROTOCOL = frozenset({"typing.Protocol", "typing_extensions.Protocol"})


def _settings_classes(project: Project):
    """Classes that configure an arq worker: ``functions`` or ``cron_jobs`` set to something (arq
    refuses a worker with neither), in a module that imports arq. A ``typing.Protocol`` that
    declares those attributes (arq's own ``WorkerSettingsBase``, ``cron_jobs: ... = None``) is a
    type, not a worker's settings (a class deriving from that protocol is concrete and counts)."""
    for facts in project.parsed_files():
        if not imports_package(facts, ("arq",)):
            continue
        for cls in facts.classes:
            registered = [cls.attrs[a].value for a in ("functions", "cron_jobs") if a in cls.attrs]
            if not any(not (v.is_const and v.value is None) for v in registered):
                continue
            # Only ``Protocol`` among its own bases makes a protocol: a class deriving from one is concrete.
            with project.parsed_only():
                if any(b.kind == "name" and project.canonical(b.qualified) in PROTOCOL for b in cls.bases):
                    continue
            yield facts, cls


def collect(project: Project) -> None:
    tasks: dict[int, Task] = {}
    for facts, cls in _settings_classes(project):
        worker = {name: resolved(project, kw, facts, f"{cls.name}.{name}") for name, kw in cls.attrs.items()}
        site = Site(FRAMEWORK, "worker-settings", facts, None, PROFILE, cls=cls,
                    anchor=Span(cls.header.start, cls.header.start), options=worker)
        site.norm["serializer"] = Resolved("pickle", "default") if "job_serializer" not in worker else \
            Resolved(None, f"{cls.name}.job_serializer")
        project.sites.append(site)
        for attr, wrappers, tries in (("functions", FUNC, DEFAULT_MAX_TRIES), ("cron_jobs", CRON, CRON_MAX_TRIES)):
            kw = cls.attrs.get(attr)
            value = kw.value if kw is not None else None
            if value is not None and value.kind == "name":  # ``functions = BACKGROUND_FUNCTIONS``
                found = project.assignment(project.canonical(value.qualified))
                value = found[1].value if found is not None else None
            if value is None or value.kind != "seq":
                continue
            for element in value.elements:
                found = _registered(project, facts, element, wrappers)
                if found is None:
                    continue
                (where, fn), options = found
                if id(fn) in tasks:
                    continue  # registered twice (``functions`` and ``cron_jobs``): the first one describes it
                task = undecorated_task(PROFILE, where, fn)
                task.name = fn.name
                tasks[id(fn)] = task
                task.options.update(options)
                _normalise(task, worker, tries, options)
                task.norm["serializer"] = site.norm["serializer"] if site.norm["serializer"].value == "pickle" else \
                    Resolved(UNKNOWN, f"{cls.name}.job_serializer", worker["job_serializer"].keyword, facts)
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if (call.method or call.dotted) == "create_pool" and project.canonical(call.qualified) in CREATE_POOL:
                site = Site(FRAMEWORK, "pool", facts, call, PROFILE, anchor=call.span)
                site.options = {k: resolved(project, kw, facts, "create_pool(...)") for k, kw in call.kwargs.items()}
                site.norm["serializer"] = Resolved("pickle", "default") if (
                    "job_serializer" not in call.kwargs and not call.has_star) else Resolved(None, "create_pool(...)")
                project.sites.append(site)
    for task in tasks.values():
        _waits(task)
    project.tasks.extend(tasks.values())


def _registered(project: Project, facts: FileFacts, element: Value, wrappers: frozenset[str]):
    """The coroutine an entry of ``functions``/``cron_jobs`` registers, with ``func``/``cron`` options."""
    if element.kind == "call" and element.call is not None:
        call = element.call
        if project.canonical(call.qualified) not in wrappers:
            return None
        target = call.args[0] if call.args else call.kwargs["coroutine"].value if "coroutine" in call.kwargs else None
        found = function_for(project, target) if target is not None else None
        if found is None:
            return None
        where = "func(...)" if wrappers is FUNC else "cron(...)"
        options = {k: resolved(project, kw, facts, where) for k, kw in call.kwargs.items() if k != "coroutine"}
        return found, options
    found = function_for(project, element)
    return (found, {}) if found is not None else None


def _normalise(task: Task, worker: dict[str, Resolved], tries: int, options: dict[str, Resolved]) -> None:
    timeout = options.get("timeout")
    if timeout is not None and timeout.value is not None:
        reason = invalid_duration(timeout, INVALID)
        if reason is not None:
            task.invalid_values.append((timeout.keyword, reason))
        task.norm["time_limit"] = scaled(timeout)
    elif "job_timeout" in worker:
        task.norm["time_limit"] = scaled(worker["job_timeout"], 1, lambda v: v is None)
    else:
        task.norm["time_limit"] = Resolved(DEFAULT_JOB_TIMEOUT, "default")
    limit = options.get("max_tries") or (worker.get("max_tries") if tries == DEFAULT_MAX_TRIES else None)
    retry_jobs = worker.get("retry_jobs")
    if retry_jobs is not None and retry_jobs.value is False:  # the worker re-runs nothing
        task.norm["max_retries"] = Resolved(0, retry_jobs.source, retry_jobs.keyword, retry_jobs.file)
    elif limit is not None:
        value = limit.value - 1 if isinstance(limit.value, int) and not isinstance(limit.value, bool) else UNKNOWN
        task.norm["max_retries"] = Resolved(value, limit.source, limit.keyword, limit.file)
    else:
        task.norm["max_retries"] = Resolved(tries - 1, "default")


def _waits(task: Task) -> None:
    fn = task.function
    if fn is None:
        return
    jobs = {name for name, v in fn.local_calls.items() if v.call is not None and v.call.method == "enqueue_job"}
    for call in fn.calls:
        if call.method != "result":
            continue
        if call.receiver in jobs or call.inner is not None and call.inner.method == "enqueue_job":
            task.result_waits.append((call, "`job.result()` waits for another job"))


def exported_names(project: Project) -> set[str]:
    return set()  # arq registers functions by listing them in WorkerSettings: that module spells arq

