"""Everything qlint knows about Celery: names, option shapes, settings and defaults.

Turns the project's facts into ``App`` (with settings gathered from every place in the
domain catalog's section 1.2) and ``Task`` objects (decorated functions, wrappers,
class-based tasks) with effective options and their sources.
"""

from __future__ import annotations


from qlint.frameworks._shapes import invalid_duration, match_decorator, option_level, wrapper_names
from qlint.manifests.commands import Probe, WorkerCli
from qlint.frameworks.celery_settings import OLD_TO_NEW, SETTINGS
from qlint.lint.facts import CallFact, ClassFact, FileFacts, FunctionFact, Keyword, Span, Value
import math

from qlint.lint.model import UNKNOWN, App, Profile, Project, Resolved, Site, Task, Unit, seconds

FRAMEWORK = "celery"
CELERY_CLASSES = frozenset({"celery.Celery", "celery.app.Celery", "celery.app.base.Celery"})
SHARED_TASK = frozenset({"celery.shared_task", "celery.app.shared_task", "celery.app.base.shared_task"})
CURRENT_APP = frozenset({"celery.current_app", "celery.app.current_app"})
TASK_BASES = frozenset({
    "celery.Task", "celery.app.Task", "celery.app.task.Task", "celery.task.Task", "celery.task.base.Task",
    "celery.contrib.django.task.DjangoTask", "celery.contrib.abortable.AbortableTask",
})
# Packages that fill a Django settings module at run time (names qlint cannot see).
DYNAMIC_SETTINGS = frozenset({"split_settings", "configurations", "dynaconf"})

# Task options that a global setting provides when neither the task nor its base sets them.
OPTION_SETTINGS = {
    "time_limit": "task_time_limit",
    "soft_time_limit": "task_soft_time_limit",
    "acks_late": "task_acks_late",
    "serializer": "task_serializer",
    "ignore_result": "task_ignore_result",
    "rate_limit": "task_default_rate_limit",
    "reject_on_worker_lost": "task_reject_on_worker_lost",
    "track_started": "task_track_started",
}
# Task class defaults (celery/app/task.py, celery/app/autoretry.py, 5.7.0).
TASK_DEFAULTS = {
    "max_retries": 3,
    "default_retry_delay": 180,
    "time_limit": None,
    "soft_time_limit": None,
    "acks_late": False,
    "autoretry_for": (),
    "dont_autoretry_for": (),
    "retry_backoff": False,
    "retry_kwargs": {},
    "serializer": "json",
    "bind": False,
}
# -- `qlint tasks` inventory (read by qlint/commands/tasks.py, which knows no framework) --
# Column -> where its value comes from. ``option``: the task attribute (decorator, base class,
# task_annotations); ``routes``: a setting mapping task names (exact, or globs with ``*``)
# to options, a string entry naming the option's value; ``setting``: the app setting used
# when neither sets it; ``default``: the framework's value when nothing does; ``labels``:
# how values are shown. ``retry`` names the options a retry summary reads and ``method``
# the task method a body calls to retry by hand, with the keywords that set its delay.
INVENTORY = {
    "queue": {"option": "queue", "routes": "task_routes", "setting": "task_default_queue", "default": "celery"},
    "time_limit": {"option": "time_limit", "setting": "task_time_limit", "default": TASK_DEFAULTS["time_limit"],
                   "worker_norm": "time_limit"},
    "soft_time_limit": {"option": "soft_time_limit", "setting": "task_soft_time_limit",
                        "default": TASK_DEFAULTS["soft_time_limit"]},
    "max_retries": {"option": "max_retries", "default": TASK_DEFAULTS["max_retries"]},
    "retry": {"auto": "autoretry_for", "backoff": "retry_backoff", "backoff_max": "retry_backoff_max",
              "kwargs": "retry_kwargs", "delay": "default_retry_delay", "method": "retry",
              "delay_keywords": ("countdown", "eta"),
              "defaults": {"retry_backoff_max": 600, "default_retry_delay": TASK_DEFAULTS["default_retry_delay"]}},
    "acks": {"option": "acks_late", "setting": "task_acks_late", "default": TASK_DEFAULTS["acks_late"],
             "labels": {True: "late", False: "early"}},
    "serializer": {"option": "serializer", "setting": "task_serializer", "default": TASK_DEFAULTS["serializer"]},
}
PROFILE = Profile(
    "celery", "Celery", time_limit=Unit("time_limit"), soft_time_limit=Unit("soft_time_limit"),
    max_retries="max_retries", retry_delay=Unit("default_retry_delay"),
    timeout_exceptions=("celery.exceptions.SoftTimeLimitExceeded",), async_tasks="unsupported", needs_app=True,
    limit_setting="`task_time_limit` in the app's configuration", retry_method="retry", bind_option="bind",
)
# Pools that do not enforce time limits (celery/concurrency/*: only prefork and gevent implement
# ``on_hard_timeout``; gevent has no soft limit).
UNLIMITED_POOLS = frozenset({"threads", "solo", "eventlet"})
# Result methods that block until the task finishes, and the calls whose results they wait on.
WAIT_METHODS = frozenset({"get", "wait", "join", "join_native", "collect"})
RESULT_SOURCES = frozenset({"delay", "apply_async", "AsyncResult", "send_task", "GroupResult"})
SERIALIZER_SETTINGS = ("task_serializer", "result_serializer", "event_serializer", "accept_content",
                       "result_accept_content")
PICKLE_NAMES = ("pickle", "application/x-python-serialize")


# ``celery worker`` / ``celery beat`` (celery/bin/worker.py, beat.py, base.py, celery.py, 5.7).
_NODE = "per CPU the container sees (`os.cpu_count()`: every core of the node, whatever the container's share)"
CLI = WorkerCli(
    programs=("celery",), roles={"worker": "worker", "beat": "scheduler"},
    django_commands={"celery": "worker"},
    value_flags={"-A": "app", "--app": "app", "-c": "concurrency", "--concurrency": "concurrency",
                 "--autoscale": "autoscale", "-P": "pool", "--pool": "pool",
                 "--max-tasks-per-child": "max_tasks_per_child", "--max-memory-per-child": "max_memory_per_child",
                 "--time-limit": "time_limit", "--soft-time-limit": "soft_time_limit", "-Q": "queues",
                 "--queues": "queues", "-l": "loglevel", "--loglevel": "loglevel", "-n": "hostname",
                 "--hostname": "hostname", "--prefetch-multiplier": "prefetch_multiplier", "-s": "schedule",
                 "--schedule": "schedule", "--schedule-filename": "schedule", "-S": "scheduler",
                 "--scheduler": "scheduler", "--statedb": "statedb", "-b": "broker", "--broker": "broker",
                 "--workdir": "workdir", "-O": "optimization", "--optimization": "optimization",
                 "-X": "exclude_queues", "--exclude-queues": "exclude_queues", "-I": "include",
                 "--include": "include", "--heartbeat-interval": "heartbeat_interval",
                 "--max-interval": "max_interval", "--result-backend": "result_backend", "--loader": "loader",
                 "--config": "config", "-f": "logfile", "--logfile": "logfile", "--pidfile": "pidfile",
                 "--uid": "uid", "--gid": "gid", "--umask": "umask", "--executable": "executable"},
    bool_flags={"-B": "beat", "--beat": "beat", "-E": "events", "--task-events": "events", "--events": "events",
                "--without-gossip": "without_gossip", "--without-mingle": "without_mingle",
                "--without-heartbeat": "without_heartbeat", "--disable-prefetch": "disable_prefetch",
                "--purge": "purge", "--discard": "purge", "-D": "detach", "--detach": "detach",
                "-C": "no_color", "--no-color": "no_color", "-q": "quiet", "--quiet": "quiet",
                "--skip-checks": "skip_checks"},
    pool_flags=("concurrency", "autoscale"), pool_fix="--concurrency", pool_setting="worker_concurrency",
    # ``WorkController.setup_instance`` sizes every pool with ``billiard.cpu_count()`` (``os.cpu_count()``)
    # when nothing sets the concurrency: prefork children, ``ThreadPoolExecutor(max_workers=...)``, a
    # gevent/eventlet pool of that many greenlets; the solo pool fixes its limit at 1
    # (celery/worker/worker.py, celery/concurrency/*.py).
    pool_defaults=(
        ("prefork", f"the prefork pool starts one child process {_NODE}, each with its own copy of the app"),
        ("processes", f"the prefork pool starts one child process {_NODE}, each with its own copy of the app"),
        ("threads", f"the threads pool runs one thread {_NODE}, so how many tasks run at once, and how many "
                    "connections they hold, changes with the node"),
        ("gevent", f"the gevent pool runs one greenlet {_NODE}, so it runs only as many tasks at once as the node "
                   "has cores"),
        ("eventlet", f"the eventlet pool runs one greenlet {_NODE}, so it runs only as many tasks at once as the "
                     "node has cores"),
        ("solo", ""),
    ),
    time_limit_flag="time_limit",
    adds_scheduler="beat",
    # bin/worker.py, worker/components.py: ``--autoscale MAX,MIN`` grows the pool to MAX (``-c`` is
    # then ignored); ``-c`` counts greenlets or threads with ``-P gevent/eventlet/threads``.
    process_flags=("concurrency", "autoscale"), kind_flag="pool", process_kinds=("prefork", "processes"),
    kind_default="prefork", kind_setting="worker_pool", kind_deferring=("prefork",),
    # worker/components.py hands ``maxtasksperchild``/``max_memory_per_child`` to the pool; only
    # billiard's (prefork) reads them: threads, gevent, eventlet and solo ignore them.
    recycling_flags=("max_tasks_per_child", "max_memory_per_child"),
    # ``--max-memory-per-child`` / ``worker_max_memory_per_child`` are KiB (configuration.rst).
    memory_flag="max_memory_per_child", memory_setting="worker_max_memory_per_child", memory_unit=1024,
    # bin/control.py: ``inspect`` needs remote control, on RabbitMQ and Redis only, and waits 1 s for
    # replies by default. The node name is ``celery@%h`` (%h: the host name, %n: its first label);
    # ``-n host`` alone means ``celery@host`` (utils/nodenames.py).
    probe=Probe(
        "[-b {broker}] [-A {app}] inspect ping --timeout 10 -d {hostname}",
        defaults=(("hostname", "celery@%h"),), shapes=(("hostname", r"[^@\s]+@[^@\s]+"),), host=("%h", "%n"),
        requires=tuple((name, ("amqp", "pyamqp", "librabbitmq", "redis", "rediss"))
                       for name in ("broker_url", "broker", "CELERY_BROKER_URL", "BROKER_URL"))
        + (("worker_enable_remote_control", ("True", "true", "1")),)),
)
ENQUEUE_METHODS = frozenset({"delay", "apply_async", "delay_on_commit", "apply_async_on_commit", "s", "si",
                             "signature"})


def collect(project: Project) -> None:
    _collect_tasks(project)
    project.sites.extend(_enqueue_sites(project, [t for t in project.tasks if t.framework == FRAMEWORK]))
    project.sites.extend(_config_sites(project))


def _config_sites(project: Project) -> list[Site]:
    """Each app's limit settings, judged as written whether or not the project holds a task
    (an invalid ``task_time_limit`` breaks every task a worker of the app runs)."""
    sites = []
    for app in project.apps:
        site = Site(FRAMEWORK, "config", app.file, app.call, PROFILE, anchor=app.call.span)
        for key in LIMIT_SETTINGS.values():
            resolved = app.settings.get(key)
            if resolved is None or resolved.keyword is None:
                continue
            site.options[key] = resolved
            reason = invalid_duration(resolved, INVALID)
            if reason is not None:
                site.invalid_values.append((resolved.keyword, reason))
        if site.options:
            sites.append(site)
    return sites


def apply_workers(project: Project) -> None:
    """``-P threads``/``solo``/``eventlet`` on a worker: its tasks' limits are not enforced;
    ``-P gevent``: the soft limit is not (celery/concurrency/*: only prefork and gevent time tasks out)."""
    from qlint.manifests.joins import tasks_of

    flag_limits: dict[int, list[tuple[Task, float | None, str]]] = {}
    for worker in project.workers:
        if worker.framework != FRAMEWORK or "worker" not in worker.command.roles:
            continue
        where = f"{worker.workload.kind} `{worker.workload.name}`"
        limit = worker.command.flags.get("time_limit")
        limit_s = _float(limit.value) if limit is not None else None
        for task in tasks_of(project, worker):
            flag_limits.setdefault(id(task), []).append((task, limit_s, where))
        pool = worker.command.flags.get("pool")
        if pool is None or not pool.value:
            continue
        for task in tasks_of(project, worker):
            if pool.value in UNLIMITED_POOLS:
                task.limits_enforced = False
                task.limits_note = (f"the `{pool.value}` pool (`-P {pool.value}` in {worker.workload.kind} "
                                    f"`{worker.workload.name}`) does not enforce time limits")
            elif pool.value == "gevent" and task.limits_enforced:
                task.soft_limit_enforced = False
                task.limits_note = (f"the `gevent` pool (`-P gevent` in {worker.workload.kind} "
                                    f"`{worker.workload.name}`) enforces the hard limit only, never the soft one")
    # ``celery worker --time-limit=N`` bounds every task the worker runs that sets no limit of its own
    # (celery/bin/worker.py passes it to the pool as the default timeout).
    for runs in flag_limits.values():
        task = runs[0][0]
        current = task.norm.get("time_limit")
        if current is None or current.source != "default" or any(limit is None for _, limit, _ in runs):
            continue  # the task sets a limit, or some worker running it has no --time-limit
        longest = max(limit for _, limit, _ in runs)
        workers = ", ".join(sorted({where for _, _, where in runs}))
        task.norm["time_limit"] = Resolved(longest, f"worker flag --time-limit ({workers})")


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _enqueue_sites(project: Project, tasks: list[Task]) -> list[Site]:
    """``task.delay(...)``, ``task.apply_async(...)``, signatures, ``app.send_task("name")``:
    where each sits (function, loop, ``with`` block) is on the call."""
    by_name: dict[str, Task] = {}
    for task in tasks:
        if task.function is not None:
            by_name[f"{task.file.module}.{task.function.name}"] = task
        elif task.cls is not None:
            by_name[f"{task.file.module}.{task.cls.name}"] = task
    by_task_name = {t.name: t for t in tasks}
    app_names = {a.qualified for a in project.apps}
    sites = []
    for facts in project.parsed_files():
        placed = [(fn, call) for fn in facts.functions for call in fn.calls]
        inside = {id(call) for _, call in placed}
        placed += [(None, call) for call in facts.calls if id(call) not in inside]
        for fn, call in placed:
            if call.method in ENQUEUE_METHODS and call.receiver:
                with project.parsed_only():
                    target = project.canonical(call.qualified.rpartition(".")[0])
                task = by_name.get(target)
                if task is None:
                    continue
            elif call.method == "send_task" and call.args:
                with project.parsed_only():
                    if project.canonical(call.qualified.rpartition(".")[0]) not in app_names:
                        continue
                name = project.fold(call.args[0]).value
                task = by_task_name.get(name) if isinstance(name, str) else None
            else:
                continue
            site = Site(FRAMEWORK, "enqueue", facts, call, PROFILE, anchor=call.span, task=task, function=fn)
            site.options = {k: Resolved(project.fold(kw.value).value, f"{call.method}(...)", kw, facts)
                            for k, kw in call.kwargs.items()}
            sites.append(site)
    return sites


def _collect_tasks(project: Project) -> None:
    apps = _find_apps(project)
    project.apps.extend(apps)
    by_name = {a.qualified: a for a in apps}
    for app in apps:
        _configure(project, app)
    for facts in project.parsed_files():
        for fn in facts.functions:
            if fn.decorators and fn.class_name is None and not fn.outer:  # not a factory's template
                task = _function_task(project, facts, fn, by_name, apps)
                if task is not None:
                    project.tasks.append(task)
        for cls in facts.classes:
            if "run" in cls.methods and _is_task_class(project, facts, cls, by_name):
                project.tasks.append(_class_task(project, facts, cls, apps))


# -- apps ------------------------------------------------------------------------------

def _celery_origin(project: Project, call: CallFact) -> str | None:
    """"direct" for ``Celery(...)`` (or a subclass), "factory" for a project function that
    builds and returns one (``app = create_app()``), else None."""
    with project.parsed_only("celery" not in call.dotted.lower() and "celery" not in call.qualified.lower()):
        target = project.canonical(call.qualified)
        if target in CELERY_CLASSES:
            return "direct"
        found = project.class_named(target)
        if found:
            if any(project.canonical(b.qualified) in CELERY_CLASSES for b in found[1].bases if b.kind == "name"):
                return "direct"
            return None
        factory = project.function_named(target)
        if factory is not None:
            fn = factory[1]
            for ret in fn.returns:
                built = ret.call if ret.kind == "call" else (
                    fn.local_calls[ret.dotted].call if ret.kind == "name" and ret.dotted in fn.local_calls else None)
                if built is not None and built is not call and project.canonical(built.qualified) in CELERY_CLASSES:
                    return "factory"
    return None


def _new_app(project: Project, facts: FileFacts, name: str, call: CallFact) -> App | None:
    origin = _celery_origin(project, call)
    qualified = f"{facts.module}.{name}"
    if origin is None and _used_as_app(project, qualified) and not _built_by_project(project, call):
        origin = "by name"
    if origin is None:
        return None
    app = App(FRAMEWORK, qualified, facts, call)
    if origin == "factory":
        # Configured inside the factory, on a local name: qlint does not follow that.
        app.from_factory = True
        _incomplete(app, "the app is built by a factory function")
    return app


# Methods only a Celery app has: an object they are called on, or whose ``conf`` is written, is
# one (``app = celery_class("proj")`` with the class picked by a setting, ``app = make_celery()``
# from another package).
APP_METHODS = frozenset({"config_from_object", "autodiscover_tasks", "config_from_envvar"})


def _used_as_app(project: Project, qualified: str) -> bool:
    uses = getattr(project, "_celery_app_uses", None)
    if uses is None or uses[0] != len(project.files):  # computed once per set of files
        found: set[str] = set()
        for facts in project.parsed_files():
            for call in facts.calls:
                if call.method in APP_METHODS and call.receiver:
                    found.add(project.canonical(_receiver(call.qualified)))
                elif call.method == "update" and call.receiver.endswith(".conf"):
                    found.add(project.canonical(_receiver(_receiver(call.qualified))))
            for aa in facts.attr_assigns:
                if aa.target.endswith(".conf"):
                    found.add(project.canonical(aa.qualified.rpartition(".")[0]))
        uses = project._celery_app_uses = (len(project.files), found)
    return qualified in uses[1]


def _built_by_project(project: Project, call: CallFact) -> bool:
    """The object is built by something qlint reads and knows is no Celery app (a project class
    or function it can follow): only an unresolvable callee makes an app by its uses."""
    with project.parsed_only():
        target = project.canonical(call.qualified)
        return bool(project.class_named(target) or project.function_named(target))


def _find_apps(project: Project) -> list[App]:
    apps = []
    for facts in project.parsed_files():
        for name, kw in facts.assigns.items():
            v = kw.value
            if v.kind == "call" and v.call is not None:
                app = _new_app(project, facts, name, v.call)
                if app is not None:
                    apps.append(app)
    return apps


def _lazy_app(project: Project, qualified: str, by_name: dict[str, App]) -> App | None:
    """An app defined in a module that was not parsed up front (only named files were checked)."""
    found = project.assignment(qualified)
    if found is None:
        return None
    facts, kw = found
    v = kw.value
    if v.kind != "call" or v.call is None:
        return None
    app = _new_app(project, facts, kw.name, v.call)
    if app is None:
        return None
    if app.qualified in by_name:
        return by_name[app.qualified]
    by_name[app.qualified] = app
    project.apps.append(app)
    _configure(project, app)
    return app


def _receiver(call_qualified: str) -> str:
    return call_qualified.rpartition(".")[0]


def _configure(project: Project, app: App) -> None:
    sites: list[tuple[str, Resolved]] = []

    def add(key: str, kw: Keyword, facts: FileFacts, source: str) -> None:
        folded = project.fold(kw.value)
        sites.append((key, Resolved(folded.value, source, kw, facts, folded.env)))

    call = app.call
    namespace_kw = call.kwargs.get("namespace")
    for name, kw in (call.kwargs.items() if not app.from_factory else ()):
        key = {"broker": "broker_url", "backend": "result_backend"}.get(name, name)
        if key in SETTINGS:
            add(key, kw, app.file, "Celery(...)")
        elif name == "changes":
            _add_mapping(project, kw.value, app, add, "Celery(changes=...)", app.file)
        elif name == "config_source":
            _config_from(project, kw.value, None, app, add, app.file)
    if call.has_star:
        _incomplete(app, "Celery(...) receives **kwargs")
    if namespace_kw is not None:
        pass  # the namespace only matters for config_from_object, handled below

    conf = app.qualified + ".conf"
    for facts in project.parsed_files():
        for c in facts.calls:
            if c.method not in ("config_from_object", "config_from_envvar", "config_from_cmdline", "update") or (
                    c.method == "update" and not c.receiver.endswith("conf")):
                continue
            receiver = project.canonical(_receiver(c.qualified)) if c.qualified else ""
            if c.method == "config_from_object" and receiver == app.qualified and c.args:
                ns = c.kwargs.get("namespace")
                namespace = project.fold(ns.value).value if ns is not None else None
                _config_from(project, c.args[0], namespace, app, add, facts)
            elif c.method in ("config_from_envvar", "config_from_cmdline") and receiver == app.qualified:
                _incomplete(app, f"configuration from {c.method}")
            elif c.method == "update" and receiver == conf:
                if c.has_star and not c.args and not c.kwargs:
                    _incomplete(app, "conf.update(**...)")
                for arg in c.args:
                    _add_mapping(project, arg, app, add, "conf.update", facts)
                for name, kw in c.kwargs.items():
                    if name in SETTINGS:
                        add(name, kw, facts, "conf.update")
                if c.has_star:
                    _incomplete(app, "conf.update(**...)")
        for aa in facts.attr_assigns:
            if project.canonical(aa.qualified) == conf and aa.key in SETTINGS:
                add(aa.key, aa.keyword, facts, "app.conf")
    app.setting_sites = sites
    for key, resolved in sites:
        app.settings[key] = resolved


def _incomplete(app: App, reason: str) -> None:
    app.config_complete = False
    app.incomplete_reason = app.incomplete_reason or reason


def _add_mapping(project: Project, value: Value, app: App, add, source: str, facts: FileFacts) -> None:
    target = value
    where = facts
    if value.kind == "name":
        found = project.assignment(value.qualified)
        if found is None:
            _incomplete(app, f"{source} with a value qlint cannot read")
            return
        where, kw = found
        target = kw.value
    if target.kind != "dict":
        _incomplete(app, f"{source} with a value qlint cannot read")
        return
    for k, v in target.items:
        key = project.fold(k).value
        if isinstance(key, str) and key in SETTINGS:
            add(key, Keyword(key, v, Span(k.span.start, v.span.end)), where, source)
        elif not isinstance(key, str):
            _incomplete(app, f"{source} with computed keys")


def _config_from(project: Project, value: Value, namespace, app: App, add, facts: FileFacts) -> None:
    folded = project.fold(value)
    prefix = f"{namespace}_" if isinstance(namespace, str) and namespace else ""
    if isinstance(folded.value, str):
        target = folded.value
        if target.startswith("django.conf:settings") or target == "django.conf.settings":
            modules = _django_settings_modules(project)
            if not modules:
                _incomplete(app, "Django settings module not found in the project")
            for m in modules:
                dynamic = sorted({v.split(".")[0] for v in m.imports.values()} & DYNAMIC_SETTINGS)
                if dynamic:
                    _incomplete(app, f"Django settings assembled at run time by {dynamic[0]}")
            for m in modules:
                _read_settings_module(m, prefix, add, "Django settings")
                app.config_modules.append((m, prefix.upper()))
            return
        module, _, obj = target.partition(":")
        if obj:
            found = project.class_named(f"{module}.{obj}")
            if found:
                _read_class(found[0], found[1], prefix, add)
                return
        elif project.module(module) is not None:
            _read_settings_module(project.module(module), prefix, add, "config module")
            app.config_modules.append((project.module(module), prefix.upper()))
            return
        _incomplete(app, f"config_from_object({target!r}) names a module outside the project")
        return
    if value.kind == "name":
        q = project.canonical(value.qualified)
        if project.module(q) is not None:
            _read_settings_module(project.module(q), prefix, add, "config module")
            app.config_modules.append((project.module(q), prefix.upper()))
            return
        found = project.class_named(q)
        if found:
            _read_class(found[0], found[1], prefix, add)
            return
    _incomplete(app, "config_from_object() with a value qlint cannot read")


def _setting_key(name: str, prefix: str) -> str | None:
    if prefix:
        if name.startswith(prefix):
            key = name[len(prefix):].lower()
            if key in SETTINGS:
                return key
            old = OLD_TO_NEW.get(name) or OLD_TO_NEW.get(name[len(prefix):])
            return old
        # Old upper-case names are read whatever the namespace (celery/app/utils.py falls back to
        # them): ``CELERYD_MAX_TASKS_PER_CHILD`` counts beside ``CELERY_`` settings.
        return OLD_TO_NEW.get(name)
    if name in SETTINGS:
        return name
    return OLD_TO_NEW.get(name)


def _read_settings_module(facts: FileFacts, prefix: str, add, source: str) -> None:
    for name, kw in facts.assigns.items():
        key = _setting_key(name, prefix)
        if key:
            add(key, kw, facts, f"{source} {facts.module}")


def _read_class(facts: FileFacts, cls: ClassFact, prefix: str, add) -> None:
    for name, kw in cls.attrs.items():
        key = _setting_key(name, prefix)
        if key:
            add(key, kw, facts, f"config class {cls.name}")


def _django_settings_modules(project: Project) -> list[FileFacts]:
    names: list[str] = []
    for facts in project.parsed_files():
        for c in facts.calls:
            if c.method == "setdefault" and c.qualified == "os.environ.setdefault" and len(c.args) >= 2:
                key = project.fold(c.args[0]).value
                val = project.fold(c.args[1]).value
                if key == "DJANGO_SETTINGS_MODULE" and isinstance(val, str) and val not in names:
                    names.append(val)
    found = [project.module(n) for n in names if project.module(n) is not None]
    if not found:
        found = [project.module(m) for m in sorted(project.module_names())
                 if m.split(".")[-1] == "settings" or ".settings." in f".{m}."]
        # A test project's settings (``tests/settings.py``) are not the app's.
        found = [f for f in found if f is not None and project.is_production(f.path)]
    seen: dict[str, FileFacts] = {}
    stack = list(found)
    while stack:  # ``from .base import *`` chains of split settings
        facts = stack.pop(0)
        if facts.module in seen:
            continue
        seen[facts.module] = facts
        stack.extend(m for m in (project.module(s) for s in facts.star_imports) if m is not None)
    # Base modules first so that the module that star-imports them wins.
    return list(reversed(list(seen.values())))


def setting(app: App, key: str) -> Resolved | None:
    return app.settings.get(key)


# -- tasks -----------------------------------------------------------------------------

def _task_decorators(project: Project, by_name: dict[str, App]):
    """The test of Celery's task decorators for the wrapper walk (qlint.frameworks._wrappers):
    ``shared_task``, ``current_app.task`` and ``<app>.task`` of an app of the project (an app in
    a module not parsed yet is found on the way)."""
    def is_target(qualified: str) -> bool:
        if qualified in SHARED_TASK:
            return True
        head, _, last = qualified.rpartition(".")
        if last != "task":
            return False
        return head in CURRENT_APP or head in by_name or _lazy_app(project, head, by_name) is not None
    return is_target


def _decorator_match(project: Project, dec: CallFact, facts: FileFacts | None, by_name: dict[str, App]):
    # A decorator not spelled like a task decorator is resolved through parsed files only: the
    # modules that define wrappers are parsed (the prefilter's closure), and loading every module
    # a decorator comes from would parse most of a large project for nothing.
    with project.parsed_only("task" not in dec.dotted.lower()):
        return match_decorator(project, dec, _task_decorators(project, by_name), facts)


def _apps_of(target: str, by_name: dict[str, App]) -> list[App] | None:
    """The app a task decorator binds to; None for a shared one (every app the process creates)."""
    head = target.rpartition(".")[0]
    return [by_name[head]] if head in by_name else None


def _function_task(project: Project, facts: FileFacts, fn: FunctionFact, by_name, apps) -> Task | None:
    for dec in fn.decorators:
        match = _decorator_match(project, dec, facts, by_name)
        if match is None:
            continue
        own = _apps_of(match.target, by_name)
        task_apps, ambiguous = (own, "") if own is not None else _shared_apps(facts, apps)
        task = Task(FRAMEWORK, fn.name, facts, anchor=Span(fn.span.start, fn.span.start), header=fn.header,
                    function=fn, decorator=dec, apps=task_apps, is_async=fn.is_async, wrapper=match.wrapper,
                    accepts_options=match.accepts_options, profile=PROFILE, declared_by=list(match.chain))
        level = option_level(project, match, facts)
        task.levels["decorator"] = level
        name_opt = level.get("name")
        task.name = name_opt.value if name_opt and isinstance(name_opt.value, str) else f"{facts.module}.{fn.name}"
        base_kw = level.get("base")
        bases: list[tuple[FileFacts, ClassFact]] = []
        if base_kw is not None:
            bases = _base_chain(project, task, base_kw.keyword.value if base_kw.keyword else None)
        else:
            for app in task_apps:
                cls_kw = app.call.kwargs.get("task_cls")
                if cls_kw is not None:
                    bases = _base_chain(project, task, cls_kw.value)
                    break
        _merge(project, task, bases)
        task.opaque = task.opaque or ambiguous
        bound = level.get("bind")
        task.bound = bool(bound and bound.value is True)
        return task
    return None


def _settings_key(app: App) -> tuple:
    return tuple(sorted((k, repr(r.value)) for k, r in app.settings.items()))


def _shared_apps(facts: FileFacts, apps: list[App]) -> tuple[list[App], str]:
    """The apps a ``shared_task`` (or ``current_app.task``) runs under, and why that is
    ambiguous ("" when it is not). Celery binds such a task to every app the process creates;
    in a project with several apps it runs under the one its worker loads. That is the app of
    the task's own top-level package when exactly one app lives there, or any app when all of
    them are configured alike; otherwise qlint cannot tell (principle 3) and the task gets no
    app: rules that depend on app configuration stay silent for it."""
    if len(apps) <= 1:
        return list(apps), ""
    package = facts.module.split(".")[0]
    own = [a for a in apps if a.qualified.split(".")[0] == package]
    if len(own) == 1:
        return own, ""
    candidates = own or apps
    if len({_settings_key(a) for a in candidates}) == 1:
        return list(candidates), ""
    names = ", ".join(f"`{a.qualified}`" for a in candidates[:3])
    return [], f"a shared task of several Celery apps whose settings differ ({names})"


def _base_chain(project: Project, task: Task, value: Value | None) -> list[tuple[FileFacts, ClassFact]]:
    """The chain of a ``base=`` / ``task_cls=`` class; marks the task opaque when it cannot be read."""
    if value is None:
        task.opaque = "a base class qlint cannot read"
        return []
    target = project.fold(value).value
    if isinstance(target, str):  # task_cls="pkg.module:Class"
        module, _, obj = target.partition(":")
        qualified = f"{module}.{obj}" if obj else module
    elif value.kind == "name":
        qualified = project.canonical(value.qualified)
    else:
        task.opaque = "a base class qlint cannot read"
        return []
    if qualified in TASK_BASES:
        return []
    found = project.class_named(qualified)
    if not found:
        task.opaque = f"base class `{qualified}` is outside the project"
        return []
    return _class_chain(project, *found, task=task)


def _class_chain(project: Project, facts: FileFacts, cls: ClassFact, depth: int = 0,
                 task: Task | None = None) -> list[tuple[FileFacts, ClassFact]]:
    """The class and its project base classes, nearest first. A base from another package
    (a mixin with its own ``time_limit``) makes the task's options opaque."""
    chain = [(facts, cls)]
    if depth > 8:
        return chain
    for base in cls.bases:
        if base.kind != "name":
            continue
        qualified = project.canonical(base.qualified)
        found = project.class_named(qualified)
        if found and found[1] is not cls:
            chain.extend(_class_chain(project, found[0], found[1], depth + 1, task))
        elif task is not None and not found and _foreign_base(qualified, task):
            task.opaque = f"base class `{qualified}` is outside the project"
    return chain


def _foreign_base(qualified: str, task: Task) -> bool:
    """A base class from another package, which may carry options qlint cannot read."""
    if qualified in TASK_BASES or qualified.startswith("builtins."):
        return False
    if qualified.rpartition(".")[0] in {a.qualified for a in task.apps} | set(CURRENT_APP):
        return False  # ``app.Task``
    return qualified.split(".")[0] not in ("abc", "typing", "celery")


def _is_task_class(project: Project, facts: FileFacts, cls: ClassFact, by_name, depth: int = 0) -> bool:
    if depth > 8:
        return False
    for base in cls.bases:
        if base.kind != "name":
            continue
        with project.parsed_only("task" not in base.dotted.lower()):
            if _base_is_task(project, cls, base, by_name, depth):
                return True
    return False


def _base_is_task(project: Project, cls: ClassFact, base: Value, by_name, depth: int) -> bool:
    target = project.canonical(base.qualified)
    if target in TASK_BASES:
        return True
    head, _, last = target.rpartition(".")
    if last == "Task" and (head in by_name or head in CURRENT_APP):
        return True
    found = project.class_named(target)
    return bool(found and found[1] is not cls and _is_task_class(project, found[0], found[1], by_name, depth + 1))


def _class_task(project: Project, facts: FileFacts, cls: ClassFact, apps: list[App]) -> Task:
    task_apps, ambiguous = _shared_apps(facts, apps)
    task = Task(FRAMEWORK, cls.name, facts, anchor=Span(cls.header.start, cls.header.start),
                header=cls.span, cls=cls, apps=task_apps, bound=True, profile=PROFILE, opaque=ambiguous,
                is_async=any(fn.name == "run" and fn.is_async and fn.class_name == cls.name for fn in facts.functions))
    task.levels["decorator"] = {}
    name_attr = cls.attrs.get("name")
    folded = project.fold(name_attr.value) if name_attr else None
    task.name = folded.value if folded and isinstance(folded.value, str) else f"{facts.module}.{cls.name}"
    _merge(project, task, _class_chain(project, facts, cls, task=task))
    return task


def _merge(project: Project, task: Task, chain: list[tuple[FileFacts, ClassFact]]) -> None:
    """Effective options: annotations > decorator > base classes (nearest first) > settings > defaults."""
    options: dict[str, Resolved] = {}
    for facts, cls in reversed(chain):
        level: dict[str, Resolved] = {}
        for name, kw in cls.attrs.items():
            folded = project.fold(kw.value)
            level[name] = Resolved(folded.value, f"class {cls.name}", kw, facts, folded.env)
        task.levels[f"class {facts.module}.{cls.qualname}"] = level
        options.update(level)
    options.update({k: v for k, v in task.levels.get("decorator", {}).items() if k != "**"})
    for app in task.apps:
        annotations = app.settings.get("task_annotations")
        if annotations is not None and isinstance(annotations.value, dict):
            for key in ("*", task.name):
                entry = annotations.value.get(key)
                if isinstance(entry, dict):
                    for name, val in entry.items():
                        options[name] = Resolved(val, "task_annotations", annotations.keyword, annotations.file)
        elif annotations is not None:
            options.setdefault("**annotations", Resolved(UNKNOWN, "task_annotations", annotations.keyword))
    for option, key in OPTION_SETTINGS.items():
        # Celery fills every task attribute that is None from the app's setting when the
        # task is bound (celery/app/task.py, ``Task.bind``); a time limit of 0 means "none"
        # at run time, so the setting applies there too.
        current = options.get(option)
        if current is not None and current.value is not None and not (
                option in ("time_limit", "soft_time_limit") and _is_zero(current.value)):
            continue
        for app in task.apps:
            value = app.settings.get(key)
            if value is not None:
                options[option] = Resolved(value.value, f"setting {key}", value.keyword, value.file, value.env)
                break
    task.options = options
    _normalise(task)


def _limit_seconds(resolved: Resolved | None) -> Resolved:
    """A Celery limit in seconds: None, 0 and infinity all mean "no limit" (math.inf)."""
    if resolved is None:
        return Resolved(math.inf, "default")
    value = resolved.value
    if value is UNKNOWN:
        number = UNKNOWN
    elif value is None or _is_zero(value):
        number = math.inf
    else:
        s = seconds(value)
        number = UNKNOWN if s is None else s
    return Resolved(number, resolved.source, resolved.keyword, resolved.file, resolved.env)


# What Celery's pool does with a bad limit (billiard compares ``start + limit`` with the clock).
INVALID = {
    "negative": "the deadline is already past when the task starts, so the pool stops it at once "
                "(`None` means no limit, not -1)",
    "string": "the pool compares it with the clock and fails with `TypeError`",
}
LIMIT_SETTINGS = {"time_limit": "task_time_limit", "soft_time_limit": "task_soft_time_limit"}


def _invalid_limits(task: Task) -> None:
    seen: set[int] = set()
    candidates = [level.get(name) for level in task.levels.values() for name in LIMIT_SETTINGS]
    for resolved in candidates:
        if resolved is None or resolved.keyword is None or id(resolved.keyword) in seen:
            continue
        seen.add(id(resolved.keyword))
        reason = invalid_duration(resolved, INVALID)
        if reason is not None:
            task.invalid_values.append((resolved.keyword, reason))


def _normalise(task: Task) -> None:
    _invalid_limits(task)
    options = task.options
    task.norm["time_limit"] = _limit_seconds(options.get("time_limit"))
    task.norm["soft_time_limit"] = _limit_seconds(options.get("soft_time_limit"))
    retries = options.get("max_retries")
    if retries is None:
        task.norm["max_retries"] = Resolved(TASK_DEFAULTS["max_retries"], "default")
    else:
        value = math.inf if retries.value is None else retries.value
        task.norm["max_retries"] = Resolved(value, retries.source, retries.keyword, retries.file, retries.env)
    delay = options.get("default_retry_delay")
    task.norm["retry_delay"] = Resolved(TASK_DEFAULTS["default_retry_delay"], "default") if delay is None else \
        Resolved(seconds(delay.value) if delay.known and seconds(delay.value) is not None else UNKNOWN,
                 delay.source, delay.keyword, delay.file, delay.env)
    for app in task.apps:
        pool = app.settings.get("worker_pool")
        if pool is not None and isinstance(pool.value, str) and pool.value in UNLIMITED_POOLS:
            task.limits_enforced = False
            task.limits_note = f"the `{pool.value}` pool ({pool.source}) does not enforce time limits"
        elif pool is not None and pool.value == "gevent":
            task.soft_limit_enforced = False
            task.limits_note = f"the `gevent` pool ({pool.source}) enforces the hard limit only, never the soft one"
    task.result_waits = list(_result_waits(task))


def _result_waits(task: Task):
    """``x.delay(...).get()`` and ``r = x.apply_async(...); r.get()`` in the task's own code."""
    functions = [task.function] if task.function is not None else [
        fn for fn in task.file.functions if task.cls is not None and fn.class_name == task.cls.name]
    for fn in functions:
        bound = {name for name, v in fn.local_calls.items() if v.call is not None and _gives_result(v.call)}
        for call in fn.calls:
            if call.dotted.rpartition(".")[2] == "allow_join_result":
                yield call, "`allow_join_result()` lifts Celery's guard against waiting on a subtask"
                continue
            if call.method not in WAIT_METHODS:
                continue
            if call.inner is not None and _gives_result(call.inner):
                source = call.inner.method or call.inner.dotted or "group(...)"
                yield call, f"`.{call.method}()` on the result of `{source}()`"
            elif call.receiver in bound:
                yield call, f"`{call.receiver}.{call.method}()` on another task's result"


def _gives_result(call: CallFact) -> bool:
    """A call whose value is another task's result: ``x.delay()``, ``AsyncResult(id)``, ``group(...)()``."""
    if call.method in RESULT_SOURCES or call.dotted.rpartition(".")[2] in RESULT_SOURCES:
        return True
    inner = call.inner
    return inner is not None and not call.dotted and inner.dotted.rpartition(".")[2] in ("group", "chain", "chord")


def _is_zero(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def default(option: str):
    return TASK_DEFAULTS.get(option)


def is_pickle(value) -> bool:
    return isinstance(value, str) and value.strip().lower() in PICKLE_NAMES


def exported_names(project: Project) -> set[str]:
    """Names a file must spell to define a Celery task through something the project binds:
    decorator wrappers and factories, and task classes (the prefilter's closure reads this)."""
    apps = {a.qualified: a for a in _find_apps(project)}
    # App names are not needed: every use of an app that yields a fact spells a seed token
    # (``.task``, ``.Task``, ``.conf``, ``config_from_object``), and names such as ``app``
    # appear in most files of a Django project.
    names = wrapper_names(project, _task_decorators(project, apps))
    for facts in project.parsed_files():
        for cls in facts.classes:
            if cls.qualname == cls.name and _is_task_class(project, facts, cls, apps):
                names.add(cls.name)
    return names
