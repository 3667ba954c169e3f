"""Helpers several rules share: where to write an option, how to phrase a source."""

from __future__ import annotations

from qlint.fixers.calls import add_class_attributes, add_keywords
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit
from qlint.lint.model import Resolved, Task


def soft_limit_below(hard: float) -> int | float:
    """A soft limit that leaves the task time to clean up: 10% of the hard limit, 30 s at least."""
    margin = max(30, hard // 10)
    if margin >= hard:
        margin = max(1, hard // 10) if hard > 1 else hard / 2
    soft = hard - margin
    return int(soft) if float(soft).is_integer() else soft


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def add_task_options(ctx: RuleContext, task: Task, items: list[tuple[str, str]]) -> list[Edit]:
    """Edits that add options to a task: decorator keywords, or class attributes for class-based tasks."""
    src = ctx.source(task.file)
    if task.decorator is not None and not task.accepts_options:
        return []  # e.g. ``task = app.task(acks_late=True)`` used as ``@task``: it takes a function only
    if task.decorator is not None:
        return add_keywords(src, task.decorator, items)
    if task.cls is not None:
        return add_class_attributes(src, task.cls, items)
    return []


def where(resolved: Resolved) -> str:
    source = resolved.source
    if resolved.env:
        return f"{source} (default of environment variable {resolved.env})"
    return source


def is_celery(task: Task) -> bool:
    return task.framework == "celery"
