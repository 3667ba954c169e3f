"""Retry messages that state what the framework really does: QLT202, QLT203, QLT505.

Each message names the retry count and delay the task really gets (``retry_kwargs``, base
classes, ``task_annotations``, Celery's defaults as ``celery/app/autoretry.py`` combines them),
and QLT505 says a bad message "fails again" only where the framework surely retries it.
"""

from __future__ import annotations

import pytest

from tests.helpers import findings, write_project

APP = """
from celery import Celery

app = Celery("proj")
"""


def _run(tmp_path, files, code):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code]) if c == code]


def _one(tmp_path, files, code) -> str:
    got = _run(tmp_path, files, code)
    assert len(got) == 1, got
    return got[0][2]


def _celery(body: str) -> dict[str, str]:
    return {"proj/__init__.py": "", "proj/celery.py": APP, "proj/tasks.py": "from proj.celery import app\n" + body}


# -- QLT202: the delay and count the retries really get --------------------------------

def test_qlt202_count_from_retry_kwargs_and_delay_from_a_base_in_another_module(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": APP + """
class Resilient(app.Task):
    default_retry_delay = 20
    max_retries = 2
""",
        "proj/tasks.py": """
from proj.celery import app, Resilient

@app.task(base=Resilient, autoretry_for=(OSError,), retry_kwargs={"max_retries": 5})
def upload(path):
    pass
""",
    }
    msg = _one(tmp_path, files, "QLT202")
    assert "each of the up to 5 automatic retries of `proj.tasks.upload` waits a fixed default_retry_delay of " \
           "20 s (class Resilient)" in msg
    assert "180" not in msg


def test_qlt202_retry_kwargs_max_retries_none_means_the_task_limit(tmp_path):
    msg = _one(tmp_path, _celery("""
@app.task(autoretry_for=(OSError,), max_retries=7, retry_kwargs={"max_retries": None})
def upload(path):
    pass
"""), "QLT202")
    assert "up to 7 automatic retries" in msg


def test_qlt202_backoff_false_with_a_delay_on_other_levels_is_a_choice(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": APP + """
class Fixed(app.Task):
    retry_backoff = False
""",
        "proj/tasks.py": """
from proj.celery import app, Fixed

@app.task(base=Fixed, autoretry_for=(OSError,), default_retry_delay=60)
def upload(path):
    pass
""",
    }
    assert _run(tmp_path, files, "QLT202") == []


def test_qlt202_backoff_false_without_a_delay_and_a_delay_without_backoff_are_reported(tmp_path):
    got = _run(tmp_path, _celery("""
@app.task(autoretry_for=(OSError,), retry_backoff=False)
def upload(path):
    pass

@app.task(autoretry_for=(OSError,), default_retry_delay=60)
def download(url):
    pass
"""), "QLT202")
    assert [row for _, row, _ in got] == [3, 7]
    assert "of 180 s (Celery's default)" in got[0][2]
    assert "without `retry_backoff`" in got[1][2] and "of 60 s (decorator)" in got[1][2]


def test_qlt202_backoff_false_from_annotations_with_delay_from_annotations(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": APP + 'app.conf.task_annotations = {"proj.tasks.upload": '
                                '{"retry_backoff": False, "default_retry_delay": 30}}\n',
        "proj/tasks.py": """
from proj.celery import app

@app.task(autoretry_for=(OSError,))
def upload(path):
    pass
""",
    }
    assert _run(tmp_path, files, "QLT202") == []


@pytest.mark.parametrize("kwargs,reported", [
    ('{"countdown": 10}', False),
    ('{"eta": WHEN}', False),
    ('{"countdown": None}', True),  # Task.retry: ``countdown is None`` -> default_retry_delay
    ('{"eta": None}', True),  # ``not eta`` -> default_retry_delay
    ('{"max_retries": 0}', False),
    ('{"max_retries": 4}', True),
])
def test_qlt202_retry_kwargs_delays(tmp_path, kwargs, reported):
    got = _run(tmp_path, _celery(f"""
from proj.schedule import WHEN

@app.task(autoretry_for=(OSError,), retry_kwargs={kwargs})
def upload(path):
    pass
"""), "QLT202")
    assert bool(got) is reported


def test_qlt202_backoff_source_is_named_once(tmp_path):
    files = {"tasks.py": """
from celery import Celery, Task

app = Celery("proj")

class Build(Task):
    autoretry_for = (OSError,)
    retry_backoff = False

    def run(self, build_id):
        pass
"""}
    msg = _one(tmp_path, files, "QLT202")
    assert msg.count("class ") == 1, msg
    assert "with `retry_backoff=False` (set in class" in msg


def test_qlt202_manual_retry_count_from_the_call(tmp_path):
    got = _run(tmp_path, _celery("""
@app.task(bind=True, max_retries=5)
def charge(self, order_id):
    self.retry(max_retries=2)
    self.retry(max_retries=0)
    self.retry(max_retries=None)
    self.retry()
"""), "QLT202")
    # one finding for the task's manual retries, on the first; the count is that call's own
    assert [row for _, row, _ in got] == [5]
    assert "each of the up to 2 retries of `proj.tasks.charge`" in got[0][2]
    assert "(nor do the ones on lines 7, 8)" in got[0][2]
    assert all("automatic" not in msg and "retry_backoff" not in msg for _, _, msg in got)


def test_qlt202_manual_retry_on_a_task_that_never_retries(tmp_path):
    assert _run(tmp_path, _celery("""
@app.task(bind=True, max_retries=0)
def charge(self, order_id):
    self.retry()
"""), "QLT202") == []


def test_qlt202_manual_retry_backoff_false_is_not_mentioned(tmp_path):
    msg = _one(tmp_path, _celery("""
@app.task(bind=True, retry_backoff=False)
def charge(self, order_id):
    self.retry()
"""), "QLT202")
    assert "retry_backoff" not in msg


# -- QLT203: how often and how far apart --------------------------------------------------

def _qlt203(tmp_path, options: str, prelude: str = "") -> str:
    return _one(tmp_path, _celery(f"""{prelude}
@app.task(autoretry_for=(Exception,), {options})
def sync(account_id):
    pass
"""), "QLT203")


@pytest.mark.parametrize("options,expected", [
    ("max_retries=1", "retried like a transient failure, 1 time, 180 s apart"),
    ("default_retry_delay=30", "3 times, 30 s apart"),
    ('retry_kwargs={"max_retries": None}, max_retries=6', "6 times, 180 s apart"),
    ('retry_kwargs={"countdown": 5}', "3 times, 5 s apart"),
    ("retry_backoff=True", "3 times, after random waits of up to 1, 2 and 4 s"),
    ("retry_backoff=True, retry_jitter=False, max_retries=12",
     "12 times, after waits of 1, 2, 4, ... 512 s, then 600 s each"),
    ("retry_backoff=True, max_retries=None",
     "forever, after random waits of up to 1, 2, 4, ... 512 s, then 600 s each"),
    ("retry_backoff=3, retry_backoff_max=2, max_retries=2", "2 times, after random waits of up to 2 s each"),
    ("retry_backoff=True, retry_backoff_max=CAP", "3 times, after waits that double from 1 s"),
    ("retry_backoff=True, retry_jitter=JITTER", "3 times, after waits of up to 1, 2 and 4 s"),
    ("retry_backoff=0.5", "3 times, after random waits of up to 1, 2 and 4 s"),  # int(max(1.0, 0.5))
    ('retry_backoff=True, retry_kwargs={"countdown": 99}', "3 times, after random waits of up to 1, 2 and 4 s"),
    ("retry_kwargs=KWARGS", "as many times as `max_retries` allows"),
    ("retry_backoff=BACKOFF", "3 times"),
])
def test_qlt203_schedule(tmp_path, options, expected):
    msg = _qlt203(tmp_path, options, prelude="from proj.settings import CAP, JITTER, KWARGS, BACKOFF\n")
    assert msg.endswith(expected), msg


def test_qlt203_unknown_backoff_states_no_spacing(tmp_path):
    msg = _qlt203(tmp_path, "retry_backoff=BACKOFF", prelude="from proj.settings import BACKOFF\n")
    assert "apart" not in msg and "waits" not in msg


def test_qlt203_values_from_task_annotations_and_a_base_class(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": APP + """
app.conf.task_annotations = {"proj.tasks.sync": {"max_retries": 8}}

class Slow(app.Task):
    default_retry_delay = 45
""",
        "proj/tasks.py": """
from proj.celery import app, Slow

@app.task(base=Slow, autoretry_for=(Exception,))
def sync(account_id):
    pass
""",
    }
    assert _one(tmp_path, files, "QLT203").endswith("8 times, 45 s apart")


def test_qlt203_no_retries_no_finding(tmp_path):
    assert _run(tmp_path, _celery("""
@app.task(autoretry_for=(Exception,), max_retries=0)
def sync(account_id):
    pass
"""), "QLT203") == []


# -- QLT505: every clause true for the task -----------------------------------------------

def _qlt505(tmp_path, files) -> str:
    return _one(tmp_path, files, "QLT505")


def test_qlt505_no_retry_clause_without_retries(tmp_path):
    msg = _qlt505(tmp_path, _celery("""
@app.task
def send(payload: dict):
    record(payload)
    mail(payload["email"])
"""))
    assert "retry" not in msg
    assert "partway through the task, after the work done before the read" in msg


@pytest.mark.parametrize("options,clause", [
    ("autoretry_for=(Exception,), max_retries=4", ", and fails again on each of its 4 retries"),
    ("autoretry_for=(Exception,), max_retries=1", ", and fails again on each of its 1 retry"),
    ('autoretry_for=(LookupError, TypeError), retry_kwargs={"max_retries": 6}',
     ", and fails again on each of its 6 retries"),
    ("autoretry_for=(KeyError,)", ", and a `KeyError` fails again on each of its 3 retries"),
    ("autoretry_for=(Exception,), dont_autoretry_for=(ValueError,)", ", and fails again on each of its 3 retries"),
    ("autoretry_for=(Exception,), max_retries=None", ", and fails again on every retry, without end"),
    ("autoretry_for=(ConnectionError,)", None),
    ("autoretry_for=(Exception,), dont_autoretry_for=(KeyError, TypeError)", None),
    ("autoretry_for=(Exception,), dont_autoretry_for=DETERMINISTIC", None),
    ("autoretry_for=RETRY_ON", None),
    ("autoretry_for=(Exception,), max_retries=0", None),
    ('autoretry_for=(Exception,), retry_kwargs={"max_retries": 0}', None),
])
def test_qlt505_celery_retry_clause(tmp_path, options, clause):
    msg = _qlt505(tmp_path, _celery(f"""from outside import DETERMINISTIC, RETRY_ON

@app.task({options})
def send(payload: dict):
    record(payload)
    mail(payload["email"])
"""))
    if clause is None:
        assert "retry" not in msg and "retries" not in msg, msg
    else:
        assert clause + ";" in msg, msg


def test_qlt505_manual_retry_is_not_claimed(tmp_path):
    msg = _qlt505(tmp_path, _celery("""
@app.task(bind=True, max_retries=5)
def send(self, payload: dict):
    try:
        record(payload)
    except ConnectionError as exc:
        raise self.retry(exc=exc)
    mail(payload["email"])
"""))
    assert "fails again" not in msg


def test_qlt505_dramatiq_retries_by_default(tmp_path):
    files = {"tasks.py": """
import dramatiq

@dramatiq.actor
def handle(event):
    event["type"]

@dramatiq.actor(max_retries=2)
def bounded(event):
    event["type"]

@dramatiq.actor(max_retries=0)
def once(event):
    event["type"]

@dramatiq.actor(throws=(KeyError,))
def exempt(event):
    event["type"]

@dramatiq.actor(throws=(ValueError,))
def other(event):
    event["type"]

@dramatiq.actor(throws=(LookupError, TypeError))
def both(event):
    event["type"]
"""}
    got = {row: msg for _, row, msg in _run(tmp_path, files, "QLT505")}
    assert "and fails again on each of its 20 retries" in got[3]
    assert "and fails again on each of its 2 retries" in got[7]
    assert "retr" not in got[11]
    assert ", and a `TypeError` fails again on each of its 20 retries;" in got[15]  # throws exempts KeyError only
    assert "and fails again on each of its 20 retries" in got[19]
    assert "retr" not in got[23]


def test_qlt505_huey_retries_only_when_asked(tmp_path):
    files = {"tasks.py": """
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(retries=2, retry_delay=10)
def deliver(message):
    send(message["to"])

@huey.task()
def once(message):
    send(message["to"])
"""}
    got = {row: msg for _, row, msg in _run(tmp_path, files, "QLT505")}
    assert "and fails again on each of its 2 retries" in got[5]
    assert "retr" not in got[9]


def test_qlt505_rq_arq_taskiq_never_claim_retries(tmp_path):
    files = {
        "jobs.py": """
from rq.decorators import job

@job("default")
def resize(data):
    resize_image(data["path"])
""",
        "worker.py": """
from arq.connections import RedisSettings

async def fetch(ctx, job):
    await get(job["url"])

class WorkerSettings:
    functions = [fetch]
    redis_settings = RedisSettings()
""",
        "broker.py": """
from taskiq import InMemoryBroker, SimpleRetryMiddleware

broker = InMemoryBroker().with_middlewares(SimpleRetryMiddleware())

@broker.task(retry_on_error=True, max_retries=4)
async def deliver(message):
    await send(message["to"])
""",
    }
    got = _run(tmp_path, files, "QLT505")
    assert len(got) == 3
    assert all("retr" not in msg for _, _, msg in got), got


@pytest.mark.parametrize("body,partway", [
    ('mail(payload["email"])', False),  # the call runs after its argument is read
    ('size = len(payload)\n    mail(payload["email"])', False),  # a pure builtin is no work
    ('if flag:\n        audit(flag)\n        return\n    mail(payload["email"])', False),  # another branch
    ('with lock():\n        mail(payload["email"])', True),  # the with header ran
    ('row = save(payload)\n    mail(payload["email"])', True),
    ('for item in items():\n        pass\n    mail(payload["email"])', True),
])
def test_qlt505_work_before_the_read(tmp_path, body, partway):
    msg = _qlt505(tmp_path, _celery(f"""
@app.task
def send(payload: dict, flag=None):
    {body}
"""))
    assert ("partway" in msg) is partway, msg


def test_qlt505_read_whose_error_is_swallowed_is_not_a_failure(tmp_path):
    assert _run(tmp_path, _celery("""
@app.task
def send(payload: dict):
    record(payload)
    try:
        mail(payload["email"])
    except Exception:
        log("could not send")
        return
"""), "QLT505") == []


def test_qlt505_handler_that_raises_again_still_fails(tmp_path):
    msg = _qlt505(tmp_path, _celery("""
@app.task
def send(payload: dict):
    record(payload)
    try:
        mail(payload["email"])
    except Exception:
        log("could not send")
        raise
"""))
    assert "fails with `KeyError` or `TypeError` partway" in msg


def test_qlt505_swallowed_subscript_falls_back_to_get_reads(tmp_path):
    msg = _qlt505(tmp_path, _celery("""
@app.task
def send(payload: dict):
    subject = payload.get("subject")
    try:
        mail(payload["email"], subject)
    except Exception:
        return
"""))
    assert 'reads `payload.get("subject")`' in msg and "carries on with it" in msg


def test_qlt505_kwargs_subscript_raises_only_key_error(tmp_path):
    msg = _qlt505(tmp_path, _celery("""
@app.task(autoretry_for=(Exception,))
def sync(**kwargs):
    account = kwargs["account"]
"""))
    assert "fails with `KeyError`, and fails again on each of its 3 retries" in msg
    assert "TypeError`," not in msg


def test_qlt202_retry_in_a_shadowed_handler_is_not_reported(tmp_path):
    got = _run(tmp_path, _celery("""
@app.task(bind=True)
def finish(self, version_id):
    try:
        work()
    except:
        cleanup()
        raise
    except OSError as exc:
        raise self.retry(exc=exc)
    try:
        work()
    except ValueError:
        raise
    except OSError as exc:
        raise self.retry(exc=exc)
    try:
        try:
            work()
        except Exception:
            raise
    except OSError as exc:
        raise self.retry(exc=exc)
"""), "QLT202")
    # Only the first retry is shadowed: ValueError does not catch OSError, and the inner
    # ``except Exception`` belongs to another ``try``. The two that run are one finding.
    assert [row for _, row, _ in got] == [17]
    assert "(nor does the one on line 24)" in got[0][2]
