"""Edge cases beyond the embedded examples: QLT105 (its fix above all), QLT601, QLT606."""

from __future__ import annotations

import ast

from tests.helpers import findings, fix, norm, write_project


def _rows(tmp_path, files, code):
    write_project(tmp_path, files)
    return [(p, row) for p, row, c, _ in findings(tmp_path, [code]) if c == code]


def _fixed(tmp_path, files, code):
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    return {str(p).replace(str(tmp_path) + "/", ""): s.text for p, s in outcome.fixed.items()}


# -- QLT105 ----------------------------------------------------------------------------

def test_qlt105_import_goes_after_the_module_level_imports_not_into_strings_or_blocks(tmp_path):
    source = '''
"""Tasks.

import this_is_prose
"""
from __future__ import annotations

from celery import (
    shared_task,
)

try:
    import ujson as json
except ImportError:
    import json

@shared_task(soft_time_limit=10, time_limit=20)
def export():
    try:
        pass
    except Exception:  # keep going
        pass
    publish()
'''
    fixed = _fixed(tmp_path, {"tasks.py": source}, "QLT105")["tasks.py"]
    assert fixed == norm('''
"""Tasks.

import this_is_prose
"""
from __future__ import annotations

from celery import (
    shared_task,
)
from celery.exceptions import SoftTimeLimitExceeded

try:
    import ujson as json
except ImportError:
    import json

@shared_task(soft_time_limit=10, time_limit=20)
def export():
    try:
        pass
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # keep going
        pass
    publish()
''')
    ast.parse(fixed)


def test_qlt105_fix_keeps_tabs_and_crlf(tmp_path):
    text = ("from celery import shared_task\r\n\r\n@shared_task(soft_time_limit=10)\r\ndef export():\r\n"
            "\ttry:\r\n\t\tpass\r\n\texcept BaseException:\r\n\t\tpass\r\n\tpublish()\r\n")
    (tmp_path / "tasks.py").write_bytes(text.encode())
    outcome = fix(tmp_path, ["QLT105"])
    [fixed] = [s.text for s in outcome.fixed.values()]
    assert fixed == ("from celery import shared_task\r\nfrom celery.exceptions import SoftTimeLimitExceeded\r\n\r\n"
                     "@shared_task(soft_time_limit=10)\r\ndef export():\r\n\ttry:\r\n\t\tpass\r\n"
                     "\texcept SoftTimeLimitExceeded:\r\n\t\traise\r\n\texcept BaseException:\r\n\t\tpass\r\n\tpublish()\r\n")


def test_qlt105_each_try_is_judged_on_its_own(tmp_path):
    source = """
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

@shared_task(soft_time_limit=10)
def export():
    try:
        try:
            pass
        except Exception:
            pass
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        pass
    try:
        pass
    except Exception:
        pass
    except BaseException:
        pass
    publish()
"""
    # The inner try swallows the timeout whatever the outer one does; in the last try only
    # the first catch-all can see it.
    assert _rows(tmp_path, {"tasks.py": source}, "QLT105") == [("tasks.py", 9), ("tasks.py", 17)]


def test_qlt105_timeout_reexported_by_the_project_counts_and_is_reused_by_the_fix(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/errors.py": "from celery.exceptions import SoftTimeLimitExceeded as Timeout\n",
        "proj/tasks.py": """
from celery import shared_task
from proj.errors import Timeout

@shared_task(soft_time_limit=10)
def export():
    try:
        pass
    except Timeout:
        raise
    except Exception:
        pass
    try:
        pass
    except Exception:
        pass
    publish()
""",
    }
    assert _rows(tmp_path, files, "QLT105") == [("proj/tasks.py", 14)]
    fixed = _fixed(tmp_path, files, "QLT105")["proj/tasks.py"]
    assert "    except Timeout:\n        raise\n    except Exception:\n        pass\n" in fixed.split("try:")[2]
    assert fixed.count("import") == 2


def test_qlt105_silent_when_the_soft_limit_cannot_be_computed(tmp_path):
    source = """
import os
from celery import shared_task

@shared_task(soft_time_limit=int(os.environ["SOFT"]))
def export():
    try:
        pass
    except Exception:
        pass
"""
    assert _rows(tmp_path, {"tasks.py": source}, "QLT105") == []


def test_qlt105_no_fix_when_the_name_is_used_in_a_function(tmp_path):
    source = """
from celery import shared_task

@shared_task(soft_time_limit=10)
def export(SoftTimeLimitExceeded=None):
    try:
        pass
    except Exception:
        pass
    publish()
"""
    assert _rows(tmp_path, {"tasks.py": source}, "QLT105") == [("tasks.py", 7)]
    assert _fixed(tmp_path, {"tasks.py": source}, "QLT105") == {}


# -- QLT601 / QLT606 -------------------------------------------------------------------

def test_qlt601_get_on_a_dict_named_like_a_result_elsewhere(tmp_path):
    source = """
from celery import shared_task

@shared_task
def first(url):
    result = fetch.delay(url)
    return result

@shared_task
def second(data):
    result = {}
    return result.get("x")
"""
    assert _rows(tmp_path, {"tasks.py": source}, "QLT601") == []


def test_qlt606_reports_only_the_async_task(tmp_path):
    source = """
from celery import Celery

app = Celery("proj")

@app.task
async def one():
    pass

@app.task
def two():
    pass
"""
    assert _rows(tmp_path, {"tasks.py": source}, "QLT606") == [("tasks.py", 5)]
