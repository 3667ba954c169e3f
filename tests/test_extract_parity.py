"""The two readers of a module record the same facts.

``qlint.lint.extract`` reads with CPython's parser; ``qlint.lint.extract_cst`` reads with
libcst's, for syntax newer than the running interpreter. Rules must not be able to tell
which one read a file, so every offset, value and name must agree: over tricky hand-written
modules, over qlint's own sources (real code of every shape) and over generated modules.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import textwrap
from pathlib import Path

import hypothesmith
import libcst
import pytest
from hypothesis import HealthCheck, assume, given, settings

from qlint.lint import extract, extract_cst
from qlint.lint.source import SourceFile

ROOT = Path(__file__).resolve().parent.parent

TRICKY = {
    "factories": """
        import functools
        import dramatiq
        from dramatiq import actor as _actor

        def actor(actor_class=dramatiq.Actor, queue_name=None, *args, priority: int = 0, broker=None, **options):
            if queue_name is None:
                queue_name = "low"
            def decorator(fn):
                @functools.wraps(fn)
                async def _wrapped(*a, **k):
                    total = 0
                    total += 1
                    return await fn(*a, **k)
                _actor(_wrapped, actor_class=actor_class, queue_name=queue_name, **options)
                return _wrapped
            return decorator

        def task(fn=None, *, retries=3):
            return app.task(bind=True, max_retries=retries)(fn)

        def passthrough(fn, *rest):
            register(*rest)
            wrap(fn)(fn)
            other(fn=fn)
            return fn

        class Holder:
            def method(self, fn, limit=10):
                return shared_task(fn, time_limit=limit)
        """,
    "parenthesized": '''
        from celery import shared_task
        x = (foo.delay(1))
        y = ((bar.apply_async(args=(1, 2), countdown=(5))))
        z = (a), (b)
        t = (
            Option(1),  # first
            Option(2),
        )
        commented = (
            ValueError,
            zlib.error,  # a comment after the last element
        )
        nested = ((a), (b),)
        negated = list(filter(None.__ne__, items))
        empty = ()
        gen = "".join(str(i) for i in range(3))
        gen2 = sum((i for i in range(3)))
        call_of_paren = (g)(2)
        ''',
    "headers": '''
        @app.task(bind=True)  # why: here
        def f(self, a: "x:y" = {"k": 1}, *args, b=lambda: 1, **kw) -> "r:s":  # note: colon
            # a comment: with a colon
            return self.retry(exc=None, countdown=(60 * 5))

        class C(Base, metaclass=Meta):  # c: d
            """Doc."""
            name = "x"

        class D:
            a = 1; b = 2

        class E: pass

        class F:
            """Only a docstring."""
        ''',
    "bodies": '''
        import requests as rq
        from .sibling import thing
        from . import other
        from ..up import *

        @shared_task(autoretry_for=(ConnectionError, TimeoutError,), max_retries=None)
        async def task(order_id, *, user=None):
            global counter
            if order_id: rq.get(url); other.send()
            for i, (a, *rest) in enumerate(items):
                while True:
                    with transaction.atomic(), lock:
                        [t.delay(x) for x in xs if x]
                        {k: v.s() for k, v in d.items()}
            try:
                result = await client.enqueue_job("x", _defer_by=10)
                value = thing.get("key", 1).wait(timeout=-5)
            except (ValueError, KeyError) as exc:  # noqa: BLE001
                raise Retry() from exc
            except Exception:
                self.retry()
            else:
                pass
            finally:
                done = 1
            raise ValueError("bad" "input")
            match order_id:
                case {"a": 1, **others}:
                    pass
                case [first, *more] if first:
                    other.send(first)
                case Point(x=px) as pt:
                    pass
            return app.send_task("name", args=[1], kwargs={"a": 1, **extra})
        ''',
    "except_star": '''
        def task(order_id):
            try:
                other.send(order_id)
            except* OSError as group:
                other.send(group)
            except* (ValueError, KeyError):
                raise
        ''',
    "assignments": '''
        app.conf.task_time_limit = 60 * 5
        app.conf["broker_url"] = "redis://"
        app.conf.update(task_soft_time_limit=-(30), beat_schedule={"a": {"task": "t", "schedule": 1.5}})
        CELERY_TASK_SERIALIZER: str = "pickle"
        MULTI = (
            "one"
            "two"
        )
        FSTR = f"{host}:{port}"
        NUM = 1_000 + 2j
        LIMIT = timedelta(minutes=5).total_seconds()
        a = b = Celery("proj", broker=os.environ.get("BROKER", "redis://"))
        class Meta:
            x = [*a, *b]
        ''',
}


def _diff(a, b, path="facts"):
    """The first place two fact trees differ, or None."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        for f in dataclasses.fields(a):
            found = _diff(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
            if found:
                return found
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            found = _diff(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for index, (x, y) in enumerate(zip(a, b)):
            found = _diff(x, y, f"{path}[{index}]")
            if found:
                return found
        return None
    if a != b or type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    return None


def _both(text: str, name: str = "proj.tasks") -> tuple:
    src = SourceFile.from_text(Path("proj/tasks.py"), text)
    return extract.extract(src, name, False), extract_cst.extract(src, name, False)


# Modules CPython reads only from this version on (before it, ``extract`` hands them to libcst).
NEEDS = {"except_star": (3, 11)}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_modules_read_alike(name):
    if sys.version_info < NEEDS.get(name, (3,)):
        pytest.skip(f"CPython {sys.version_info[:2]} cannot parse this module")
    text = textwrap.dedent(TRICKY[name]).lstrip()
    ast.parse(text)  # both readers must see valid code
    by_ast, by_cst = _both(text)
    assert _diff(by_ast, by_cst) is None
    assert by_ast.functions or by_ast.assigns or by_ast.classes  # the module was read, not skipped


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_line_endings_read_alike(newline):
    text = textwrap.dedent(TRICKY["bodies"]).lstrip().replace("\n", newline)
    by_ast, by_cst = _both(text)
    assert by_ast.exact_offsets
    # libcst does not give back lone-CR text unchanged, and its facts say so (no fixes there);
    # every offset still agrees.
    by_cst.exact_offsets = True
    assert _diff(by_ast, by_cst) is None


def test_non_ascii_offsets_read_alike():
    text = 'NAME = "héllo wörld"\n@app.task(name="ünï")  # ça: va\ndef f(): return t.delay("日本")\n'
    by_ast, by_cst = _both(text)
    assert _diff(by_ast, by_cst) is None
    call = by_ast.functions[0].calls[0]
    assert text.encode()[call.span.start:call.span.end] == 't.delay("日本")'.encode()


def test_qlints_own_sources_read_alike():
    files = sorted((ROOT / "qlint").rglob("*.py"))
    assert len(files) > 100
    for path in files:
        src = SourceFile.from_bytes(path, path.read_bytes())
        by_ast = extract.extract(src, "m", False)
        by_cst = extract_cst.extract(src, "m", False)
        assert _diff(by_ast, by_cst) is None, path


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(hypothesmith.from_grammar())
def test_generated_modules_read_alike(source):
    assume("\x00" not in source)
    try:
        by_ast, by_cst = _both(source)
    except (SyntaxError, libcst.ParserSyntaxError, RecursionError, MemoryError):
        assume(False)  # a module one of the parsers rejects is not a parity question
        return
    assert by_ast.exact_offsets
    by_cst.exact_offsets = True  # libcst says when it cannot give the text back (no fixes then)
    assert _diff(by_ast, by_cst) is None


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this interpreter parses ``except A, B:`` itself")
def test_syntax_newer_than_the_interpreter_is_read_by_libcst():
    text = "from celery import shared_task\n\n@shared_task\ndef f():\n    try:\n        g()\n    except ValueError, KeyError:\n        pass\n"
    with pytest.raises(SyntaxError):
        ast.parse(text)
    facts = extract.extract(SourceFile.from_text(Path("proj/tasks.py"), text), "proj.tasks", False)
    assert [f.name for f in facts.functions] == ["f"]
    assert facts.functions[0].handlers[0].types == ["ValueError", "KeyError"]
    assert facts.functions[0].decorators[0].qualified == "celery.shared_task"


def test_syntax_error_names_cpythons_message():
    with pytest.raises(SyntaxError) as info:
        extract.extract(SourceFile.from_text(Path("proj/tasks.py"), "def f(:\n    pass\n"), "proj.tasks", False)
    assert info.value.lineno == 1


NEWER = '''
from celery import shared_task

type Payload = dict[str, "Item"]  # a comment: here
type Pair[T] = tuple[T,
                     T]; LIMIT = 60


class Box[T: (int, str)](Base):
    """Doc."""
    time_limit = LIMIT


@shared_task(autoretry_for=(ConnectionError,), max_retries=3)
def fetch[ItemT: Item](url: str, items: list[ItemT] = ()) -> None:
    try:
        requests.get(url, timeout=10)
    except ValueError, KeyError:
        raise
    except  OSError,  TimeoutError ,RuntimeError:
        fetch.retry(countdown=5)


async def gather[
    T,
    U,
](a: T, b: U):
    if a:
        type Local = int
    return await client.enqueue_job("x")
'''


def test_newer_syntax_reads_like_libcst_reads_it():
    """PEP 695 and PEP 758 syntax: rewritten in place for an older CPython (or parsed natively by
    a newer one); either way the facts are libcst's, offsets included."""
    by_ast, by_cst = _both(NEWER)
    assert _diff(by_ast, by_cst) is None
    task = next(f for f in by_ast.functions if f.name == "fetch")
    assert [h.types for h in task.handlers] == [["ValueError", "KeyError"], ["OSError", "TimeoutError", "RuntimeError"]]
    assert by_ast.assigns["LIMIT"].value.value == 60
    assert by_ast.classes[0].attrs["time_limit"].value.dotted == "LIMIT"


def test_rewrites_keep_every_offset_and_line():
    from qlint.lint import newer_syntax

    data = bytearray(NEWER.encode())
    rewrites = 0
    while True:
        try:
            compile(bytes(data).decode(), "m", "exec", ast.PyCF_ONLY_AST)
            break
        except SyntaxError as exc:
            if sys.version_info >= (3, 14):
                pytest.fail(str(exc))
            assert newer_syntax.downgrade(data, exc), exc
            rewrites += 1
    assert len(data) == len(NEWER.encode())
    assert bytes(data).count(b"\n") == NEWER.count("\n")
    assert sys.version_info >= (3, 12) or rewrites >= 6
    text = bytes(data).decode()
    assert "except(ValueError,KeyError):" in text and "; LIMIT = 60" in text


def test_code_no_rewrite_can_fix_falls_to_libcst_or_reports_the_first_error():
    broken = "type X = 1\ndef f(:\n    pass\n"
    with pytest.raises(SyntaxError) as info:
        extract.extract(SourceFile.from_text(Path("proj/tasks.py"), broken), "proj.tasks", False)
    assert info.value.lineno == (2 if sys.version_info >= (3, 12) else 1)


@pytest.mark.parametrize("newer", [
    'LABEL = f"{NAMES["a"]}"\n',  # PEP 701: CPython 3.12+ only, no rewrite: libcst reads it
    "def _f():\n    try:\n        pass\n    except ValueError, KeyError:\n        pass\n",  # PEP 758, rewritten
])
def test_fixes_apply_to_files_written_for_a_newer_python(tmp_path, newer):
    from helpers import findings, fix, write_project

    write_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/tasks.py": "from celery import Celery\n\napp = Celery('proj')\nNAMES = {'a': 1}\n" + newer +
                         "\n\n@app.task\ndef charge(order_id):\n    return order_id\n",
    })
    assert ("proj/tasks.py", "QLT101") in {(p, c) for p, _, c, _ in findings(tmp_path, ["QLT101"])}
    path = tmp_path / "proj/tasks.py"
    outcome = fix(tmp_path, ["QLT101"])
    assert not outcome.errors
    text = outcome.fixed[str(path)].text
    assert "@app.task(time_limit=" in text and newer in text
    path.write_text(text, encoding="utf-8")
    assert findings(tmp_path, ["QLT101"]) == []
    again = fix(tmp_path, ["QLT101"])
    assert again.count == 0 and not again.fixed  # a second fix changes nothing


def test_reading_leaves_no_reference_cycles():
    """A run turns the cyclic collector off: reading files, those CPython rejects or that need
    rewriting included, must leave no garbage only the collector could free."""
    import gc

    sources = [textwrap.dedent(TRICKY["bodies"]).lstrip(), NEWER, "def f(:\n    pass\n",
               'LABEL = f"{NAMES["a"]}"\n']
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(3):
            for text in sources:
                try:
                    extract.extract(SourceFile.from_text(Path("proj/tasks.py"), text), "proj.tasks", False)
                except SyntaxError:
                    pass
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()


def test_a_module_read_in_pieces_reads_as_read_whole(monkeypatch):
    """Large modules are parsed a piece at a time (``chunks``): every one of qlint's own sources,
    and a module whose cuts fall beside decorators, strings and brackets spanning def lines,
    record the same facts as when read whole."""
    from qlint.lint import chunks

    tricky = textwrap.dedent('''
        from celery import shared_task
        DOC = """
        def not_a_def():
            pass
        """
        CALL = dict(
        a=1,
        )

        @shared_task(
            time_limit=60,
        )
        @other
        def first(x):
            return DOC

        class Holder:
            def method(self):
                return 1

        def second(): return CALL
        ''' * 3).lstrip()
    files = [(p, p.read_bytes()) for p in sorted((ROOT / "qlint").rglob("*.py"))]
    files.append((Path("tricky.py"), tricky.encode()))
    cut = 0
    for path, data in files:
        src = SourceFile.from_bytes(path, data)
        whole = extract.extract(src, "m", False)
        monkeypatch.setattr(chunks, "THRESHOLD", 0)
        monkeypatch.setattr(chunks, "PIECE", 64)
        pieces = chunks.pieces_of(data, str(path))
        in_pieces = extract.extract(src, "m", False)
        monkeypatch.undo()
        cut += pieces is not None and len(pieces) > 2
        assert _diff(whole, in_pieces) is None, path
    assert cut > 50  # most modules were really cut
