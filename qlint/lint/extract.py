"""The one traversal of a candidate module, recording ``FileFacts``.

The tree is CPython's own (``ast``): its parser is written in C and is some fifty times
faster than libcst's, and its positions are UTF-8 byte columns, which is exactly how qlint
counts offsets. The few positions ``ast`` does not keep (a header's colon, a decorator's
``@``, the parentheses around an argument) are read from the bytes with a small scanner
that knows strings and comments. Fixes are byte edits at these offsets, so every byte a
fix does not mean to change stays as it was; the fix loop re-parses what it wrote.
Names are resolved through an import table built during the same walk.
"""

from __future__ import annotations

import ast
import warnings

from qlint.lint.facts import (
    Application,
    AttrAssign,
    CallFact,
    ClassFact,
    FileFacts,
    FunctionFact,
    HandlerFact,
    Keyword,
    Param,
    Span,
    Value,
)
from qlint.lint import chunks, newer_syntax
from qlint.lint.modules import module_name
from qlint.lint.scan import closing_parens_end, comment_end, header_colon, line_starts, matching_close
from qlint.lint.source import SourceFile

# Method names whose calls are recorded: rules and frameworks read nothing else.
RECORDED_METHODS = frozenset({
    "retry", "apply_async", "delay", "update", "config_from_object", "setdefault", "add_periodic_task",
    "register_task", "send_task", "autodiscover_tasks", "get", "wait", "join", "s", "si", "signature",
    "enqueue", "enqueue_call", "enqueue_in", "enqueue_at", "send", "send_with_options", "kiq", "schedule",
    "enqueue_job", "update_state", "config_from_envvar", "config_from_cmdline",
    # Other frameworks' enqueue, result and configuration methods.
    "enqueue_many", "wait_result", "result", "kicker", "with_labels", "with_middlewares", "add_middlewares",
    "add_middleware", "with_serializer", "set_encoder", "set_broker", "call", "run",
    # Blocking I/O a task body may do (requests/httpx verbs, sleep, subprocess, sockets).
    "post", "put", "patch", "delete", "head", "options", "request", "stream", "sleep", "check_call",
    "check_output", "Popen", "urlopen", "create_connection", "SMTP", "SMTP_SSL", "FTP", "FTP_TLS", "Client",
    "Session", "AsyncClient",
    # Failure sinks, transactions and result reads (issue 4's rules).
    "connect", "init", "on_commit", "delay_on_commit", "apply_async_on_commit", "create", "first", "last",
    "AsyncResult", "register",
    # Input validation inside a task body (QLT505/QLT506).
    "model_validate", "parse_obj", "validate", "load", "validate_python", "full_clean", "is_valid",
})
# Plain names whose calls are recorded (``from requests import get`` spells ``get(...)``).
RECORDED_FUNCTIONS = RECORDED_METHODS | frozenset({
    "Queue", "Worker", "Retry", "create_pool", "func", "cron", "PickleEncoder", "PickleSerializer",
    "Exchange", "get_object_or_404", "group", "chord", "chain", "chunks", "allow_join_result", "Reject",
    "isinstance", "TypeAdapter",
})
# Module-level method calls recorded besides those in function bodies.
MODULE_METHODS = frozenset({
    "update", "config_from_object", "config_from_envvar", "config_from_cmdline", "setdefault", "add_periodic_task",
    "register_task", "add_middleware",
    "add_middlewares", "with_middlewares", "with_serializer", "set_encoder", "set_broker", "enqueue",
    "enqueue_call", "enqueue_in", "enqueue_at", "enqueue_many", "send_with_options",
})
_BINOPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**", ast.Mod: "%",
}
_SIMPLE = (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return, ast.Raise, ast.Pass, ast.Break,
           ast.Continue, ast.Delete, ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.Assert)
if hasattr(ast, "TypeAlias"):  # Python 3.12
    _SIMPLE += (ast.TypeAlias,)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
# Nodes without children or facts: contexts, operators, constants.
_LEAVES = frozenset({ast.Load, ast.Store, ast.Del, ast.Constant, *ast.operator.__subclasses__(),
                     *ast.unaryop.__subclasses__(), *ast.boolop.__subclasses__(), *ast.cmpop.__subclasses__()})


def dotted_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and (node.value is None or node.value is True or node.value is False):
        return str(node.value)  # ``None.__ne__``: libcst's tree, and ours, spell it as a name
    if isinstance(node, ast.Attribute):
        head = dotted_name(node.value)
        return f"{head}.{node.attr}" if head else ""
    return ""


def _resolve_relative(module: str, is_package: bool, level: int, target: str) -> str:
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    base = ".".join(parts)
    if target:
        return f"{base}.{target}" if base else target
    return base


class _Extractor:
    def __init__(self, facts: FileFacts, data: bytes) -> None:
        self.facts = facts
        self.data = data
        self.line_starts = line_starts(data)
        self.functions: list[FunctionFact] = []
        self.classes: list[ClassFact] = []
        self.handlers: list[HandlerFact] = []
        self.statement: Span | None = None  # the enclosing line of simple statements
        self.try_top_level: list[bool] = []
        self.try_index: list[int] = []  # which ``try`` a handler belongs to (numbered per file)
        self.named: list[Value | CallFact] = []  # everything whose qualified name is filled in at the end
        self._awaited: ast.AST | None = None
        self._try_count = 0
        # Enclosing loops and ``with`` statements, per function scope (saved across nested defs).
        self.loops: list[list[str]] = []  # one entry per enclosing loop: the names it binds
        self.withs: list[list[Value]] = []
        self._saved_functions: list[list[FunctionFact]] = []
        self._bodies: list[list[ast.stmt]] = []  # the body of each function on ``functions``
        # Per function on ``functions``: its parameters and the functions defined in its body,
        # the local callables a decorator factory applies a framework decorator to.
        self._callables: list[set[str]] = []
        self._spans: dict[tuple[int, int], Span] = {}
    # -- positions -------------------------------------------------------------------
    def span(self, node: ast.AST) -> Span:
        """One ``Span`` object per range (a call and its value share one): fewer objects to cache
        and to read back on every warm run. Spans are never changed once made."""
        starts = self.line_starts
        return self.shared_span(starts[node.lineno - 1] + node.col_offset,
                                starts[node.end_lineno - 1] + node.end_col_offset)

    def shared_span(self, start: int, end: int) -> Span:
        found = self._spans.get((start, end))
        if found is None:
            found = self._spans[(start, end)] = Span(start, end)
        return found

    def start(self, node: ast.AST) -> int:
        return self.line_starts[node.lineno - 1] + node.col_offset

    def end(self, node: ast.AST) -> int:
        return self.line_starts[node.end_lineno - 1] + node.end_col_offset

    def _code(self, node: ast.AST) -> str:
        s = self.span(node)
        return self.data[s.start:s.end].decode("utf-8")

    # -- traversal -------------------------------------------------------------------
    def visit(self, node: ast.AST) -> None:
        method = _DISPATCH.get(type(node))
        if method is None:
            self.generic_visit(node)
        else:
            method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        # ``ast.iter_child_nodes`` without its generators, and without the leaves that hold
        # nothing (``ctx=Load()``, operators, constants): most of a tree's nodes.
        visit = self.visit
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST) and type(item) not in _LEAVES:
                        visit(item)
            elif isinstance(value, ast.AST) and type(value) not in _LEAVES:
                visit(value)

    def visit_body(self, body: list[ast.stmt]) -> None:
        """Visit a suite, knowing which line of simple statements each statement is on (the
        statement span calls report their noqa against and insert fixes before)."""
        data = self.data
        saved = self.statement
        index = 0
        count = len(body)
        while index < count:
            first = body[index]
            if not isinstance(first, _SIMPLE):
                self.statement = None
                self.visit(first)
                index += 1
                continue
            last = index
            while last + 1 < count and isinstance(body[last + 1], _SIMPLE) and \
                    body[last + 1].lineno == body[last].end_lineno:
                last += 1
            start = self.start(first)
            line_start = self.line_starts[first.lineno - 1]
            # Statements after a compound header's colon (``if x: f()``) are not a line of their own.
            own_line = not data[line_start:start].strip()
            self.statement = self.shared_span(start, self.end(body[last])) if own_line else None
            for stmt in body[index:last + 1]:
                self.visit(stmt)
            index = last + 1
        self.statement = saved

    def visit_suites(self, node: ast.AST) -> None:
        for name, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self.visit_body(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    # -- values ----------------------------------------------------------------------
    def value(self, node: ast.expr) -> Value:
        span = self.span(node)
        kind = type(node)
        if kind is ast.Constant:
            if node.value is Ellipsis:
                return Value("unknown", span)
            return Value("const", span, value=node.value)
        if kind is ast.Name or kind is ast.Attribute:
            dotted = dotted_name(node)
            if dotted:
                v = Value("name", span, dotted=dotted)
                self.named.append(v)
                return v
            return Value("unknown", span)
        if kind is ast.Tuple or kind is ast.List or kind is ast.Set:
            if kind is ast.Tuple:
                span = self._inside_own_parens(span, node.elts)
            elements = []
            for el in node.elts:
                if isinstance(el, ast.Starred):
                    elements.append(Value("unknown", self.span(el)))
                else:
                    elements.append(self.value(el))
            return Value("seq", span, elements=elements)
        if kind is ast.Dict:
            items = []
            for key, val in zip(node.keys, node.values):
                if key is None:  # ``**other``
                    star = Span(self.data.rfind(b"**", 0, self.start(val)),
                                closing_parens_end(self.data, self.end(val), span.end))
                    items.append((Value("unknown", star), Value("unknown", star)))
                else:
                    items.append((self.value(key), self.value(val)))
            return Value("dict", span, items=items)
        if kind is ast.Call:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "total_seconds" and isinstance(
                    func.value, ast.Call) and not node.args and not node.keywords:
                # ``timedelta(...).total_seconds()`` folds like the timedelta itself.
                return self.value(func.value)
            return Value("call", span, call=self.call(node))
        if kind is ast.GeneratorExp and self.data[span.start] == 0x28:  # ``ast`` includes its parentheses
            return Value("unknown", self._trimmed(span.start + 1, span.end - 1))
        if kind is ast.BinOp and type(node.op) in _BINOPS:
            return Value("binop", span, op=_BINOPS[type(node.op)], left=self.value(node.left),
                         right=self.value(node.right))
        if kind is ast.UnaryOp and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand)
            minus = isinstance(node.op, ast.USub)
            if operand.is_const and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
                return Value("const", span, value=-operand.value if minus else operand.value)
            return Value("unary", span, op="-" if minus else "+", left=operand)
        return Value("unknown", span)

    def _inside_own_parens(self, span: Span, elements: list[ast.expr]) -> Span:
        """A tuple's span without the parentheses that make it (``ast`` includes them; a value's
        span never has them, so replacing it keeps them): ``(a, b)`` but not ``(a), (b)``."""
        data = self.data
        if data[span.start] != 0x28 or data[span.end - 1] != 0x29:
            return span
        if matching_close(data, span.start, span.end) != span.end - 1:
            return span
        inner = self._trimmed(span.start + 1, span.end - 1)
        if elements:  # up to the last element and its comma, not a comment after them
            last = closing_parens_end(data, self.end(elements[-1]), inner.end)
            comma = self._trimmed(last, inner.end).start
            inner.end = comma + 1 if comma < inner.end and data[comma] == 0x2C else last
        return inner

    def _trimmed(self, start: int, end: int) -> Span:
        """``start``..``end`` without the blanks and comment lines at either end."""
        data = self.data
        while start < end:
            c = data[start]
            if c == 0x23:
                start = comment_end(data, start, end)
            elif c in b" \t\f\r\n\\":
                start += 1
            else:
                break
        while end > start and data[end - 1] in b" \t\f\r\n\\":
            end -= 1
        return Span(start, end)

    def _arguments(self, node: ast.Call) -> list[ast.AST]:
        """Positional arguments and keywords in source order (``f(*a, k=1, *b)`` interleaves)."""
        if not node.keywords or not node.args:
            return [*node.args, *node.keywords]
        return sorted([*node.args, *node.keywords], key=lambda a: (a.lineno, a.col_offset))

    def call(self, node: ast.Call, *, record_context: bool = False) -> CallFact:
        span = self.span(node)
        func = node.func
        func_end = self.end(func)
        dotted = dotted_name(func)
        fact = CallFact(dotted=dotted, qualified="", span=span, func_end=func_end)
        if isinstance(func, ast.Attribute):
            fact.receiver = dotted_name(func.value)
            fact.method = func.attr
            inner = func.value.value if isinstance(func.value, ast.Await) else func.value
            if isinstance(inner, ast.Call):
                # ``Broker(...).with_middlewares(...)``, ``Queue(...).enqueue(...)``: keep the chain.
                fact.inner = self.call(inner)
        elif isinstance(func, ast.Call):
            fact.inner = self.call(func)  # ``group(...)()``: the call whose result is called
        data = self.data
        fact.lpar = data.find(b"(", func_end, span.end) + 1
        fact.rpar = span.end - 1
        args = self._arguments(node)
        if args:
            last = args[-1]
            last_end = self.end(last)
            if isinstance(last, ast.GeneratorExp) and last_end > fact.rpar:  # ``f(x for x in y)``
                last_end = self._trimmed(self.start(last) + 1, last_end - 1).end
            fact.args_end = closing_parens_end(data, last_end, fact.rpar)
        for index, arg in enumerate(args):
            if isinstance(arg, ast.Starred):
                fact.has_star = True
            elif isinstance(arg, ast.keyword):
                if arg.arg is None:
                    fact.has_star = True
                    if not fact.double_star:
                        fact.double_star = dotted_name(arg.value)
                    continue
                nxt = self.start(args[index + 1]) if index + 1 < len(args) else None
                fact.kwargs[arg.arg] = Keyword(arg.arg, self.value(arg.value), self.span(arg), comma_end=nxt)
            else:
                fact.args.append(self.value(arg))
        if dotted:
            self.named.append(fact)
        if record_context:
            fact.handler = self.handlers[-1] if self.handlers else None
            fact.statement = self.statement
            fact.in_loop = bool(self.loops)
            fact.loop_vars = [name for names in self.loops for name in names]
            fact.with_items = [item for items in self.withs for item in items]
        return fact

    def decorator(self, expr: ast.expr) -> CallFact:
        if isinstance(expr, ast.Call):
            return self.call(expr)
        span = self.span(expr)
        dotted = dotted_name(expr)
        fact = CallFact(dotted=dotted, qualified="", span=span, is_call=False, func_end=span.end)
        if isinstance(expr, ast.Attribute):
            fact.receiver = dotted_name(expr.value)
            fact.method = expr.attr
        if dotted:
            self.named.append(fact)
        return fact

    def _at(self, expr: ast.expr) -> int:
        """The ``@`` of a decorator."""
        return self.data.rfind(b"@", self.line_starts[expr.lineno - 1], self.start(expr))

    # -- imports ---------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname is not None:
                self.facts.imports[alias.asname] = alias.name
            else:
                head = alias.name.split(".")[0]
                self.facts.imports.setdefault(head, head)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        target = node.module or ""
        level = node.level or 0
        base = _resolve_relative(self.facts.module, self.facts.is_package, level, target) if level else target
        for alias in node.names:
            if alias.name == "*":
                self.facts.star_imports.append(base)
                return
            local = alias.asname or alias.name
            self.facts.imports[local] = f"{base}.{alias.name}" if base else alias.name

    # -- statements ------------------------------------------------------------------
    @property
    def at_module_level(self) -> bool:
        return not self.functions and not self.classes

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assignment(node.targets, node.value, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._assignment([node.target], node.value, node)
        self.generic_visit(node)

    def _assignment(self, targets: list[ast.expr], value_node: ast.expr, node: ast.stmt) -> None:
        value = None
        for target in targets:
            if isinstance(target, ast.Name):
                if self.classes and not self.functions:
                    value = value or self.value(value_node)
                    self.classes[-1].attrs[target.id] = Keyword(target.id, value, self.span(node))
                elif self.at_module_level:
                    value = value or self.value(value_node)
                    self.facts.assigns[target.id] = Keyword(target.id, value, self.span(node))
                elif self.functions:
                    self.functions[-1].assigned.add(target.id)
                    # ``app = Celery(...)`` inside a factory that returns ``app``; ``job = await
                    # redis.enqueue_job(...)`` in a task body.
                    inner = value_node.value if isinstance(value_node, ast.Await) else value_node
                    if isinstance(inner, ast.Call):
                        self.functions[-1].local_calls[target.id] = self.value(inner)
            elif isinstance(target, ast.Attribute):
                receiver = dotted_name(target.value)
                if receiver.endswith("conf") or receiver.endswith("Meta"):
                    value = value or self.value(value_node)
                    self._attr_assign(receiver, target.attr, value, node)
            elif isinstance(target, ast.Subscript):
                receiver = dotted_name(target.value)
                index = target.slice
                if receiver.endswith("conf") and isinstance(index, ast.Constant) and isinstance(index.value, str):
                    value = value or self.value(value_node)
                    self._attr_assign(receiver, index.value, value, node)

    def _attr_assign(self, receiver: str, key: str, value: Value, node: ast.stmt) -> None:
        fact = AttrAssign(target=receiver, qualified="", key=key, keyword=Keyword(key, value, self.span(node)))
        self.facts.attr_assigns.append(fact)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self.functions and isinstance(node.target, ast.Name):
            self.functions[-1].assigned.add(node.target.id)
        self.generic_visit(node)

    def _application(self, node: ast.Call) -> None:
        """``X(fn, ...)`` or ``X(...)(fn)`` where ``fn`` is a callable of the enclosing scopes."""
        first = node.args[0] if node.args else None
        if not isinstance(first, ast.Name) or not any(first.id in scope for scope in self._callables):
            return
        if isinstance(node.func, ast.Call):
            if len(node.args) == 1 and not node.keywords:
                self.functions[-1].applies.append(Application(self.call(node.func), first.id, curried=True))
        elif isinstance(node.func, (ast.Name, ast.Attribute)):
            self.functions[-1].applies.append(Application(self.call(node), first.id))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if self.functions and node.args:
            self._application(node)
        if isinstance(func, ast.Attribute):
            name = func.attr
        else:
            name = func.id if isinstance(func, ast.Name) else ""
        recorded = name in RECORDED_FUNCTIONS
        if not recorded and self.functions:
            # ``result(blocking=True)`` (Huey): a call of a local name recorded for its keyword.
            recorded = any(k.arg == "blocking" for k in node.keywords)
        if recorded:
            fact = self.call(node, record_context=True)
            fact.awaited = self._awaited is node
            if self.functions:
                self.functions[-1].calls.append(fact)
            if not self.functions or name in MODULE_METHODS and isinstance(func, ast.Attribute):
                self.facts.calls.append(fact)
        self.visit(func)
        for arg in self._arguments(node):
            self.visit(arg)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg is not None and self.functions:
            self.functions[-1].names.add(node.arg)
        self.visit(node.value)

    def visit_type_alias(self, node: ast.AST) -> None:
        self.visit(node.name)
        self.visit(node.value)

    def visit_Await(self, node: ast.Await) -> None:
        self._awaited = node.value
        self.visit(node.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self.functions:
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                self.functions[-1].self_attrs.setdefault(node.attr, self.span(node))
            self.functions[-1].names.add(node.attr)
        self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self.functions and isinstance(node.value, ast.Name):
            self.functions[-1].subscripted.add(node.value.id)
        self.visit(node.value)
        self.visit(node.slice)

    def visit_Name(self, node: ast.Name) -> None:
        if self.functions:
            self.functions[-1].names.add(node.id)

    def visit_names(self, node: ast.Global | ast.Nonlocal) -> None:
        if self.functions:
            self.functions[-1].names.update(node.names)

    def visit_match_name(self, node: ast.AST) -> None:
        if self.functions and node.name:
            self.functions[-1].names.add(node.name)
        self.generic_visit(node)

    def visit_match_mapping(self, node: ast.MatchMapping) -> None:
        if self.functions and node.rest:
            self.functions[-1].names.add(node.rest)
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if self.functions and value is not None and (
                isinstance(value, (ast.Call, ast.Name))
                or isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, bool))):
            self.functions[-1].returns.append(self.value(value))
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values):
            if key is not None:
                self.visit(key)
            self.visit(value)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.body)
        self.visit(node.test)
        self.visit(node.orelse)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.args)
        self.visit(node.body)

    def visit_arguments(self, node: ast.arguments) -> None:
        """Each parameter with its annotation, then its default, in source order."""
        positional = [*node.posonlyargs, *node.args]
        defaults = [None] * (len(positional) - len(node.defaults)) + list(node.defaults)
        for param, default in zip(positional, defaults):
            self.visit(param)
            if default is not None:
                self.visit(default)
        if node.vararg is not None:
            self.visit(node.vararg)
        for param, default in zip(node.kwonlyargs, node.kw_defaults):
            self.visit(param)
            if default is not None:
                self.visit(default)
        if node.kwarg is not None:
            self.visit(node.kwarg)

    def visit_arg(self, node: ast.arg) -> None:
        if self.functions:
            self.functions[-1].names.add(node.arg)
        if node.annotation is not None:
            self.visit(node.annotation)

    # -- loops, with, raise --------------------------------------------------------------
    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.loops.append(_bound_names(node.target))
        self.visit(node.target)
        self.visit(node.iter)
        self.visit_body(node.body)
        self.visit_body(node.orelse)
        self.loops.pop()

    def visit_While(self, node: ast.While) -> None:
        self.loops.append([])
        self.visit(node.test)
        self.visit_body(node.body)
        self.visit_body(node.orelse)
        self.loops.pop()

    # A comprehension's element comes before its ``for`` clauses: push every clause's names
    # when the comprehension starts, so ``[t.delay(x) for x in xs]`` sees ``x``.
    def visit_comprehension(self, node: ast.AST) -> None:
        names: list[str] = []
        for clause in node.generators:
            names.extend(_bound_names(clause.target))
        self.loops.append(names)
        self.generic_visit(node)
        self.loops.pop()

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        items = []
        for item in node.items:
            expr = item.context_expr.func if isinstance(item.context_expr, ast.Call) else item.context_expr
            dotted = dotted_name(expr)
            if dotted:
                value = Value("name", self.span(expr), dotted=dotted)
                self.named.append(value)
                items.append(value)
        self.withs.append(items)
        for item in node.items:
            self.visit(item)
        self.visit_body(node.body)
        self.withs.pop()

    def visit_Raise(self, node: ast.Raise) -> None:
        if self.functions and node.exc is not None:
            self.functions[-1].raises.append(self.value(node.exc))
        self.generic_visit(node)

    # -- try / except ----------------------------------------------------------------
    def visit_Try(self, node: ast.Try) -> None:
        top = bool(self.functions) and any(stmt is node for stmt in self._bodies[-1])
        self.try_top_level.append(top)
        self._try_count += 1
        self.try_index.append(self._try_count)
        self.visit_body(node.body)
        for handler in node.handlers:
            self.visit(handler)
        self.visit_body(node.orelse)
        self.visit_body(node.finalbody)
        self.try_top_level.pop()
        self.try_index.pop()

    def visit_try_star(self, node: ast.AST) -> None:
        """``except*`` splits exception groups: its handlers are not recorded as handlers."""
        self.visit_body(node.body)
        for handler in node.handlers:
            if self.functions and handler.name:
                self.functions[-1].names.add(handler.name)
            if handler.type is not None:
                self.visit(handler.type)
            self.visit_body(handler.body)
        self.visit_body(node.orelse)
        self.visit_body(node.finalbody)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        types: list[str] = []
        type_end = None
        data = self.data
        start = self.start(node)
        body_start = self.start(node.body[0])
        if node.type is not None:
            type_end = self.end(node.type)
            exprs = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            types = [dotted_name(e) for e in exprs]
        # The header's colon: the first one after the caught type (or ``except``), never one in
        # a trailing comment (``except OSError:  # noqa: BLE001``).
        after = type_end if type_end is not None else start + len("except")
        colon = data.find(b":", after, body_start)
        if node.type is not None and colon >= 0:
            # Right before the colon, so `` as exc`` lands after a closing parenthesis too.
            end = colon
            while end > 0 and data[end - 1] in b" \t\f\\\r\n":
                end -= 1
            type_end = end
        handler = HandlerFact(span=Span(start, colon + 1 if colon >= 0 else body_start), types=types,
                              name=node.name, type_end=type_end,
                              top_level=bool(self.try_top_level and self.try_top_level[-1]),
                              try_index=self.try_index[-1] if self.try_index else 0)
        handler.reraises = _reraises(node.body, node.name)
        handler.calls_retry = _calls_method(node.body, "retry")
        self.handlers.append(handler)
        if self.functions:
            self.functions[-1].handlers.append(handler)
            if node.name:
                self.functions[-1].names.add(node.name)
        if node.type is not None:
            self.visit(node.type)
        self.visit_body(node.body)
        self.handlers.pop()

    # -- definitions -----------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        decorators = [self.decorator(d) for d in node.decorator_list]
        def_start = self.start(node)
        start = self._at(node.decorator_list[0]) if node.decorator_list else def_start
        body_start = self.start(node.body[0])
        colon = header_colon(self.data, def_start, body_start)
        header_end = colon + 1 if colon >= 0 else body_start
        params: list[Param] = []
        p = node.args
        positional = [*p.posonlyargs, *p.args]
        first_default = len(positional) - len(p.defaults)
        for index, param in enumerate(positional):
            params.append(self._param(param, "positional", index >= first_default))
        if p.vararg is not None:
            params.append(self._param(p.vararg, "vararg", False))
        for param, default in zip(p.kwonlyargs, p.kw_defaults):
            params.append(self._param(param, "kwonly", default is not None))
        if p.kwarg is not None:
            params.append(self._param(p.kwarg, "kwarg", False))
        defaults = [*([None] * first_default), *p.defaults]
        for param, default in zip(params, [*defaults[:len(positional)], *([None] if p.vararg else []),
                                           *p.kw_defaults]):
            if default is not None:
                param.default = self.value(default)
        outer = [c.name for c in self.classes]
        fn = FunctionFact(
            name=node.name, qualname=".".join([*outer, node.name]), span=self.shared_span(start, header_end),
            header=self.shared_span(start, header_end), def_start=def_start, is_async=isinstance(node, ast.AsyncFunctionDef),
            decorators=decorators, params=params,
            class_name=self.classes[-1].name if self.classes and not self.functions else None,
            depth=len(self.functions) + len(self.classes), outer=".".join(f.name for f in self.functions),
        )
        if self._callables:
            self._callables[-1].add(node.name)
        outer_scope = (self.loops, self.withs)  # a nested def starts a new scope
        self.loops, self.withs = [], []
        self.functions.append(fn)
        self._callables.append({param.name for param in params})
        self._bodies.append(node.body)
        self.facts.functions.append(fn)
        if self.classes and len(self.functions) == 1:
            self.classes[-1].methods.append(node.name)
        fn.names.add(node.name)
        for expr in node.decorator_list:
            self.visit(expr)
        self.visit(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self.visit_body(node.body)
        self.functions.pop()
        self._callables.pop()
        self._bodies.pop()
        self.loops, self.withs = outer_scope

    def _param(self, param: ast.arg, kind: str, has_default: bool) -> Param:
        annotation = self._code(param.annotation) if param.annotation is not None else ""
        return Param(name=param.arg, annotation=annotation, kind=kind, has_default=has_default)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        data = self.data
        decorators = [self.decorator(d) for d in node.decorator_list]
        class_start = self.start(node)
        start = self._at(node.decorator_list[0]) if node.decorator_list else class_start
        colon = header_colon(data, class_start, self.start(node.body[0]))
        bases = [self.value(a) for a in node.bases if not isinstance(a, ast.Starred)]
        keywords = {k.arg: Keyword(k.arg, self.value(k.value), self.span(k)) for k in node.keywords
                    if k.arg is not None}
        qual = ".".join([*(c.name for c in self.classes), node.name])
        cls = ClassFact(name=node.name, qualname=qual, span=Span(start, colon + 1),
                        header=Span(class_start, colon + 1), bases=bases, keywords=keywords, attrs={},
                        methods=[], decorators=decorators)
        lines = self._lines(node.body)
        first_line = lines[0]
        if self._own_line(first_line[0]):
            first = first_line[0]
            docstring = _is_docstring(first_line)
            target = lines[1][0] if docstring and len(lines) > 1 else first
            target_start = self.start(target)
            line_start = data.rfind(b"\n", 0, target_start) + 1
            cls.body_insert = line_start
            cls.body_indent = data[line_start:target_start].decode("utf-8")
            if cls.body_indent.strip() or docstring and len(lines) == 1:
                # Statement not at the start of its line, or only a docstring: insert after it.
                end = self.end(first_line[-1])
                nl = data.find(b"\n", end)
                cls.body_insert = len(data) if nl < 0 else nl + 1
                fs = self.start(first)
                ls = data.rfind(b"\n", 0, fs) + 1
                cls.body_indent = data[ls:fs].decode("utf-8")
                if cls.body_indent.strip() or nl < 0:
                    cls.body_insert = None
        self.classes.append(cls)
        self.facts.classes.append(cls)
        # Functions inside a class body are methods: the function stack is per-scope.
        self._saved_functions.append(self.functions)
        self.functions = []
        for expr in node.decorator_list:
            self.visit(expr)
        for base in node.bases:
            self.visit(base)
        for keyword in node.keywords:
            self.visit(keyword)
        self.visit_body(node.body)
        self.classes.pop()
        self.functions = self._saved_functions.pop()

    def _lines(self, body: list[ast.stmt]) -> list[list[ast.stmt]]:
        """A suite's statements grouped by line: ``a = 1; b = 2`` is one line."""
        lines: list[list[ast.stmt]] = []
        for stmt in body:
            if lines and isinstance(stmt, _SIMPLE) and isinstance(lines[-1][-1], _SIMPLE) and \
                    stmt.lineno == lines[-1][-1].end_lineno:
                lines[-1].append(stmt)
            else:
                lines.append([stmt])
        return lines

    def _own_line(self, stmt: ast.stmt) -> bool:
        start = self.start(stmt)
        return not self.data[self.line_starts[stmt.lineno - 1]:start].strip()

    # -- names -----------------------------------------------------------------------
    def qualify_all(self) -> None:
        imports = self.facts.imports
        module = self.facts.module
        for item in self.named:
            item.qualified = self.facts.qualify(item.dotted)
        for aa in self.facts.attr_assigns:
            head, _, rest = aa.target.partition(".")
            base = imports.get(head, f"{module}.{head}")
            aa.qualified = f"{base}.{rest}" if rest else base


# Node type -> the ``_Extractor`` method that visits it (plain functions: a table of bound
# methods on each extractor would be a reference cycle per file, and the collector is off).
_DISPATCH = {
    ast.Import: _Extractor.visit_Import, ast.ImportFrom: _Extractor.visit_ImportFrom,
    ast.Assign: _Extractor.visit_Assign, ast.AnnAssign: _Extractor.visit_AnnAssign, ast.Call: _Extractor.visit_Call,
    ast.AugAssign: _Extractor.visit_AugAssign,
    ast.Await: _Extractor.visit_Await, ast.Attribute: _Extractor.visit_Attribute,
    ast.Subscript: _Extractor.visit_Subscript, ast.Name: _Extractor.visit_Name, ast.Return: _Extractor.visit_Return,
    ast.For: _Extractor.visit_For, ast.AsyncFor: _Extractor.visit_For, ast.While: _Extractor.visit_While,
    ast.With: _Extractor.visit_With, ast.AsyncWith: _Extractor.visit_With, ast.Raise: _Extractor.visit_Raise,
    ast.Try: _Extractor.visit_Try, ast.ExceptHandler: _Extractor.visit_ExceptHandler,
    ast.FunctionDef: _Extractor.visit_FunctionDef, ast.AsyncFunctionDef: _Extractor.visit_FunctionDef,
    ast.ClassDef: _Extractor.visit_ClassDef, ast.Dict: _Extractor.visit_Dict, ast.IfExp: _Extractor.visit_IfExp,
    ast.Lambda: _Extractor.visit_Lambda, ast.arguments: _Extractor.visit_arguments, ast.arg: _Extractor.visit_arg,
    ast.keyword: _Extractor.visit_keyword, ast.Global: _Extractor.visit_names, ast.Nonlocal: _Extractor.visit_names,
    ast.MatchAs: _Extractor.visit_match_name, ast.MatchStar: _Extractor.visit_match_name,
    ast.MatchMapping: _Extractor.visit_match_mapping,
    **{kind: _Extractor.visit_comprehension for kind in _COMPREHENSIONS},
    **{kind: _Extractor.visit_suites for kind in (ast.Module, ast.If, ast.Match, ast.match_case)},
}
if hasattr(ast, "TryStar"):  # Python 3.11
    _DISPATCH[ast.TryStar] = _Extractor.visit_try_star
if hasattr(ast, "TypeAlias"):  # Python 3.12: its type parameters are not read (as on older Pythons)
    _DISPATCH[ast.TypeAlias] = _Extractor.visit_type_alias


def _bound_names(target: ast.expr) -> list[str]:
    """Names a ``for`` target binds: ``x``, ``(i, x)``, ``[a, *rest]``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for element in target.elts:
            names.extend(_bound_names(element))
        return names
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


def _walk_statements(body: list[ast.stmt]):
    """Yield nodes of a suite without descending into nested functions, classes or lambdas."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _is_docstring(line: list[ast.stmt]) -> bool:
    return len(line) == 1 and isinstance(line[0], ast.Expr) and isinstance(line[0].value, ast.Constant) and \
        isinstance(line[0].value.value, str)


def _reraises(body: list[ast.stmt], name: str | None) -> bool:
    for node in _walk_statements(body):
        if isinstance(node, ast.Raise):
            if node.exc is None:
                return True
            if name and isinstance(node.cause, ast.Name) and node.cause.id == name:
                return True
            if name and isinstance(node.exc, ast.Name) and node.exc.id == name:
                return True
    return False


def _calls_method(body: list[ast.stmt], method: str) -> bool:
    for node in _walk_statements(body):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method:
            return True
    return False


def _compile(text: str, path: str) -> ast.Module:
    with warnings.catch_warnings():  # e.g. invalid escape sequences: not ours to report
        warnings.simplefilter("ignore")
        return compile(text, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)


def parse(src: SourceFile) -> ast.Module:
    """CPython's tree of ``src``, with syntax newer than this interpreter's rewritten in place at
    the same offsets (``newer_syntax``). Raises the first ``SyntaxError`` (and
    ``RecursionError``/``MemoryError`` on input nested too deeply)."""
    path = str(src.path)
    try:
        return _compile(src.text, path)
    except SyntaxError as first:
        if "too many" in str(first.msg):
            raise
        data = bytearray(src.utf8)
        error: SyntaxError | None = first
        try:
            for _ in range(newer_syntax.MAX_REWRITES):
                if not newer_syntax.downgrade(data, error):
                    break
                try:
                    return _compile(data.decode("utf-8", "surrogatepass"), path)
                except SyntaxError as exc:
                    error = exc
        finally:
            # An exception kept in a local of the frame its traceback holds is a reference
            # cycle, and the run's collector is off (``cli.main``): drop it.
            error = None
        raise first from None


def extract(src: SourceFile, module: str | None = None, is_package: bool | None = None) -> FileFacts:
    """Parse ``src`` once and record its facts. Raises ``SyntaxError`` when neither CPython's
    parser nor libcst's (for syntax newer than the running interpreter) can read it."""
    if module is None:
        module, is_package = module_name(src.path)
    pieces = chunks.pieces_of(src.utf8, str(src.path))
    if pieces is not None:
        # A large module is read a piece at a time, so that one piece's tree is alive at once.
        facts = FileFacts(path=str(src.path), module=module, is_package=bool(is_package))
        visitor = _Extractor(facts, src.utf8)
        try:
            for tree in pieces.trees():
                visitor.visit_body(tree.body)
        except (SyntaxError, ValueError):
            pass  # a piece that does not parse alone: the module is read whole below
        else:
            visitor.qualify_all()
            return facts
    try:
        tree = parse(src)
    except SyntaxError as exc:
        if "too many" in str(exc.msg):  # nested too deeply: libcst's native parser would crash
            raise
        # Perhaps syntax newer than this interpreter's (``except A, B:`` on 3.11): libcst knows it.
        import libcst

        from qlint.lint import extract_cst

        try:
            return extract_cst.extract(src, module, bool(is_package))
        except libcst.ParserSyntaxError:
            raise exc from None
    facts = FileFacts(path=str(src.path), module=module, is_package=bool(is_package))
    visitor = _Extractor(facts, src.utf8)
    visitor.visit_body(tree.body)
    visitor.qualify_all()
    return facts
