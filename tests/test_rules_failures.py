"""Failure handling and dead letters beyond the rules' embedded examples: QLT301-QLT305 and
``qlint.frameworks.celery_failures`` (failure sinks, queue declarations, routing, the
project's Celery version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlint.frameworks import celery_failures
from qlint.frameworks.celery_failures import Pinned, failure_sinks, pinned_celery, supports, task_queues
from qlint.lint import engine
from qlint.lint.facts import FileFacts
from qlint.lint.registry import get_rule
from qlint.rules.qlt305_task_failure_swallowed import header_colon
from tests.helpers import findings, fix, make_linter, norm, write_project

APP = """
from celery import Celery

app = Celery("proj", backend="redis://")

@app.task
def charge(order_id):
    pass
"""


@pytest.fixture(autouse=True)
def _fresh_version_cache():
    celery_failures._pinned_in.cache_clear()
    yield
    celery_failures._pinned_in.cache_clear()


def _rows(tmp_path: Path, code: str, files: dict[str, str], **kw) -> list[tuple[str, int]]:
    write_project(tmp_path, files)
    return [(p, r) for p, r, c, _ in findings(tmp_path, [code], **kw) if c == code]


def _messages(tmp_path: Path, code: str) -> list[str]:
    return [m for _, _, c, m in findings(tmp_path, [code]) if c == code]


# -- QLT301: what counts as a failure sink -----------------------------------------------

@pytest.mark.parametrize("sink", [
    pytest.param({"hooks.py": "from celery.signals import task_failure\n\n"
                              "def record(**kw):\n    pass\n\ntask_failure.connect(record)\n"},
                 id="task_failure.connect(handler)"),
    pytest.param({"hooks.py": "import celery.signals\n\n@celery.signals.task_internal_error.connect\n"
                              "def record(**kw):\n    pass\n"}, id="task_internal_error receiver"),
    pytest.param({"hooks.py": "import sentry_sdk\nfrom sentry_sdk.integrations.celery import CeleryIntegration\n\n"
                              "sentry_sdk.init(dsn='x', default_integrations=False,"
                              " integrations=[CeleryIntegration()])\n"}, id="sentry explicit CeleryIntegration"),
    pytest.param({"hooks.py": "import sentry_sdk\n\nsentry_sdk.init(**SENTRY)\n"}, id="sentry init with **options"),
    pytest.param({"hooks.py": "from raven.contrib.celery import register_signal\n"}, id="raven"),
    pytest.param({"hooks.py": "from elasticapm.contrib.celery import register_exception_tracking\n"},
                 id="elastic apm"),
    pytest.param({"settings.py": "INSTALLED_APPS = ['django.contrib.admin', 'elasticapm.contrib.django']\n"},
                 id="elastic apm django app"),
    pytest.param({"hooks.py": "from honeybadger.contrib import CeleryHoneybadger\n"}, id="honeybadger"),
    pytest.param({"hooks.py": "import ddtrace\n\nddtrace.patch_all()\n"}, id="datadog"),
    pytest.param({"hooks.py": "from proj_tasks import charge\n\ndef go():\n"
                              "    charge.s(1).set(link_error=report.s()).delay()\n"}, id="link_error in .set()"),
    pytest.param({"hooks.py": "from celery import Task\n\nclass Base(Task):\n"
                              "    def on_failure(self, *args):\n        pass\n"}, id="on_failure on a Task subclass"),
])
def test_qlt301_each_sink_silences_the_app(tmp_path, sink):
    assert _rows(tmp_path, "QLT301", {"tasks.py": APP}) == [("tasks.py", 3)]
    for path in list(tmp_path.iterdir()):
        path.unlink()
    assert _rows(tmp_path, "QLT301", {"tasks.py": APP, **sink}) == []


@pytest.mark.parametrize("config", [
    pytest.param("sentry_sdk.init(dsn='x', auto_enabling_integrations=False)", id="auto-enabling off"),
    pytest.param("sentry_sdk.init(dsn='x', disabled_integrations=[CeleryIntegration()])", id="celery disabled"),
])
def test_qlt301_sentry_without_its_celery_integration_is_no_sink(tmp_path, config):
    hooks = f"import sentry_sdk\nfrom sentry_sdk.integrations.celery import CeleryIntegration\n\n{config}\n"
    # Importing CeleryIntegration only to disable it is not a sink either; without the import
    # the same init is judged by its options alone.
    files = {"tasks.py": APP, "hooks.py": hooks.replace(
        "from sentry_sdk.integrations.celery import CeleryIntegration\n", "from sentry_sdk import integrations\n")
        .replace("[CeleryIntegration()]", "[integrations.celery.CeleryIntegration()]")}
    assert _rows(tmp_path, "QLT301", files) == [("tasks.py", 3)]


def test_qlt301_annotations_with_on_failure_and_decorator_on_failure(tmp_path):
    annotated = APP + "\napp.conf.task_annotations = {'*': {'on_failure': lambda *a: None}}\n"
    assert _rows(tmp_path, "QLT301", {"tasks.py": annotated}) == []
    decorated = APP.replace("@app.task\n", "@app.task(on_failure=report)\n")
    assert _rows(tmp_path, "QLT301", {"tasks.py": decorated}) == []


def test_qlt301_silent_when_a_task_base_comes_from_another_package(tmp_path):
    text = APP.replace("@app.task\n", "@app.task(base=vendor.tasks.ReportingTask)\n").replace(
        "from celery import Celery\n", "from celery import Celery\nimport vendor.tasks\n")
    assert _rows(tmp_path, "QLT301", {"tasks.py": text}) == []


def test_qlt301_a_sink_in_a_file_without_task_words_is_seen_with_the_prefilter(tmp_path):
    files = {"proj/__init__.py": "", "proj/tasks.py": APP,
             "proj/monitoring.py": "import sentry_sdk\n\nsentry_sdk.init(dsn='https://k@sentry.example/1')\n"}
    assert _rows(tmp_path, "QLT301", files) == []
    assert _rows(tmp_path, "QLT301", files, use_prefilter=False) == []


def test_qlt301_reported_once_per_app_and_not_for_an_app_without_tasks(tmp_path):
    files = {
        "a.py": "from celery import Celery\n\nworker = Celery('a')\n\n@worker.task\ndef one():\n    pass\n",
        "b.py": "from celery import Celery\n\nidle = Celery('b')\n",
    }
    assert _rows(tmp_path, "QLT301", files) == [("a.py", 3)]
    assert all("`a.worker`" in m for m in _messages(tmp_path, "QLT301"))  # the app's qualified name


def test_failure_sinks_are_lenient_about_unreadable_task_queues(tmp_path):
    write_project(tmp_path, {"tasks.py": APP + "\napp.conf.task_queues = build_queues()\n"})
    project = make_linter(tmp_path).model()
    kinds = [s.kind for s in failure_sinks(project)]
    assert kinds == ["unknown"]


# -- QLT302 ------------------------------------------------------------------------------

def test_qlt302_anchors_the_raise_statement_and_ignores_nested_functions(tmp_path):
    text = """
from celery import Celery
from celery.exceptions import Reject

app = Celery("proj")

@app.task
def render(doc_id):
    def later():
        raise Reject("nested: not the task's raise")
    try:
        convert(doc_id)
    except ValueError as exc:
        raise Reject(exc) from exc
"""
    write_project(tmp_path, {"tasks.py": text})
    got = [(p, r, m) for p, r, c, m in findings(tmp_path, ["QLT302"])]
    assert [(p, r) for p, r, _ in got] == [("tasks.py", 13)]
    diag = make_linter(tmp_path, ["QLT302"]).lint()[0]
    assert diag.location.column == 9  # the ``raise`` keyword, not the exception


def test_qlt302_silent_when_the_decorator_hides_options(tmp_path):
    text = APP.replace("@app.task\n", "@app.task(**OPTIONS)\n").replace(
        "    pass\n", "    raise Reject(order_id)\n") + "\nfrom celery.exceptions import Reject\n"
    assert _rows(tmp_path, "QLT302", {"tasks.py": text}) == []


def test_qlt302_fix_through_a_partial_wrapper(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": "import functools\n\nfrom celery import Celery, shared_task\n\napp = Celery('proj')\n"
                          "task = functools.partial(shared_task, bind=True)\n",
        "proj/tasks.py": "from celery.exceptions import Reject\n\nfrom proj.celery import task\n\n@task\n"
                         "def render(self, doc_id):\n    raise Reject(doc_id, requeue=False)\n",
    }
    write_project(tmp_path, files)
    outcome = fix(tmp_path, ["QLT302"])
    fixed = {Path(p).name: s.text for p, s in outcome.fixed.items()}
    assert fixed == {"tasks.py": files["proj/tasks.py"].replace("@task\n", "@task(acks_late=True)\n")}


# -- QLT303: routing -----------------------------------------------------------------------

DLX_APP = """
from celery import Celery
from kombu import Queue

app = Celery("proj")
app.conf.task_queues = [Queue("celery"), Queue("dead-lettered", queue_arguments={"x-dead-letter-exchange": "dlx"})]
app.conf.task_acks_late = True
app.conf.task_acks_on_failure_or_timeout = False
{routes}

@app.task{options}
def charge(order_id):
    pass

@app.task
def refund(order_id):
    pass
"""


@pytest.mark.parametrize("routes,options,reported", [
    pytest.param("", "", False, id="acks on failure off for every task"),
    pytest.param("", "(acks_on_failure_or_timeout=True, queue='dead-lettered')", True,
                 id="the only task sent there acks its failures"),
    pytest.param("app.conf.task_routes = {'tasks.ch*': 'dead-lettered'}", "(acks_late=False)", True,
                 id="a glob route to the queue"),
    pytest.param("app.conf.task_routes = {'tasks.ch*': 'dead-lettered'}", "(acks_late=False, queue='celery')",
                 False, id="the task's own queue wins over task_routes"),
    pytest.param("app.conf.task_routes = [route_by_tenant]", "(acks_late=False)", False,
                 id="a router qlint cannot read"),
])
def test_qlt303_routing(tmp_path, routes, options, reported):
    text = DLX_APP.replace("{routes}", routes).replace("{options}", options)
    assert _rows(tmp_path, "QLT303", {"tasks.py": text}) == ([("tasks.py", 5)] if reported else [])


def test_qlt303_enqueue_with_a_computed_queue_may_reach_any_queue(tmp_path):
    text = DLX_APP.replace("{routes}", "").replace("{options}", "(acks_late=False)")
    text += "\ndef go(name):\n    charge.apply_async((1,), queue=name)\n"
    write_project(tmp_path, {"tasks.py": text})
    project = make_linter(tmp_path).model()
    charge = next(t for t in project.tasks if t.name == "tasks.charge")
    assert task_queues(project, charge) is None
    # It may be sent to the dead-lettered queue, and it acks its failures wherever it runs.
    assert _rows(tmp_path, "QLT303", {"tasks.py": text}) == [("tasks.py", 5)]
    # A task that may be sent there and may reject its failures keeps the rule silent.
    late = text.replace("(acks_late=False)", "(acks_late=True)")
    assert _rows(tmp_path, "QLT303", {"tasks.py": late}) == []


# -- QLT304: versions and spellings ---------------------------------------------------------

@pytest.mark.parametrize("extra,fixed,note", [
    pytest.param({}, True, "assuming Celery 5.7.0", id="nothing pinned"),
    pytest.param({"requirements.txt": "celery-once==3.0\ncelery[redis]==5.7.1  # pinned\n"}, True,
                 "requirements.txt requires `celery[redis]==5.7.1`", id="requirements exact"),
    pytest.param({"requirements.txt": "celery>=5.3,<6\n"}, False, "allows Celery below 5.7", id="range"),
    pytest.param({"poetry.lock": '[[package]]\nname = "celery"\nversion = "5.4.0"\n'}, False,
                 "poetry.lock locks Celery 5.4.0", id="poetry lock"),
    pytest.param({"Pipfile.lock": '{"default": {"celery": {"version": "==5.7.0"}}}'}, True,
                 "Pipfile.lock locks Celery 5.7.0", id="pipfile lock"),
    pytest.param({"pyproject.toml": '[project]\ndependencies = ["celery[sqs]~=5.7"]\n'}, True,
                 "pyproject.toml requires", id="pep 621"),
    pytest.param({"pyproject.toml": '[tool.poetry.dependencies]\ncelery = {version = "^5.2", extras = ["redis"]}\n'},
                 False, "allows Celery below 5.7", id="poetry table"),
    pytest.param({"setup.cfg": "[options]\ninstall_requires =\n    celery==5.6.0\n"}, False,
                 "setup.cfg requires `celery==5.6.0`", id="setup.cfg"),
])
def test_qlt304_fix_depends_on_the_pinned_version(tmp_path, extra, fixed, note):
    text = "from celery import Celery\n\napp = Celery('proj')\n\n@app.task(acks_late=True, " \
           "reject_on_worker_lost=True)\ndef render(report_id):\n    pass\n"
    write_project(tmp_path, {"tasks.py": text, **extra})
    messages = _messages(tmp_path, "QLT304")
    assert len(messages) == 1 and note in messages[0], messages
    changed = {Path(p).name: s.text for p, s in fix(tmp_path, ["QLT304"]).fixed.items()}
    assert changed == ({"tasks.py": text.replace("reject_on_worker_lost", "retry_on_worker_lost")} if fixed else {})


@pytest.mark.parametrize("setting,renamed", [
    ("app.conf.task_reject_on_worker_lost = True", "app.conf.task_retry_on_worker_lost = True"),
    ("app.conf['task_reject_on_worker_lost'] = True", "app.conf['task_retry_on_worker_lost'] = True"),
    ("app.conf.update({'task_reject_on_worker_lost': True})", "app.conf.update({'task_retry_on_worker_lost': True})"),
])
def test_qlt304_fix_renames_every_spelling_of_the_setting(tmp_path, setting, renamed):
    text = f"from celery import Celery\n\napp = Celery('proj')\napp.conf.task_acks_late = True\n{setting}\n\n" \
           "@app.task\ndef render(report_id):\n    pass\n"
    assert _rows(tmp_path, "QLT304", {"tasks.py": text}) == [("tasks.py", 5)]
    changed = {Path(p).name: s.text for p, s in fix(tmp_path, ["QLT304"]).fixed.items()}
    assert changed == {"tasks.py": text.replace(setting, renamed)}


def test_qlt304_retry_on_worker_lost_is_ignored_before_celery_57(tmp_path):
    text = "from celery import Celery\n\napp = Celery('proj')\n\n@app.task(acks_late=True, " \
           "reject_on_worker_lost=True, retry_on_worker_lost=True)\ndef render(report_id):\n    pass\n"
    assert _rows(tmp_path, "QLT304", {"tasks.py": text}) == []
    celery_failures._pinned_in.cache_clear()
    assert _rows(tmp_path, "QLT304", {"tasks.py": text, "requirements.txt": "celery==5.5.3\n"}) == [("tasks.py", 5)]


# -- the project's Celery version -----------------------------------------------------------

def test_pinned_version_comes_from_the_nearest_folder_and_stops_at_the_repository(tmp_path):
    write_project(tmp_path, {
        "requirements.txt": "celery==5.2.0\n",
        "repo/.git/HEAD": "ref: refs/heads/main\n",
        "repo/api/pyproject.toml": '[project]\ndependencies = ["django", "celery>=5.7.0"]\n',
        "repo/api/app/tasks.py": "",
        "repo/web/tasks.py": "",
    })
    api = pinned_celery(FileFacts(str(tmp_path / "repo/api/app/tasks.py"), "app.tasks"))
    assert api == Pinned(None, (5, 7, 0), "celery>=5.7.0", "pyproject.toml")
    assert pinned_celery(FileFacts(str(tmp_path / "repo/web/tasks.py"), "tasks")) is None  # not above .git
    check = supports(FileFacts(str(tmp_path / "repo/api/app/tasks.py"), "app.tasks"), (5, 7), "x")
    assert check.ok and "pyproject.toml requires `celery>=5.7.0`" in check.note


def test_lock_file_wins_over_a_range(tmp_path):
    write_project(tmp_path, {
        "pyproject.toml": '[project]\ndependencies = ["celery[redis]>=5.3"]\n',
        "uv.lock": 'version = 1\n\n[[package]]\nname = "celery"\nversion = "5.7.2"\n',
        "tasks.py": "",
    })
    assert pinned_celery(FileFacts(str(tmp_path / "tasks.py"), "tasks")).exact == (5, 7, 2)


# -- QLT305 ----------------------------------------------------------------------------------

TASKS = {
    "celery": "from celery import Celery\n\napp = Celery('proj')\n\n@app.task\n{async}def work(item):\n{body}",
    "rq": "from redis import Redis\nfrom rq.decorators import job\n\n@job('default', connection=Redis())\n"
          "{async}def work(item):\n{body}",
    "dramatiq": "import dramatiq\n\n@dramatiq.actor\n{async}def work(item):\n{body}",
    "huey": "from huey import RedisHuey\n\nhuey = RedisHuey('app')\n\n@huey.task()\n{async}def work(item):\n{body}",
    "taskiq": "from taskiq import InMemoryBroker\n\nbroker = InMemoryBroker()\n\n@broker.task\n"
              "{async}def work(item):\n{body}",
    "arq": "from arq.connections import RedisSettings\n\n{async}def work(ctx, item):\n{body}\n\n"
           "class WorkerSettings:\n    functions = [work]\n    redis_settings = RedisSettings()\n",
}
SWALLOWED = "    try:\n        handle(item)\n    except Exception:\n        logger.exception('failed')\n"
HANDLED = "    try:\n        handle(item)\n    except Exception:\n        notify_admins(item)\n"
EXISTING = tuple(module.FRAMEWORK for module in engine.FRAMEWORKS)


def _framework_cases():
    for framework in get_rule("QLT305").frameworks:
        yield pytest.param(framework, id=framework)


def test_qlt305_lists_frameworks_qlint_has():
    assert set(get_rule("QLT305").frameworks) <= set(EXISTING)
    assert set(get_rule("QLT305").frameworks) == set(TASKS)


@pytest.mark.parametrize("framework", list(_framework_cases()))
def test_qlt305_same_finding_in_every_framework(tmp_path, framework):
    is_async = "async " if framework in ("arq", "taskiq") else ""
    text = norm(TASKS[framework].replace("{async}", is_async).replace("{body}", SWALLOWED))
    row = next(i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "except Exception:")
    assert _rows(tmp_path, "QLT305", {"tasks.py": text}) == [("tasks.py", row)]
    (tmp_path / "tasks.py").write_text(text.replace(SWALLOWED, HANDLED))
    assert findings(tmp_path, ["QLT305"]) == []


@pytest.mark.parametrize("body,reported", [
    pytest.param("    try:\n        handle(item)\n    except Exception:  # noqa: BLE001 - on: purpose\n"
                 "        pass\n", True, id="a colon in the clause's comment"),
    pytest.param("    try:\n        handle(item)\n    except Exception: pass\n", True, id="one-line clause"),
    pytest.param("    try:\n        handle(item)\n    except Exception:\n        result = None\n"
                 "    return result\n", True, id="a plain value returned after the try"),
    pytest.param("    try:\n        handle(item)\n    except Exception:\n        result = None\n"
                 "    save(result)\n", False, id="more work after the try"),
    pytest.param("    try:\n        handle(item)\n    except Exception as exc:\n        self_report(exc)\n"
                 "        return\n", False, id="the clause reports the failure somewhere"),
    pytest.param("    try:\n        handle(item)\n    except Exception:\n        logger.error('x')\n"
                 "    else:\n        logger.info('ok')\n    finally:\n        close()\n", True,
                 id="else and finally clauses belong to the try"),
    pytest.param("    with lock:\n        try:\n            handle(item)\n        except Exception:\n"
                 "            pass\n", False, id="not a top-level statement"),
])
def test_qlt305_clause_shapes(tmp_path, body, reported):
    text = norm(TASKS["celery"].replace("{async}", "").replace("{body}", body))
    got = _rows(tmp_path, "QLT305", {"tasks.py": text})
    assert bool(got) is reported, got


def test_header_colon_skips_comments_and_brackets():
    data = b"    except (A,\n            B):  # noqa: E722\n        pass\n"
    assert data[header_colon(data, 4) - 1:header_colon(data, 4)] == b":"
    assert header_colon(data, 4) == data.index(b"):") + 2


@pytest.mark.parametrize("requirement,reported", [
    pytest.param("celery>=5.2,<6\n", False, id="a range that allows 5.7: the option is taken as honoured"),
    pytest.param("celery>=5.2,<5.7\n", True, id="a range below 5.7: the option is ignored"),
    pytest.param("celery==5.6.*\n", True, id="a wildcard below 5.7"),
])
def test_qlt303_new_acks_option_and_the_pinned_range(tmp_path, requirement, reported):
    text = DLX_APP.replace("{routes}", "").replace("{options}", "(queue='dead-lettered')").replace(
        "app.conf.task_acks_on_failure_or_timeout = False", "app.conf.task_acks_on_failure = False")
    rows = _rows(tmp_path, "QLT303", {"tasks.py": text, "requirements.txt": requirement})
    assert rows == ([("tasks.py", 5)] if reported else [])
    if reported:
        assert "`acks_on_failure` is ignored" in _messages(tmp_path, "QLT303")[0]
