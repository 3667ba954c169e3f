"""Helpers several rules share: where to write an option, how to phrase a source."""

from __future__ import annotations

from collections.abc import Iterator

from qlint.fixers.calls import add_class_attributes, add_keywords
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit
from qlint.lint.facts import CallFact, FunctionFact
from qlint.lint.model import Project, Resolved, Task


def soft_limit_below(hard: float) -> int | float:
    """A soft limit that leaves the task time to clean up: 10% of the hard limit, 30 s at least."""
    margin = max(30, hard // 10)
    if margin >= hard:
        margin = max(1, hard // 10) if hard > 1 else hard / 2
    soft = hard - margin
    return int(soft) if float(soft).is_integer() else soft


def capitalized(text: str) -> str:
    """A message fragment made a sentence's start (only the first letter changes: `names` stay)."""
    return text[:1].upper() + text[1:]


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


def written_on_task(resolved: Resolved) -> bool:
    """Set where the task is defined (decorator, wrapper defaults, a task or base class),
    not by ``task_annotations`` or a global setting."""
    return resolved.source.startswith(("decorator", "wrapper ", "class "))


def task_functions(project: Project, task: Task) -> list[FunctionFact]:
    """The functions whose body is the task's code: the task function, or the task class's methods."""
    if task.function is not None:
        return [task.function]
    if task.cls is not None:
        prefix = f"{task.cls.qualname}."
        return [fn for fn in task.file.functions
                if fn.class_name == task.cls.name and fn.qualname == prefix + fn.name]
    return []


def retry_calls(project: Project, task: Task) -> Iterator[tuple[FunctionFact, CallFact]]:
    """``self.retry(...)`` on a bound task, and ``<task function>.retry(...)`` in its body."""
    for fn in task_functions(project, task):
        receivers: set[str] = set()
        if task.bound:
            receivers.add("self")
            if task.function is not None and fn.params and fn.params[0].kind == "positional":
                receivers.add(fn.params[0].name)  # bind=True hands the task to the first parameter
        if task.function is not None:
            receivers.add(task.function.name)
        for call in fn.calls:
            if call.method == "retry" and call.is_call and call.receiver in receivers:
                yield fn, call


def retry_delay_seconds(task: Task) -> float | None:
    """The task's effective delay before a retry, in seconds (None when qlint cannot compute it)."""
    delay = task.norm.get("retry_delay")
    return float(delay.value) if delay is not None and isinstance(delay.value, (int, float)) else None


def retry_delay_text(task: Task) -> str:
    value = retry_delay_seconds(task)
    option = task.profile.retry_delay.option if task.profile and task.profile.retry_delay else "retry delay"
    return f"a fixed {option} of {number_text(value)} s" if value is not None else f"a fixed {option}"
