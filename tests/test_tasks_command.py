"""``qlint tasks``: the task inventory, on a multi-file Django + Celery project."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qlint.cli import main
from tests.helpers import write_project

REPO = Path(__file__).resolve().parents[1]

PROJECT = {
    "proj/__init__.py": """
        from .celery import app as celery_app

        __all__ = ("celery_app",)
    """,
    "proj/celery.py": """
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
    "proj/settings.py": """
        import os

        DEBUG = False
        CELERY_BROKER_URL = os.environ.get("BROKER_URL", "redis://localhost:6379/0")
        CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", 600))
        CELERY_TASK_ACKS_LATE = True
        CELERY_TASK_DEFAULT_QUEUE = "default"
        CELERY_TASK_ROUTES = {
            "billing.tasks.charge": {"queue": "payments"},
            "reports.*": {"queue": "reports"},
        }
        CELERY_TASK_ANNOTATIONS = {"billing.tasks.refund": {"time_limit": 120}}
    """,
    "proj/base.py": """
        from celery import Task


        class BaseTask(Task):
            max_retries = 5
            default_retry_delay = 30
    """,
    "billing/__init__.py": "",
    "billing/tasks.py": """
        from thirdparty.tasks import VendorTask

        from proj.base import BaseTask
        from proj.celery import app


        @app.task(bind=True, base=BaseTask, autoretry_for=(ConnectionError, TimeoutError), retry_backoff=True,
                  soft_time_limit=240)
        def charge(self, order_id):
            return order_id


        @app.task(bind=True, queue="refunds", time_limit=300)
        def refund(self, order_id):
            try:
                return order_id
            except ConnectionError as exc:
                raise self.retry(exc=exc)


        @app.task(base=VendorTask)
        def vendor_sync(order_id):
            return order_id
    """,
    "reports/__init__.py": "",
    "reports/tasks.py": """
        from proj.celery import app


        class BuildReport(app.Task):
            name = "reports.build"
            time_limit = 900
            serializer = "yaml"

            def run(self, report_id):
                return report_id


        app.register_task(BuildReport())
    """,
    "utils/__init__.py": "",
    "utils/tasks.py": """
        from functools import partial

        from celery import shared_task

        io_task = partial(shared_task, acks_late=False, max_retries=10)
    """,
    "notify/__init__.py": "",
    "notify/tasks.py": """
        from utils.tasks import io_task


        @io_task(serializer="pickle")
        def send_email(to):
            return to
    """,
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    write_project(tmp_path, PROJECT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main(["tasks", "--no-cache", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def inventory(capsys, *args) -> dict[str, dict]:
    rc, out, err = run(capsys, "--output-format", "json", *args)
    assert rc == 0, err
    return {row["name"]: row for row in json.loads(out)}


def brief(cell: dict) -> tuple:
    return cell["value"], cell["source"], cell["file"]


def test_json_every_task_with_values_and_sources(project, capsys):
    rows = inventory(capsys)
    assert sorted(rows) == ["billing.tasks.charge", "billing.tasks.refund", "billing.tasks.vendor_sync",
                            "notify.tasks.send_email", "reports.build"]

    charge = rows["billing.tasks.charge"]
    assert (charge["file"], charge["line"], charge["framework"]) == ("billing/tasks.py", 7, "celery")
    assert brief(charge["queue"]) == ("payments", "task_routes", "proj/settings.py")
    assert charge["queue"]["line"] == 8
    assert brief(charge["time_limit"]) == (600, "setting task_time_limit", "proj/settings.py")
    assert charge["time_limit"]["env"] == "CELERY_TASK_TIME_LIMIT" and charge["time_limit"]["line"] == 5
    assert brief(charge["soft_time_limit"]) == (240, "decorator", "billing/tasks.py")
    assert brief(charge["max_retries"]) == (5, "class BaseTask", "proj/base.py")
    assert brief(charge["retry"]) == ("autoretry (ConnectionError, TimeoutError) backoff ≤600s", "decorator",
                                      "billing/tasks.py")
    assert brief(charge["acks"]) == ("late", "setting task_acks_late", "proj/settings.py")
    assert brief(charge["serializer"]) == ("json", "default", None)
    assert charge["serializer"]["known"] is True and charge["serializer"]["line"] is None

    refund = rows["billing.tasks.refund"]
    assert brief(refund["queue"]) == ("refunds", "decorator", "billing/tasks.py")
    assert brief(refund["time_limit"]) == (120, "task_annotations", "proj/settings.py")  # beats time_limit=300
    assert brief(refund["soft_time_limit"]) == (None, "default", None)
    assert brief(refund["max_retries"]) == (3, "default", None)
    assert brief(refund["retry"]) == ("manual self.retry, 180s fixed", "task body", "billing/tasks.py")
    assert refund["retry"]["line"] == 18

    vendor = rows["billing.tasks.vendor_sync"]
    for column in ("queue", "time_limit", "max_retries", "acks", "serializer", "retry"):
        assert vendor[column]["value"] is None and vendor[column]["known"] is False
        assert vendor[column]["source"] == "base class thirdparty.tasks.VendorTask outside the project"

    email = rows["notify.tasks.send_email"]
    assert (email["file"], email["line"]) == ("notify/tasks.py", 4)
    assert brief(email["queue"]) == ("default", "setting task_default_queue", "proj/settings.py")
    assert brief(email["max_retries"]) == (10, "wrapper utils.tasks.io_task", "utils/tasks.py")
    assert brief(email["acks"]) == ("early", "wrapper utils.tasks.io_task", "utils/tasks.py")
    assert brief(email["serializer"]) == ("pickle", "decorator", "notify/tasks.py")
    assert brief(email["retry"]) == ("none", "default", None)

    report = rows["reports.build"]
    assert (report["file"], report["line"]) == ("reports/tasks.py", 4)
    assert brief(report["queue"]) == ("reports", "task_routes", "proj/settings.py")  # the "reports.*" glob
    assert brief(report["time_limit"]) == (900, "class BuildReport", "reports/tasks.py")
    assert brief(report["serializer"]) == ("yaml", "class BuildReport", "reports/tasks.py")
    assert brief(report["acks"]) == ("late", "setting task_acks_late", "proj/settings.py")


def test_unreadable_task_routes_make_the_queue_unknown(project, capsys):
    settings = project / "proj" / "settings.py"
    text = settings.read_text(encoding="utf-8").replace("CELERY_TASK_ROUTES = {", "CELERY_TASK_ROUTES = (MyRouter(), {")
    settings.write_text(text.replace('{"queue": "reports"},\n}', '{"queue": "reports"},\n})'), encoding="utf-8")
    rows = inventory(capsys)
    assert brief(rows["notify.tasks.send_email"]["queue"]) == (None, "task_routes", "proj/settings.py")
    assert rows["notify.tasks.send_email"]["queue"]["known"] is False
    assert brief(rows["billing.tasks.refund"]["queue"]) == ("refunds", "decorator", "billing/tasks.py")
    rc, out, _ = run(capsys)
    assert rc == 0 and "queue unknown (task_routes)" in out


def test_no_app_is_noted(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, {"jobs/__init__.py": "", "jobs/tasks.py": """
        from datetime import timedelta

        from celery import shared_task


        @shared_task(time_limit=timedelta(minutes=5), autoretry_for=(OSError,), retry_kwargs={"countdown": 10})
        def clean():
            pass
    """})
    monkeypatch.chdir(tmp_path)
    row = inventory(capsys)["jobs.tasks.clean"]
    assert brief(row["time_limit"]) == (300.0, "decorator", "jobs/tasks.py")
    assert row["queue"]["value"] == "celery" and row["queue"]["note"] == "no app found"
    assert row["retry"]["value"] == "autoretry (OSError) countdown 10s"
    rc, out, _ = run(capsys)
    assert rc == 0
    assert "time limit 300 s (decorator)" in out and "queue celery (default; no app found)" in out


def test_csv_has_the_header_and_a_row_per_task(project, capsys):
    rc, out, err = run(capsys, "--output-format", "csv")
    assert rc == 0, err
    reader = list(csv.reader(io.StringIO(out)))
    header = reader[0]
    assert header[:4] == ["file", "line", "framework", "name"]
    for column in ("queue", "time_limit", "soft_time_limit", "max_retries", "retry", "acks", "serializer"):
        assert column in header and f"{column}_source" in header
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(out))}
    assert len(rows) == 5
    charge = rows["billing.tasks.charge"]
    assert charge["time_limit"] == "600"
    assert charge["time_limit_source"] == "setting task_time_limit in proj/settings.py, env CELERY_TASK_TIME_LIMIT default"
    assert (charge["soft_time_limit"], charge["soft_time_limit_source"]) == ("240", "decorator")
    assert rows["billing.tasks.vendor_sync"]["queue"] == ""


def test_table_lists_every_task(project, capsys):
    """A report within 100 columns: location and name, then each value with a short source
    (none for a default), values a framework has no notion of left out."""
    rc, out, err = run(capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "billing/tasks.py:7  charge"
    assert all(len(line) <= 100 for line in lines)
    for name in ("  charge", "  refund", "  vendor_sync", "  send_email", "  reports.build"):
        assert name in out  # registered under its module path: the function's name; else its own name
    text = " ".join(line.strip() for line in lines)
    assert "soft limit 240 s (decorator)" in text
    assert "time limit 600 s (task_time_limit, env CELERY_TASK_TIME_LIMIT)" in text
    assert "no soft limit" in text and "max retries 5 (class BaseTask)" in text
    assert "vendor_sync options unknown (base class outside project)" in text
    assert "via @io_task -> celery.shared_task" in text and "max retries 10 (@io_task)" in text
    assert "acks late (task_acks_late) · serializer json" in text  # the default, without a source
    assert "None" not in out and "not modelled" not in out
    assert "\x1b[" not in out
    assert "5 tasks" in lines


def test_table_leaves_out_what_a_framework_does_not_have(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, {"jobs.py": """
        from redis import Redis
        from rq import Queue

        def export(path):
            pass

        Queue(connection=Redis()).enqueue(export, "a.csv", job_timeout=60)
    """})
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys)
    assert rc == 0
    assert "time limit 60 s" in out and "acks" not in out and "soft limit" not in out


def test_paths_and_output_file(project, capsys):
    rc, out, _ = run(capsys, "reports", "-o", "out/inventory.json", "--output-format", "json")
    assert rc == 0 and out == ""
    data = json.loads((project / "out" / "inventory.json").read_text(encoding="utf-8"))
    assert [row["name"] for row in data] == ["reports.build"]
    # A named file still sees the rest of the project (the app, its settings).
    assert data[0]["queue"]["value"] == "reports"
    rc, out, _ = run(capsys, "notify/tasks.py", "--output-format", "json")
    assert json.loads(out)[0]["time_limit"]["value"] == 600


def test_no_tasks(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, {"a.py": "x = 1\n"})
    monkeypatch.chdir(tmp_path)
    assert run(capsys) == (0, "No tasks found.\n", "")
    assert run(capsys, "--output-format", "json")[1] == "[]\n"


def _subprocess(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", QLINT_NO_CACHE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "qlint", *args], cwd=cwd, capture_output=True, text=True,
                          encoding="utf-8", timeout=120, env=env, check=False)


def test_subprocess_json(project):
    proc = _subprocess(project, "tasks", "--output-format", "json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert {row["name"] for row in json.loads(proc.stdout)} >= {"billing.tasks.charge", "reports.build"}


@pytest.mark.parametrize("args", [("--output-format", "xml"), ("-",), ("--select", "QLT101")])
def test_usage_errors_exit_2_without_traceback(project, args):
    proc = _subprocess(project, "tasks", *args)
    assert proc.returncode == 2
    assert "qlint: error:" in proc.stderr and "Traceback" not in proc.stderr


def test_other_frameworks_show_normalised_seconds_and_sources(tmp_path, monkeypatch, capsys):
    """Dramatiq milliseconds come out as seconds; middleware, wrappers, ``Meta`` and ``func(...)``
    are named as sources; a column a framework does not model is unknown, not a guess."""
    from test_frameworks_realistic import PROJECTS

    def rows_of(framework):
        write_project(tmp_path / framework, PROJECTS[framework])
        monkeypatch.chdir(tmp_path / framework)
        return inventory(capsys)

    rows = rows_of("dramatiq")
    resize, notify, nightly = rows["resize"], rows["notify"], rows["Nightly"]
    assert resize["framework"] == "dramatiq"
    assert brief(resize["time_limit"]) == (0.06, "decorator", "app/actors.py")  # time_limit=60 is 60 ms
    assert brief(resize["queue"])[:2] == ("default", "wrapper app.actors.task")
    assert brief(notify["time_limit"]) == (900.0, "TimeLimit(...) middleware", "app/broker.py")
    assert brief(notify["max_retries"]) == (5, "Retries(...) middleware", "app/broker.py")
    assert brief(nightly["time_limit"]) == (3600.0, "class Nightly.Meta", "app/actors.py")
    rows = rows_of("arq")
    assert brief(rows["crawl"]["time_limit"]) == (120.0, "func(...)", "app/worker.py")
    assert brief(rows["digest"]["time_limit"]) == (300, "default", None)  # arq's job_timeout
    assert rows["digest"]["serializer"]["known"] is False  # WorkerSettings.job_serializer is set
    rows = rows_of("rq")
    assert brief(rows["app.jobs.ping"]["time_limit"]) == (180, "default", None)  # RQ's default timeout
    assert brief(rows["app.jobs.export"]["time_limit"]) == (600.0, "decorator", "app/jobs.py")  # "10m"
    assert rows["app.jobs.ping"]["serializer"]["known"] is False  # per queue: not a task's property


MULTI = {
    "billing/__init__.py": "",
    "billing/celery.py": """
        from celery import Celery

        app = Celery("billing")

        @app.task
        def invoice(order_id):
            pass

        @app.task(time_limit=60)
        def receipt(order_id):
            pass
        """,
    "mail/__init__.py": "",
    "mail/jobs.py": """
        from redis import Redis
        from rq.decorators import job

        @job("mail", connection=Redis(), timeout="2m")
        def send(message_id):
            pass
        """,
    "media/__init__.py": "",
    "media/actors.py": """
        import dramatiq

        @dramatiq.actor(time_limit=120_000, max_retries=3)
        def resize(image_id):
            pass
        """,
    "docker-compose.yml": """
        services:
          billing:
            image: app
            command: celery -A billing worker --time-limit=900 -c 2
          mail:
            image: app
            command: rq worker mail
        """,
}


def test_multi_framework_project_with_worker_flags(tmp_path, monkeypatch, capsys):
    """One project, three frameworks: values in seconds, and a worker flag as a source."""
    write_project(tmp_path, MULTI)
    monkeypatch.chdir(tmp_path)
    rows = inventory(capsys)
    assert {r["framework"] for r in rows.values()} == {"celery", "rq", "dramatiq"}
    assert brief(rows["billing.celery.invoice"]["time_limit"]) == (
        900.0, "worker flag --time-limit (compose `billing`)", None)
    assert brief(rows["billing.celery.receipt"]["time_limit"]) == (60, "decorator", "billing/celery.py")
    assert brief(rows["mail.jobs.send"]["time_limit"]) == (120.0, "decorator", "mail/jobs.py")
    assert brief(rows["resize"]["time_limit"]) == (120.0, "decorator", "media/actors.py")
    assert brief(rows["resize"]["max_retries"]) == (3, "decorator", "media/actors.py")


def test_docs_page_shows_this_projects_real_report(project, capsys):
    """docs/commands/tasks.md's example is this project's output, as it is today."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "commands" / "tasks.md").read_text(encoding="utf-8")
    shown = page.split("## Table", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    rc, out, _ = run(capsys)
    assert rc == 0
    assert out == shown, "docs/commands/tasks.md's table is stale; replace it with:\n" + out
