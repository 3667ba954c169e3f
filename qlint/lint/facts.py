"""Per-file facts: what the one traversal of a module records.

Facts are symbolic, not verdicts: a value is kept as a literal, a dotted name, a call or
an arithmetic expression, and the project model folds it once every module is known
(a constant defined in another module, ``timedelta(minutes=5)``, an environment default).
Offsets are into ``SourceFile.utf8``. Facts are plain dataclasses so they pickle across
the process pool and into the cache.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

_BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass
class Span:
    start: int
    end: int


@dataclass
class Value:
    """A symbolic expression.

    kind: ``const`` (``value`` is the Python literal), ``name`` (``dotted`` source text,
    ``qualified`` through the file's imports), ``call`` (``call``), ``seq``
    (``elements``), ``dict`` (``items``), ``binop`` (``op``, ``left``, ``right``),
    ``unary`` (``op``, ``left``) or ``unknown``.
    """

    kind: str
    span: Span
    value: Any = None
    dotted: str = ""
    qualified: str = ""
    call: "CallFact | None" = None
    elements: list["Value"] = field(default_factory=list)
    items: list[tuple["Value", "Value"]] = field(default_factory=list)
    op: str = ""
    left: "Value | None" = None
    right: "Value | None" = None

    @property
    def is_const(self) -> bool:
        return self.kind == "const"


@dataclass
class Keyword:
    """``name=value`` in a call, or ``name = value`` as an assignment or class attribute."""

    name: str
    value: Value
    span: Span  # the whole keyword / assignment
    # For keywords in a call: where the text between this keyword and the next begins/ends,
    # so a fixer can delete a keyword with its comma.
    comma_end: int | None = None


@dataclass
class CallFact:
    dotted: str  # the callee as written, e.g. "app.task", "" when not a dotted name
    qualified: str  # the callee through the file's import table, e.g. "proj.celery.app.task"
    span: Span
    is_call: bool = True  # False for a bare decorator such as ``@app.task``
    args: list[Value] = field(default_factory=list)
    kwargs: dict[str, Keyword] = field(default_factory=dict)
    has_star: bool = False  # ``*args`` or ``**kwargs``: options we cannot see
    double_star: str = ""  # the dotted name of the first ``**name`` argument (a factory passing its options on)
    lpar: int | None = None  # offset just after "("
    rpar: int | None = None  # offset of ")"
    func_end: int = 0  # offset just after the callee expression
    receiver: str = ""  # for method calls: the dotted receiver, e.g. "self" in self.retry(...)
    method: str = ""  # for method calls: the attribute name, e.g. "retry"
    # Context of the call inside its function (filled for calls recorded in bodies).
    handler: "HandlerFact | None" = None
    statement: Span | None = None
    awaited: bool = False  # ``await <call>``
    args_end: int | None = None  # end of the last argument, its parentheses included: ``f((a, b))``
    # Where the call sits inside its function (or module): the names enclosing ``for`` loops and
    # comprehensions bind (``in_loop`` also for ``while``), and the context managers of enclosing
    # ``with`` statements, as names (``transaction.atomic`` for ``with transaction.atomic():``).
    loop_vars: list[str] = field(default_factory=list)
    in_loop: bool = False
    with_items: list["Value"] = field(default_factory=list)
    inner: "CallFact | None" = None  # the call this method is called on: ``Queue(...)`` in ``Queue(...).enqueue(f)``


@dataclass
class HandlerFact:
    """An ``except`` clause: what it catches and how it ends."""

    span: Span  # from ``except`` to the colon
    types: list[str]  # qualified names of the caught classes; [] for a bare ``except:``
    name: str | None  # the ``as`` name
    type_end: int | None  # offset after the caught type, where `` as exc`` can go
    reraises: bool = False  # contains a bare ``raise`` or ``raise X from <name>``
    calls_retry: bool = False
    top_level: bool = False  # the try is a top-level statement of the function body
    try_index: int = 0  # handlers of one ``try`` share it; they are listed in source order


@dataclass
class Param:
    name: str
    annotation: str = ""
    kind: str = "positional"  # positional | vararg | kwonly | kwarg
    has_default: bool = False
    default: "Value | None" = None  # the default's expression (a decorator factory's option defaults)


@dataclass
class Application:
    """A callable applied to a function the enclosing scopes hold (a parameter, or a function
    defined inside them): ``dramatiq.actor(wrapped, **options)`` (``curried`` False) or
    ``app.task(bind=True)(fn)`` (``curried`` True, ``call`` is ``app.task(bind=True)``). What a
    decorator factory does to the function it is given."""

    call: "CallFact"
    target: str  # the local name applied to
    curried: bool = False


@dataclass
class FunctionFact:
    name: str
    qualname: str
    span: Span  # from the first decorator (or ``def``) to the end of the header line
    header: Span  # from the first decorator (or ``def``) to the ``:`` of the def
    def_start: int
    is_async: bool
    decorators: list[CallFact]
    params: list[Param]
    self_attrs: dict[str, Span] = field(default_factory=dict)  # attribute -> first use of ``self.<attr>``
    calls: list[CallFact] = field(default_factory=list)  # method calls of interest inside the body
    handlers: list[HandlerFact] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # every identifier used, for picking fresh names
    returns: list[Value] = field(default_factory=list)  # ``return <call>`` / ``return <name>`` values (factories)
    local_calls: dict[str, Value] = field(default_factory=dict)  # ``name = [await] call(...)`` in the body
    raises: list[Value] = field(default_factory=list)  # ``raise <expr>`` in the body (not nested functions)
    subscripted: set[str] = field(default_factory=set)  # names read with ``name[...]`` in the body
    class_name: str | None = None  # enclosing class for methods
    depth: int = 0  # 0 for module-level functions
    outer: str = ""  # the enclosing functions' names, outermost first ("actor.decorator"); "" for none
    applies: list[Application] = field(default_factory=list)  # callables applied to local functions
    assigned: set[str] = field(default_factory=set)  # names the body assigns (a parameter overwritten)


@dataclass
class ClassFact:
    name: str
    qualname: str
    span: Span
    header: Span
    bases: list[Value]
    keywords: dict[str, Keyword]
    attrs: dict[str, Keyword]
    methods: list[str]
    decorators: list[CallFact] = field(default_factory=list)
    body_insert: int | None = None  # where a new class-body statement can go (after a docstring)
    body_indent: str = ""


@dataclass
class AttrAssign:
    """``<target>.<attr> = value`` or ``<target>["key"] = value`` (e.g. ``app.conf.x = 1``)."""

    target: str  # dotted receiver, e.g. "app.conf"
    qualified: str
    key: str
    keyword: Keyword


@dataclass
class FileFacts:
    path: str
    module: str  # dotted module name, e.g. "proj.tasks"
    is_package: bool = False
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_imports: list[str] = field(default_factory=list)
    assigns: dict[str, Keyword] = field(default_factory=dict)  # module-level NAME = value (last wins)
    functions: list[FunctionFact] = field(default_factory=list)
    classes: list[ClassFact] = field(default_factory=list)
    calls: list[CallFact] = field(default_factory=list)  # module-level calls of interest
    attr_assigns: list[AttrAssign] = field(default_factory=list)
    error: str | None = None  # parse error, when the file could not be read as Python
    exact_offsets: bool = True  # False when libcst's tree does not reproduce the text exactly
    # ``noqa.python_comments`` of the file, kept with the facts so a warm run need not tokenize.
    noqa_comments: list[tuple] | None = None

    def qualify(self, dotted: str) -> str:
        """A dotted name as written in this file, through its imports: ``exceptions.Reject`` ->
        ``celery.exceptions.Reject``; a builtin the file does not rebind -> ``builtins.X``;
        anything else is the file's own (``proj.tasks.X``). The extractor qualifies every
        recorded name this way."""
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            base = self.imports[head]
            return f"{base}.{rest}" if rest else base
        if head in _BUILTIN_NAMES and head not in self.assigns:
            return f"builtins.{dotted}"
        return f"{self.module}.{dotted}"
