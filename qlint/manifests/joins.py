"""Joins between a worker command in a manifest and the Python model: which tasks it runs.

The worker names its application the framework's way (Celery ``-A proj``, ``huey_consumer.py
proj.tasks.huey``, ``dramatiq proj.actors``, ``taskiq worker proj.broker:broker``, ``arq
proj.worker.WorkerSettings``, RQ's queue names). qlint takes the tasks defined under that
module path; when the command names nothing qlint can match, every task of the framework
in the project (a project usually has one application per framework).
"""

from __future__ import annotations

from dataclasses import dataclass

from qlint.lint.model import UNKNOWN, Project, Resolved, Site, Task
from qlint.manifests.commands import Flag


def _module_of(reference: str) -> str:
    """``proj.celery:app`` / ``proj.celery.app`` / ``proj`` -> a module prefix to match."""
    module = reference.split(":")[0]
    return module


def tasks_of(project: Project, worker) -> list[Task]:
    tasks = [t for t in project.tasks if t.framework == worker.framework]
    reference = None
    app = worker.command.flags.get("app")
    if app is not None and app.value:
        reference = app.value
    elif worker.command.positional:
        reference = worker.command.positional[0].text
    if reference:
        module = _module_of(reference)
        top = module.split(".")[0]
        matched = [t for t in tasks if t.file.module == top or t.file.module.startswith(top + ".")
                   or any(a.qualified.startswith(top + ".") or a.qualified == module for a in t.apps)]
        if matched:
            return matched
    return tasks


def workers_of(project: Project, app) -> list:
    """The worker commands (in manifests, Procfiles and shell scripts) that run ``app``: those that
    run one of its tasks, those whose app reference (``-A proj``) names its module, and, when the
    project has no other app of the framework, those that name nothing qlint can match."""
    apps = [a for a in project.apps if a.framework == app.framework]
    found = []
    for worker in [*project.workers, *getattr(project, "script_workers", [])]:
        if worker.framework != app.framework or "worker" not in worker.command.roles:
            continue
        reference = _reference(worker)
        if any(app in task.apps for task in tasks_of(project, worker)):
            found.append(worker)
        elif reference:
            module = _module_of(reference)
            top = module.split(".")[0]
            if app.qualified == module or app.qualified.startswith(top + "."):
                found.append(worker)
        elif len(apps) == 1:
            found.append(worker)
    return found


def _reference(worker) -> str | None:
    app = worker.command.flags.get("app")
    if app is not None and app.value:
        return app.value
    return worker.command.positional[0].text if worker.command.positional else None


def settings_of(project: Project, worker) -> Site | None:
    """The worker-settings class a worker command names (``arq proj.worker.WorkerSettings``): the
    class at that dotted path, else the project's only settings class of that name (the module path
    qlint computes may differ from the import path, a ``src/`` layout)."""
    sites = [s for s in project.sites if s.kind == "worker-settings" and s.framework == worker.framework
             and s.cls is not None]
    reference = worker.command.positional[0].text if worker.command.positional else ""
    for site in sites:
        if reference == f"{site.file.module}.{site.cls.name}":
            return site
    named = [s for s in sites if not reference or reference.rsplit(".", 1)[-1] == s.cls.name]
    return named[0] if len(named) == 1 else None


def setting(site: Site, name: str, default):
    """A settings-class attribute's value: as written, ``default`` when the class does not set it and
    has no base class to inherit it from, UNKNOWN otherwise."""
    value = site.options.get(name)
    if value is not None:
        return value.value
    if any(not (base.kind == "name" and base.dotted == "object") for base in site.cls.bases):
        return UNKNOWN
    return default


def apps_of(project: Project, worker) -> list:
    """The apps whose configuration the worker runs: those of the tasks it runs, else every app
    of its framework."""
    apps = list({id(a): a for t in tasks_of(project, worker) for a in t.apps}.values())
    return apps or [a for a in project.apps if a.framework == worker.framework]


def app_setting(apps: list, name: str):
    """The one value the apps give ``name``: None when none sets it, UNKNOWN when they disagree
    or a configuration cannot be fully read."""
    if not name:
        return None
    written = []
    for app in apps:
        if not app.config_complete:
            return UNKNOWN
        resolved = app.settings.get(name)
        if resolved is not None and resolved.value is not None:
            written.append(resolved)
    if not written:
        return None
    if len(written) < len(apps) or len({repr(r.value) for r in written}) > 1 or not written[0].known:
        return UNKNOWN
    return written[0]


@dataclass
class PoolChoice:
    """The kind of pool a worker runs (lower-cased: ``prefork``, ``gevent``; "" for a framework with
    one kind) and where that comes from."""

    kind: str
    where: str  # "`-P gevent`", "`worker_pool = 'threads'` (proj/settings.py:3)", "Celery's default"
    flag: Flag | None = None  # the flag that chose it, or that let the setting choose (``-P prefork``)
    setting: Resolved | None = None  # the app's setting that chose it, when the configuration did


def pool_choice(worker, apps: list) -> PoolChoice | None:
    """The pool the worker runs: its CLI's ``kind_flag`` (Celery ``-P``), else the apps'
    ``kind_setting`` (``worker_pool``), else the CLI's default. A flag value in ``kind_deferring``
    (Celery >= 5.1's ``-P prefork``) still lets the setting choose. None when qlint cannot tell: a
    value from the environment, words that may hold other flags (``$EXTRA_ARGS``), or a
    configuration it cannot fully read."""
    cli = worker.command.cli
    if worker.command.opaque:
        return None
    if not cli.kind_flag:
        return PoolChoice("", "")
    flag = worker.command.flags.get(cli.kind_flag)
    if flag is not None:
        value = (flag.value or "").strip()
        if not value or "$" in value:
            return None
        shown = f"`{flag.token.text}`" if "=" in flag.token.text or flag.token.text.endswith(value) \
            else f"`{flag.token.text} {value}`"
        if value.lower() not in cli.kind_deferring:
            return PoolChoice(value.lower(), shown, flag=flag)
    written = app_setting(apps, cli.kind_setting)
    if written is UNKNOWN:
        return None
    if written is not None:
        if not isinstance(written.value, str):
            return None
        source = f"{written.source} (default of environment variable {written.env})" if written.env else \
            written.source
        return PoolChoice(written.value.strip().lower(), f"`{cli.kind_setting}` ({source})", flag=flag,
                          setting=written)
    default = f"`{flag.token.text}`" if flag is not None else "the default"
    return PoolChoice(cli.kind_default, default, flag=flag)


def pool_kind(worker, apps: list) -> str | None:
    """The kind of pool the worker runs, lower-cased: a value of its CLI's ``kind_flag`` (Celery
    ``-P``, else the app's ``worker_pool``, else ``prefork``), "" for a framework with one kind of
    pool; None when qlint cannot tell (``pool_choice``)."""
    choice = pool_choice(worker, apps)
    return choice.kind if choice is not None else None


def may_run(project: Project, worker, task: Task) -> bool:
    """Whether the worker may run the task. A Celery worker that names its queues (``-Q a,b``) does
    not run a task routed only to other queues (its ``queue``, ``task_routes``, ``queue=`` on its
    calls). A task that goes to the default queue counts whatever the worker names: the default
    may come from where qlint does not look (the container's environment, a router). Queues declared
    in ``task_queues`` may bind other routing keys than their names: every task counts then too."""
    from qlint.frameworks.celery_failures import task_queues

    flag = worker.command.flags.get("queues")
    if worker.framework != "celery" or flag is None or not flag.value or "$" in flag.value:
        return True
    if any(app.settings.get("task_queues") is not None for app in task.apps):
        return True
    routed = task_queues(project, task)
    default = _default_queue_name(task)
    if routed is None or default is None or default in routed:
        return True
    consumed = {name.strip() for name in flag.value.split(",") if name.strip()}
    return bool(routed & consumed)


def _default_queue_name(task: Task) -> str | None:
    names = set()
    for app in task.apps:
        written = app.settings.get("task_default_queue")
        names.add(written.value if written is not None else "celery")
    name = names.pop() if len(names) == 1 else None
    return name if isinstance(name, str) else None


def runs_processes(worker, apps: list) -> bool:
    """Whether the worker's pool is made of processes (Celery's prefork, Huey's ``-k process``):
    the only pools whose size counts processes and that recycle them."""
    kind = pool_kind(worker, apps)
    return kind == "" or kind is not None and kind in worker.command.cli.process_kinds
