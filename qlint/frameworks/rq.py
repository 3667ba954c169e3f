"""Everything qlint knows about RQ: ``@job`` functions, enqueued functions, queues, ``Retry``.

Defaults from rq 2.x: ``Queue.DEFAULT_TIMEOUT = 180`` (queue.py), ``-1`` is no limit and ``0``
is rejected at enqueue (``ValueError('0 timeout is not allowed...')``), durations may be
strings such as ``"10m"`` (utils.py ``parse_timeout``), ``Retry(max, interval=0)`` (job.py),
and the default serializer is pickle (serializers.py).

A job without a timeout of its own gets its queue's default timeout: ``Queue(default_timeout=...)``
(or a subclass's ``DEFAULT_TIMEOUT``), and for django-rq's ``get_queue(name)``, ``@job(name)`` and
``enqueue(f)`` the ``DEFAULT_TIMEOUT`` of that queue in the ``RQ_QUEUES`` setting (django_rq
queues.py passes it as ``default_timeout``). An ``enqueue`` counts only when its receiver is
such a queue: a project's own ``enqueue`` method is not RQ's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qlint.frameworks._shapes import (
    all_calls, decorated_task, duration_string, find_instances, function_for, invalid_duration,
    is_or_subclass, match_decorator, resolved, scaled, undecorated_task, wrapper_names,
)
from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Keyword, Span, Value
from qlint.lint.model import UNKNOWN, Profile, Project, Resolved, Site, Task, Unit
from qlint.manifests.commands import WorkerCli

FRAMEWORK = "rq"
# Top-level packages whose import means the project uses rq (``engine._used``).
PACKAGE_HINTS = ("rq",)
DJANGO_JOB = frozenset({"django_rq.job", "django_rq.decorators.job"})
JOB = frozenset({"rq.decorators.job", "rq.job"}) | DJANGO_JOB
QUEUE = frozenset({"rq.Queue", "rq.queue.Queue", "django_rq.queues.DjangoRQ"})
# django-rq (queues.py): ``get_queue(name)`` builds the queue ``RQ_QUEUES[name]`` describes;
# ``enqueue(f, ...)`` is ``get_queue().enqueue(f, ...)``.
GET_QUEUE = frozenset({"django_rq.get_queue", "django_rq.queues.get_queue"})
GET_QUEUE_BY_INDEX = frozenset({"django_rq.queues.get_queue_by_index"})
DJANGO_ENQUEUE = frozenset({"django_rq.enqueue", "django_rq.queues.enqueue"})
DJANGO_SETTING = "RQ_QUEUES"
# rq/worker/worker_classes.py, exported by rq/worker/__init__.py (and the first three by rq).
WORKER = frozenset({f"{module}.{name}" for module in ("rq", "rq.worker", "rq.worker.worker_classes")
                    for name in ("Worker", "SimpleWorker", "SpawnWorker", "HerokuWorker", "RoundRobinWorker",
                                 "RandomWorker")})
RETRY = frozenset({"rq.Retry", "rq.job.Retry"})
DEFAULT_TIMEOUT = 180
PARTIAL = frozenset({"functools.partial"})
# Enqueue methods: where the function is among the positional arguments, and the timeout's name.
ENQUEUE = {"enqueue": (0, "job_timeout"), "enqueue_call": (0, "timeout"), "enqueue_in": (1, "job_timeout"),
           "enqueue_at": (1, "job_timeout")}

# ``rq worker`` / ``rq worker-pool`` (rq/cli/cli.py, workers.py), django-rq's ``rqworker``.
CLI = WorkerCli(
    programs=("rq", "rqworker"), roles={"worker": "worker", "worker-pool": "worker"},
    django_commands={"rqworker": "worker", "rqworker-pool": "worker"},
    value_flags={"-u": "url", "--url": "url", "-c": "config", "--config": "config", "-S": "serializer",
                 "--serializer": "serializer", "-n": "num_workers", "--num-workers": "num_workers",
                 "-w": "worker_class", "--worker-class": "worker_class", "--max-jobs": "max_jobs",
                 "--logging_level": "logging_level", "-l": "logging_level", "--logging-level": "logging_level",
                 "-P": "path", "--path": "path", "-j": "job_class", "--job-class": "job_class",
                 "--queue-class": "queue_class", "--connection-class": "connection_class", "--name": "name",
                 "--results-ttl": "results_ttl", "--worker-ttl": "worker_ttl", "--maintenance-interval":
                 "maintenance_interval", "--job-monitoring-interval": "job_monitoring_interval",
                 "--exception-handler": "exception_handler", "--pid": "pid", "--max-idle-time": "max_idle_time",
                 "--log-format": "log_format", "--date-format": "date_format", "-ds": "dequeue_strategy",
                 "--dequeue-strategy": "dequeue_strategy", "--sentry-dsn": "sentry_dsn"},
    bool_flags={"-s": "with_scheduler", "--with-scheduler": "with_scheduler", "-b": "burst", "--burst": "burst",
                "-v": "verbose", "--verbose": "verbose", "-q": "quiet", "--quiet": "quiet",
                "--disable-job-desc-logging": "disable_job_desc_logging",
                "--disable-default-exception-handler": "disable_default_exception_handler"},
    # cli/workers.py: only ``worker-pool`` starts processes (``-n/--num-workers``); ``rq worker -n`` is a name.
    process_flags=("num_workers",), process_commands=("worker-pool", "rqworker-pool"),
    burst_flag="burst",
    # cli/helpers.py: ``--serializer`` defaults to ``rq.serializers.DefaultSerializer`` (pickle; no
    # environment variable, no config-file key), for ``worker`` and ``worker-pool`` alike, and so does
    # django-rq's ``rqworker``/``rqworker-pool`` whatever ``RQ_QUEUES`` says (management/commands).
    # ``json`` is an alias from RQ 2.9; the dotted path works in every release with the flag.
    serializer_flag="serializer", serializer_default="pickle",
    serializer_fix="--serializer rq.serializers.JSONSerializer", class_flags=("worker_class",),
)

PROFILE = Profile(
    FRAMEWORK, "RQ", time_limit=Unit("timeout"), timeout_exceptions=("rq.timeouts.JobTimeoutException",),
)
INVENTORY = {
    "queue": {"option": "queue", "default": "default"},
    "time_limit": {"norm": "time_limit"},
    "max_retries": {"norm": "max_retries"},
}


def _unbounded(value) -> bool:
    return value == -1 or isinstance(value, float) and math.isinf(value)


def _seconds(r: Resolved) -> Resolved:
    if isinstance(r.value, str):
        parsed = duration_string(r.value)
        r = Resolved(UNKNOWN if parsed is None else parsed, r.source, r.keyword, r.file, r.env)
    return scaled(r, 1, _unbounded)


# What RQ does with a bad timeout (queue.py, utils.py ``parse_timeout``, timeouts.py).
INVALID = {
    "zero": "RQ raises `ValueError('0 timeout is not allowed. Use -1 for infinite timeout')` at enqueue",
    "string": "RQ raises `TimeoutFormatError` at enqueue (durations are digits and one of s, m, h, d)",
    "negative": "RQ sets no alarm, so the job never gets `JobTimeoutException`; the worker kills the work "
                "horse later without one (-1 is the way to say \"no limit\")",
}


def _limit(r: Resolved, owner) -> Resolved:
    reason = invalid_duration(r, INVALID, strings=True, minus_one=True)
    if reason is not None:
        owner.invalid_values.append((r.keyword, reason))
    return _seconds(r)


def collect(project: Project) -> None:
    tasks: list[Task] = []
    by_function: dict[int, Task] = {}
    decorator_queues: dict[int, QueueRef] = {}  # id(task) -> the queue its ``.delay()`` sends to
    for facts in project.parsed_files():
        for fn in facts.functions:
            if not fn.decorators or fn.class_name is not None or fn.outer:  # fn.outer: a factory's template
                continue
            for dec in fn.decorators:
                with project.parsed_only("job" not in dec.dotted.lower()):
                    match = match_decorator(project, dec, JOB.__contains__, facts)
                if match is None:
                    continue
                task = decorated_task(project, PROFILE, facts, fn, dec, match)
                if dec.args:
                    task.options.setdefault("queue", resolved_value(project, dec, facts))
                task.name = f"{facts.module}.{fn.name}"
                decorator_queues[id(task)] = _decorator_queue(project, facts, dec, match)
                tasks.append(task)
                by_function[id(fn)] = task
                break
    sites = _queue_sites(project)
    enqueues: dict[int, QueueRef] = {}  # id(site) -> the queue it enqueues on
    for facts, fn, call, queue, position, timeout_name in _enqueue_calls(project):
        site = _enqueue_site(project, facts, fn, call, queue, timeout_name)
        enqueues[id(site)] = queue
        target = call.kwargs["f"].value if "f" in call.kwargs else call.kwargs["func"].value if (
            "func" in call.kwargs) else (call.args[position] if len(call.args) > position else None)
        found = function_for(project, target) if target is not None else None
        if found is not None:
            where, target_fn = found
            task = by_function.get(id(target_fn))
            if task is None:
                task = undecorated_task(PROFILE, where, target_fn)
                task.name = f"{where.module}.{target_fn.name}"
                tasks.append(task)
                by_function[id(target_fn)] = task
            site.task = task
        sites.append(site)
    sites.extend(_delay_sites(project, tasks, decorator_queues))
    for task in tasks:
        mine = [s for s in sites if s.task is task and id(s) in enqueues]
        _normalise(task, decorator_queues.get(id(task)), [(s, enqueues[id(s)]) for s in mine])
    project.tasks.extend(tasks)
    project.sites.extend(sites)
    project.sites.extend(_retry_sites(project))


def resolved_value(project: Project, dec: CallFact, facts: FileFacts) -> Resolved:
    folded = project.fold(dec.args[0])
    return Resolved(folded.value, "decorator", None, facts, folded.env)


# -- which queue a job goes to --------------------------------------------------------------------

@dataclass
class QueueRef:
    """The RQ queue a job is put on, as far as qlint can tell: its default job timeout (seconds,
    ``math.inf`` for -1, UNKNOWN) and its serializer ("pickle", "json", None for another, UNKNOWN)."""

    timeout: Resolved
    serializer: Resolved
    name: object = UNKNOWN  # the queue's name, when qlint knows it


def _unknown_queue(why: str) -> QueueRef:
    return QueueRef(Resolved(UNKNOWN, why), Resolved(UNKNOWN, why))


def _enqueue_calls(project: Project):
    """RQ enqueue calls: ``enqueue*`` methods whose receiver is an RQ queue (an ``rq.Queue`` or a
    subclass, django-rq's ``get_queue(...)``, a name bound to one, a project function returning
    one), and django-rq's ``enqueue(f, ...)``. A project's own ``enqueue`` (a model's classmethod
    that creates a job row and enqueues it itself) is not RQ's and is not one."""
    for facts in project.parsed_files():
        placed = [(fn, call) for fn in facts.functions for call in fn.calls]
        inside = {id(call) for _, call in placed}
        placed += [(None, call) for call in facts.calls if id(call) not in inside]
        for fn, call in placed:
            name = call.method or call.dotted
            if name == "enqueue" and call.qualified:
                with project.parsed_only():
                    module_function = project.canonical(call.qualified) in DJANGO_ENQUEUE
                if module_function:  # ``django_rq.enqueue(f, ...)``: the "default" queue
                    yield facts, fn, call, _django_queue(project, "default", {}, False), 0, "job_timeout"
                    continue
            if call.method not in ENQUEUE:
                continue
            queue = _receiver_queue(project, facts, fn, call)
            if queue is not None:
                position, timeout_name = ENQUEUE[call.method]
                yield facts, fn, call, queue, position, timeout_name


def _receiver_queue(project: Project, facts: FileFacts, fn: FunctionFact | None, call: CallFact) -> QueueRef | None:
    """The queue ``call``'s receiver is, or None when it is not one qlint can see to be an RQ queue."""
    if call.inner is not None:  # ``Queue("low", connection=r).enqueue(f)``, ``get_queue("low").enqueue(f)``
        return _queue_from_call(project, facts, call.inner)
    receiver = call.receiver
    if not receiver:
        return None
    if fn is not None and "." not in receiver:
        bound = fn.local_calls.get(receiver)
        if bound is not None:
            return _queue_from_value(project, facts, bound)
        param = next((p for p in fn.params if p.name == receiver), None)
        if param is not None:  # ``def notify(queue: Queue)``: a queue, with options qlint cannot see
            return _unknown_queue("a queue passed as a parameter") if _annotated_queue(
                project, facts, param.annotation) else None
    if fn is not None and fn.class_name is not None and receiver.count(".") == 1 and \
            receiver.partition(".")[0] in ("self", "cls"):
        owner = fn.qualname.rpartition(".")[0]
        cls = next((c for c in facts.classes if c.qualname == owner), None)
        kw = cls.attrs.get(receiver.partition(".")[2]) if cls is not None else None
        return _queue_from_value(project, facts, kw.value) if kw is not None else None
    with project.parsed_only():
        found = project.assignment(project.canonical(call.qualified.rpartition(".")[0]))
    return _queue_from_value(project, found[0], found[1].value) if found is not None else None


def _annotated_queue(project: Project, facts: FileFacts, annotation: str) -> bool:
    text = annotation.strip().strip("'\"")
    if not text or not all(part.isidentifier() for part in text.split(".")):
        return False
    with project.parsed_only():
        return is_or_subclass(project, project.canonical(facts.qualify(text)), QUEUE.__contains__)


def _queue_from_value(project: Project, facts: FileFacts, value: Value, depth: int = 0) -> QueueRef | None:
    if depth > 6:
        return None
    if value.kind == "call" and value.call is not None:
        return _queue_from_call(project, facts, value.call, depth + 1)
    if value.kind == "name":  # ``queue = high``: an alias of a module-level queue
        with project.parsed_only():
            found = project.assignment(project.canonical(value.qualified))
        if found is not None:
            return _queue_from_value(project, found[0], found[1].value, depth + 1)
    return None


def _queue_from_call(project: Project, facts: FileFacts, call: CallFact, depth: int = 0) -> QueueRef | None:
    """The queue a call returns: a construction of ``rq.Queue`` (or a subclass), django-rq's
    ``get_queue``/``get_queue_by_index``, or a project function returning one of those."""
    if depth > 6 or not call.qualified:
        return None
    with project.parsed_only():
        target = project.canonical(call.qualified)
        if is_or_subclass(project, target, QUEUE.__contains__):
            return _constructed(project, facts, call, target)
    if target in GET_QUEUE:
        name = call.kwargs["name"].value if "name" in call.kwargs else call.args[0] if call.args else None
        folded = project.fold(name).value if name is not None else "default"
        explicit = {}
        for option, position in (("default_timeout", 1), ("serializer", 8)):
            if option in call.kwargs:
                explicit[option] = resolved(project, call.kwargs[option], facts, "`get_queue(...)`")
            elif len(call.args) > position:
                folded_arg = project.fold(call.args[position])
                explicit[option] = Resolved(folded_arg.value, "`get_queue(...)`", None, facts, folded_arg.env)
        return _django_queue(project, folded if isinstance(folded, str) else None, explicit, call.has_star)
    if target in GET_QUEUE_BY_INDEX:  # queues.py: the configured class, given no default_timeout
        serializer = _django_setting(project, None, "SERIALIZER")
        return QueueRef(Resolved(DEFAULT_TIMEOUT, "default"),
                        _serializer_of_setting(project, serializer))
    with project.parsed_only():
        factory = project.function_named(target)
    if factory is None:
        return None
    where, fn = factory
    found = []
    for ret in fn.returns:
        if ret.kind == "name" and "." not in ret.dotted and ret.dotted in fn.local_calls:
            ret = fn.local_calls[ret.dotted]
        queue = _queue_from_value(project, where, ret, depth + 1)
        if queue is None:
            return None  # one of its returns is something else: not a queue factory qlint can read
        found.append(queue)
    return _merge(found) if found else None


def _merge(queues: list[QueueRef]) -> QueueRef:
    """One answer for several queues: a value they all share, else UNKNOWN."""
    def same(values: list[Resolved]) -> Resolved:
        first = values[0]
        if all(v.value == first.value and v.value is not UNKNOWN for v in values):
            return first
        return Resolved(UNKNOWN, "one of several queues")
    names = {q.name for q in queues}
    return QueueRef(same([q.timeout for q in queues]), same([q.serializer for q in queues]),
                    names.pop() if len(names) == 1 else UNKNOWN)


def _constructed(project: Project, facts: FileFacts, call: CallFact, target: str) -> QueueRef:
    """``Queue(name, connection, default_timeout, is_async, job_class, serializer, ...)`` (queue.py):
    ``parse_timeout(default_timeout) or self.DEFAULT_TIMEOUT``, so 0 and None fall back to the class's."""
    # The same call as the queue's site (``all_calls``), so that a value written there is one
    # keyword: an unbounded queue is reported once, where it is written, not again on its jobs.
    call = next((c for c in all_calls(facts) if c.span.start == call.span.start and c.span.end == call.span.end),
                call)
    written = _written(project, facts, call, "default_timeout", 2)
    if written is None:
        timeout = Resolved(UNKNOWN, f"`**` in `{call.dotted}(...)`") if call.has_star else \
            _class_timeout(project, target)
    else:
        timeout = _seconds(written)
        if timeout.value == 0 or written.value is None:
            timeout = _class_timeout(project, target)
    chosen = _queue_serializer(project, facts, call)
    name = call.kwargs["name"].value if "name" in call.kwargs else call.args[0] if call.args else None
    folded = project.fold(name).value if name is not None else "default"
    return QueueRef(timeout, chosen, folded if isinstance(folded, str) else UNKNOWN)


def _queue_serializer(project: Project, facts: FileFacts, call: CallFact) -> Resolved:
    """The serializer of ``Queue(name, connection, default_timeout, is_async, job_class,
    serializer, ...)``: pickle unless one is written; none for a synchronous queue."""
    synchronous = _written(project, facts, call, "is_async", 3)
    if synchronous is not None and synchronous.value is False:
        # ``run_sync``: the job runs in the calling process on the arguments it was given; no
        # worker ever reads it back from the broker.
        return Resolved(None, "`is_async=False`: jobs run in the calling process")
    serializer = _written(project, facts, call, "serializer", 5)
    if serializer is None:
        return Resolved(UNKNOWN, f"`**` in `{call.dotted}(...)`") if call.has_star else Resolved("pickle", "default")
    return Resolved(_serializer_name(project, serializer), serializer.source, serializer.keyword, facts)


def _written(project: Project, facts: FileFacts, call: CallFact, option: str, position: int) -> Resolved | None:
    source = f"`{option}` of `{call.dotted or call.method}(...)`"
    if option in call.kwargs:
        return resolved(project, call.kwargs[option], facts, source)
    if len(call.args) > position:
        folded = project.fold(call.args[position])
        return Resolved(folded.value, source, None, facts, folded.env)
    return None


def _class_timeout(project: Project, target: str, depth: int = 0) -> Resolved:
    """``DEFAULT_TIMEOUT`` of a queue class: RQ's 180 s unless a project subclass sets its own."""
    found = project.class_named(target) if depth < 8 and target not in QUEUE else None
    if found is None:
        return Resolved(DEFAULT_TIMEOUT, "default")
    where, cls = found
    kw = cls.attrs.get("DEFAULT_TIMEOUT")
    if kw is not None:
        return _seconds(resolved(project, kw, where, f"`{cls.name}.DEFAULT_TIMEOUT`"))
    for base in cls.bases:
        if base.kind == "name":
            base_target = project.canonical(base.qualified)
            if is_or_subclass(project, base_target, QUEUE.__contains__):
                return _class_timeout(project, base_target, depth + 1)
    return Resolved(DEFAULT_TIMEOUT, "default")


def _decorator_queue(project: Project, facts: FileFacts, dec: CallFact, match) -> QueueRef:
    """The queue ``@job(queue, ...)`` sends to. rq's ``job`` makes ``queue_class(name=..., connection=...)``
    of a queue name (decorators.py), so RQ's defaults; django-rq's looks the name up in ``RQ_QUEUES``
    (``get_queue``), and a bare ``@job`` uses "default" (django_rq/decorators.py)."""
    django = match.target in DJANGO_JOB
    queue = dec.args[0] if dec.args else dec.kwargs["queue"].value if "queue" in dec.kwargs else None
    where = facts
    if queue is None and match.wrapper:  # ``background = partial(job, "default", connection=redis)``
        assigned = project.assignment(match.wrapper)
        call = assigned[1].value.call if assigned is not None else None
        if call is not None and len(call.args) > 1 and project.canonical(call.qualified) in PARTIAL:
            queue, where = call.args[1], assigned[0]
    if queue is None:
        if django and not dec.has_star:
            return _django_queue(project, "default", {}, False)
        return _unknown_queue("a queue the decorator's wrapper chooses")
    folded = project.fold(queue)
    if isinstance(folded.value, str):
        if django:
            return _django_queue(project, folded.value, {}, False)
        queue_class = dec.kwargs.get("queue_class")
        target = project.canonical(queue_class.value.qualified) if queue_class is not None and \
            queue_class.value.kind == "name" else _decorator_queue_class(project, match.target)
        return QueueRef(_class_timeout(project, target) if target else Resolved(DEFAULT_TIMEOUT, "default"),
                        Resolved("pickle", "default"), folded.value)
    found = _queue_from_value(project, where, queue)
    return found if found is not None else _unknown_queue("a queue qlint cannot follow")


def _decorator_queue_class(project: Project, target: str) -> str:
    """``queue_class`` of a project subclass of rq's ``job`` (a class attribute), else ""."""
    found = project.class_named(target)
    if found is None:
        return ""
    kw = found[1].attrs.get("queue_class")
    return project.canonical(kw.value.qualified) if kw is not None and kw.value.kind == "name" else ""


# -- django-rq: RQ_QUEUES in the Django settings ----------------------------------------------------

Item = tuple  # (key: str | None, keyword: Keyword | None, file): a None key is what qlint cannot read


@dataclass
class _Setting:
    """``RQ_QUEUES`` as written: each queue's name and its items, in the order they take effect."""

    module: FileFacts
    queues: list[tuple[str | None, list[Item]]]


def _django_queues(project: Project) -> _Setting | str:
    """``RQ_QUEUES`` from the project's Django settings, or why it cannot be read."""
    kept = project.__dict__.get("_rq_queues")
    if kept is not None:
        return kept
    from qlint.frameworks.celery import DYNAMIC_SETTINGS, _django_settings_modules

    answer: _Setting | str = "`RQ_QUEUES` is not in the project's Django settings"
    modules = _django_settings_modules(project)
    setting = [m for m in modules if DJANGO_SETTING in m.assigns]
    # The module that star-imports every other one setting it (``prod.py`` over ``base.py``) wins.
    winner = next((m for m in setting if all(o is m or o.module in _star_closure(project, m) for o in setting)),
                  None)
    dynamic = sorted({v.split(".")[0] for m in modules for v in m.imports.values()} & DYNAMIC_SETTINGS)
    if dynamic:
        answer = f"the Django settings are assembled at run time by {dynamic[0]}"
    elif setting and winner is None:
        names = ", ".join(f"`{m.module}`" for m in sorted(setting, key=lambda m: m.module))
        answer = f"`RQ_QUEUES` is set in several settings modules ({names}): which one runs is chosen at deploy"
    elif winner is not None:
        module = winner
        items = _dict_items(project, module, DJANGO_SETTING, module.assigns[DJANGO_SETTING])
        answer = _Setting(module, [(key, _dict_items(project, where, "", entry) if entry is not None else [])
                                   for key, entry, where in items])
    project.__dict__["_rq_queues"] = answer
    return answer


def _star_closure(project: Project, facts: FileFacts) -> set[str]:
    """The modules ``facts`` star-imports, directly or through others (``from .base import *``)."""
    seen: set[str] = set()
    stack = list(facts.star_imports)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        found = project.module(name)
        if found is not None:
            stack.extend(found.star_imports)
    return seen


def _dict_items(project: Project, facts: FileFacts, name: str, kw: Keyword, depth: int = 0) -> list[Item]:
    """A settings dict's items in the order they take effect: a literal (``{...}``, ``dict(...)``)
    or a name bound to one, then the module-level ``NAME.update(...)`` calls after the assignment."""
    value = kw.value
    if depth > 6:
        return [(None, None, facts)]
    if value.kind == "name":
        found = project.assignment(project.canonical(value.qualified))
        if found is None:
            return [(None, None, facts)]
        where, bound = found
        return _dict_items(project, where, value.qualified.rpartition(".")[2], bound, depth + 1)
    items = _literal_items(project, facts, value)
    if name:
        for call in facts.calls:
            if call.method != "update" or call.receiver != name or call.span.start < kw.span.end:
                continue
            arg = call.args[0] if len(call.args) == 1 else None
            if arg is not None and arg.kind == "name":
                items.extend(_dict_items(project, facts, "", Keyword("", arg, arg.span), depth + 1))
            elif arg is not None:
                items.extend(_literal_items(project, facts, arg))
            elif call.args or call.has_star:
                items.append((None, None, facts))
            items.extend((k, kw2, facts) for k, kw2 in call.kwargs.items())
    return items


def _literal_items(project: Project, facts: FileFacts, value: Value) -> list[Item]:
    if value.kind == "dict":
        out: list[Item] = []
        for k, v in value.items:
            key = project.fold(k).value
            out.append((key, Keyword(key, v, Span(k.span.start, v.span.end)), facts) if isinstance(key, str)
                       else (None, None, facts))
        return out
    if value.kind == "call" and value.call is not None and project.canonical(value.call.qualified) == "builtins.dict":
        call = value.call
        out = [(None, None, facts)] if call.args or call.has_star else []
        return out + [(k, kw, facts) for k, kw in call.kwargs.items()]
    return [(None, None, facts)]


def _lookup(items: list[Item], key: str) -> tuple[Keyword, FileFacts] | str | None:
    """The item that sets ``key`` (the last one), "unknown" when something qlint cannot read may
    set it, or None when nothing does."""
    for k, kw, where in reversed(items):
        if k is None:
            return "unknown"
        if k == key:
            return kw, where
    return None


def _django_setting(project: Project, queue: str | None, key: str) -> Resolved | None:
    """``RQ_QUEUES[queue][key]`` (every queue's, when ``queue`` is not known): its value, an
    UNKNOWN one when qlint cannot tell, None when the setting leaves it out."""
    setting = _django_queues(project)
    if isinstance(setting, str):
        return Resolved(UNKNOWN, setting)
    where_text = f"in `{setting.module.module}`"
    unreadable = Resolved(UNKNOWN, f"`RQ_QUEUES` {where_text} is written in a way qlint cannot read")
    entries = [(name, items) for name, items in setting.queues if queue is None or name == queue or name is None]
    named = [i for i, (name, _) in enumerate(entries) if name == queue]
    if queue is not None and named:  # the last entry of that name, unless an unreadable one follows it
        if any(name is None for name, _ in entries[named[-1]:]):
            return unreadable
        entries = [entries[named[-1]]]
    elif any(name is None for name, _ in entries):
        return unreadable
    elif queue is not None:
        return Resolved(UNKNOWN, f"queue {queue!r} is not in `RQ_QUEUES` {where_text}")
    found = [_lookup(items, key) for _, items in entries]
    if not found or any(f == "unknown" for f in found):
        return unreadable
    label = f"`RQ_QUEUES[{queue!r}][{key!r}]`" if queue is not None else f"`{key!r}` of every queue in `RQ_QUEUES`"
    values = []
    for f in found:
        if f is None:
            values.append(None)
        else:
            kw, where = f
            values.append(resolved(project, kw, where, f"{label} {where_text}"))
    if all(v is None for v in values):
        return None
    if any(v is None for v in values) or len({repr(v.value) for v in values}) > 1 or values[0].value is UNKNOWN:
        return Resolved(UNKNOWN, f"{label} {where_text}")
    return values[0]


def _django_queue(project: Project, name: str | None, explicit: dict[str, Resolved], star: bool) -> QueueRef:
    """django-rq's ``get_queue(name)`` (queues.py): ``default_timeout`` and ``serializer`` when
    given, else the queue's ``DEFAULT_TIMEOUT`` and ``SERIALIZER`` in ``RQ_QUEUES``, else RQ's."""
    timeout = explicit.get("default_timeout")
    if timeout is None or timeout.value is None:
        timeout = Resolved(UNKNOWN, "`**` in `get_queue(...)`") if star else _django_setting(project, name,
                                                                                               "DEFAULT_TIMEOUT")
    if timeout is None:
        timeout = Resolved(DEFAULT_TIMEOUT, "default")
    else:
        timeout = _seconds(timeout)
        if timeout.value == 0 or timeout.value is None:  # ``parse_timeout(0) or DEFAULT_TIMEOUT``
            timeout = Resolved(DEFAULT_TIMEOUT, "default")
    serializer = explicit.get("serializer")
    if serializer is None or serializer.value is None:
        serializer = Resolved(UNKNOWN, "`**` in `get_queue(...)`") if star else _django_setting(project, name,
                                                                                                  "SERIALIZER")
    return QueueRef(timeout, _serializer_of_setting(project, serializer), name if name is not None else UNKNOWN)


def _serializer_of_setting(project: Project, r: Resolved | None) -> Resolved:
    if r is None or r.value is None:
        return Resolved("pickle", "default")
    if r.value is UNKNOWN and r.keyword is None:
        return r
    return Resolved(_serializer_name(project, r), r.source, None, r.file)


def _enqueue_site(project: Project, facts: FileFacts, fn: FunctionFact | None, call: CallFact, queue: QueueRef,
                  timeout_name: str) -> Site:
    site = Site(FRAMEWORK, "enqueue", facts, call, PROFILE, anchor=call.span, function=fn)
    site.options = {k: resolved(project, kw, facts, f"{call.method or call.dotted}(...)")
                    for k, kw in call.kwargs.items()}
    for name in {timeout_name, "job_timeout"}:
        if name in site.options:
            site.norm["time_limit"] = _limit(site.options[name], site)
    # The queue's serializer, for rules about the arguments (no keyword: nothing here chose it).
    site.norm["serializer"] = Resolved(queue.serializer.value, f"the queue ({queue.serializer.source})")
    return site


def _delay_sites(project: Project, tasks: list[Task], queues: dict[int, QueueRef]) -> list[Site]:
    """``export.delay(...)`` on an ``@job`` function (rq/decorators.py: it enqueues on the
    decorator's queue, with the decorator's timeout; its keywords are the function's own)."""
    by_name = {f"{t.file.module}.{t.function.name}": t for t in tasks
               if t.function is not None and id(t) in queues}
    if not by_name:
        return []
    sites = []
    for facts in project.parsed_files():
        placed = [(fn, call) for fn in facts.functions for call in fn.calls]
        inside = {id(call) for _, call in placed}
        placed += [(None, call) for call in facts.calls if id(call) not in inside]
        for fn, call in placed:
            if call.method != "delay" or not call.receiver:
                continue
            with project.parsed_only():
                task = by_name.get(project.canonical(call.qualified.rpartition(".")[0]))
            if task is None:
                continue
            site = _enqueue_site(project, facts, fn, call, queues[id(task)], "")
            site.options = {}  # the keywords are the job's arguments, not RQ's options
            site.task = task
            sites.append(site)
    return sites


def _queue_sites(project: Project) -> list[Site]:
    """``Queue(...)`` and ``Worker(...)`` constructions: default timeouts and serializers."""
    sites = []
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if not call.qualified.endswith(("Queue", "Worker", "DjangoRQ")):
                continue
            target = project.canonical(call.qualified)
            kind = "queue" if is_or_subclass(project, target, QUEUE.__contains__) else "worker" if \
                is_or_subclass(project, target, WORKER.__contains__) else None
            if kind is None:
                continue
            site = Site(FRAMEWORK, kind, facts, call, PROFILE, anchor=call.span)
            site.options = {k: resolved(project, kw, facts, f"{call.dotted}(...)") for k, kw in call.kwargs.items()}
            timeout = site.options.get("default_timeout")
            if timeout is not None and kind == "queue":
                site.norm["time_limit"] = _seconds(timeout)  # 0 falls back to 180 s: not rejected
            # Worker(queues, name, default_result_ttl, connection, ..., serializer) is keyword-only in practice.
            if kind == "queue":
                site.norm["serializer"] = _queue_serializer(project, facts, call)
                sites.append(site)
                continue
            serializer = site.options.get("serializer")
            if serializer is None:
                site.norm["serializer"] = Resolved("pickle" if not call.has_star else UNKNOWN, "default")
            else:
                site.norm["serializer"] = Resolved(_serializer_name(project, serializer), serializer.source,
                                                   serializer.keyword, facts)
            sites.append(site)
    return sites


def _serializer_name(project: Project, r: Resolved):
    value = r.keyword.value if r.keyword is not None else None
    if isinstance(r.value, str):
        return "json" if "json" in r.value.lower() else "pickle" if "pickle" in r.value.lower() or \
            r.value.endswith("DefaultSerializer") else UNKNOWN
    if value is not None and value.kind == "name":
        name = project.canonical(value.qualified).rpartition(".")[2]
        return "pickle" if name in ("DefaultSerializer", "pickle") else "json" if "JSON" in name or name == "json" \
            else UNKNOWN
    return UNKNOWN


def _retry_sites(project: Project) -> list[Site]:
    sites = []
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if (call.method or call.dotted) != "Retry":
                continue
            if project.canonical(call.qualified) not in RETRY:
                continue
            site = Site(FRAMEWORK, "retry", facts, call, PROFILE, anchor=call.span)
            site.options = {k: resolved(project, kw, facts, "Retry(...)") for k, kw in call.kwargs.items()}
            if call.args:
                folded = project.fold(call.args[0])
                site.options.setdefault("max", Resolved(folded.value, "Retry(...)", None, facts, folded.env))
            if len(call.args) > 1:
                folded = project.fold(call.args[1])
                site.options.setdefault("interval", Resolved(folded.value, "Retry(...)", None, facts, folded.env))
            if "max" in site.options:
                site.norm["max_retries"] = site.options["max"]
            interval = site.options.get("interval")
            if interval is None:
                site.norm["retry_delay"] = Resolved(0, "default")
            elif isinstance(interval.value, (list, tuple)):
                known = [v for v in interval.value if isinstance(v, (int, float))]
                site.norm["retry_delay"] = Resolved(min(known) if known else UNKNOWN, interval.source,
                                                    interval.keyword, facts)
            else:
                site.norm["retry_delay"] = scaled(interval)
            sites.append(site)
    return sites


def _normalise(task: Task, decorator_queue: QueueRef | None, enqueues: list[tuple[Site, QueueRef]]) -> None:
    """A job's limit: ``@job(timeout=...)``; else the longest of the ways it is enqueued, each the
    ``job_timeout`` written on the call or the queue's default timeout (``Queue.enqueue_call``:
    ``timeout = parse_timeout(timeout) or self._default_timeout``)."""
    task.norm["max_retries"] = Resolved(0, "default")  # RQ retries only with ``retry=Retry(...)`` (a site)
    timeout = task.options.get("timeout")
    if timeout is not None:
        task.norm["time_limit"] = _limit(timeout, task)
    else:
        ways = [decorator_queue.timeout] if decorator_queue is not None else []
        for site, queue in enqueues:
            written = site.norm.get("time_limit")
            if written is not None:
                rejected = (written.value == 0 or written.value is UNKNOWN) and any(
                    kw is written.keyword for kw, _ in site.invalid_values)
                if not rejected:  # 0 and "10x" raise at enqueue (QLT107): that job never runs
                    ways.append(written)
            elif site.call is not None and site.call.has_star:
                ways.append(Resolved(UNKNOWN, f"`**` in `{site.call.method or site.call.dotted}(...)`"))
            else:
                ways.append(queue.timeout)
        task.norm["time_limit"] = _longest(ways)
    if task.decorator is None and enqueues:  # which queue an enqueued function goes to (``qlint tasks``)
        names = {q.name for _, q in enqueues}
        name = names.pop() if len(names) == 1 else UNKNOWN
        task.options.setdefault("queue", Resolved(name, "the queue it is enqueued on" if name is not UNKNOWN else
                                                  "enqueued on queues qlint cannot name"))
    serializers = [q.serializer for q in ([decorator_queue] if decorator_queue is not None else [])
                   + [q for _, q in enqueues]]
    if serializers:
        first = serializers[0]
        same = all(r.value == first.value and r.value is not UNKNOWN for r in serializers)
        task.norm["serializer"] = Resolved(first.value, first.source) if same else \
            Resolved(UNKNOWN, "queues with different serializers")


def _longest(ways: list[Resolved]) -> Resolved:
    if not ways:
        return Resolved(DEFAULT_TIMEOUT, "default")
    unbounded = next((r for r in ways if r.value == math.inf), None)
    if unbounded is not None:
        return unbounded
    unknown = next((r for r in ways if not isinstance(r.value, (int, float)) or isinstance(r.value, bool)), None)
    if unknown is not None:
        return unknown if unknown.value is UNKNOWN else Resolved(UNKNOWN, unknown.source, unknown.keyword,
                                                                  unknown.file, unknown.env)
    return max(ways, key=lambda r: r.value)


def apply_workers(project: Project) -> None:
    """``Retry(interval=...)`` parks each retry in the ScheduledJobRegistry: only a worker started
    with ``--with-scheduler`` (or a worker pool) moves it back to the queue (rq/job.py, rq/cli)."""
    workers = [w for w in project.workers if w.framework == FRAMEWORK and "worker" in w.command.roles]
    if not workers or any("with_scheduler" in w.command.flags or w.command.tokens[1:2] and
                          w.command.tokens[1].text == "worker-pool" for w in workers):
        return  # no worker seen (it may be started elsewhere), or one runs the scheduler
    names = ", ".join(sorted({f"{w.workload.kind} `{w.workload.name}`" for w in workers}))
    for site in project.sites:
        if site.framework != FRAMEWORK or site.kind != "retry":
            continue
        delay = site.norm.get("retry_delay")
        if delay is not None and isinstance(delay.value, (int, float)) and delay.value > 0:
            site.retry_blocker = (f"no RQ worker runs `--with-scheduler` ({names}), so the retries wait in the "
                                  "ScheduledJobRegistry forever")


def exported_names(project: Project) -> set[str]:
    """Project wrappers of ``rq.decorators.job`` and the project's queues."""
    names = wrapper_names(project, JOB.__contains__)
    names.update(q.rpartition(".")[2] for q in find_instances(project, lambda t: t in QUEUE or t in GET_QUEUE))
    return names
