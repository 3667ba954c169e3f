"""The prefilter keeps every framework's findings: facts in files that never spell a framework.

Each project puts what a rule needs where the byte-level seed test cannot see it: an RQ or
arq job function in a module without any framework token, a constant in a plain module, a
Dramatiq decorator wrapper used under a name of the project's choosing.
"""

from __future__ import annotations

import pytest

from helpers import EVERY_RULE, findings, write_project

PROJECTS = {
    "rq": {
        "app/__init__.py": "",
        "app/jobs.py": """
            import requests

            def export(report_id):
                return requests.get("https://example.com/report")
            """,
        "app/enqueue.py": """
            from redis import Redis
            from rq import Queue

            from app.jobs import export

            queue = Queue(connection=Redis())
            queue.enqueue(export, 1, job_timeout=-1)
            """,
    },
    "dramatiq": {
        "app/__init__.py": "",
        "app/limits.py": "FOREVER = float('inf')\n",
        "app/workers.py": """
            import functools

            import dramatiq

            background = functools.partial(dramatiq.actor, queue_name="bg")
            """,
        "app/reports.py": """
            from app.limits import FOREVER
            from app.workers import background

            @background(time_limit=FOREVER, max_retries=None)
            def build(report_id):
                pass
            """,
    },
    "huey": {
        "app/__init__.py": "",
        "app/config.py": "RETRIES = 3\n",
        "app/main.py": """
            from huey import RedisHuey

            from app.config import RETRIES

            huey = RedisHuey("app")

            @huey.task(retries=RETRIES)
            async def sync(account_id):
                pass
            """,
    },
    "taskiq": {
        "app/__init__.py": "",
        "app/broker.py": """
            from taskiq_redis import ListQueueBroker

            broker = ListQueueBroker("redis://localhost")
            """,
        "app/fetch.py": """
            import time

            from app.broker import broker

            @broker.task(retry_on_error=True)
            async def fetch(url):
                time.sleep(1)
            """,
    },
    "arq": {
        "app/__init__.py": "",
        "app/crawl.py": """
            import time

            async def crawl(ctx, url):
                time.sleep(1)
            """,
        "app/worker.py": """
            from arq.connections import RedisSettings

            from app.crawl import crawl

            class WorkerSettings:
                functions = [crawl]
                redis_settings = RedisSettings()
            """,
    },
}


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_findings_identical_with_and_without_prefilter(tmp_path, framework):
    write_project(tmp_path, PROJECTS[framework])
    on = findings(tmp_path, EVERY_RULE, use_prefilter=True)
    off = findings(tmp_path, EVERY_RULE, use_prefilter=False)
    assert on == off
    assert on, f"the {framework} project must have findings for the comparison to mean anything"
