from __future__ import annotations

from qlint.fixers.calls import add_keywords, string_like
from qlint.frameworks.celery_calls import (
    BeatEntry,
    beat_entries,
    schedule_interval,
    task_expires,
)
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
    `CELERY_BEAT_SCHEDULE`, `app.add_periodic_task(...)`) that run more often than
    `expiry-interval` (an hour by default) with no `expires` in their options, for tasks that
    set no `expires` of their own. Several such entries of one schedule (one module) are one
    finding, on the first of them, whose fix gives each its `expires`.

    ## Why is this bad?
    Beat sends the task on schedule whether or not any worker is consuming. During an
    outage, a deploy or a backlog the messages accumulate, and once the workers catch up
    every stale run executes, one after the other: a sync every five minutes that was down
    for three hours runs thirty-six times in a row and hammers its API, a cleanup runs once
    for each missed slot. A frequent task's run is obsolete once the next one is due;
    `expires` tells the worker to drop a message it receives after that time instead of
    running it (`Task.expires` is `None` by default). A daily or hourly job that missed a run
    is a different matter, so schedules slower than `expiry-interval` are not reported.

    ## Example
    ```python
    app.conf.beat_schedule = {
        "refresh-rates": {
            "task": "billing.tasks.refresh_rates",
            "schedule": crontab(minute="*/5"),
        },
    }
    ```

    Use instead:
    ```python
    app.conf.beat_schedule = {
        "refresh-rates": {
            "task": "billing.tasks.refresh_rates",
            "schedule": crontab(minute="*/5"),
            "options": {"expires": 300},
        },
    }
    ```

    ## Per framework
    - **Celery** only: entries of `beat_schedule` (in `app.conf`, `Celery(...)`, a
      `config_from_object` module or Django's `CELERY_BEAT_SCHEDULE`) whose `options` have no
      `expires`, and `add_periodic_task(schedule, task.s(...))` without `expires=` (or
      `.set(expires=...)` on the signature), when the task they name is in the project and its
      decorator, base class or `task_annotations` set no `expires`. How often an entry runs is
      read from a number of seconds, a `timedelta`, `schedule(run_every=...)`, or a `crontab(...)`
      by the shortest gap between two of its runs, computed exactly from Celery's crontab
      syntax (`crontab(minute="*/5")` 300 s, `crontab(minute="0,30")` 1800 s,
      `crontab(minute=0, hour=3)` a day; the day-of-week, day-of-month and month fields must all
      match, as in Celery; wall-clock time, daylight-saving jumps not counted). An entry is
      reported when that is shorter than `expiry-interval` (3600 s by default). Nothing is
      reported where qlint cannot tell the interval: a value it cannot fold (an f-string, a
      parsed environment variable), `solar`, a schedule class of the project's own. A value that
      is an environment variable's default counts, and the message says it can be overridden.
      Entries stored in a database (`django-celery-beat`) are not seen.

    ## Fix safety
    The fix adds `"expires": <seconds>` to the entry's options (`expires=` to
    `add_periodic_task`): the interval, so a message is dropped once the next run is due, or
    for a crontab the shortest gap between two of its runs (where its gaps differ, as in
    `crontab(minute="*/15", hour="2-5")`, a run followed by a longer gap is dropped after that
    time too). It is not offered when the interval comes from an environment variable (a
    literal would not follow it). It is unsafe: a run that waits in the queue longer than that
    is now revoked instead of executed; a task that must run every time, however late (billing,
    a counter that is not idempotent), needs a longer expiry or none.

    ## References
    - [Celery: Periodic tasks, entries](https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#available-fields)
    - [Celery: Crontab schedules](https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#crontab-schedules)
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
    "rebuild-index": {"task": "tasks.rebuild_index", "schedule": crontab(minute="*/10")},
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
    "cleanup": {"task": "celery.backend_cleanup", "schedule": 60},
    "elsewhere": {"task": "other.service.task", "schedule": 60, "options": OPTIONS},
}
""", note="tasks outside the project; options qlint cannot read"),
        Valid("""
from datetime import timedelta
from celery import Celery
from celery.schedules import crontab

app = Celery("proj")

@app.task
def nightly_report():
    pass

app.conf.beat_schedule = {
    "nightly": {"task": "tasks.nightly_report", "schedule": crontab(minute=0, hour=3)},
    "hourly": {"task": "tasks.nightly_report", "schedule": timedelta(hours=1)},
    "on-the-hour": {"task": "tasks.nightly_report", "schedule": crontab(minute=0)},
    "every-two-hours": {"task": "tasks.nightly_report", "schedule": crontab(minute=0, hour="*/2")},
    "weekdays": {"task": "tasks.nightly_report", "schedule": crontab(minute=0, hour=9, day_of_week="mon-fri")},
    "twice-a-day": {"task": "tasks.nightly_report", "schedule": crontab(minute=0, hour="0,12")},
}
""", note="schedules no more often than hourly: a missed run is not what expires is for"),
        Valid("""
import os
from celery import Celery
from celery.schedules import crontab, schedule, solar

app = Celery("proj")
EVERY = int(os.environ["SYNC_EVERY"])


class EveryOtherTick(schedule):
    pass


@app.task
def sync():
    pass

app.conf.beat_schedule = {
    "at-dawn": {"task": "tasks.sync", "schedule": solar("dawn_civil", 51.5, -0.1)},
    "own-class": {"task": "tasks.sync", "schedule": EveryOtherTick()},
    "from-env": {"task": "tasks.sync", "schedule": EVERY},
    "formatted": {"task": "tasks.sync", "schedule": crontab(minute=f"*/{EVERY}")},
    "never": {"task": "tasks.sync", "schedule": crontab(minute=0, hour=0, day_of_month=31, month_of_year=2)},
    "rejected": {"task": "tasks.sync", "schedule": crontab(minute="*/0")},
}
""", note="intervals qlint cannot know: solar, a custom class, an environment variable without a "
          "default, an f-string; a crontab that never runs or that Celery rejects"),
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
""", expect=11, fixed="""
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
    "cleanup-exports": {
        "task": "proj.tasks.cleanup_exports",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "low"},
    },
    "nightly-report": {
        "task": "proj.tasks.cleanup_exports",
        "schedule": crontab(hour=3, minute=0),
    },
}
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def cleanup_exports():
    pass
""",
        }, expect=[("proj/settings.py", 4)], fixed={"proj/settings.py": """
from celery.schedules import crontab

CELERY_BEAT_SCHEDULE = {
    "cleanup-exports": {
        "task": "proj.tasks.cleanup_exports",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "low", "expires": 300},
    },
    "nightly-report": {
        "task": "proj.tasks.cleanup_exports",
        "schedule": crontab(hour=3, minute=0),
    },
}
"""}, message="every 300 s", note="Django settings; a crontab every five minutes (the nightly one is not "
                                 "reported)"),
        Invalid("""
from celery import Celery
from celery.schedules import crontab

app = Celery("proj")

@app.task
def unlock_accounts():
    pass

app.conf.beat_schedule = {
    "unlock": {
        "task": "tasks.unlock_accounts",
        "schedule": crontab(minute="*/15", hour="2-5", day_of_week="sun"),
    },
    "half-hourly": {"task": "tasks.unlock_accounts", "schedule": crontab(minute="0,30")},
}
""", expect=11, fixed="""
from celery import Celery
from celery.schedules import crontab

app = Celery("proj")

@app.task
def unlock_accounts():
    pass

app.conf.beat_schedule = {
    "unlock": {
        "task": "tasks.unlock_accounts",
        "schedule": crontab(minute="*/15", hour="2-5", day_of_week="sun"),
        "options": {"expires": 900},
    },
    "half-hourly": {"task": "tasks.unlock_accounts", "schedule": crontab(minute="0,30"), "options": {"expires": 1800}},
}
""", note="crontabs by their shortest gap: 15 minutes on Sunday nights, half-hourly"),
        Invalid("""
import os
from celery import Celery

app = Celery("proj")

@app.task
def poll_feeds():
    pass

app.conf.beat_schedule = {
    "poll-feeds": {"task": "tasks.poll_feeds", "schedule": float(os.environ.get("POLL_SECONDS", 60))},
}
""", expect=[11], message="`POLL_SECONDS` can change it", note="an environment variable's default: reported, "
                                                              "no fix (a literal would not follow it)"),
        Invalid("""
from celery import Celery
from celery.schedules import crontab

app = Celery("proj")

@app.task
def refresh_rates(currency):
    pass

@app.on_after_configure.connect
def setup(sender, **kwargs):
    sender.add_periodic_task(10.0, refresh_rates.s("EUR"), name="eur")
    sender.add_periodic_task(
        crontab(minute="*/20"),
        refresh_rates.s("USD"),
    )
    sender.add_periodic_task(crontab(minute=0, hour=4), refresh_rates.s("GBP"))
""", expect=12, fixed="""
from celery import Celery
from celery.schedules import crontab

app = Celery("proj")

@app.task
def refresh_rates(currency):
    pass

@app.on_after_configure.connect
def setup(sender, **kwargs):
    sender.add_periodic_task(10.0, refresh_rates.s("EUR"), name="eur", expires=10)
    sender.add_periodic_task(
        crontab(minute="*/20"),
        refresh_rates.s("USD"),
        expires=1200,
    )
    sender.add_periodic_task(crontab(minute=0, hour=4), refresh_rates.s("GBP"))
""", note="add_periodic_task"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        limit = getattr(ctx.settings, "expiry_interval", 3600)
        by_file: dict[str, list] = {}
        for entry in beat_entries(project):
            task = entry.task
            if entry.expires or not entry.readable or task is None or not task.options_complete:
                continue
            if task_expires(task) is not None:
                continue
            interval = schedule_interval(project, entry.schedule)
            if interval is None or not interval.seconds < limit:
                continue
            by_file.setdefault(entry.file.path, []).append((entry, interval))
        for found in by_file.values():
            if len(found) == 1:
                self._one(ctx, *found[0])
            else:
                self._many(ctx, found, limit)

    @staticmethod
    def _every(interval) -> str:
        value = number_text(interval.seconds)
        if interval.env:
            return f"every {value} s by default (`{interval.env}` can change it)"
        return f"every {value} s" if interval.regular else \
            f"as often as every {value} s (the shortest gap between two of its crontab's runs)"

    @staticmethod
    def _what(entry: BeatEntry) -> str:
        if entry.call is None:
            return f"Beat entry `{entry.name}`"
        return f"`{entry.call.dotted}(...)`" + (f" (`{entry.name}`)" if entry.name != entry.task.name else "")

    def _one(self, ctx: RuleContext, entry: BeatEntry, interval) -> None:
        value = number_text(interval.seconds)
        if interval.env:
            suggestion, fix = "an `expires` no longer than its interval", None
        else:
            suggestion, fix = f"`expires` of {value} s", self._fix(ctx, entry, value)
        ctx.report(entry.file, entry.anchor,
                   f"{self._what(entry)} runs task `{entry.task.name}` {self._every(interval)} with no `expires`: "
                   "while the workers are down or behind, beat keeps queueing runs, and once the workers catch up "
                   f"each of them still executes, even those a later run has superseded; give it {suggestion}",
                   fix=fix, statement=entry.statement)

    def _many(self, ctx: RuleContext, found, limit: float) -> None:
        """Several entries of one schedule: one finding, on the first, whose fix gives each its
        `expires` (one change to the schedule)."""
        entry = found[0][0]
        listed = [f"`{e.name}` {self._every(i)}" for e, i in found[:3]]
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        edits = []
        for e, interval in found:
            if interval.env:
                continue
            fix = self._fix(ctx, e, number_text(interval.seconds))
            if fix is not None:
                edits.extend(fix.edits)
        fix = ctx.fix(entry.file, "Give each entry an `expires` of its interval", edits) if edits else None
        ctx.report(entry.file, entry.anchor,
                   f"{len(found)} beat entries of this schedule run more often than every {number_text(limit)} s "
                   f"with no `expires` ({', '.join(listed)}{more}): while the workers are down or behind, beat keeps "
                   "queueing their runs, and once the workers catch up each of them still executes, even those a "
                   "later run has superseded; give each an `expires` no longer than its interval", fix=fix,
                   statement=entry.statement)

    def _fix(self, ctx: RuleContext, entry: BeatEntry, value: str) -> Fix | None:
        src = ctx.source(entry.file)
        if entry.call is not None:
            edits = add_keywords(src, entry.call, [("expires", value)], ctx.line_length)
        elif entry.options is not None:
            options = entry.options
            if options.kind == "dict":
                quoted = string_like(src, options.items[0][0], "expires") if options.items else '"expires"'
                edits = _add_item(src, options, quoted, value)
            elif options.kind == "call" and options.call is not None:
                edits = add_keywords(src, options.call, [("expires", value)], ctx.line_length)
            else:
                edits = []
        elif entry.entry is not None and entry.entry.kind == "dict":
            sample = entry.entry.items[0][0] if entry.entry.items else None
            quote = (lambda text: string_like(src, sample, text)) if sample is not None and sample.is_const else (
                lambda text: f'"{text}"')
            edits = _add_item(src, entry.entry, quote("options"), "{" + f"{quote('expires')}: {value}" + "}")
        elif entry.entry is not None and entry.entry.kind == "call" and entry.entry.call is not None:
            edits = add_keywords(src, entry.entry.call, [("options", "{" + f'"expires": {value}' + "}")],
                                     ctx.line_length)
        else:
            edits = []
        return ctx.fix(entry.file, f"Add `expires` of {value} s", edits) if edits else None
