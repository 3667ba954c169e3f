"""The fallback traversal, over libcst's tree, for source the running interpreter cannot parse.

``extract`` reads a module with CPython's parser; code written for a newer Python than the
one qlint runs on (``except A, B:`` on 3.11, PEP 695 generics on 3.10) is read here instead,
with libcst's parser, which knows every grammar up to 3.14. It records exactly the facts
``extract`` records — ``tests/test_extract_parity.py`` runs both over the same modules —
so rules never know which parser read a file.
"""

from __future__ import annotations

from libcst.metadata import ByteSpanPositionProvider, MetadataWrapper

import libcst as cst
from qlint.lint.extract import MODULE_METHODS, RECORDED_FUNCTIONS, _resolve_relative
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
from qlint.lint.scan import header_colon
from qlint.lint.source import SourceFile

_BINOPS = {
    cst.Add: "+", cst.Subtract: "-", cst.Multiply: "*", cst.Divide: "/", cst.FloorDivide: "//",
    cst.Power: "**", cst.Modulo: "%",
}


def dotted_name(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted_name(node.value)
        return f"{head}.{node.attr.value}" if head else ""
    return ""


class _Extractor(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (ByteSpanPositionProvider,)

    def __init__(self, facts: FileFacts) -> None:
        super().__init__()
        self.facts = facts
        self.functions: list[FunctionFact] = []
        self.classes: list[ClassFact] = []
        self.handlers: list[HandlerFact] = []
        self.statements: list[Span] = []
        self.try_top_level: list[bool] = []
        self.try_index: list[int] = []  # which ``try`` a handler belongs to (numbered per file)
        self.named: list[Value | CallFact] = []  # everything whose qualified name is filled in at the end
        self._awaited: cst.CSTNode | None = None
        self._try_count = 0
        # Enclosing loops and ``with`` statements, per function scope (saved across nested defs).
        self.loops: list[list[str]] = []  # one entry per enclosing loop: the names it binds
        self.withs: list[list[Value]] = []
        self._callables: list[set[str]] = []  # per function: its parameters and nested defs (extract.py)

    # -- positions -------------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> Span:
        s = self.get_metadata(ByteSpanPositionProvider, node)
        return Span(s.start, s.start + s.length)

    # -- values ----------------------------------------------------------------------
    def value(self, node: cst.BaseExpression) -> Value:
        span = self.span(node)
        if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString)):
            try:
                value = node.evaluated_value
            except Exception:  # noqa: BLE001 - a literal libcst cannot evaluate is not a constant
                return Value("unknown", span)
            if value is None:  # a concatenation with an f-string
                return Value("unknown", span)
            return Value("const", span, value=value)
        if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
            return Value("const", span, value={"True": True, "False": False, "None": None}[node.value])
        if isinstance(node, (cst.Name, cst.Attribute)):
            dotted = dotted_name(node)
            if dotted:
                v = Value("name", span, dotted=dotted)
                self.named.append(v)
                return v
            return Value("unknown", span)
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            elements = []
            for el in node.elements:
                if isinstance(el, cst.StarredElement):
                    elements.append(Value("unknown", self.span(el)))
                else:
                    elements.append(self.value(el.value))
            return Value("seq", span, elements=elements)
        if isinstance(node, cst.Dict):
            items = []
            for el in node.elements:
                if isinstance(el, cst.DictElement):
                    items.append((self.value(el.key), self.value(el.value)))
                else:
                    items.append((Value("unknown", self.span(el)), Value("unknown", self.span(el))))
            return Value("dict", span, items=items)
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value == "total_seconds" and isinstance(
                    func.value, cst.Call) and not node.args:
                # ``timedelta(...).total_seconds()`` folds like the timedelta itself.
                return self.value(func.value)
            return Value("call", span, call=self.call(node))
        if isinstance(node, cst.BinaryOperation) and type(node.operator) in _BINOPS:
            return Value("binop", span, op=_BINOPS[type(node.operator)], left=self.value(node.left),
                         right=self.value(node.right))
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
            operand = self.value(node.expression)
            if operand.is_const and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
                return Value("const", span, value=-operand.value if isinstance(node.operator, cst.Minus)
                             else operand.value)
            return Value("unary", span, op="-" if isinstance(node.operator, cst.Minus) else "+", left=operand)
        return Value("unknown", span)

    def _code(self, node: cst.CSTNode) -> str:
        s = self.span(node)
        return self.source_utf8[s.start:s.end].decode("utf-8")

    def call(self, node: cst.Call, *, record_context: bool = False) -> CallFact:
        span = self.span(node)
        func_span = self.span(node.func)
        dotted = dotted_name(node.func)
        fact = CallFact(dotted=dotted, qualified="", span=span, func_end=func_span.end)
        if isinstance(node.func, cst.Attribute):
            fact.receiver = dotted_name(node.func.value)
            fact.method = node.func.attr.value
            inner = node.func.value.expression if isinstance(node.func.value, cst.Await) else node.func.value
            if isinstance(inner, cst.Call):
                # ``Broker(...).with_middlewares(...)``, ``Queue(...).enqueue(...)``: keep the chain.
                fact.inner = self.call(inner)
        elif isinstance(node.func, cst.Call):
            fact.inner = self.call(node.func)  # ``group(...)()``: the call whose result is called
        data = self.source_utf8
        i = func_span.end
        while i < span.end and data[i] != 0x28:  # "("
            i += 1
        fact.lpar = i + 1
        fact.rpar = span.end - 1
        args = list(node.args)
        if args:
            fact.args_end = self.span(args[-1]).end
        for index, arg in enumerate(args):
            if arg.star:
                fact.has_star = True
                if arg.star == "**" and not fact.double_star:
                    fact.double_star = dotted_name(arg.value)
                continue
            if arg.keyword is not None:
                nxt = self.span(args[index + 1]).start if index + 1 < len(args) else None
                fact.kwargs[arg.keyword.value] = Keyword(arg.keyword.value, self.value(arg.value), self.span(arg),
                                                         comma_end=nxt)
            else:
                fact.args.append(self.value(arg.value))
        if dotted:
            self.named.append(fact)
        if record_context:
            fact.handler = self.handlers[-1] if self.handlers else None
            fact.statement = self.statements[-1] if self.statements else None
            fact.in_loop = bool(self.loops)
            fact.loop_vars = [name for names in self.loops for name in names]
            fact.with_items = [item for items in self.withs for item in items]
        return fact

    def decorator(self, node: cst.Decorator) -> CallFact:
        expr = node.decorator
        if isinstance(expr, cst.Call):
            return self.call(expr)
        span = self.span(expr)
        dotted = dotted_name(expr)
        fact = CallFact(dotted=dotted, qualified="", span=span, is_call=False, func_end=span.end)
        if isinstance(expr, cst.Attribute):
            fact.receiver = dotted_name(expr.value)
            fact.method = expr.attr.value
        if dotted:
            self.named.append(fact)
        return fact

    # -- imports ---------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            full = dotted_name(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.facts.imports[alias.asname.name.value] = full
            else:
                head = full.split(".")[0]
                self.facts.imports.setdefault(head, head)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        target = dotted_name(node.module) if node.module is not None else ""
        level = len(node.relative)
        base = _resolve_relative(self.facts.module, self.facts.is_package, level, target) if level else target
        if isinstance(node.names, cst.ImportStar):
            self.facts.star_imports.append(base)
            return False
        for alias in node.names:
            name = dotted_name(alias.name)
            local = alias.asname.name.value if alias.asname is not None and isinstance(
                alias.asname.name, cst.Name) else name
            self.facts.imports[local] = f"{base}.{name}" if base else name
        return False

    # -- statements ------------------------------------------------------------------
    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.statements.append(self.span(node))

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine) -> None:
        self.statements.pop()

    @property
    def at_module_level(self) -> bool:
        return not self.functions and not self.classes

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assignment([t.target for t in node.targets], node.value, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._assignment([node.target], node.value, node)

    def _assignment(self, targets: list[cst.BaseExpression], value_node: cst.BaseExpression,
                    node: cst.CSTNode) -> None:
        value = None
        for target in targets:
            if isinstance(target, cst.Name):
                if self.classes and not self.functions:
                    value = value or self.value(value_node)
                    self.classes[-1].attrs[target.value] = Keyword(target.value, value, self.span(node))
                elif self.at_module_level:
                    value = value or self.value(value_node)
                    self.facts.assigns[target.value] = Keyword(target.value, value, self.span(node))
                elif self.functions:
                    self.functions[-1].assigned.add(target.value)
                    # ``app = Celery(...)`` inside a factory that returns ``app``; ``job = await
                    # redis.enqueue_job(...)`` in a task body.
                    inner = value_node.expression if isinstance(value_node, cst.Await) else value_node
                    if isinstance(inner, cst.Call):
                        self.functions[-1].local_calls[target.value] = self.value(inner)
            elif isinstance(target, cst.Attribute):
                receiver = dotted_name(target.value)
                if receiver.endswith("conf") or receiver.endswith("Meta"):
                    value = value or self.value(value_node)
                    self._attr_assign(receiver, target.attr.value, value, node)
            elif isinstance(target, cst.Subscript) and len(target.slice) == 1:
                receiver = dotted_name(target.value)
                index = target.slice[0].slice
                if receiver.endswith("conf") and isinstance(index, cst.Index) and isinstance(
                        index.value, cst.SimpleString):
                    key = index.value.evaluated_value
                    if isinstance(key, str):
                        value = value or self.value(value_node)
                        self._attr_assign(receiver, key, value, node)

    def _attr_assign(self, receiver: str, key: str, value: Value, node: cst.CSTNode) -> None:
        fact = AttrAssign(target=receiver, qualified="", key=key, keyword=Keyword(key, value, self.span(node)))
        self.facts.attr_assigns.append(fact)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if self.functions and isinstance(node.target, cst.Name):
            self.functions[-1].assigned.add(node.target.value)

    def _application(self, node: cst.Call) -> None:
        """As ``extract._Extractor._application``."""
        positional = [a for a in node.args if a.keyword is None]
        first = positional[0] if positional else None
        if first is None or first.star or not isinstance(first.value, cst.Name) or not any(
                first.value.value in scope for scope in self._callables):
            return
        name = first.value.value
        if isinstance(node.func, cst.Call):
            if len(node.args) == 1:
                self.functions[-1].applies.append(Application(self.call(node.func), name, curried=True))
        elif isinstance(node.func, (cst.Name, cst.Attribute)):
            self.functions[-1].applies.append(Application(self.call(node), name))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if self.functions and node.args:
            self._application(node)
        if isinstance(func, cst.Attribute):
            name = func.attr.value
            recorded = name in RECORDED_FUNCTIONS
        else:
            name = func.value if isinstance(func, cst.Name) else ""
            recorded = name in RECORDED_FUNCTIONS
        if not recorded and self.functions:
            # ``result(blocking=True)`` (Huey): a call of a local name recorded for its keyword.
            recorded = any(a.keyword is not None and a.keyword.value == "blocking" for a in node.args)
        if recorded:
            fact = self.call(node, record_context=True)
            fact.awaited = self._awaited is node
            if self.functions:
                self.functions[-1].calls.append(fact)
            if not self.functions or name in MODULE_METHODS and isinstance(func, cst.Attribute):
                self.facts.calls.append(fact)

    def visit_Await(self, node: cst.Await) -> None:
        self._awaited = node.expression

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if self.functions and isinstance(node.value, cst.Name) and node.value.value == "self":
            self.functions[-1].self_attrs.setdefault(node.attr.value, self.span(node))

    def visit_TypeParameters(self, node: cst.TypeParameters) -> bool:
        return False  # ``def f[T: Bound]``: the CPython reader blanks these on older interpreters

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if self.functions and isinstance(node.value, cst.Name):
            self.functions[-1].subscripted.add(node.value.value)

    def visit_Name(self, node: cst.Name) -> None:
        if self.functions and node.value not in ("True", "False", "None"):
            self.functions[-1].names.add(node.value)

    def visit_Return(self, node: cst.Return) -> None:
        if self.functions and node.value is not None and isinstance(node.value, (cst.Call, cst.Name)):
            self.functions[-1].returns.append(self.value(node.value))

    # -- loops, with, raise --------------------------------------------------------------
    def visit_For(self, node: cst.For) -> None:
        self.loops.append(_bound_names(node.target))

    def leave_For(self, original_node: cst.For) -> None:
        self.loops.pop()

    def visit_While(self, node: cst.While) -> None:
        self.loops.append([])

    def leave_While(self, original_node: cst.While) -> None:
        self.loops.pop()

    # A comprehension's element is visited before its ``for`` clauses: push every clause's names
    # when the comprehension starts, so ``[t.delay(x) for x in xs]`` sees ``x``.
    def _comprehension(self, node) -> None:
        names: list[str] = []
        clause = node.for_in
        while clause is not None:
            names.extend(_bound_names(clause.target))
            clause = clause.inner_for_in
        self.loops.append(names)

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._comprehension(node)

    def leave_ListComp(self, original_node: cst.ListComp) -> None:
        self.loops.pop()

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._comprehension(node)

    def leave_SetComp(self, original_node: cst.SetComp) -> None:
        self.loops.pop()

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._comprehension(node)

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self.loops.pop()

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._comprehension(node)

    def leave_DictComp(self, original_node: cst.DictComp) -> None:
        self.loops.pop()

    def visit_With(self, node: cst.With) -> None:
        items = []
        for item in node.items:
            expr = item.item.func if isinstance(item.item, cst.Call) else item.item
            dotted = dotted_name(expr)
            if dotted:
                value = Value("name", self.span(expr), dotted=dotted)
                self.named.append(value)
                items.append(value)
        self.withs.append(items)

    def leave_With(self, original_node: cst.With) -> None:
        self.withs.pop()

    def visit_Raise(self, node: cst.Raise) -> None:
        if self.functions and node.exc is not None:
            self.functions[-1].raises.append(self.value(node.exc))

    # -- try / except ----------------------------------------------------------------
    def visit_Try(self, node: cst.Try) -> None:
        top = False
        if self.functions:
            fn_body = self._current_def_body
            top = fn_body is not None and any(stmt is node for stmt in fn_body)
        self.try_top_level.append(top)
        self._try_count += 1
        self.try_index.append(self._try_count)

    def leave_Try(self, original_node: cst.Try) -> None:
        self.try_top_level.pop()
        self.try_index.pop()

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        types: list[str] = []
        type_end = None
        if node.type is not None:
            type_end = self.span(node.type).end
            exprs = node.type.elements if isinstance(node.type, cst.Tuple) else [node.type]
            for e in exprs:
                expr = e.value if isinstance(e, cst.Element) else e
                dotted = dotted_name(expr)
                types.append(dotted)
        name = None
        if node.name is not None and isinstance(node.name.name, cst.Name):
            name = node.name.name.value
        start = self.span(node).start
        body_start = self.span(node.body).start
        # The header's colon: the first one after the caught type (or ``as`` name), never one in
        # a trailing comment (``except OSError:  # noqa: BLE001``).
        after = self.span(node.name.name).end if node.name is not None else (
            self.span(node.type).end if node.type is not None else start + len("except"))
        colon = self.source_utf8.find(b":", after, body_start)
        if node.type is not None and colon >= 0:
            # Right before the colon, so `` as exc`` lands after a closing parenthesis too.
            type_end = len(self.source_utf8[:colon].rstrip())
        handler = HandlerFact(span=Span(start, colon + 1 if colon >= 0 else body_start), types=types, name=name,
                              type_end=type_end, top_level=bool(self.try_top_level and self.try_top_level[-1]),
                              try_index=self.try_index[-1] if self.try_index else 0)
        handler.reraises = _reraises(node.body, name)
        handler.calls_retry = _calls_method(node.body, "retry")
        self.handlers.append(handler)
        if self.functions:
            self.functions[-1].handlers.append(handler)

    def leave_ExceptHandler(self, original_node: cst.ExceptHandler) -> None:
        self.handlers.pop()

    # -- definitions -----------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        decorators = [self.decorator(d) for d in node.decorators]
        def_span = self.span(node)
        start = self.span(node.decorators[0]).start if node.decorators else def_span.start
        body_start = self.span(node.body).start
        colon = header_colon(self.source_utf8, def_span.start, body_start)
        header_end = colon + 1 if colon >= 0 else body_start
        params: list[Param] = []
        p = node.params
        for param in (*p.posonly_params, *p.params):
            params.append(self._param(param, "positional"))
        if isinstance(p.star_arg, cst.Param):
            params.append(self._param(p.star_arg, "vararg"))
        for param in p.kwonly_params:
            params.append(self._param(param, "kwonly"))
        if p.star_kwarg is not None:
            params.append(self._param(p.star_kwarg, "kwarg"))
        outer = [c.name for c in self.classes]
        qual = ".".join([*outer, node.name.value])
        fn = FunctionFact(
            name=node.name.value, qualname=qual, span=Span(start, header_end), header=Span(start, header_end),
            def_start=def_span.start, is_async=node.asynchronous is not None, decorators=decorators,
            params=params, class_name=self.classes[-1].name if self.classes and not self.functions else None,
            depth=len(self.functions) + len(self.classes), outer=".".join(f.name for f in self.functions),
        )
        if self._callables:
            self._callables[-1].add(node.name.value)
        self._callables.append({param.name for param in params})
        fn._body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()  # type: ignore[attr-defined]
        fn._outer = (self.loops, self.withs)  # type: ignore[attr-defined]  # a nested def starts a new scope
        self.loops, self.withs = [], []
        self.functions.append(fn)
        self.facts.functions.append(fn)
        if self.classes and len(self.functions) == 1:
            self.classes[-1].methods.append(node.name.value)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        fn = self.functions.pop()
        self._callables.pop()
        self.loops, self.withs = fn._outer  # type: ignore[attr-defined]
        del fn._body, fn._outer  # type: ignore[attr-defined]

    @property
    def _current_def_body(self):
        return getattr(self.functions[-1], "_body", None) if self.functions else None

    def _param(self, param: cst.Param, kind: str) -> Param:
        annotation = self._code(param.annotation.annotation) if param.annotation is not None else ""
        return Param(name=param.name.value, annotation=annotation, kind=kind, has_default=param.default is not None,
                     default=self.value(param.default) if param.default is not None else None)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        decorators = [self.decorator(d) for d in node.decorators]
        class_span = self.span(node)
        start = self.span(node.decorators[0]).start if node.decorators else class_span.start
        body_start = self.span(node.body).start
        colon = header_colon(self.source_utf8, class_span.start, body_start)
        bases = [self.value(a.value) for a in node.bases if not a.star]
        keywords = {a.keyword.value: Keyword(a.keyword.value, self.value(a.value), self.span(a))
                    for a in node.keywords if a.keyword is not None}
        qual = ".".join([*(c.name for c in self.classes), node.name.value])
        cls = ClassFact(name=node.name.value, qualname=qual, span=Span(start, colon + 1),
                        header=Span(class_span.start, colon + 1), bases=bases, keywords=keywords, attrs={},
                        methods=[], decorators=decorators)
        if isinstance(node.body, cst.IndentedBlock) and node.body.body:
            first = node.body.body[0]
            target = first
            if _is_docstring(first) and len(node.body.body) > 1:
                target = node.body.body[1]
            start = self.span(target).start
            line_start = self.source_utf8.rfind(b"\n", 0, start) + 1
            cls.body_insert = line_start
            cls.body_indent = self.source_utf8[line_start:start].decode("utf-8")
            if cls.body_indent.strip() or _is_docstring(first) and len(node.body.body) == 1:
                # Statement not at the start of its line, or only a docstring: insert after it.
                end = self.span(first).end
                nl = self.source_utf8.find(b"\n", end)
                cls.body_insert = len(self.source_utf8) if nl < 0 else nl + 1
                fs = self.span(first).start
                ls = self.source_utf8.rfind(b"\n", 0, fs) + 1
                cls.body_indent = self.source_utf8[ls:fs].decode("utf-8")
                if cls.body_indent.strip() or nl < 0:
                    cls.body_insert = None
        self.classes.append(cls)
        self.facts.classes.append(cls)
        # Functions inside a class body are methods: the function stack is per-scope.
        self._saved_functions = getattr(self, "_saved_functions", [])
        self._saved_functions.append(self.functions)
        self.functions = []

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.classes.pop()
        self.functions = self._saved_functions.pop()

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


def _bound_names(target: cst.BaseExpression) -> list[str]:
    """Names a ``for`` target binds: ``x``, ``(i, x)``, ``[a, *rest]``."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        names = []
        for element in target.elements:
            value = element.value
            names.extend(_bound_names(value))
        return names
    if isinstance(target, cst.StarredElement):
        return _bound_names(target.value)
    return []


def _walk_statements(body):
    """Yield nodes of a suite without descending into nested functions or classes."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        yield node
        stack.extend(node.children)


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(
        stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))


def _reraises(body: cst.BaseSuite, name: str | None) -> bool:
    for node in _walk_statements([body]):
        if isinstance(node, cst.Raise):
            if node.exc is None:
                return True
            if name and node.cause is not None and isinstance(node.cause.item, cst.Name) and \
                    node.cause.item.value == name:
                return True
            if name and isinstance(node.exc, cst.Name) and node.exc.value == name:
                return True
    return False


def _calls_method(body: cst.BaseSuite, method: str) -> bool:
    for node in _walk_statements([body]):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == method:
            return True
    return False


def extract(src: SourceFile, module: str, is_package: bool) -> FileFacts:
    """Parse ``src`` with libcst and record its facts. Raises ``libcst.ParserSyntaxError``."""
    facts = FileFacts(path=str(src.path), module=module, is_package=bool(is_package))
    tree = cst.parse_module(src.text)
    if tree.code != src.text:
        # libcst did not round-trip this file (e.g. Instagram/LibCST#1457 drops the space in
        # ``except A :``): offsets after that point are off, so no fix may be offered here.
        facts.exact_offsets = False
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    visitor = _Extractor(facts)
    visitor.source_utf8 = src.utf8
    wrapper.visit(visitor)
    visitor.qualify_all()
    return facts
