from __future__ import annotations

import math

from qlint.fixers.calls import add_class_attributes, add_keywords, replace_value
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.facts import CallFact, ClassFact, FileFacts, FunctionFact, Keyword
from qlint.lint.model import Project, Resolved, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import (
    add_task_options,
    autoretry,
    number_text,
    retry_calls,
    where,
)

RETRY_DELAY = 10  # seconds a fix puts between automatic retries (the domain catalog's B12)
CATCH_ALL = frozenset({"builtins.Exception", "builtins.BaseException"})


def _retries(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


# -- this rule -------------------------------------------------------------------------

def _non_empty(project: Project, resolved: Resolved) -> bool:
    """Whether an ``autoretry_for`` value names at least one exception class."""
    if resolved.known:
        return bool(resolved.value)
    if resolved.keyword is None or resolved.source == "task_annotations":
        return False
    value = resolved.keyword.value
    for _ in range(8):
        if value.kind == "seq":
            return bool(value.elements)
        if value.kind != "name":
            return False
        found = project.assignment(value.qualified)
        if found is None:
            return True  # a class such as ``ConnectionError``: ``except autoretry_for`` catches it
        value = found[1].value
    return False


def _unreachable(task: Task, fn: FunctionFact, call: CallFact) -> bool:
    """The call sits in an ``except`` clause that an earlier clause of the same ``try`` shadows
    (``except Exception: ... except OperationalError: self.retry()``)."""
    handler = call.handler
    if handler is None:
        return False
    for earlier in fn.handlers:
        if earlier is handler or earlier.try_index != handler.try_index or earlier.span.start >= handler.span.start:
            continue
        if not earlier.types or any(task.file.qualify(t) in CATCH_ALL for t in earlier.types):
            return True
    return False


def _call_retries(project: Project, task: Task, call: CallFact):
    """The retry limit a ``self.retry(...)`` call runs under: its own ``max_retries`` (unless ``None``),
    else the task's (``Task.retry``: ``max_retries = self.max_retries if max_retries is None``)."""
    if len(call.args) >= 7:
        return None
    written = call.kwargs.get("max_retries")
    if written is not None:
        folded = project.fold(written.value)
        if not folded.known:
            return None
        if folded.value is not None:
            return folded.value
    norm = task.norm.get("max_retries")
    return norm.value if norm is not None else None


def _call_with(facts: FileFacts, keyword: Keyword) -> CallFact | None:
    """The call (a wrapper's ``partial(...)``/``app.task(...)``, a factory's return) holding ``keyword``."""
    values = [kw.value for kw in facts.assigns.values()]
    values += [ret for fn in facts.functions for ret in fn.returns]
    for value in values:
        call = value.call if value.kind == "call" else None
        if call is not None and any(kw is keyword for kw in call.kwargs.values()):
            return call
    return None


def _class_with(facts: FileFacts, keyword: Keyword) -> ClassFact | None:
    for cls in facts.classes:
        if any(kw is keyword for kw in cls.attrs.values()):
            return cls
    return None


def _rank(task: Task, resolved: Resolved) -> int:
    """Precedence of the level an option comes from (higher wins)."""
    if resolved.source == "task_annotations":
        return 1000
    if resolved.source == "decorator":
        return 500
    if resolved.source.startswith("wrapper"):
        return 400
    for index, (key, level) in enumerate(task.levels.items()):
        if key.startswith("class ") and any(r is resolved for r in level.values()):
            return index  # class levels are recorded farthest base first
    return -1


def _backoff_fix(ctx: RuleContext, task: Task, auto: Resolved, backoff: Resolved | None) -> list[Edit]:
    """Turn ``retry_backoff`` on where it takes effect, editing only the file ``auto`` is written in."""
    facts = auto.file
    if facts is None or auto.keyword is None:
        return []
    src = ctx.source(facts)
    if backoff is not None:
        # The effective value wins over every other level: flipping it is enough. ``retry_backoff``
        # only drives ``autoretry_for``, so a shared wrapper or base class changes nothing else.
        kw = backoff.keyword
        if kw is not None and backoff.file is facts and backoff.source != "task_annotations" and \
                kw.value.kind == "const":
            return [replace_value(kw, "True")]
        if _rank(task, auto) <= _rank(task, backoff):
            return []  # a value added next to ``autoretry_for`` would not take effect
    if auto.source == "decorator" and task.decorator is not None:
        return add_keywords(src, task.decorator, [("retry_backoff", "True")], ctx.line_length)
    if auto.source.startswith("wrapper"):
        call = _call_with(facts, auto.keyword)
        return add_keywords(src, call, [("retry_backoff", "True")], ctx.line_length) if call is not None else []
    if auto.source.startswith("class"):
        cls = _class_with(facts, auto.keyword)
        return add_class_attributes(src, cls, [("retry_backoff", "True")]) if cls is not None else []
    return []


@register
class RetryWithoutBackoff(Rule):
    """## What it does
    Checks for Celery retries that wait a fixed delay:

    - a task with `autoretry_for` but neither `retry_backoff` nor a `countdown` in
      `retry_kwargs` (wherever each is set: the decorator, a decorator wrapper such as
      `functools.partial(shared_task, ...)`, a base class or `task_annotations`), unless
      `retry_backoff=False` is written together with a `default_retry_delay`;
    - a `self.retry(...)` call (or `<task>.retry(...)`) with neither `countdown` nor `eta`,
      in a task with no `default_retry_delay` of its own. `retry_backoff` does not help
      there: Celery reads it only when `autoretry_for` retries (`celery/app/autoretry.py`),
      and the message says so when the task sets it.

    ## Why is this bad?
    Without a delay of its own, every retry waits `default_retry_delay` (180 seconds unless
    the task sets another), the same for every task instance. When a dependency fails,
    every task that touched it fails together, and all of them come back together that
    many seconds later, again and again: the synchronized retries hammer the dependency
    while it is trying to recover (a thundering herd). `retry_backoff=True` makes the
    delays grow exponentially (`2 ** retries`, capped by `retry_backoff_max`, 600 s) with
    random jitter, spreading the retries out.

    The message gives the retries' real count and delay: `max_retries` from `retry_kwargs`
    (which overrides the task's own, as `autoretry_for` passes `retry_kwargs` to `Task.retry`),
    and `default_retry_delay` wherever it is set (the task, a base class, `task_annotations`;
    Celery's default is 180 s). A task that cannot retry (`max_retries=0`) is not reported.

    ## Known problems
    A fixed delay chosen for the task is taken as deliberate: a `default_retry_delay` for
    manual `self.retry(...)` calls; for `autoretry_for` a `countdown` (or `eta`) in
    `retry_kwargs`, or `retry_backoff=False` written together with a `default_retry_delay`.
    A `default_retry_delay` alone, with `retry_backoff` never mentioned, is still reported:
    nothing says backoff was considered. When the decorator receives `**kwargs` or
    `task_annotations` cannot be read, the rule stays silent.

    ## Example
    ```python
    from celery import shared_task

    @shared_task(autoretry_for=(ConnectionError,), max_retries=5)
    def sync_inventory(store_id):
        ...

    @shared_task(bind=True)
    def charge(self, order_id):
        try:
            ...
        except ConnectionError as exc:
            raise self.retry(exc=exc)
    ```

    Use instead:
    ```python
    from celery import shared_task

    @shared_task(autoretry_for=(ConnectionError,), max_retries=5, retry_backoff=True)
    def sync_inventory(store_id):
        ...

    @shared_task(bind=True)
    def charge(self, order_id):
        try:
            ...
        except ConnectionError as exc:
            raise self.retry(exc=exc, countdown=min(600, 2 ** self.request.retries))
    ```

    ## Per framework
    - **Celery**: `autoretry_for` without `retry_backoff` or a `countdown` in `retry_kwargs`
      (`retry_backoff=False` with a `default_retry_delay` is a chosen fixed delay, not
      reported); `self.retry(...)` with neither `countdown` nor `eta` and no
      `default_retry_delay`.
    - **Huey**: `retries=N` with `retry_delay` absent or `0` (the default): every retry is
      enqueued at once. `@huey.task(retries=3)` → `@huey.task(retries=3, retry_delay=10)`.
    - **RQ**: `Retry(max=N)` without `interval` (default `0`): "the failed job will be
      requeued immediately". `Retry(max=3)` → write `Retry(max=3, interval=[10, 60, 300])`.
    - **Dramatiq** retries with exponential backoff from `min_backoff` (15 s); reported only
      when `min_backoff=0` is written.

    ## Fix safety
    For Huey, the fix adds `retry_delay=10` (or replaces `retry_delay=0`); unsafe, the task
    now finishes its retries later. For `autoretry_for`, the fix adds `retry_backoff=True` next to it (the decorator, the
    wrapper or the class attribute), or turns an explicit `retry_backoff=False` into
    `True`. It is unsafe: retries happen sooner at first (1 s, 2 s, 4 s ...) and later
    ones later, which changes when work is done and how long a failing task stays around.
    There is no fix for `self.retry(...)`: the delay needs a number or a backoff
    expression that a human chooses for the task.

    ## References
    - [Celery: Automatic retry for known exceptions](https://docs.celeryq.dev/en/stable/userguide/tasks.html#automatic-retry-for-known-exceptions)
    - [Celery: Using a custom retry delay](https://docs.celeryq.dev/en/stable/userguide/tasks.html#using-a-custom-retry-delay)
    - [Celery: Task.retry_jitter](https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.retry_jitter)
    """

    code = "QLT202"
    name = "retry-without-backoff"
    summary = "Retries wait a fixed delay: no backoff, countdown or eta"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "huey", "rq", "dramatiq")

    VALID = [
        Valid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(retries=3, retry_delay=30)
def sync(account_id):
    pass

@huey.task()
def once(account_id):
    pass
""", note="Huey: a delay, and no retries at all"),
        Valid("""
from rq import Retry
from proj.queues import queue
from proj.jobs import export

queue.enqueue(export, retry=Retry(max=3, interval=[10, 30, 60]))
""", note="RQ: an interval"),
        Valid("""
import dramatiq

@dramatiq.actor(max_retries=5)
def send(message_id):
    pass
""", note="Dramatiq backs off from 15 s by default"),
        Valid("""
from celery import shared_task

@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True)
def sync_inventory(store_id):
    pass
"""),
        Valid("""
from celery import shared_task

@shared_task(autoretry_for=(ConnectionError,), retry_kwargs={"countdown": 5, "max_retries": 3})
def sync_inventory(store_id):
    pass
""", note="an explicit countdown in retry_kwargs"),
        Valid("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries)
""", note="the call chooses its own delay"),
        Valid("""
from celery import Celery, Task

app = Celery("proj")

class BuildTask(Task):
    autoretry_for = (ConnectionError,)
    max_retries = 25
    default_retry_delay = 5 * 60
    retry_backoff = False

    def run(self, build_id):
        pass
""", note="retry_backoff=False next to a default_retry_delay: a fixed delay chosen on purpose"),
        Valid("""
from celery import shared_task

@shared_task(autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 0})
def ping(host):
    pass

@shared_task(bind=True, max_retries=0)
def probe(self, host):
    self.retry()
""", note="max_retries=0: the first failure is final, no retry waits"),
        Valid("""
from celery import shared_task

@shared_task(bind=True, default_retry_delay=30)
def charge(self, order_id):
    raise self.retry()
""", note="a delay chosen for the task"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")

class PaymentTask(Task):
    default_retry_delay = 30
""",
            "proj/tasks.py": """
from proj.celery import app, PaymentTask

@app.task(bind=True, base=PaymentTask)
def charge(self, order_id):
    self.retry(eta=None)
    self.retry()
""",
        }, note="default_retry_delay from a base class in another module"),
        Valid("""
from celery import shared_task
from django.db import OperationalError

@shared_task(bind=True)
def finish(self, version_id):
    try:
        pass
    except Exception:
        raise
    except OperationalError as exc:
        raise self.retry(exc=exc)
""", note="a retry in a handler an earlier `except Exception` shadows never runs"),
        Valid("""
from celery import shared_task

@shared_task(bind=True, **RETRY_OPTIONS)
def charge(self, order_id):
    self.retry()
""", note="options qlint cannot see"),
    ]
    INVALID = [
        Invalid("""
from celery import shared_task

@shared_task
def charge(self, order_id):
    self.retry()
""", expect=5, note="not bound (QLT204 reports that): judged as the retry it is meant to be, so that "
                    "QLT204's fix reveals nothing new"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(bind=True, retry_backoff=True)
def index(self, document_id):
    try:
        update_index(document_id)
    except LockError as exc:
        raise self.retry(exc=exc)
    except OperationalError as exc:
        raise self.retry(exc=exc)
""", expect=10, message="(nor does the one on line 12)", note="two manual retries of one task: one finding; "
                                                            "`retry_backoff` does not apply to them"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(retries=3)
def sync(account_id):
    pass

@huey.periodic_task(crontab(minute="0"), retries=2, retry_delay=0)
def hourly():
    pass
""", expect=[("tasks.py", 5), ("tasks.py", 9)], fixed="""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(retries=3, retry_delay=10)
def sync(account_id):
    pass

@huey.periodic_task(crontab(minute="0"), retries=2, retry_delay=10)
def hourly():
    pass
""", note="Huey: no delay, or an explicit 0"),
        Invalid("""
from rq import Queue, Retry
from redis import Redis

def export(report_id):
    pass

queue = Queue(connection=Redis())
queue.enqueue(export, 1, retry=Retry(max=3))
""", expect=8, message="requeued at once", note="RQ: Retry without interval; no fix"),
        Invalid("""
from celery import shared_task

@shared_task(autoretry_for=(ConnectionError,), max_retries=5)
def sync_inventory(store_id):
    pass
""", expect=3, fixed="""
from celery import shared_task

@shared_task(autoretry_for=(ConnectionError,), max_retries=5, retry_backoff=True)
def sync_inventory(store_id):
    pass
""", message="fixed default_retry_delay of 180 s"),
        Invalid("""
from celery import shared_task

@shared_task(
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=False,
    retry_kwargs={"max_retries": 5},
)
def sync_inventory(store_id):
    pass
""", expect=4, fixed="""
from celery import shared_task

@shared_task(
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
)
def sync_inventory(store_id):
    pass
""", message="each of the up to 5 automatic retries of `tasks.sync_inventory` waits a fixed default_retry_delay "
              "of 180 s (Celery's default)",
            note="retry_backoff=False with no delay chosen; the retry count from retry_kwargs"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")
app.conf.task_annotations = {"proj.tasks.sync_inventory": {"default_retry_delay": 45, "max_retries": 8}}
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(autoretry_for=(ConnectionError,))
def sync_inventory(store_id):
    pass
""",
        }, expect=[("proj/tasks.py", 3)], fixed={"proj/tasks.py": """
from proj.celery import app

@app.task(autoretry_for=(ConnectionError,), retry_backoff=True)
def sync_inventory(store_id):
    pass
"""}, message="up to 8 automatic retries of `proj.tasks.sync_inventory` waits a fixed default_retry_delay of 45 s "
              "(task_annotations)", note="the effective delay and count from task_annotations"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(bind=True, max_retries=5)
def charge(self, order_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(exc=exc)

@app.task(bind=True)
def refund(self, order_id):
    refund.retry(args=(order_id,), kwargs={})
""",
        }, expect=[("proj/tasks.py", 8), ("proj/tasks.py", 12)], message="fixed default_retry_delay of 180 s",
            note="manual retries without countdown/eta: no fix"),
        Invalid("""
from celery import shared_task

@shared_task(bind=True, max_retries=None, retry_backoff=True, retry_backoff_max=60)
def index_document(self, document_id):
    try:
        pass
    except LookupError as exc:
        raise self.retry(exc=exc)
""", expect=8, message="every retry of `tasks.index_document` (`max_retries` sets no limit) waits a fixed "
              "default_retry_delay of 180 s (Celery's default); `retry_backoff=True` (decorator) does not apply, "
              "Celery reads it only for `autoretry_for`",
            note="retry_backoff drives autoretry_for only, never a manual self.retry(...)"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import functools
from celery import Celery, shared_task

app = Celery("proj")
resilient_task = functools.partial(shared_task, autoretry_for=(OSError,), max_retries=3)
""",
            "proj/tasks.py": """
from proj.celery import resilient_task

@resilient_task
def upload(path):
    pass

@resilient_task(name="proj.download")
def download(url):
    pass
""",
        }, expect=[("proj/celery.py", 5)], fixed={"proj/celery.py": """
import functools
from celery import Celery, shared_task

app = Celery("proj")
resilient_task = functools.partial(
    shared_task,
    autoretry_for=(OSError,),
    max_retries=3,
    retry_backoff=True,
)
"""}, note="a wrapper's defaults: reported and fixed once, in the wrapper; the call, which the fix "
            "would push past 88 columns, one argument per line"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj")

class SyncTask(Task):
    \"\"\"Sync one store.\"\"\"
    autoretry_for = (ConnectionError,)

    def run(self, store_id):
        if store_id is None:
            self.retry()
""", expect=[7, 11], fixed="""
from celery import Celery, Task

app = Celery("proj")

class SyncTask(Task):
    \"\"\"Sync one store.\"\"\"
    retry_backoff = True
    autoretry_for = (ConnectionError,)

    def run(self, store_id):
        if store_id is None:
            self.retry()
""", note="class-based task: the class attribute, and a manual retry in a method"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for task in project.tasks:
            if task.options_hidden or task.profile is None:
                continue
            if not task.profile.retry_method:
                self._automatic(ctx, task)  # the framework retries on its own (Huey, Dramatiq)
                continue
            self._autoretry(ctx, task)
            if task.option("default_retry_delay") is not None:
                continue
            found = []
            for fn, call in retry_calls(project, task):
                if call.has_star or "countdown" in call.kwargs or "eta" in call.kwargs or len(call.args) >= 5:
                    continue
                if _unreachable(task, fn, call):
                    continue  # an earlier handler of the same ``try`` catches everything: this retry never runs
                count = _call_retries(project, task, call)
                if count == 0:
                    continue  # ``max_retries=0``: the call raises instead of retrying
                found.append((call, count))
            if found:
                self._manual(ctx, task, found)
        self._retry_sites(ctx)

    def _manual(self, ctx: RuleContext, task: Task, found) -> None:
        """Manual retries of one task with a fixed delay: one finding, on the first of them (one
        change of the task's retry policy fixes them all)."""
        call, count = found[0]
        backoff = task.option("retry_backoff")
        unused = f"; `retry_backoff={backoff.value!r}` ({backoff.source}) does not apply, Celery reads it " \
            "only for `autoretry_for`" if backoff is not None and backoff.known and backoff.value else ""
        src = ctx.source(task.file)
        others = [src.row_of(c.span.start) for c, _ in found[1:]]
        also = ""
        if others:
            lines = ", ".join(str(r) for r in others)
            also = f" (nor {'does' if len(others) == 1 else 'do'} the one{'s' if len(others) > 1 else ''} on " \
                   f"line{'s' if len(others) > 1 else ''} {lines})"
        ctx.report(task.file, call.span, f"`{call.dotted}(...)` has neither `countdown` nor `eta`{also}: "
                   f"{_retries_text(count, task, '')} waits {_delay_text(task.norm.get('retry_delay'))}"
                   f"{unused}; synchronized retries hammer a recovering dependency", statement=call.statement)

    def _automatic(self, ctx: RuleContext, task: Task) -> None:
        retries, delay = task.norm.get("max_retries"), task.norm.get("retry_delay")
        if retries is None or delay is None or delay.value != 0 or not _retries(retries.value):
            return
        unit = task.profile.retry_delay
        if delay.keyword is not None and delay.file is task.file:
            fix = ctx.fix(task.file, f"Set `{delay.keyword.name}={unit.text(RETRY_DELAY)}`",
                          [replace_value(delay.keyword, unit.text(RETRY_DELAY))]) if unit is not None else None
            anchor = delay.keyword.span
        elif retries.keyword is not None and retries.file is task.file:
            edits = add_task_options(ctx, task, [(unit.option, unit.text(RETRY_DELAY))]) if unit is not None else []
            fix = ctx.fix(task.file, f"Add `{unit.option}={unit.text(RETRY_DELAY)}`", edits) if edits else None
            anchor = retries.keyword.span
        else:
            return
        ctx.report(task.file, anchor, f"Task `{task.name}` retries up to {retries.value} times with no delay "
                   f"({where(delay)}): every retry runs at once, hammering a dependency that is down", fix=fix,
                   statement=task.header)

    def _retry_sites(self, ctx: RuleContext) -> None:
        for site in ctx.project.sites:
            retries, delay = site.norm.get("max_retries"), site.norm.get("retry_delay")
            if retries is None or delay is None or delay.value != 0 or not _retries(retries.value):
                continue
            anchor = delay.keyword.span if delay.keyword is not None else site.anchor
            what = f"`{site.call.dotted}(...)`" if site.call is not None else site.kind
            ctx.report(site.file, anchor, f"{what} retries up to {retries.value} times with no interval "
                       f"({where(delay)}): the failed job is requeued at once, hammering a dependency that is down",
                       statement=site.call.statement if site.call is not None else None)

    def _autoretry(self, ctx: RuleContext, task: Task) -> None:
        auto = task.option("autoretry_for")
        if auto is None or auto.keyword is None or auto.file is None or not _non_empty(ctx.project, auto):
            return
        backoff = task.option("retry_backoff")
        plan = autoretry(ctx.project, task)
        if plan is None or plan.factor or plan.backoff_unknown or plan.delay_option != "default_retry_delay" or \
                plan.fixed_by_choice:
            return  # a backoff, a delay chosen in ``retry_kwargs`` or next to ``retry_backoff=False``, or unreadable
        count = plan.count
        if count == 0:
            return  # ``max_retries=0``: the first failure is final, there is no retry to wait for
        edits = _backoff_fix(ctx, task, auto, backoff)
        fix = ctx.fix(auto.file, "Set `retry_backoff=True`", edits) if edits else None
        place = "" if auto.source == "decorator" else f" (set in {auto.source})"
        if backoff is None or backoff.keyword is None:
            backoff_text = "without `retry_backoff`"
        else:
            elsewhere = "" if backoff.source == auto.source else f" ({backoff.source})"
            backoff_text = f"with `retry_backoff={backoff.value!r}`{elsewhere}"
        ctx.report(auto.file, auto.keyword.span,
                   f"`autoretry_for` {backoff_text}{place}: {_retries_text(count, task, 'automatic ')} waits "
                   f"{_delay_text(plan.delay_source)}; synchronized retries hammer a recovering dependency", fix=fix)


def _retries_text(count, task: Task, kind: str) -> str:
    """"each of the up to 5 automatic retries of `t`", "every retry of `t` (`max_retries` sets no limit)"."""
    if not isinstance(count, (int, float)) or isinstance(count, bool):
        return f"every {kind}retry of `{task.name}`"
    if math.isinf(count):
        return f"every {kind}retry of `{task.name}` (`max_retries` sets no limit)"
    return f"each of the up to {number_text(count)} {kind}retr{'y' if count == 1 else 'ies'} of `{task.name}`"


def _delay_text(delay: Resolved | None) -> str:
    """"a fixed default_retry_delay of 180 s (Celery's default)", "... of 20 s (class Resilient)"."""
    if delay is None:
        return "a fixed default_retry_delay"
    value = f" of {number_text(delay.value)} s" if isinstance(delay.value, (int, float)) else ""
    source = "Celery's default" if delay.source == "default" else where(delay)
    return f"a fixed default_retry_delay{value} ({source})"
