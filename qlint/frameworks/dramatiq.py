"""Everything qlint knows about Dramatiq: actors, brokers and their middleware, units.

Dramatiq writes every duration in milliseconds; the normalised answers (``Task.norm``) are
in seconds. Defaults from dramatiq 1.17/2.0: ``TimeLimit(time_limit=600000)``
(middleware/time_limit.py), ``Retries(max_retries=20, min_backoff=15000, max_backoff=7 days)``
(middleware/retries.py), and the default middleware list (middleware/__init__.py).
"""

from __future__ import annotations

import math

from qlint.frameworks._shapes import (
    all_calls, chain_of, class_methods, decorated_task, function_for, imports_package, inner_class, invalid_duration,
    is_or_subclass, match_decorator, resolved, wrapper_names,
    scaled,
)
from qlint.lint.facts import CallFact, ClassFact, FileFacts, Keyword, Span, Value
from qlint.lint.model import UNKNOWN, Profile, Project, Resolved, Site, Task, Unit
from qlint.manifests.commands import WorkerCli

FRAMEWORK = "dramatiq"
# Top-level packages whose import means the project uses dramatiq (``engine._used``).
PACKAGE_HINTS = ("dramatiq", "periodiq")
ACTOR = frozenset({"dramatiq.actor", "dramatiq.actor.actor"})
GENERIC_ACTOR = frozenset({"dramatiq.GenericActor", "dramatiq.generic.GenericActor"})
ENCODERS = {"PickleEncoder": "pickle", "JSONEncoder": "json"}
DEFAULT_TIME_LIMIT_MS = 600_000
DEFAULT_MAX_RETRIES = 20
DEFAULT_MIN_BACKOFF_MS = 15_000
DEFAULT_MIDDLEWARE = ("AgeLimit", "TimeLimit", "ShutdownNotifications", "Callbacks", "Pipelines", "Retries")

# ``dramatiq module`` (dramatiq/cli.py), django-dramatiq's ``rundramatiq``.
CLI = WorkerCli(
    programs=("dramatiq",), roles={"": "worker"}, django_commands={"rundramatiq": "worker"},
    value_flags={"-p": "processes", "--processes": "processes", "-t": "threads", "--threads": "threads",
                 "-Q": "queues", "--queues": "queues", "--path": "path", "-P": "path", "--pid-file": "pid_file",
                 "--log-file": "log_file", "--worker-shutdown-timeout": "worker_shutdown_timeout",
                 "--worker-fork-timeout": "worker_fork_timeout", "-f": "fork_function",
                 "--fork-function": "fork_function", "--watch": "watch", "-i": "watch_include",
                 "--watch-include": "watch_include", "-x": "watch_exclude", "--watch-exclude": "watch_exclude"},
    bool_flags={"-v": "verbose", "--verbose": "verbose", "--skip-logging": "skip_logging",
                "--use-spawn": "use_spawn", "--watch-use-polling": "watch_use_polling"},
    pool_flags=("processes",), pool_fix="--processes",
    process_flags=("processes",),  # ``-t/--threads`` are threads inside each process
    shutdown_flag="worker_shutdown_timeout", shutdown_default=600.0, shutdown_scale=1000.0,
    # cli.py: ``--processes`` defaults to ``multiprocessing.cpu_count()``; each process runs
    # ``--threads`` threads (8 unless ``-t`` says otherwise: not part of the fragment).
    pool_defaults=(("", "dramatiq starts one worker process per CPU the container sees (`os.cpu_count()`: every "
                        "core of the node, whatever the container's share), each with its own copy of the app"),),
    # cli.py: ``--watch DIR`` reloads the workers when a file under DIR changes (a development aid).
    dev_flags=("watch",),
)

PROFILE = Profile(
    FRAMEWORK, "Dramatiq", time_limit=Unit("time_limit", 1000), max_retries="max_retries",
    retry_delay=Unit("min_backoff", 1000), async_tasks="middleware",
    async_loop="every async actor of the worker process (they share the AsyncIO middleware's event loop thread)",
    millisecond_options=("time_limit", "min_backoff", "max_backoff", "max_age", "delay"),
    implicit_retries="retries every exception up to 20 times, backing off from 15 s to 7 days",
    handler_options=("on_retry_exhausted", "on_failure"),
    handler_objects_on_enqueue=("on_failure",),
)
INVENTORY = {
    "queue": {"option": "queue_name", "default": "default"},
    "time_limit": {"norm": "time_limit"},
    "max_retries": {"norm": "max_retries"},
    "serializer": {"norm": "serializer"},
}


def _is_broker(name: str) -> bool:
    return name.startswith("dramatiq.") and name.endswith("Broker")


def _broker_class(project: Project, call: CallFact) -> bool:
    """``RedisBroker(...)``, or a project subclass of a Dramatiq broker."""
    return is_or_subclass(project, project.canonical(call.qualified), _is_broker)


def _middleware_name(project: Project, value: Value) -> str | None:
    if value.kind == "call" and value.call is not None:
        return project.canonical(value.call.qualified).rpartition(".")[2] or None
    if value.kind == "name":
        return project.canonical(value.qualified).rpartition(".")[2] or None
    return None


class _Brokers:
    """What the project's brokers install: middleware names and their constructor options."""

    def __init__(self, project: Project) -> None:
        self.explicit: list[tuple[set[str], FileFacts, Keyword]] = []  # per broker with a middleware list
        self.implicit = 0  # brokers keeping the default list
        self.unknown = False  # a middleware list qlint cannot read
        self.added: set[str] = set()
        # ``dramatiq.set_broker(x)`` with ``x`` built where qlint does not look (a function's result):
        # the project has a broker whose middleware qlint has not seen.
        self.elsewhere = False
        self.middleware: dict[str, list[tuple[FileFacts, CallFact]]] = {}
        self.sites: list[Site] = []
        for facts in project.parsed_files():
            values = [kw.value for kw in facts.assigns.values()]
            values += [v for fn in facts.functions for v in fn.local_calls.values()]
            for value in values:
                if value.kind == "call" and value.call is not None:
                    base = chain_of(value.call)[0]
                    # A broker class is spelled ``...Broker``; resolving every call would parse the project.
                    if base.dotted.endswith("Broker") and _broker_class(project, base):
                        self._broker(project, facts, base)
            for call in all_calls(facts):
                if call.method == "set_broker" and call.args and call.args[0].call is None:
                    self.elsewhere = True
                if call.method == "set_broker" and call.args and call.args[0].call is not None:
                    base = chain_of(call.args[0].call)[0]  # ``dramatiq.set_broker(RedisBroker(...))``
                    if base.dotted.endswith("Broker") and _broker_class(project, base):
                        self._broker(project, facts, base)
                if call.method == "add_middleware" and call.args and imports_package(facts, ("dramatiq",)):
                    name = _middleware_name(project, call.args[0])
                    if name:
                        self.added.add(name)
                        if call.args[0].call is not None:
                            self._constructed(facts, call.args[0].call, name)

    def _broker(self, project: Project, facts: FileFacts, call: CallFact) -> None:
        kw = call.kwargs.get("middleware")
        if kw is None:
            self.implicit += 1
            return
        if kw.value.kind != "seq":
            self.unknown = True
            return
        names = set()
        for element in kw.value.elements:
            name = _middleware_name(project, element)
            if name is None:
                self.unknown = True
                continue
            names.add(name)
            if element.call is not None:
                self._constructed(facts, element.call, name)
        self.explicit.append((names, facts, kw))

    def _constructed(self, facts: FileFacts, call: CallFact, name: str) -> None:
        self.middleware.setdefault(name, []).append((facts, call))

    def installed(self, name: str) -> bool | None:
        """Whether some broker runs middleware ``name``: True, False, or None when unknown."""
        if name in self.added:
            return True
        if self.unknown:
            return None
        if not self.explicit and not self.implicit and self.elsewhere:
            return None  # the project builds its broker where qlint does not read it
        if any(name in names for names, _, _ in self.explicit):
            return True
        if self.implicit or not self.explicit:
            return name in DEFAULT_MIDDLEWARE
        return False

    def option(self, project: Project, middleware: str, option: str) -> Resolved | None:
        """The option a middleware is constructed with; UNKNOWN when a middleware list qlint
        cannot read may construct it; None when no broker sets it (the middleware's default)."""
        for facts, call in self.middleware.get(middleware, ()):
            kw = call.kwargs.get(option)
            if kw is not None:
                return resolved(project, kw, facts, f"{middleware}(...) middleware")
        if self.installed(middleware) is None:
            return Resolved(UNKNOWN, "a broker middleware list qlint cannot read")
        return None


def collect(project: Project) -> None:
    brokers = _Brokers(project)
    async_ready = brokers.installed("AsyncIO") is not False
    tasks: list[Task] = []
    for facts in project.parsed_files():
        for fn in facts.functions:
            if not fn.decorators or fn.class_name is not None or fn.outer:  # fn.outer: a factory's template
                continue
            for dec in fn.decorators:
                with project.parsed_only("actor" not in dec.dotted.lower()):
                    match = match_decorator(project, dec, ACTOR.__contains__, facts)
                if match is None:
                    continue
                task = decorated_task(project, PROFILE, facts, fn, dec, match)
                name = task.options.get("actor_name")
                task.name = name.value if name is not None and isinstance(name.value, str) else fn.name
                tasks.append(task)
                break
        for cls in facts.classes:
            task = _generic_actor(project, facts, cls)
            if task is not None:
                tasks.append(task)
    for task in tasks:
        task.async_ready = async_ready
        _normalise(project, task, brokers)
    project.tasks.extend(tasks)
    sites = _sites(project, brokers, tasks)
    project.sites.extend(sites)
    encoders = [s.norm["serializer"] for s in sites if "serializer" in s.norm]
    for task in tasks:  # ``set_encoder`` is global: the last one the project runs wins (qlint takes the last read)
        task.norm["serializer"] = encoders[-1] if encoders else Resolved("json", "default")


def _generic_actor(project: Project, facts: FileFacts, cls: ClassFact) -> Task | None:
    chain = _generic_chain(project, facts, cls)
    if chain is None:
        return None
    meta = None
    for where, klass in chain:
        meta = inner_class(where, klass, "Meta")
        if meta is not None:
            meta_file = where
            break
    if meta is not None:
        abstract = meta.attrs.get("abstract")
        if abstract is not None and project.fold(abstract.value).value is True:
            return None
    perform = next((fn for fn in class_methods(facts, cls) if fn.name == "perform"), None)
    task = Task(FRAMEWORK, cls.name, facts, anchor=Span(cls.header.start, cls.header.start), header=cls.span,
                cls=cls, function=perform, is_async=bool(perform and perform.is_async), profile=PROFILE,
                accepts_options=False)
    level = {}
    if meta is not None:
        level = {name: resolved(project, kw, meta_file, f"class {cls.name}.Meta") for name, kw in meta.attrs.items()
                 if name != "abstract"}
    task.levels["decorator"] = level
    task.options = dict(level)
    name = task.options.get("actor_name")
    task.name = name.value if name is not None and isinstance(name.value, str) else cls.name
    return task


def _generic_chain(project: Project, facts: FileFacts, cls: ClassFact, depth: int = 0):
    if depth > 6:
        return None
    for base in cls.bases:
        if base.kind != "name":
            continue
        with project.parsed_only("actor" not in base.dotted.lower()):
            target = project.canonical(base.qualified)
            if target in GENERIC_ACTOR:
                return [(facts, cls)]
            found = project.class_named(target)
        if found and found[1] is not cls:
            rest = _generic_chain(project, found[0], found[1], depth + 1)
            if rest is not None:
                return [(facts, cls), *rest]
    return None


def _unbounded(value) -> bool:
    return isinstance(value, float) and math.isinf(value)


# What the TimeLimit middleware does with a bad limit (middleware/time_limit.py).
INVALID_ON_ACTOR = {
    "negative": "the deadline is already past when the actor starts: it is interrupted at once",
    "zero": "the deadline is the start itself: the actor is interrupted at once",
    "string": "the TimeLimit middleware fails with `TypeError`, the broker logs it and runs the actor with no "
              "limit",
}
# On a message, 0 falls back to the actor's limit (``message.options.get("time_limit") or ...``).
INVALID_ON_MESSAGE = {k: v.replace("actor starts", "message runs") for k, v in INVALID_ON_ACTOR.items()
                      if k != "zero"}


def _normalise(project: Project, task: Task, brokers: _Brokers) -> None:
    options = task.options
    limit = options.get("time_limit")
    if limit is not None:
        reason = invalid_duration(limit, INVALID_ON_ACTOR)
        if reason is not None:
            task.invalid_values.append((limit.keyword, reason))
    if limit is not None:
        task.norm["time_limit"] = scaled(limit, 1000, _unbounded)
    elif brokers.installed("TimeLimit") is False:
        names, facts, kw = brokers.explicit[0]
        task.norm["time_limit"] = Resolved(math.inf, "a broker middleware list without TimeLimit", kw, facts)
        task.limit_fixable = False  # the actor option is rejected without the middleware
    else:
        configured = brokers.option(project, "TimeLimit", "time_limit")
        task.norm["time_limit"] = scaled(configured, 1000, _unbounded) if configured is not None else Resolved(
            DEFAULT_TIME_LIMIT_MS / 1000, "default")
    retries = options.get("max_retries")
    retry_when = options.get("retry_when")
    throws = options.get("throws")
    if retries is not None:
        value = math.inf if retries.value is None else retries.value
        task.norm["max_retries"] = Resolved(value, retries.source, retries.keyword, retries.file, retries.env)
    elif retry_when is not None:
        task.norm["max_retries"] = Resolved(UNKNOWN, f"{retry_when.source} (retry_when)", retry_when.keyword,
                                            retry_when.file)
    elif brokers.installed("Retries") is False:
        task.norm["max_retries"] = Resolved(0, "a broker middleware list without Retries")
    else:
        configured = brokers.option(project, "Retries", "max_retries")
        broker_when = brokers.option(project, "Retries", "retry_when")
        if configured is None and broker_when is not None:  # ``Retries(retry_when=...)`` decides for every actor
            task.norm["max_retries"] = Resolved(UNKNOWN, broker_when.source, broker_when.keyword, broker_when.file)
        elif configured is not None:
            value = math.inf if configured.value is None else configured.value
            task.norm["max_retries"] = Resolved(value, configured.source, configured.keyword, configured.file)
        elif throws is not None:  # the listed exceptions fail at once; others take the default
            task.norm["max_retries"] = Resolved(DEFAULT_MAX_RETRIES, f"{throws.source} (throws)", throws.keyword,
                                                throws.file)
        else:
            task.norm["max_retries"] = Resolved(DEFAULT_MAX_RETRIES, "default")
    backoff = options.get("min_backoff") or brokers.option(project, "Retries", "min_backoff")
    task.norm["retry_delay"] = scaled(backoff, 1000) if backoff is not None else Resolved(
        DEFAULT_MIN_BACKOFF_MS / 1000, "default")


def _sites(project: Project, brokers: _Brokers, tasks: list[Task]) -> list[Site]:
    sites: list[Site] = []
    actor_names = {f"{t.file.module}.{t.function.name}" for t in tasks if t.function is not None and t.cls is None}
    for name, constructed in brokers.middleware.items():
        for facts, call in constructed:
            site = Site(FRAMEWORK, "middleware", facts, call, PROFILE, anchor=call.span)
            site.options = {k: resolved(project, kw, facts, f"{name}(...)") for k, kw in call.kwargs.items()}
            if name == "TimeLimit" and "time_limit" in site.options:
                site.norm["time_limit"] = scaled(site.options["time_limit"], 1000, _unbounded)
            if name == "Retries" and "max_retries" in site.options:
                r = site.options["max_retries"]
                site.norm["max_retries"] = Resolved(math.inf if r.value is None else r.value, r.source, r.keyword,
                                                    r.file)
            sites.append(site)
    for facts in project.parsed_files():
        # A module that imports an actor from the project and sends it never names Dramatiq.
        framework = imports_package(facts, ("dramatiq",))
        for call in all_calls(facts):
            if call.method not in ("send", "send_with_options") and not framework:
                continue
            on_actor = project.canonical(call.qualified).rpartition(".")[0] in actor_names
            if call.method == "send_with_options" and (on_actor or call.receiver and framework):
                site = Site(FRAMEWORK, "enqueue", facts, call, PROFILE, anchor=call.span)
                site.options = {k: resolved(project, kw, facts, "send_with_options") for k, kw in call.kwargs.items()}
                if "time_limit" in site.options:
                    site.norm["time_limit"] = scaled(site.options["time_limit"], 1000, _unbounded)
                    reason = invalid_duration(site.options["time_limit"], INVALID_ON_MESSAGE)
                    if reason is not None:
                        site.invalid_values.append((site.options["time_limit"].keyword, reason))
                found = function_for(project, Value("name", call.span, dotted=call.receiver,
                                                    qualified=call.qualified.rpartition(".")[0]))
                site.task = next((t for t in tasks if found and t.function is found[1]), None)
                sites.append(site)
            elif call.method == "send" and on_actor:
                # ``actor.send(...)``: an enqueue with the actor's own options (``send`` alone is too
                # common a name to take on any receiver).
                site = Site(FRAMEWORK, "enqueue", facts, call, PROFILE, anchor=call.span)
                found = function_for(project, Value("name", call.span, dotted=call.receiver,
                                                    qualified=call.qualified.rpartition(".")[0]))
                site.task = next((t for t in tasks if found and t.function is found[1]), None)
                sites.append(site)
            elif call.method == "set_encoder" and call.args:
                encoder = call.args[0]
                name = _middleware_name(project, encoder)
                if name in ENCODERS:
                    site = Site(FRAMEWORK, "serializer", facts, call, PROFILE, anchor=encoder.span)
                    keyword = Keyword("encoder", encoder, encoder.span)
                    site.norm["serializer"] = Resolved(ENCODERS[name], "dramatiq.set_encoder", keyword, facts)
                    sites.append(site)
    return sites


def exported_names(project: Project) -> set[str]:
    """Wrappers and factories of ``dramatiq.actor`` and project GenericActor bases a task
    module must spell."""
    names = wrapper_names(project, ACTOR.__contains__)
    for facts in project.parsed_files():
        for cls in facts.classes:
            if cls.qualname == cls.name and _generic_chain(project, facts, cls) is not None:
                names.add(cls.name)
    return names
