"""What qlint knows about how a Celery task fails: failure sinks, acknowledgements,
``Reject``, dead-letter queues and worker-lost redelivery (QLT301-QLT304).

Facts checked against the installed celery 5.7.0 / kombu 5.7.0:

* ``celery/worker/request.py`` ``Request.on_failure``: a task that is not ``acks_late`` had
  its message acked before it ran (``execute_using_pool``), so ``reject()`` afterwards is a
  no-op (``Request.reject`` only acts while ``not self.acknowledged``): ``raise Reject(...)``
  neither requeues nor dead-letters. A late-acked failure is acked when
  ``acks_on_failure`` is true (the default, through ``acks_on_failure_or_timeout=True``),
  else rejected with ``requeue=False``, which is what routes it to the queue's
  ``x-dead-letter-exchange``. A timeout with ``acks_on_timeout`` off is requeued, not
  dead-lettered. ``raise Reject(requeue=False)`` rejects a late-acked message whatever
  ``acks_on_failure`` says.
* ``celery/app/task.py`` ``Task.bind``: ``acks_on_failure``/``acks_on_timeout`` (new in
  5.7) fall back to ``acks_on_failure_or_timeout``, then to True.
* ``reject_on_worker_lost`` (default None, ``task_reject_on_worker_lost``) re-queues a
  late-acked message when the pool child dies, with no bound; ``retry_on_worker_lost``
  (5.7, ``task_retry_on_worker_lost``, default False) re-sends it through the retry path
  instead, so ``max_retries`` bounds it (``request.py``: ``_retry_worker_lost``, and the
  reject is skipped once retries are exhausted). It works with or without ``acks_late``.
* Error trackers: sentry-sdk lists ``CeleryIntegration`` in ``_AUTO_ENABLING_INTEGRATIONS``,
  installed by ``sentry_sdk.init()`` unless ``default_integrations=False``,
  ``auto_enabling_integrations=False`` (both default True) or ``disabled_integrations``
  names it; raven's ``raven.contrib.celery.register_signal``, bugsnag's
  ``bugsnag.celery.connect_failure_handler``, Elastic APM's
  ``elasticapm.contrib.celery.register_exception_tracking`` (also run by the
  ``elasticapm.contrib.django`` app) and Honeybadger's ``CeleryHoneybadger`` connect
  ``task_failure``; the New Relic and Datadog agents (``newrelic-admin run-program``,
  ``ddtrace-run``) record exceptions of the Celery tasks they instrument. Rollbar has no
  Celery hook of its own: its documented setup is a ``task_failure`` receiver, which counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from qlint.frameworks.celery_settings import CELERY_VERSION
from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Keyword, Span, Value
from qlint.lint.model import UNKNOWN, App, Project, Resolved, Task, seconds

REJECT = frozenset({"celery.exceptions.Reject"})
FAILURE_SIGNALS = frozenset({"celery.signals.task_failure", "celery.signals.task_internal_error"})
SIGNAL_NAMES = frozenset(name.rpartition(".")[2] for name in FAILURE_SIGNALS)
QUEUE_CLASSES = frozenset({"kombu.Queue", "kombu.entity.Queue"})
DEAD_LETTER_EXCHANGE = "x-dead-letter-exchange"

# Task attribute -> the setting Celery fills it from when the task leaves it None (``Task.from_config``).
TASK_SETTINGS = {
    "acks_late": "task_acks_late",
    "acks_on_failure_or_timeout": "task_acks_on_failure_or_timeout",
    "acks_on_failure": "task_acks_on_failure",
    "reject_on_worker_lost": "task_reject_on_worker_lost",
    "retry_on_worker_lost": "task_retry_on_worker_lost",
}
DEFAULTS = {
    "acks_late": False,
    "acks_on_failure_or_timeout": True,
    "acks_on_failure": None,  # falls back to acks_on_failure_or_timeout
    "reject_on_worker_lost": None,
    "retry_on_worker_lost": False,
    "result_expires": 86400.0,  # timedelta(days=1)
    "task_default_queue": "celery",
}
# Options that exist from this Celery version on (older versions ignore them).
SINCE = {
    "acks_on_failure": (5, 7),
    "acks_on_timeout": (5, 7),
    "retry_on_worker_lost": (5, 7),
}

# Error trackers: imports that hook task failures (module or name prefixes).
TRACKER_IMPORTS = {
    "sentry_sdk.integrations.celery": "Sentry's `CeleryIntegration`",
    "raven.contrib.celery": "raven's Celery signal handler",
    "bugsnag.celery": "Bugsnag's `connect_failure_handler`",
    "elasticapm.contrib.celery": "Elastic APM's Celery exception tracking",
    "honeybadger.contrib.celery": "Honeybadger's `CeleryHoneybadger`",
    "honeybadger.contrib.CeleryHoneybadger": "Honeybadger's `CeleryHoneybadger`",
}
# Agents whose package is imported as a whole (``import newrelic.agent`` binds ``newrelic``): a
# project that imports them runs its processes under the agent (``newrelic-admin run-program``,
# ``ddtrace-run``), which records the exceptions of the Celery tasks it instruments.
TRACKER_PACKAGES = {"newrelic": "the New Relic agent", "ddtrace": "the Datadog tracer"}
# Django apps that install a tracker's Celery hook when listed in ``INSTALLED_APPS``.
TRACKER_APPS = {"elasticapm.contrib.django": "Elastic APM's Django app (it connects `task_failure`)"}
SENTRY_INIT = frozenset({"sentry_sdk.init", "sentry_sdk.api.init", "sentry_sdk.client.init"})
SENTRY_CELERY = "CeleryIntegration"


# -- failure sinks (QLT301) ------------------------------------------------------------

@dataclass
class Sink:
    kind: str  # "on_failure", "signal", "link_error", "dead-letter queue", "error tracker", "unknown"
    what: str  # for messages
    file: FileFacts | None = None


def failure_sinks(project: Project) -> Iterator[Sink]:
    """Every place the project hooks the failure of a Celery task, project-wide. Lenient on
    purpose: something that may be a sink counts as one (QLT301 must not report a project
    that has one)."""
    task_classes = {id(t.cls) for t in project.tasks if t.cls is not None}
    for task in project.tasks:
        if task.framework != "celery":
            continue
        handler = task.options.get("on_failure")
        if handler is not None:
            yield Sink("on_failure", f"`on_failure` on task `{task.name}` ({handler.source})", handler.file)
        if task.opaque:
            yield Sink("unknown", f"task `{task.name}`: {task.opaque}, which may define `on_failure`", task.file)
    for app in project.apps:
        annotations = app.settings.get("task_annotations")
        if annotations is not None:
            if not isinstance(annotations.value, dict) or any(
                    isinstance(entry, dict) and "on_failure" in entry or not isinstance(entry, dict)
                    for entry in annotations.value.values()):
                yield Sink("on_failure", "`task_annotations` (may set `on_failure`)", annotations.file)
        queues = app.settings.get("task_queues")
        if queues is not None:
            decls, complete = queue_declarations(project, queues)
            if not complete:
                yield Sink("unknown", "`task_queues` qlint cannot read (may declare a dead-letter exchange)",
                           queues.file)
            for decl in decls:
                if decl.dead_letter is not None:
                    yield Sink("dead-letter queue", f"queue `{decl.name}` with `{DEAD_LETTER_EXCHANGE}`", decl.file)
    for facts in project.parsed_files():
        for cls in facts.classes:
            if ("on_failure" in cls.methods or "on_failure" in cls.attrs) and (
                    id(cls) in task_classes or any(b.kind == "name" and "Task" in b.dotted for b in cls.bases)):
                yield Sink("on_failure", f"`{cls.name}.on_failure`", facts)
        for target in facts.imports.values():
            for prefix, what in TRACKER_IMPORTS.items():
                if target == prefix or target.startswith(prefix + "."):
                    yield Sink("error tracker", what, facts)
            head = target.split(".")[0]
            if head in TRACKER_PACKAGES:
                yield Sink("error tracker", TRACKER_PACKAGES[head], facts)
        for kw in facts.assigns.values():
            if kw.value.kind == "seq":
                for element in kw.value.elements:
                    if element.is_const and element.value in TRACKER_APPS:
                        yield Sink("error tracker", TRACKER_APPS[element.value], facts)
        functions = list(facts.functions)
        for fn in functions:
            for dec in fn.decorators:
                if _is_failure_signal(project, dec):
                    yield Sink("signal", f"`{dec.dotted}` receiver `{fn.name}`", facts)
            if "link_error" in fn.names:
                yield Sink("link_error", f"`link_error` in `{fn.name}`", facts)
        for call in _all_calls(facts):
            if call.method == "connect" and _is_failure_signal(project, call):
                yield Sink("signal", f"`{call.dotted}(...)`", facts)
            elif "link_error" in call.kwargs:
                yield Sink("link_error", f"`{call.dotted}(link_error=...)`", facts)
            elif _queue_call(project, call):
                decl = _declaration(project, call, facts)
                if decl.dead_letter is not None:
                    yield Sink("dead-letter queue", f"queue `{decl.name}` with `{DEAD_LETTER_EXCHANGE}`", facts)
            elif _sentry_init(project, call):
                yield Sink("error tracker", "`sentry_sdk.init()` (its Celery integration is enabled "
                           "automatically when Celery is installed)", facts)


def _all_calls(facts: FileFacts) -> Iterator[CallFact]:
    seen: set[int] = set()
    for call in [*facts.calls, *(c for fn in facts.functions for c in fn.calls)]:
        if id(call) not in seen:
            seen.add(id(call))
            yield call


def _is_failure_signal(project: Project, call: CallFact) -> bool:
    if call.method != "connect":
        return False
    receiver = call.qualified.rpartition(".")[0]
    with project.parsed_only():
        if project.canonical(receiver) in FAILURE_SIGNALS:
            return True
    # ``signals.task_failure`` imported under another path qlint cannot follow.
    return call.receiver.rpartition(".")[2] in SIGNAL_NAMES


def _sentry_init(project: Project, call: CallFact) -> bool:
    """``sentry_sdk.init(...)`` that leaves the Celery integration on."""
    if not call.qualified.endswith(".init"):
        return False
    with project.parsed_only():
        if call.qualified not in SENTRY_INIT and project.canonical(call.qualified) not in SENTRY_INIT:
            return False
    if call.has_star:
        return True
    explicit = call.kwargs.get("integrations")
    if explicit is not None and (explicit.value.kind != "seq" or any(_names_celery_integration(e)
                                                                      for e in explicit.value.elements)):
        return True  # named explicitly, or a list qlint cannot read
    disabled = call.kwargs.get("disabled_integrations")
    if disabled is not None and (disabled.value.kind != "seq" or any(
            _names_celery_integration(e) for e in disabled.value.elements)):
        return False
    for option in ("default_integrations", "auto_enabling_integrations"):
        kw = call.kwargs.get(option)
        if kw is not None and project.fold(kw.value).value is False:
            return False
    return True


def _names_celery_integration(value: Value) -> bool:
    target = value.call.dotted if value.kind == "call" and value.call is not None else value.dotted
    return target.rpartition(".")[2] == SENTRY_CELERY


def app_tasks(project: Project, app: App) -> list[Task]:
    return [t for t in project.tasks if any(a is app for a in t.apps)]


def failure_retention(app: App) -> str:
    """Where a task's final failure is kept when nothing else records it, for messages."""
    backend = app.settings.get("result_backend")
    ignored = app.settings.get("task_ignore_result")
    if backend is None or backend.value is None:
        if app.config_complete:
            return "the app has no result backend, so the worker's log line is the only record of the failure"
        return "the failure is kept only as a FAILURE result, if the app has a result backend"
    if ignored is not None and ignored.value is True:
        return "`task_ignore_result` is on, so not even a FAILURE result is kept"
    expires = app.settings.get("result_expires")
    if expires is None:
        return f"the FAILURE result is kept in the result backend for {duration(DEFAULTS['result_expires'])} " \
               "(`result_expires`, Celery's default)"
    value = seconds(expires.value)
    if value is None or value <= 0:
        return "the FAILURE result in the result backend is all that records it"
    return f"the FAILURE result is kept in the result backend for {duration(value)} (`result_expires`)"


def duration(value: float) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if value >= size and value % size == 0:
            n = int(value // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{value:g} s"


# -- queues and dead-letter exchanges (QLT301, QLT303) -----------------------------------

@dataclass
class QueueDecl:
    name: Any  # str, or UNKNOWN
    dead_letter: Any  # the exchange name (UNKNOWN when not a literal), None without one
    file: FileFacts
    span: Span
    statement: Span | None = None


def _queue_call(project: Project, call: CallFact) -> bool:
    if not call.dotted or call.dotted.rpartition(".")[2] != "Queue":
        return False
    with project.parsed_only():
        target = project.canonical(call.qualified)
    return target in QUEUE_CLASSES or target.startswith("kombu.")


def _declaration(project: Project, call: CallFact, facts: FileFacts) -> QueueDecl:
    name_value = call.kwargs["name"].value if "name" in call.kwargs else (call.args[0] if call.args else None)
    name = project.fold(name_value).value if name_value is not None else ""
    dead_letter = None
    arguments = call.kwargs.get("queue_arguments")
    if arguments is not None:
        folded = project.fold(arguments.value).value
        if isinstance(folded, dict):
            dead_letter = folded.get(DEAD_LETTER_EXCHANGE)
            if DEAD_LETTER_EXCHANGE in folded and dead_letter is None:
                dead_letter = UNKNOWN
        elif arguments.value.kind == "dict" and any(
                project.fold(k).value == DEAD_LETTER_EXCHANGE for k, _ in arguments.value.items):
            dead_letter = UNKNOWN
    return QueueDecl(name, dead_letter, facts, call.span, call.statement)


def queue_declarations(project: Project, setting: Resolved) -> tuple[list[QueueDecl], bool]:
    """The queues a ``task_queues`` setting declares, and whether qlint read all of it."""
    out: list[QueueDecl] = []
    if setting.keyword is None or setting.file is None:
        return out, setting.value is None
    complete = _walk_queues(project, setting.keyword.value, setting.file, out, 0)
    return out, complete


def _walk_queues(project: Project, value: Value, facts: FileFacts, out: list[QueueDecl], depth: int) -> bool:
    if depth > 8:
        return False
    if value.kind == "const":
        return value.value is None
    if value.kind == "seq":
        return all([_walk_queues(project, e, facts, out, depth + 1) for e in value.elements])
    if value.kind == "binop" and value.op == "+" and value.left is not None and value.right is not None:
        return all([_walk_queues(project, side, facts, out, depth + 1) for side in (value.left, value.right)])
    if value.kind == "name":
        found = project.assignment(value.qualified)
        if found is None:
            return False
        return _walk_queues(project, found[1].value, found[0], out, depth + 1)
    if value.kind == "call" and value.call is not None:
        call = value.call
        if _queue_call(project, call):
            out.append(_declaration(project, call, facts))
            return not call.has_star or "queue_arguments" in call.kwargs
        if call.dotted in ("tuple", "list", "set") and len(call.args) == 1:
            return _walk_queues(project, call.args[0], facts, out, depth + 1)
        return False
    if value.kind == "dict":
        # The old mapping form: ``{"name": {"exchange": ..., "queue_arguments": {...}}}``.
        complete = True
        for key, options in value.items:
            name = project.fold(key).value
            folded = project.fold(options).value
            if not isinstance(name, str) or not isinstance(folded, dict):
                complete = False
                continue
            arguments = folded.get("queue_arguments")
            dead_letter = None
            if isinstance(arguments, dict):
                dead_letter = arguments.get(DEAD_LETTER_EXCHANGE, None)
                if DEAD_LETTER_EXCHANGE in arguments and dead_letter is None:
                    dead_letter = UNKNOWN
            elif arguments is UNKNOWN:
                complete = False
            out.append(QueueDecl(name, dead_letter, facts, Span(key.span.start, options.span.end)))
        return complete
    return False


def task_queues(project: Project, task: Task) -> set[str] | None:
    """The queues ``task`` can be sent to (``apply_async(queue=...)``, the task's ``queue``,
    ``task_routes``, ``task_default_queue``, in Celery's order), or None when qlint cannot tell."""
    if not task.options_complete:
        return None
    # Calls qlint does not see (beat, other services, ``send_task``) take the default route.
    default = _default_queue(task)
    if default is None:
        return None
    queues = {default}
    for site in project.sites:
        if site.kind != "enqueue" or site.task is not task:
            continue
        if site.call is not None and site.call.has_star:
            return None
        given = site.options.get("queue")
        if given is not None:
            if not isinstance(given.value, str):
                return None
            queues.add(given.value)
    return queues


def _default_queue(task: Task) -> str | None:
    own = task.options.get("queue")
    if own is not None and own.source != "default":
        return own.value if isinstance(own.value, str) else None
    for app in task.apps:
        routes = app.settings.get("task_routes")
        if routes is not None and routes.value is not None:
            tables = routes.value if isinstance(routes.value, (list, tuple)) else [routes.value]
            for table in tables:
                if not isinstance(table, dict):
                    return None
                entry = _route(table, task.name)
                if entry is _MISSING:
                    continue
                if isinstance(entry, str):
                    return entry
                if isinstance(entry, dict) and "queue" in entry:
                    return entry["queue"] if isinstance(entry["queue"], str) else None
                if not isinstance(entry, dict):
                    return None
        default = app.settings.get("task_default_queue")
        if default is not None:
            return default.value if isinstance(default.value, str) else None
    return DEFAULTS["task_default_queue"]


_MISSING = object()


def _route(table: dict, name: str):
    """The entry a ``task_routes`` mapping gives ``name``: the exact key, then ``*`` globs."""
    if name in table:
        return table[name]
    for key, value in table.items():
        if isinstance(key, str) and "*" in key and re.fullmatch(re.escape(key).replace(r"\*", ".*"), name):
            return value
    return _MISSING


# -- acknowledgements, Reject (QLT302, QLT303) -----------------------------------------

def effective(task: Task, option: str, version: tuple[int, ...] | None = None) -> Resolved:
    """A task attribute after ``Task.bind``: the task (decorator, base classes,
    ``task_annotations``), else the app's setting, else Celery's default. ``UNKNOWN`` when
    an unread place could still set it."""
    since = SINCE.get(option)
    if since is not None and version is not None and version < since:
        return Resolved(None, f"not in Celery {'.'.join(map(str, version))}")
    own = task.options.get(option)
    if own is not None and own.value is not None:
        if own.value is UNKNOWN or task.options_hidden:
            return Resolved(UNKNOWN, own.source, own.keyword, own.file)
        return own
    setting = TASK_SETTINGS.get(option)
    for app in task.apps:
        value = app.settings.get(setting) if setting else None
        if value is not None and value.value is not None:
            return Resolved(value.value, f"setting {setting}", value.keyword, value.file, value.env)
    if not task.options_complete:
        return Resolved(UNKNOWN, "default")
    return Resolved(DEFAULTS.get(option), "default")


def acks_late(task: Task) -> Resolved:
    resolved = effective(task, "acks_late")
    if resolved.value is True or resolved.value is UNKNOWN:
        return resolved
    if resolved.source.startswith(("decorator", "class ")) and not task.options_hidden:
        return resolved  # written on the task itself: only task_annotations could override it
    if not task.options_complete:
        return Resolved(UNKNOWN, resolved.source, resolved.keyword, resolved.file)
    return resolved


def acks_on_failure(task: Task, version: tuple[int, ...] | None = None) -> Resolved:
    """Whether a failed late-acked task is acked (True) or rejected without requeue (False)."""
    specific = effective(task, "acks_on_failure", version)
    if specific.value is not None:
        return specific
    return effective(task, "acks_on_failure_or_timeout", version)


@dataclass
class Rejection:
    fn: FunctionFact
    value: Value  # the raised expression
    requeue: Any  # True, False or UNKNOWN


def rejections(project: Project, task: Task, functions: list[FunctionFact]) -> list[Rejection]:
    """``raise Reject(...)`` in the task's own code."""
    out = []
    for fn in functions:
        for raised in fn.raises:
            call = raised.call if raised.kind == "call" else None
            qualified = call.qualified if call is not None else raised.qualified
            if not qualified or qualified.rpartition(".")[2] != "Reject" and qualified not in REJECT:
                continue
            with project.parsed_only():
                if project.canonical(qualified) not in REJECT:
                    continue
            requeue: Any = False
            if call is not None:
                value = call.kwargs["requeue"].value if "requeue" in call.kwargs else (
                    call.args[1] if len(call.args) > 1 else None)
                if value is not None:
                    folded = project.fold(value).value
                    requeue = folded if isinstance(folded, bool) else UNKNOWN
                elif call.has_star:
                    requeue = UNKNOWN
            out.append(Rejection(fn, raised, requeue))
    return out


# -- worker lost (QLT304) ----------------------------------------------------------------

def rename_worker_lost(data: bytes, keyword: Keyword) -> tuple[int, int, str] | None:
    """Where ``reject_on_worker_lost`` is spelled in ``keyword`` (any case and prefix), and the
    same name for ``retry_on_worker_lost``: (start, end, replacement)."""
    start = keyword.span.start
    end = keyword.value.span.start
    text = data[start:end].decode("utf-8", "replace")
    matches = list(re.finditer(r"reject_on_worker_lost", text, re.IGNORECASE))
    if len(matches) != 1:
        return None
    m = matches[0]
    word = m.group(0)
    retry = "RETRY" if word[:6].isupper() else "retry"
    prefix = len(text[:m.start()].encode("utf-8"))
    return start + prefix, start + prefix + len("reject"), retry


# -- the project's Celery version ------------------------------------------------------

@dataclass(frozen=True)
class Pinned:
    exact: tuple[int, ...] | None  # a locked or ``==`` version
    minimum: tuple[int, ...] | None  # the lowest version the specifiers allow
    text: str  # as written: "celery[redis]==5.6.2"
    source: str  # the file's name
    below: tuple[int, ...] | None = None  # an upper bound (``<5.7``): versions from it on are excluded

    def at_least(self, version: tuple[int, ...]) -> bool | None:
        """True/False when the pin decides it, None when it allows versions on both sides."""
        if self.exact is not None:
            return self.exact >= version
        if self.minimum is not None and self.minimum >= version:
            return True
        if self.below is not None and self.below <= version:
            return False
        return None

    @property
    def shown(self) -> str:
        if self.text.startswith("celery ") and self.exact is not None:  # a lock file's entry
            return f"{self.source} locks Celery {self.text[len('celery '):]}"
        return f"{self.source} requires `{self.text}`"


LATEST = tuple(int(p) for p in CELERY_VERSION.split("."))
_NAME = re.compile(r"^\s*celery\s*(\[[^\]]*\])?\s*(?P<spec>(?:[<>=!~^]|\d)[^;#\n]*)?", re.IGNORECASE)
_CLAUSE = re.compile(r"(===|==|~=|>=|<=|!=|>|<|\^|~)?\s*v?(\d+(?:\.\d+)*)(\.\*)?")
_LOCK = re.compile(r'\[\[package\]\]\s*\nname\s*=\s*"celery"\s*\nversion\s*=\s*"([^"]+)"', re.IGNORECASE)


def _version(text: str) -> tuple[int, ...] | None:
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _from_spec(spec: str, text: str, source: str) -> Pinned | None:
    """A requirement's version specifiers; None when it names no version (the latest is installed)."""
    exact = minimum = below = None
    for clause in spec.split(","):
        m = _CLAUSE.match(clause.strip())
        if not m:
            continue
        op, number, wildcard = m.group(1) or "==", m.group(2), m.group(3)
        version = tuple(int(p) for p in number.split("."))
        if op in ("==", "===") and not wildcard:
            exact = version
        if op in ("==", "===") and wildcard:
            bound = (*version[:-1], version[-1] + 1)
            below = min(below, bound) if below is not None else bound
        if op in ("==", "===", "~=", ">=", ">", "^", "~"):
            minimum = max(minimum, version) if minimum is not None else version
        if op in ("<", "<="):
            bound = version if op == "<" else (*version[:-1], version[-1] + 1)
            below = min(below, bound) if below is not None else bound
    if exact is None and minimum is None and below is None:
        return None
    return Pinned(exact, minimum, text.strip(), source, below)


def _requirements(path: Path) -> Pinned | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        m = _NAME.match(line)
        if m is None:
            continue
        rest = line.strip()[len("celery"):]
        if rest and (rest[0].isalnum() or rest[0] in "-_."):
            continue  # celery-once, celery_progress, ...
        return _from_spec(m.group("spec") or "", line.split("#")[0], path.name)
    return None


def _lock(path: Path) -> Pinned | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if path.name == "Pipfile.lock":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        for section in ("default", "develop"):
            entry = data.get(section, {}).get("celery") if isinstance(data, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                version = _version(entry["version"].lstrip("="))
                return Pinned(version, version, f"celery {entry['version'].lstrip('=')}", path.name)
        return None
    m = _LOCK.search(text)
    if not m:
        return None
    version = _version(m.group(1))
    return Pinned(version, version, f"celery {m.group(1)}", path.name)


def _pyproject(path: Path) -> Pinned | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # PEP 621 (``"celery[redis]>=5.3,<6"``) and Poetry (``celery = "^5.3"`` / ``{version = "^5.3"}``).
    m = re.search(r'''["']celery\s*(\[[^\]]*\])?\s*([<>=!~^][^"';]*)?["';]''', text, re.IGNORECASE)
    if m:
        return _from_spec(m.group(2) or "", m.group(0).strip("\"';"), path.name)
    m = re.search(r'''(?m)^\s*celery\s*=\s*(?:["']([^"']*)["']|\{[^}]*version\s*=\s*["']([^"']*)["'])''', text)
    if m:
        spec = m.group(1) if m.group(1) is not None else m.group(2)
        return _from_spec(spec, f"celery {spec}", path.name)
    return None


def _setup_cfg(path: Path) -> Pinned | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        m = _NAME.match(line)
        if m and m.group("spec"):
            return _from_spec(m.group("spec"), line, path.name)
    return None


@lru_cache(maxsize=256)
def _pinned_in(directory: str) -> Pinned | None:
    folder = Path(directory)
    for name in ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock"):
        if (folder / name).is_file():
            found = _lock(folder / name)
            if found is not None:
                return found
    candidates = sorted(folder.glob("requirements*.txt")) + sorted(folder.glob("requirements/*.txt"))
    pinned = [p for p in (_requirements(c) for c in candidates) if p is not None]
    exact = [p for p in pinned if p.exact is not None]
    if exact or pinned:
        return (exact or pinned)[0]
    for name, reader in (("pyproject.toml", _pyproject), ("setup.cfg", _setup_cfg)):
        if (folder / name).is_file():
            found = reader(folder / name)
            if found is not None:
                return found
    return None


def pinned_celery(facts: FileFacts) -> Pinned | None:
    """The Celery version the project pins, from the nearest folder above ``facts`` that
    names it (lock files first, then requirements, pyproject.toml, setup.cfg)."""
    folder = Path(facts.path).resolve().parent
    for _ in range(10):
        found = _pinned_in(str(folder))
        if found is not None:
            return found
        if (folder / ".git").exists() or folder.parent == folder:
            return None
        folder = folder.parent
    return None


@dataclass
class VersionCheck:
    ok: bool  # the feature is there (or assumed to be)
    note: str  # which version was assumed, for the message
    pinned: Pinned | None = field(default=None)


def supports(facts: FileFacts, since: tuple[int, ...], feature: str) -> VersionCheck:
    """Whether the project's Celery has ``feature`` (new in ``since``)."""
    pinned = pinned_celery(facts)
    wanted = ".".join(map(str, since))
    if pinned is None:
        latest = ".".join(map(str, LATEST))
        return VersionCheck(LATEST >= since, f"assuming Celery {latest}, the latest qlint knows, as the project "
                            "pins no version")
    verdict = pinned.at_least(since)
    if verdict:
        return VersionCheck(True, pinned.shown, pinned)
    if verdict is None:
        return VersionCheck(False, f"{pinned.shown} allows Celery below {wanted}, which has no {feature}", pinned)
    return VersionCheck(False, f"{pinned.shown}, which has no {feature} (new in {wanted})", pinned)


def project_version(facts: FileFacts) -> tuple[int, ...] | None:
    """The newest Celery version the project may run, for judging whether an option it writes
    is honoured (the benefit of the doubt); None when that is the latest qlint knows. A fix
    that needs a version asks ``supports`` instead, which wants the oldest allowed one."""
    pinned = pinned_celery(facts)
    if pinned is None:
        return None
    if pinned.exact is not None:
        return pinned.exact
    if pinned.below is not None and pinned.below <= LATEST:
        bound = list(pinned.below)
        while len(bound) > 1 and bound[-1] == 0:
            bound.pop()
        return (*bound[:-1], bound[-1] - 1, 999)  # just below the bound: ``<5.7.0`` -> 5.6.999
    return None
