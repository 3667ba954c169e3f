from __future__ import annotations

import difflib

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import Profile, Resolved
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class UnknownFailureHandler(Rule):
    """## What it does
    Checks for failure hooks that name a task by a string which no task of the project
    carries: Dramatiq's `on_retry_exhausted="..."` and `on_failure="..."`, on an actor or
    on a message.

    ## Why is this bad?
    The name is looked up only when the hook fires, that is when a message has failed:
    `broker.get_actor(name)` raises `ActorNotFound` then, so the one piece of code meant
    to record, alert on or compensate for the failure never runs, and the failure is
    visible only as an error in the worker's log. Dead-lettered messages are dropped after
    7 days, so a broken hook is often discovered after the evidence is gone. A typo or a
    renamed actor is enough; nothing checks the name at import time.

    ## Example
    ```python
    import dramatiq

    @dramatiq.actor(max_retries=3, on_retry_exhausted="report_faliure")
    def charge(order_id):
        ...

    @dramatiq.actor
    def report_failure(message_data, retry_info):
        ...
    ```

    Use instead:
    ```python
    import dramatiq

    @dramatiq.actor(max_retries=3, on_retry_exhausted="report_failure")
    def charge(order_id):
        ...

    @dramatiq.actor
    def report_failure(message_data, retry_info):
        ...
    ```

    ## Per framework
    - Dramatiq: `on_retry_exhausted` (the `Retries` middleware) and `on_failure` (the
      `Callbacks` middleware) written as a string, on `@dramatiq.actor(...)`, a
      `GenericActor`'s `Meta` or `send_with_options(...)`, that is neither the
      `actor_name=` of an actor in the project nor the name of an actor's function (or
      `GenericActor` class) without one.
      `@dramatiq.actor(on_failure="log_eror")` with only `def log_error(...)` as an actor.

    Values that are not strings (an actor object, `handler.actor_name`, an environment
    variable) are not judged, nor is any name when an actor's options are passed as
    `**kwargs` (its `actor_name` cannot be read). Beware that Dramatiq turns an actor object
    into its name only for `on_failure` (and `on_success`) given to `send_with_options`: on
    the decorator the object itself is looked up, and fails the same way.

    ## Known problems
    The actors are those of the files qlint reads: an actor defined in a package outside
    the project (or in files excluded from the run) is reported as unknown.

    ## Fix safety
    There is no fix: qlint cannot tell which actor was meant (the message suggests the
    closest name).

    ## References
    - [Dramatiq: Callbacks](https://dramatiq.io/cookbook.html#callbacks)
    - [Dramatiq: Retries middleware](https://dramatiq.io/reference.html#dramatiq.middleware.Retries)
    - [Dramatiq: Dead letters](https://dramatiq.io/guide.html#dead-letters)
    """

    code = "QLT306"
    name = "unknown-failure-handler"
    summary = "Failure hook names no task of the project"
    severity = Severity.ERROR
    fix_availability = "None"
    frameworks = ("dramatiq",)

    VALID = [
        Valid("""
import dramatiq

@dramatiq.actor(max_retries=3, on_retry_exhausted="report_failure", on_failure="audit")
def charge(order_id):
    pass

@dramatiq.actor
def report_failure(message_data, retry_info):
    pass

@dramatiq.actor(actor_name="audit")
def audit_failure(message_data, exception_data):
    pass
""", note="the function's name, and an explicit actor_name"),
        Valid({
            "billing/__init__.py": "",
            "billing/hooks.py": """
import dramatiq

class Alert(dramatiq.GenericActor):
    def perform(self, message_data, retry_info):
        pass
""",
            "billing/tasks.py": """
import dramatiq

@dramatiq.actor(on_retry_exhausted="Alert")
def charge(order_id):
    pass

def retry_later(order_id):
    charge.send_with_options(args=(order_id,), on_failure="Alert")
""",
        }, note="a GenericActor in another module is found by its class name"),
        Valid("""
import dramatiq

@dramatiq.actor
def report_failure(message_data, exception_data):
    pass

@dramatiq.actor(on_failure=report_failure.actor_name)
def charge(order_id):
    charge.send_with_options(args=(order_id,), on_failure=report_failure)
""", note="an actor object or its actor_name attribute, not a string literal"),
        Valid("""
import dramatiq

OPTIONS = {"actor_name": "report_failure"}

@dramatiq.actor(**OPTIONS)
def on_error(message_data, exception_data):
    pass

@dramatiq.actor(on_failure="report_failure")
def charge(order_id):
    pass
""", note="an actor whose options are hidden in **kwargs may carry the name"),
        Valid("""
from celery import Celery
from huey import RedisHuey

app = Celery("proj")
huey = RedisHuey("app")

@app.task(on_failure="nothing")
def charge(order_id):
    pass

@huey.task(name="on_retry_exhausted")
def refund(order_id):
    pass
""", note="other frameworks have no task-name failure hooks"),
        Valid("""
import dramatiq

@dramatiq.actor
def report_failure(message_data, exception_data):
    pass

@dramatiq.actor
def charge(order_id):
    pass

def retry_later(order_id):
    charge.send_with_options(args=(order_id,), on_failure=report_failure)
""", note="send_with_options turns an actor object into its name for on_failure"),
    ]
    INVALID = [
        Invalid("""
import dramatiq

@dramatiq.actor(max_retries=3, on_retry_exhausted="report_faliure")
def charge(order_id):
    pass

@dramatiq.actor
def report_failure(message_data, retry_info):
    pass
""", expect=3, message="did you mean `report_failure`", note="a typo in the actor decorator"),
        Invalid({
            "billing/__init__.py": "",
            "billing/hooks.py": """
import dramatiq

@dramatiq.actor(actor_name="billing.alert")
def alert(message_data, exception_data):
    pass
""",
            "billing/tasks.py": """
import dramatiq

@dramatiq.actor
def charge(order_id):
    pass

def retry_later(order_id):
    charge.send_with_options(
        args=(order_id,),
        on_failure="alert",
    )
""",
        }, expect=[("billing/tasks.py", 10)], message="`on_failure=\"alert\"`",
            note="the function's name does not count when actor_name renames the actor"),
        Invalid("""
import dramatiq

class Export(dramatiq.GenericActor):
    class Meta:
        max_retries = 5
        on_retry_exhausted = "export_failed"

    def perform(self, day):
        pass
""", expect=6, note="a GenericActor's Meta, and no actor of that name anywhere"),
        Invalid("""
import dramatiq

@dramatiq.actor
def report_failure(message_data, exception_data):
    pass

@dramatiq.actor(on_failure=report_failure, max_retries=0)
def charge(order_id):
    pass
""", expect=7, message="actor object", note="an actor object in the decorator is looked up as a name"),
        Invalid("""
import dramatiq

@dramatiq.actor
def report_failure(message_data, retry_info):
    pass

@dramatiq.actor
def charge(order_id):
    pass

def retry_later(order_id):
    charge.send_with_options(args=(order_id,), on_retry_exhausted=report_failure)
""", expect=12, message="actor object", note="on_retry_exhausted is never converted: the message cannot be encoded"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        names: dict[int, set[str] | None] = {}  # per profile; None when some task's name is unreadable

        def known(profile: Profile) -> set[str] | None:
            if id(profile) not in names:
                tasks = [t for t in project.tasks if t.profile is profile]
                names[id(profile)] = None if any(t.options_hidden for t in tasks) else {t.name for t in tasks}
            return names[id(profile)]

        for task in project.tasks:
            if task.profile is not None and task.profile.handler_options:
                self._check(ctx, task.profile, task.options, known, ())
        for site in project.sites:
            if site.kind == "enqueue" and site.profile.handler_options:
                self._check(ctx, site.profile, site.options, known, site.profile.handler_objects_on_enqueue)

    @staticmethod
    def _task_object(ctx: RuleContext, profile: Profile, value: Resolved):
        """The project task a handler option's value names as an object (``on_failure=report``)."""
        written = value.keyword.value
        if written.kind != "name":
            return None
        target = ctx.project.canonical(written.qualified)
        for task in ctx.project.tasks:
            if task.profile is profile and task.function is not None and task.cls is None and \
                    f"{task.file.module}.{task.function.name}" == target:
                return task
        return None

    def _check(self, ctx: RuleContext, profile: Profile, options: dict[str, Resolved], known,
               objects_accepted: tuple[str, ...]) -> None:
        for option in profile.handler_options:
            value = options.get(option)
            if value is None or value.keyword is None or value.file is None or value.env:
                continue
            task = self._task_object(ctx, profile, value)
            if task is not None and option not in objects_accepted:
                outcome = "the message cannot be encoded and the send fails with `TypeError`" if objects_accepted \
                    else "the object is looked up as a name when the hook fires, and the hook never runs"
                ctx.report(value.file, value.keyword.span,
                           f"`{option}={value.keyword.value.dotted}` passes the actor object, but {profile.title} "
                           f"expects its name here (`{option}=\"{task.name}\"`): {outcome}")
                continue
            if value.keyword.value.kind not in ("const", "name") or not isinstance(value.value, str):
                continue  # an actor object, an attribute, a call: not a name written here
            names = known(profile)
            if names is None or value.value in names:
                continue
            close = difflib.get_close_matches(value.value, sorted(names), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            ctx.report(value.file, value.keyword.span,
                       f"`{option}=\"{value.value}\"` names no {profile.title} task of the project: the name is "
                       f"looked up only when the hook fires, the lookup fails then and the failure goes "
                       f"unhandled{hint}")
