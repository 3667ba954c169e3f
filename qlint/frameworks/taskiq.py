"""Everything qlint knows about Taskiq: brokers, ``@broker.task`` labels, middlewares, serializers.

From taskiq 0.11+: labels are plain metadata read by the receiver (``timeout``, run with
``anyio.fail_after`` and only a warning for sync functions: "Timeouts for sync tasks don't
work in python well.", receiver.py) and by middlewares (``retry_on_error``/``max_retries``
read only by ``SimpleRetryMiddleware``/``SmartRetryMiddleware``, default 3 retries); the
default serializer is JSON (abc/broker.py).
"""

from __future__ import annotations

import math

from typing import Callable

from qlint.frameworks._shapes import (
    all_calls, chain_of, decorated_task, find_instances, invalid_duration, match_decorator, resolved, scaled,
    wrapper_names,
)
from qlint.lint.facts import CallFact, FileFacts, Keyword, Value
from qlint.lint.model import UNKNOWN, Profile, Project, Resolved, Site, Task, Unit
from qlint.manifests.commands import WorkerCli

FRAMEWORK = "taskiq"
# Top-level packages whose import means the project uses taskiq (``engine._used``).
PACKAGE_HINTS = ("taskiq",)
SHARED = frozenset({"taskiq.async_shared_broker", "taskiq.brokers.shared_broker.async_shared_broker"})
DEFAULT_RETRY_COUNT = 3
SERIALIZERS = {"PickleSerializer": "pickle", "JSONSerializer": "json", "ORJSONSerializer": "json",
               "MSGPackSerializer": "msgpack", "CBORSerializer": "cbor"}

# ``taskiq worker module:broker`` / ``taskiq scheduler module:scheduler`` (taskiq/cli).
CLI = WorkerCli(
    programs=("taskiq",), roles={"worker": "worker", "scheduler": "scheduler"},
    value_flags={"-w": "workers", "--workers": "workers", "--max-async-tasks": "max_async_tasks",
                 "--max-threadpool-threads": "max_threadpool_threads", "--log-level": "log_level",
                 "--shutdown-timeout": "shutdown_timeout", "--ack-type": "ack_type", "-d": "app_dir",
                 "--app-dir": "app_dir", "--receiver": "receiver", "--receiver_arg": "receiver_arg",
                 "-tp": "tasks_pattern", "--tasks-pattern": "tasks_pattern", "--log-format": "log_format",
                 "--reload-dir": "reload_dir", "--max-async-tasks-jitter": "max_async_tasks_jitter",
                 "--max-prefetch": "max_prefetch", "--max-fails": "max_fails",
                 "--max-tasks-per-child": "max_tasks_per_child", "--wait-tasks-timeout": "wait_tasks_timeout",
                 "--hardkill-count": "hardkill_count", "--max-process-pool-processes": "max_process_pool_processes",
                 "--update-interval": "update_interval", "--loop-interval": "loop_interval"},
    bool_flags={"--no-parse": "no_parse", "-fsd": "fs_discover", "--fs-discover": "fs_discover",
                "--reload": "reload", "-r": "reload", "--no-propagate-errors": "no_propagate_errors",
                "--do-not-use-gitignore": "do_not_use_gitignore", "--no-configure-logging": "no_configure_logging",
                "--use-process-pool": "use_process_pool", "--skip-first-run": "skip_first_run"},
    process_flags=("workers",),  # cli/worker/args.py: ``--workers`` processes (2 by default)
    # cli/worker/args.py, run.py: ``--no-parse`` builds the receiver with ``validate_params=False``, so
    # annotated parameters get the decoded message as it is (receiver/params_parser.py is skipped);
    # ``--reload`` restarts the workers on each code change (a development aid).
    no_parse_flag="no_parse", dev_flags=("reload",),
)

PROFILE = Profile(
    FRAMEWORK, "Taskiq", time_limit=Unit("timeout"), max_retries="max_retries",
    async_loop="every task of the worker process (`--max-async-tasks`, 100 by default)",
)
INVENTORY = {
    "queue": {"default": "(the broker)"},
    "time_limit": {"norm": "time_limit"},
    "max_retries": {"norm": "max_retries"},
}


def _is_broker(name: str) -> bool:
    return name.split(".")[0].startswith("taskiq") and name.endswith("Broker")


def _class_name(project: Project, value: Value) -> str:
    if value.kind == "call" and value.call is not None:
        return project.canonical(value.call.qualified).rpartition(".")[2]
    if value.kind == "name":
        return project.canonical(value.qualified).rpartition(".")[2]
    return ""


def _retry_middleware(project: Project) -> bool | None:
    """Whether any broker gets a retry middleware: True, False, or None when qlint cannot tell."""
    found = False
    for facts in project.parsed_files():
        calls = all_calls(facts)
        for kw in facts.assigns.values():
            if kw.value.kind == "call" and kw.value.call is not None:
                calls.extend(chain_of(kw.value.call))
        for call in calls:
            if call.method in ("with_middlewares", "add_middlewares"):
                if call.has_star:
                    return None
                for arg in call.args:
                    if arg.kind not in ("call", "name"):
                        return None
                    if "Retry" in _class_name(project, arg):
                        found = True
    return found


def _task_decorators(brokers) -> Callable[[str], bool]:
    """``<broker>.task`` of a broker of the project, and the shared broker's."""
    names = set(brokers) | SHARED

    def is_target(target: str) -> bool:
        head, _, last = target.rpartition(".")
        return last == "task" and head in names
    return is_target


def collect(project: Project) -> None:
    brokers = find_instances(project, _is_broker)
    is_target = _task_decorators(brokers)
    retry_installed = _retry_middleware(project)

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
                label = task.options.pop("task_name", None)
                if label is None and dec.args:
                    label = Resolved(project.fold(dec.args[0]).value, "decorator")
                task.name = label.value if label is not None and isinstance(label.value, str) else \
                    f"{facts.module}:{fn.name}"
                _normalise(task, retry_installed)
                tasks.append(task)
                break
    project.tasks.extend(tasks)
    for instance in brokers.values():
        for call in instance.chain:
            if call.method == "with_serializer" and call.args:
                project.sites.extend(_serializer_site(project, instance.file, call, call.args[0]))
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if call.method == "with_labels" and call.inner is not None and call.inner.method == "kicker":
                site = Site(FRAMEWORK, "enqueue", facts, call, PROFILE, anchor=call.span)
                site.options = {k: resolved(project, kw, facts, "with_labels(...)") for k, kw in call.kwargs.items()}
                if "timeout" in site.options:
                    site.norm["time_limit"] = _timeout(site.options["timeout"], site)
                project.sites.append(site)


def _serializer_site(project: Project, facts: FileFacts, call: CallFact, arg: Value) -> list[Site]:
    kind = SERIALIZERS.get(_class_name(project, arg))
    if kind is None:
        return []
    site = Site(FRAMEWORK, "serializer", facts, call, PROFILE, anchor=arg.span)
    site.norm["serializer"] = Resolved(kind, "with_serializer(...)", Keyword("serializer", arg, arg.span), facts)
    return [site]


# What the receiver does with a bad ``timeout`` label (``anyio.fail_after(float(timeout))``).
INVALID = {
    "string": "the receiver's `float(timeout)` raises `ValueError` and the task fails on every run",
    "negative": "`anyio.fail_after` times out at once: the task fails on every run",
    "zero": "`anyio.fail_after(0)` times out at once: the task fails on every run",
}


def _timeout(r: Resolved, owner) -> Resolved:
    reason = invalid_duration(r, INVALID)
    if reason is not None:
        owner.invalid_values.append((r.keyword, reason))
    return scaled(r, 1, lambda v: v is None)


def _normalise(task: Task, retry_installed: bool | None) -> None:
    options = task.options
    timeout = options.get("timeout")
    task.norm["time_limit"] = _timeout(timeout, task) if timeout is not None else Resolved(math.inf, "default")
    if not task.is_async:
        task.limits_enforced = False
        task.limits_note = ("Taskiq runs a sync task in a thread it cannot stop: `timeout` only stops waiting for it "
                            "(\"Timeouts for sync tasks don't work in python well\")")
    retry = options.get("retry_on_error")
    if retry is not None and retry.value is True:
        count = options.get("max_retries")
        if count is not None:
            task.norm["max_retries"] = count
        else:
            task.norm["max_retries"] = Resolved(DEFAULT_RETRY_COUNT, retry.source, retry.keyword, retry.file)
        if retry_installed is False:
            task.retry_blocker = ("no broker in the project gets a retry middleware (`SimpleRetryMiddleware` or "
                                  "`SmartRetryMiddleware`): the labels are metadata nothing reads")
            task.norm["max_retries"] = Resolved(task.norm["max_retries"].value, retry.source, retry.keyword,
                                                retry.file)
    else:
        task.norm["max_retries"] = Resolved(0 if retry is None or retry.value is False else UNKNOWN, "default")
    for fn in [task.function] if task.function is not None else []:
        for call in fn.calls:
            if call.method == "wait_result":
                task.result_waits.append((call, "`wait_result()` waits for another task"))


def exported_names(project: Project) -> set[str]:
    """The project's brokers (a task module must spell the broker's name) and wrappers of their
    ``task`` decorator."""
    brokers = find_instances(project, _is_broker)
    return {q.rpartition(".")[2] for q in brokers} | wrapper_names(project, _task_decorators(brokers))

