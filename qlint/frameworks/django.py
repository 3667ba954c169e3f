"""What qlint knows about Django (and SQLAlchemy) where task code meets the database.

Transactions (``transaction.atomic`` as a ``with`` item or a decorator, ``on_commit``),
look-ups whose value is a model instance (``Model.objects.get(...)``,
``get_object_or_404``, ``request.user``, SQLAlchemy ``session.get(Model, id)``) and model
classes (a project class whose base chain reaches ``django.db.models.Model`` or an
SQLAlchemy declarative base). Rules read these through the functions below and never
spell a Django name themselves.

Only shapes qlint can verify are recognised: a look-up counts when its model class
resolves (a project class, or a model class of Django itself); a name bound in another
function, a loop over a queryset or a value fetched through a helper is not followed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Param, Span, Value
from qlint.lint.model import Project, Site

TRANSACTION_MODULE = "django.db.transaction"
ATOMIC = frozenset({"django.db.transaction.atomic"})
ON_COMMIT = frozenset({"django.db.transaction.on_commit"})
GET_OBJECT_OR_404 = frozenset({"django.shortcuts.get_object_or_404"})
GET_USER_MODEL = frozenset({"django.contrib.auth.get_user_model"})
DJANGO_MODEL = frozenset({"django.db.models.Model", "django.db.models.base.Model"})
# Manager attributes a look-up starts from (``Order.objects.get(...)``).
MANAGERS = frozenset({"objects", "_default_manager", "_base_manager"})
# QuerySet / Manager methods that return one model instance (or, for the ``*_or_create``
# pair, an ``(instance, created)`` tuple whose first item is one).
INSTANCE_METHODS = frozenset({"get", "create", "first", "last", "latest", "earliest", "get_or_create",
                              "update_or_create", "aget", "acreate", "afirst", "alast", "aget_or_create"})
# QuerySet methods after which rows are no longer model instances.
NON_INSTANCE_METHODS = frozenset({"values", "values_list", "count", "exists", "aggregate", "dates", "datetimes"})
# SQLAlchemy: declarative bases, and the calls that return one mapped instance.
SQLALCHEMY_BASES = frozenset({
    "sqlalchemy.orm.DeclarativeBase", "sqlalchemy.orm.DeclarativeBaseNoMeta",
    "sqlalchemy.orm.decl_api.DeclarativeBase", "sqlalchemy.orm.decl_api.DeclarativeBaseNoMeta",
})
SQLALCHEMY_BASE_FACTORIES = frozenset({
    "sqlalchemy.orm.declarative_base", "sqlalchemy.ext.declarative.declarative_base",
    "sqlalchemy.orm.decl_api.declarative_base",
})
FLASK_SQLALCHEMY = frozenset({"flask_sqlalchemy.SQLAlchemy"})
QUERY_INSTANCE_METHODS = frozenset({"get", "first", "one", "one_or_none", "get_or_404", "first_or_404",
                                    "one_or_404"})


# -- transactions --------------------------------------------------------------------------

def _is_atomic(project: Project, qualified: str) -> bool:
    if not qualified:
        return False
    if qualified in ATOMIC:
        return True
    with project.parsed_only():
        return project.canonical(qualified) in ATOMIC


def _call_text(data: bytes, after: int) -> bytes:
    """The parenthesized arguments right after a callee (``(using="replica")``), or b""."""
    i = after
    while i < len(data) and data[i:i + 1] in (b" ", b"\t"):
        i += 1
    if data[i:i + 1] != b"(":
        return b""
    depth = 0
    for j in range(i, min(len(data), i + 2000)):
        ch = data[j:j + 1]
        if ch in (b"(", b"[", b"{"):
            depth += 1
        elif ch in (b")", b"]", b"}"):
            depth -= 1
            if depth == 0:
                return data[i:j + 1]
    return b""


_REPLICA = re.compile(rb"using\s*=\s*[^,)]*replica", re.IGNORECASE)


def atomic_block(project: Project, call: CallFact, fn: FunctionFact | None,
                 data: bytes = b"") -> tuple[str, Span] | None:
    """Where ``call`` runs inside a database transaction that writes: ``with
    transaction.atomic():`` around it, or ``@transaction.atomic`` on its function (how it is
    written, where). A transaction on a read replica (``atomic(using=REPLICA)``) writes
    nothing a task could miss and is not one."""
    for item in reversed(call.with_items):
        if _is_atomic(project, item.qualified):
            arguments = _call_text(data, item.span.end) if data else b""
            if _REPLICA.search(arguments):
                continue
            return f"`with {item.dotted}({'...' if arguments.strip(b'() ') else ''})`", item.span
    if fn is not None:
        for dec in fn.decorators:
            if _is_atomic(project, dec.qualified):
                using = dec.kwargs.get("using")
                if using is not None and "replica" in (using.value.dotted + str(using.value.value)).lower():
                    continue
                return f"`@{dec.dotted}{'()' if dec.is_call else ''}` on `{fn.name}`", dec.span
    return None


def is_on_commit(project: Project, call: CallFact) -> bool:
    if call.method != "on_commit" and call.dotted != "on_commit":
        return False
    if call.qualified in ON_COMMIT:
        return True
    with project.parsed_only():
        return project.canonical(call.qualified) in ON_COMMIT


def deferred_by_on_commit(project: Project, call: CallFact, fn: FunctionFact | None, facts: FileFacts) -> bool:
    """``transaction.on_commit(lambda: task.delay(x))``: the call is an argument of ``on_commit``."""
    calls = fn.calls if fn is not None else facts.calls
    return any(other is not call and other.span.start <= call.span.start and call.span.end <= other.span.end
               and is_on_commit(project, other) for other in calls)


def transaction_names(facts: FileFacts) -> tuple[str | None, str | None]:
    """The local names a file binds to ``django.db.transaction`` and to its ``on_commit``."""
    module = next((local for local, q in facts.imports.items() if q == TRANSACTION_MODULE), None)
    on_commit = next((local for local, q in facts.imports.items() if q in ON_COMMIT), None)
    return module, on_commit


# -- model classes ---------------------------------------------------------------------------

def _external_model(qualified: str) -> bool:
    """A model class of Django itself (``django.contrib.auth.models.User``, ``AbstractUser``)."""
    return qualified in DJANGO_MODEL or qualified.startswith("django.contrib.") and ".models." in qualified


def is_model_class(project: Project, qualified: str, _depth: int = 0) -> bool:
    """A Django model or an SQLAlchemy mapped class: a project class whose bases reach
    ``django.db.models.Model``, a Django contrib model, a declarative base, or
    ``db.Model`` of a Flask-SQLAlchemy ``db``; ``User = get_user_model()``."""
    if _depth > 8 or not qualified:
        return False
    target = project.canonical(qualified)
    if _external_model(target) or target in SQLALCHEMY_BASES:
        return True
    assigned = project.assignment(target)
    if assigned is not None:
        value = assigned[1].value
        if value.kind == "call" and value.call is not None:
            q = project.canonical(value.call.qualified)
            return q in GET_USER_MODEL or q in SQLALCHEMY_BASE_FACTORIES
        return False
    head, _, last = target.rpartition(".")
    if last == "Model" and head:
        owner = project.assignment(head)
        if owner is not None and owner[1].value.kind == "call" and owner[1].value.call is not None and \
                project.canonical(owner[1].value.call.qualified) in FLASK_SQLALCHEMY:
            return True
    found = project.class_named(target)
    if found is None:
        return False
    facts, cls = found
    return any(base.kind == "name" and base.qualified != target and is_model_class(project, base.qualified, _depth + 1)
               for base in cls.bases)


def _model_of_receiver(project: Project, call: CallFact) -> str | None:
    """``Order`` in ``Order.objects.get(...)`` (through any queryset methods chained in between)."""
    chain = _chain(call)
    if any(c.method in NON_INSTANCE_METHODS for c in chain):
        return None
    first = chain[0]
    owner, _, manager = first.receiver.rpartition(".")
    if first.receiver and manager in MANAGERS and owner:
        qualified = first.qualified.rpartition(".")[0].rpartition(".")[0]
        return owner if is_model_class(project, qualified) else None
    return None


@dataclass
class Lookup:
    """Why a value is a model instance: ``Order.objects.get(...)``, ``request.user``."""

    text: str  # the value, for messages: "`order`", "`request.user`", "`Order.objects.get(...)`"
    bound_from: str = ""  # the look-up a name is bound from: "`Order.objects.get(...)`"
    span: Span | None = None  # where that look-up is


def _chain(call: CallFact) -> list[CallFact]:
    """``A.objects.filter(...).first()`` as [filter(...), first()]."""
    chain = [call]
    while chain[0].inner is not None and len(chain) < 16:
        chain.insert(0, chain[0].inner)
    return chain


def _describe(call: CallFact) -> str:
    chain = _chain(call)
    text = chain[0].dotted or chain[0].method
    for c in chain[1:]:
        text += f"(...).{c.method}"
    return f"`{text}(...)`"


def instance_lookup(project: Project, facts: FileFacts, call: CallFact) -> str | None:
    """A call that returns a model instance, described for a message; else None."""
    if call.method in INSTANCE_METHODS:
        model = _model_of_receiver(project, call)
        if model is not None:
            return _describe(call)
    q = project.canonical(call.qualified) if call.qualified else ""
    if q in GET_OBJECT_OR_404 or call.dotted == "get_object_or_404" and q.startswith("django."):
        return f"`{call.dotted}(...)`"
    # SQLAlchemy: ``session.get(Model, id)``, ``session.query(Model).filter(...).first()``,
    # Flask-SQLAlchemy ``Model.query.get(id)``.
    if call.method == "get" and "session" in call.receiver.rpartition(".")[2].lower() and call.args and \
            call.args[0].kind == "name" and is_model_class(project, call.args[0].qualified):
        return f"`{call.dotted}(...)`"
    if call.method in QUERY_INSTANCE_METHODS:
        first = _chain(call)[0]
        if first.method == "query" and "session" in first.receiver.rpartition(".")[2].lower() and first.args and \
                first.args[0].kind == "name" and is_model_class(project, first.args[0].qualified):
            return _describe(call)
        owner, _, attr = first.receiver.rpartition(".")
        if attr == "query" and owner and is_model_class(project, first.qualified.rpartition(".")[0].rpartition(".")[0]):
            return _describe(call)
    return None


def is_request_user(value: Value) -> bool:
    """``request.user`` / ``self.request.user`` in a view: the logged-in user, a model instance."""
    return value.kind == "name" and (value.dotted == "request.user" or value.dotted.endswith(".request.user"))


DELETE_SIGNALS = ("pre_delete", "post_delete")


def receives_deletion(fn: FunctionFact | None) -> bool:
    """``@receiver(post_delete, sender=Order)``: the row is going away, so a snapshot of it is
    the only thing a task can be given."""
    if fn is None:
        return False
    for dec in fn.decorators:
        if dec.dotted.rpartition(".")[2] != "receiver" or not dec.args:
            continue
        signals = dec.args[0].elements if dec.args[0].kind == "seq" else [dec.args[0]]
        if any(s.kind == "name" and s.dotted.rpartition(".")[2] in DELETE_SIGNALS for s in signals):
            return True
    return False


def model_instance(project: Project, facts: FileFacts, fn: FunctionFact | None, value: Value) -> Lookup | None:
    """Why ``value`` (an argument as written) is a model instance, when qlint can tell."""
    if receives_deletion(fn):
        return None
    if is_request_user(value):
        return Lookup(f"`{value.dotted}`")
    if value.kind == "call" and value.call is not None:
        found = instance_lookup(project, facts, value.call)
        return Lookup(found) if found else None
    if value.kind == "name" and "." not in value.dotted and fn is not None:
        param = next((p for p in fn.params if p.name == value.dotted), None)
        if param is not None:
            if value.dotted in fn.local_calls:
                return None  # rebound in the body: which value reaches the call depends on the flow
            model = model_annotation(project, facts, param) if param.annotation else None
            return Lookup(f"`{value.dotted}`", f"parameter `{param.name}: {param.annotation}`") if model else None
        bound = fn.local_calls.get(value.dotted)
        if bound is not None and bound.call is not None:
            found = instance_lookup(project, facts, bound.call)
            if found:
                return Lookup(f"`{value.dotted}`", found, bound.span)
    return None


def _annotation_names(text: str) -> list[str]:
    """The class names an annotation may stand for: ``Order``, ``"Order"``, ``Optional[Order]``,
    ``Order | None``, ``models.Order``; not containers (``list[Order]`` is a list)."""
    text = text.strip().strip("'\"").strip()
    for wrapper in ("Optional[", "typing.Optional["):
        if text.startswith(wrapper) and text.endswith("]"):
            text = text[len(wrapper):-1].strip()
    parts = [p.strip().strip("'\"") for p in text.split("|")]
    names = [p for p in parts if p and p != "None"]
    return [n for n in names if all(seg.isidentifier() for seg in n.split("."))]


def model_annotation(project: Project, facts: FileFacts, param: Param) -> str | None:
    """The model class a parameter is annotated with (``user: User``), as written."""
    for name in _annotation_names(param.annotation):
        head, _, rest = name.partition(".")
        if head in facts.imports:
            qualified = facts.imports[head] + (f".{rest}" if rest else "")
        else:
            qualified = f"{facts.module}.{name}"
        if is_model_class(project, qualified):
            return name
    return None


# -- where a call is ----------------------------------------------------------------------------

def enclosing_function(site: Site) -> FunctionFact | None:
    """The function a site's call is in (``site.function`` where the framework fills it)."""
    if site.function is not None or site.call is None:
        return site.function
    call = site.call
    for fn in site.file.functions:
        if any(c is call or c.span.start == call.span.start and c.span.end == call.span.end for c in fn.calls):
            return fn
    return None
