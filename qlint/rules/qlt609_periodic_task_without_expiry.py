from __future__ import annotations

from qlint.frameworks.celery_calls import BeatEntry, beat_entries, schedule_seconds, task_expires
from qlint.fixers.calls import add_keywords, string_like
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Fix, Severity
from qlint.lint.facts import Value
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile
from qlint.rules._common import number_text


def _add_item(src: SourceFile, mapping: Value, key: str, value: str) -> list[Edit]:
    """Add ``key: value`` to a literal dict, continuing its layout (one line, or one item per line)."""
    data = src.utf8
    start, end = mapping.span.start, mapping.span.end
    if data[start:start + 1] != b"{" or data[end - 1:end] != b"}":
        return []
    close = end - 1
    if not mapping.items:
        if data[start + 1:close].strip():
            return []
        return [Edit(start + 1, close, f"{key}: {value}")]
    last = max(v.span.end for _, v in mapping.items)
    after = data[last:close]
    comma = after.lstrip().startswith(b",")
    if b"#" in after:
        return []
    if b"\n" not in data[start:close]:
        if comma:
            pos = last + after.index(b",") + 1
            return [Edit(pos, pos, f" {key}: {value},")]
        return [Edit(last, last, f", {key}: {value}")]
    first_key = mapping.items[-1][0].span.start
    line_start = data.rfind(b"\n", 0, first_key) + 1
    indent = data[line_start:first_key].decode("utf-8")
    if indent.strip():
        return []
    newline = src.newline
    if comma:
        pos = last + after.index(b",") + 1
        return [Edit(pos, pos, f"{newline}{indent}{key}: {value},")]
    return [Edit(last, last, f",{newline}{indent}{key}: {value}")]


@register
class PeriodicTaskWithoutExpiry(Rule):
    """## What it does
    Checks for Celery beat schedule entries (`beat_schedule` / Django's
    `CELERY_BEAT_SCHEDULE`, `app.add_periodic_task(...)`) with no `expires` in their
    options, for tasks that set no `expires` of their own.

    ## Why is this bad?
    Beat sends the task on schedule whether or not any worker is consuming. During an
    outage, a deploy or a backlog the messages accumulate, and once the workers catch up
    every stale run executes back to back: a report generated forty times, a sync that
    hammers an API, an hourly cleanup run for each missed hour. A periodic task's run is
    obsolete once the next one is due; `expires` tells the worker to drop a message it
    receives after that time instead of running it (`Task.expires` is `None` by default).

    ## Example
    ```python
    app.conf.beat_schedule = {
        "refresh-rates": {
            "task": "billing.tasks.refresh_rates",
            "schedule": 300.0,
        },
    }
    ```

    Use instead:
    ```python
    app.conf.beat_schedule = {
        "refresh-rates": {
            "task": "billing.tasks.refresh_rates",
            "schedule": 300.0,
            "options": {"expires": 300},
        },
    }
    ```

    ## Per framework
    - **Celery** only: entries of `beat_schedule` (in `app.conf`, `Celery(...)`, a
      `config_from_object` module or Django's `CELERY_BEAT_SCHEDULE`) whose `options` have no
      `expires`, and `add_periodic_task(schedule, task.s(...))` without `expires=` (or
      `.set(expires=...)` on the signature), when the task they name is in the project and its
      decorator, base class or `task_annotations` set no `expires`. Entries stored in a
      database (`django-celery-beat`) are not seen.

    ## Fix safety
    The fix, offered when the schedule is a number of seconds or a `timedelta`, adds
    `"expires": <the interval in seconds>` to the entry's options (`expires=` to
    `add_periodic_task`). It is unsafe: a run that waits in the queue longer than one
    interval is now revoked instead of executed; a task that must run every time, however
    late (billing, a counter that is not idempotent), needs a longer expiry or none.

    ## References
    - [Celery: Periodic tasks, entries](https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#available-fields)
    - [Celery: Task.expires](https://docs.celeryq.dev/en/stable/reference/celery.app.task.html#celery.app.task.Task.expires)
    - [Celery: Expiration](https://docs.celeryq.dev/en/stable/userguide/calling.html#expiration)
    """

    code = "QLT609"
    name = "periodic-task-without-expiry"
    summary = "Periodic task without `expires` piles up stale runs when workers fall behind"
    severity = Severity.INFO
    fix_availability = "Sometimes"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery
from celery.schedules import crontab

app = Celery("proj")

@app.task
def refresh_rates():
    pass

@app.task(expires=600)
def rebuild_index():
    pass

app.conf.beat_schedule = {
    "refresh-rates": {
        "task": "tasks.refresh_rates",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "rebuild-index": {"task": "tasks.rebuild_index", "schedule": crontab(minute=0)},
}
""", note="expires in the options, and on the task's decorator"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task
def refresh_rates():
    pass

@app.on_after_configure.connect
def setup(sender, **kwargs):
    sender.add_periodic_task(60.0, refresh_rates.s(), expires=60)
    sender.add_periodic_task(60.0, refresh_rates.s().set(expires=30), name="again")
""", note="add_periodic_task with expires"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.beat_schedule = {
    "cleanup": {"task": "celery.backend_cleanup", "schedule": 3600},
    "elsewhere": {"task": "other.service.task", "schedule": 60, "options": OPTIONS},
}
""", note="tasks outside the project; options qlint cannot read"),
    ]
    INVALID = [
        Invalid("""
from datetime import timedelta
from celery import Celery

app = Celery("proj")

@app.task
def refresh_rates():
    pass

app.conf.beat_schedule = {
    "refresh-rates": {
        "task": "tasks.refresh_rates",
        "schedule": timedelta(minutes=5),
    },
    "refresh-often": {"task": "tasks.refresh_rates", "schedule": 30, "options": {"queue": "fast"}},
}
""", expect=[11, 15], fixed="""
from datetime import timedelta
from celery import Celery

app = Celery("proj")

@app.task
def refresh_rates():
    pass

app.conf.beat_schedule = {
    "refresh-rates": {
        "task": "tasks.refresh_rates",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 300},
    },
    "refresh-often": {"task": "tasks.refresh_rates", "schedule": 30, "options": {"queue": "fast", "expires": 30}},
}
""", message="expires"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
from celery.schedules import crontab

CELERY_BEAT_SCHEDULE = {
    "nightly-report": {
        "task": "proj.tasks.nightly_report",
        "schedule": crontab(hour=3, minute=0),
    },
}
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def nightly_report():
    pass
""",
        }, expect=[("proj/settings.py", 4)], note="Django settings; a crontab: no fix"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task
def refresh_rates(currency):
    pass

@app.on_after_configure.connect
def setup(sender, **kwargs):
    sender.add_periodic_task(10.0, refresh_rates.s("EUR"), name="eur")
    sender.add_periodic_task(
        20,
        refresh_rates.s("USD"),
    )
""", expect=[11, 12], fixed="""
from celery import Celery

app = Celery("proj")

@app.task
def refresh_rates(currency):
    pass

@app.on_after_configure.connect
def setup(sender, **kwargs):
    sender.add_periodic_task(10.0, refresh_rates.s("EUR"), name="eur", expires=10)
    sender.add_periodic_task(
        20,
        refresh_rates.s("USD"),
        expires=20,
    )
""", note="add_periodic_task"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for entry in beat_entries(project):
            task = entry.task
            if entry.expires or not entry.readable or task is None or not task.options_complete:
                continue
            if task_expires(task) is not None:
                continue
            interval = schedule_seconds(project, entry.schedule)
            every = f"every {number_text(interval)} s" if interval else "on its schedule"
            fix = self._fix(ctx, entry, interval) if interval else None
            what = f"Beat entry `{entry.name}`" if entry.call is None else f"`{entry.call.dotted}(...)`" + (
                f" (`{entry.name}`)" if entry.name != task.name else "")
            suggestion = f"`expires` of {number_text(interval)} s" if interval else "an `expires` no longer than " \
                "the interval between runs"
            ctx.report(entry.file, entry.anchor,
                       f"{what} runs task `{task.name}` {every} with no `expires`: while workers are down or behind, "
                       "beat keeps sending it and every stale run executes back to back once they catch up; give it "
                       f"{suggestion}", fix=fix, statement=entry.statement)

    def _fix(self, ctx: RuleContext, entry: BeatEntry, interval: float) -> Fix | None:
        src = ctx.source(entry.file)
        value = number_text(interval)
        if entry.call is not None:
            edits = add_keywords(src, entry.call, [("expires", value)])
        elif entry.options is not None:
            options = entry.options
            if options.kind == "dict":
                quoted = string_like(src, options.items[0][0], "expires") if options.items else '"expires"'
                edits = _add_item(src, options, quoted, value)
            elif options.kind == "call" and options.call is not None:
                edits = add_keywords(src, options.call, [("expires", value)])
            else:
                edits = []
        elif entry.entry is not None and entry.entry.kind == "dict":
            sample = entry.entry.items[0][0] if entry.entry.items else None
            quote = (lambda text: string_like(src, sample, text)) if sample is not None and sample.is_const else (
                lambda text: f'"{text}"')
            edits = _add_item(src, entry.entry, quote("options"), "{" + f"{quote('expires')}: {value}" + "}")
        elif entry.entry is not None and entry.entry.kind == "call" and entry.entry.call is not None:
            edits = add_keywords(src, entry.entry.call, [("options", "{" + f'"expires": {value}' + "}")])
        else:
            edits = []
        return ctx.fix(entry.file, f"Add `expires` of {value} s", edits) if edits else None
