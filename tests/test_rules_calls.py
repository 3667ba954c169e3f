"""Edge cases beyond the embedded examples: calling patterns (QLT602, QLT603, QLT604, QLT607,
QLT608, QLT609) and what they rest on (installed versions, the Django task class)."""

from __future__ import annotations

import pytest

from qlint.frameworks.celery_calls import package_version
from tests.helpers import findings, fix, norm, write_project

DJANGO_APP = """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
"""

IN_TRANSACTION = """
from django.db import transaction
from proj.celery import app

@app.task
def notify(order_id):
    pass

def place(order):
    with transaction.atomic():
        notify.delay(order.pk)
"""


def _found(tmp_path, files, code):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code]) if c == code]


def _fixed(tmp_path, files, code):
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    return {str(p).replace(str(tmp_path) + "/", ""): s.text for p, s in outcome.fixed.items()}


# -- installed versions --------------------------------------------------------------------

@pytest.mark.parametrize("files,expected", [
    ({"uv.lock": '[[package]]\nname = "celery"\nversion = "5.3.6"\n',
      "pyproject.toml": '[project]\nname = "x"\ndependencies = ["celery>=5.5"]\n'}, ((5, 3, 6), True, "uv.lock")),
    ({"poetry.lock": '[[package]]\nname = "Celery"\nversion = "5.4.0"\n'}, ((5, 4, 0), True, "poetry.lock")),
    ({"Pipfile.lock": '{"default": {"celery": {"version": "==5.2.7"}}}'}, ((5, 2, 7), True, "Pipfile.lock")),
    ({"requirements.txt": "celery-types==0.20\ncelery[redis,sqs]==5.6.3 \\\n    --hash=sha256:abc\n"},
     ((5, 6, 3), True, "requirements.txt")),
    ({"pyproject.toml": '[project]\nname = "x"\ndependencies = ["celery[redis, sqs]>=5.6.3,<6.0.0"]\n'},
     ((5, 6, 3), False, "pyproject.toml")),
    ({"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\ncelery = {version = "^5.3", extras = []}\n'},
     ((5, 3), False, "pyproject.toml")),
    ({"pyproject.toml": '[project]\nname = "x"\ndependencies = ["celery~=5.4"]\n',
      "requirements/base.pip": "celery==5.4.1\n"}, ((5, 4, 1), True, "requirements/base.pip")),
    ({"setup.cfg": "[options]\ninstall_requires =\n    celery\n"}, None),
])
def test_package_version_from_lock_and_requirements_files(tmp_path, files, expected):
    write_project(tmp_path, {**files, "proj/tasks.py": ""})
    found = package_version("celery", tmp_path / "proj" / "tasks.py", tmp_path)
    if expected is None:
        assert found.where == "" and found.numbers >= (5, 7)
        assert "assuming Celery" in found.text("Celery")
    else:
        assert (found.numbers, found.exact, found.where) == expected


def test_nearest_folder_wins(tmp_path):
    write_project(tmp_path, {"requirements.txt": "celery==5.3.0\n", "svc/requirements.txt": "celery==5.5.0\n",
                             "svc/proj/tasks.py": ""})
    assert package_version("celery", tmp_path / "svc" / "proj" / "tasks.py", tmp_path).numbers == (5, 5, 0)


# -- QLT602 --------------------------------------------------------------------------------

def test_qlt602_delay_on_commit_only_from_celery_5_4(tmp_path):
    files = {"proj/__init__.py": "", "proj/celery.py": DJANGO_APP, "proj/tasks.py": IN_TRANSACTION,
             "poetry.lock": '[[package]]\nname = "celery"\nversion = "5.3.6"\n'}
    fixed = _fixed(tmp_path, files, "QLT602")["proj/tasks.py"]
    assert "transaction.on_commit(lambda: notify.delay(order.pk))" in fixed


def test_qlt602_message_names_the_version_assumed(tmp_path):
    files = {"proj/__init__.py": "", "proj/celery.py": DJANGO_APP, "proj/tasks.py": IN_TRANSACTION,
             "uv.lock": '[[package]]\nname = "celery"\nversion = "5.6.3"\n'}
    [(_, row, message)] = _found(tmp_path, files, "QLT602")
    assert row == 10 and "delay_on_commit" in message and "Celery 5.6.3 pinned in uv.lock" in message


def test_qlt602_custom_task_class_has_no_delay_on_commit(tmp_path):
    app = DJANGO_APP.replace('Celery("proj")', 'Celery("proj", task_cls="proj.base:Base")')
    files = {"proj/__init__.py": "", "proj/celery.py": app, "proj/tasks.py": IN_TRANSACTION,
             "proj/base.py": "from celery import Task\n\nclass Base(Task):\n    pass\n"}
    fixed = _fixed(tmp_path, files, "QLT602")["proj/tasks.py"]
    assert "delay_on_commit" not in fixed and "transaction.on_commit(lambda:" in fixed


def test_qlt602_base_deriving_from_django_task_keeps_delay_on_commit(tmp_path):
    tasks = IN_TRANSACTION.replace("@app.task\n", "@app.task(base=Audited)\n").replace(
        "from proj.celery import app\n",
        "from proj.celery import app\nfrom celery.contrib.django.task import DjangoTask\n\n"
        "class Audited(DjangoTask):\n    pass\n")
    files = {"proj/__init__.py": "", "proj/celery.py": DJANGO_APP, "proj/tasks.py": tasks}
    assert "notify.delay_on_commit(order.pk)" in _fixed(tmp_path, files, "QLT602")["proj/tasks.py"]


def test_qlt602_app_without_django_gets_the_on_commit_wrapper(tmp_path):
    app = 'from celery import Celery\n\napp = Celery("proj")\n'
    files = {"proj/__init__.py": "", "proj/celery.py": app, "proj/tasks.py": IN_TRANSACTION}
    assert "transaction.on_commit(lambda:" in _fixed(tmp_path, files, "QLT602")["proj/tasks.py"]


def test_qlt602_nested_blocks_and_project_wrapper_callbacks(tmp_path):
    source = '''
from django.db import transaction
from celery import shared_task

@shared_task
def notify(order_id):
    pass

def run_later(callback):
    transaction.on_commit(callback)

def place(order):
    with transaction.atomic():
        with open("log") as fh:
            notify.delay(order.pk)
        run_later(lambda: notify.delay(order.pk))
'''
    assert [row for _, row, _ in _found(tmp_path, {"tasks.py": source}, "QLT602")] == [14]


# -- QLT603 --------------------------------------------------------------------------------

MODELS = """
from django.db import models
from sqlalchemy.orm import declarative_base

Base = declarative_base()

class Order(models.Model):
    pass

class Invoice(Base):
    __tablename__ = "invoices"
"""


def test_qlt603_declarative_base_and_values_that_are_not_rows(tmp_path):
    tasks = '''
from celery import shared_task
from shop.models import Invoice, Order

@shared_task
def send(item):
    pass

def checkout(session, pk, request):
    invoice = session.get(Invoice, pk)
    send.delay(invoice)
    count = Order.objects.filter(pk=pk).count()
    send.delay(count)
    send.delay(Order.objects.get(pk=pk))
    user_id = request.user.pk
    send.delay(user_id)
'''
    files = {"shop/__init__.py": "", "shop/models.py": MODELS, "shop/tasks.py": tasks}
    assert [row for _, row, _ in _found(tmp_path, files, "QLT603")] == [10, 13]


def test_qlt603_rebound_parameter_is_not_judged(tmp_path):
    tasks = '''
from celery import shared_task
from shop.models import Order

@shared_task
def send(item):
    pass

def checkout(order: Order):
    order = order.refresh()
    send.delay(order)
'''
    files = {"shop/__init__.py": "", "shop/models.py": MODELS, "shop/tasks.py": tasks}
    assert _found(tmp_path, files, "QLT603") == []


# -- QLT604 --------------------------------------------------------------------------------

def test_qlt604_group_joins_the_celery_import_in_its_section(tmp_path):
    source = '''
"""Digests."""
from __future__ import annotations

import logging

from celery import shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids):
    for user_id in user_ids:
        # one per user
        send_digest.delay(user_id)
    for user_id in user_ids or ():
        send_digest.delay(user_id)
'''
    fixed = _fixed(tmp_path, {"tasks.py": source}, "QLT604")["tasks.py"]
    assert fixed == norm('''
"""Digests."""
from __future__ import annotations

import logging

from celery import group, shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids):
    for user_id in user_ids:
        # one per user
        send_digest.delay(user_id)
    group(send_digest.s(user_id) for user_id in (user_ids or ())).delay()
''')


def test_qlt604_no_fix_when_the_loop_variable_is_read_after_the_loop(tmp_path):
    source = '''
from celery import group, shared_task

@shared_task
def send_digest(user_id):
    pass

def notify_all(user_ids):
    for user_id in user_ids:
        send_digest.delay(user_id)
    return user_id
'''
    assert _fixed(tmp_path, {"tasks.py": source}, "QLT604") == {}
    assert [row for _, row, _ in _found(tmp_path, {"tasks.py": source}, "QLT604")] == [9]


def test_qlt604_small_loops_and_batches_are_not_reported(tmp_path):
    source = '''
from celery import shared_task
from django.conf import settings

@shared_task
def run(item):
    pass

def go(ids):
    for name in ("a", "b", "c"):
        run.delay(name)
    for i in range(10):
        run.delay(i)
    for batch in chunked(ids, 500):
        run.delay(batch)
    for ids_part in itertools.batched(ids, 100):
        run.delay(ids_part)
    for queue in settings.QUEUES:
        run.delay(queue)
    for item in ids:
        for attempt in range(3):
            run.delay(item)
    for i in range(1000):
        run.delay(i)
'''
    assert [row for _, row, _ in _found(tmp_path, {"tasks.py": source}, "QLT604")] == [23]


# -- QLT607 --------------------------------------------------------------------------------

def test_qlt607_result_read_in_tests_does_not_count_and_expiry_is_named(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/tasks.py": '''
from celery import Celery

app = Celery("proj", backend="redis://", result_expires=600)

@app.task
def ping():
    pass
''',
        "tests/test_tasks.py": '''
from celery.result import AsyncResult

def test_ping():
    assert AsyncResult("x").state
''',
    }
    [(_, row, message)] = _found(tmp_path, files, "QLT607")
    assert row == 5 and "keeps it for 600 s" in message


# -- QLT608 --------------------------------------------------------------------------------

def test_qlt608_unreadable_queue_declaration_keeps_it_silent(tmp_path):
    source = '''
from celery import Celery
from kombu import Queue

app = Celery("proj", broker="amqp://rabbitmq//")
app.conf.task_queues = [Queue("default", queue_arguments=make_arguments())]

@app.task(priority=5)
def charge(order_id):
    pass
'''
    assert _found(tmp_path, {"tasks.py": source}, "QLT608") == []


def test_qlt608_django_settings_and_task_queues_mapping(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": DJANGO_APP,
        "proj/settings.py": '''
CELERY_BROKER_URL = "amqp://rabbitmq//"
CELERY_TASK_QUEUES = {"default": {"queue_arguments": {"x-max-priority": 4}}}
''',
        "proj/tasks.py": '''
from celery import shared_task

@shared_task(priority=4)
def ok(order_id):
    pass

@shared_task(priority=9)
def too_high(order_id):
    pass
''',
    }
    [(path, row, message)] = _found(tmp_path, files, "QLT608")
    assert (path, row) == ("proj/tasks.py", 7) and "treats it as 4" in message


# -- QLT609 --------------------------------------------------------------------------------

def test_qlt609_entries_written_as_dict_calls_and_named_mappings(tmp_path):
    source = '''
from celery import Celery

app = Celery("proj")

@app.task
def refresh():
    pass

REFRESH = dict(task="tasks.refresh", schedule=60)
SCHEDULE = {
    "refresh": REFRESH,
    "again": {"task": "tasks.refresh", "schedule": 120, "options": dict(queue="q")},
}
app.conf.beat_schedule = SCHEDULE
'''
    fixed = _fixed(tmp_path, {"tasks.py": source}, "QLT609")["tasks.py"]
    assert 'REFRESH = dict(task="tasks.refresh", schedule=60, options={"expires": 60})' in fixed
    assert '"options": dict(queue="q", expires=120)' in fixed


def test_qlt609_task_annotations_expiry_counts(tmp_path):
    source = '''
from celery import Celery

app = Celery("proj")
app.conf.task_annotations = {"tasks.refresh": {"expires": 30}}

@app.task
def refresh():
    pass

app.conf.beat_schedule = {"refresh": {"task": "tasks.refresh", "schedule": 60}}
'''
    assert _found(tmp_path, {"tasks.py": source}, "QLT609") == []
