"""Celery's broker and worker configuration: which broker an app talks to, how long that
broker lets a message stay unacknowledged, prefetch, pools and child recycling.

Read by the 4xx rules (QLT401, QLT404-QLT409) through the functions below; the rules name
no setting, transport or default themselves. Every default here was checked against the
installed sources (celery 5.7.0, kombu 5.7.0):

- broker transport from the URL scheme: ``kombu/transport/__init__.py`` (``TRANSPORT_ALIASES``:
  ``redis``/``rediss``/``sentinel`` are the Redis transport, ``sqs``/``SQS`` Amazon SQS,
  ``amqp``/``amqps``/``pyamqp``/``librabbitmq`` RabbitMQ); with no URL kombu uses ``amqp``
  (``kombu/connection.py``, ``_init_params``: ``transport = transport or 'amqp'``), unless
  the ``CELERY_BROKER_URL`` environment variable names another (``celery/app/utils.py``).
- ``visibility_timeout``: 3600 s for Redis (``kombu/transport/redis.py``, ``Channel``),
  1800 s for SQS (``kombu/transport/SQS/__init__.py``, ``default_visibility_timeout``), both
  read from ``broker_transport_options``.
- RabbitMQ's ``consumer_timeout`` is a server setting: 30 minutes (1 800 000 ms) since
  RabbitMQ 3.8.17; it cannot be read from the Python configuration.
- ``worker_prefetch_multiplier`` 4, ``worker_disable_prefetch`` False and honoured on Redis
  only (``celery/worker/consumer/tasks.py`` warns and ignores it elsewhere),
  ``worker_pool`` ``prefork`` (``processes`` is an alias, ``celery/concurrency/__init__.py``),
  ``worker_max_tasks_per_child``/``worker_max_memory_per_child`` None, ``broker_pool_limit`` 10,
  ``task_always_eager`` False (``celery/app/defaults.py``).
- Countdown and ETA messages stay unacknowledged in the worker that reserved them until they
  are due, except with RabbitMQ quorum queues on a topic/fanout exchange, which Celery >= 5.5
  delays in the broker instead (``celery/app/base.py``, ``send_task``: native delayed delivery).
- Automatic retries wait ``min(retry_backoff_max, factor * 2 ** retries)`` seconds
  (``celery/app/autoretry.py``, ``celery/utils/time.py``: ``get_exponential_backoff_interval``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from qlint.frameworks.celery_settings import OLD_TO_NEW
from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Keyword, Span, Value
from qlint.lint.model import UNKNOWN, App, Project, Resolved, Task, seconds

# -- brokers ---------------------------------------------------------------------------

BROKER_KINDS = {
    "redis": "redis", "rediss": "redis", "sentinel": "redis",
    "sqs": "sqs",
    "amqp": "amqp", "amqps": "amqp", "pyamqp": "amqp", "librabbitmq": "amqp",
}
BROKER_TITLES = {"redis": "Redis", "sqs": "SQS", "amqp": "RabbitMQ"}
# kombu's default visibility timeouts, in seconds.
VISIBILITY_TIMEOUTS = {"redis": 3600, "sqs": 1800}
# RabbitMQ's ``consumer_timeout`` default (server side, since 3.8.17), in seconds.
CONSUMER_TIMEOUT = 1800
DEFAULT_TRANSPORT = "amqp"
_SCHEME = re.compile(r"^\s*[rRbBuUfF]*(?:\"\"\"|'''|\"|')\s*([A-Za-z][A-Za-z0-9+.\-]*)://")
_URL_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*)://")

# Source text of a value, for schemes written in f-strings or concatenations.
TextOf = Callable[[FileFacts, Span], str]


@dataclass
class Broker:
    """The broker an app connects to."""

    kind: str | None  # "redis", "sqs", "amqp", another transport's name, or None when unknown
    explicit: bool  # False when nothing sets the broker and kombu's ``amqp`` default applies
    setting: Resolved | None = None  # the ``broker_url`` (or ``broker_transport``) that decides it
    scheme: str = ""

    @property
    def title(self) -> str:
        return BROKER_TITLES.get(self.kind or "", self.kind or "unknown")


def _scheme_of(value, resolved: Resolved | None, text: TextOf | None) -> str | None:
    if isinstance(value, (list, tuple)) and value:  # failover URLs: the first one is used
        value = value[0]
    if isinstance(value, str):
        first = value.split(";")[0].strip()
        match = _URL_SCHEME.match(first)
        if match:
            return match.group(1)
        return "" if not first else None
    if resolved is not None and resolved.keyword is not None and resolved.file is not None and text is not None:
        # f"redis://{host}:6379/0", "redis://" + host, "amqp://%s" % host
        match = _SCHEME.match(text(resolved.file, resolved.keyword.value.span))
        if match:
            return match.group(1)
    return None


def broker(app: App, text: TextOf | None = None) -> Broker:
    """Which transport the app's broker URL names (``broker_url``, ``Celery(broker=)``,
    Django ``CELERY_BROKER_URL``, ``broker_transport``)."""
    url = app.settings.get("broker_url")
    if url is not None and url.value is not UNKNOWN and url.value is not None:
        scheme = _scheme_of(url.value, url, text)
        if scheme:
            return Broker(BROKER_KINDS.get(scheme.lower(), scheme.lower()), True, url, scheme)
        if scheme is None:
            return Broker(None, True, url)
        url = None  # an empty URL: Celery falls back as if none were set
    elif url is not None and url.value is UNKNOWN:
        scheme = _scheme_of(UNKNOWN, url, text)
        if scheme:
            return Broker(BROKER_KINDS.get(scheme.lower(), scheme.lower()), True, url, scheme)
        return Broker(None, True, url)
    transport = app.settings.get("broker_transport")
    if transport is not None and transport.value is not None:
        name = transport.value if isinstance(transport.value, str) else None
        if name and name.lower() in BROKER_KINDS:
            return Broker(BROKER_KINDS[name.lower()], True, transport, name)
        return Broker(None, True, transport)  # a transport class path, or unknown
    return Broker(DEFAULT_TRANSPORT, False, None, DEFAULT_TRANSPORT)


@dataclass
class Window:
    """How long the broker lets a delivered message stay unacknowledged before it gives it
    to another consumer (Redis/SQS ``visibility_timeout``) or closes the channel (RabbitMQ
    ``consumer_timeout``)."""

    seconds: float
    option: str  # "visibility timeout", "`consumer_timeout`"
    source: str  # for messages: "kombu's default", "`broker_transport_options` (app.conf)"
    setting: Resolved | None = None


def visibility_timeout(app: App, brk: Broker) -> Window | None:
    """The Redis/SQS visibility timeout; None for other brokers or when it cannot be read."""
    if brk.kind not in VISIBILITY_TIMEOUTS:
        return None
    options = app.settings.get("broker_transport_options")
    default = Window(VISIBILITY_TIMEOUTS[brk.kind], "visibility timeout",
                     "kombu's default")
    if options is None or options.value is None:
        return default
    if not isinstance(options.value, dict):
        return None
    if "visibility_timeout" not in options.value:
        return default
    value = options.value["visibility_timeout"]
    if value is None or value == "":
        return default
    number = seconds(value)
    if number is None and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None:
        return None
    where = f"`broker_transport_options` ({options.source})"
    return Window(number, "visibility timeout", where, options)


def consumer_timeout(app: App, brk: Broker) -> Window | None:
    """RabbitMQ's ``consumer_timeout`` (server default: qlint does not read rabbitmq.conf)."""
    if brk.kind != "amqp":
        return None
    return Window(CONSUMER_TIMEOUT, "`consumer_timeout`", "RabbitMQ's default since 3.8.17")


def delays_held_unacked(app: App, brk: Broker) -> bool:
    """Countdown/ETA messages sit unacknowledged in the worker until due: true except for
    RabbitMQ quorum queues behind a topic or fanout exchange (native delayed delivery)."""
    if brk.kind != "amqp":
        return True
    queue_type = app.settings.get("task_default_queue_type")
    exchange_type = app.settings.get("task_default_exchange_type")
    return not (queue_type is not None and queue_type.value == "quorum" and exchange_type is not None
                and exchange_type.value in ("topic", "fanout"))


# -- prefetch, pools, recycling ----------------------------------------------------------

PREFETCH_SETTING = "worker_prefetch_multiplier"
PREFETCH_DEFAULT = 4
DISABLE_PREFETCH_SETTING = "worker_disable_prefetch"
# Task limits from this long make prefetching strand messages behind a running task.
LONG_TASK_SECONDS = 300
POOL_SETTING = "worker_pool"
POOL_DEFAULT = "prefork"
RECYCLING_POOLS = frozenset({"prefork", "processes"})
NON_RECYCLING_POOLS = frozenset({"threads", "gevent", "eventlet", "solo"})
RECYCLING_SETTINGS = ("worker_max_tasks_per_child", "worker_max_memory_per_child")
RECYCLING_FIX_SETTING = "worker_max_tasks_per_child"
POOL_LIMIT_SETTING = "broker_pool_limit"
POOL_LIMIT_DEFAULT = 10
EAGER_SETTING = "task_always_eager"
# Django settings Celery reads as ``task_always_eager`` (namespace "CELERY", and the pre-4.0 name).
EAGER_DJANGO_NAMES = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_ALWAYS_EAGER")
TIME_LIMIT_OPTIONS = ("time_limit", "soft_time_limit")


def prefetch(app: App) -> Resolved:
    """The effective ``worker_prefetch_multiplier`` (``source == "default"`` when unset)."""
    return app.settings.get(PREFETCH_SETTING) or Resolved(PREFETCH_DEFAULT, "default")


def prefetch_disabled(app: App, brk: Broker) -> bool | None:
    """``worker_disable_prefetch`` (Celery >= 5.6) in effect: True/False, None when unknown.
    Celery ignores it on brokers other than Redis."""
    setting = app.settings.get(DISABLE_PREFETCH_SETTING)
    if setting is None or setting.value is False or setting.value is None:
        return False
    if setting.value is UNKNOWN:
        return None
    if not setting.value:
        return False
    if brk.kind == "redis":
        return True
    return None if brk.kind is None else False


def pool(app: App) -> Resolved:
    """The effective ``worker_pool`` from the configuration (the CLI's ``-P`` is read from manifests)."""
    return app.settings.get(POOL_SETTING) or Resolved(POOL_DEFAULT, "default")


def recycles(pool_name) -> bool | None:
    """Whether a pool replaces its worker processes (prefork only); None when unknown."""
    if not isinstance(pool_name, str):
        return None
    name = pool_name.strip().lower()
    if name in RECYCLING_POOLS:
        return True
    if name in NON_RECYCLING_POOLS:
        return False
    return None


def recycling_settings(app: App) -> list[tuple[str, Resolved]]:
    """The child-recycling settings the app sets (a value of None sets nothing)."""
    return [(key, app.settings[key]) for key in RECYCLING_SETTINGS
            if key in app.settings and app.settings[key].value is not None]


def pool_limit(app: App) -> Resolved:
    return app.settings.get(POOL_LIMIT_SETTING) or Resolved(POOL_LIMIT_DEFAULT, "default")


def eager_sites(app: App) -> list[Resolved]:
    """Every place the app's configuration writes ``task_always_eager``."""
    return [r for key, r in app.setting_sites if key == EAGER_SETTING]


def eager_name(name: str) -> bool:
    """A Django settings name Celery reads as ``task_always_eager``."""
    return name in EAGER_DJANGO_NAMES


def has_tasks(project: Project, app: App) -> bool:
    return any(app in t.apps for t in project.tasks)


# -- worker command lines (manifests) ---------------------------------------------------

# ``celery worker`` flags as ``qlint.frameworks.celery.CLI`` names them.
RECYCLING_FLAGS = ("max_tasks_per_child", "max_memory_per_child")
PREFETCH_FLAG = "prefetch_multiplier"
POOL_FLAG = "pool"


def workers_running(project: Project, app: App) -> list:
    """The ``celery worker`` commands in the project's manifests (and shell scripts) that run this
    app's tasks."""
    from qlint.manifests.joins import tasks_of

    found = []
    for worker in [*getattr(project, "workers", []), *getattr(project, "script_workers", [])]:
        if worker.framework != "celery" or "worker" not in worker.command.roles:
            continue
        if any(app in task.apps for task in tasks_of(project, worker)):
            found.append(worker)
    return found


def worker_flag(worker, name: str) -> str | None:
    """A flag's value on a worker command ("" for a flag given without a value), None when absent."""
    flag = worker.command.flags.get(name)
    if flag is None:
        return None
    return flag.value or ""


# -- where a module sits ------------------------------------------------------------------

def module_parts(facts: FileFacts, root: Path | None = None) -> list[str]:
    """The lower-cased parts of a module's dotted name and of the folders above its file
    (relative to ``root`` when the file is under it, else the nearest three folders)."""
    parts = [p.lower() for p in facts.module.split(".")]
    folders: tuple[str, ...] = ()
    if root is not None:
        try:
            folders = Path(facts.path).resolve().relative_to(root.resolve()).parts[:-1]
        except ValueError:
            folders = Path(facts.path).parts[-4:-1]
    return parts + [p.lower() for p in folders]


# -- where to write a setting ------------------------------------------------------------

@dataclass
class ConfigSpot:
    """A statement of the app's configuration after which a new setting can be written."""

    file: FileFacts
    statement: Span  # the assignment after which the new line goes
    style: str  # "attr" (``app.conf.key = v``), "module" (``PREFIX_KEY = v``) or "call" (``conf.update(key=v)``)
    receiver: str = ""  # "app.conf" for "attr"
    prefix: str = ""  # "CELERY_" for Django settings read with a namespace; "" for lowercase keys
    call: CallFact | None = None  # for "call"

    def line(self, key: str, value: str) -> str:
        """The statement that writes ``key`` here (not used for "call")."""
        if self.style == "attr":
            return f"{self.receiver}.{key} = {value}"
        name = f"{self.prefix}{key.upper()}" if self.prefix else key
        return f"{name} = {value}"

    def insertion(self, data: bytes, newline: str, key: str, value: str) -> tuple[int, str] | None:
        """Where and what to insert to write ``key = value`` on a line of its own after the
        statement; None unless the statement starts a line at the top level of its module
        (inside an ``if`` or a function the new setting would be conditional)."""
        if self.style == "call":
            return None
        start = self.statement.start
        if start > 0 and data[start - 1:start] != b"\n":
            return None
        end = data.find(b"\n", self.statement.end)
        if end < 0:
            end = len(data)
        elif end > 0 and data[end - 1:end] == b"\r":
            end -= 1
        line = data[self.statement.end:end]
        if line.strip() and not line.strip().startswith(b"#"):
            return None  # ``x = 1; y = 2`` or a continuation qlint does not follow
        return end, newline + self.line(key, value)


def _prefix(name: str, key: str) -> str | None:
    """``CELERY_`` from ``CELERY_TASK_TIME_LIMIT`` read as ``task_time_limit``; None for an old name."""
    if name == key:
        return ""
    if name.isupper() and name.lower().endswith(key) and name not in OLD_TO_NEW:
        return name[:len(name) - len(key)]
    return None  # an old name (CELERYD_..., or CELERY_TASK_SERIALIZER read without a namespace)


def config_spots(project: Project, app: App) -> list[ConfigSpot]:
    """Places the app's configuration is written, best first: a Django settings or config
    module holding most of the app's settings, then ``app.conf.key = ...`` assignments, then
    ``conf.update(key=...)``/``Celery(key=...)`` calls. The caller checks that the statement
    is at the top level of its module before writing after it."""
    by_file: dict[str, list[ConfigSpot]] = {}
    attr: list[ConfigSpot] = []
    calls: list[ConfigSpot] = []
    for key, resolved in app.setting_sites:
        kw, facts = resolved.keyword, resolved.file
        if kw is None or facts is None:
            continue
        source = resolved.source
        if source.startswith(("Django settings", "config module")):
            prefix = _prefix(kw.name, key)
            if prefix is not None and facts.assigns.get(kw.name) is kw:
                by_file.setdefault(facts.path, []).append(ConfigSpot(facts, kw.span, "module", prefix=prefix))
        elif source == "app.conf":
            for aa in facts.attr_assigns:
                if aa.keyword is kw:
                    attr.append(ConfigSpot(facts, kw.span, "attr", receiver=aa.target))
        elif source in ("conf.update", "Celery(...)"):
            call = _call_with_keyword(project, app, facts, kw)
            if call is not None:
                calls.append(ConfigSpot(facts, call.span, "call", call=call))
    modules: list[ConfigSpot] = []
    for spots in sorted(by_file.values(), key=lambda s: -len(s)):
        prefixes = {s.prefix for s in spots}
        if len(prefixes) == 1:  # after the last setting first (one under an ``if`` is passed over)
            modules.extend(sorted(spots, key=lambda s: -s.statement.start))
    return modules + attr[::-1] + calls


def _app_statement(app: App) -> Span | None:
    """The ``app = Celery(...)`` statement, when it is one."""
    name = app.qualified.rpartition(".")[2]
    kw = app.file.assigns.get(name)
    if kw is None or kw.value.kind != "call" or kw.value.call is not app.call:
        return None
    return kw.span


def setting_edits(project: Project, app: App, items: list[tuple[str, str]],
                  source_of: Callable[[FileFacts], object | None],
                  line_length: int | None = None) -> tuple[list, str, list[str]] | None:
    """Edits that write ``items`` (setting key, value text) where the app's configuration lives,
    the file they change and the statements as written there (``CELERY_TASK_TIME_LIMIT = 300``):
    beside the settings it already has (a Django or
    config module with their prefix, ``app.conf.x = ...``, ``conf.update(...)``), else at the end
    of the module ``config_from_object`` reads (with its namespace), else after the app's own
    ``app = Celery(...)`` as ``app.conf.x = ...``. Edits carry the file they change (``path``).
    None when no place is a top-level statement qlint can write after."""
    from qlint.fixers.calls import add_keywords
    from qlint.lint.diagnostics import Edit

    if not app.config_complete or app.from_factory:
        return None
    spots = config_spots(project, app)
    for facts, prefix in reversed(app.config_modules):  # the module read last wins: write there
        spots.append(ConfigSpot(facts, Span(-1, -1), "module", prefix=prefix))
    statement = _app_statement(app)
    if statement is not None:
        spots.append(ConfigSpot(app.file, statement, "attr", receiver=f"{app.qualified.rpartition('.')[2]}.conf"))
    for spot in spots:
        src = source_of(spot.file)
        if src is None:
            continue
        if spot.style == "call":
            if spot.call is None or spot.call.has_star:
                continue
            edits = add_keywords(src, spot.call, items, line_length)
        elif spot.statement.start < 0:  # the end of a module that holds none of the app's settings yet
            data = src.utf8
            lines = "".join(spot.line(k, v) + src.newline for k, v in items)
            ending = "" if not data or data.endswith(b"\n") else src.newline
            edits = [Edit(len(data), len(data), ending + lines)]
        else:
            placed = spot.insertion(src.utf8, src.newline, items[0][0], items[0][1])
            if placed is None:
                continue
            text = placed[1] + "".join(src.newline + spot.line(k, v) for k, v in items[1:])
            edits = [Edit(placed[0], placed[0], text)]
        written = [f"{k}={v}" if spot.style == "call" else spot.line(k, v) for k, v in items]
        return [Edit(e.start, e.end, e.content, path=spot.file.path) for e in edits], spot.file.path, written
    return None


def _call_with_keyword(project: Project, app: App, facts: FileFacts, kw: Keyword) -> CallFact | None:
    if app.call.kwargs.get(kw.name) is kw and not app.from_factory:
        return app.call
    for call in facts.calls:
        if call.method == "update" and call.kwargs.get(kw.name) is kw:
            return call
    return None


# -- messages held unacknowledged ---------------------------------------------------------

DELAY_METHODS = frozenset({"apply_async", "apply_async_on_commit", "signature", "send_task"})
DELAY_OPTIONS = ("countdown", "eta")
_NOW = frozenset({"now", "utcnow"})


@dataclass
class Hold:
    """A message a broker sees unacknowledged for ``seconds``: a delayed message waiting in
    the worker until its ETA (``kind == "delay"``), or a late-acknowledged task while it
    runs (``kind == "running"``)."""

    kind: str
    seconds: float
    what: str  # a clause for messages: "`countdown` delays the task 7200 s", "may run for 7200 s (...)"
    file: FileFacts
    span: Span
    apps: list[App]
    statement: Span | None = None
    task: Task | None = None


def _now_call(value: Value) -> bool:
    if value.kind != "call" or value.call is None:
        return False
    call = value.call
    name = call.method or call.dotted.rpartition(".")[2]
    return name in _NOW and len(call.args) <= 1  # ``datetime.now(timezone.utc)``


def eta_seconds(project: Project, value: Value) -> float | None:
    """``now() + timedelta(hours=2)`` (either order) as seconds from now; None otherwise."""
    if value.kind != "binop" or value.op != "+" or value.left is None or value.right is None:
        return None
    for now, delta in ((value.left, value.right), (value.right, value.left)):
        if _now_call(now):
            folded = project.fold(delta)
            if folded.known and not isinstance(folded.value, (int, float)):
                return seconds(folded.value)
    return None


def _delay(project: Project, name: str, kw: Keyword) -> float | None:
    if name == "countdown":
        folded = project.fold(kw.value)
        return seconds(folded.value) if folded.known else None
    return eta_seconds(project, kw.value)


def _text(kw: Keyword, number: float) -> str:
    if kw.name == "eta":
        return f"`eta` schedules the task {_shown(number)} s ahead"
    return f"`{kw.name}` delays the task {_shown(number)} s"


def _site_apps(project: Project, site) -> list[App]:
    if site.task is not None:
        return list(site.task.apps)
    call = site.call
    if call is not None and call.method == "send_task":
        with project.parsed_only():
            receiver = project.canonical(call.qualified.rpartition(".")[0])
        return [a for a in project.apps if a.qualified == receiver]
    return []


def enqueue_holds(project: Project) -> Iterator[Hold]:
    """``apply_async(countdown=...)``/``eta=now() + timedelta(...)``, ``send_task``, ``signature``."""
    for site in project.sites:
        call = site.call
        if site.framework != "celery" or site.kind != "enqueue" or call is None or call.method not in DELAY_METHODS:
            continue
        apps = _site_apps(project, site)
        for name in DELAY_OPTIONS:
            kw = call.kwargs.get(name)
            number = _delay(project, name, kw) if kw is not None else None
            if number is not None:
                yield Hold("delay", number, _text(kw, number), site.file, kw.span, apps, call.statement, site.task)


def _task_functions(task: Task) -> list[FunctionFact]:
    if task.function is not None:
        return [task.function]
    if task.cls is not None:
        prefix = f"{task.cls.qualname}."
        return [fn for fn in task.file.functions if fn.class_name == task.cls.name and fn.qualname == prefix + fn.name]
    return []


def retry_calls(task: Task) -> Iterator[CallFact]:
    """``self.retry(...)`` on a bound task and ``<task>.retry(...)`` in its own body."""
    for fn in _task_functions(task):
        receivers = set()
        if task.bound:
            receivers.add("self")
            if task.function is not None and fn.params and fn.params[0].kind == "positional":
                receivers.add(fn.params[0].name)
        if task.function is not None:
            receivers.add(task.function.name)
        for call in fn.calls:
            if call.method == "retry" and call.is_call and call.receiver in receivers:
                yield call


def _number(resolved: Resolved | None) -> float | None:
    if resolved is None or not resolved.known:
        return None
    return seconds(resolved.value)


def _max_retries(task: Task, retry_kwargs: dict) -> float | None:
    if "max_retries" in retry_kwargs:
        value = retry_kwargs["max_retries"]
        return math.inf if value is None else (value if isinstance(value, int) and not isinstance(value, bool)
                                               else None)
    norm = task.norm.get("max_retries")
    if norm is None or not norm.known or isinstance(norm.value, bool):
        return None
    return norm.value if isinstance(norm.value, (int, float)) else None


def _backoff_factor(value) -> int | None:
    if value is True:
        return 1
    if value is False or value is None or value is UNKNOWN:
        return None
    if isinstance(value, (int, float)):
        return int(max(1.0, value)) if value else None
    return None


def task_holds(project: Project, task: Task) -> Iterator[Hold]:
    """Retry delays (``self.retry(countdown=...)``, ``default_retry_delay``, ``retry_kwargs``,
    a reachable ``retry_backoff_max``) and, for a late-acknowledged task, its time limit."""
    options = task.options
    apps = list(task.apps)
    stated: list[CallFact] = []
    for call in retry_calls(task):
        stated.append(call)
        for name in DELAY_OPTIONS:
            kw = call.kwargs.get(name)
            number = _delay(project, name, kw) if kw is not None else None
            if number is not None:
                yield Hold("delay", number, _text(kw, number), task.file, kw.span, apps, call.statement, task)
    autoretry = options.get("autoretry_for")
    retries_automatically = autoretry is not None and autoretry.value not in ((), [], None)
    kwargs_opt = options.get("retry_kwargs")
    retry_kwargs = kwargs_opt.value if kwargs_opt is not None and isinstance(kwargs_opt.value, dict) else {}
    backoff = options.get("retry_backoff")
    factor = _backoff_factor(backoff.value) if backoff is not None else None
    backoff_unknown = backoff is not None and backoff.value is UNKNOWN
    if retries_automatically and factor:
        cap = options.get("retry_backoff_max")
        cap_seconds = _number(cap) if cap is not None else 600.0
        most = _max_retries(task, retry_kwargs)
        if cap is not None and cap.keyword is not None and cap.file is not None and cap_seconds is not None \
                and most is not None and most >= 1:
            reachable = cap_seconds if math.isinf(most) else min(cap_seconds, factor * 2 ** (most - 1))
            yield Hold("delay", reachable, f"`retry_backoff_max` lets retry delays reach {_shown(reachable)} s",
                       cap.file, cap.keyword.span, apps, task=task)
    countdown_kw = retry_kwargs.get("countdown")
    if retries_automatically and not factor and not backoff_unknown and kwargs_opt is not None and \
            kwargs_opt.keyword is not None and kwargs_opt.file is not None and countdown_kw is not None:
        number = seconds(countdown_kw)
        if number is not None:
            yield Hold("delay", number, f"the `countdown` in `retry_kwargs` delays each retry {_shown(number)} s",
                       kwargs_opt.file,
                       kwargs_opt.keyword.span, apps, task=task)
    # ``default_retry_delay`` waits where a retry names no delay of its own.
    uses_default = any(not any(n in c.kwargs for n in DELAY_OPTIONS) and not c.has_star for c in stated) or (
        retries_automatically and not factor and not backoff_unknown and countdown_kw is None)
    delay = options.get("default_retry_delay")
    if uses_default and delay is not None and delay.keyword is not None and delay.file is not None:
        number = _number(delay)
        if number is not None:
            yield Hold("delay", number, f"`default_retry_delay` delays each retry {_shown(number)} s", delay.file,
                       delay.keyword.span, apps, task=task)
    acks = options.get("acks_late")
    if acks is not None and acks.value is True:
        for name in TIME_LIMIT_OPTIONS:
            limit = task.norm.get(name)
            if limit is None or limit.keyword is None or limit.file is None or not isinstance(
                    limit.value, (int, float)) or math.isinf(limit.value):
                continue
            yield Hold("running", limit.value, f"may run for {_shown(limit.value)} s (`{limit.keyword.name}`, "
                       f"{limit.source})",
                       limit.file, limit.keyword.span, apps, task=task)
            break  # the hard limit bounds the run; the soft one only where no hard limit is set


def _shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def holds(project: Project) -> list[Hold]:
    out = list(enqueue_holds(project))
    for task in project.tasks:
        if task.framework == "celery":
            out.extend(task_holds(project, task))
    return out


@dataclass
class Judged:
    """A hold against the window of every app it may run on."""

    hold: Hold
    window: Window
    broker: Broker
    apps: list[App] = field(default_factory=list)


def exceeding(project: Project, window_of: Callable[[App, Broker], Window | None],
              text: TextOf | None = None) -> Iterator[Judged]:
    """Holds at or above the window of every app they may run on (an app whose broker or
    window is unknown, or a hold with no app, is not judged)."""
    brokers = {id(a): broker(a, text) for a in project.apps}
    for hold in holds(project):
        if not hold.apps:
            continue
        windows = []
        for app in hold.apps:
            brk = brokers[id(app)]
            window = window_of(app, brk)
            if window is None or hold.kind == "delay" and not delays_held_unacked(app, brk):
                windows = []
                break
            windows.append((window, brk))
        if not windows:
            continue
        if all(hold.seconds >= w.seconds for w, _ in windows):
            window, brk = min(windows, key=lambda wb: wb[0].seconds)
            yield Judged(hold, window, brk, hold.apps)
