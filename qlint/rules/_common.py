"""Helpers several rules share: where to write an option, how to phrase a source."""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator
from dataclasses import dataclass

from qlint.fixers.calls import add_class_attributes, add_keywords
from qlint.fixers.imports import add_import
from qlint.fixers.style import project_style
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit
from qlint.lint.facts import CallFact, FunctionFact, Value
from qlint.lint.model import UNKNOWN, Project, Resolved, Task, seconds


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
        return add_keywords(src, task.decorator, items, ctx.line_length)
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
        elif fn is task.function and task.profile is not None and task.profile.bind_option and \
                "retry" in fn.self_attrs:
            # ``self.retry`` in a task that forgot ``bind=True`` (QLT204): judged as the retry it
            # is meant to be, so that binding it (QLT204's fix) reveals no finding of its own.
            receivers.add("self")
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


# -- what a retry really does ------------------------------------------------------------

def exception_covers(project: Project, value: Value, error: type[BaseException], _depth: int = 0) -> bool | None:
    """Whether a value naming exception classes (a name, a tuple or list of them, a module constant
    holding one) catches the builtin ``error``: True when one of its classes is ``error`` or a base of
    it, False when every class is known and none is, None when some class cannot be read (a name
    from outside the project may be a tuple or an alias of a builtin)."""
    if _depth > 6:
        return None
    if value.kind == "seq":
        found = [exception_covers(project, e, error, _depth + 1) for e in value.elements]
        return True if True in found else (None if None in found else False)
    if value.kind != "name":
        return None
    for qualified in (value.qualified, project.canonical(value.qualified)):
        if qualified.startswith("builtins."):
            cls = getattr(builtins, qualified[len("builtins."):], None)
            return issubclass(error, cls) if isinstance(cls, type) and issubclass(cls, BaseException) else None
    assigned = project.assignment(value.qualified)
    if assigned is not None:
        return exception_covers(project, assigned[1].value, error, _depth + 1)
    if project.class_named(value.qualified) is not None:
        return False  # a project class is never a base of a builtin exception
    return None


def _count(value) -> float | None:
    """A retry count (``math.inf`` for unbounded), None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _plural(count: float, word: str) -> str:
    return f"{number_text(count)} {word}{'' if count == 1 else 's'}"


def _seconds_list(values: list[float]) -> str:
    """"2, 4 and 8"; a long series as "1, 2, 4, ... 512"."""
    shown = [number_text(v) for v in values]
    if len(shown) > 5:
        return ", ".join(shown[:3]) + ", ... " + shown[-1]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


@dataclass
class AutoRetry:
    """What Celery does when a task's ``autoretry_for`` catches an exception
    (``celery/app/autoretry.py``, ``Task.retry`` in ``celery/app/task.py``, Celery 5.6):

    - ``task.retry(exc=exc, **retry_kwargs)``: ``max_retries`` in ``retry_kwargs`` (unless ``None``)
      overrides the task's ``max_retries``; a ``countdown`` (unless ``None``) or ``eta`` there is
      the delay; without either the delay is ``default_retry_delay`` (180 s);
    - a truthy ``retry_backoff`` (``float(...)``) replaces that ``countdown`` with
      ``min(retry_backoff_max, int(max(1.0, retry_backoff)) * 2 ** retries)`` (``retry_backoff_max``
      600, ``int(...)``), and with ``retry_jitter`` (default True) a random whole number of
      seconds from 0 to that (``get_exponential_backoff_interval``: ``randrange(countdown + 1)``).
    """

    retries: Resolved  # value: an int, math.inf, or UNKNOWN
    factor: int | None  # the backoff factor; None without backoff
    backoff_unknown: bool  # ``retry_backoff`` cannot be read
    cap: float | None  # ``retry_backoff_max`` in seconds (None: unreadable)
    jitter: bool | None  # ``retry_jitter`` (None: unreadable)
    delay: float | None  # the fixed delay without backoff, in seconds (None: unknown or an ``eta``)
    delay_option: str  # "countdown", "eta", "default_retry_delay" or "" (``retry_kwargs`` unreadable)
    delay_source: Resolved | None  # where that delay is written (``retry_kwargs`` or ``default_retry_delay``)
    # The task chose a fixed delay: a ``countdown``/``eta`` in ``retry_kwargs``, or ``retry_backoff``
    # written falsy next to a written ``default_retry_delay``.
    fixed_by_choice: bool

    @property
    def count(self) -> float | None:
        return _count(self.retries.value) if self.retries.known else None

    def schedule(self) -> str:
        """How often and how far apart the retries come: "3 times, 180 s apart", "forever, after
        random waits of up to 1, 2, 4, ... 512 s, then 600 s each"."""
        count = self.count
        if count is None:
            head = "as many times as `max_retries` allows"
        elif math.isinf(count):
            head = "forever"
        else:
            head = _plural(count, "time")
        if self.factor:
            return f"{head}, {self._backoff_text(count)}"
        if self.delay is not None and not self.backoff_unknown:
            return f"{head}, {number_text(self.delay)} s apart"
        return head

    def _backoff_text(self, count: float | None) -> str:
        if self.cap is None:
            return f"after waits that double from {number_text(self.factor)} s"
        growth: list[float] = []
        capped = False
        limit = 64 if count is None or math.isinf(count) else int(count)
        for n in range(limit):
            wait = min(self.cap, self.factor * 2 ** n)
            if wait >= self.cap:
                capped = True
                break
            growth.append(wait)
        # With jitter each wait is drawn from 0 up to the value; qlint cannot read a non-literal jitter.
        waits = "random waits of up to" if self.jitter else "waits of" if self.jitter is False else "waits of up to"
        if not growth:
            return f"after {waits} {number_text(self.cap)} s each"
        text = f"after {waits} {_seconds_list(growth)} s"
        return text + f", then {number_text(self.cap)} s each" if capped else text


def autoretry(project: Project, task: Task) -> AutoRetry | None:
    """The automatic retries of a Celery-style task (``autoretry_for``), None without them."""
    auto = task.option("autoretry_for")
    if auto is None or (auto.known and not auto.value):
        return None
    kwargs = task.option("retry_kwargs")
    written = kwargs.value if kwargs is not None and isinstance(kwargs.value, dict) else None
    if kwargs is None:
        written = {}
    retries = task.norm.get("max_retries") or Resolved(UNKNOWN, "unknown")
    if written is None:
        retries = Resolved(UNKNOWN, kwargs.source, kwargs.keyword, kwargs.file)
    elif written.get("max_retries") is not None:
        value = written["max_retries"]
        retries = Resolved(value if _count(value) is not None else UNKNOWN, f"`retry_kwargs`, {kwargs.source}",
                           kwargs.keyword, kwargs.file, kwargs.env)
    backoff = task.option("retry_backoff")
    factor, backoff_unknown = None, False
    if backoff is not None:
        raw = backoff.value
        if not backoff.known or (not isinstance(raw, (int, float)) and raw is not None):
            backoff_unknown = True
        elif raw:
            factor = int(max(1.0, float(raw)))
    cap_opt = task.option("retry_backoff_max")
    cap = 600.0 if cap_opt is None else (float(int(cap_opt.value)) if cap_opt.known and
                                         _count(cap_opt.value) is not None and
                                         not math.isinf(cap_opt.value) else None)
    jitter_opt = task.option("retry_jitter")
    jitter = True if jitter_opt is None else (bool(jitter_opt.value) if jitter_opt.known else None)
    delay, option, source, chosen = None, "", None, False
    if written is not None and written.get("countdown") is not None:
        option, source, chosen = "countdown", kwargs, True
        delay = seconds(written["countdown"]) if written["countdown"] is not UNKNOWN else None
    elif written is not None and (written.get("eta") is UNKNOWN or written.get("eta")):
        option, source, chosen = "eta", kwargs, True  # an eta, or one qlint cannot read
    elif written is not None:
        option = "default_retry_delay"
        source = task.norm.get("retry_delay")
        delay = seconds(source.value) if source is not None and source.known else None
        chosen = backoff is not None and not backoff_unknown and factor is None and \
            task.option("default_retry_delay") is not None
    return AutoRetry(retries, factor, backoff_unknown, cap, jitter, delay, option, source, chosen)


# Frameworks whose worker runs a task again after any exception its body raises, up to the task's
# ``norm["max_retries"]``, with the task options that exempt exception classes from it:
# Huey (``Huey._execute``: ``except Exception`` then ``_requeue_task`` while ``task.retries``),
# Dramatiq (``Retries.after_process_message``: any exception but those in ``throws``; a
# ``retry_when`` decides instead, and leaves ``norm["max_retries"]`` unknown). Not here: Celery
# (only ``autoretry_for`` and ``self.retry``, see ``autoretry``), RQ (a ``Retry`` given per enqueue),
# arq (``Retry`` and cancellation only: ``Worker.run_job``), Taskiq (its retry middlewares can be
# limited to ``types_of_exceptions``, which qlint does not read).
RETRIES_EVERY_ERROR = {"huey": (), "dramatiq": ("throws",)}


def retries_after(project: Project, task: Task, error: type[BaseException]) -> float | None:
    """How many times the framework certainly runs the task again after its body raises ``error``
    (``math.inf``: without end); None when it does not, or qlint cannot tell (a ``self.retry(...)``
    whose handler qlint does not match to the error, an unreadable exemption, a count it cannot read)."""
    if task.profile is None or task.retry_blocker:
        return None
    if task.profile.retry_method:
        auto = autoretry(project, task)
        caught = task.option("autoretry_for")
        if auto is None or caught is None or caught.keyword is None or \
                exception_covers(project, caught.keyword.value, error) is not True:
            return None
        exempt = task.option("dont_autoretry_for")
        if exempt is not None and (exempt.keyword is None or
                                   exception_covers(project, exempt.keyword.value, error) is not False):
            return None
        count = auto.count
    elif task.profile.name in RETRIES_EVERY_ERROR:
        for name in RETRIES_EVERY_ERROR[task.profile.name]:
            exempt = task.option(name)
            if exempt is not None and (exempt.keyword is None or
                                       exception_covers(project, exempt.keyword.value, error) is not False):
                return None
        norm = task.norm.get("max_retries")
        count = _count(norm.value) if norm is not None and norm.known else None
    else:
        return None
    return count if count is not None and count > 0 else None


def import_edits(ctx: RuleContext, src, module: str, name: str | None = None) -> list[Edit] | None:
    """Edits importing ``module`` (or ``name`` from it) where the project's import sorting
    puts it, in its line length; None when qlint cannot place it so."""
    return add_import(src, module, name, project_style(ctx.settings.root, tuple(ctx.settings.src)))
