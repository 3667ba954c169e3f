"""Which clauses of a task swallow the exception its framework raises when its time is up.

QLT105 reports such a clause when a limit raises that exception; QLT101's fix reads the same
answer so that the soft limit it adds never gives such a clause a timeout to swallow (a fix
must not create a finding).
"""

from __future__ import annotations

from collections.abc import Iterator

from qlint.lint.context import RuleContext
from qlint.lint.facts import FunctionFact, HandlerFact
from qlint.lint.model import Project, Task
from qlint.rules._common import task_functions

# The clause's control flow (does the task carry on after it?) is QLT305's reading of handlers.
from qlint.rules.qlt305_task_failure_swallowed import Flow, handler_flow

BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})


def origin(project: Project, qualified: str) -> str:
    """Follow re-exports and aliases inside the project (``from celery.exceptions import X``
    in ``proj/errors.py``, ``Timeout = X``) to the name's origin."""
    for _ in range(8):
        module, _, name = qualified.rpartition(".")
        facts = project.module(module) if module else None
        if facts is None:
            break
        if name in facts.imports:
            qualified = facts.imports[name]
        elif name in facts.assigns and facts.assigns[name].value.kind == "name":
            qualified = facts.assigns[name].value.qualified
        else:
            break
    return qualified


def names_timeout(project: Project, task: Task, handler: HandlerFact) -> bool:
    wanted = set(task.profile.timeout_exceptions)
    short = {q.rpartition(".")[2] for q in wanted}
    for dotted in handler.types:
        if dotted.rpartition(".")[2] in short:
            return True  # also a re-export qlint cannot follow (billiard's, a vendored alias)
        if origin(project, task.file.qualify(dotted)) in wanted:
            return True
    return False


def swallowing_handlers(project: Project, task: Task, fn: FunctionFact) -> Iterator[HandlerFact]:
    """Per ``try``, the first clause that can catch the timeout, when it is a catch-all that
    neither re-raises nor retries: later clauses of the same ``try`` never see it."""
    decided: set[int] = set()
    for handler in fn.handlers:
        if handler.try_index in decided:
            continue
        if names_timeout(project, task, handler):
            decided.add(handler.try_index)
            continue
        broad = not handler.types or any(task.file.qualify(t) in BROAD for t in handler.types)
        if not broad:
            continue
        decided.add(handler.try_index)
        if not handler.reraises and not handler.calls_retry:
            yield handler


def carried_past_timeout(ctx: RuleContext, task: Task) -> Iterator[tuple[HandlerFact, Flow]]:
    """The catch-all clauses of ``task`` after which it carries on: a timeout raised in the
    task would be swallowed there and the work would go on past the limit. (A clause after
    which the task ends at once loses the failure, not the limit: QLT305's subject.)"""
    if task.profile is None or not task.profile.timeout_exceptions:
        return
    src = ctx.source(task.file)
    for fn in task_functions(ctx.project, task):
        for handler in swallowing_handlers(ctx.project, task, fn):
            flow = handler_flow(ctx.trees, src, fn, handler)
            if flow is not None and not flow.ends_task:
                yield handler, flow
