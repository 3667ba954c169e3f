"""Everything qlint knows about Huey: instances, ``task``/``periodic_task`` decorators
(and ``huey.contrib.djhuey``'s), their options and defaults.

Defaults from huey 2.x/3.x ``api.py``: ``task(retries=0, retry_delay=0, retry_backoff=0,
timeout=None)``; the serializer pickles (``huey/serializer.py``). A timeout is enforced only by
the process and greenlet worker types (``consumer.py``); the default thread worker ignores
it, and which worker type runs is a consumer flag qlint reads from manifests, not code.
"""

from __future__ import annotations

import math

from typing import Callable

from qlint.frameworks._shapes import (
    decorated_task, find_instances, invalid_duration, is_or_subclass, match_decorator, resolved, scaled, wrapper_names,
)
from qlint.lint.facts import CallFact
from qlint.lint.model import UNKNOWN, Profile, Project, Resolved, Site, Task, Unit
from qlint.manifests.commands import StopSignals, WorkerCli

FRAMEWORK = "huey"
# Top-level packages whose import means the project uses huey (``engine._used``).
PACKAGE_HINTS = ("huey",)
DECORATORS = ("task", "periodic_task", "context_task")
DJHUEY = frozenset({f"huey.contrib.djhuey.{n}" for n in
                    ("task", "periodic_task", "db_task", "db_periodic_task", "on_commit_task")})

# ``huey_consumer.py path.to.huey`` (huey/bin/huey_consumer.py, consumer_options.py), djhuey's ``run_huey``.
# The consumer also runs the periodic-task scheduler unless ``-n``.
CLI = WorkerCli(
    programs=("huey_consumer",), roles={"": "worker+scheduler"}, django_commands={"run_huey": "worker+scheduler"},
    value_flags={"-w": "workers", "--workers": "workers", "-k": "worker_type", "--worker-type": "worker_type",
                 "-d": "delay", "--delay": "delay", "-m": "max_delay", "--max-delay": "max_delay",
                 "-b": "backoff", "--backoff": "backoff", "-s": "scheduler_interval",
                 "--scheduler-interval": "scheduler_interval", "-l": "logfile", "--logfile": "logfile",
                 "-g": "graceful_signal", "--graceful-signal": "graceful_signal", "-t": "shutdown_timeout",
                 "--shutdown-timeout": "shutdown_timeout"},
    bool_flags={"-n": "no_periodic", "--no-periodic": "no_periodic", "-f": "flush_locks",
                "--flush-locks": "flush_locks", "-v": "verbose", "--verbose": "verbose", "-q": "quiet"},
    removes_scheduler="no_periodic",
    # consumer_options.py: ``-w`` workers are threads (the default), greenlets or processes (``-k``).
    process_flags=("workers",), kind_flag="worker_type", process_kinds=("process",), kind_default="thread",
    # consumer.py: SIGINT stops gracefully, SIGTERM interrupts running tasks (and Huey does not ack:
    # they are lost). Huey 3.4 adds ``-g/--graceful-signal INT|TERM`` (consumer_options.py).
    stop_signals=StopSignals(
        graceful="SIGINT", flag="graceful_signal", fix=("-g", "TERM"), since="Huey 3.4",
        interrupts="Huey interrupts running tasks on the other stop signal and does not acknowledge tasks, so they "
                   "are lost (only a `SIGNAL_INTERRUPTED` handler can enqueue them again)"),
)

PROFILE = Profile(
    FRAMEWORK, "Huey", time_limit=Unit("timeout"), max_retries="retries", retry_delay=Unit("retry_delay"),
    timeout_exceptions=("huey.exceptions.TaskTimeout",), async_tasks="unsupported",
)
INVENTORY = {
    "queue": {"default": "(the Huey instance)"},
    "time_limit": {"norm": "time_limit"},
    "max_retries": {"norm": "max_retries"},
}


# What Huey does with a bad ``timeout`` (api.py ``_execute``/``_timeout_context``).
INVALID = {
    "string": "Huey computes the deadline as `start + timeout` and raises `TypeError` before the task runs, "
              "on every run",
    "negative": "Huey treats a timeout <= 0 as none: the task runs with no limit",
}


def _is_huey(name: str) -> bool:
    return name.startswith("huey.") and name.endswith("Huey") or name == "huey.contrib.djhuey.HUEY"


def _task_decorators(instances) -> Callable[[str], bool]:
    """Huey's task decorators: ``<instance>.task``/``periodic_task``/... and djhuey's."""
    names = set(instances) | {"huey.contrib.djhuey.HUEY"}

    def is_target(target: str) -> bool:
        head, _, last = target.rpartition(".")
        return target in DJHUEY or last in DECORATORS and head in names
    return is_target


def collect(project: Project) -> None:
    instances = find_instances(project, _is_huey)
    is_target = _task_decorators(instances)
    tasks: list[Task] = []
    for facts in project.parsed_files():
        for fn in facts.functions:
            if not fn.decorators or fn.class_name is not None or fn.outer:  # fn.outer: a factory's template
                continue
            for dec in fn.decorators:
                with project.parsed_only("task" not in dec.dotted.lower()):
                    match = match_decorator(project, dec, is_target, facts)
                if match is None:
                    continue
                task = decorated_task(project, PROFILE, facts, fn, dec, match)
                name = task.options.get("name")
                task.name = name.value if name is not None and isinstance(name.value, str) else \
                    f"{facts.module}.{fn.name}"
                _normalise(task)
                tasks.append(task)
                break
    project.tasks.extend(tasks)
    by_instance: dict[str, Resolved] = {}
    for qualified, instance in instances.items():
        site = Site(FRAMEWORK, "broker", instance.file, instance.call, PROFILE, anchor=instance.call.span)
        site.options = {k: resolved(project, kw, instance.file, f"{instance.call.dotted}(...)")
                        for k, kw in instance.call.kwargs.items()}
        site.norm["serializer"] = by_instance[qualified] = _serializer(project, instance.call, site.options)
        project.sites.append(site)
    for task in tasks:  # the serializer of the instance whose decorator made the task
        if task.decorator is None or not task.decorator.qualified:
            continue
        with project.parsed_only():
            head = project.canonical(task.decorator.qualified).rpartition(".")[0]
            chosen = by_instance.get(project.canonical(head))
        if chosen is not None:
            task.norm["serializer"] = Resolved(chosen.value, f"the Huey instance ({chosen.source})")


# Instances whose messages never reach a storage another process can write (api.py, storage.py):
# ``MemoryHuey`` keeps them in a list, ``BlackHoleHuey`` drops them.
IN_MEMORY = frozenset({"huey.MemoryHuey", "huey.api.MemoryHuey"})
NO_STORAGE = frozenset({"huey.BlackHoleHuey", "huey.api.BlackHoleHuey"})
IN_MEMORY_STORAGE = frozenset({"huey.storage.MemoryStorage", "huey.MemoryStorage"})
NO_STORAGE_STORAGE = frozenset({"huey.storage.BlackHoleStorage", "huey.BlackHoleStorage"})


def _serializer(project: Project, call: CallFact, options: dict[str, Resolved]) -> Resolved:
    """What a Huey instance serializes its messages with, and where they go. Every Huey pickles
    (``Serializer``) unless given ``serializer=``; only a storage outside the process makes that
    something another process can exploit. ``immediate=True`` runs tasks in the calling process
    on ``MemoryStorage`` (unless ``immediate_use_memory=False``: api.py ``create_storage``)."""
    if "serializer" in options:
        return Resolved(None, "serializer=")
    if call.has_star:
        return Resolved(UNKNOWN, f"`**` in `{call.dotted}(...)`")
    with project.parsed_only():
        target = project.canonical(call.qualified)
        if is_or_subclass(project, target, NO_STORAGE.__contains__):
            return Resolved(None, "BlackHoleHuey stores nothing")
        in_memory = is_or_subclass(project, target, IN_MEMORY.__contains__)
        storage = options.get("storage_class")
        if storage is not None and storage.keyword is not None and storage.keyword.value.kind == "name":
            storage_class = project.canonical(storage.keyword.value.qualified)
            if is_or_subclass(project, storage_class, NO_STORAGE_STORAGE.__contains__):
                return Resolved(None, "a storage that stores nothing")
            in_memory = is_or_subclass(project, storage_class, IN_MEMORY_STORAGE.__contains__)
    if in_memory:
        return Resolved("pickle", "in-process storage")
    immediate, use_memory = options.get("immediate"), options.get("immediate_use_memory")
    if immediate is not None and immediate.value is not False and immediate.value is not None:
        if immediate.value is UNKNOWN:
            return Resolved(UNKNOWN, "`immediate=` qlint cannot read")
        if use_memory is None or use_memory.value is True:  # ``execute(task)`` at once: nothing is serialized
            return Resolved(None, "immediate mode: tasks run in the calling process")
        if use_memory.value is UNKNOWN:
            return Resolved(UNKNOWN, "`immediate_use_memory=` qlint cannot read")
    return Resolved("pickle", "default")


def _normalise(task: Task) -> None:
    options = task.options
    timeout = options.get("timeout")
    if timeout is not None:
        reason = invalid_duration(timeout, INVALID)
        if reason is not None:
            task.invalid_values.append((timeout.keyword, reason))
        limit = scaled(timeout, 1, lambda v: v is None)
        task.norm["time_limit"] = limit
    else:
        task.norm["time_limit"] = Resolved(math.inf, "default")
    # Enforced by the process and greenlet workers only: which one runs is a consumer flag.
    task.limits_enforced = None
    task.limits_note = "Huey enforces `timeout` only with the process or greenlet worker type (`-k`)"
    retries = options.get("retries")
    task.norm["max_retries"] = Resolved(retries.value, retries.source, retries.keyword, retries.file) \
        if retries is not None else Resolved(0, "default")
    delay = options.get("retry_delay")
    task.norm["retry_delay"] = scaled(delay) if delay is not None else Resolved(0, "default")
    for fn in [task.function] if task.function is not None else []:
        for call in fn.calls:
            blocking = call.kwargs.get("blocking")
            if blocking is not None and blocking.value.is_const and blocking.value.value is True:
                task.result_waits.append((call, "`blocking=True` waits for another task's result"))


ENFORCING_WORKERS = frozenset({"process", "greenlet"})  # consumer.py: ThreadEnvironment has no timeout


def apply_workers(project: Project) -> None:
    """The consumer's worker type decides whether ``timeout`` is enforced (``-k``, default thread)."""
    from qlint.manifests.joins import tasks_of

    for worker in project.workers:
        if worker.framework != FRAMEWORK or "worker" not in worker.command.roles:
            continue
        kind = worker.command.flags.get("worker_type")
        value = kind.value if kind is not None and kind.value else "thread"
        where = f"{worker.workload.kind} `{worker.workload.name}`"
        for task in tasks_of(project, worker):
            if value in ENFORCING_WORKERS:
                task.limits_enforced = True
                task.limits_note = f"the `{value}` consumer ({where}) enforces `timeout`"
            elif task.limits_enforced is None:
                task.limits_enforced = False
                task.limits_note = (f"the consumer in {where} runs the `{value}` worker type"
                                    f"{' (the default)' if kind is None else ''}, which never enforces `timeout`")


def exported_names(project: Project) -> set[str]:
    """The project's Huey instances (``from proj.app import huey``) and decorator wrappers."""
    instances = find_instances(project, _is_huey)
    names = {q.rpartition(".")[2] for q in instances}
    for facts in project.parsed_files():
        for name, kw in facts.assigns.items():
            v = kw.value
            if v.kind == "name" and any(v.qualified.startswith(q + ".") for q in instances):
                names.add(name)  # ``task = huey.task``
    return names | wrapper_names(project, _task_decorators(instances))
