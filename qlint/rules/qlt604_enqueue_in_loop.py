from __future__ import annotations

import ast

from qlint.frameworks.celery_calls import (
    batch_remedy,
    group_name,
    in_lambda,
    sends_message,
    supports_group_rewrite,
)
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Fix, Severity
from qlint.lint.facts import CallFact, Value
from qlint.lint.model import Site
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile

# Iterables a generator expression takes without parentheses (``for x in <or_test>``).
_PLAIN_ITER = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.List, ast.Set, ast.Dict, ast.ListComp,
               ast.SetComp, ast.DictComp, ast.Constant)


def _names(value: Value, depth: int = 0) -> set[str]:
    """The first segment of every name an argument reads (``x`` in ``x.pk``, ``str(x)``)."""
    if depth > 6:
        return set()
    if value.kind == "name":
        return {value.dotted.split(".")[0]}
    out: set[str] = set()
    children: list[Value] = [*value.elements, *(v for pair in value.items for v in pair)]
    if value.left is not None:
        children.append(value.left)
    if value.right is not None:
        children.append(value.right)
    if value.call is not None:
        call = value.call
        if call.receiver:
            out.add(call.receiver.split(".")[0])
        children += [*call.args, *(kw.value for kw in call.kwargs.values())]
        if call.inner is not None:
            children.append(Value("call", call.inner.span, call=call.inner))
    for child in children:
        out |= _names(child, depth + 1)
    return out


def _loop_names(call: CallFact) -> set[str]:
    used: set[str] = set()
    for arg in call.args:
        used |= _names(arg)
    for kw in call.kwargs.values():
        used |= _names(kw.value)
    return used & set(call.loop_vars)


def _offset(src: SourceFile, line: int, col: int) -> int:
    return src.line_starts[line - 1] + col


_BATCHED = ("chunk", "batch", "grouper", "paginat", "page")


def _target_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _callee_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _small_or_batched(src: SourceFile, call: CallFact, used: set[str]) -> str | None:
    """Why the loop around ``call`` is not one to batch: it runs over a literal, a setting, a
    short ``range``, or over chunks the code already made (``for ids in chunked(qs, 500)``)."""
    try:
        tree = _parse(src)
    except SyntaxError:
        return None
    best: tuple[int, ast.AST, ast.AST] | None = None
    for node in ast.walk(tree):
        loops: list[tuple[ast.AST, ast.AST, ast.AST]] = []
        if isinstance(node, (ast.For, ast.AsyncFor)):
            loops.append((node, node.target, node.iter))
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            loops += [(node, g.target, g.iter) for g in node.generators]
        for outer, target, iterable in loops:
            start = _offset(src, outer.lineno, outer.col_offset)
            end = _offset(src, outer.end_lineno, outer.end_col_offset)
            if start <= call.span.start and call.span.end <= end and (best is None or start >= best[0]):
                best = (start, target, iterable)
    if best is None:
        return None
    _, target, iterable = best
    names = _target_names(target) & used
    if not names:
        return "an outer loop"  # the innermost loop's variable is not used: not a per-item enqueue
    if any(word in name.lower() for name in names for word in _BATCHED):
        return "batches"
    if isinstance(iterable, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return "a literal"
    callee = _callee_name(iterable).lower()
    if any(word in callee for word in _BATCHED):
        return "batches"
    if isinstance(iterable, ast.Call) and callee == "range" and iterable.args and all(
            isinstance(a, ast.Constant) for a in iterable.args):
        bounds = [a.value for a in iterable.args]
        if all(isinstance(b, int) for b in bounds) and len(range(*bounds)) < 100:
            return "a short range"
    base = iterable.func if isinstance(iterable, ast.Call) and _callee_name(iterable) in ("items", "keys", "values") \
        else iterable
    if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Attribute):
        base = base.value
    named = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
    if named.isupper() and len(named) > 1:
        return "a constant"
    return None


@register
class EnqueueInLoop(Rule):
    """## What it does
    Checks for tasks enqueued one by one in a loop: a `.delay()` / `.apply_async()` /
    `send_task()` or an RQ `enqueue(...)` in a `for` loop or a comprehension whose
    arguments use the loop variable.

    ## Why is this bad?
    Every call is a separate publish: Celery takes a producer from its pool, serializes,
    sends and gives it back, RQ runs several Redis commands, once per item. Over a queryset
    of thousands of rows the loop holds a request or a task for seconds, and an error
    half-way leaves half the work queued with no record of which half. RQ's `enqueue_many`
    sends the whole batch in one Redis pipeline; Celery's `group` sends it in one go over
    one producer connection and gives one `GroupResult` to follow it, and `chunks` turns
    thousands of tiny tasks into a few larger messages. Enqueuing thousands of tasks in a
    loop inside a task also grows the worker's memory (celery/celery#3279).

    ## Example
    ```python
    def notify_all(user_ids):
        for user_id in user_ids:
            send_digest.delay(user_id)
    ```

    Use instead:
    ```python
    from celery import group

    def notify_all(user_ids):
        group(send_digest.s(user_id) for user_id in user_ids).delay()
    ```

    ## Per framework
    - **Celery**: `task.delay(x)`, `task.apply_async((x,))`, `app.send_task("t", args=(x,))`
      in a loop over `x`. Signatures (`task.s(x)`) collected into `group(...)`, `chord(...)`
      or `task.chunks(...)` are the remedy and are not reported.
    - **RQ**: `queue.enqueue(f, x)` (also `enqueue_call`, `enqueue_in`, `enqueue_at`) in a
      loop; remedy: `queue.enqueue_many([Queue.prepare_data(f, (x,)) for x in xs])`.
    - Dramatiq is not covered: its `group(...).run()` enqueues its messages one by one, so
      there is no batch to point to.

    ## Fix safety
    The fix, offered for Celery only and only for a `for` loop whose body is the one
    `task.delay(...)` statement, rewrites `for x in xs: task.delay(x)` as
    `group(task.s(x) for x in xs).delay()` (importing `group` from `celery` when the file
    does not). It is unsafe: the messages are sent together once the whole iterable has
    been consumed rather than one per iteration, each task's message carries the group's
    id, and an exception raised while iterating now sends nothing instead of the messages
    before it.

    ## References
    - [Celery: Groups](https://docs.celeryq.dev/en/stable/userguide/canvas.html#groups)
    - [Celery: Chunks](https://docs.celeryq.dev/en/stable/userguide/canvas.html#chunks)
    - [RQ: Bulk job enqueueing](https://python-rq.org/docs/#bulk-job-enqueueing)
    """

    code = "QLT604"
    name = "enqueue-in-loop"
    summary = "Tasks enqueued one by one in a loop instead of as one batch"
    severity = Severity.INFO
    fix_availability = "Sometimes"
    opt_in = True
    frameworks = ("celery", "rq")

    VALID = [
        Valid("""
from celery import group, shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids):
    group(send_digest.s(user_id) for user_id in user_ids).delay()
    signatures = [send_digest.s(user_id) for user_id in user_ids]
    group(signatures).apply_async()
    send_digest.chunks(zip(user_ids), 100).delay()
""", note="the remedies: group of signatures, chunks"),
        Valid("""
from celery import shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids, admin_id):
    for user_id in user_ids:
        if user_id == admin_id:
            send_digest.delay(admin_id)
    while True:
        send_digest.delay(admin_id)
        break
""", note="arguments that do not use the loop variable; `while` loops"),
        Valid("""
from redis import Redis
from rq import Queue

queue = Queue(connection=Redis())

def notify_all(user_ids):
    queue.enqueue_many([Queue.prepare_data(send_digest, (user_id,)) for user_id in user_ids])
    queue.enqueue(send_digest, user_ids)
""", note="RQ: enqueue_many; one job for the whole list"),
    ]
    INVALID = [
        Invalid("""
from celery import shared_task

@shared_task
def send_digest(user_id, force=False):
    pass

def notify_all(users):
    for user in users:
        send_digest.delay(user.pk, force=True)
""", expect=9, fixed="""
from celery import group
from celery import shared_task

@shared_task
def send_digest(user_id, force=False):
    pass

def notify_all(users):
    group(send_digest.s(user.pk, force=True) for user in users).delay()
""", message="group(", note="one-statement loop: group, with the import"),
        Invalid("""
from celery import Celery, group

app = Celery("proj")

@app.task
def send_digest(user_id):
    pass

def notify_all(pairs):
    for index, (user_id, _) in enumerate(pairs):
        send_digest.delay(user_id)
        send_digest.apply_async((user_id,), countdown=index)
    for user_id in pairs: app.send_task("digest", args=(user_id,))
""", expect=[11, 12, 13], note="two statements, send_task: no fix"),
        Invalid("""
import celery
from celery import shared_task

group = []

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids):
    for user_id in user_ids: send_digest.delay(user_id)
""", expect=11, fixed="""
import celery
from celery import shared_task

group = []

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids):
    celery.group(send_digest.s(user_id) for user_id in user_ids).delay()
""", note="`group` is taken: `celery.group`; a one-line loop"),
        Invalid("""
from redis import Redis
from rq import Queue

queue = Queue(connection=Redis())

def notify_all(user_ids):
    for user_id in user_ids:
        queue.enqueue(send_digest, user_id)
""", expect=8, message="enqueue_many", note="RQ"),
        Invalid("""
from celery import shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(pairs):
    return [send_digest.delay(u) for u, _ in pairs]
""", expect=8, note="a comprehension"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for site in ctx.project.sites:
            remedy = batch_remedy(site)
            if not sends_message(site) or not site.call.loop_vars or remedy is None:
                continue
            call = site.call
            used = _loop_names(call)
            if not used or in_lambda(ctx.source(site.file).utf8, call) or _small_or_batched(
                    ctx.source(site.file), call, used):
                continue
            names = ", ".join(f"`{n}`" for n in sorted(used))
            fix = self._fix(ctx, site)
            ctx.report(site.file, call.span,
                       f"`{call.dotted}(...)` in a loop over {names} publishes one message per item, one call at a "
                       f"time; {remedy}", fix=fix, statement=call.statement)

    def _fix(self, ctx: RuleContext, site: Site) -> Fix | None:
        call = site.call
        if not supports_group_rewrite(site) or call.method != "delay":
            return None
        facts = site.file
        src = ctx.source(facts)
        loop = _one_statement_loop(src, call)
        if loop is None:
            return None
        node, target, iterable = loop
        name, needs_import = group_name(facts)
        if name is None:
            return None
        import_edit = _import_group(src) if needs_import else None
        if needs_import and import_edit is None:
            return None
        receiver = src.utf8[call.span.start:call.func_end - len(call.method)].decode("utf-8")
        arguments = src.utf8[call.lpar:call.rpar].decode("utf-8")
        start = _offset(src, node.lineno, node.col_offset)
        end = _offset(src, node.end_lineno, node.end_col_offset)
        text = f"{name}({receiver}s({arguments}) for {target} in {iterable}).delay()"
        edits = [Edit(start, end, text)]
        if import_edit is not None:
            edits.append(import_edit)
        return ctx.fix(facts, f"Send the tasks as one `{name}`", edits)


def _one_statement_loop(src: SourceFile, call: CallFact) -> tuple[ast.For, str, str] | None:
    """The ``for`` statement whose whole body is ``call`` (no ``else``, no comments inside)."""
    try:
        tree = _parse(src)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.For) or node.orelse or len(node.body) != 1:
            continue
        stmt = node.body[0]
        if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
            continue
        inner = stmt.value
        if _offset(src, inner.lineno, inner.col_offset) != call.span.start or _offset(
                src, inner.end_lineno, inner.end_col_offset) != call.span.end:
            continue
        start = _offset(src, node.lineno, node.col_offset)
        end = _offset(src, node.end_lineno, node.end_col_offset)
        if b"#" in src.utf8[start:end] and _has_comment(src.utf8[start:end]):
            return None
        if _used_after(tree, node):
            return None  # the loop variable outlives a ``for`` loop, not a generator expression
        target = _segment(src, node.target)
        iterable = _segment(src, node.iter)
        if not isinstance(node.iter, _PLAIN_ITER) or isinstance(node.iter, ast.Tuple):
            iterable = f"({iterable})"
        return node, target, iterable
    return None


def _used_after(tree: ast.Module, loop: ast.For) -> bool:
    """A name the loop binds is read after the loop, in the same function (or module)."""
    names = _target_names(loop.target)
    scope: ast.AST = tree
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= loop.lineno and (
                node.end_lineno or 0) >= (loop.end_lineno or 0) and node.lineno >= getattr(scope, "lineno", 0):
            scope = node
    end = (loop.end_lineno, loop.end_col_offset)
    return any(isinstance(n, ast.Name) and n.id in names and (n.lineno, n.col_offset) > end
               for n in ast.walk(scope))


_PARSED: dict[str, tuple[bytes, ast.Module]] = {}


def _parse(src: SourceFile) -> ast.Module:
    key = str(src.path)
    cached = _PARSED.get(key)
    if cached is not None and cached[0] == src.utf8:
        return cached[1]
    tree = ast.parse(src.text)
    _PARSED.clear()
    _PARSED[key] = (src.utf8, tree)
    return tree


def _segment(src: SourceFile, node: ast.AST) -> str:
    start = _offset(src, node.lineno, node.col_offset)
    end = _offset(src, node.end_lineno, node.end_col_offset)
    return src.utf8[start:end].decode("utf-8")


def _has_comment(data: bytes) -> bool:
    import io
    import tokenize

    try:
        tokens = list(tokenize.tokenize(io.BytesIO(data).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return True
    return any(t.type == tokenize.COMMENT for t in tokens)


def _import_group(src: SourceFile) -> Edit | None:
    """``from celery import group`` before the module's first import (after ``__future__`` ones
    and the docstring), or before its first statement."""
    tree = _parse(src)
    body = tree.body
    index = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(
            body[0].value.value, str):
        index = 1
    while index < len(body) and isinstance(body[index], ast.ImportFrom) and body[index].module == "__future__":
        index += 1
    first_import = next((n for n in body[index:] if isinstance(n, (ast.Import, ast.ImportFrom))), None)
    anchor = first_import or (body[index] if index < len(body) else None)
    if anchor is None or anchor.col_offset != 0:
        return None
    offset = src.line_starts[anchor.lineno - 1]
    return Edit(offset, offset, f"from celery import group{src.newline}")
