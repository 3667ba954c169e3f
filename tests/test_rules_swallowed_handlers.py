"""QLT105 and QLT305 judge what a catch-all clause really does: whether the task goes on
after it (QLT105's subject when the task has a limit that raises), or ends once it has run
(QLT305's, unless the failure is recorded). The two never report the same clause."""

from __future__ import annotations

import pytest

from tests.helpers import findings, norm, write_project

SOFT = "from celery import shared_task\n\n@shared_task(soft_time_limit=60, time_limit=90)\ndef work(items):\n"


def _rows(tmp_path, files, codes=("QLT105", "QLT305")):
    write_project(tmp_path, files)
    return sorted((p, row, c) for p, row, c, _ in findings(tmp_path, list(codes)) if c in codes)


def _messages(tmp_path, files, code):
    write_project(tmp_path, files)
    return [m for _, _, c, m in findings(tmp_path, [code]) if c == code]


# -- who reports which clause -----------------------------------------------------------------

# Bodies of a task with a soft limit, and which of the two rules reports the catch-all
# (the one whose `except` is the only one in the body).
SHAPES = {
    "loop, logs": (("    for item in items:\n        try:\n            handle(item)\n"
                   "        except Exception:\n            log.exception('x')\n"), "QLT105"),
    "while loop, passes": (("    while items:\n        try:\n            handle(items.pop())\n"
                           "        except Exception:\n            pass\n"), "QLT105"),
    "loop, returns": (("    for item in items:\n        try:\n            handle(item)\n"
                      "        except Exception:\n            log.exception('x')\n            return None\n"), None),
    "loop, continue": (("    for item in items:\n        try:\n            handle(item)\n"
                       "        except Exception:\n            continue\n        done(item)\n"), "QLT105"),
    "loop, break, nothing after": (("    for item in items:\n        try:\n            handle(item)\n"
                                   "        except Exception:\n            break\n"), None),
    "loop, break, work after": (("    for item in items:\n        try:\n            handle(item)\n"
                                "        except Exception:\n            break\n    publish(items)\n"), "QLT105"),
    "last statement, logs": ("    try:\n        handle(items)\n    except Exception:\n        log.error('x')\n",
                             "QLT305"),
    "last statement, plain return after": (("    try:\n        handle(items)\n    except Exception:\n"
                                           "        log.error('x')\n    log.info('done')\n    return 'OK'\n"), "QLT305"),
    "work after the try": (("    try:\n        handle(items)\n    except Exception:\n        pass\n"
                           "    publish(items)\n"), "QLT105"),
    "the clause works and returns": (("    try:\n        handle(items)\n    except Exception:\n"
                                     "        return fallback(items)\n"), "QLT105"),
    "the clause records and returns": (("    try:\n        handle(items)\n    except Exception as exc:\n"
                                       "        mark_failed(items, str(exc))\n        return\n"), None),
    "else clause of the try is skipped": (("    try:\n        handle(items)\n    except Exception:\n        pass\n"
                                          "    else:\n        publish(items)\n"), "QLT305"),
    "finally runs either way": (("    try:\n        handle(items)\n    except Exception:\n        pass\n"
                                "    finally:\n        close(items)\n"), "QLT305"),
    "nested in an if, work after it": (("    if items:\n        try:\n            handle(items)\n"
                                       "        except Exception:\n            pass\n    publish(items)\n"), "QLT105"),
    "nested in an if, return after it": (("    if items:\n        try:\n            handle(items)\n"
                                         "        except Exception:\n            pass\n        return\n"
                                         "    publish(items)\n"), None),
    "nested in a with, nothing after": (("    with lock:\n        try:\n            handle(items)\n"
                                        "        except Exception:\n            pass\n"), None),
    "nested in an outer try's body, more body after": (
        ("    try:\n        try:\n            handle(items)\n        except Exception:\n            pass\n"
        "        publish(items)\n    except KeyError:\n        raise\n"), "QLT105"),
    "nested in an outer try's body, its else after": (
        ("    try:\n        try:\n            handle(items)\n        except Exception:\n            pass\n"
        "    except KeyError:\n        raise\n    else:\n        publish(items)\n"), "QLT105"),
    "nested in another clause, work after the outer try": (
        ("    try:\n        handle(items)\n    except KeyError:\n        try:\n            retry_later(items)\n"
        "        except Exception:\n            pass\n    publish(items)\n"), "QLT105"),
    "a match case, nothing after": (("    match items:\n        case []:\n            try:\n                handle(items)\n"
                                    "            except Exception:\n                pass\n"), None),
    "a nested function's clause is not the task's": (
        ("    def inner():\n        try:\n            handle(items)\n        except Exception:\n            pass\n"
        "    inner()\n"), None),
}


@pytest.mark.parametrize("body,code", [pytest.param(b, c, id=name) for name, (b, c) in SHAPES.items()])
def test_one_rule_or_none_per_clause(tmp_path, body, code):
    text = norm(SOFT + body)
    rows = _rows(tmp_path, {"tasks.py": text})
    assert len({(p, row) for p, row, _ in rows}) == len(rows), rows  # never both on one line
    row = next(i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "except Exception:" or
               line.strip() == "except Exception as exc:")
    assert rows == ([("tasks.py", row, code)] if code else []), rows


def test_without_a_limit_the_going_on_clause_is_no_ones(tmp_path):
    """QLT305 leaves a step allowed to fail alone, and QLT105 needs a limit that raises."""
    text = norm("from celery import shared_task\n\n@shared_task\ndef work(items):\n" + SHAPES["work after the try"][0])
    assert _rows(tmp_path, {"tasks.py": text}) == []


def test_redash_like_jobs_get_one_finding_at_most(tmp_path):
    """Jobs that return an error payload, log or return the exception at their end: neither
    rule (the payload and the Sentry-captured log line record the failure); the webhook loop
    that goes on to the next hook is QLT105's."""
    files = {
        "app/__init__.py": "",
        "app/monitoring.py": """
import sentry_sdk
from sentry_sdk.integrations.rq import RqIntegration

def init(dsn):
    sentry_sdk.init(dsn=dsn, integrations=[RqIntegration()])
""",
        "app/jobs.py": """
from redis import Redis
from rq.decorators import job

@job("schemas", connection=Redis(), timeout=300)
def get_tables(source_id):
    try:
        return load_tables(source_id)
    except Exception:
        return {"error": {"code": 2, "message": "Error retrieving tables."}}

@job("emails", connection=Redis())
def send_mail(to, subject):
    try:
        deliver(to, subject)
    except Exception:
        logger.exception("Failed sending message: %s", subject)

@job("queries", connection=Redis(), timeout=30)
def check_source(source_id):
    try:
        connect(source_id)
    except Exception as exc:
        return exc
    else:
        return True

@job("default", connection=Redis())
def forward_event(event, hooks):
    for hook in hooks:
        try:
            post(hook, event)
        except Exception:
            logger.exception("Failed posting to %s", hook)
""",
    }
    assert _rows(tmp_path, files) == [("app/jobs.py", 32, "QLT105")]


# -- QLT105's message says what goes on ---------------------------------------------------------

@pytest.mark.parametrize("body,expected", [
    pytest.param(SHAPES["loop, logs"][0], "the `for` loop (line 5) goes on with its next iteration", id="for"),
    pytest.param(SHAPES["while loop, passes"][0], "the `while` loop (line 5) goes on", id="while"),
    pytest.param(SHAPES["work after the try"][0], "the task goes on with `publish(items)` (line 9)", id="after"),
    pytest.param(SHAPES["the clause works and returns"][0], "the clause goes on to run `fallback(items)` (line 8)",
                 id="clause"),
    pytest.param("    try:\n        handle(items)\n    except Exception:\n        pass\n"
                 "    publish(\n        items,\n    )\n", "the task goes on with `publish(...)` (line 9)",
                 id="a call over several lines"),
])
def test_qlt105_message_names_what_runs_past_the_limit(tmp_path, body, expected):
    [message] = _messages(tmp_path, {"tasks.py": norm(SOFT + body)}, "QLT105")
    assert expected in message
    assert "until the task ends or the hard limit (90 s) kills its process" in message


def test_qlt105_rq_says_no_more_than_past_the_limit(tmp_path):
    text = norm("""
from redis import Redis
from rq.decorators import job

@job("default", connection=Redis(), timeout=60)
def export(paths):
    for path in paths:
        try:
            write(path)
        except Exception:
            pass
""")
    [message] = _messages(tmp_path, {"tasks.py": text}, "QLT105")
    assert message.endswith("goes on with its next iteration past the limit; handle the timeout first and re-raise it")


# -- QLT305: a recorded failure is handled ---------------------------------------------------

TASK = "from celery import shared_task\n\n@shared_task\ndef work(item):\n    try:\n        handle(item)\n"


@pytest.mark.parametrize("clause,reported", [
    pytest.param("    except Exception as exc:\n        return exc\n", False, id="the exception itself"),
    pytest.param("    except Exception:\n        return {'error': 'failed'}\n", False, id="error key"),
    pytest.param("    except Exception:\n        return {'errors': ['x']}\n", False, id="errors key"),
    pytest.param("    except Exception:\n        return {'traceback': 'tb'}\n", False, id="traceback key"),
    pytest.param("    except Exception:\n        return {'status': 'FAILED', 'id': 1}\n", False, id="status failed"),
    pytest.param("    except Exception:\n        return {'state': 'error'}\n", False, id="state error"),
    pytest.param("    except Exception:\n        return {'success': False}\n", False, id="success false"),
    pytest.param("    except Exception:\n        return {'ok': False}\n", False, id="ok false"),
    pytest.param("    except Exception:\n        return {'status': 'done'}\n", True, id="status done"),
    pytest.param("    except Exception:\n        return {'success': True}\n", True, id="success true"),
    pytest.param("    except Exception:\n        return False\n", True, id="False alone"),
    pytest.param("    except Exception as exc:\n        return None, str(exc)\n", True, id="a tuple"),
    pytest.param("    except Exception as exc:\n        return str(exc)\n", True, id="the message as a string"),
    pytest.param("    except Exception as exc:\n        return other\n", True, id="another name"),
])
def test_qlt305_error_payload_shapes(tmp_path, clause, reported):
    rows = _rows(tmp_path, {"tasks.py": norm(TASK + clause)}, ("QLT305",))
    assert bool(rows) is reported, rows


@pytest.mark.parametrize("call", [
    "sentry_sdk.capture_exception(exc)", "sentry_sdk.capture_message('failed')", "client.captureException()",
    "raven_client.captureMessage('failed')", "rollbar.report_exc_info()", "rollbar.report_message('failed')",
    "bugsnag.notify(exc)", "newrelic.agent.notice_error()",
])
def test_qlt305_error_tracker_calls_record_the_failure(tmp_path, call):
    text = norm(TASK + f"    except Exception as exc:\n        {call}\n")
    assert _rows(tmp_path, {"tasks.py": text}, ("QLT305",)) == []


def _sentry(tmp_path, settings: str, log: str, extra: dict | None = None):
    files = {
        "proj/__init__.py": "",
        "proj/monitoring.py": settings,
        "proj/tasks.py": TASK.replace("from celery", "import logging\n\nfrom celery") +
        f"    except Exception:\n        logger.{log}('failed')\n",
        **(extra or {}),
    }
    return _rows(tmp_path, files, ("QLT305",))


@pytest.mark.parametrize("settings,log,reported", [
    pytest.param("import sentry_sdk\nsentry_sdk.init(dsn='x')\n", "exception", False, id="defaults: exception"),
    pytest.param("import sentry_sdk\nsentry_sdk.init(dsn='x')\n", "error", False, id="defaults: error"),
    pytest.param("import sentry_sdk\nsentry_sdk.init(dsn='x')\n", "critical", False, id="defaults: critical"),
    pytest.param("import sentry_sdk\nsentry_sdk.init(dsn='x')\n", "warning", True, id="defaults: warning"),
    pytest.param("import sentry_sdk\nsentry_sdk.init(dsn='x')\n", "info", False,
                 id="info: a failure logged below WARNING is one the author expects"),
    pytest.param("import sentry_sdk as sentry\nsentry.init(dsn='x')\n", "error", False, id="the module under an alias"),
    pytest.param("import sentry_sdk\nOPTIONS = {}\nsentry_sdk.init(dsn='x', **OPTIONS)\n", "error", False,
                 id="options qlint cannot read keep the defaults"),
    pytest.param("import sentry_sdk\nsentry_sdk.init(dsn='x', default_integrations=False)\n", "error", True,
                 id="default integrations off"),
    pytest.param("import sentry_sdk\nfrom sentry_sdk.integrations.logging import LoggingIntegration\n"
                 "sentry_sdk.init(dsn='x', disabled_integrations=[LoggingIntegration])\n", "error", True,
                 id="logging integration disabled"),
    pytest.param("import sentry_sdk\nfrom sentry_sdk.integrations.logging import LoggingIntegration\n"
                 "sentry_sdk.init(dsn='x', integrations=[LoggingIntegration(event_level=None)])\n", "exception", True,
                 id="event_level None"),
    pytest.param("import logging\nimport sentry_sdk\nfrom sentry_sdk.integrations.logging import LoggingIntegration\n"
                 "sentry_sdk.init(dsn='x', integrations=[LoggingIntegration(logging.INFO, logging.CRITICAL)])\n",
                 "error", True, id="positional event level above error"),
    pytest.param("import logging\nimport sentry_sdk\nfrom sentry_sdk.integrations.logging import LoggingIntegration\n"
                 "EVENTS = LoggingIntegration(event_level=logging.WARNING)\n"
                 "sentry_sdk.init(dsn='x', default_integrations=False, integrations=[EVENTS])\n", "warning", False,
                 id="a module-level integration sending warnings"),
    pytest.param("import sentry_sdk\nfrom sentry_sdk.integrations.logging import LoggingIntegration\n"
                 "from proj.levels import LEVEL\n"
                 "sentry_sdk.init(dsn='x', integrations=[LoggingIntegration(event_level=LEVEL)])\n", "info", False,
                 id="an event level qlint cannot read may be any"),
    pytest.param("import structlog\nfrom structlog_sentry import SentryProcessor\n"
                 "structlog.configure(processors=[SentryProcessor()])\n", "warning", False,
                 id="structlog-sentry: warnings and up"),
    pytest.param("import structlog\nfrom structlog_sentry import SentryProcessor\n"
                 "structlog.configure(processors=[SentryProcessor()])\n", "debug", False,
                 id="structlog-sentry: debug, expected"),
    pytest.param("LOGGING = {'handlers': {'sentry': {'level': 'ERROR', "
                 "'class': 'raven.contrib.django.raven_compat.handlers.SentryHandler'}}}\n", "error", False,
                 id="raven's logging handler"),
    pytest.param("LOGGING = {'handlers': {'rollbar': {'level': 'ERROR', 'class': 'rollbar.logger.RollbarHandler'}}}\n",
                 "warning", True, id="Rollbar's handler below its level"),
    pytest.param("DEBUG = False\n", "error", True, id="no tracker"),
])
def test_qlt305_log_records_an_error_tracker_captures(tmp_path, settings, log, reported):
    assert bool(_sentry(tmp_path, settings, log)) is reported


@pytest.mark.parametrize("path,text,reported", [
    pytest.param("requirements.txt", "celery==5.4.0\nsentry-sdk[django]==2.19.0\n", False, id="requirements"),
    pytest.param("requirements/deploy.txt", "structlog-sentry==2.2.1\n", False, id="requirements folder"),
    pytest.param("pyproject.toml", "[project]\ndependencies = [\"celery>=5\", \"sentry_sdk>=2\"]\n", False,
                 id="pyproject"),
    pytest.param("requirements-dev.txt", "sentry-sdk==2.19.0\n", True, id="only for development"),
    pytest.param("requirements/testing.txt", "sentry-sdk==2.19.0\n", True, id="only for tests"),
    pytest.param("requirements.txt", "# sentry-sdk, one day\nsentry-sdk-extras==1.0\n", True,
                 id="a comment and another package"),
])
def test_qlt305_a_tracker_installed_but_configured_elsewhere(tmp_path, path, text, reported):
    assert bool(_sentry(tmp_path, "DEBUG = False\n", "error", {path: text})) is reported


def test_qlt305_a_visible_configuration_wins_over_the_requirements(tmp_path):
    settings = "import sentry_sdk\nsentry_sdk.init(dsn='x', default_integrations=False)\n"
    assert _sentry(tmp_path, settings, "error", {"requirements.txt": "sentry-sdk==2.19.0\n"}) != []


def test_qlt305_reads_a_tracker_module_that_mentions_no_framework_alone(tmp_path):
    """``--select QLT305`` on its own parses a module that only configures Sentry."""
    files = {
        "proj/__init__.py": "",
        "proj/monitoring.py": "import sentry_sdk\n\ndef start(dsn):\n    sentry_sdk.init(dsn=dsn)\n",
        "proj/tasks.py": TASK + "    except Exception:\n        logger.error('failed')\n",
    }
    write_project(tmp_path, files)
    assert findings(tmp_path, ["QLT305"]) == findings(tmp_path, ["QLT305"], use_prefilter=False) == []


# -- QLT305's message claims only what holds --------------------------------------------------

@pytest.mark.parametrize("files,present,absent", [
    pytest.param({"tasks.py": TASK.replace("@shared_task", "@shared_task(max_retries=5)") +
                  "    except Exception:\n        pass\n"},
                 "Celery treats the task as a success, and nothing records the failure", "never run",
                 id="celery max_retries without autoretry_for retries nothing"),
    pytest.param({"tasks.py": "import dramatiq\n\n@dramatiq.actor(max_retries=0)\ndef work(item):\n"
                              "    try:\n        handle(item)\n    except Exception:\n        log.warning('x')\n"},
                 "a log line is all that records the failure", "never run", id="dramatiq without retries"),
    pytest.param({"tasks.py": "import dramatiq\n\n@dramatiq.actor(max_retries=4, on_failure='report')\n"
                              "def work(item):\n    try:\n        handle(item)\n    except Exception:\n        pass\n"},
                 "so its retries (4, decorator) never run and its `on_failure` handler is not called", "log line",
                 id="dramatiq retries and on_failure"),
    pytest.param({"tasks.py": "from huey import RedisHuey\n\nhuey = RedisHuey('app')\n\n@huey.task()\n"
                              "def work(item):\n    try:\n        handle(item)\n    except Exception:\n        pass\n"},
                 "Huey treats the task as a success, and nothing records", "never run", id="huey without retries"),
    pytest.param({"tasks.py": "from taskiq import InMemoryBroker, SimpleRetryMiddleware\n\n"
                              "broker = InMemoryBroker().with_middlewares(SimpleRetryMiddleware())\n\n"
                              "@broker.task(retry_on_error=True, max_retries=2)\nasync def work(item):\n"
                              "    try:\n        await handle(item)\n    except Exception:\n        pass\n"},
                 "so its retries (2,", "log line", id="taskiq with retry middleware"),
    pytest.param({"tasks.py": "from arq.connections import RedisSettings\n\nasync def work(ctx, item):\n    try:\n        await handle(item)\n"
                              "    except Exception:\n        pass\n\nclass WorkerSettings:\n    functions = [work]\n"
                              "    redis_settings = RedisSettings()\n"},
                 "arq treats the task as a success, and nothing records", "never run",
                 id="arq retries only Retry and cut-off jobs"),
])
def test_qlt305_message_claims_only_what_holds(tmp_path, files, present, absent):
    [message] = _messages(tmp_path, files, "QLT305")
    assert present in message
    assert absent not in message
