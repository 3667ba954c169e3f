"""Edge cases of the retry rules beyond their embedded examples: QLT202, QLT204, QLT205."""

from __future__ import annotations

from tests.helpers import findings, fix, norm, write_project

CELERY_PY = """
from celery import Celery

app = Celery("proj")
"""


def _run(tmp_path, files, code):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code])]


def _fixed(tmp_path, files, code):
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    return {str(p).replace(str(tmp_path) + "/", ""): s.text for p, s in outcome.fixed.items()}


# -- QLT202 ----------------------------------------------------------------------------

def test_qlt202_backoff_from_task_annotations_is_respected(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": CELERY_PY + 'app.conf.task_annotations = {"*": {"retry_backoff": True}}\n',
        "proj/tasks.py": """
from proj.celery import app

@app.task(autoretry_for=(OSError,))
def upload(path):
    pass
""",
    }
    assert _run(tmp_path, files, "QLT202") == []


def test_qlt202_autoretry_in_base_class_is_reported_and_fixed_in_the_class(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": CELERY_PY + """
class Resilient(app.Task):
    autoretry_for = (OSError,)
    default_retry_delay = 20
""",
        "proj/tasks.py": """
from proj.celery import app, Resilient

@app.task(base=Resilient)
def upload(path):
    pass

@app.task(base=Resilient)
def download(url):
    pass
""",
    }
    got = _run(tmp_path, files, "QLT202")
    assert [(p, row) for p, row, _ in got] == [("proj/celery.py", 6)]
    assert "fixed default_retry_delay of 20 s" in got[0][2]
    assert "class Resilient" in got[0][2]
    fixed = _fixed(tmp_path, files, "QLT202")
    assert fixed == {"proj/celery.py": norm(CELERY_PY + """
class Resilient(app.Task):
    retry_backoff = True
    autoretry_for = (OSError,)
    default_retry_delay = 20
""")}


def test_qlt202_backoff_false_in_wrapper_is_overridden_in_the_decorator(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": CELERY_PY + """
import functools
from celery import shared_task

task = functools.partial(shared_task, retry_backoff=False)
""",
        "proj/tasks.py": """
from proj.celery import task

@task(autoretry_for=(OSError,))
def upload(path):
    pass
""",
    }
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT202")] == [("proj/tasks.py", 3)]
    assert _fixed(tmp_path, files, "QLT202") == {"proj/tasks.py": norm("""
from proj.celery import task

@task(autoretry_for=(OSError,), retry_backoff=True)
def upload(path):
    pass
""")}


def test_qlt202_backoff_false_in_base_class_is_flipped_in_the_class(tmp_path):
    # autoretry_for in the decorator, retry_backoff=False in a base: adding True to the decorator wins.
    files = {
        "tasks.py": """
from celery import Celery, Task

app = Celery("proj")

class Base(Task):
    retry_backoff = False

@app.task(base=Base, autoretry_for=(OSError,))
def upload(path):
    pass
""",
    }
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT202")] == [("tasks.py", 8)]
    fixed = _fixed(tmp_path, files, "QLT202")
    assert list(fixed) == ["tasks.py"]
    # The effective value is the class's: flipping it is the one edit that takes effect.
    assert "retry_backoff = True" in fixed["tasks.py"]


def test_qlt202_backoff_false_in_a_base_in_another_file_is_overridden_by_the_decorator(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": CELERY_PY + """
class Base(app.Task):
    retry_backoff = False
""",
        "proj/tasks.py": """
from proj.celery import app, Base

@app.task(base=Base, autoretry_for=(OSError,))
def upload(path):
    pass
""",
    }
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT202")] == [("proj/tasks.py", 3)]
    assert _fixed(tmp_path, files, "QLT202") == {"proj/tasks.py": norm("""
from proj.celery import app, Base

@app.task(base=Base, autoretry_for=(OSError,), retry_backoff=True)
def upload(path):
    pass
""")}


def test_qlt202_empty_or_unknown_autoretry_is_not_reported(tmp_path):
    files = {
        "tasks.py": """
from celery import shared_task
from elsewhere import RETRY_ON

@shared_task(autoretry_for=())
def a():
    pass

@shared_task(autoretry_for=RETRY_ON)
def b():
    pass

@shared_task(autoretry_for=(OSError,), retry_backoff=BACKOFF)
def c():
    pass

@shared_task(autoretry_for=(OSError,), retry_kwargs=KWARGS)
def d():
    pass
""",
    }
    # RETRY_ON is an import from outside the project: a class or a tuple, non-empty either way.
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT202")] == [("tasks.py", 8)]


def test_qlt202_manual_retry_positional_eta_and_star_kwargs(tmp_path):
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task(bind=True)
def a(self, x):
    self.retry((x,), {}, None, True, None, 30)
    self.retry(**RETRY)
    self.retry(
        exc=ValueError(),
    )  # noqa: QLT202
""",
    }
    assert _run(tmp_path, files, "QLT202") == []


def test_qlt202_retry_in_nested_function_is_not_the_task(tmp_path):
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task(bind=True, default_retry_delay=10)
def a(self, x):
    def helper(self):
        self.retry()
    helper(x)
""",
    }
    assert _run(tmp_path, files, "QLT202") == []


# -- QLT204 ----------------------------------------------------------------------------

def test_qlt204_noqa_on_the_def_line_applies(tmp_path):
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task
def charge(self, order_id):  # noqa: QLT204
    raise self.retry()
""",
    }
    assert _run(tmp_path, files, "QLT204") == []


def test_qlt204_decorator_with_star_kwargs_is_not_judged(tmp_path):
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task(**OPTIONS)
def charge(self, order_id):
    raise self.retry()
""",
    }
    assert _run(tmp_path, files, "QLT204") == []


def test_qlt204_bare_decorator_gets_a_call(tmp_path):
    files = {
        "tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task
def charge(self, order_id):
    return self.request.id
""",
    }
    got = _run(tmp_path, files, "QLT204")
    assert [(p, row) for p, row, _ in got] == [("tasks.py", 5)]
    assert "self.request" in got[0][2]
    assert _fixed(tmp_path, files, "QLT204") == {"tasks.py": norm("""
from celery import Celery

app = Celery("proj")

@app.task(bind=True)
def charge(self, order_id):
    return self.request.id
""")}


# -- QLT205 ----------------------------------------------------------------------------

def test_qlt205_multiline_parenthesized_types(tmp_path):
    # (``except A :`` with a space is not tested: libcst 1.9 drops that space when parsing,
    # Instagram/LibCST#1457, which shifts every later byte offset of the file by one.)
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except (
        ConnectionError,
        TimeoutError,
    ):
        raise self.retry(countdown=5)
""",
    }
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT205")] == [("tasks.py", 11)]
    assert _fixed(tmp_path, files, "QLT205") == {"tasks.py": norm("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except (
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise self.retry(countdown=5, exc=exc)
""")}


def test_qlt205_two_retries_in_one_handler_share_the_name(tmp_path):
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except OSError:
        if order_id:
            raise self.retry(countdown=5)
        raise self.retry(countdown=50)
""",
    }
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT205")] == [("tasks.py", 9), ("tasks.py", 10)]
    assert _fixed(tmp_path, files, "QLT205") == {"tasks.py": norm("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except OSError as exc:
        if order_id:
            raise self.retry(countdown=5, exc=exc)
        raise self.retry(countdown=50, exc=exc)
""")}


def test_qlt205_noqa_on_any_line_of_the_statement(tmp_path):
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except OSError:
        raise self.retry(
            countdown=5,
        )  # noqa: QLT205
""",
    }
    assert _run(tmp_path, files, "QLT205") == []


def test_qlt205_judges_the_retry_of_a_task_that_forgot_bind(tmp_path):
    """QLT204 reports the missing ``bind=True``; the retry is judged as the one it is meant to be,
    so that QLT204's fix reveals no finding the first run did not report."""
    files = {
        "tasks.py": """
from celery import shared_task

@shared_task
def charge(self, order_id):
    try:
        pass
    except OSError:
        raise self.retry()
""",
    }
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT205")] == [("tasks.py", 8)]
    assert [(p, row) for p, row, _ in _run(tmp_path, files, "QLT204")] == [("tasks.py", 3)]
