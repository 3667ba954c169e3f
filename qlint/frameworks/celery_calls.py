"""What qlint knows about how tasks are called: Celery's calling API and its neighbours.

- Enqueue sites that send a message now (``delay``, ``apply_async``, ``send_task``, RQ
  ``enqueue*``, Dramatiq ``send_with_options``), signatures that send nothing by themselves,
  and the Django task class's deferred forms (``delay_on_commit``, Celery >= 5.4).
- The project's installed Celery version, from its lock or requirements files.
- Result backends and the places a task's result is read.
- Broker kind from ``broker_url``, message priorities and the queues that declare
  ``x-max-priority``; Dramatiq's ``RabbitmqBroker(max_priority=...)`` range.
- Beat schedule entries (``beat_schedule`` / ``CELERY_BEAT_SCHEDULE``,
  ``add_periodic_task``) with their options, and how often each runs (a ``crontab`` by the
  shortest gap between two of its runs, from Celery's own crontab syntax).

Facts checked against celery 5.7.0 / kombu 5.7.0 / dramatiq 2.2.1 sources (paths below are
inside those packages).
"""

from __future__ import annotations

import json
import re
import sys
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from qlint.frameworks import celery_brokers
from qlint.frameworks._shapes import all_calls, is_or_subclass
from qlint.frameworks.celery import CELERY_CLASSES, TASK_BASES
from qlint.frameworks.celery_settings import CELERY_VERSION
from qlint.lint.facts import CallFact, FileFacts, Keyword, Span, Value
from qlint.lint.model import UNKNOWN, App, Project, Resolved, Site, Task, seconds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# -- enqueue calls ---------------------------------------------------------------------------

# Calls that put a message on the broker when they run (every framework's enqueue sites).
SEND_NOW = frozenset({"delay", "apply_async", "send_task", "enqueue", "enqueue_call", "enqueue_in", "enqueue_at",
                      "send_with_options", "send"})
# Celery signatures: a message is sent only when the signature (or its canvas) is called.
SIGNATURES = frozenset({"s", "si", "signature"})
# ``celery.contrib.django.task.DjangoTask`` (Celery >= 5.4): enqueue from ``on_commit``.
AFTER_COMMIT = {"delay": "delay_on_commit", "apply_async": "apply_async_on_commit"}
DJANGO_TASK = "celery.contrib.django.task.DjangoTask"
DELAY_ON_COMMIT_SINCE = (5, 4)
CANVAS = frozenset({"celery.group", "celery.chain", "celery.chord", "celery.canvas.group", "celery.canvas.chain",
                    "celery.canvas.chord", "celery.canvas._chain", "celery.canvas.chunks", "celery.chunks"})
# How a framework sends many messages at once, for messages (QLT604). Dramatiq has no batch
# publish: ``group(...).run()`` enqueues its messages one by one (dramatiq/composition.py).
BATCH_REMEDY = {
    "celery": "`group(task.s(x) for x in xs).delay()` sends them in one go over one producer connection and "
              "tracks them as one group, and `task.chunks(zip(xs), n)` sends n items per message",
    "rq": "`queue.enqueue_many([Queue.prepare_data(f, (x,)) for x in xs])` sends them in one Redis pipeline",
}


def sends_message(site: Site) -> bool:
    """The call publishes a message when it runs (not a signature, not a deferred form)."""
    return site.kind == "enqueue" and site.call is not None and site.call.method in SEND_NOW


def is_signature(site: Site) -> bool:
    return site.framework == "celery" and site.call is not None and site.call.method in SIGNATURES


def batch_remedy(site: Site) -> str | None:
    """How the site's framework sends many messages at once; None when it has no batch API."""
    return BATCH_REMEDY.get(site.framework)


def supports_group_rewrite(site: Site) -> bool:
    """``task.delay(x)`` on a Celery task can become ``group(task.s(x) for ...).delay()``."""
    return site.framework == "celery" and site.task is not None and site.call is not None and bool(
        site.call.receiver)


GROUPS = frozenset({"celery.group", "celery.canvas.group"})


def group_name(facts: FileFacts) -> tuple[str | None, bool]:
    """How a file can spell Celery's ``group``: (name, whether ``from celery import group`` must
    be added); (None, False) when ``group`` means something else there and ``celery`` is not imported."""
    for local, qualified in facts.imports.items():
        if qualified in GROUPS:
            return local, False
    taken = set(facts.imports) | set(facts.assigns) | {c.name for c in facts.classes} | {
        fn.name for fn in facts.functions} | {n for fn in facts.functions for n in fn.names}
    if "group" not in taken:
        return "group", True
    module = next((local for local, qualified in facts.imports.items() if qualified == "celery"), None)
    return (f"{module}.group", False) if module else (None, False)


def _canonical(project: Project, qualified: str) -> str:
    if not qualified:
        return ""
    with project.parsed_only():
        return project.canonical(qualified)


def canvas_sends(project: Project, calls: list[CallFact], sites: list[Site]) -> list[tuple[CallFact, str]]:
    """``group(...).delay()``, ``chain(...).apply_async()``, ``task.s(x).delay()``: canvases
    called among ``calls``, with how they are written."""
    signature_spans = {(s.call.span.start, s.call.span.end) for s in sites if s.call is not None and is_signature(s)}
    out = []
    for call in calls:
        inner = call.inner
        if call.method not in ("delay", "apply_async") or inner is None:
            continue
        if (inner.span.start, inner.span.end) in signature_spans:
            out.append((call, f"`{inner.dotted}(...).{call.method}()`"))
        elif inner.qualified and _canonical(project, inner.qualified) in CANVAS:
            out.append((call, f"`{inner.dotted}(...).{call.method}()`"))
    return out


_LAMBDA = re.compile(rb"\blambda\b")


def in_lambda(data: bytes, call: CallFact) -> bool:
    """``on_commit(lambda: task.delay(x))``, any callback: the call runs later, elsewhere.
    ``data`` is the file's UTF-8 text; the statement's text before the call is searched."""
    start = call.statement.start if call.statement is not None else data.rfind(b"\n", 0, call.span.start) + 1
    return bool(_LAMBDA.search(data[start:call.span.start]))


def is_bare_statement(call: CallFact) -> bool:
    """The call is a statement of its own: its value is not used."""
    st = call.statement
    return st is not None and st.start == call.span.start and st.end == call.span.end


# -- the installed version ---------------------------------------------------------------------

LATEST_KNOWN = tuple(int(p) for p in CELERY_VERSION.split("."))
_LOCKS = ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock")
_SPEC = re.compile(r"(===|==|~=|>=|\^|~|>)\s*([0-9][0-9A-Za-z.*]*)")


@dataclass(frozen=True)
class PackageVersion:
    numbers: tuple[int, ...]
    exact: bool  # pinned (lock file, ``==``) rather than a lower bound
    where: str  # the file it comes from; "" when nothing names the package

    def at_least(self, minimum: tuple[int, ...]) -> bool:
        return self.numbers >= minimum

    def text(self, title: str) -> str:
        number = ".".join(str(n) for n in self.numbers)
        if not self.where:
            return f"assuming {title} {number}: no lock or requirements file names it"
        return f"{title} {number} pinned in {self.where}" if self.exact else f"{title} >= {number} in {self.where}"


def _numbers(text: str) -> tuple[int, ...] | None:
    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group(0)))
        if digits.group(0) != piece:
            break
    return tuple(parts) or None


def _from_spec(spec: str) -> tuple[tuple[int, ...], bool] | None:
    """``==5.3.6`` (exact), ``>=5.3,<6``, ``~=5.6.2``, ``^5.3`` (lower bounds), ``5.3.6`` (poetry: exact)."""
    spec = spec.split(";")[0].strip()
    found = _SPEC.findall(spec)
    for op, number in found:
        numbers = _numbers(number)
        if numbers is None:
            continue
        if op in ("==", "===") and "*" not in number:
            return numbers, True
    for _op, number in found:  # a lower bound (``>=``, ``~=``, ``^``), or ``==5.3.*``
        numbers = _numbers(number)
        if numbers is not None:
            return numbers, False
    bare = _numbers(spec.strip().strip("\"'"))
    if bare is not None and re.fullmatch(r"[0-9][0-9.]*", spec.strip().strip("\"'")):
        return bare, True
    return None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(line: str, package: str) -> tuple[tuple[int, ...], bool] | None:
    line = line.split("#")[0].strip().strip("\",'")
    match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$", line)
    if match is None or _normal(match.group(1)) != package:
        return None
    return _from_spec(match.group(3)) or ((), False)


def _lock_version(path: Path, package: str) -> tuple[int, ...] | None:
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
            for name, entry in (data.get(section) or {}).items():
                if _normal(name) == package and isinstance(entry, dict) and isinstance(entry.get("version"), str):
                    return _numbers(entry["version"].lstrip("="))
        return None
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return None
    for entry in data.get("package", []) if isinstance(data.get("package"), list) else []:
        if isinstance(entry, dict) and _normal(str(entry.get("name", ""))) == package and isinstance(
                entry.get("version"), str):
            return _numbers(entry["version"])
    return None


def _manifest_version(path: Path, package: str) -> tuple[tuple[int, ...], bool] | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if path.name == "pyproject.toml":
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, ValueError):
            return None
        lines: list[str] = []
        project = data.get("project") or {}
        lines += [d for d in project.get("dependencies") or [] if isinstance(d, str)]
        for group in (project.get("optional-dependencies") or {}).values():
            lines += [d for d in group or [] if isinstance(d, str)]
        for group in (data.get("dependency-groups") or {}).values():
            lines += [d for d in group or [] if isinstance(d, str)]
        poetry = (data.get("tool") or {}).get("poetry") or {}
        tables = [poetry.get("dependencies") or {}, poetry.get("dev-dependencies") or {}]
        tables += [(g or {}).get("dependencies") or {} for g in (poetry.get("group") or {}).values()]
        for table in tables:
            for name, spec in table.items():
                if _normal(name) != package:
                    continue
                if isinstance(spec, dict):
                    spec = spec.get("version", "")
                if isinstance(spec, str):
                    return _from_spec(spec) or ((), False)
        candidates = lines
    else:  # requirements*.txt, setup.cfg: one requirement per line
        candidates = text.splitlines()
    for line in candidates:
        found = _requirement(line.strip(), package)
        if found is not None:
            return found
    return None


@lru_cache(maxsize=256)
def _version_in(directory: Path, package: str) -> PackageVersion | None:
    for name in _LOCKS:
        lock = directory / name
        if lock.is_file():
            numbers = _lock_version(lock, package)
            if numbers:
                return PackageVersion(numbers, True, name)
    requirements = directory / "requirements"
    manifests = [directory / "pyproject.toml", *sorted(directory.glob("requirements*.txt")),
                 *sorted(directory.glob("requirements*.pip")), directory / "setup.cfg"]
    if requirements.is_dir():
        manifests += [*sorted(requirements.glob("*.txt")), *sorted(requirements.glob("*.pip"))]
    bounds: list[PackageVersion] = []
    for path in manifests:
        if path.is_file():
            found = _manifest_version(path, package)
            if found is not None and found[0]:
                version = PackageVersion(found[0], found[1], path.relative_to(directory).as_posix())
                if version.exact:
                    return version  # a pin beats a lower bound written elsewhere
                bounds.append(version)
    return bounds[0] if bounds else None


def package_version(package: str, start: str | Path, root: Path | None = None,
                    latest: tuple[int, ...] = LATEST_KNOWN) -> PackageVersion:
    """The version of ``package`` the project installs, from the lock or requirements files in
    the folders from ``start`` up to the project root (the nearest wins); the latest version
    qlint knows when none names it."""
    directory = Path(start).resolve()
    if directory.is_file() or not directory.exists():
        directory = directory.parent
    stop = root.resolve() if root is not None else None
    package = _normal(package)
    for _ in range(16):
        found = _version_in(directory, package)
        if found is not None:
            return found
        if directory == stop or (directory / ".git").exists() or directory.parent == directory:
            break
        directory = directory.parent
    return PackageVersion(latest, True, "")


def celery_version(facts: FileFacts, root: Path | None = None) -> PackageVersion:
    return package_version("celery", facts.path, root)


# -- the Django task class ----------------------------------------------------------------------

def _django_fixup(project: Project, app: App) -> bool:
    """Celery's Django fix-up (``celery/fixups/django.py``) is active for ``app``: the app's
    module sets ``DJANGO_SETTINGS_MODULE`` or the app reads ``django.conf:settings``. It then
    makes ``DjangoTask`` the app's task class unless one was given."""
    if app.from_factory:
        return False
    for call in app.file.calls:
        if call.method == "setdefault" and call.qualified == "os.environ.setdefault" and call.args and \
                project.fold(call.args[0]).value == "DJANGO_SETTINGS_MODULE":
            return True
        if call.method == "config_from_object" and call.args:
            target = project.fold(call.args[0]).value
            if isinstance(target, str) and target.startswith("django.conf"):
                return True
    return False


def _reaches(project: Project, qualified: str, apps: list[App], depth: int = 0) -> bool | None:
    """Whether a task class is ``DjangoTask`` (or derives from it): True, False, or None when
    it is ``app.Task`` (the app's task class decides)."""
    if depth > 8:
        return False
    target = _canonical(project, qualified) if qualified else ""
    if target == DJANGO_TASK:
        return True
    if target in TASK_BASES:
        return False
    head, _, last = target.rpartition(".")
    if last == "Task" and head in {a.qualified for a in apps}:
        return None
    found = project.class_named(target)
    if found is None:
        return False
    answers = [_reaches(project, b.qualified, apps, depth + 1) for b in found[1].bases if b.kind == "name"]
    if any(a is True for a in answers):
        return True
    return None if any(a is None for a in answers) else False


def _app_task_class_is_django(project: Project, app: App) -> bool:
    custom = app.call.kwargs.get("task_cls")
    if custom is not None:
        folded = project.fold(custom.value).value
        qualified = folded.replace(":", ".") if isinstance(folded, str) else (
            custom.value.qualified if custom.value.kind == "name" else "")
        return _reaches(project, qualified, [app]) is True
    app_class = project.class_named(_canonical(project, app.call.qualified))
    if app_class is not None and "task_cls" in app_class[1].attrs:
        return False
    return _canonical(project, app.call.qualified) in CELERY_CLASSES or app_class is not None and _django_fixup(
        project, app)


def is_django_task(project: Project, task: Task) -> bool:
    """The task's class is Celery's ``DjangoTask``, which has ``delay_on_commit``."""
    apps = [a for a in task.apps if _django_fixup(project, a) and _app_task_class_is_django(project, a)]
    if task.framework != "celery" or not apps:
        return False
    if task.cls is not None:
        answers = [_reaches(project, b.qualified, apps) for b in task.cls.bases if b.kind == "name"]
        return any(a is True for a in answers) or any(a is None for a in answers)
    base = task.levels.get("decorator", {}).get("base")
    if base is None:
        return True
    if base.keyword is None or base.keyword.value.kind != "name":
        return False
    return _reaches(project, base.keyword.value.qualified, apps) is not False


def after_commit_method(project: Project, site: Site, root: Path | None = None) -> tuple[str, str] | None:
    """``delay_on_commit`` / ``apply_async_on_commit`` for a call on a Django task when the
    project's Celery has them (>= 5.4), with the version assumed; else None."""
    call = site.call
    if call is None or call.method not in AFTER_COMMIT or site.task is None or not is_django_task(project, site.task):
        return None
    version = celery_version(site.file, root)
    if not version.at_least(DELAY_ON_COMMIT_SINCE):
        return None
    return AFTER_COMMIT[call.method], version.text("Celery")


# -- results -------------------------------------------------------------------------------------

NO_BACKEND = frozenset({"", "disabled"})


def result_backend(task: Task) -> Resolved | None:
    """The result backend one of the task's apps stores results in, when one is configured."""
    for app in task.apps:
        backend = app.settings.get("result_backend")
        if backend is None:
            continue
        if isinstance(backend.value, str) and backend.value.strip().lower() not in NO_BACKEND:
            return backend
        if backend.value is UNKNOWN and backend.env:
            return backend
    return None


@dataclass
class ResultReads:
    """Where task results may be read: ``AsyncResult(...)`` anywhere (any task's result, by
    id), and per task the enqueues whose value is kept or chained and its signatures."""

    by_id: tuple[FileFacts, CallFact] | None = None
    tasks: dict[int, str] = field(default_factory=dict)  # id(task) -> why


def result_reads(project: Project, root: Path | None = None) -> ResultReads:
    reads = ResultReads()
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if call.method == "AsyncResult" or call.dotted.rpartition(".")[2] in ("AsyncResult", "GroupResult"):
                reads.by_id = reads.by_id or (facts, call)
    for site in project.sites:
        if site.framework != "celery" or site.kind != "enqueue" or site.task is None or site.call is None:
            continue
        key = id(site.task)
        if key in reads.tasks:
            continue
        call = site.call
        if call.method in SIGNATURES:
            reads.tasks[key] = f"`{call.dotted}(...)` puts it in a canvas, where the next task gets its result"
        elif "ignore_result" in call.kwargs:
            reads.tasks[key] = f"`{call.dotted}(...)` chooses per call"
        elif not is_bare_statement(call) and call.method in SEND_NOW:
            reads.tasks[key] = f"the value of `{call.dotted}(...)` is kept"
        elif "link" in call.kwargs or "link_error" in call.kwargs:
            reads.tasks[key] = f"`{call.dotted}(...)` links a callback"
    return reads


def tracks_state(task: Task) -> bool:
    """``track_started=True`` or ``self.update_state(...)``: someone watches the task's state."""
    started = task.options.get("track_started")
    if started is not None and started.value is not False:
        return True
    functions = [task.function] if task.function is not None else [
        fn for fn in task.file.functions if task.cls is not None and fn.class_name == task.cls.name]
    return any(call.method == "update_state" for fn in functions for call in fn.calls)


# -- brokers and priorities -----------------------------------------------------------------------

KOMBU_QUEUES = frozenset({"kombu.Queue", "kombu.entity.Queue"})
RABBITMQ_MAX_PRIORITY = 255  # RabbitMQ caps x-max-priority at 255


def broker_kind(app: App) -> tuple[str, Resolved] | None:
    """"RabbitMQ", "Redis", "SQS", ... from the app's ``broker_url`` (``celery_brokers.broker``);
    None when no URL is written (the ``CELERY_BROKER_URL`` environment variable may name one)
    or its scheme cannot be read."""
    brk = celery_brokers.broker(app)
    if not brk.explicit or brk.kind is None or brk.setting is None:
        return None
    return brk.title, brk.setting


@dataclass
class PriorityUse:
    keyword: Keyword
    value: Any
    file: FileFacts
    apps: list[App]
    where: str  # "the task decorator", "`apply_async(...)`", "setting task_default_priority"


def priority_uses(project: Project) -> list[PriorityUse]:
    """Celery priorities as written: task options, enqueue options, ``task_default_priority``."""
    uses: list[PriorityUse] = []
    seen: set[int] = set()

    def add(resolved: Resolved | None, apps: list[App], where: str) -> None:
        if resolved is None or resolved.keyword is None or resolved.file is None or id(resolved.keyword) in seen:
            return
        if resolved.value is None:
            return
        seen.add(id(resolved.keyword))
        uses.append(PriorityUse(resolved.keyword, resolved.value, resolved.file, apps, where))

    for app in project.apps:
        add(app.settings.get("task_default_priority"), [app], "setting `task_default_priority`")
    for task in project.tasks:
        if task.framework != "celery":
            continue
        resolved = task.options.get("priority")
        if resolved is not None and not resolved.source.startswith("setting"):
            add(resolved, task.apps, f"task `{task.name}`")
    for site in project.sites:
        if site.framework == "celery" and site.kind == "enqueue" and "priority" in site.options:
            apps = site.task.apps if site.task is not None else list(project.apps)
            add(site.options["priority"], apps, f"`{site.call.dotted}(...)`" if site.call else "an enqueue")
    return uses


@dataclass
class PriorityDeclarations:
    maxima: list[tuple[int, str]] = field(default_factory=list)  # (x-max-priority, where)
    unreadable: str = ""  # a queue declaration qlint cannot read, when there is one


def _queue_arguments_max(project: Project, call: CallFact) -> tuple[int | None, bool]:
    """(x-max-priority, readable) of one ``kombu.Queue(...)`` call."""
    if call.has_star:
        return None, False
    found: int | None = None
    kw = call.kwargs.get("max_priority")
    if kw is not None:
        value = project.fold(kw.value).value
        if not isinstance(value, int):
            return None, False
        found = value
    kw = call.kwargs.get("queue_arguments")
    if kw is not None:
        args = project.fold(kw.value).value
        if not isinstance(args, dict):
            return None, False
        if "x-max-priority" in args:
            value = args["x-max-priority"]
            if not isinstance(value, int):
                return None, False
            found = value
    return found, True


def priority_declarations(project: Project, apps: list[App]) -> PriorityDeclarations:
    """Queues declared with ``x-max-priority``: ``task_queue_max_priority`` (Celery sets it on
    every queue it declares without one, ``celery/app/amqp.py`` ``Queues.__setitem__``),
    ``kombu.Queue(..., queue_arguments={"x-max-priority": N})`` / ``max_priority=N``, and
    ``task_queues`` given as a mapping of queue options."""
    out = PriorityDeclarations()
    for app in apps:
        setting = app.settings.get("task_queue_max_priority")
        if setting is not None:
            if isinstance(setting.value, int):
                out.maxima.append((setting.value, "setting `task_queue_max_priority`"))
            else:
                out.unreadable = out.unreadable or "setting `task_queue_max_priority`"
        queues = app.settings.get("task_queues")
        if queues is not None and isinstance(queues.value, dict):
            for name, options in queues.value.items():
                if isinstance(options, dict):
                    args = options.get("queue_arguments") or {}
                    value = options.get("max_priority", args.get("x-max-priority") if isinstance(args, dict) else None)
                    if isinstance(value, int):
                        out.maxima.append((value, f"queue `{name}` in `task_queues`"))
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if call.dotted.rpartition(".")[2] != "Queue" or _canonical(project, call.qualified) not in KOMBU_QUEUES:
                continue
            value, readable = _queue_arguments_max(project, call)
            if not readable:
                out.unreadable = out.unreadable or f"`{call.dotted}(...)` in {facts.module}"
            elif value is not None:
                name = project.fold(call.args[0]).value if call.args else None
                out.maxima.append((value, f"queue `{name}`" if isinstance(name, str) else f"`{call.dotted}(...)`"))
    return out


# Dramatiq's RabbitMQ broker (dramatiq/brokers/rabbitmq.py:120-121): ``max_priority`` must
# satisfy ``0 < max_priority <= 255`` or the constructor raises ValueError.
DRAMATIQ_RABBITMQ = frozenset({"dramatiq.brokers.rabbitmq.RabbitmqBroker"})


def dramatiq_max_priorities(project: Project) -> list[tuple[FileFacts, Keyword, Any]]:
    """``RabbitmqBroker(max_priority=...)`` keywords and Django ``DRAMATIQ_BROKER`` options."""
    out: list[tuple[FileFacts, Keyword, Any]] = []
    seen: set[tuple[str, int]] = set()
    for facts in project.parsed_files():
        calls = all_calls(facts)
        nested = [a.call for c in calls for a in [*c.args, *(k.value for k in c.kwargs.values())]
                  if a.kind == "call" and a.call is not None]
        for call in [*calls, *nested]:
            kw = call.kwargs.get("max_priority")
            if kw is None or (facts.path, kw.span.start) in seen or not call.dotted.endswith("Broker"):
                continue
            with project.parsed_only():
                if not is_or_subclass(project, project.canonical(call.qualified), DRAMATIQ_RABBITMQ.__contains__):
                    continue
            seen.add((facts.path, kw.span.start))
            out.append((facts, kw, project.fold(kw.value).value))
        setting = facts.assigns.get("DRAMATIQ_BROKER")
        if setting is not None and setting.value.kind == "dict":
            items = {project.fold(k).value: v for k, v in setting.value.items}
            broker = project.fold(items["BROKER"]).value if "BROKER" in items else None
            options = items.get("OPTIONS")
            if isinstance(broker, str) and broker.replace(":", ".") in DRAMATIQ_RABBITMQ and options is not None \
                    and options.kind == "dict":
                for k, v in options.items:
                    if project.fold(k).value == "max_priority":
                        out.append((facts, Keyword("max_priority", v, Span(k.span.start, v.span.end)),
                                    project.fold(v).value))
    return out


def invalid_dramatiq_max_priority(value: Any) -> str | None:
    if value is UNKNOWN or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return "`RabbitmqBroker` compares it with 0 and 255 and fails with `TypeError`"
    if not 0 < value <= RABBITMQ_MAX_PRIORITY:
        return "`RabbitmqBroker` raises `ValueError: max_priority must be a value between 0 and 255` " \
               "(it must be 1 to 255)"
    return None


# -- beat schedules --------------------------------------------------------------------------------

@dataclass
class BeatEntry:
    """One periodic task: an entry of a beat schedule mapping, or ``add_periodic_task(...)``."""

    file: FileFacts
    anchor: Span  # the entry's key, or the call
    statement: Span  # the whole entry (a noqa on any of its lines applies)
    name: str
    task: Task | None
    task_name: str | None
    schedule: Value | None
    expires: bool  # ``expires`` in the entry's options (or the signature's)
    readable: bool  # every option could be read
    entry: Value | None = None  # the entry's mapping (a dict literal or a ``dict(...)`` call)
    options: Value | None = None  # its ``options`` mapping, as written
    call: CallFact | None = None  # ``add_periodic_task(...)``


def _mapping(project: Project, value: Value) -> tuple[dict[str, tuple[Value, Value | None]], bool] | None:
    """A literal mapping's items by string key ((key, value)); ``dict(...)`` keywords too. The
    flag is False when some item cannot be read (``**other``, computed keys)."""
    if value.kind == "dict":
        items: dict[str, tuple[Value, Value | None]] = {}
        complete = True
        for k, v in value.items:
            key = project.fold(k).value if k.kind != "unknown" else UNKNOWN
            if isinstance(key, str):
                items[key] = (v, k)
            else:
                complete = False
        return items, complete
    if value.kind == "call" and value.call is not None and value.call.dotted == "dict" and not value.call.args:
        return {name: (kw.value, None) for name, kw in value.call.kwargs.items()}, not value.call.has_star
    return None


def _task_by_name(project: Project, name: str) -> Task | None:
    return next((t for t in project.tasks if t.framework == "celery" and t.name == name), None)


def _task_by_object(project: Project, value: Value) -> Task | None:
    if value.kind != "name":
        return None
    target = _canonical(project, value.qualified)
    for task in project.tasks:
        if task.framework != "celery":
            continue
        own = task.function.name if task.function is not None else task.cls.name if task.cls is not None else None
        if own is not None and f"{task.file.module}.{own}" == target:
            return task
    return None


def _beat_mappings(project: Project, app: App) -> list[tuple[FileFacts, Value]]:
    out = []
    seen: set[int] = set()
    for key, resolved in app.setting_sites:
        if key != "beat_schedule" or resolved.keyword is None or resolved.file is None:
            continue
        value, where = resolved.keyword.value, resolved.file
        if value.kind == "name":
            found = project.assignment(value.qualified)
            if found is None:
                continue
            where, kw = found
            value = kw.value
        if id(value) not in seen:
            seen.add(id(value))
            out.append((where, value))
    return out


def beat_entries(project: Project) -> list[BeatEntry]:
    entries: list[BeatEntry] = []
    for app in project.apps:
        for facts, mapping in _beat_mappings(project, app):
            items = _mapping(project, mapping)
            if items is None:
                continue
            for name, (value, key) in items[0].items():
                entry = _entry(project, facts, name, value, key)
                if entry is not None:
                    entries.append(entry)
    seen: set[tuple[str, int]] = set()
    for facts in project.parsed_files():
        for call in all_calls(facts):
            if call.method != "add_periodic_task" or (facts.path, call.span.start) in seen:
                continue
            seen.add((facts.path, call.span.start))
            entries.append(_periodic_call(project, facts, call))
    return entries


def _entry(project: Project, facts: FileFacts, name: str, value: Value, key: Value | None) -> BeatEntry | None:
    if value.kind == "name":
        found = project.assignment(value.qualified)
        if found is None:
            return None
        value = found[1].value
    fields = _mapping(project, value)
    if fields is None:
        return None
    items, complete = fields
    task_value = items.get("task", (None, None))[0]
    task_name = project.fold(task_value).value if task_value is not None else None
    task_name = task_name if isinstance(task_name, str) else None
    options = items.get("options", (None, None))[0]
    expires = False
    readable = complete
    if options is not None:
        folded = project.fold(options)
        if isinstance(folded.value, dict):
            expires = folded.value.get("expires") is not None
        else:
            sub = _mapping(project, options)
            if sub is None or not sub[1]:
                readable = False
            else:
                expires = "expires" in sub[0]
    anchor = key.span if key is not None else value.span
    return BeatEntry(facts, anchor, Span(anchor.start, value.span.end), name,
                     _task_by_name(project, task_name) if task_name else None, task_name,
                     items.get("schedule", (None, None))[0], expires, readable, entry=value, options=options)


def _periodic_call(project: Project, facts: FileFacts, call: CallFact) -> BeatEntry:
    schedule = call.args[0] if call.args else (call.kwargs["schedule"].value if "schedule" in call.kwargs else None)
    sig = call.args[1] if len(call.args) > 1 else (call.kwargs["sig"].value if "sig" in call.kwargs else None)
    expires = "expires" in call.kwargs
    readable = not call.has_star
    task = None
    task_name = None
    while sig is not None and sig.kind == "call" and sig.call is not None:
        inner_call = sig.call
        if inner_call.method == "set" or inner_call.method in SIGNATURES or inner_call.dotted.rpartition(".")[2] in (
                "signature", "Signature"):
            if "expires" in inner_call.kwargs:
                expires = True
            if inner_call.has_star:
                readable = False
        if inner_call.method in SIGNATURES and inner_call.receiver:
            task = _task_by_object(project, Value("name", inner_call.span, dotted=inner_call.receiver,
                                                  qualified=inner_call.qualified.rpartition(".")[0]))
            break
        if inner_call.dotted.rpartition(".")[2] == "signature" and inner_call.args:
            name = project.fold(inner_call.args[0]).value
            task_name = name if isinstance(name, str) else None
            task = _task_by_name(project, task_name) if task_name else None
            break
        if inner_call.inner is None:
            break
        sig = Value("call", inner_call.inner.span, call=inner_call.inner)
    if sig is not None and sig.kind == "name":
        task = _task_by_object(project, sig)
    label = call.kwargs.get("name")
    name = project.fold(label.value).value if label is not None else None
    return BeatEntry(facts, call.span, call.statement or call.span,
                     name if isinstance(name, str) else (task.name if task else "periodic task"), task,
                     task.name if task else task_name, schedule, expires, readable, call=call)


# ``celery.schedules`` (celery/schedules.py): ``crontab(minute, hour, day_of_week, day_of_month,
# month_of_year)`` and the interval ``schedule(run_every)``; ``celery.task.schedules`` is Celery 3's path.
CRONTAB = frozenset({"celery.schedules.crontab", "celery.task.schedules.crontab"})
INTERVAL_SCHEDULE = frozenset({"celery.schedules.schedule", "celery.task.schedules.schedule"})
# (name, max_, min_) as ``crontab.__init__`` passes them to ``_expand_cronspec``, in positional order.
CRON_FIELDS = (("minute", 60, 0), ("hour", 24, 0), ("day_of_week", 7, 0), ("day_of_month", 31, 1),
               ("month_of_year", 12, 1))
# ``celery.utils.time.weekday``: a name's first three letters, Sunday = 0.
_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# The Gregorian calendar repeats every 400 years (146097 days, a whole number of weeks).
_CYCLE_YEARS = 400
_CYCLE_DAYS = 146097


@dataclass(frozen=True)
class ScheduleInterval:
    """How often a beat schedule runs: the shortest gap between two of its runs."""

    seconds: float
    regular: bool  # every gap between two runs is ``seconds`` (an interval; a crontab such as ``*/5``)
    env: str | None = None  # the value is this environment variable's default: it can be overridden


def schedule_interval(project: Project, value: Value | None, depth: int = 0) -> ScheduleInterval | None:
    """The interval of a beat schedule as written: a number of seconds, a ``timedelta``,
    ``schedule(run_every)``, or a ``crontab(...)`` by the shortest gap between two of its runs.
    None when qlint cannot tell (a value it cannot fold, ``solar``, a schedule class of the
    project's own, a crontab that never runs or that Celery would reject)."""
    if value is None or depth > 8:
        return None
    if value.kind == "name":
        found = project.assignment(value.qualified)
        if found is not None:
            return schedule_interval(project, found[1].value, depth + 1)
    if value.kind == "call" and value.call is not None:
        call = value.call
        target = _canonical(project, call.qualified)
        if target in CRONTAB:
            return _crontab_interval(project, call)
        if target in INTERVAL_SCHEDULE:
            every = call.args[0] if call.args else (
                call.kwargs["run_every"].value if "run_every" in call.kwargs else None)
            return None if every is None or call.has_star else schedule_interval(project, every, depth + 1)
    folded = project.fold(value)
    result = seconds(folded.value)
    if result is None or not result > 0 or result == float("inf"):
        return None
    return ScheduleInterval(result, True, folded.env)


def _crontab_interval(project: Project, call: CallFact) -> ScheduleInterval | None:
    if call.has_star or len(call.args) > len(CRON_FIELDS):
        return None
    written: dict[str, Value] = {name: arg for (name, _, _), arg in zip(CRON_FIELDS, call.args)}
    for name, kw in call.kwargs.items():
        if name in written or name not in {f[0] for f in CRON_FIELDS} | {"nowfun", "app"}:
            return None  # a TypeError in Celery, or an option qlint does not know
        if name not in ("nowfun", "app"):
            written[name] = kw.value
    env = None
    fields = []
    for name, max_, min_ in CRON_FIELDS:
        spec: Any = "*"
        if name in written:
            spec, spec_env = _cron_spec(project, written[name])
            env = env or spec_env
        expanded = expand_cronspec(spec, max_, min_)
        if expanded is None:
            return None
        fields.append(expanded)
    gaps = crontab_gaps(*fields)
    if gaps is None:
        return None
    return ScheduleInterval(min(gaps) * 60.0, len(gaps) == 1, env)


def _cron_spec(project: Project, value: Value) -> tuple[Any, str | None]:
    """A crontab field's value (``range(...)`` of literals included) and the environment
    variable it defaults from; UNKNOWN when it cannot be folded."""
    if value.kind == "call" and value.call is not None and value.call.qualified in ("range", "builtins.range"):
        call = value.call
        bounds = [project.fold(a) for a in call.args]
        if call.kwargs or call.has_star or not 1 <= len(bounds) <= 3 or not all(
                b.known and isinstance(b.value, int) and not isinstance(b.value, bool) for b in bounds):
            return UNKNOWN, None
        try:
            return tuple(range(*[b.value for b in bounds])), next((b.env for b in bounds if b.env), None)
        except ValueError:
            return UNKNOWN, None
    folded = project.fold(value)
    return folded.value, folded.env


def expand_cronspec(spec: Any, max_: int, min_: int = 0) -> frozenset[int] | None:
    """``crontab._expand_cronspec``: the values a field runs on, or None when Celery would raise
    (or the value is not known)."""
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        result = {spec}
    elif isinstance(spec, str):
        parsed = _parse_cron(spec, max_, min_)
        if parsed is None:
            return None
        result = parsed
    elif isinstance(spec, (tuple, list, set, frozenset, range)):
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in spec):
            return None
        result = set(spec)
    else:
        return None
    if any(n >= max_ + min_ or n < min_ for n in result):
        return None
    return frozenset(result)


_CRON_PATTERNS = (
    (re.compile(r"(\w+?)-(\w+)/(\w+)?"), "range_steps"),
    (re.compile(r"(\w+?)-(\w+)"), "range"),
    (re.compile(r"\*/(\w+)?"), "star_steps"),
    (re.compile(r"^\*$"), "star"),
)


def _parse_cron(spec: str, max_: int, min_: int) -> set[int] | None:
    """``celery.schedules.crontab_parser(max_, min_).parse(spec)``, None where it raises."""
    try:
        out: set[int] = set()
        for part in spec.split(","):
            if not part:
                return None
            out |= set(_cron_part(part, max_, min_))
        return out
    except (ValueError, KeyError, IndexError):
        return None


def _cron_part(part: str, max_: int, min_: int) -> list[int]:
    for regex, kind in _CRON_PATTERNS:
        match = regex.match(part)
        if match is None:
            continue
        toks = match.groups()
        if kind == "range_steps":
            if not toks[2]:
                raise ValueError("empty filter")
            return _cron_range(toks[:2], max_, min_)[::int(toks[2])]
        if kind == "range":
            return _cron_range(toks, max_, min_)
        everything = list(range(min_, max_ + min_))
        if kind == "star_steps":
            if not toks[0]:
                raise ValueError("empty filter")
            return everything[::int(toks[0])]
        return everything
    return _cron_range((part,), max_, min_)


def _cron_range(toks: tuple[str, ...], max_: int, min_: int) -> list[int]:
    first = _cron_number(toks[0], max_, min_)
    if len(toks) > 1:
        last = _cron_number(toks[1], max_, min_)
        if last < first:  # wraps around, as ``22-2`` for hours
            return list(range(first, min_ + max_)) + list(range(min_, last + 1))
        return list(range(first, last + 1))
    return [first]


def _cron_number(text: str, max_: int, min_: int) -> int:
    if text[0] == "-":
        raise ValueError("negative numbers not supported")
    try:
        number = int(text)
    except ValueError:
        number = _WEEKDAYS[text[0:3].lower()]
    if number > min_ + max_ - 1 or number < min_:
        raise ValueError("out of range")
    return number


@lru_cache(maxsize=512)
def crontab_gaps(minute: frozenset[int], hour: frozenset[int], day_of_week: frozenset[int],
                 day_of_month: frozenset[int], month_of_year: frozenset[int]) -> frozenset[int] | None:
    """Every distinct gap, in minutes, between two consecutive runs of a crontab, exactly (in the
    schedule's wall-clock time: a daylight-saving jump is not counted); None when it never runs.
    A run day has the same times as every other; the days are those whose month, day of the month
    and day of the week all match (Celery requires all three, unlike cron's either-day rule)."""
    times = sorted(h * 60 + m for h in hour for m in minute)
    day_gaps = _day_gaps(day_of_week, day_of_month, month_of_year)
    if not times or day_gaps is None:
        return None
    gaps = {b - a for a, b in pairwise(times)}
    overnight = 1440 - times[-1] + times[0]  # from a day's last run to the next run day's first
    gaps |= {(days - 1) * 1440 + overnight for days in day_gaps}
    return frozenset(gaps)


@lru_cache(maxsize=512)
def _day_gaps(day_of_week: frozenset[int], day_of_month: frozenset[int],
              month_of_year: frozenset[int]) -> frozenset[int] | None:
    """The distinct numbers of days between consecutive run days, over a whole 400-year cycle."""
    if not day_of_week or not day_of_month or not month_of_year:
        return None
    if len(day_of_month) == 31 and len(month_of_year) == 12:  # every date: only the weekdays matter
        weekdays = sorted(day_of_week)
        return frozenset((b - a) % 7 or 7 for a, b in zip(weekdays, weekdays[1:] + weekdays[:1]))
    months, days = sorted(month_of_year), sorted(day_of_month)
    run_days = []
    for year in range(2000, 2000 + _CYCLE_YEARS):
        for month in months:
            first = date(year, month, 1).toordinal()
            length = monthrange(year, month)[1]
            for day in days:
                if day > length:
                    break
                ordinal = first + day - 1
                if ordinal % 7 in day_of_week:  # date.fromordinal(1) is a Monday; Celery's Sunday is 0
                    run_days.append(ordinal)
    if not run_days:
        return None
    gaps = {b - a for a, b in pairwise(run_days)}
    gaps.add(run_days[0] + _CYCLE_DAYS - run_days[-1])
    return frozenset(gaps)


def task_expires(task: Task) -> Resolved | None:
    """The task's own ``expires`` (decorator, class attribute, ``task_annotations``)."""
    resolved = task.options.get("expires")
    return resolved if resolved is not None and resolved.value is not None else None



# -- what an enqueue passes to the task ------------------------------------------------------------

# Calls whose arguments become the task's arguments (Taskiq's ``with_labels`` carries labels).
ARGUMENT_CALLS = SEND_NOW | SIGNATURES | frozenset(AFTER_COMMIT.values())
# Keywords of ``apply_async`` / ``send_task`` / ``enqueue_call`` / ``send_with_options`` /
# ``signature`` holding the task's positional and keyword arguments.
PACKED = ("args", "kwargs")


def _flatten(value: Value, depth: int = 0) -> list[Value]:
    if depth < 2 and value.kind == "seq":
        return [v for e in value.elements for v in _flatten(e, depth + 1)]
    if depth < 2 and value.kind == "dict":
        return [v for _, val in value.items for v in _flatten(val, depth + 1)]
    return [value]


def task_arguments(site: Site) -> list[Value]:
    """The values an enqueue hands to the task, as written: positional arguments, keyword
    values, and the items of ``args=(...)`` / ``kwargs={...}`` (literal tuples, lists and
    dicts are opened). Options such as ``countdown=5`` are included: none is a model instance."""
    call = site.call
    if call is None or site.kind != "enqueue" or call.method not in ARGUMENT_CALLS:
        return []
    values = [v for a in call.args for v in _flatten(a)]
    for name, kw in call.kwargs.items():
        values.extend(_flatten(kw.value) if name in PACKED else [kw.value])
    return values


def serializer_of(site: Site) -> str | None:
    """The serializer the enqueued message goes through, when qlint knows it."""
    written = site.options.get("serializer")
    if written is not None and isinstance(written.value, str):
        return written.value
    return task_serializer(site.task) if site.task is not None else None


def task_serializer(task: Task) -> str | None:
    """The serializer a task's messages go through, when qlint knows it."""
    for resolved in (task.norm.get("serializer"), task.options.get("serializer") if task.framework == "celery"
                     else None):
        if resolved is not None and isinstance(resolved.value, str):
            return resolved.value
    return "json" if task.framework == "celery" and task.config_complete else None


def model_instances_sent(project: Project) -> int:
    """How many values a text serializer (JSON) could not encode that the project sends to its
    tasks: model instances passed at enqueue calls, and task parameters annotated with a model.
    A fix that turns pickle into JSON would break each of them (QLT603 would report them)."""
    from qlint.frameworks.django import (
        enclosing_function,
        model_annotation,
        model_instance,
    )

    count = 0
    for site in project.sites:
        fn = enclosing_function(site)
        count += sum(1 for value in task_arguments(site) if model_instance(project, site.file, fn, value))
    for task in project.tasks:
        functions = [task.function] if task.function is not None else [
            f for f in task.file.functions if task.cls is not None and f.qualname == f"{task.cls.qualname}.run"]
        count += sum(1 for fn in functions for p in fn.params if p.annotation and model_annotation(project, task.file, p))
    return count
