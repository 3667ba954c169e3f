from __future__ import annotations

import ast

from qlint.frameworks.celery_calls import (
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
from qlint.rules._common import import_edits

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
# A loop variable named as a collection holds several items per iteration (``for id_list in ...``).
_COLLECTION_NAMES = ("_list", "_ids")


def _target_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _callee_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _innermost_loop(src: SourceFile, call: CallFact) -> tuple[ast.AST, ast.AST, ast.AST] | None:
    """The innermost ``for`` loop or comprehension holding ``call``: (node, target, iterable)."""
    try:
        tree = _parse(src)
    except SyntaxError:
        return None
    best: tuple[int, ast.AST, ast.AST, ast.AST] | None = None
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
                best = (start, outer, target, iterable)
    return best[1:] if best is not None else None


def _small_or_batched(src: SourceFile, call: CallFact, used: set[str]) -> str | None:
    """Why the loop around ``call`` is not one to batch: it runs over a literal, a setting, a
    short ``range``, or over chunks the code already made (``for ids in chunked(qs, 500)``)."""
    loop = _innermost_loop(src, call)
    if loop is None:
        return None
    _, target, iterable = loop
    names = _target_names(target) & used
    if not names:
        return "an outer loop"  # the innermost loop's variable is not used: not a per-item enqueue
    if any(word in name.lower() for name in names for word in _BATCHED) or any(
            name.lower().endswith(_COLLECTION_NAMES) or name.lower() == "ids" for name in names):
        return "batches"
    if isinstance(iterable, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return "a literal"
    callee = _callee_name(iterable).lower()
    if any(word in callee for word in (*_BATCHED, "groups")):
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


# What a loop of single enqueues costs, and what sending them as a batch changes, per framework.
_REMEDY = {
    "celery": ("publishes one message per item and takes a producer from the pool for each one",
               ("`group(task.s(x) for x in xs).delay()` still publishes one message per task, but all of them "
                "through one producer, tracked as one `GroupResult`; `task.chunks(zip(xs), n)` sends one message "
                "per n items")),
    "rq": ("creates one job per item, each saved and queued in its own round trips to Redis",
           ("`queue.enqueue_many([Queue.prepare_data(f, (x,)) for x in xs])` (RQ >= 1.9) saves and queues them "
            "all in one Redis pipeline")),
}
# Leading positional arguments that name the task and carry its arguments; the rest are options.
_ARGUMENT_POSITIONS = {"delay": None, "apply_async": 2, "send_task": 3}
# RQ calls that schedule a job for later: ``enqueue_many`` enqueues now and cannot schedule.
_RQ_SCHEDULED = ("enqueue_in", "enqueue_at")


@register
class EnqueueInLoop(Rule):
    """## What it does
    Checks for tasks enqueued one by one in a loop: a `.delay()` / `.apply_async()` /
    `send_task()` or an RQ `enqueue(...)` in a `for` loop or a comprehension whose
    arguments use the loop variable.

    ## Why is this bad?
    Every call is a separate publish: Celery takes a producer from its pool, serializes,
    publishes and gives the producer back, once per item; RQ saves and queues each job in its
    own round trips to Redis. Over a queryset of thousands of rows the loop holds a request or
    a task for seconds, and enqueuing thousands of tasks in a loop inside a task also grows the
    worker's memory (celery/celery#3279). RQ's `enqueue_many` creates the whole batch in one
    Redis pipeline. Celery's `group` does not merge the messages, it still publishes one per
    task, but it takes one producer for all of them and gives one `GroupResult` to follow
    them; `chunks` is what turns thousands of tiny tasks into a few larger messages (each one
    runs its items one after the other in one task).

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
      or `task.chunks(...)` are the remedy and are not reported. Not reported either when the
      call passes its own `producer=` (the loop already shares one), or when one of its
      options is computed per item (`queue=`, `routing_key=`, `countdown=`, `task_id=`, an SQS
      `MessageGroupId=`, `**options` built in the loop): a group's one `apply_async` gives
      every message the same options; nor when a `for` loop assigns each call's result
      (`result = task.delay(x)`) to use it as it goes.
    - **RQ**: `queue.enqueue(f, x)` (also `enqueue_call`) in a loop; remedy:
      `queue.enqueue_many([Queue.prepare_data(f, (x,)) for x in xs])`. Not reported when the
      call passes `pipeline=` (already batched), when the queue itself changes per item
      (`enqueue_many` fills one queue), or for `enqueue_in` / `enqueue_at`, which
      `enqueue_many` cannot schedule.
    - Dramatiq is not covered: its `group(...).run()` enqueues its messages one by one, so
      there is no batch to point to.

    ## Fix safety
    The fix, offered for Celery only and only for a `for` loop (in a function or at module
    level) whose body is the one `task.delay(...)` statement, rewrites
    `for x in xs: task.delay(x)` as `group(task.s(x) for x in xs).delay()` (importing `group`
    from `celery` when the file does not, where isort puts it, and not offered where `group`
    would name something else; written over several lines, as ruff's formatter writes it, when
    one line would pass the project's line length). The same messages are published, one per item, with the same arguments. It is
    unsafe: each message now carries the group's id (the task sees `self.request.group`), and a
    task class that overrides `delay` is bypassed, since a group sends each signature with
    `apply_async`.

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
from celery import shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(users, app):
    for index, user in enumerate(users):
        send_digest.apply_async((user.pk,), countdown=index * 2)
    for user in users:
        send_digest.apply_async((user.pk,), queue=f"digest-{user.region}")
    for user in users:
        route = {"routing_key": user.shard, "MessageGroupId": str(user.pk)}
        send_digest.apply_async((user.pk,), **route)
    for user in users:
        app.send_task("digest", (user.pk,), task_id=f"digest-{user.pk}")
    with app.producer_or_acquire() as producer:
        for user in users:
            send_digest.apply_async((user.pk,), producer=producer)
""", note="options computed per item (a group's one call cannot give each message its own); one producer "
          "passed to every call already"),
        Valid("""
from datetime import timedelta
from redis import Redis
from rq import Queue

queue = Queue(connection=Redis())

def notify_all(user_ids, users):
    queue.enqueue_many([Queue.prepare_data(send_digest, (user_id,)) for user_id in user_ids])
    queue.enqueue(send_digest, user_ids)
    for user in users:
        Queue(user.region, connection=Redis()).enqueue(send_digest, user.pk)
    for user_id in user_ids:
        queue.enqueue_in(timedelta(minutes=5), send_digest, user_id)
    with queue.connection.pipeline() as pipe:
        for user_id in user_ids:
            queue.enqueue(send_digest, user_id, pipeline=pipe)
        pipe.execute()
""", note="RQ: enqueue_many; one job for the whole list; a queue per item; scheduled jobs; a pipeline "
          "already"),
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
from celery import group, shared_task

@shared_task
def send_digest(user_id, force=False):
    pass

def notify_all(users):
    group(send_digest.s(user.pk, force=True) for user in users).delay()
""", message="still publishes one message per task, but all of them through one producer",
            note="one-statement loop: group, with the import"),
        Invalid("""
from celery import Celery, group

app = Celery("proj")

@app.task
def send_digest(user_id):
    pass

def notify_all(pairs, region):
    for index, (user_id, _) in enumerate(pairs):
        send_digest.delay(user_id)
        send_digest.apply_async((user_id,), countdown=10, queue=f"digest-{region}")
    for user_id in pairs: app.send_task("digest", args=(user_id,))
""", expect=[11, 12, 13], note="two statements, options the same for every item, send_task: no fix"),
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
from celery import group, shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids):
    group = "digest"
    for user_id in user_ids:
        send_digest.delay(user_id)

class Nightly:
    for user_id in range(1000):
        send_digest.delay(user_id)
""", expect=[10, 14], note="`group` is a local variable there; a loop in a class body: no fix"),
        Invalid("""
from redis import Redis
from rq import Queue

queue = Queue(connection=Redis())

def notify_all(user_ids):
    for user_id in user_ids:
        queue.enqueue(send_digest, user_id, job_id=f"digest-{user_id}")
""", expect=8, message="enqueue_many", note="RQ: per-item job options fit in `prepare_data`"),
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
            costs = _REMEDY.get(site.framework)
            if not sends_message(site) or not site.call.loop_vars or costs is None:
                continue
            call = site.call
            src = ctx.source(site.file)
            used = _loop_names(call)
            if not used or in_lambda(src.utf8, call) or _small_or_batched(src, call, used):
                continue
            if _batch_cannot_express(src, site):
                continue
            names = ", ".join(f"`{n}`" for n in sorted(used))
            fix = self._fix(ctx, site)
            cost, remedy = costs
            ctx.report(site.file, call.span, f"`{call.dotted}(...)` in a loop over {names} {cost}; {remedy}",
                       fix=fix, statement=call.statement)

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
        if name is None or not _name_free_at(src, node, name.split(".")[0]):
            return None
        # ``from celery import group`` in its isort section, or joined to ``from celery import ...``.
        added = import_edits(ctx, src, "celery", "group") if needs_import else []
        if added is None:
            return None
        receiver = src.utf8[call.span.start:call.func_end - len(call.method)].decode("utf-8")
        start = _offset(src, node.lineno, node.col_offset)
        end = _offset(src, node.end_lineno, node.end_col_offset)
        text = _group_text(src, start, name, receiver, call, f"for {target} in {iterable}", ctx.line_length)
        edits = [Edit(start, end, text), *added]
        return ctx.fix(facts, f"Send the tasks as one `{name}`", edits)


def _group_text(src: SourceFile, start: int, name: str, receiver: str, call: CallFact, clause: str,
                line_length: int) -> str:
    """``group(receiver.s(args) clause).delay()`` as ruff's formatter and black write it: on one
    line when it fits; else the generator on a line of its own inside the parentheses; else its
    element and its ``for`` clause on lines of their own, the element's arguments one per line
    when it is still too long (a call already written over several lines keeps its layout: in
    the loop's body it had the indentation it has here)."""
    data = src.utf8
    line_start = data.rfind(b"\n", 0, start) + 1
    indent = data[line_start:start].decode("utf-8")
    nl = src.newline
    arguments = data[call.lpar:call.rpar].decode("utf-8")
    element = f"{receiver}s({arguments})"
    one_line = f"{name}({element} {clause}).delay()"
    if "\n" not in element and len(indent) + len(one_line) <= line_length:
        return one_line
    inner = indent + "    "
    if "\n" not in element and len(inner) + len(element) + 1 + len(clause) <= line_length:
        return f"{name}({nl}{inner}{element} {clause}{nl}{indent}).delay()"
    if "\n" not in element and len(inner) + len(element) > line_length and not call.has_star:
        spans = sorted([(a.span.start, a.span.end) for a in call.args] +
                       [(k.span.start, k.span.end) for k in call.kwargs.values()])
        if spans and (call.args_end is None or call.args_end <= spans[-1][1]):
            lines = "".join(f"{nl}{inner}    {data[a:b].decode('utf-8')}," for a, b in spans)
            element = f"{receiver}s({lines}{nl}{inner})"
    return f"{name}({nl}{inner}{element}{nl}{inner}{clause}{nl}{indent}).delay()"


def _read_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _call_node(src: SourceFile, call: CallFact) -> ast.Call | None:
    try:
        tree = _parse(src)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _offset(src, node.lineno, node.col_offset) == call.span.start and _offset(
                src, node.end_lineno, node.end_col_offset) == call.span.end:
            return node
    return None


def _per_item_names(loop: tuple[ast.AST, ast.AST, ast.AST]) -> set[str]:
    """Names that take a new value for each item of the loop: its targets, and every name its
    body (or the comprehension) assigns."""
    node, target, _ = loop
    names = _target_names(target)
    bodies = node.body if isinstance(node, (ast.For, ast.AsyncFor)) else [node]
    for body in bodies:
        names |= {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def _result_kept_per_item(loop: ast.AST, call: ast.Call) -> bool:
    """``result = task.delay(x)`` in a ``for`` loop's body: the code uses each item's result
    (a status link, an id per item) as it goes. Collecting results (``ids.append(...)``, a
    comprehension) is what a group's results give and is not this."""
    if not isinstance(loop, (ast.For, ast.AsyncFor)):
        return False
    for stmt in loop.body:
        for node in ast.walk(stmt):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is call:
                return True
    return False


def _batch_cannot_express(src: SourceFile, site: Site) -> bool:
    """The batch remedy does not fit this call: Celery options computed per item, or a producer
    passed already, each result kept as it comes; an RQ queue chosen per item, a pipeline passed
    already, a scheduled job."""
    call = site.call
    if site.framework == "rq" and (call.method in _RQ_SCHEDULED or "pipeline" in call.kwargs):
        return True
    if site.framework == "celery" and "producer" in call.kwargs:
        return True
    node = _call_node(src, call)
    loop = _innermost_loop(src, call)
    if node is None or loop is None:
        return True  # qlint cannot tell which options change per item
    if _result_kept_per_item(loop[0], node):
        return True
    per_item = _per_item_names(loop)
    if site.framework == "rq":
        queue = node.func.value if isinstance(node.func, ast.Attribute) else node.func
        return bool(_read_names(queue) & per_item)
    first_option = _ARGUMENT_POSITIONS.get(call.method)
    if first_option is None:
        return False  # ``delay(*args, **kwargs)``: every value is the task's own argument
    options: list[ast.AST] = list(node.args[first_option:])
    options += [kw.value for kw in node.keywords if kw.arg not in ("args", "kwargs")]
    return any(_read_names(option) & per_item for option in options)


def _name_free_at(src: SourceFile, loop: ast.For, name: str) -> bool:
    """``name`` means the module's binding where ``loop`` is: the loop is in a function (or at
    module level) that binds no local of that name (an import of Celery's ``group`` aside). A
    class body is refused: a generator expression there does not see the class's names."""
    tree = _parse(src)
    scope: ast.AST = tree
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and (
                node.lineno, node.col_offset) <= (loop.lineno, loop.col_offset) and (
                node.end_lineno, node.end_col_offset) >= (loop.end_lineno, loop.end_col_offset) and (
                scope is tree or (node.lineno, node.col_offset) >= (scope.lineno, scope.col_offset)):
            scope = node
    if isinstance(scope, ast.ClassDef):
        return False
    if scope is tree:
        return True
    args = scope.args
    if name in {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a}:
        return False
    for node in ast.walk(scope):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name:
            return False
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not scope and \
                node.name == name:
            return False
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if (alias.asname or alias.name.split(".")[0]) != name:
                    continue
                celery_group = isinstance(node, ast.ImportFrom) and node.module in ("celery", "celery.canvas") and \
                    alias.name == "group"
                if not celery_group and not (isinstance(node, ast.Import) and alias.name == "celery"):
                    return False
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return False
    return True


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
        if any(isinstance(n, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr))
               for part in (node.iter, inner) for n in ast.walk(part)):
            return None  # an async generator, or a syntax error, inside a generator expression
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


