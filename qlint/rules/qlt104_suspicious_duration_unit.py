from __future__ import annotations

import re

from qlint.fixers.calls import replace_value
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FileFacts
from qlint.lint.model import Profile, Resolved
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import number_text

# Celery's per-child memory ceiling, in KiB (``worker_max_memory_per_child``; Django's
# ``CELERY_WORKER_MAX_MEMORY_PER_CHILD`` and the old ``CELERYD_MAX_MEMORY_PER_CHILD`` read
# into the same key). Only apps that have the setting are judged.
MEMORY_SETTING = "worker_max_memory_per_child"
MEMORY_TOO_SMALL_KIB = 20_000  # ~20 MB: below what an idle worker child holds
MEMORY_TOO_LARGE_KIB = 100_000_000  # ~95 GiB: a byte count written as KiB
_GROUPED = re.compile(rb"(?<![\w.])\d{1,3}(?:_\d{3})+(?![\w.])")
_ENQUEUE_KINDS = ("middleware", "enqueue")


@register
class SuspiciousDurationUnit(Rule):
    """## What it does
    Checks for durations and sizes whose unit is easy to get wrong: a millisecond option
    given a small literal that reads like seconds, and a per-child memory ceiling in KiB
    that reads like megabytes or bytes.

    ## Why is this bad?
    Every Dramatiq duration is in milliseconds. `time_limit=60` is not a minute but 60 ms:
    the `TimeLimit` middleware raises `TimeLimitExceeded` into the actor almost as soon as
    it starts, every message fails and is retried until the retries run out.
    `min_backoff=5` retries after 5 ms instead of 5 s, `max_age=3600` drops messages older
    than 3.6 s, `send_with_options(delay=30)` delays by 30 ms.

    Celery's `worker_max_memory_per_child` is in KiB and checked after every task. A value
    meant as megabytes (`512`) is below what a worker child uses when idle, so the child is
    replaced after every single task; a value meant as bytes (`536870912`) is hundreds of
    gigabytes and never triggers.

    ## Example
    ```python
    import dramatiq

    @dramatiq.actor(time_limit=60, min_backoff=5)
    def sync_inventory(store_id):
        ...
    ```

    Use instead:
    ```python
    import dramatiq

    @dramatiq.actor(time_limit=60_000, min_backoff=5_000)
    def sync_inventory(store_id):
        ...
    ```

    ## Per framework
    - Dramatiq: `time_limit`, `min_backoff`, `max_backoff`, `max_age` and `delay` written as
      a number literal above 0 and below 1000, on an actor (`@dramatiq.actor(...)`, a
      `GenericActor`'s `Meta`, a project wrapper's defaults), on a middleware
      (`TimeLimit(time_limit=60)`, `Retries(min_backoff=500)`) or on a message
      (`send_with_options(delay=5)`).
      `@dramatiq.actor(time_limit=60)`.
    - Celery: `worker_max_memory_per_child` below 20000 KiB (about 20 MB) or above 100000000
      KiB (about 95 GB), wherever the app's configuration sets it (`app.conf`,
      `conf.update`, a `config_from_object` module, Django's `CELERY_*` settings).
      `app.conf.worker_max_memory_per_child = 512`.

    Values computed from names or arithmetic (`60 * 1000`, `timedelta(...)`) are taken as
    deliberate and not reported.

    ## Fix safety
    For Dramatiq the fix multiplies the literal by 1000 (`time_limit=60` becomes
    `time_limit=60000`, or `60_000` in a file that groups digits with underscores). It is
    unsafe: a value that really meant milliseconds (a 500 ms backoff) becomes 1000 times
    longer. Literals below 1 are not fixed (x1000 would still read as milliseconds). There
    is no fix for Celery's memory setting: whether megabytes or bytes were meant is a guess.

    ## References
    - [Dramatiq: Message time limits](https://dramatiq.io/guide.html#message-time-limits)
    - [Dramatiq: Middleware](https://dramatiq.io/reference.html#middleware)
    - [Celery: worker_max_memory_per_child](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-max-memory-per-child)
    """

    code = "QLT104"
    name = "suspicious-duration-unit"
    summary = "Duration or memory size that reads like the wrong unit"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("dramatiq", "celery")

    VALID = [
        Valid("""
import dramatiq

@dramatiq.actor(time_limit=60_000, min_backoff=1000, max_retries=3)
def sync_inventory(store_id):
    pass
""", note="Dramatiq: milliseconds; max_retries is a count, not a duration"),
        Valid("""
import dramatiq

MINUTE = 60

@dramatiq.actor(time_limit=MINUTE * 1000, max_backoff=0)
def sync_inventory(store_id):
    sync_inventory.send_with_options(args=(store_id,), delay=0)
""", note="Dramatiq: arithmetic is deliberate; 0 is not a unit slip"),
        Valid("""
from datetime import timedelta

import dramatiq

@dramatiq.actor
def sync_inventory(store_id):
    pass

def later(store_id):
    sync_inventory.send_with_options(args=(store_id,), delay=timedelta(seconds=30))
""", note="Dramatiq: a timedelta delay carries its unit"),
        Valid("""
from celery import Celery
from huey import RedisHuey

huey = RedisHuey("app")
app = Celery("proj")
app.conf.worker_max_memory_per_child = 200_000

@huey.task(timeout=60)
def resize(image_id):
    pass

@app.task(time_limit=60)
def crop(image_id):
    pass
""", note="Celery: 200 MB in KiB; seconds are right for Huey and Celery limits"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 0
CELERY_WORKER_MAX_TASKS_PER_CHILD = 100
""",
        }, note="Celery: 0 turns the memory ceiling off"),
    ]
    INVALID = [
        Invalid("""
import dramatiq

@dramatiq.actor(time_limit=60, min_backoff=5, max_retries=3)
def sync_inventory(store_id):
    pass
""", expect=[3, 3], fixed="""
import dramatiq

@dramatiq.actor(time_limit=60000, min_backoff=5000, max_retries=3)
def sync_inventory(store_id):
    pass
""", message="in milliseconds", note="Dramatiq: each option reported at its own keyword"),
        Invalid("""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Retries, TimeLimit

broker = RedisBroker(middleware=[
    AgeLimit(max_age=3_600_000),
    TimeLimit(time_limit=300),
    Retries(max_retries=5, min_backoff=2.5),
])
dramatiq.set_broker(broker)
""", expect=[7, 8], fixed="""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Retries, TimeLimit

broker = RedisBroker(middleware=[
    AgeLimit(max_age=3_600_000),
    TimeLimit(time_limit=300_000),
    Retries(max_retries=5, min_backoff=2_500),
])
dramatiq.set_broker(broker)
""", note="Dramatiq: middleware options; the file groups digits, so the fix does too"),
        Invalid("""
import dramatiq

class Report(dramatiq.GenericActor):
    class Meta:
        time_limit = 0.5

    def perform(self, day):
        pass

def schedule(actor):
    actor.send_with_options(args=("today",), delay=30)
""", expect=[5, 11], fixed="""
import dramatiq

class Report(dramatiq.GenericActor):
    class Meta:
        time_limit = 0.5

    def perform(self, day):
        pass

def schedule(actor):
    actor.send_with_options(args=("today",), delay=30000)
""", note="Dramatiq: a GenericActor Meta (below 1: reported, not fixed) and a message delay"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_max_memory_per_child = 512
""", expect=4, message="replaced after every task", note="Celery: megabytes written as KiB"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 512 * 1024 * 1024
""",
        }, expect=[("proj/settings.py", 1)], message="bytes", note="Celery: a byte count in Django settings"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if task.profile is not None and task.profile.millisecond_options:
                self._check_options(ctx, task.profile, task.options)
        for site in ctx.project.sites:
            if site.kind in _ENQUEUE_KINDS and site.profile.millisecond_options:
                self._check_options(ctx, site.profile, site.options)
        for app in ctx.project.apps:
            for key, value in app.setting_sites:
                if key == MEMORY_SETTING:
                    self._check_memory(ctx, value)

    def _check_options(self, ctx: RuleContext, profile: Profile, options: dict[str, Resolved]) -> None:
        for name in profile.millisecond_options:
            option = options.get(name)
            if option is None or option.keyword is None or option.file is None:
                continue
            literal = option.keyword.value
            number = literal.value
            if literal.kind != "const" or isinstance(number, bool) or not isinstance(number, (int, float)):
                continue
            if not 0 < number < 1000:
                continue
            shown = number_text(number)
            scaled = round(number * 1000, 6)
            new = _grouped(ctx, option.file, scaled)
            fix = None
            if number >= 1:  # x1000 lands at 1000 or more: a second pass stays silent
                fix = ctx.fix(option.file, f"Multiply by 1000: `{name}={new}`", [replace_value(option.keyword, new)])
            ctx.report(option.file, option.keyword.span,
                       f"`{name}={shown}` is {shown} ms, not {shown} s: {profile.title} reads `{name}` in "
                       f"milliseconds; for {shown} s write {new}", fix=fix)

    def _check_memory(self, ctx: RuleContext, value: Resolved) -> None:
        if value.keyword is None or value.file is None:
            return
        kib = value.value
        if isinstance(kib, bool) or not isinstance(kib, (int, float)) or kib <= 0:
            return
        name = value.keyword.name
        env = f" (the default of environment variable {value.env})" if value.env else ""
        if kib < MEMORY_TOO_SMALL_KIB:
            message = (f"`{name}` is in KiB: {number_text(kib)}{env} is {kib / 1024:.1f} MB, less than a worker child "
                       f"holds when idle, so the child is replaced after every task; for {number_text(kib)} MB write "
                       f"{number_text(kib * 1024)}")
        elif kib > MEMORY_TOO_LARGE_KIB:
            size = f"{kib / 1024 ** 2:.0f}"
            message = (f"`{name}` is in KiB: {number_text(kib)}{env} is {size} GB, so children are never recycled; "
                       f"if it was meant as bytes ({size} MB), write {number_text(kib // 1024)}")
        else:
            return
        ctx.report(value.file, value.keyword.span, message)


def _grouped(ctx: RuleContext, facts: FileFacts, value: float) -> str:
    """``value`` as a literal, with ``_`` thousands separators when the file already uses them."""
    text = number_text(value)
    if float(value).is_integer() and _GROUPED.search(ctx.source(facts).utf8):
        return f"{int(value):_}"
    return text
