"""Following a task decorator through the project's wrappers to the framework's own.

A task is a task however it is declared (RULES.md, principle 5): ``@shared_task``, an alias of
it (``nautobot_task = shared_task``), a ``functools.partial``, the result of a call
(``background = app.task(acks_late=True)``), a decorator factory that returns the framework's
decorator (``return dramatiq.actor(**options)``), or one that returns a function of its own
which applies the framework's decorator to its argument or to a wrapper of it
(``def decorator(fn): ... dramatiq.actor(wrapped, **options)``), and a plain function used as
a decorator that does the same. Each level may pass options: its own defaults, the keywords
of the use (bound to its parameters, or passed on through ``**options``), literals.

The walk yields, for one use of a decorator, the framework callable it reaches and every
option that callable receives, each with where it comes from; or None when the decorator is
not a task decorator. Framework modules supply the test of their callables (``is_target``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Keyword, Span
from qlint.lint.model import Project

PARTIAL = frozenset({"functools.partial"})
MAX_DEPTH = 6

# An option as the framework receives it: the keyword that writes it (None when qlint cannot
# know the value: a parameter the factory computes), the file it is written in, its source
# ("decorator" at the use, "wrapper proj.tasks.background" inside a wrapper).
Option = tuple["Keyword | None", "FileFacts | None", str]


@dataclass
class DecoratorMatch:
    target: str  # the framework callable reached, e.g. "dramatiq.actor"
    options: dict[str, Option] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)  # wrappers passed through, outermost first, then the target
    # Options added to the decorator at its use reach the framework (a fix may write them there).
    accepts_options: bool = True
    hidden: bool = False  # options reach the framework through ``**`` that qlint cannot read

    @property
    def wrapper(self) -> str:
        return self.chain[0] if len(self.chain) > 1 else ""


def _use_options(dec: CallFact, facts: FileFacts | None, source: str = "decorator") -> dict[str, Option]:
    return {name: (kw, facts, source) for name, kw in dec.kwargs.items()}


def match_decorator(project: Project, dec: CallFact, is_target: Callable[[str], bool], facts: FileFacts | None = None,
                    depth: int = 0) -> DecoratorMatch | None:
    """Where the decorator ``dec`` (written in ``facts``) leads: the framework callable and the
    options it receives, or None. ``dec.is_call`` tells ``@f(...)`` from ``@f``."""
    if depth > MAX_DEPTH or not dec.qualified:
        return None
    target = project.canonical(dec.qualified)
    found = _match(project, target, dec, is_target, facts, depth)
    if found is not None and target != dec.qualified and _is_alias(project, dec.qualified):
        found.chain.insert(0, dec.qualified)  # ``nautobot_task = shared_task``: how the task is spelled
    return found


def _is_alias(project: Project, qualified: str) -> bool:
    assigned = project.assignment(qualified)
    return assigned is not None and assigned[1].value.kind == "name"


def _match(project: Project, target: str, dec: CallFact, is_target, facts, depth) -> DecoratorMatch | None:
    if is_or_subclass(project, target, is_target):  # RQ's ``job`` is a class: projects subclass it
        return DecoratorMatch(target, _use_options(dec, facts), [target], hidden=dec.has_star)
    assigned = project.assignment(target)
    if assigned is not None:
        found = _through_assignment(project, target, assigned, dec, is_target, facts, depth)
        if found is not None:
            return found
    function = project.function_named(target)
    if function is not None:
        return _through_function(project, target, function, dec, is_target, facts, depth)
    cls = project.class_named(target)
    if cls is not None and dec.is_call:
        return _through_class(project, target, cls, dec, is_target, facts, depth)
    return None


def is_or_subclass(project: Project, qualified: str, accept: Callable[[str], bool], depth: int = 0) -> bool:
    """``qualified`` is accepted, or is a project class with an accepted class among its bases."""
    if accept(qualified):
        return True
    if depth > 6:
        return False
    found = project.class_named(qualified)
    if found is None:
        return False
    return any(b.kind == "name" and is_or_subclass(project, project.canonical(b.qualified), accept, depth + 1)
               for b in found[1].bases)


def _through_assignment(project: Project, target: str, assigned: tuple[FileFacts, Keyword], dec: CallFact,
                        is_target, facts, depth) -> DecoratorMatch | None:
    where, kw = assigned
    v = kw.value
    if v.kind != "call" or v.call is None:
        return None
    call = v.call
    source = f"wrapper {target}"
    if project.canonical(call.qualified) in PARTIAL and call.args and call.args[0].kind == "name":
        # ``task = partial(shared_task, bind=True)``: the partial's keywords, then the use's.
        inner = call.args[0]
        bare = CallFact(dotted=inner.dotted, qualified=inner.qualified, span=inner.span, is_call=False)
        found = match_decorator(project, bare, is_target, where, depth + 1)
        if found is None:
            return None
        options = {**found.options, **_use_options(call, where, source), **_use_options(dec, facts)}
        return DecoratorMatch(found.target, options, [target, *found.chain], found.accepts_options,
                              found.hidden or call.has_star or dec.has_star)
    if depth == 0:
        # ``background = app.task(acks_late=True)`` used as ``@background``: the call's result is
        # the decorator; it takes the function, not options.
        found = match_decorator(project, call, is_target, where, depth + 1)
        if found is not None:
            options = {name: (k, f, source if s == "decorator" else s) for name, (k, f, s) in found.options.items()}
            return DecoratorMatch(found.target, options, [target, *found.chain], False, found.hidden)
    return None


# -- functions used as decorators, and decorator factories ------------------------------------

def _by_outer(facts: FileFacts) -> dict[str, list[FunctionFact]]:
    """A file's nested functions by the names of the functions around them (kept on the facts,
    not a dataclass field, so never cached to disk): most files have few, a generated module
    tens of thousands of top-level ones, which must not be searched once per function."""
    kept = facts.__dict__.get("_by_outer")
    if kept is None:
        kept = {}
        for f in facts.functions:
            if f.outer:
                kept.setdefault(f.outer, []).append(f)
        facts.__dict__["_by_outer"] = kept
    return kept


def _nested(facts: FileFacts, fn: FunctionFact) -> list[FunctionFact]:
    """Functions defined inside ``fn`` (at any depth)."""
    scope = f"{fn.outer}.{fn.name}" if fn.outer else fn.name
    index = _by_outer(facts)
    if not index:
        return []
    return [f for outer, inner in index.items() if outer == scope or outer.startswith(scope + ".")
            for f in inner if f is not fn and f.depth > fn.depth]


def _bind(fn: FunctionFact, where: FileFacts, source: str, dec: CallFact | None, facts: FileFacts | None,
          skip_first: bool) -> tuple[dict[str, Option], dict[str, Option], bool]:
    """The values of ``fn``'s parameters for one use: from the use's keywords and positional
    arguments (``dec``; None for a bare use), else their defaults; a parameter the body assigns
    is unknown. Returns (parameters, the use's keywords no parameter takes, whether the use
    passes options qlint cannot read)."""
    params = [p for p in fn.params if p.kind in ("positional", "kwonly")]
    if skip_first and params and params[0].kind == "positional":
        params = params[1:]  # the decorated function itself
    bound: dict[str, Option] = {}
    used = dict(dec.kwargs) if dec is not None else {}
    positional = list(dec.args) if dec is not None else []
    for index, param in enumerate(params):
        if param.name in used:
            bound[param.name] = (used.pop(param.name), facts, "decorator")
        elif param.kind == "positional" and index < len(positional):
            value = positional[index]
            bound[param.name] = (Keyword(param.name, value, value.span), facts, "decorator")
        elif param.default is not None:
            bound[param.name] = (Keyword(param.name, param.default, param.default.span), where, source)
        else:
            bound[param.name] = (None, None, source)
        if param.name in fn.assigned:
            bound[param.name] = (None, None, f"{source} (computed in its body)")
    leftovers = {name: (kw, facts, "decorator") for name, kw in used.items()}
    return bound, leftovers, bool(dec is not None and dec.has_star)


def _substitute(found: DecoratorMatch, params: dict[str, Option], leftovers: dict[str, Option], kwarg: str,
                inner: CallFact, source: str) -> tuple[dict[str, Option], bool, bool]:
    """The options of a match made inside a function, with the function's parameters replaced
    by their values for this use, and ``**kwarg`` by the use's remaining keywords."""
    options: dict[str, Option] = {}
    for name, (kw, where, src) in found.options.items():
        value = kw.value if kw is not None else None
        if value is not None and value.kind == "name" and "." not in value.dotted and value.dotted in params:
            options[name] = params[value.dotted]
        else:
            options[name] = (kw, where, source if src == "decorator" else src)
    passes = bool(kwarg) and inner.double_star == kwarg
    if passes:
        options.update(leftovers)
    hidden = found.hidden and not (passes and inner.has_star and _only_star(inner, kwarg))
    return options, passes, hidden


def _only_star(call: CallFact, name: str) -> bool:
    """The call's only ``*``/``**`` argument is ``**name`` (known to be the factory's options)."""
    return call.double_star == name


def _applied(project: Project, fn: FunctionFact, where: FileFacts, is_target, depth: int
             ) -> list[tuple[DecoratorMatch, CallFact]]:
    """Framework decorators ``fn``'s body applies to its parameter or to a function defined in
    it: ``dramatiq.actor(wrapped, **options)``, ``app.task(bind=True)(fn)``, ``@app.task(...)``
    on a nested wrapper."""
    inside = _nested(where, fn)
    local = {p.name for p in fn.params if p.kind == "positional"} | {f.name for f in inside}
    found = []
    for owner in (fn, *inside):
        for application in owner.applies:
            if application.target not in local and not any(
                    application.target == p.name for p in owner.params):
                continue
            call = application.call
            use = call if application.curried else replace(call, args=call.args[1:], is_call=True)
            match = match_decorator(project, use, is_target, where, depth + 1)
            if match is not None:
                found.append((match, use))
        if owner is not fn:
            for dec in owner.decorators:
                match = match_decorator(project, dec, is_target, where, depth + 1)
                if match is not None:
                    found.append((match, dec))
    return found


def _through_function(project: Project, target: str, function: tuple[FileFacts, FunctionFact], dec: CallFact,
                      is_target, facts, depth) -> DecoratorMatch | None:
    where, fn = function
    source = f"wrapper {target}"
    kwarg = next((p.name for p in fn.params if p.kind == "kwarg"), "")
    if dec.is_call:
        # ``@factory(...)``: the factory returns the decorator.
        params, leftovers, hidden_use = _bind(fn, where, source, dec, facts, skip_first=False)
        candidates: list[tuple[DecoratorMatch, CallFact]] = []
        for ret in fn.returns:
            if ret.kind == "call" and ret.call is not None:
                match = match_decorator(project, ret.call, is_target, where, depth + 1)
                if match is not None:
                    candidates.append((match, ret.call))
            elif ret.kind == "name" and "." not in ret.dotted:
                inner = next((f for f in _nested(where, fn) if f.name == ret.dotted and f.depth == fn.depth + 1), None)
                if inner is not None:
                    candidates += _applied(project, inner, where, is_target, depth)
    else:
        # ``@wrapper``: the function is the decorator and receives the task function.
        params, leftovers, hidden_use = _bind(fn, where, source, None, facts, skip_first=True)
        candidates = _applied(project, fn, where, is_target, depth)
    if not candidates:
        return None
    match, inner = candidates[0]
    options, passes, hidden = _substitute(match, params, leftovers, kwarg, inner, source)
    accepts = dec.is_call and passes and match.accepts_options
    return DecoratorMatch(match.target, options, [target, *match.chain], accepts, hidden or hidden_use)


def _method(facts: FileFacts, cls, name: str) -> FunctionFact | None:
    return next((f for f in facts.functions if f.class_name == cls.name and f.qualname == f"{cls.qualname}.{name}"),
                None)


def _through_class(project: Project, target: str, found, dec: CallFact, is_target, facts, depth
                   ) -> DecoratorMatch | None:
    """``@retryable_task(name=...)`` where ``retryable_task`` is a class: its ``__init__`` takes the
    options (kept on ``self``), its ``__call__`` applies the framework's decorator to the function
    or a wrapper of it, passing the options on as ``**self.<kwargs>``."""
    where, cls = found
    call = _method(where, cls, "__call__")
    if call is None:
        return None
    candidates = _applied(project, call, where, is_target, depth)
    if not candidates:
        return None
    source = f"wrapper {target}"
    init = _method(where, cls, "__init__")
    if init is not None:
        _, leftovers, hidden_use = _bind(init, where, source, dec, facts, skip_first=True)
        stored = any(p.kind == "kwarg" for p in init.params)
    else:
        leftovers, hidden_use, stored = {}, dec.has_star, False
    match, inner = candidates[0]
    kwarg = inner.double_star if stored and inner.double_star.startswith("self.") else ""
    options, passes, hidden = _substitute(match, {}, leftovers if kwarg else {}, kwarg, inner, source)
    if not passes:
        hidden = hidden or bool(dec.kwargs)  # the use's options go where qlint does not follow them
    return DecoratorMatch(match.target, options, [target, *match.chain], passes and match.accepts_options,
                          hidden or hidden_use)


def may_be_wrapper(facts: FileFacts, fn: FunctionFact) -> bool:
    """Cheap test before resolving a module-level function as a wrapper or factory: it (or a
    function inside it) applies something to a local function, or it returns a call or a
    nested function."""
    if fn.depth != 0 or fn.class_name is not None:
        return False
    if fn.applies or any(r.kind == "call" for r in fn.returns):
        return True
    inside = _nested(facts, fn)
    return any(f.applies or f.decorators for f in inside)


def wrapper_names(project: Project, is_target: Callable[[str], bool]) -> set[str]:
    """Names a module must spell to declare a task through a project wrapper: module-level
    assignments and functions (parsed files only) that lead to a framework decorator. The
    prefilter's closure parses every file that spells one."""
    names: set[str] = set()
    with project.parsed_only():
        for facts in project.parsed_files():
            candidates = [name for name, kw in facts.assigns.items() if kw.value.kind == "call"]
            candidates += [fn.name for fn in facts.functions if may_be_wrapper(facts, fn)]
            candidates += [c.name for c in facts.classes if c.qualname == c.name and "__call__" in c.methods]
            for name in candidates:
                if name in names:
                    continue
                qualified = f"{facts.module}.{name}"
                for is_call in (False, True):
                    fake = CallFact(dotted=name, qualified=qualified, span=Span(0, 0), is_call=is_call)
                    if match_decorator(project, fake, is_target, facts) is not None:
                        names.add(name)
                        break
    return names

