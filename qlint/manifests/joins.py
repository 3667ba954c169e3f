"""Joins between a worker command in a manifest and the Python model: which tasks it runs.

The worker names its application the framework's way (Celery ``-A proj``, ``huey_consumer.py
proj.tasks.huey``, ``dramatiq proj.actors``, ``taskiq worker proj.broker:broker``, ``arq
proj.worker.WorkerSettings``, RQ's queue names). qlint takes the tasks defined under that
module path; when the command names nothing qlint can match, every task of the framework
in the project (a project usually has one application per framework).
"""

from __future__ import annotations

from qlint.lint.model import UNKNOWN, Project, Site, Task


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


def pool_kind(worker, apps: list) -> str | None:
    """The kind of pool the worker runs, lower-cased: a value of its CLI's ``kind_flag`` (Celery
    ``-P``, else the app's ``worker_pool``, else ``prefork``), "" for a framework with one kind of
    pool; None when the app's configuration that could choose it cannot be read."""
    cli = worker.command.cli
    if not cli.kind_flag:
        return ""
    flag = worker.command.flags.get(cli.kind_flag)
    if flag is not None:
        kind = flag.value
    else:
        written = app_setting(apps, cli.kind_setting)
        if written is UNKNOWN:
            return None
        kind = written.value if written is not None else cli.kind_default
    return kind.strip().lower() if isinstance(kind, str) else None


def runs_processes(worker, apps: list) -> bool:
    """Whether the worker's pool is made of processes (Celery's prefork, Huey's ``-k process``):
    the only pools whose size counts processes and that recycle them."""
    kind = pool_kind(worker, apps)
    return kind == "" or kind is not None and kind in worker.command.cli.process_kinds
