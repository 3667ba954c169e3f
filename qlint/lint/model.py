"""The project model: every file's facts joined, names resolved across modules, values folded.

Framework modules (``qlint.frameworks.*``) turn the model's facts into ``Task`` and
``App`` objects; rules read those and never a framework's internals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterable, Iterator

from qlint.lint.facts import CallFact, ClassFact, FileFacts, FunctionFact, Keyword, Span, Value


class _Unknown:
    """A value qlint cannot compute statically."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN = _Unknown()


@dataclass
class Folded:
    value: Any  # a Python value, or UNKNOWN
    env: str | None = None  # set when the value is an environment variable's default

    @property
    def known(self) -> bool:
        return self.value is not UNKNOWN


@dataclass
class Resolved:
    """An option's effective value and where it came from."""

    value: Any
    source: str  # "decorator", "base class Foo", "task_annotations", "config", "default", ...
    keyword: Keyword | None = None  # the text that sets it, when one does
    file: FileFacts | None = None
    env: str | None = None

    @property
    def known(self) -> bool:
        return self.value is not UNKNOWN


@dataclass(frozen=True)
class Unit:
    """How a framework writes a duration option: its name and its units per second."""

    option: str
    scale: int = 1  # Dramatiq's durations are milliseconds: 1000

    def text(self, seconds: float) -> str:
        value = seconds * self.scale
        return str(int(value)) if float(value).is_integer() else repr(value)


@dataclass(frozen=True)
class Profile:
    """What a rule may ask of a framework without naming it.

    Each framework module declares one; rules read these fields (and a task's normalised
    ``norm`` answers) instead of branching on the framework's name.
    """

    name: str  # "dramatiq"
    title: str  # "Dramatiq", for messages
    time_limit: Unit | None = None  # how a task's hard limit is written on the task
    soft_time_limit: Unit | None = None
    max_retries: str | None = None  # the task option bounding retries
    retry_delay: Unit | None = None  # the task option delaying a retry
    # Exceptions a task's own code sees when its time is up (caught by ``except Exception``).
    timeout_exceptions: tuple[str, ...] = ()
    # "supported", "unsupported" (the framework cannot run ``async def`` tasks) or
    # "middleware" (only with a middleware the project must install: ``Task.async_ready``).
    async_tasks: str = "supported"
    # The jobs that share an ``async def`` task's event loop, for messages ("all jobs of the
    # worker (`max_jobs`, 10 by default)"); "" when each async task gets a loop of its own (RQ).
    async_loop: str = ""
    needs_app: bool = False  # a task is configured only through an app the project defines (Celery)
    # Where a limit for every task goes, for messages ("`task_time_limit` in the app's configuration").
    limit_setting: str = ""
    # The task method that retries by raising (Celery ``self.retry``) and the option that hands
    # the task to its function as ``self`` (``bind=True``); "" where the framework has none.
    retry_method: str = ""
    bind_option: str = ""
    # Duration options written in milliseconds (Dramatiq): a small literal there is a unit slip.
    millisecond_options: tuple[str, ...] = ()
    # What the framework does when a task says nothing about retries (QLT206), "" when it does not retry.
    implicit_retries: str = ""
    # Options whose string value names another task, called when this one fails (QLT306).
    handler_options: tuple[str, ...] = ()
    # Of those, the ones an enqueue call turns from a task object into its name (Dramatiq's
    # ``send_with_options(on_failure=actor)``); anywhere else a task object is not accepted.
    handler_objects_on_enqueue: tuple[str, ...] = ()


@dataclass
class App:
    framework: str
    qualified: str  # e.g. "proj.celery.app"
    file: FileFacts
    call: CallFact
    settings: dict[str, Resolved] = field(default_factory=dict)
    # Every place a setting is written, in precedence order (later wins), for rules that
    # judge each written value.
    setting_sites: list[tuple[str, Resolved]] = field(default_factory=list)
    config_complete: bool = True
    incomplete_reason: str = ""
    from_factory: bool = False  # ``app = make_celery()``: ``call`` is the factory's call
    # Modules the app reads its configuration from (``config_from_object``), lowest precedence
    # first, with the prefix their settings carry there ("CELERY_" for Django's namespace).
    config_modules: list[tuple[FileFacts, str]] = field(default_factory=list)


@dataclass
class Task:
    framework: str
    name: str
    file: FileFacts
    anchor: Span  # the first decorator, or the class / def line
    header: Span  # decorators and the def/class line: a noqa there applies
    function: FunctionFact | None = None
    cls: ClassFact | None = None
    decorator: CallFact | None = None  # the task decorator as written (None for class-based tasks)
    apps: list[App] = field(default_factory=list)
    options: dict[str, Resolved] = field(default_factory=dict)
    # Options by level, for rules that compare values set together ("decorator", "class", ...).
    levels: dict[str, dict[str, Resolved]] = field(default_factory=dict)
    bound: bool = False  # ``self`` is the task (bind=True, or a method of a Task subclass)
    is_async: bool = False
    wrapper: str = ""  # the project wrapper the decorator went through, if any
    # How the task is declared: the decorator's name, each wrapper it goes through, the framework's
    # callable (``["polar.worker.actor", "dramatiq.actor"]``); empty for other declarations.
    declared_by: list[str] = field(default_factory=list)
    # False when options added to the decorator would not reach the framework (a wrapper
    # that is the result of a call, a factory without ``**kwargs``): no fix may add them there.
    accepts_options: bool = True
    # Why some of the task's options cannot be seen (a base class from another package, ...);
    # rules about an option's absence stay silent when this is set.
    opaque: str = ""
    profile: Profile | None = None
    # Normalised answers, in seconds and counts whatever the framework's units:
    # "time_limit" (math.inf: unbounded), "max_retries" (math.inf: unbounded),
    # "retry_delay" (seconds before a retry). ``source`` is "default" for the framework's
    # default, and ``keyword`` the text that sets it when one does.
    norm: dict[str, Resolved] = field(default_factory=dict)
    # Whether the runtime enforces a time limit on this task: False (and why, in
    # ``limits_note``) for a Taskiq sync task or a Celery thread pool; None when it depends on
    # a worker setting qlint has not seen (Huey's worker type).
    limits_enforced: bool | None = True
    limits_note: str = ""
    soft_limit_enforced: bool = True  # False where only the hard limit holds (Celery's gevent pool); why: limits_note
    # False when the framework ignores an option a fix would add (a Dramatiq broker without
    # the TimeLimit middleware rejects ``time_limit=``).
    limit_fixable: bool = True
    async_ready: bool = True  # "middleware" frameworks: the project installs it
    # Calls in the task's body that block until another task finishes (``.get()`` on a
    # Celery result, Huey ``blocking=True``, Taskiq ``wait_result``, arq ``job.result()``),
    # with how the framework spells the wait, for the message.
    result_waits: list[tuple[CallFact, str]] = field(default_factory=list)
    # Why the retries this task asks for never run (a Taskiq retry label with no retry
    # middleware on any broker); the asking option is ``norm["max_retries"].keyword``.
    retry_blocker: str = ""
    # Values the framework rejects at run time (QLT107), with why: (keyword, reason).
    invalid_values: list[tuple[Keyword, str]] = field(default_factory=list)

    def option(self, name: str) -> Resolved | None:
        return self.options.get(name)

    @property
    def config_complete(self) -> bool:
        needs_app = self.profile is None or self.profile.needs_app
        return (bool(self.apps) or not needs_app) and all(app.config_complete for app in self.apps)

    @property
    def options_hidden(self) -> bool:
        """Options written where qlint cannot read them: ``**kwargs`` in the decorator, or
        ``task_annotations`` that are not a literal mapping."""
        return "**" in self.levels.get("decorator", {}) or "**annotations" in self.options

    @property
    def options_complete(self) -> bool:
        """Every place an option could come from was read."""
        return self.config_complete and not self.opaque and not self.options_hidden


@dataclass
class Site:
    """A framework call a rule judges outside task definitions: an enqueue with options
    (``q.enqueue(f, job_timeout=-1)``, ``a.send_with_options(time_limit=...)``), a queue,
    broker, middleware or worker-settings construction, a serializer choice."""

    framework: str
    kind: str  # "enqueue", "queue", "broker", "middleware", "serializer", "worker-settings"
    file: FileFacts
    call: CallFact | None  # None for a class (arq ``WorkerSettings``)
    profile: Profile
    norm: dict[str, Resolved] = field(default_factory=dict)  # as ``Task.norm``, for values written here
    options: dict[str, Resolved] = field(default_factory=dict)  # as written, by the framework's names
    anchor: Span | None = None  # where a finding about the site itself goes (the call, or the class line)
    task: Task | None = None  # the task an enqueue names, when qlint finds it
    cls: ClassFact | None = None
    function: FunctionFact | None = None  # the function the call is in (None at module level)
    invalid_values: list[tuple[Keyword, str]] = field(default_factory=list)  # as ``Task.invalid_values``
    retry_blocker: str = ""  # as ``Task.retry_blocker`` (an RQ ``Retry(interval=...)`` no scheduler runs)


class _ParsedOnly:
    __slots__ = ("project", "active", "saved")

    def __init__(self, project: "Project", active: bool) -> None:
        self.project = project
        self.active = active

    def __enter__(self) -> None:
        self.saved = self.project._load_enabled
        self.project._load_enabled = self.saved and not self.active

    def __exit__(self, *exc: object) -> None:
        self.project._load_enabled = self.saved


class Project:
    """All files' facts, indexed by module, with cross-module resolution."""

    def __init__(self, files: list[FileFacts], loader: Callable[[str], FileFacts | None] | None = None,
                 module_names: Iterable[str] = (), production: Callable[[str], bool] | None = None,
                 aliases: dict[str, str] | None = None) -> None:
        self.files = list(files)
        # Whether a file runs in production (qlint.lint.production): the others are resolved by
        # name when production code refers to them, but never scanned for apps, settings, tasks
        # or call sites, so nothing in a test or example module changes a finding.
        self.is_production: Callable[[str], bool] = production or (lambda path: True)
        self.by_module: dict[str, FileFacts] = {}
        for f in self.files:
            if f.error is None:
                self.by_module.setdefault(f.module, f)
        # Modules of the project not parsed yet: parsed on first use, so that the
        # prefilter never hides a constant or a config module a parsed file refers to.
        self._loader = loader
        self._known_modules = set(module_names) | set(self.by_module)
        self.aliases = aliases or {}  # ``server.polar.worker`` -> ``polar.worker`` (qlint.lint.modules)
        self._load_enabled = True
        self._canonical: dict[tuple[str, bool, int], str] = {}
        self._lookups: dict[tuple[str, bool, int], tuple[FileFacts, str] | None] = {}
        self.tasks: list[Task] = []
        self.apps: list[App] = []
        self.sites: list[Site] = []
        # From manifests (qlint.manifests.collect): workloads and the worker processes they start.
        self.workloads: list = []
        self.workers: list = []
        self.script_workers: list = []  # workers started by shell scripts: flags only
        self.templates: list = []  # SQS queues of CloudFormation templates (qlint.manifests.cloudformation)
        self.task_queues: list = []  # Cloud Tasks queues of queue.yaml (qlint.manifests.cloudtasks)
        self.sidekiq: list = []  # Sidekiq processes the workloads start (qlint.manifests.sidekiq)
        self.databases: dict = {}  # path -> a Rails config/database.yml
        self._fold_stack: set[int] = set()

    # -- symbols ---------------------------------------------------------------------
    def parsed_only(self, active: bool = True) -> "_ParsedOnly":
        """Resolve through files already parsed only. Used where a name cannot be task
        machinery unless it is spelled like it: loading every module a decorator or a base
        class comes from would parse most of a large project for nothing. (A context manager;
        a class rather than a generator: rules enter it for every call of a project.)"""
        return _ParsedOnly(self, active)

    def module(self, name: str) -> FileFacts | None:
        facts = self.by_module.get(name)
        if facts is None and name not in self._known_modules and name in self.aliases:
            name = self.aliases[name]
            facts = self.by_module.get(name)
        if facts is None and self._loader is not None and self._load_enabled and name in self._known_modules:
            self._known_modules.discard(name)
            facts = self._loader(name)
            if facts is not None:
                self.files.append(facts)
                if facts.error is None:
                    self.by_module[name] = facts
                else:
                    facts = None
        return facts

    def by_path(self, path: str) -> FileFacts | None:
        """The parsed file at ``path`` (production or not), if any."""
        for facts in self.files:
            if facts.path == path and facts.error is None:
                return facts
        return None

    def module_names(self) -> set[str]:
        return self._known_modules | set(self.by_module)

    def lookup(self, qualified: str, _depth: int = 0) -> tuple[FileFacts, str] | None:
        """Find the module and top-level name that ``qualified`` (module.name) refers to.

        Follows re-exports (``from .celery import app`` in ``__init__.py``) a few levels deep.
        """
        if _depth > 8 or not qualified:
            return None
        # An answer holds while no module is loaded (a loaded one may define or re-export the
        # name) and in the same mode (``parsed_only`` forbids loading): wrappers ask the same
        # names thousands of times.
        # (Only whole lookups: one cut short by the depth limit is no answer for another depth.)
        if _depth:
            return self._lookup(qualified, _depth)
        key = (qualified, self._load_enabled, len(self.files))
        if key in self._lookups:
            return self._lookups[key]
        found = self._lookup(qualified, _depth)
        self._lookups[(qualified, self._load_enabled, len(self.files))] = found
        return found

    def _lookup(self, qualified: str, _depth: int) -> tuple[FileFacts, str] | None:
        module, _, name = qualified.rpartition(".")
        if not module:
            return None
        facts = self.module(module)
        if facts is None:
            return None
        if name in facts.assigns or any(c.name == name and c.qualname == name for c in facts.classes) or any(
                fn.name == name and fn.depth == 0 for fn in facts.functions):
            return facts, name
        if name in facts.imports:
            return self.lookup(facts.imports[name], _depth + 1)
        for star in facts.star_imports:
            found = self.lookup(f"{star}.{name}", _depth + 1)
            if found:
                return found
        return None

    def assignment(self, qualified: str) -> tuple[FileFacts, Keyword] | None:
        found = self.lookup(qualified)
        if found and found[1] in found[0].assigns:
            return found[0], found[0].assigns[found[1]]
        return None

    def class_named(self, qualified: str) -> tuple[FileFacts, ClassFact] | None:
        found = self.lookup(qualified)
        if found:
            for cls in found[0].classes:
                if cls.name == found[1] and cls.qualname == found[1]:
                    return found[0], cls
        return None

    def function_named(self, qualified: str) -> tuple[FileFacts, FunctionFact] | None:
        found = self.lookup(qualified)
        if found:
            for fn in found[0].functions:
                if fn.name == found[1] and fn.depth == 0:
                    return found[0], fn
        return None

    def canonical(self, qualified: str, _depth: int = 0) -> str:
        """Follow project aliases (``task = app.task``, re-exports) to a name's origin."""
        # Rules ask the same names over and over; an answer holds until a module is loaded.
        key = (qualified, self._load_enabled, len(self.files))
        cached = self._canonical.get(key)
        if cached is None:
            cached = self._canonical[key] = self._canonical_uncached(qualified, _depth)
        return cached

    def _canonical_uncached(self, qualified: str, _depth: int) -> str:
        if _depth > 8:
            return qualified
        parts = qualified.split(".")
        for cut in range(len(parts), 0, -1):
            head = ".".join(parts[:cut])
            rest = parts[cut:]
            found = self.lookup(head)
            if found is None:
                continue
            facts, name = found
            kw = facts.assigns.get(name)
            origin = f"{facts.module}.{name}"
            if kw is not None and kw.value.kind == "name":
                origin = kw.value.qualified
                return self.canonical(".".join([origin, *rest]), _depth + 1)
            return ".".join([origin, *rest])
        return qualified

    def parsed_files(self) -> Iterator[FileFacts]:
        """Production files parsed so far (a loop over this may parse more: iterate a copy)."""
        production = self.is_production
        return iter([f for f in self.files if f.error is None and production(f.path)])

    def all_parsed_files(self) -> Iterator[FileFacts]:
        """Every file parsed so far, non-production ones included."""
        return iter([f for f in self.files if f.error is None])

    # -- folding ---------------------------------------------------------------------
    def fold(self, value: Value | None) -> Folded:
        if value is None:
            return Folded(UNKNOWN)
        key = id(value)
        if key in self._fold_stack:
            return Folded(UNKNOWN)
        self._fold_stack.add(key)
        try:
            return self._fold(value)
        finally:
            self._fold_stack.discard(key)

    def _fold(self, v: Value) -> Folded:
        if v.kind == "const":
            return Folded(v.value)
        if v.kind == "name":
            if v.qualified in ("math.inf",):
                return Folded(math.inf)
            found = self.assignment(v.qualified)
            if found is not None:
                return self.fold(found[1].value)
            return Folded(UNKNOWN)
        if v.kind == "seq":
            items = [self.fold(e) for e in v.elements]
            if all(i.known for i in items):
                return Folded(tuple(i.value for i in items))
            return Folded(UNKNOWN)
        if v.kind == "dict":
            out = {}
            for k, val in v.items:
                fk = self.fold(k)
                if not fk.known:
                    return Folded(UNKNOWN)
                try:
                    out[fk.value] = self.fold(val).value
                except TypeError:
                    return Folded(UNKNOWN)
            return Folded(out)
        if v.kind == "binop":
            left, right = self.fold(v.left), self.fold(v.right)
            if left.known and right.known:
                try:
                    result = _apply(v.op, left.value, right.value)
                except Exception:  # noqa: BLE001 - any failure means "not foldable"
                    return Folded(UNKNOWN)
                return Folded(result, left.env or right.env)
            return Folded(UNKNOWN)
        if v.kind == "unary":
            inner = self.fold(v.left)
            if inner.known and isinstance(inner.value, (int, float)):
                return Folded(-inner.value if v.op == "-" else inner.value, inner.env)
            return Folded(UNKNOWN)
        if v.kind == "call" and v.call is not None:
            return self._fold_call(v.call)
        return Folded(UNKNOWN)

    def _fold_call(self, call: CallFact) -> Folded:
        q = call.qualified
        if q in ("datetime.timedelta",):
            kwargs = {k: self.fold(kw.value) for k, kw in call.kwargs.items()}
            args = [self.fold(a) for a in call.args]
            if all(x.known for x in [*kwargs.values(), *args]) and not call.has_star:
                try:
                    return Folded(timedelta(*[a.value for a in args], **{k: x.value for k, x in kwargs.items()}))
                except (TypeError, ValueError, OverflowError):
                    return Folded(UNKNOWN)
            return Folded(UNKNOWN)
        if q.endswith(".total_seconds") or call.method == "total_seconds":
            return Folded(UNKNOWN)
        if q in ("builtins.int", "builtins.float", "builtins.str", "builtins.bool") and len(call.args) == 1:
            inner = self.fold(call.args[0])
            if inner.known:
                try:
                    converted = {"builtins.int": int, "builtins.float": float, "builtins.str": str,
                                 "builtins.bool": bool}[q](inner.value)
                except (TypeError, ValueError):
                    return Folded(UNKNOWN)
                return Folded(converted, inner.env)
            return inner
        if q == "builtins.float" and len(call.args) == 1:
            return Folded(UNKNOWN)
        env = self._env_default(call)
        if env is not None:
            return env
        return Folded(UNKNOWN)

    def _env_default(self, call: CallFact) -> Folded | None:
        """``os.environ.get("X", d)``, ``os.getenv("X", d)``, ``env.int("X", default=d)``, ``config("X", default=d)``."""
        q = call.qualified
        is_env = q in ("os.environ.get", "os.getenv", "os.environ.setdefault") or call.receiver.endswith(
            "env") or call.dotted in ("env", "config") or q.endswith("decouple.config") or call.dotted.startswith(
            "env.")
        if not is_env or not call.args:
            return None
        name = self.fold(call.args[0])
        if not name.known or not isinstance(name.value, str):
            return None
        default_value = call.kwargs["default"].value if "default" in call.kwargs else (
            call.args[1] if len(call.args) > 1 else None)
        if default_value is None:
            return Folded(UNKNOWN, env=name.value)
        default = self.fold(default_value)
        value = default.value
        if default.known and isinstance(value, str) and (call.method in ("int", "float") or "cast" in call.kwargs):
            try:
                value = float(value) if call.method == "float" else int(value)
            except ValueError:
                value = UNKNOWN
        return Folded(value, env=name.value)


def _apply(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, bool) or isinstance(b, bool):
        raise TypeError("no arithmetic on booleans")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        if isinstance(a, str) or isinstance(b, str):
            raise TypeError("no string repetition")
        return a * b
    if op == "/":
        return a / b
    if op == "//":
        return a // b
    if op == "%":
        return a % b
    if op == "**":
        if abs(b) > 64:
            raise OverflowError("exponent too large to fold")
        return a ** b
    raise TypeError(op)


def seconds(value: Any) -> float | None:
    """A duration in seconds from a folded value (numbers and ``timedelta``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)):
        return float(value)
    return None
