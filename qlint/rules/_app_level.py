"""One finding per fix (RULES.md, principle 2).

A mistake that one app-level (or broker-level) setting would clear for every task is reported
once, where that setting belongs, when two or more of the tasks it covers get the mistake from
it (they set nothing themselves) and they are at least half of those tasks. Otherwise each task
is reported on its own anchor: a lone task, or the outliers among tasks that set their own value.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from qlint.lint.model import App, Project, Task

T = TypeVar("T")


def app_tasks(project: Project, app: App) -> list[Task]:
    """The (production) tasks bound to ``app`` alone: the ones its settings decide."""
    return [t for t in project.tasks if len(t.apps) == 1 and t.apps[0] is app]


def shared(items: Iterable[T], cause: Callable[[T], Hashable | None],
           covered: Callable[[Hashable, list[T]], int]) -> tuple[list[tuple[Hashable, list[T]]], list[T]]:
    """Split findings into groups reported once and findings reported one by one.

    ``cause(item)`` is the one place whose setting would clear the item (None: only the item
    itself can); ``covered(cause, members)`` is how many tasks that setting decides (the app's
    tasks, the broker's actors), members included. Groups keep the order of their first member.
    """
    groups: dict[Hashable, list[T]] = {}
    singles: list[T] = []
    for item in items:
        key = cause(item)
        if key is None:
            singles.append(item)
        else:
            groups.setdefault(key, []).append(item)
    once = []
    for key, members in groups.items():
        if len(members) >= 2 and 2 * len(members) >= covered(key, members):
            once.append((key, members))
        else:
            singles.extend(members)
    return once, singles


def count_text(n: int, total: int, noun: str) -> str:
    """"all 12 of its tasks" / "9 of its 12 tasks"."""
    plural = noun if total == 1 else noun + "s"
    return f"all {total} of its {plural}" if n == total else f"{n} of its {total} {plural}"
