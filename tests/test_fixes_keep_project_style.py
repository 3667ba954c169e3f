"""Fixes keep the project's own checks clean: an import a fix adds lands where the project's
import sorter puts it, and a call a fix lengthens past the line length is split as the formatter
splits it. Checked by real ruff (``ruff check --select I``, ``ruff format --check``), on blocks
ruff itself sorted, with the project's settings."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from qlint.fixers.imports import add_import
from qlint.fixers.style import Style, project_style
from qlint.lint.source import SourceFile

RUFF = Path(sys.executable).with_name("ruff")


def _project(tmp_path: Path, pyproject: str = "") -> Path:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text(pyproject)
    project_style.cache_clear()
    return tmp_path


def _add(root: Path, text: str, module: str, name: str | None = None, rel: str = "proj/tasks.py") -> str | None:
    path = root / rel
    path.write_text(text)
    src = SourceFile.from_text(path, text)
    edits = add_import(src, module, name, project_style(root))
    if edits is None:
        return None
    data = text.encode("utf-8")
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        data = data[:edit.start] + edit.content.encode("utf-8") + data[edit.end:]
    return data.decode("utf-8")


def _ruff_clean(root: Path, text: str, rel: str = "proj/tasks.py") -> bool:
    (root / rel).write_text(text)
    result = subprocess.run([str(RUFF), "check", "--no-cache", "--select", "I", "-q", rel], cwd=root,
                            capture_output=True, text=True)
    return result.returncode == 0


def test_a_third_party_import_goes_into_its_section_sorted(tmp_path):
    root = _project(tmp_path)
    before = ("import os\n\nimport redis\nfrom celery import shared_task\nfrom kombu import Queue\n\n"
              "from proj.models import Order\n\nfrom .utils import pull\n\n\n@shared_task\ndef sync():\n    pull()\n")
    after = _add(root, before, "celery.exceptions", "SoftTimeLimitExceeded")
    assert after == before.replace("from celery import shared_task\n",
                                   "from celery import shared_task\nfrom celery.exceptions import SoftTimeLimitExceeded\n")
    assert _ruff_clean(root, after)


def test_a_name_joins_the_from_import_of_its_module_in_type_order(tmp_path):
    root = _project(tmp_path)
    before = "from celery import shared_task\nfrom celery.exceptions import Reject, retry\n"
    after = _add(root, before, "celery.exceptions", "SoftTimeLimitExceeded")
    assert after == "from celery import shared_task\nfrom celery.exceptions import Reject, SoftTimeLimitExceeded, retry\n"
    assert _ruff_clean(root, after)


def test_a_name_joins_a_wrapped_from_import_on_a_line_of_its_own(tmp_path):
    root = _project(tmp_path)
    before = "from celery.exceptions import (\n    MaxRetriesExceededError,\n    Reject,\n    TimeLimitExceeded,\n)\n"
    after = _add(root, before, "celery.exceptions", "SoftTimeLimitExceeded")
    assert after == before.replace("    Reject,\n", "    Reject,\n    SoftTimeLimitExceeded,\n")
    assert _ruff_clean(root, after)


def test_no_edit_when_joining_would_pass_the_line_length(tmp_path):
    root = _project(tmp_path, "[tool.ruff]\nline-length = 60\n")
    before = "from celery.exceptions import MaxRetriesExceededError, Reject\n"
    assert _add(root, before, "celery.exceptions", "SoftTimeLimitExceeded") is None
    assert project_style(root).line_length == 60


def test_a_missing_section_is_opened_between_its_neighbours(tmp_path):
    root = _project(tmp_path)
    before = "import os\n\nfrom proj.models import Order\n\nX = 1\n"
    after = _add(root, before, "celery.exceptions", "SoftTimeLimitExceeded")
    assert after == "import os\n\nfrom celery.exceptions import SoftTimeLimitExceeded\n\nfrom proj.models import Order\n\nX = 1\n"
    assert _ruff_clean(root, after)
    last = _add(root, "from __future__ import annotations\n\nimport celery\n\nX = 1\n", "os")
    assert last == "from __future__ import annotations\n\nimport os\n\nimport celery\n\nX = 1\n"
    assert _ruff_clean(root, last)


def test_known_first_party_is_read_from_the_project(tmp_path):
    root = _project(tmp_path, '[tool.ruff.lint.isort]\nknown-first-party = ["acme"]\n')
    before = "import celery\n\nfrom proj import models\n"
    after = _add(root, before, "acme.timeouts", "Timeout")
    assert after == "import celery\n\nfrom acme.timeouts import Timeout\nfrom proj import models\n"
    assert _ruff_clean(root, after)


def test_a_module_without_imports_gets_a_block_after_its_docstring(tmp_path):
    root = _project(tmp_path)
    after = _add(root, '"""Tasks."""\n\n\ndef f():\n    pass\n', "asyncio")
    assert after == '"""Tasks."""\n\nimport asyncio\n\n\ndef f():\n    pass\n'
    assert _ruff_clean(root, after)
    bare = _add(root, "# licence\nBROKER = 1\n", "os")
    assert bare == "# licence\nimport os\n\nBROKER = 1\n"
    assert _ruff_clean(root, bare)


def test_a_comment_above_an_import_stays_with_it(tmp_path):
    root = _project(tmp_path)
    before = "import celery\n\n# the client the workers share\nimport redis\n"
    after = _add(root, before, "kombu")
    assert after == "import celery\nimport kombu\n\n# the client the workers share\nimport redis\n"
    assert _ruff_clean(root, after)
    first = _add(root, "# the task API\nimport celery\n", "billiard")
    assert first == "import billiard\n\n# the task API\nimport celery\n"
    assert _ruff_clean(root, first)


def test_no_edit_beside_statements_joined_by_semicolons(tmp_path):
    root = _project(tmp_path)
    assert _add(root, "import os; import sys\n", "asyncio") is None


STDLIB = ["os", "sys", "json", "collections.abc", "logging", "asyncio"]
THIRD = ["celery", "celery.exceptions", "requests", "redis", "django.conf", "kombu", "Django"]
FIRST = ["proj.models", "proj.utils", "proj"]
NAMES = ["Reject", "TIMEOUT", "retry", "SoftTimeLimitExceeded", "shared_task", "Queue", "settings"]


@pytest.mark.parametrize("seed", range(40))
def test_adding_to_a_block_ruff_sorted_keeps_it_sorted(tmp_path, seed):
    """Random blocks sorted by ``ruff --fix``; any import added keeps ``ruff check --select I`` clean."""
    rng = random.Random(seed)
    root = _project(tmp_path)
    lines = []
    for module in rng.sample(STDLIB + THIRD + FIRST, rng.randint(0, 6)):
        if rng.random() < 0.5:
            lines.append(f"import {module}")
        else:
            lines.append(f"from {module} import {', '.join(rng.sample(NAMES, rng.randint(1, 3)))}")
    if rng.random() < 0.3:
        lines.append("from . import sibling")
    body = "\n".join(lines) + ("\n\n\n" if lines else "") + "def task():\n    pass\n"
    if rng.random() < 0.3:
        body = '"""Tasks."""\n\n' + body
    path = root / "proj" / "tasks.py"
    path.write_text(body)
    subprocess.run([str(RUFF), "check", "--no-cache", "--select", "I", "--fix", "-q", "proj/tasks.py"], cwd=root,
                   capture_output=True)
    sorted_text = path.read_text()
    assert _ruff_clean(root, sorted_text)
    module = rng.choice(STDLIB + THIRD + FIRST)
    name = rng.choice([None, *NAMES])
    after = _add(root, sorted_text, module, name)
    if after is None:
        return  # no placement qlint is sure of: no fix, which leaves the file as clean as it was
    assert _ruff_clean(root, after), f"{sorted_text}\n-- after adding {module} {name} --\n{after}"


def test_style_reads_line_length_from_black_and_flake8(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")
    project_style.cache_clear()
    assert project_style(tmp_path).line_length == 100
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "setup.cfg").write_text("[flake8]\nmax-line-length = 120\n")
    project_style.cache_clear()
    assert project_style(tmp_path).line_length == 120
    assert Style().line_length == 88


# -- keywords added to a call that would pass the line length ---------------------------------

def _add_keywords(root: Path, text: str, items, line_length: int) -> str:
    from qlint.fixers.calls import add_keywords
    from qlint.lint.extract import extract

    path = root / "proj" / "tasks.py"
    path.write_text(text)
    src = SourceFile.from_text(path, text)
    facts = extract(src, "proj.tasks", False)
    [call] = [c for fn in facts.functions for c in fn.decorators] if facts.functions else []
    edits = add_keywords(src, call, items, line_length)
    data = text.encode("utf-8")
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        data = data[:edit.start] + edit.content.encode("utf-8") + data[edit.end:]
    return data.decode("utf-8")


def _ruff_format_clean(root: Path, text: str, line_length: int) -> bool:
    (root / "proj" / "tasks.py").write_text(text)
    (root / "pyproject.toml").write_text(f"[tool.ruff]\nline-length = {line_length}\n")
    result = subprocess.run([str(RUFF), "format", "--no-cache", "--check", "-q", "proj/tasks.py"], cwd=root,
                            capture_output=True, text=True)
    return result.returncode == 0


@pytest.mark.parametrize("decorator", ['@app.task(bind=True, acks_late=True, queue="billing")', "@app.task"])
def test_a_call_pushed_past_the_line_length_is_written_one_argument_per_line(tmp_path, decorator):
    root = _project(tmp_path)
    text = f"from proj.celery import app\n\n\n{decorator}\ndef charge(self, order_id):\n    pass\n"
    after = _add_keywords(root, text, [("time_limit", "300"), ("soft_time_limit", "270")], 40)
    args = [*(['bind=True', 'acks_late=True', 'queue="billing"'] if "(" in decorator else []),
            "time_limit=300", "soft_time_limit=270"]
    expected = "@app.task(\n" + "".join(f"    {a},\n" for a in args) + ")\n"
    assert expected in after
    assert _ruff_format_clean(root, after, 40)  # the formatter keeps it: its magic trailing comma


def test_a_call_that_still_fits_stays_on_its_line(tmp_path):
    root = _project(tmp_path)
    text = "from proj.celery import app\n\n\n@app.task(bind=True)\ndef charge(self, order_id):\n    pass\n"
    after = _add_keywords(root, text, [("time_limit", "300")], 88)
    assert "@app.task(bind=True, time_limit=300)\n" in after
    assert _ruff_format_clean(root, after, 88)


def _call_fix(root: Path, text: str, make) -> str:
    from qlint.lint.extract import extract

    path = root / "proj" / "tasks.py"
    path.write_text(text)
    src = SourceFile.from_text(path, text)
    facts = extract(src, "proj.tasks", False)
    [call] = [c for fn in facts.functions for c in fn.calls if c.method in ("delay", "apply_async")]
    data = text.encode("utf-8")
    for edit in sorted(make(src, call), key=lambda e: e.start, reverse=True):
        data = data[:edit.start] + edit.content.encode("utf-8") + data[edit.end:]
    return data.decode("utf-8")


BODY = "from proj.tasks import sync\n\n\ndef save(profile):\n    {call}\n"


@pytest.mark.parametrize("width,split", [(60, True), (88, False)])
def test_a_longer_method_name_splits_the_call_only_past_the_line_length(tmp_path, width, split):
    from qlint.fixers.calls import rename_method

    root = _project(tmp_path)
    text = BODY.format(call="sync.apply_async(args=[profile.pk], countdown=5)")
    after = _call_fix(root, text, lambda src, call: rename_method(src, call, "apply_async_on_commit", width))
    one_line = "    sync.apply_async_on_commit(args=[profile.pk], countdown=5)\n"
    assert (one_line not in after) is split
    if split:
        assert "sync.apply_async_on_commit(\n        args=[profile.pk],\n        countdown=5,\n    )\n" in after
    assert _ruff_format_clean(root, after, width)


@pytest.mark.parametrize("width,split", [(60, True), (88, False)])
def test_a_wrapped_call_is_split_only_past_the_line_length(tmp_path, width, split):
    from qlint.fixers.calls import wrap_call

    root = _project(tmp_path)
    text = BODY.format(call="sync.delay(profile.pk, reason='signup')")
    after = _call_fix(root, text, lambda src, call: wrap_call(src, call, "transaction.on_commit", "lambda: ", width))
    if split:
        assert "transaction.on_commit(\n        lambda: sync.delay(profile.pk, reason='signup'),\n    )\n" in after
    else:
        assert "    transaction.on_commit(lambda: sync.delay(profile.pk, reason='signup'))\n" in after
    # (the formatter would also turn the example's quotes to double ones: not the fix's doing)
    assert _ruff_format_clean(root, after.replace("'signup'", '"signup"'), width)


LOOP = '''from celery import group

from proj.tasks import send_digest


def notify_all(users):
    for user in users:
        send_digest.delay({args})
'''


@pytest.mark.parametrize("args,width", [
    ("user.pk", 88),                                              # one line
    ("user.pk, force=True, reason='weekly digest'", 60),          # the generator on a line of its own
    ("user.pk, force=True, reason='weekly digest', locale=user.locale, channel='email'", 88),  # element, clause
    ("\n            user.pk,\n            force=True,\n        ", 88),  # a call already split: kept so
])
def test_qlt604_group_is_written_as_the_formatter_writes_it(tmp_path, args, width):
    root = _project(tmp_path, f"[tool.ruff]\nline-length = {width}\n")
    text = LOOP.format(args=args).replace("'", '"')
    (root / "proj" / "tasks.py").write_text(
        "from celery import shared_task\n\n\n@shared_task\ndef send_digest(*args, **kwargs):\n    pass\n")
    (root / "proj" / "notify.py").write_text(text)
    from tests.helpers import fix

    outcome = fix(root, ["QLT604"])
    [fixed] = [f.text for p, f in outcome.fixed.items() if p.endswith("notify.py")]
    assert "group(" in fixed and "for user in users" in fixed
    (root / "proj" / "notify.py").write_text(fixed)
    result = subprocess.run([str(RUFF), "format", "--no-cache", "--check", "--diff", "proj/notify.py"], cwd=root,
                            capture_output=True, text=True)
    assert result.returncode == 0, fixed + result.stdout
