"""Property tests of the fix loop and the engine.

1. Generated Celery task modules (decorator spellings, multi-line calls with and without
   trailing commas and comments, class-based tasks, retries in except handlers, pickle
   settings, unbounded limits): after ``--fix --unsafe-fixes`` every file still parses
   (libcst and ``ast``), and a second fix run changes nothing.
2. Arbitrary modules from the Python grammar (hypothesmith): no exception escapes the
   linter; a file it cannot parse is a ``FileError``.
"""

from __future__ import annotations

import ast
import tempfile
import textwrap
from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import fix, make_linter
from qlint.lint.fixing import fix_loop

HEADER = """\
from celery import Celery, Task, shared_task

app = Celery("proj")
"""

OPTION_VALUES = {
    "bind": ["True", "False"],
    "max_retries": ["None", "5", "0"],
    "time_limit": ["None", "60", "300", "float('inf')"],
    "soft_time_limit": ["None", "30", "60", "600"],
    "serializer": ['"pickle"', "'json'", '"application/x-python-serialize"'],
    "acks_late": ["True"],
    "autoretry_for": ["(Exception,)", "(ConnectionError, TimeoutError)"],
    "retry_backoff": ["True", "False", "5"],
    "default_retry_delay": ["10", "None"],
    "name": ['"proj.custom"'],
}

COMMENTS = ["", "  # keep", "  # noqa: E501", "  # why: see #12"]


@st.composite
def options(draw):
    keys = draw(st.lists(st.sampled_from(sorted(OPTION_VALUES)), unique=True, max_size=5))
    return [(k, draw(st.sampled_from(OPTION_VALUES[k]))) for k in keys]


@st.composite
def decorator(draw, indent: str):
    """One task decorator, in one of the spellings people write."""
    target = draw(st.sampled_from(["app.task", "shared_task"]))
    opts = draw(options())
    style = draw(st.sampled_from(["bare", "empty", "one_line", "multi", "multi_comma", "hanging"]))
    if style == "bare" or (style != "empty" and not opts):
        return f"@{target}", opts if style != "bare" else [], False
    if style == "empty":
        return f"@{target}()", [], False
    args = [f"{k}={v}" for k, v in opts]
    if style == "one_line":
        return f"@{target}({', '.join(args)})", opts, False
    if style == "hanging":  # first argument on the decorator line
        lines = [f"@{target}({args[0]},"] + [f"{indent * 2}{a}," for a in args[1:]]
        lines[-1] = lines[-1].rstrip(",")
        return "\n".join(lines) + ")", opts, True
    comma = style == "multi_comma"
    lines = [f"@{target}({draw(st.sampled_from(COMMENTS))}"]
    for i, arg in enumerate(args):
        last = i == len(args) - 1
        sep = "," if (not last or comma) else ""
        lines.append(f"{indent}{arg}{sep}{draw(st.sampled_from(COMMENTS))}")
    lines.append(")")
    return "\n".join(lines), opts, True


@st.composite
def handler(draw, indent: str, bound: bool):
    """A try/except whose handler retries (or not)."""
    name = draw(st.sampled_from(["exc", "e", "error", None]))
    types = draw(st.sampled_from(["Exception", "(IOError, ValueError)", "ConnectionError", ""]))
    head = "except" + (f" {types}" if types else "") + (f" as {name}" if name and types else "") + ":"
    receiver = "self" if bound else "rebuild"
    retry = draw(st.sampled_from([
        f"raise {receiver}.retry(exc={name})" if name and types else f"raise {receiver}.retry()",
        f"{receiver}.retry(countdown=5)",
        f"raise {receiver}.retry(countdown=2 ** {receiver}.request.retries, max_retries=None)",
        "raise",
        "pass",
    ]))
    body = [f"{indent}try:", f"{indent * 2}do_work()", f"{indent}{head}", f"{indent * 2}{retry}"]
    return "\n".join(body)


@st.composite
def function_task(draw, indent: str, index: int):
    deco, opts, _ = draw(decorator(indent))
    bound = ("bind", "True") in opts
    params = "self, item" if bound else "item"
    lines = [deco, f"def job_{index}({params}):"]
    if draw(st.booleans()):
        lines.append(f'{indent}"""Do job {index}."""')
    if draw(st.booleans()):
        lines.append(draw(handler(indent, bound)))
    lines.append(f"{indent}return item")
    return "\n".join(lines)


@st.composite
def class_task(draw, indent: str, index: int):
    base = draw(st.sampled_from(["Task", "app.Task"]))
    lines = [f"class Job{index}({base}):"]
    if draw(st.booleans()):
        doc = draw(st.sampled_from([f'"""Job {index}."""', f'"""Job {index}.\n\n{indent}More.\n{indent}"""',
                                    f"'''Job {index}.'''"]))
        lines.append(f"{indent}{doc}")
    attrs = draw(st.lists(st.sampled_from(["name", "time_limit", "soft_time_limit", "max_retries",
                                           "serializer", "acks_late"]), unique=True, max_size=3))
    for attr in attrs:
        value = {"name": f'"job{index}"'}.get(attr) or draw(st.sampled_from(OPTION_VALUES.get(attr, ["True"])))
        lines.append(f"{indent}{attr} = {value}")
    run = [f"{indent}def run(self, item):"]
    if draw(st.booleans()):
        run.append(textwrap.indent(draw(handler(indent, True)), indent))
    run.append(f"{indent * 2}return item")
    lines += [""] + run
    return "\n".join(lines)


@st.composite
def config(draw):
    lines = []
    if draw(st.booleans()):
        lines.append("app.conf.accept_content = " + draw(st.sampled_from([
            '["json", "pickle"]', "['pickle']", '("pickle", "json")', '["pickle", "application/x-python-serialize"]',
            '[\n    "json",\n    "pickle",\n]', '["json"]'])))
    if draw(st.booleans()):
        lines.append("app.conf.task_serializer = " + draw(st.sampled_from(['"pickle"', "'json'"])))
    if draw(st.booleans()):
        lines.append("app.conf.update(" + draw(st.sampled_from([
            "task_time_limit=None", "result_serializer='pickle'", "task_soft_time_limit=60",
            "\n    result_accept_content=['pickle'],\n    task_acks_late=True,\n"])) + ")")
    return "\n".join(lines)


@st.composite
def task_modules(draw):
    indent = draw(st.sampled_from(["    ", "  ", "\t"]))
    parts = [HEADER + draw(config())]
    n = draw(st.integers(1, 4))
    for i in range(n):
        kind = draw(st.sampled_from(["function", "function", "class"]))
        parts.append(draw(function_task(indent, i) if kind == "function" else class_task(indent, i)))
    parts.append("def do_work():\n" + indent + "return 1")
    if draw(st.booleans()):
        parts.append("def later(item):\n" + indent + draw(st.sampled_from([
            'job_0.apply_async((item,), serializer="pickle")', "job_0.delay(item)"])))
    return "\n\n\n".join(parts) + "\n"


def _write(root: Path, text: str) -> Path:
    path = root / "tasks.py"
    path.write_text(text, encoding="utf-8")
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_modules())
def test_fixes_parse_and_converge(source):
    ast.parse(source)  # the generator writes valid Python
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = _write(root, source)
        outcome = fix(root, unsafe=True)
        assert not outcome.errors, (source, outcome.errors)
        for key, new in outcome.fixed.items():
            text = new.raw.decode("utf-8")
            cst.parse_module(text)
            ast.parse(text)
            Path(key).write_bytes(new.raw)
        fixed_text = path.read_text(encoding="utf-8")

        again = fix(root, unsafe=True)
        assert not again.errors, (fixed_text, again.errors)
        assert again.fixed == {}, (source, fixed_text, {k: v.text for k, v in again.fixed.items()})
        assert again.count == 0
        # nothing that remains is fixable any more
        assert not [d for d in again.remaining if d.fix is not None], \
            (fixed_text, [(d.code, d.location) for d in again.remaining if d.fix is not None])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_modules())
def test_safe_fix_run_changes_nothing(source):
    """Every qlint fix is unsafe so far: without unsafe fixes nothing changes."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root, source)
        outcome = fix(root, unsafe=False)
        unsafe_only = all(d.fix is None or d.fix.applicability.value != "safe" for d in outcome.remaining)
        if unsafe_only:
            assert outcome.fixed == {}


PROJ = {
    "proj/__init__.py": "",
    "proj/celery.py": HEADER + 'app.config_from_object("proj.celeryconfig")\n',
    "proj/celeryconfig.py": "task_time_limit = None\naccept_content = ['json', 'pickle']\n",
}


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # hypothesmith compiles what it generates
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(hypothesmith.from_grammar())
def test_arbitrary_modules_never_raise(source):
    assume("\x00" not in source)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in PROJ.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        (root / "proj/tasks.py").write_text("from proj.celery import app\n" + source, encoding="utf-8")
        linter = make_linter(root)
        linter.lint()  # must not raise
        fix_loop(make_linter(root), True)  # nor the fix loop
        for err in linter.errors:
            assert Path(err.path).name == "tasks.py"
            assert err.message
