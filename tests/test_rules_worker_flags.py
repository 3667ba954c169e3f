"""Worker flags wherever a command line can hold them (issue "reach", item 5).

Part 1 reads command lines: launchers (``wait-for-it.sh ... --``, ``nice -n``, ``gosu USER``,
``su -c``), reloaders (``watchmedo auto-restart``, ``--watch``, ``--reload``: a developer's run),
``nautobot-server celery``, health probes (``arq --check``), wrapper scripts (one that passes its
arguments on, and one the repository holds whose own lines start the worker), YAML merge keys,
words that may hold flags (``$EXTRA_ARGS``). Part 2 judges the flags: QLT404 (prefetch), QLT405
(recycling with a pool that has no children), QLT502 (RQ's CLI pickles), QLT506 (Taskiq
``--no-parse``), and the container follow-ups (QLT703, QLT704, QLT504).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from qlint.lint.facts import Span
from qlint.lint.source import SourceFile
from qlint.manifests import collect as manifests
from qlint.manifests import yamldoc
from qlint.manifests.commands import parse
from qlint.manifests.joins import pool_kind
from qlint.manifests.workloads import Token
from qlint.frameworks import arq, celery, dramatiq, huey, rq, taskiq
from tests.helpers import findings, fix, make_linter, write_project

CLIS = {"celery": celery.CLI, "rq": rq.CLI, "dramatiq": dramatiq.CLI, "huey": huey.CLI, "taskiq": taskiq.CLI,
        "arq": arq.CLI}


def _parse(text: str):
    return parse([Token(w, Span(0, 0), True) for w in shlex.split(text)], CLIS)


def _workers(tmp_path, files):
    write_project(tmp_path, files)
    project = make_linter(tmp_path, ["QLT404"]).model()
    return project, [*project.workers, *project.script_workers]


def _found(tmp_path, files, codes):
    write_project(tmp_path, files)
    codes = [codes] if isinstance(codes, str) else codes
    return [(p, row, c, msg) for p, row, c, msg in findings(tmp_path, codes) if c in codes]


def _fixed(tmp_path, files, code):
    """The fixed files; each still loads as the same kind of file, and a second fix changes nothing."""
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    out = {}
    for path, src in outcome.fixed.items():
        if path.endswith((".yaml", ".yml", ".sh")) or "Procfile" in path:
            manifests.read(SourceFile.from_text(Path(path), src.text))
        Path(path).write_text(src.text, encoding="utf-8")
        out[str(path).replace(str(tmp_path) + "/", "")] = src.text
    assert fix(tmp_path, [code]).fixed == {}, "a second fix changed the output again"
    return out


# == Part 1: reading command lines =========================================================

@pytest.mark.parametrize("command,expected", [
    ("/wait-for-it.sh db:5432 -t 30 -- celery -A proj worker -c 2",
     ("celery", {"worker"}, "celery worker", {"app": "proj", "concurrency": "2"})),
    ("wait-for-it postgres:5432 --strict -- rq worker high",
     ("rq", {"worker"}, "rq worker", {})),
    ("nice -n 10 celery -A proj worker -P threads",
     ("celery", {"worker"}, "celery worker", {"app": "proj", "pool": "threads"})),
    ("gosu app celery -A proj beat", ("celery", {"scheduler"}, "celery beat", {"app": "proj"})),
    ("exec gosu app sh -c 'celery -A proj worker -Q mail'",
     ("celery", {"worker"}, "celery worker", {"app": "proj", "queues": "mail"})),
    ("su app --command 'exec celery -A proj worker --prefetch-multiplier=1'",
     ("celery", {"worker"}, "celery worker", {"app": "proj", "prefetch_multiplier": "1"})),
    ("su -c 'huey_consumer proj.huey -w 2' app", ("huey", {"worker", "scheduler"}, "huey_consumer", {"workers": "2"})),
    ("env DJANGO_SETTINGS_MODULE=proj.settings C_FORCE_ROOT=1 celery -A proj worker",
     ("celery", {"worker"}, "celery worker", {"app": "proj"})),
    ("tini -g -- dramatiq proj.actors -p 2", ("dramatiq", {"worker"}, "dramatiq", {"processes": "2"})),
    ("nautobot-server celery worker -l INFO --events",
     ("celery", {"worker"}, "nautobot-server celery worker", {"loglevel": "INFO", "events": None})),
    ("nautobot-server celery beat", ("celery", {"scheduler"}, "nautobot-server celery beat", {})),
    ("${VENV}/bin/celery -A proj worker", ("celery", {"worker"}, "celery worker", {"app": "proj"})),
    ("celery -A proj worker --uid nobody --pidfile /tmp/w.pid -X slow --include proj.extra",
     ("celery", {"worker"}, "celery worker",
      {"app": "proj", "uid": "nobody", "pidfile": "/tmp/w.pid", "exclude_queues": "slow", "include": "proj.extra"})),
])
def test_launchers_and_runners_are_unwrapped(command, expected):
    (found,) = _parse(command)
    framework, roles, program, flags = expected
    assert (found.framework, found.roles, found.program) == (framework, roles, program)
    assert {k: v.value for k, v in found.flags.items()} == flags
    assert found.positional == [] or framework in ("rq", "huey", "dramatiq")
    assert not found.development


@pytest.mark.parametrize("command", [
    "wait-for-it.sh db:5432 -t 30",  # waits, runs nothing
    "arq --check proj.worker.WorkerSettings",  # a health probe
    "celery -A proj inspect ping",
    "watchmedo auto-restart --recursive celery worker",  # a form without ``--``: not read
])
def test_commands_that_start_no_worker(command):
    assert _parse(command) == []


@pytest.mark.parametrize("command,positional", [
    ("watchmedo auto-restart --directory=./ --pattern=*.py --recursive -- celery -A proj worker", []),
    ("arq --watch src proj.worker.WorkerSettings", ["proj.worker.WorkerSettings"]),
    ("dramatiq proj.actors --watch proj -p 1", ["proj.actors"]),
    ("taskiq worker proj.broker:broker --reload", ["proj.broker:broker"]),
])
def test_reloaders_make_a_development_run(command, positional):
    (found,) = _parse(command)
    assert found.development
    assert [t.text for t in found.positional] == positional  # ``--watch DIR`` takes its folder


def test_words_that_may_hold_flags_are_kept_apart():
    (found,) = _parse('celery -A proj worker -Q "$QUEUE" $CONCURRENCY "${EXTRA[@]}" --loglevel INFO')
    assert found.flags["queues"].value == "$QUEUE"  # a flag's value, not a word of its own
    assert [t.text for t in found.opaque] == ["$CONCURRENCY", "${EXTRA[@]}"]
    assert found.positional == []


def test_a_wrapper_that_passes_its_arguments_on(tmp_path):
    _, workers = _workers(tmp_path, {"docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4
    entrypoint: ./docker/entrypoint.sh
    command: celery -A proj worker -Q reports --prefetch-multiplier=1
"""})
    (worker,) = workers
    assert worker.command.program == "celery worker"
    assert worker.command.flags["prefetch_multiplier"].value == "1"
    assert worker.command.script == ""


ENTRYPOINT_SCRIPT = """#!/bin/bash
set -e
. /reach_broker.sh
wait_for_broker

# pool and concurrency come from the image's environment
exec celery --app=proj \\
    worker \\
    --loglevel=INFO \\
    --prefetch-multiplier=4 \\
    "$@"
"""


def test_a_script_the_repository_holds_is_read_for_the_container(tmp_path):
    project, workers = _workers(tmp_path, {
        "docker/entrypoint-worker.sh": ENTRYPOINT_SCRIPT,
        "docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4
    entrypoint: ['/wait-for-it.sh', 'rabbitmq:5672', '-t', '30', '--', '/entrypoint-worker.sh']
    command: ["--max-tasks-per-child=100"]
""",
    })
    (in_container,) = project.workers
    assert in_container.workload.kind == "compose"
    assert in_container.command.script.endswith("docker/entrypoint-worker.sh")
    flags = in_container.command.flags
    assert flags["prefetch_multiplier"].value == "4" and flags["max_tasks_per_child"].value == "100"
    # The flag written in the script is reported in the script; anchors in the manifest never
    # point into another file.
    path, span = in_container.flag_site("prefetch_multiplier")
    assert path.path.endswith("docker/entrypoint-worker.sh")
    assert ENTRYPOINT_SCRIPT.encode()[span.start:].startswith(b"exec celery")
    assert in_container.anchor("prefetch_multiplier") == in_container.container.command_line
    # the script read on its own: ``"$@"`` stands for words qlint cannot see
    (alone,) = project.script_workers
    assert [t.text for t in alone.command.opaque] == ["$@"]


def test_a_script_named_by_an_ambiguous_or_missing_path_is_not_guessed(tmp_path):
    project, _ = _workers(tmp_path, {
        "deploy/a/run-worker.sh": "exec celery -A proj worker -P threads\n",
        "deploy/b/run-worker.sh": "exec celery -A proj worker -P gevent\n",
        "docker-compose.yml": """
services:
  worker:
    image: proj
    command: /app/run-worker.sh
  other:
    image: proj
    command: /entrypoint-missing.sh
  named:
    image: proj
    command: ./deploy/b/run-worker.sh
""",
    })
    assert [(w.workload.name, w.command.flags["pool"].value) for w in project.workers] == [("named", "gevent")]


MERGED_COMPOSE = """
x-worker: &worker
  image: registry.example.com/proj:1.4
  command: celery -A proj worker -P gevent --max-tasks-per-child=200
  stop_grace_period: 2m
  environment: &env
    CELERY_BROKER_URL: amqp://proj:hunter2@rabbitmq//

x-base: &base
  <<: *worker
  stop_grace_period: 5m

services:
  worker:
    <<: *worker
  slow:
    <<: [*base, *worker]
    command: celery -A proj worker -Q slow
    environment:
      <<: *env
      EXTRA: "1"
"""


def test_merge_keys_are_read_as_compose_reads_them(tmp_path):
    project, workers = _workers(tmp_path, {"docker-compose.yml": MERGED_COMPOSE})
    by_name = {w.workload.name: w for w in project.workers}
    assert by_name["worker"].command.flags["pool"].value == "gevent"
    assert by_name["worker"].workload.grace_seconds == 120
    assert "queues" in by_name["slow"].command.flags and "pool" not in by_name["slow"].command.flags  # own key wins
    assert by_name["slow"].workload.grace_seconds == 300  # the first merged mapping wins, itself merging *worker
    assert set(by_name["slow"].container.env) == {"CELERY_BROKER_URL", "EXTRA"}
    # the command written in the anchor is where a finding about it points
    text = MERGED_COMPOSE.lstrip("\n").encode()
    assert text[by_name["worker"].container.command_line.start:].startswith(b"command: celery -A proj worker -P")


def test_merged_volumes_make_a_development_stack(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    project, _ = _workers(tmp_path, {"compose.yaml": """
x-service: &service
  build: .
  volumes:
    - .:/app
services:
  worker:
    <<: *service
    command: rq worker default
"""})
    (worker,) = project.workers
    assert worker.workload.development and worker.development


def test_recursive_merges_and_merge_bombs_are_bounded(tmp_path):
    lines = ["m0: &m0 {command: celery -A proj worker}"]
    for i in range(1, 40):
        refs = ", ".join(f"*m{j}" for j in range(max(0, i - 8), i))
        lines.append(f"m{i}: &m{i} {{<<: [{refs}], k{i}: v}}")
    text = "\n".join(lines) + "\nloop: &loop\n  <<: *loop\n  image: x\nservices:\n  worker:\n    <<: [*m39, *loop]\n"
    started = time.perf_counter()
    project, _ = _workers(tmp_path, {"docker-compose.yml": text})
    assert time.perf_counter() - started < 5
    (worker,) = project.workers
    assert worker.command.program == "celery worker"


def test_merge_keys_are_never_edited_through_the_service(tmp_path):
    """A fix writes the key in the service itself (an own key overrides a merged one): the anchor
    shared by other services is left as it was."""
    src = SourceFile.from_text(Path("c.yml"), "x: &x\n  stop_signal: SIGTERM\nservices:\n  a:\n    <<: *x\n")
    (doc,) = yamldoc.documents(src)
    service = doc.get("services").get("a")
    assert service.get("stop_signal") is None and service.lookup("stop_signal").text == "SIGTERM"


@pytest.mark.parametrize("path,development", [
    ("docker-compose.yml", False),
    ("deploy/compose.prod.yaml", False),
    ("docker-compose.dev.yml", True),
    ("docker-compose.override.local.yml", True),
    ("development/docker-compose.yml", True),
    (".devcontainer/docker-compose.yml", True),
])
def test_development_compose_files_by_name(tmp_path, path, development):
    project, _ = _workers(tmp_path, {path: "services:\n  worker:\n    image: proj\n    command: rq worker\n"})
    (worker,) = project.workers
    assert bool(worker.workload.development) is development


def test_prefork_on_the_command_line_lets_the_configured_pool_choose(tmp_path):
    """Celery >= 5.1 (bin/worker.py ``WorkersPool.convert``): ``-P prefork`` is the CLI's default, so
    a configured ``worker_pool`` wins over it; ``-P processes`` does not defer."""
    project, workers = _workers(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\napp.conf.worker_pool = "threads"\n',
        "k8s/worker.yaml": "\n---\n".join(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: proj
          args: {args}""" for name, args in [
            ("deferring", '["celery", "-A", "proj", "worker", "-P", "prefork"]'),
            ("processes", '["celery", "-A", "proj", "worker", "-P", "processes"]'),
            ("unknown", '["celery", "-A", "proj", "worker", "-P", "$(POOL)"]'),
            ("opaque", '["sh", "-c", "celery -A proj worker $WORKER_ARGS"]'),
        ]),
    })
    kinds = {w.workload.name: pool_kind(w, project.apps) for w in workers}
    assert kinds == {"deferring": "threads", "processes": "processes", "unknown": None, "opaque": None}


# == Part 2: the flags, judged ===============================================================

# -- QLT404: --prefetch-multiplier -----------------------------------------------------------

CELERY_APP = """
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")
{config}
@app.task(time_limit=1800)
def rebuild_index():
    pass

@app.task(queue="mail", time_limit=30)
def send_email(user_id):
    pass
"""


def _celery(config: str = "") -> dict:
    return {"proj/__init__.py": "", "proj/celery.py": CELERY_APP.format(config=config)}


def test_qlt404_zero_in_a_script_is_the_app_multiplier(tmp_path):
    files = {**_celery(), "bin/run-worker.sh": "#!/bin/sh\nset -e\nexec celery -A proj worker \\\n"
                                                "    --loglevel=INFO \\\n    --prefetch-multiplier=0\n"}
    (found,) = _found(tmp_path, files, "QLT404")
    assert found[:2] == ("bin/run-worker.sh", 3)
    assert "replaces 0 with the app's `worker_prefetch_multiplier`, 4, Celery's default" in found[3]
    fixed = _fixed(tmp_path, files, "QLT404")
    assert fixed == {"bin/run-worker.sh": "#!/bin/sh\nset -e\nexec celery -A proj worker \\\n"
                                          "    --loglevel=INFO \\\n    --prefetch-multiplier=1\n"}


def test_qlt404_zero_on_the_command_line_with_a_multiplier_of_one_is_fine(tmp_path):
    files = {**_celery("app.conf.worker_prefetch_multiplier = 1\n"),
             "Procfile": "worker: celery -A proj worker --prefetch-multiplier=0\n"}
    assert _found(tmp_path, files, "QLT404") == []


def test_qlt404_a_flag_in_the_script_a_container_runs_is_reported_once_in_the_script(tmp_path):
    files = {**_celery(), "docker/entrypoint-worker.sh": ENTRYPOINT_SCRIPT, "docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4
    entrypoint: ['/wait-for-it.sh', 'rabbitmq:5672', '--', '/entrypoint-worker.sh']
"""}
    found = _found(tmp_path, files, "QLT404")
    assert [(p, row) for p, row, _, _ in found] == [("docker/entrypoint-worker.sh", 7)]


def test_qlt404_the_configuration_is_judged_for_the_tasks_a_flagless_worker_runs(tmp_path):
    def deployment(name, args):
        return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: proj
          args: {args}
"""
    mail_only = deployment("mail", '["celery", "-A", "proj", "worker", "-Q", "mail"]')
    tuned = deployment("default", '["celery", "-A", "proj", "worker", "-Q", "celery", "--prefetch-multiplier=1"]')
    flagless = deployment("default", '["celery", "-A", "proj", "worker"]')
    # the long task runs only on the tuned worker: the mail worker prefetches 4 of short tasks
    assert _found(tmp_path, {**_celery(), "k8s/w.yaml": mail_only + "---\n" + tuned}, "QLT404") == []
    (found,) = _found(tmp_path, {**_celery(), "k8s/w.yaml": mail_only + "---\n" + flagless}, "QLT404")
    assert found[:2] == ("proj/celery.py", 3) and "rebuild_index` may run 1800 s" in found[3]


def test_qlt404_words_qlint_cannot_read_may_set_the_multiplier(tmp_path):
    opaque = "worker: sh -c 'exec celery -A proj worker $CELERY_WORKER_ARGS'\n"
    assert _found(tmp_path, {**_celery(), "Procfile": opaque}, "QLT404") == []
    both = opaque + "other: celery -A proj worker -Q celery\n"
    assert [(p, row) for p, row, _, _ in _found(tmp_path, {**_celery(), "Procfile": both}, "QLT404")] == [
        ("proj/celery.py", 3)]


def test_qlt404_flag_fix_keeps_the_separate_value_item(tmp_path):
    files = {**_celery(), "k8s/worker.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
        - name: worker
          image: proj
          args: ["celery", "-A", "proj", "worker", "--prefetch-multiplier", '6']
"""}
    (found,) = _found(tmp_path, files, "QLT404")
    assert "`--prefetch-multiplier 6`" in found[3]
    fixed = _fixed(tmp_path, files, "QLT404")
    assert """args: ["celery", "-A", "proj", "worker", "--prefetch-multiplier", '1']""" in fixed["k8s/worker.yaml"]


# -- QLT405: recycling with a pool that has no children -----------------------------------------

def _app(config: str) -> dict:
    return {"proj/__init__.py": "", "proj/celery.py": f'from celery import Celery\n\napp = Celery("proj")\n{config}'}


def test_qlt405_setting_ignored_by_every_worker_is_reported_once_on_the_setting(tmp_path):
    files = {**_app("app.conf.worker_max_memory_per_child = 250_000\n"),
             "Procfile": "io: celery -A proj worker -P gevent -c 500\nthreads: celery -A proj worker --pool threads\n"}
    (found,) = _found(tmp_path, files, "QLT405")
    assert found[:2] == ("proj/celery.py", 4)
    assert "the workers that run the app use the `gevent` pool (`-P gevent` in Procfile entry `io`) and the " \
           "`threads` pool (`--pool threads` in Procfile entry `threads`)" in found[3]


def test_qlt405_a_worker_with_its_own_flag_does_not_read_the_setting(tmp_path):
    files = {**_app("app.conf.worker_max_tasks_per_child = 100\n"),
             "Procfile": "io: celery -A proj worker -P gevent --max-tasks-per-child=50\n"}
    found = _found(tmp_path, files, "QLT405")
    assert [(p, row) for p, row, _, _ in found] == [("Procfile", 1)]
    assert found[0][3].startswith("`--max-tasks-per-child=50` on `celery worker` in Procfile entry `io` is ignored")


def test_qlt405_a_flag_in_a_script_the_container_runs(tmp_path):
    files = {**_app(""), "docker/worker.sh": "#!/bin/sh\nexec celery -A proj worker -P threads \\\n"
                                            "  --max-tasks-per-child=200 \"$@\"\n",
             "docker-compose.yml": "services:\n  worker:\n    image: proj\n    command: ./docker/worker.sh -c 8\n"}
    found = _found(tmp_path, files, "QLT405")
    assert [(p, row) for p, row, _, _ in found] == [("docker/worker.sh", 2)]


def test_qlt405_words_qlint_cannot_read_may_choose_the_pool(tmp_path):
    files = {**_app('app.conf.worker_pool = "gevent"\napp.conf.worker_max_tasks_per_child = 100\n'),
             "Procfile": "worker: sh -c 'celery -A proj worker $CELERY_ARGS'\n"}
    assert _found(tmp_path, files, "QLT405") == []


# -- QLT502: RQ's command line pickles ------------------------------------------------------------

def test_qlt502_rq_worker_in_a_script_is_reported_in_the_script_once(tmp_path):
    files = {"bin/rq-worker.sh": "#!/bin/sh\nset -e\nexec rq worker --url \"$REDIS_URL\" high default\n",
             "docker-compose.yml": "services:\n  worker:\n    image: proj\n    command: [\"bin/rq-worker.sh\"]\n"}
    found = _found(tmp_path, files, "QLT502")
    assert [(p, row) for p, row, _, _ in found] == [("bin/rq-worker.sh", 3)]
    assert found[0][3].startswith("`rq worker` in container `worker` sets no `--serializer`")


@pytest.mark.parametrize("command,reported", [
    ("rq worker-pool -n 4 high", True),
    ("python manage.py rqworker-pool --num-workers 2", True),
    ("rq worker --serializer pickle high", False),  # chosen, not a default (and not QLT502's)
    ("rq worker -S json high", False),
    ("rq info --interval 5", False),
    ("rqscheduler --host redis", False),
])
def test_qlt502_worker_commands(tmp_path, command, reported):
    found = _found(tmp_path, {"Procfile": f"worker: {command}\n"}, "QLT502")
    assert bool(found) is reported


# -- QLT506: taskiq worker --no-parse --------------------------------------------------------------

TASKIQ = {
    "proj/__init__.py": "",
    "proj/broker.py": 'from taskiq_redis import ListQueueBroker\n\nbroker = ListQueueBroker("redis://redis:6379/0")\n',
    "proj/tasks.py": """
from pydantic import BaseModel

from proj.broker import broker

class Refund(BaseModel):
    id: int

@broker.task
async def refund(ticket_id: int, refund: Refund | None = None):
    pass
""",
}


def test_qlt506_no_parse_in_a_script(tmp_path):
    files = {**TASKIQ, "bin/worker.sh": "#!/bin/sh\nexec taskiq worker proj.broker:broker proj.tasks \\\n"
                                        "  --workers 2 --no-parse\n"}
    found = _found(tmp_path, files, "QLT506")
    assert [(p, row) for p, row, _, _ in found] == [("bin/worker.sh", 2)]
    assert "`refund: Refund` instead of `Refund` instances" in found[0][3]


def test_qlt506_no_parse_for_tasks_without_models_is_fine(tmp_path):
    files = {**TASKIQ, "proj/tasks.py": "from proj.broker import broker\n\n@broker.task\nasync def ping(n: int):\n"
                                        "    pass\n",
             "Procfile": "worker: taskiq worker proj.broker:broker --no-parse\n"}
    assert _found(tmp_path, files, "QLT506") == []


# -- QLT704 / QLT703 / QLT504 follow-ups ------------------------------------------------------------

ARQ_SETTINGS = """
from arq.connections import RedisSettings

async def sample(ctx, name):
    pass

class WorkerSettings:
    functions = [sample]
    redis_settings = RedisSettings(host="redis")
{extra}
"""


def _arq(extra: str, compose: str) -> dict:
    return {"app/__init__.py": "", "app/core/__init__.py": "", "app/core/worker.py": ARQ_SETTINGS.format(extra=extra),
            "docker-compose.yml": compose}


ARQ_PROD = "services:\n  worker:\n    image: registry.example.com/app:2.0\n    command: arq app.core.worker.WorkerSettings\n"


def test_qlt704_handle_signals_false_is_the_cause_not_the_wait(tmp_path):
    (found,) = _found(tmp_path, _arq("    handle_signals = False\n", ARQ_PROD), "QLT704")
    assert "`handle_signals = False`" in found[3] and "waits 0 s" not in found[3]


def test_qlt704_handle_signals_on_a_development_stack_is_not_judged(tmp_path):
    compose = ("services:\n  worker:\n    build: .\n    command: arq app.core.worker.WorkerSettings\n"
               "    volumes:\n      - ./app:/code/app\n")
    assert _found(tmp_path, _arq("    handle_signals = False\n", compose), "QLT704") == []


@pytest.mark.parametrize("extra,expected", [
    ("    handle_signals = True\n", "waits 0 s"),  # the handlers are there: the wait of 0 s is the cause
    ("    handle_signals = True\n    job_completion_wait = 8\n", None),
])
def test_qlt704_arq_with_its_signal_handlers(tmp_path, extra, expected):
    found = _found(tmp_path, _arq(extra, ARQ_PROD), "QLT704")
    assert [expected in f[3] for f in found] == ([True] if expected else [])


def test_qlt704_inherited_settings_may_handle_signals(tmp_path):
    files = _arq("", ARQ_PROD)
    files["app/core/worker.py"] = files["app/core/worker.py"].replace(
        "class WorkerSettings:", "class WorkerSettings(BaseSettings):").replace(
        "from arq.connections", "from app.base import BaseSettings\nfrom arq.connections")
    assert _found(tmp_path, files, "QLT704") == []


def test_qlt703_scheduler_in_a_development_compose_file_is_not_judged(tmp_path):
    compose = "services:\n  beat:\n    image: proj\n    command: celery -A proj beat\n    scale: 2\n"
    assert _found(tmp_path / "prod", {"docker-compose.yml": compose}, "QLT703") != []
    assert _found(tmp_path / "dev", {"docker-compose.local.yml": compose}, "QLT703") == []


def test_a_dispatcher_script_is_not_followed(tmp_path):
    """A script whose arguments choose what it runs, or that starts several workers, is not read for
    the container: which branch runs is not written in the script."""
    dispatcher = """#!/bin/bash
if [ "$1" == "scheduler" ]; then
    exec celery -A proj beat
elif [ "$1" == "worker" ]; then
    exec celery -A proj worker -P gevent
fi
exec gunicorn proj.wsgi
"""
    several = "#!/bin/sh\ncelery -A proj worker -Q a &\ncelery -A proj worker -Q b\n"
    project, _ = _workers(tmp_path, {
        "docker/entrypoint.sh": dispatcher, "docker/both.sh": several,
        "docker-compose.yml": """
services:
  web:
    image: proj
    command: /app/docker/entrypoint.sh web
  both:
    image: proj
    command: ./docker/both.sh
""",
    })
    assert project.workers == []
    assert len(project.script_workers) == 4  # the scripts themselves still tell how workers are started


def test_wide_merges_cost_a_bounded_walk(tmp_path):
    """Many services each merging many wide anchors: every lookup walks a bounded number of pairs."""
    anchors = [f"a{i}: &a{i} {{{', '.join(f'k{i}_{j}: v' for j in range(60))}}}" for i in range(200)]
    refs = ", ".join(f"*a{i}" for i in range(200))
    services = "\n".join(f"  w{n}:\n    <<: [{refs}]\n    command: celery -A proj worker" for n in range(40))
    started = time.perf_counter()
    project, _ = _workers(tmp_path, {"docker-compose.yml": "\n".join(anchors) + "\nservices:\n" + services + "\n"})
    assert len(project.workers) == 40
    assert time.perf_counter() - started < 20


def test_qlt704_dockerfile_named_in_a_merged_anchor(tmp_path):
    files = {
        "Dockerfile": "FROM python:3.13-slim\nSTOPSIGNAL SIGINT\nCMD [\"huey_consumer\", \"proj.huey\"]\n",
        "docker-compose.yml": """
x-app: &app
  build: .
  image: registry.example.com/proj:1.4.2
services:
  huey:
    <<: *app
    command: huey_consumer proj.huey -w 4
""",
    }
    assert _found(tmp_path, files, "QLT704") == []


@pytest.mark.parametrize("command,reported", [
    ("dramatiq proj.actors", True),
    ("sh -c 'exec dramatiq proj.actors $DRAMATIQ_ARGS'", False),  # may hold -p
    ("celery -A proj worker", True),
    ("sh -c 'exec celery -A proj worker $CELERY_ARGS'", False),  # may hold -c or -P
])
def test_qlt402_words_qlint_cannot_read_may_size_the_pool(tmp_path, command, reported):
    files = {"k8s/worker.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
        - name: worker
          image: proj
          command: {command!r}
          resources:
            limits:
              cpu: "2"
"""}
    assert bool(_found(tmp_path, files, "QLT402")) is reported
