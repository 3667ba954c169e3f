"""Edge cases beyond the embedded examples: QLT206 (opt-in, its fix), QLT207, QLT502."""

from __future__ import annotations

from tests.helpers import findings, fix, norm, write_project

ACTOR = """
import dramatiq

@dramatiq.actor
def send_receipt(order_id):
    pass
"""


def _rows(tmp_path, files, codes, **settings):
    write_project(tmp_path, files)
    return sorted((p, row, c) for p, row, c, _ in findings(tmp_path, codes, **settings))


# -- QLT206 ----------------------------------------------------------------------------

def test_qlt206_is_opt_in(tmp_path):
    write_project(tmp_path, {"tasks.py": ACTOR})
    assert not [f for f in findings(tmp_path, None) if f[2] == "QLT206"]
    assert [f[:3] for f in findings(tmp_path, ["QLT206"])] == [("tasks.py", 3, "QLT206")]


def test_qlt206_fix_takes_the_max_retries_setting(tmp_path):
    write_project(tmp_path, {"tasks.py": ACTOR})
    outcome = fix(tmp_path, ["QLT206"], max_retries=7)
    assert [s.text for s in outcome.fixed.values()] == [norm("""
import dramatiq

@dramatiq.actor(max_retries=7)
def send_receipt(order_id):
    pass
""")]


def test_qlt206_fix_is_unsafe_only(tmp_path):
    write_project(tmp_path, {"tasks.py": ACTOR})
    assert fix(tmp_path, ["QLT206"], unsafe=False).fixed == {}


def test_qlt206_noqa_on_the_def_line_of_a_decorated_actor(tmp_path):
    assert _rows(tmp_path, {"tasks.py": ACTOR}, ["QLT206"]) == [("tasks.py", 3, "QLT206")]
    source = ACTOR.replace("def send_receipt(order_id):", "def send_receipt(order_id):  # noqa: QLT206")
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT206"]) == []


def test_qlt206_options_hidden_in_kwargs_stay_silent(tmp_path):
    source = """
import dramatiq

OPTIONS = load_options()

@dramatiq.actor(**OPTIONS)
def send_receipt(order_id):
    pass
"""
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT206"]) == []


def test_qlt206_wrapper_with_max_retries_is_a_policy(tmp_path):
    source = """
import functools

import dramatiq

actor = functools.partial(dramatiq.actor, max_retries=2)

@actor
def send_receipt(order_id):
    pass
"""
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT206"]) == []


def test_qlt206_arq_worker_max_tries_does_not_cover_cron_jobs_but_they_try_once(tmp_path):
    source = """
from arq import cron

async def cleanup(ctx):
    pass

async def download(ctx, url):
    pass

class WorkerSettings:
    functions = [download]
    cron_jobs = [cron(cleanup, hour=3, max_tries=3)]
"""
    # download takes the default 5 tries; the cron job's max_tries is written on it.
    assert _rows(tmp_path, {"worker.py": source}, ["QLT206"]) == [("worker.py", 6, "QLT206")]


# -- QLT207 ----------------------------------------------------------------------------

def test_qlt207_noqa_on_the_decorator_line_covers_the_label_below(tmp_path):
    source = """
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(
    retry_on_error=True,
)
async def sync_account(account_id):
    pass
"""
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT207"]) == [("tasks.py", 6, "QLT207")]
    source = source.replace("@broker.task(", "@broker.task(  # noqa: QLT207")
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT207"]) == []


def test_qlt207_retry_middleware_on_any_broker_silences_every_task(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/brokers.py": """
from taskiq import InMemoryBroker, SimpleRetryMiddleware

fast = InMemoryBroker()
slow = InMemoryBroker().with_middlewares(SimpleRetryMiddleware())
""",
        "proj/tasks.py": """
from proj.brokers import fast

@fast.task(retry_on_error=True)
async def ping():
    pass
""",
    }
    assert _rows(tmp_path, files, ["QLT207"]) == []


def test_qlt207_message_names_the_label_and_the_task(tmp_path):
    source = """
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task("sync", retry_on_error=True, max_retries=4)
async def sync_account(account_id):
    pass
"""
    write_project(tmp_path, {"tasks.py": source})
    [(path, row, _, message)] = findings(tmp_path, ["QLT207"])
    assert (path, row) == ("tasks.py", 5)
    assert message.startswith("`retry_on_error=True` asks for retries that never happen")
    assert "`sync` fails at its first error" in message


# -- QLT502 ----------------------------------------------------------------------------

def test_qlt502_noqa_on_the_first_line_of_a_multiline_queue(tmp_path):
    source = """
from redis import Redis
from rq import Queue

queue = Queue(
    "default",
    connection=Redis(),
)
"""
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT502"]) == [("tasks.py", 4, "QLT502")]
    source = source.replace("queue = Queue(", "queue = Queue(  # noqa: QLT502")
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT502"]) == []


def test_qlt502_one_finding_per_queue_however_often_it_is_used(tmp_path):
    source = """
from redis import Redis
from rq import Queue

queue = Queue("default", connection=Redis())

def resize(image_id):
    pass

def later(image_id):
    queue.enqueue(resize, image_id)
    queue.enqueue(resize, image_id + 1)
"""
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT502"]) == [("tasks.py", 4, "QLT502")]


def test_qlt502_explicit_rq_pickle_serializer_is_not_a_default(tmp_path):
    source = """
from redis import Redis
from rq import Queue
from rq.serializers import DefaultSerializer

queue = Queue("default", connection=Redis(), serializer=DefaultSerializer)
other = Queue("other", connection=Redis())
"""
    # Only the queue that leaves the serializer to the default: an explicit pickle is a choice.
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT502"]) == [("tasks.py", 6, "QLT502")]


def test_qlt502_arq_pool_with_star_options_stays_silent(tmp_path):
    source = """
from arq import create_pool

async def main(options):
    return await create_pool(**options)

async def other():
    return await create_pool()
"""
    assert _rows(tmp_path, {"tasks.py": source}, ["QLT502"]) == [("tasks.py", 7, "QLT502")]
