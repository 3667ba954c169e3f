from __future__ import annotations

from qlint.fixers.calls import delete_element, replace_span, string_like
from qlint.frameworks.celery import SERIALIZER_SETTINGS, is_pickle
from qlint.frameworks.celery_calls import model_instances_sent
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.facts import FileFacts, Keyword
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class PickleSerializerEnabled(Rule):
    """## What it does
    Checks for Celery configuration that lets workers deserialize pickle:
    `pickle` (or `application/x-python-serialize`) in `task_serializer`,
    `result_serializer`, `event_serializer`, `accept_content` or `result_accept_content`
    wherever they are set (`app.conf`, `conf.update`, `Celery(...)`, a configuration module,
    Django's `CELERY_*` settings, old upper-case names), a task's `serializer=`, or
    `apply_async(serializer="pickle")`; Dramatiq's `PickleEncoder` and Taskiq's
    `PickleSerializer` chosen for a broker.

    ## Why is this bad?
    Unpickling runs code chosen by whoever wrote the message. Anyone who can publish to the
    broker (a leaked Redis password, a shared RabbitMQ vhost, an SSRF into the broker port)
    can then execute code on every worker. Celery's security guide: pickle "is inherently
    insecure, and should be avoided whenever clients are untrusted or unauthenticated".
    Switching `task_serializer` to JSON is not enough while `accept_content` still lists
    pickle: the worker keeps accepting pickled messages.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.task_serializer = "pickle"
    app.conf.accept_content = ["json", "pickle"]
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.task_serializer = "json"
    app.conf.accept_content = ["json"]
    ```

    ## Per framework
    - **Celery**: the settings above and per-task/per-call `serializer=` (JSON by default).
    - **Dramatiq**: `dramatiq.set_encoder(dramatiq.PickleEncoder())` (JSON by default) →
      `dramatiq.JSONEncoder()`.
    - **Taskiq**: `broker.with_serializer(PickleSerializer())` (JSON by default) →
      `JSONSerializer()`.
    RQ, Huey and arq pickle by default: that is QLT502.

    ## Fix safety
    For Dramatiq and Taskiq the fix swaps the class for the JSON one when it is spelled
    through its module (`dramatiq.PickleEncoder()`), so no import is needed. For Celery the
    fix replaces `"pickle"` with `"json"`, or removes it from an accept list that already
    holds another content type. There is no fix while the project sends model instances to
    its tasks (at an enqueue call, or to a parameter annotated with a model): under JSON each
    of those enqueues fails, and QLT603 reports them. It is unsafe: other arguments that JSON
    cannot represent (datetimes, sets) stop working, and pickled messages still in the queue
    are rejected after the deploy.

    ## References
    - [Celery: Security, Serializers](https://docs.celeryq.dev/en/stable/userguide/security.html#serializers)
    - [Celery: accept_content](https://docs.celeryq.dev/en/stable/userguide/configuration.html#accept-content)
    """

    code = "QLT501"
    name = "pickle-serializer-enabled"
    summary = "Workers accept or send pickle, which runs code from the broker"
    severity = Severity.ERROR
    fix_availability = "Sometimes"
    frameworks = ("celery", "dramatiq", "taskiq")

    VALID = [
        Valid("""
import dramatiq

dramatiq.set_encoder(dramatiq.JSONEncoder())
""", note="Dramatiq: JSON"),
        Valid("""
from taskiq_redis import ListQueueBroker
from taskiq.serializers import ORJSONSerializer

broker = ListQueueBroker("redis://localhost").with_serializer(ORJSONSerializer())
""", note="Taskiq: a JSON serializer"),
        Valid("""
from celery import Celery

app = Celery("proj", task_serializer="json", accept_content=["json", "msgpack"])
"""),
        Valid("""
import pickle

from celery import Celery

app = Celery("proj")

@app.task
def load(blob):
    return pickle.dumps(blob)
""", note="pickle used inside a task is another matter (bandit S301)"),
        Valid({
            "proj/__init__.py": "",
            "proj/settings.py": """
CELERY_TASK_SERIALIZER = "pickle"
""",
        }, note="Django settings count only when an app loads them with the CELERY namespace"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.result_serializer = "pickled-looking-name"
"""),
    ]
    INVALID = [
        Invalid("""
from celery import Celery
from django.db import models

app = Celery("proj")
app.conf.task_serializer = "pickle"

class Order(models.Model):
    pass

@app.task
def send_receipt(order):
    pass

def checkout(pk):
    send_receipt.delay(Order.objects.get(pk=pk))
""", expect=5, message="no fix: the project sends model instances to its tasks in 1 place",
            note="no fix while a model instance is sent: under JSON that enqueue would fail (QLT603)"),
        Invalid("""
import dramatiq

dramatiq.set_encoder(dramatiq.PickleEncoder())
""", expect=3, fixed="""
import dramatiq

dramatiq.set_encoder(dramatiq.JSONEncoder())
""", note="Dramatiq"),
        Invalid("""
from taskiq_redis import ListQueueBroker
from taskiq.serializers import PickleSerializer

broker = ListQueueBroker("redis://localhost").with_serializer(PickleSerializer())
""", expect=4, note="Taskiq; no fix: JSONSerializer is not imported"),
        Invalid("""
import taskiq
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://localhost").with_serializer(taskiq.serializers.PickleSerializer())
""", expect=4, fixed="""
import taskiq
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://localhost").with_serializer(taskiq.serializers.JSONSerializer())
""", note="Taskiq, spelled through the module"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.task_serializer = 'pickle'
app.conf.accept_content = ["json", "pickle"]
""", expect=[4, 5], fixed="""
from celery import Celery

app = Celery("proj")
app.conf.task_serializer = 'json'
app.conf.accept_content = ["json"]
"""),
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
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_ACCEPT_CONTENT = ("pickle",)
CELERY_RESULT_SERIALIZER = "application/x-python-serialize"
""",
        }, expect=[("proj/settings.py", 2), ("proj/settings.py", 3)], fixed={"proj/settings.py": """
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_ACCEPT_CONTENT = ("json",)
CELERY_RESULT_SERIALIZER = "json"
"""}),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(serializer="pickle", time_limit=60)
def render(report):
    pass

def later(report):
    render.apply_async((report,), serializer="pickle", countdown=10)
""", expect=[5, 10], fixed="""
from celery import Celery

app = Celery("proj")

@app.task(serializer="json", time_limit=60)
def render(report):
    pass

def later(report):
    render.apply_async((report,), serializer="json", countdown=10)
"""),
        Invalid({
            "proj/__init__.py": "",
            "proj/celeryconfig.py": """
CELERY_ACCEPT_CONTENT = ['pickle', 'json']
""",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("proj.celeryconfig")
""",
        }, expect=[("proj/celeryconfig.py", 1)], fixed={"proj/celeryconfig.py": """
CELERY_ACCEPT_CONTENT = ['json']
"""}, note="old setting names in a config module"),
    ]

    def check(self, ctx: RuleContext) -> None:
        self._breaking: int | None = None
        for app in ctx.project.apps:
            for key, resolved in app.setting_sites:
                if key in SERIALIZER_SETTINGS and resolved.keyword is not None and resolved.file is not None:
                    self._judge(ctx, resolved.file, resolved.keyword, resolved.value, f"`{key}`")
        for site in ctx.project.sites:
            chosen = site.norm.get("serializer")
            if chosen is not None and chosen.value == "pickle" and chosen.source != "default" and \
                    chosen.keyword is not None:
                self._encoder(ctx, site, chosen)
        for task in ctx.project.tasks:
            for level in task.levels.values():
                opt = level.get("serializer")
                if opt is not None and opt.keyword is not None and opt.file is not None:
                    self._judge(ctx, opt.file, opt.keyword, opt.value, f"task `{task.name}`'s `serializer`")
        for facts in ctx.project.parsed_files():
            calls = list(facts.calls) + [c for fn in facts.functions for c in fn.calls]
            for call in calls:
                kw = call.kwargs.get("serializer")
                if call.method == "apply_async" and kw is not None:
                    self._judge(ctx, facts, kw, ctx.project.fold(kw.value).value, "`apply_async(serializer=...)`",
                                statement=call.statement)

    def _encoder(self, ctx: RuleContext, site, chosen) -> None:
        """``set_encoder(dramatiq.PickleEncoder())``, ``with_serializer(PickleSerializer())``."""
        value = chosen.keyword.value
        fix = None
        if value.kind == "call" and value.call is not None and "." in value.call.dotted:
            name = value.call.dotted.rpartition(".")[2]
            if name.startswith("Pickle"):
                end = value.call.func_end
                new = "JSON" + name[len("Pickle"):]
                fix = ctx.fix(site.file, f"Use `{new}`", [Edit(end - len(name), end, new)])
        ctx.report(site.file, value.span, f"{site.profile.title} is told to pickle messages ({chosen.source}): any "
                   "message on the broker can run code on the workers", fix=fix)

    def _judge(self, ctx: RuleContext, facts: FileFacts, kw: Keyword, value, what: str, statement=None) -> None:
        if self._breaking is None:
            # Model instances the project sends through pickle: under JSON each enqueue fails
            # (QLT603). No fix then: it would break them, and its result would be reported.
            self._breaking = model_instances_sent(ctx.project)
        fixable = not self._breaking
        places = f"{self._breaking} place{'s' if self._breaking > 1 else ''}"
        blocked = (f" (no fix: the project sends model instances to its tasks in {places}, and JSON cannot encode "
                   "them; send primary keys first)") if self._breaking else ""
        if is_pickle(value):
            fix = None
            if kw.value.kind == "const" and fixable:
                src = ctx.source(facts)
                fix = ctx.fix(facts, 'Use "json"', [replace_span(kw.value, string_like(src, kw.value, "json"))])
            ctx.report(facts, kw.span, f"{what} is pickle: any message on the broker can run code on the "
                       f"workers{blocked}", fix=fix, statement=statement)
        elif isinstance(value, (tuple, list, set, frozenset)) and any(is_pickle(v) for v in value):
            fix = None
            seq = kw.value
            if seq.kind == "seq" and all(e.kind == "const" for e in seq.elements) and fixable:
                src = ctx.source(facts)
                index = next(i for i, e in enumerate(seq.elements) if is_pickle(e.value))
                others = [e for i, e in enumerate(seq.elements) if i != index]
                if others and any(not is_pickle(e.value) for e in others):
                    edit = delete_element(seq, index)
                    fix = ctx.fix(facts, "Remove pickle from the accepted content types", [edit]) if edit else None
                else:
                    element = seq.elements[index]
                    fix = ctx.fix(facts, 'Accept "json" instead', [
                        replace_span(element, string_like(src, element, "json"))])
            ctx.report(facts, kw.span, f"{what} accepts pickle: any message on the broker can run code on the "
                       f"workers{blocked}", fix=fix, statement=statement)
