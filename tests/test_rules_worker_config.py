"""QLT401, QLT404-QLT409 beyond their embedded examples: brokers, windows, placements, guards."""

from __future__ import annotations

import pytest

from qlint.frameworks import celery_brokers as cb
from tests.helpers import findings, fix, make_linter, write_project


def _run(tmp_path, files, code, **settings):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code], **settings) if c == code]


def _rows(tmp_path, files, code, **settings):
    return [(p, r) for p, r, _ in _run(tmp_path, files, code, **settings)]


def _fixed(tmp_path, code, **settings):
    outcome = fix(tmp_path, [code], **settings)
    return {str(p).replace(str(tmp_path) + "/", ""): s.text for p, s in outcome.fixed.items()}


def _app(tmp_path, source):
    write_project(tmp_path, {"proj/__init__.py": "", "proj/celery.py": source})
    project = make_linter(tmp_path, []).model()
    (app,) = project.apps
    return project, app


# -- brokers and their windows -----------------------------------------------------------

@pytest.mark.parametrize("url,kind", [
    ('"redis://redis:6379/0"', "redis"),
    ('"rediss://:secret@redis:6380/0"', "redis"),
    ('"sentinel://s1:26379;sentinel://s2:26379"', "redis"),
    ('["redis://a:6379/0", "amqp://b//"]', "redis"),
    ('"sqs://"', "sqs"),
    ('"SQS://key:secret@"', "sqs"),
    ('"amqp://guest@rabbit//"', "amqp"),
    ('"pyamqp://guest@rabbit//"', "amqp"),
    ('"amqps://user@mq.example.com//"', "amqp"),
    ('"memory://"', "memory"),
    ('os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379")', "redis"),
    ('f"redis://{HOST}:6379/0"', "redis"),
    ('"amqp://%s:%s@rabbit//" % (USER, PASSWORD)', "amqp"),
])
def test_broker_kind_from_the_url(tmp_path, url, kind):
    _, app = _app(tmp_path, f"""
import os
from celery import Celery

app = Celery("proj", broker={url})
""")
    brk = cb.broker(app, lambda facts, span: (tmp_path / "proj/celery.py").read_bytes()[span.start:span.end].decode())
    assert (brk.kind, brk.explicit) == (kind, True)


def test_broker_unknown_or_default(tmp_path):
    _, app = _app(tmp_path, """
import os
from celery import Celery

app = Celery("proj", broker=os.environ["CELERY_BROKER_URL"])
""")
    assert cb.broker(app).kind is None
    _, app = _app(tmp_path, """
from celery import Celery

app = Celery("proj")
""")
    brk = cb.broker(app)
    assert (brk.kind, brk.explicit) == ("amqp", False)
    _, app = _app(tmp_path, """
from celery import Celery

app = Celery("proj", broker="")
app.conf.broker_transport = "sqs"
""")
    assert (cb.broker(app).kind, cb.broker(app).explicit) == ("sqs", True)
    _, app = _app(tmp_path, """
from celery import Celery

app = Celery("proj")
app.conf.broker_transport = "proj.transport:Custom"
""")
    assert cb.broker(app).kind is None


@pytest.mark.parametrize("options,seconds", [
    (None, 3600),
    ('{"fanout_prefix": True}', 3600),
    ('{"visibility_timeout": 43200}', 43200),
    ('{"visibility_timeout": "7200"}', 7200),
    ('{"visibility_timeout": timedelta(hours=5)}', 18000),
    ('{"visibility_timeout": None}', 3600),
    ('{"visibility_timeout": VT}', None),
    ("OPTIONS", None),
])
def test_redis_visibility_timeout(tmp_path, options, seconds):
    line = f"app.conf.broker_transport_options = {options}\n" if options else ""
    _, app = _app(tmp_path, f"""
from datetime import timedelta
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")
{line}""")
    window = cb.visibility_timeout(app, cb.broker(app))
    assert (window.seconds if window else None) == seconds


def test_sqs_default_and_rabbitmq_have_their_own_windows(tmp_path):
    _, app = _app(tmp_path, """
from celery import Celery

app = Celery("proj", broker="sqs://")
""")
    assert cb.visibility_timeout(app, cb.broker(app)).seconds == 1800
    assert cb.consumer_timeout(app, cb.broker(app)) is None
    _, app = _app(tmp_path, """
from celery import Celery

app = Celery("proj", broker="amqp://rabbit//")
""")
    assert cb.visibility_timeout(app, cb.broker(app)) is None
    assert cb.consumer_timeout(app, cb.broker(app)).seconds == 1800


def test_quorum_queues_hold_delays_only_behind_a_direct_exchange(tmp_path):
    _, app = _app(tmp_path, """
from celery import Celery

app = Celery("proj", broker="amqp://rabbit//")
app.conf.task_default_queue_type = "quorum"
""")
    assert cb.delays_held_unacked(app, cb.broker(app)) is True  # the default exchange type is direct
    _, app = _app(tmp_path, """
from celery import Celery

app = Celery("proj", broker="amqp://rabbit//")
app.conf.task_default_queue_type = "quorum"
app.conf.task_default_exchange_type = "topic"
""")
    assert cb.delays_held_unacked(app, cb.broker(app)) is False


def test_prefetch_disabled_only_on_redis(tmp_path):
    for url, expected in (("redis://r//", True), ("amqp://r//", False)):
        _, app = _app(tmp_path, f"""
from celery import Celery

app = Celery("proj", broker="{url}")
app.conf.worker_disable_prefetch = True
""")
        assert cb.prefetch_disabled(app, cb.broker(app)) is expected


@pytest.mark.parametrize("pool,recycles", [
    ("prefork", True), ("processes", True), ("threads", False), ("gevent", False), ("eventlet", False),
    ("solo", False), ("custom", None), ("proj.pools:MyPool", None),
])
def test_pools_that_recycle(pool, recycles):
    assert cb.recycles(pool) is recycles


# -- QLT401 ----------------------------------------------------------------------------

def test_qlt401_unknown_pool_and_incomplete_config_are_silent(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = POOL

@app.task
def resize(image_id):
    pass
"""}
    assert _rows(tmp_path, files, "QLT401") == []


def test_qlt401_env_recycling_counts_as_set(tmp_path):
    files = {"tasks.py": """
import os
from celery import Celery

app = Celery("proj")
app.conf.worker_max_tasks_per_child = int(os.environ["MAX_TASKS"])

@app.task
def resize(image_id):
    pass
"""}
    assert _rows(tmp_path, files, "QLT401") == []


def test_qlt401_test_project_app_is_silent(tmp_path):
    files = {"tests/proj/celery.py": """
from celery import Celery

app = Celery("proj")

@app.task
def resize(image_id):
    pass
"""}
    assert _rows(tmp_path, files, "QLT401") == []


def test_qlt401_fix_uses_the_configured_value_and_keeps_crlf(tmp_path):
    path = tmp_path / "tasks.py"
    path.write_bytes(b'from celery import Celery\r\n\r\napp = Celery("proj")\r\napp.conf.task_acks_late = True\r\n'
                     b'\r\n@app.task\r\ndef resize(image_id):\r\n    pass\r\n')
    outcome = fix(tmp_path, ["QLT401"], max_tasks_per_child=250)
    (src,) = outcome.fixed.values()
    assert src.text == ('from celery import Celery\r\n\r\napp = Celery("proj")\r\napp.conf.task_acks_late = True\r\n'
                        'app.conf.worker_max_tasks_per_child = 250\r\n\r\n@app.task\r\ndef resize(image_id):\r\n'
                        '    pass\r\n')


def test_qlt401_no_fix_after_a_statement_sharing_its_line(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_acks_late = True; app.conf.task_track_started = True

@app.task
def resize(image_id):
    pass
"""}
    assert _rows(tmp_path, files, "QLT401") == [("tasks.py", 3)]
    # not after the statement that shares its line: right after the app instead
    assert _fixed(tmp_path, "QLT401") == {"tasks.py": files["tasks.py"].lstrip("\n").replace(
        'app = Celery("proj")\n', 'app = Celery("proj")\napp.conf.worker_max_tasks_per_child = 1000\n')}


# -- QLT404 ----------------------------------------------------------------------------

def test_qlt404_fix_in_django_settings(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
        "proj/settings.py": """
CELERY_WORKER_PREFETCH_MULTIPLIER = 16
""",
        "proj/tasks.py": """
from celery import shared_task

@shared_task(time_limit=3600)
def rebuild():
    pass
""",
    }
    got = _run(tmp_path, files, "QLT404")
    assert [(p, r) for p, r, _ in got] == [("proj/settings.py", 1)]
    assert "reserves 16 messages" in got[0][2]
    assert _fixed(tmp_path, "QLT404") == {"proj/settings.py": "CELERY_WORKER_PREFETCH_MULTIPLIER = 1\n"}


def test_qlt404_env_multiplier_reported_without_fix(tmp_path):
    files = {"tasks.py": """
import os
from celery import Celery

app = Celery("proj")
app.conf.worker_prefetch_multiplier = int(os.environ.get("PREFETCH", "4"))

@app.task(time_limit=900)
def rebuild():
    pass
"""}
    assert _rows(tmp_path, files, "QLT404") == [("tasks.py", 5)]
    assert _fixed(tmp_path, "QLT404") == {}


def test_qlt404_short_hard_limit_beats_long_soft_limit(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 120

@app.task(soft_time_limit=600)
def rebuild():
    pass
"""}
    assert _rows(tmp_path, files, "QLT404") == []


def test_qlt404_unknown_disable_prefetch_is_silent(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj", broker="redis://r:6379/0")
app.conf.worker_disable_prefetch = DISABLE

@app.task(time_limit=900)
def rebuild():
    pass
"""}
    assert _rows(tmp_path, files, "QLT404") == []


# -- QLT406 ----------------------------------------------------------------------------

@pytest.mark.parametrize("body,reported", [
    ("CELERY_TASK_ALWAYS_EAGER = True\n", True),
    ("if DEBUG:\n    pass\nelse:\n    CELERY_TASK_ALWAYS_EAGER = True\n", False),
    ("try:\n    CELERY_TASK_ALWAYS_EAGER = True\nexcept ImportError:\n    pass\n", True),
    ("if USE_BROKER:\n    pass\nCELERY_TASK_ALWAYS_EAGER = True\n", True),
    ("CELERY_TASK_ALWAYS_EAGER = False\n", False),
    ("CELERY_TASK_ALWAYS_EAGER = EAGER\n", False),
    ("ALWAYS = True\nCELERY_TASK_ALWAYS_EAGER = ALWAYS\n", True),
    ('CELERY_TASK_ALWAYS_EAGER = "test" in sys.argv\n', False),
])
def test_qlt406_shapes(tmp_path, body, reported):
    files = {"proj/__init__.py": "", "proj/settings.py": "import sys\n" + body}
    rows = _rows(tmp_path, files, "QLT406")
    assert bool(rows) is reported, rows


@pytest.mark.parametrize("module", [
    "proj/settings/testing.py", "proj/test_settings.py", "proj/settings/ci.py", "proj/settings/development.py",
    "proj/local_settings.py", "tests/settings.py", "proj/settings_example.py",
])
def test_qlt406_test_and_development_modules(tmp_path, module):
    files = {"proj/__init__.py": "", "proj/settings/__init__.py": "", module: "CELERY_TASK_ALWAYS_EAGER = True\n"}
    assert _rows(tmp_path, files, "QLT406") == []


def test_qlt406_production_module_is_reported(tmp_path):
    files = {"proj/__init__.py": "", "proj/settings/__init__.py": "",
             "proj/settings/production.py": "CELERY_ALWAYS_EAGER = True\n"}
    got = _run(tmp_path, files, "QLT406")
    assert [(p, r) for p, r, _ in got] == [("proj/settings/production.py", 1)]
    assert "`proj.settings.production`" in got[0][2]


def test_qlt406_reported_once_when_an_app_also_reads_it(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
        "proj/settings.py": "CELERY_TASK_ALWAYS_EAGER = True\n",
    }
    assert _rows(tmp_path, files, "QLT406") == [("proj/settings.py", 1)]


# -- QLT407 ----------------------------------------------------------------------------

def test_qlt407_env_default_none_is_reported_with_its_variable(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.broker_pool_limit = env.int("BROKER_POOL_LIMIT", default=None)
"""}
    got = _run(tmp_path, files, "QLT407")
    assert [(p, r) for p, r, _ in got] == [("tasks.py", 4)]
    assert "BROKER_POOL_LIMIT" in got[0][2]


def test_qlt407_false_is_not_zero(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.broker_pool_limit = 5
"""}
    assert _rows(tmp_path, files, "QLT407") == []


# -- QLT408 / QLT409 ---------------------------------------------------------------------

def test_qlt408_shared_task_of_two_apps_configured_differently_is_left_alone(tmp_path):
    """Which of two differently configured apps of one package runs a shared task is not known
    (principle 3): whichever visibility timeout applies, the rule stays silent. With one app,
    or apps configured alike, the task is judged."""
    files = {
        "proj/__init__.py": "",
        "proj/a.py": """
from celery import Celery

app = Celery("a", broker="redis://r:6379/0")
""",
        "proj/b.py": """
from celery import Celery

app = Celery("b", broker="redis://r:6379/1", broker_transport_options={"visibility_timeout": 86400})
""",
        "proj/tasks.py": """
from celery import shared_task

@shared_task(acks_late=True, time_limit=7200)
def rebuild():
    pass
""",
    }
    assert _rows(tmp_path, files, "QLT408") == []
    files["proj/b.py"] = files["proj/b.py"].replace("86400", "5000")
    assert _rows(tmp_path, files, "QLT408") == []
    files["proj/b.py"] = files["proj/a.py"].replace('"a"', '"b"')  # alike: both default 3600 s
    got = _run(tmp_path, files, "QLT408")
    assert [(p, r) for p, r, _ in got] == [("proj/tasks.py", 3)]
    assert "3600 s" in got[0][2]


def test_qlt408_signatures_but_not_task_kwargs(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj", broker="redis://r:6379/0")

@app.task
def remind(user_id, countdown=0):
    pass

def schedule(user_id):
    remind.delay(user_id, countdown=7200)
    remind.s(user_id, countdown=7200)
    remind.signature((user_id,), countdown=7200)
"""}
    assert _rows(tmp_path, files, "QLT408") == [("tasks.py", 12)]


def test_qlt408_default_retry_delay_only_where_a_retry_uses_it(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj", broker="redis://r:6379/0")

@app.task(bind=True, default_retry_delay=7200)
def poll(self, job_id):
    raise self.retry(countdown=60)

@app.task(autoretry_for=(OSError,), retry_backoff=True, default_retry_delay=7200)
def sync(job_id):
    pass

@app.task(autoretry_for=(OSError,), retry_kwargs={"countdown": 4000}, default_retry_delay=7200)
def push(job_id):
    pass
"""}
    assert _rows(tmp_path, files, "QLT408") == [("tasks.py", 13)]


def test_qlt408_backoff_cap_reached_with_unbounded_retries(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj", broker="sqs://")

@app.task(autoretry_for=(OSError,), retry_backoff=True, retry_backoff_max=1800, max_retries=None)
def sync(job_id):
    pass
"""}
    got = _run(tmp_path, files, "QLT408")
    assert [(p, r) for p, r, _ in got] == [("tasks.py", 5)]
    assert "SQS visibility timeout of 1800 s" in got[0][2]


def test_qlt408_tests_are_not_judged(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="redis://r:6379/0")

@app.task
def remind(user_id):
    pass
""",
        "tests/test_remind.py": """
from proj.celery import remind

def test_later():
    remind.apply_async((1,), countdown=86400)
""",
    }
    assert _rows(tmp_path, files, "QLT408") == []


def test_qlt408_eta_shapes(tmp_path):
    files = {"tasks.py": """
from datetime import datetime, timedelta, timezone
from celery import Celery

app = Celery("proj", broker="redis://r:6379/0")

@app.task
def remind(user_id):
    pass

def schedule(user_id, when):
    remind.apply_async((user_id,), eta=datetime.now(timezone.utc) + timedelta(hours=2))
    remind.apply_async((user_id,), eta=timedelta(hours=2) + datetime.utcnow())
    remind.apply_async((user_id,), eta=when + timedelta(hours=2))
    remind.apply_async((user_id,), eta=datetime.now() + timedelta(minutes=30))
    remind.apply_async((user_id,), countdown=timedelta(hours=1).total_seconds())
"""}
    assert _rows(tmp_path, files, "QLT408") == [("tasks.py", 11), ("tasks.py", 12), ("tasks.py", 15)]


def test_qlt409_quorum_with_direct_exchange_still_holds_delays(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj", broker="amqp://rabbit//")
app.conf.task_default_queue_type = "quorum"

@app.task
def remind(user_id):
    pass

def later(user_id):
    remind.apply_async((user_id,), countdown=3600)
"""}
    assert _rows(tmp_path, files, "QLT409") == [("tasks.py", 11)]


def test_qlt409_just_under_thirty_minutes_is_fine(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj", broker="amqp://rabbit//")
app.conf.task_acks_late = True

@app.task(time_limit=1799)
def rebuild():
    pass
"""}
    assert _rows(tmp_path, files, "QLT409") == []
    files["tasks.py"] = files["tasks.py"].replace("1799", "1800")
    assert _rows(tmp_path, files, "QLT409") == [("tasks.py", 6)]
