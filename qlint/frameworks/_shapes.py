"""Shapes every framework module recognises the same way: instances built by a framework
class (a Huey, a Taskiq broker), decorators reached through project wrappers, and options
read into ``Resolved`` values. Framework modules hold the names; this module the walking.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from qlint.lint.facts import CallFact, ClassFact, FileFacts, FunctionFact, Keyword, Span, Value
from qlint.frameworks._wrappers import (  # noqa: F401 - re-exported
    DecoratorMatch, is_or_subclass, match_decorator, wrapper_names)
from qlint.lint.model import UNKNOWN, Profile, Project, Resolved, Task, seconds


@dataclass
class Instance:
    """``huey = RedisHuey("app")``: a module-level name bound to a framework object."""

    qualified: str  # "proj.tasks.huey"
    file: FileFacts
    keyword: Keyword  # the assignment
    chain: list[CallFact]  # the constructor first, then chained methods (``.with_middlewares(...)``)

    @property
    def call(self) -> CallFact:
        return self.chain[0]


def chain_of(call: CallFact) -> list[CallFact]:
    """``A(...).b(...).c(...)`` as [A(...), .b(...), .c(...)]."""
    out = [call]
    while out[0].inner is not None and len(out) < 32:
        out.insert(0, out[0].inner)
    return out


def find_instances(project: Project, is_class: Callable[[str], bool]) -> dict[str, Instance]:
    """Module-level assignments whose value is (a method chain on) a call of a class ``is_class``
    accepts, directly or through a project subclass."""
    found: dict[str, Instance] = {}
    for facts in project.parsed_files():
        for name, kw in facts.assigns.items():
            v = kw.value
            if v.kind != "call" or v.call is None:
                continue
            chain = chain_of(v.call)
            if _constructs(project, chain[0], is_class):
                found[f"{facts.module}.{name}"] = Instance(f"{facts.module}.{name}", facts, kw, chain)
    return found


def _constructs(project: Project, call: CallFact, is_class: Callable[[str], bool]) -> bool:
    if not call.qualified:
        return False
    with project.parsed_only():
        return is_or_subclass(project, project.canonical(call.qualified), is_class)


def resolved(project: Project, kw: Keyword, facts: FileFacts, source: str) -> Resolved:
    folded = project.fold(kw.value)
    return Resolved(folded.value, source, kw, facts, folded.env)


def decorated_task(project: Project, profile: Profile, facts: FileFacts, fn: FunctionFact, dec: CallFact,
                   match: DecoratorMatch) -> Task:
    """A task defined by a decorator, with the options its framework decorator receives (the
    decorator's keywords, a wrapper's defaults and literals, a factory's parameters bound)."""
    task = Task(profile.name, fn.name, facts, anchor=Span(fn.span.start, fn.span.start), header=fn.header,
                function=fn, decorator=dec, is_async=fn.is_async, wrapper=match.wrapper,
                accepts_options=match.accepts_options, profile=profile, declared_by=list(match.chain))
    task.levels["decorator"] = option_level(project, match, facts)
    task.options = {k: v for k, v in task.levels["decorator"].items() if k != "**"}
    return task


def option_level(project: Project, match: DecoratorMatch, facts: FileFacts) -> dict[str, Resolved]:
    """The options of one use of a decorator as ``Resolved`` values (``"**"`` when some are hidden)."""
    level: dict[str, Resolved] = {}
    for name, (kw, where, source) in match.options.items():
        if kw is None:
            level[name] = Resolved(UNKNOWN, source)
        else:
            level[name] = resolved(project, kw, where or facts, source)
    if match.hidden:
        level["**"] = Resolved(UNKNOWN, "decorator")
    return level


def undecorated_task(profile: Profile, facts: FileFacts, fn: FunctionFact) -> Task:
    """A task that is a plain function registered elsewhere (RQ's enqueue, arq's ``functions``)."""
    start = fn.def_start
    return Task(profile.name, fn.name, facts, anchor=Span(start, start), header=fn.header, function=fn,
                is_async=fn.is_async, accepts_options=False, profile=profile)


def function_for(project: Project, value: Value) -> tuple[FileFacts, FunctionFact] | None:
    """The project function a value names (``f``, ``module.f``, or ``"module.f"``)."""
    if value.kind == "name":
        with project.parsed_only(False):
            return project.function_named(project.canonical(value.qualified))
    if value.kind == "const" and isinstance(value.value, str) and "." in value.value:
        return project.function_named(value.value)
    return None


def scaled(r: Resolved, scale: float = 1, unbounded: Callable[[object], bool] = lambda v: False) -> Resolved:
    """``r`` in seconds: numbers divided by ``scale`` (Dramatiq's milliseconds), ``timedelta``s,
    and whatever ``unbounded`` accepts (RQ's -1, ``inf``) as ``math.inf``."""
    value = r.value
    if value is UNKNOWN:
        number = UNKNOWN
    elif unbounded(value):
        number = math.inf
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value / scale
    else:
        s = seconds(value)
        number = UNKNOWN if s is None else s
    return Resolved(number, r.source, r.keyword, r.file, r.env)


_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhdSMHD]?)\s*$")


def duration_string(value: str) -> float | None:
    """RQ's ``"10m"``-style durations (rq/utils.py ``parse_timeout``)."""
    m = _DURATION.match(value)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2).lower()]


def invalid_duration(r: Resolved, consequences: dict[str, str], *, strings: bool = False,
                     minus_one: bool = False) -> str | None:
    """What goes wrong at run time with a literal duration, from the framework's ``consequences``
    by kind ("string", "negative", "zero"; a kind missing there is fine), or None.
    ``strings``: "10m" forms are accepted (RQ); ``minus_one``: -1 means unbounded."""
    if r.keyword is None or r.keyword.value.kind != "const" or r.env:
        return None  # only literals written where the finding points
    value = r.value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        parsed = duration_string(value) if strings else None
        if parsed is None:
            return _consequence(consequences, "string", f"`{value!r}` is not a number")
        value = parsed
    if not isinstance(value, (int, float)):
        return None
    if value == -1 and minus_one:
        return None
    if value < 0:
        return _consequence(consequences, "negative", f"a negative limit ({value})")
    if value == 0:
        return _consequence(consequences, "zero", "a limit of 0")
    return None


def _consequence(consequences: dict[str, str], kind: str, what: str) -> str | None:
    text = consequences.get(kind)
    return f"{what}: {text}" if text else None


def all_calls(facts: FileFacts) -> list[CallFact]:
    """Every recorded call of a file once: module-level ones, those in function bodies (a
    configuration method called in a function is recorded in both lists), and the calls
    assigned to names (``slow = RQQueue(...)`` under an import alias the recorder does not know).
    Every framework module asks this of every parsed file: the list is kept on the facts
    (not a dataclass field, so it is never cached to disk)."""
    kept = facts.__dict__.get("_all_calls")
    if kept is not None:
        return kept
    seen: set[tuple[int, int]] = set()
    out = []
    assigned = [v.call for v in (*(kw.value for kw in facts.assigns.values()),
                                 *(v for fn in facts.functions for v in fn.local_calls.values()))
                if v.kind == "call" and v.call is not None]
    for call in [*facts.calls, *(c for fn in facts.functions for c in fn.calls), *assigned]:
        key = (call.span.start, call.span.end)  # ``Queue(...).enqueue(...)`` starts where ``Queue(...)`` does
        if key not in seen:
            seen.add(key)
            out.append(call)
    facts.__dict__["_all_calls"] = out
    return out


def imports_package(facts: FileFacts, packages: tuple[str, ...]) -> bool:
    return any(q.split(".")[0] in packages for q in facts.imports.values()) or any(
        s.split(".")[0] in packages for s in facts.star_imports)


def class_methods(facts: FileFacts, cls: ClassFact) -> list[FunctionFact]:
    prefix = f"{cls.qualname}."
    return [fn for fn in facts.functions if fn.qualname.startswith(prefix) and fn.qualname.count(".") == cls.qualname.count(".") + 1]


def inner_class(facts: FileFacts, cls: ClassFact, name: str) -> ClassFact | None:
    for other in facts.classes:
        if other.qualname == f"{cls.qualname}.{name}":
            return other
    return None
