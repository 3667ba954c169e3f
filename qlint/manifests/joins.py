"""Joins between a worker command in a manifest and the Python model: which tasks it runs.

The worker names its application the framework's way (Celery ``-A proj``, ``huey_consumer.py
proj.tasks.huey``, ``dramatiq proj.actors``, ``taskiq worker proj.broker:broker``, ``arq
proj.worker.WorkerSettings``, RQ's queue names). qlint takes the tasks defined under that
module path; when the command names nothing qlint can match, every task of the framework
in the project (a project usually has one application per framework).
"""

from __future__ import annotations

from qlint.lint.model import Project, Task


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
