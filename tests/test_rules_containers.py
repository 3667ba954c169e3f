"""Containers are judged for what they run: schedulers, monitors and one-off commands are not
workers (QLT402, QLT403, QLT410, QLT701, QLT702, QLT705, QLT706); each pool is described as what it
is (QLT402); a compose service that runs the working copy mounted from the host is a developer's
stack, not a deployment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qlint.lint.facts import Span
from qlint.manifests import collect as manifests
from qlint.manifests.commands import parse
from qlint.manifests.workloads import Token
from qlint.lint.source import SourceFile
from tests.helpers import findings, fix, write_project
from qlint.frameworks import celery, dramatiq, huey, rq

WORKER_RULES = ["QLT402", "QLT403", "QLT410", "QLT701", "QLT702", "QLT705", "QLT706"]
CLIS = {"celery": celery.CLI, "rq": rq.CLI, "dramatiq": dramatiq.CLI, "huey": huey.CLI}


def _found(tmp_path, files, codes):
    write_project(tmp_path, files)
    codes = [codes] if isinstance(codes, str) else codes
    return [(p, row, c, msg) for p, row, c, msg in findings(tmp_path, codes) if c in codes]


def _fixed(tmp_path, files, code):
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    out = {}
    for path, src in outcome.fixed.items():
        manifests.read(SourceFile.from_text(Path(path), src.text))  # still loads
        out[str(path).replace(str(tmp_path) + "/", "")] = src.text
    return out


def _deployment(args: str, resources: str = "", name: str = "worker", extra_container: str = "") -> dict:
    return {"k8s/worker.yaml": f"""
apiVersion: apps/v1
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
{resources}{extra_container}"""}


LIMITS_1_CPU = "          resources:\n            limits:\n              cpu: \"1\"\n              memory: 1Gi\n"


def _words(text: str) -> list[Token]:
    return [Token(w, Span(0, 0), True) for w in text.split()]


# -- reading the command: what the container runs ------------------------------------------

@pytest.mark.parametrize("command,expected", [
    ("python manage.py celery beat -l info", [("celery", {"scheduler"}, "manage.py celery beat")]),
    ("python manage.py celery worker -A proj -c 2", [("celery", {"worker"}, "manage.py celery worker")]),
    ("python manage.py celery flower", []),
    ("python manage.py celery", []),
    ("python manage.py rqworker default", [("rq", {"worker"}, "manage.py rqworker")]),
    ("django-admin rqworker high low", [("rq", {"worker"}, "django-admin rqworker")]),
    ("python manage.py migrate", []),
    ("alembic upgrade head", []),
    ("celery -A proj flower --port=5555", []),
    ("celery --app=proj inspect ping", []),
    ("python -m celery -A proj beat", [("celery", {"scheduler"}, "celery beat")]),
    ("celery -A proj worker -B", [("celery", {"worker", "scheduler"}, "celery worker")]),
])
def test_what_a_command_runs(command, expected):
    found = parse(_words(command), CLIS)
    assert [(c.framework, c.roles, c.program) for c in found] == expected


def test_django_celery_worker_reads_its_flags_after_the_subcommand():
    (command,) = parse(_words("python manage.py celery worker -A proj -c 2 -P threads"), CLIS)
    assert command.flags["app"].value == "proj" and command.flags["pool"].value == "threads"
    assert [t.text for t in command.positional] == []  # ``worker`` is the subcommand, not an app name


@pytest.mark.parametrize("args", [
    '["celery", "-A", "proj", "beat"]',
    '["python", "manage.py", "celery", "beat"]',
    '["celery", "-A", "proj", "flower"]',
    '["python", "manage.py", "celery", "flower"]',
    '["sh", "-c", "python manage.py migrate && alembic upgrade head"]',
    '["taskiq", "scheduler", "proj.scheduler:scheduler"]',
])
def test_schedulers_monitors_and_migrations_are_not_judged_as_workers(tmp_path, args):
    resources = "          resources:\n            requests:\n              cpu: 100m\n"
    assert _found(tmp_path, _deployment(args, resources), WORKER_RULES) == []


def test_the_same_container_running_a_worker_is_judged(tmp_path):
    """Near miss of the above: the worker command in the same place is reported by each rule."""
    files = _deployment('["celery", "-A", "proj", "worker"]', "          resources:\n            requests:\n"
                        "              cpu: 100m\n")
    assert {c for _, _, c, _ in _found(tmp_path, files, WORKER_RULES)} == {"QLT402", "QLT701", "QLT705", "QLT706"}


def test_a_one_off_job_running_a_management_command_is_not_a_worker(tmp_path):
    files = {"k8s/job.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
        - name: wait
          image: proj
          args: ["python", "manage.py", "rqworker", "--burst", "default"]
      containers:
        - name: migrate
          image: proj
          args: ["python", "manage.py", "migrate"]
"""}
    assert _found(tmp_path, files, WORKER_RULES) == []


# -- QLT701: a scheduler is judged as a scheduler ------------------------------------------

def test_qlt701_scheduler_in_a_best_effort_pod_is_called_a_scheduler(tmp_path):
    found = _found(tmp_path, _deployment('["celery", "-A", "proj", "beat"]', name="beat"), "QLT701")
    assert len(found) == 1
    message = found[0][3]
    assert "`celery beat`, a scheduler" in message and "BestEffort" in message
    assert "worker" not in message


def test_qlt701_scheduler_beside_a_container_with_resources_is_not_best_effort(tmp_path):
    sidecar = ("        - name: exporter\n          image: exporter\n          resources:\n"
               "            limits:\n              memory: 64Mi\n")
    assert _found(tmp_path, _deployment('["celery", "-A", "proj", "beat"]', name="beat",
                                        extra_container=sidecar), "QLT701") == []


def test_qlt701_compose_scheduler_is_not_reported(tmp_path):
    files = {"docker-compose.yml": "services:\n  beat:\n    image: proj\n    command: celery -A proj beat\n"}
    assert _found(tmp_path, files, "QLT701") == []
    files["docker-compose.yml"] += "  worker:\n    image: proj\n    command: celery -A proj worker\n"
    assert [(p, row) for p, row, _, _ in _found(tmp_path, files, "QLT701")] == [("docker-compose.yml", 5)]


def test_qlt701_cpu_limit_is_the_request(tmp_path):
    limit_only = "          resources:\n            limits:\n              cpu: 500m\n"
    found = _found(tmp_path, _deployment('["rq", "worker", "default"]', limit_only), "QLT701")
    assert len(found) == 1 and "no memory limit:" in found[0][3] and "CPU request" not in found[0][3]
    nothing = _found(tmp_path, _deployment('["rq", "worker", "default"]'), "QLT701")
    assert "no memory limit and no CPU request" in nothing[0][3]


def test_qlt701_rq_worker_is_not_described_as_a_pool(tmp_path):
    (found,) = _found(tmp_path, _deployment('["rq", "worker", "default"]'), "QLT701")
    assert "`rq worker`" in found[3]
    assert not re.search(r"pool|cores|per CPU", found[3])


@pytest.mark.parametrize("namespace,reported", [("jobs", False), ("web", True), (None, False)])
def test_qlt701_limit_range_of_the_namespace_fills_in(tmp_path, namespace, reported):
    files = _deployment('["rq", "worker", "default"]')
    if namespace:
        files["k8s/worker.yaml"] = files["k8s/worker.yaml"].replace("  name: worker\nspec:",
                                                                    f"  name: worker\n  namespace: {namespace}\nspec:", 1)
    files["k8s/limits.yaml"] = """
apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
  namespace: jobs
spec:
  limits:
    - type: Container
      default:
        cpu: 500m
        memory: 512Mi
"""
    assert bool(_found(tmp_path, files, "QLT701")) is reported


def test_qlt701_limit_range_for_pods_only_does_not_fill_in_containers(tmp_path):
    files = _deployment('["rq", "worker", "default"]')
    files["k8s/limits.yaml"] = """
apiVersion: v1
kind: LimitRange
metadata:
  name: pods
spec:
  limits:
    - type: Pod
      max:
        memory: 4Gi
"""
    assert len(_found(tmp_path, files, "QLT701")) == 1


# -- QLT402: each pool as what it is ---------------------------------------------------------

@pytest.mark.parametrize("pool,unit", [
    ("prefork", "one child process per CPU"),
    ("threads", "one thread per CPU"),
    ("gevent", "one greenlet per CPU"),
    ("eventlet", "one greenlet per CPU"),
])
def test_qlt402_names_what_each_pool_starts(tmp_path, pool, unit):
    files = _deployment(f'["celery", "-A", "proj", "worker", "-P", "{pool}"]', LIMITS_1_CPU)
    (found,) = _found(tmp_path, files, "QLT402")
    assert unit in found[3] and f"the {pool} pool" in found[3]
    assert "limited to 1 CPU" in found[3]
    fixed = _fixed(tmp_path, files, "QLT402")
    assert bool(fixed) is (pool == "prefork"), "a fix only sizes a pool of processes by CPUs"


@pytest.mark.parametrize("pool", ["solo", "custom", "${POOL}"])
def test_qlt402_silent_for_solo_and_unknown_pools(tmp_path, pool):
    files = _deployment(f'["celery", "-A", "proj", "worker", "-P", "{pool}"]', LIMITS_1_CPU)
    assert _found(tmp_path, files, "QLT402") == []


@pytest.mark.parametrize("setting,expected", [
    ('app.conf.worker_pool = "solo"\n', None),
    ('app.conf.worker_pool = "threads"\n', "one thread per CPU"),
    ("", "one child process per CPU"),
])
def test_qlt402_pool_from_the_app_configuration(tmp_path, setting, expected):
    files = _deployment('["celery", "-A", "proj", "worker"]', LIMITS_1_CPU)
    files.update({"proj/__init__.py": "", "proj/celery.py": f"from celery import Celery\n\napp = Celery('proj')\n{setting}"})
    found = _found(tmp_path, files, "QLT402")
    assert [expected in f[3] for f in found] == ([] if expected is None else [True])


def test_qlt402_compose_needs_a_cpu_limit(tmp_path):
    files = {"docker-compose.yml": "services:\n  worker:\n    image: proj\n    command: celery -A proj worker\n"}
    assert _found(tmp_path, files, "QLT402") == []
    files["docker-compose.yml"] += "    cpus: \"2\"\n"
    (found,) = _found(tmp_path, files, "QLT402")
    assert "limited to 2 CPU" in found[3]


def test_qlt402_reservation_alone_is_no_compose_limit(tmp_path):
    files = {"docker-compose.yml": """
services:
  worker:
    image: proj
    command: dramatiq proj.actors
    deploy:
      resources:
        reservations:
          cpus: "1"
"""}
    assert _found(tmp_path, files, "QLT402") == []


def test_qlt402_dramatiq_message_names_the_processes(tmp_path):
    (found,) = _found(tmp_path, _deployment('["dramatiq", "proj.actors", "-t", "2"]', LIMITS_1_CPU), "QLT402")
    assert "`dramatiq` in container `worker`" in found[3] and "one worker process per CPU" in found[3]
    assert "8 threads" not in found[3]  # ``-t 2`` is given: no default thread count to quote


def test_qlt402_procfile_entry_is_not_called_a_container(tmp_path):
    (found,) = _found(tmp_path, {"Procfile": "worker: celery -A proj worker\n"}, "QLT402")
    assert "Procfile entry `worker`" in found[3] and "container" not in found[3].split(":")[0]


# -- RQ: one job at a time; its worker pool is a real pool ----------------------------------

def test_rq_worker_is_never_a_pool_sized_by_cores(tmp_path):
    files = _deployment('["rq", "worker", "-n", "worker-32", "default"]',
                        "          resources:\n            limits:\n              cpu: 250m\n")
    found = _found(tmp_path, files, WORKER_RULES)
    assert {c for _, _, c, _ in found} <= {"QLT701", "QLT705", "QLT706"}
    assert not any(re.search(r"pool|per CPU|node's cores|processes", msg) for _, _, _, msg in found)


def test_rq_worker_pool_is_a_pool(tmp_path):
    files = _deployment('["rq", "worker-pool", "-n", "8", "default"]', LIMITS_1_CPU)
    (found,) = _found(tmp_path, files, "QLT403")
    assert "starts 8 worker processes" in found[3]


# -- development stacks: the working copy mounted from the host -------------------------------

DEV_COMPOSE = """
services:
  worker:
    build: .
    command: celery -A proj worker --time-limit=600
    cpus: "1"
    volumes:
      - {volume}
"""
DEV_RULES = ["QLT402", "QLT701", "QLT702", "QLT705"]


@pytest.mark.parametrize("volume", [
    "./:/app", ".:/srv/app:cached", "./src:/code/src", "${PWD}:/app", "./proj:/app/proj",
])
def test_a_service_running_the_mounted_source_is_a_development_stack(tmp_path, volume):
    (tmp_path / "src" / "proj").mkdir(parents=True)
    (tmp_path / "src" / "proj" / "__init__.py").write_text("")
    files = {"proj/__init__.py": "", "requirements.txt": "celery\n",
             "docker-compose.yml": DEV_COMPOSE.format(volume=volume)}
    assert _found(tmp_path, files, DEV_RULES) == []


def test_the_model_keeps_why_a_service_is_a_development_stack(tmp_path):
    write_project(tmp_path, {"proj/__init__.py": "", "docker-compose.yml": DEV_COMPOSE.format(volume="./proj:/app/proj")})
    path = tmp_path / "docker-compose.yml"
    (workload,) = manifests.read(SourceFile.from_text(path, path.read_text())).workloads
    assert workload.development == "mounts the project's source from the host (`./proj` at `/app/proj`)"


@pytest.mark.parametrize("volume", [
    "./data:/var/lib/app", "media:/app/media", "./settings.py:/app/proj/settings.py", "/srv/app:/app",
    "./missing:/app",
])
def test_data_and_config_mounts_do_not_make_a_development_stack(tmp_path, volume):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "seed.json").write_text("{}")
    files = {"proj/__init__.py": "", "settings.py": "DEBUG = False\n",
             "docker-compose.yml": DEV_COMPOSE.format(volume=volume)}
    assert {c for _, _, c, _ in _found(tmp_path, files, DEV_RULES)} == set(DEV_RULES)


def test_long_syntax_bind_mount_of_the_source(tmp_path):
    files = {"proj/__init__.py": "", "docker-compose.yml": """
services:
  worker:
    build: .
    command: celery -A proj worker --time-limit=600
    volumes:
      - type: bind
        source: ./proj
        target: /app/proj
      - type: volume
        source: media
        target: /media
"""}
    assert _found(tmp_path, files, DEV_RULES) == []
    files["docker-compose.yml"] = files["docker-compose.yml"].replace("type: bind", "type: tmpfs")
    assert {c for _, _, c, _ in _found(tmp_path, files, DEV_RULES)} == {"QLT701", "QLT702", "QLT705"}


# -- QLT702: what the worker waits for ---------------------------------------------------------

DRAMATIQ_ACTORS = """
import dramatiq

@dramatiq.actor(time_limit={limit})
def resize(image_id):
    pass
"""


@pytest.mark.parametrize("limit,flag,expected", [
    ("20_000", "", None),                      # every actor ends within 20 s
    ("120_000", "", "resize` may run 120 s"),  # the actor, below the 600 s shutdown wait
    ("3_600_000", "", "waits 600 s"),          # the worker stops waiting after 600 s
    ("3_600_000", ', "--worker-shutdown-timeout", "90000"', "waits 90 s"),
    ("3_600_000", ', "--worker-shutdown-timeout", "${TIMEOUT}"', None),  # not a value qlint can read
])
def test_qlt702_dramatiq_waits_for_the_shorter_of_actor_and_shutdown_timeout(tmp_path, limit, flag, expected):
    files = _deployment(f'["dramatiq", "proj.actors", "-p", "2"{flag}]', name="actors")
    files.update({"proj/__init__.py": "", "proj/actors.py": DRAMATIQ_ACTORS.format(limit=limit)})
    found = _found(tmp_path, files, "QLT702")
    assert [expected in f[3] for f in found] == ([] if expected is None else [True])


ARQ_SETTINGS = """
from arq.connections import RedisSettings

async def export(ctx, report_id):
    pass

class WorkerSettings:
    functions = [export]
    redis_settings = RedisSettings(host="redis")
    job_completion_wait = {wait}
"""


@pytest.mark.parametrize("named,expected", [
    ("proj.a.WorkerSettings", "waits 120 s for running jobs"),
    ("vendor.worker.WorkerSettings", None),  # neither class of the project: its wait is unknown
])
def test_qlt702_arq_wait_comes_from_the_settings_class_the_worker_names(tmp_path, named, expected):
    files = _deployment(f'["arq", "{named}"]', name="arq")
    files.update({"proj/__init__.py": "", "proj/a.py": ARQ_SETTINGS.format(wait=120),
                  "proj/b.py": ARQ_SETTINGS.format(wait=0)})
    found = _found(tmp_path, files, "QLT702")
    assert [expected in f[3] for f in found] == ([] if expected is None else [True])


def test_qlt702_huey_on_compose_with_sigint_waits_for_its_tasks(tmp_path):
    files = {"proj/__init__.py": "", "proj/tasks.py": """
from huey import RedisHuey

huey = RedisHuey("proj")

@huey.task(timeout=120)
def rebuild():
    pass
""", "docker-compose.yml": """
services:
  huey:
    image: proj
    command: huey_consumer proj.tasks.huey -k process -w 2
    stop_signal: SIGINT
"""}
    (found,) = _found(tmp_path, files, "QLT702")
    assert "`huey_consumer` the default 10 s" in found[3] and "docker compose stop" in found[3]
    files["docker-compose.yml"] = files["docker-compose.yml"].replace("    stop_signal: SIGINT\n", "")
    assert _found(tmp_path, files, "QLT702") == []  # SIGTERM interrupts the tasks at once: QLT704's finding


def test_qlt702_reports_the_longest_wait_of_a_workload(tmp_path):
    files = _deployment('["celery", "-A", "proj", "worker", "--time-limit=60"]', extra_container="""\
        - name: slow
          image: proj
          args: ["celery", "-A", "proj", "worker", "-Q", "slow", "--time-limit=900"]
""")
    (found,) = _found(tmp_path, files, "QLT702")
    assert "900 s" in found[3]
    assert "terminationGracePeriodSeconds: 930" in _fixed(tmp_path, files, "QLT702")["k8s/worker.yaml"]


def test_qlt702_a_scheduler_beside_no_worker_is_not_judged(tmp_path):
    files = _deployment('["celery", "-A", "proj", "beat"]', name="beat")
    files.update({"proj/__init__.py": "", "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(time_limit=3600)
def export():
    pass
"""})
    assert _found(tmp_path, files, "QLT702") == []
    files["k8s/worker.yaml"] = files["k8s/worker.yaml"].replace('"beat"', '"worker"')
    assert len(_found(tmp_path, files, "QLT702")) == 1


# -- QLT705, QLT706: messages -----------------------------------------------------------------

def test_qlt705_message_holds_for_a_worker_without_a_pool(tmp_path):
    (found,) = _found(tmp_path, _deployment('["arq", "proj.worker.WorkerSettings"]'), "QLT705")
    assert "`arq`" in found[3]
    assert "pool" not in found[3] and "reserved" not in found[3]


def test_qlt706_names_the_command(tmp_path):
    (found,) = _found(tmp_path, _deployment('["python", "manage.py", "rqworker", "default"]'), "QLT706")
    assert "runs `manage.py rqworker` at a fixed 1 replica" in found[3]
    beat_beside = _deployment('["python", "manage.py", "rqworker", "default"]', extra_container="""\
        - name: beat
          image: proj
          args: ["python", "manage.py", "celery", "beat"]
""")
    assert _found(tmp_path, beat_beside, "QLT706") == []  # scaling it would run the scheduler twice


ROUTED_TASKS = """
from celery import Celery

app = Celery("proj")
app.conf.task_routes = {"proj.tasks.export": {"queue": "reports"}}

@app.task(time_limit=1800)
def export():
    pass

@app.task(time_limit=900, queue="bulk")
def reindex():
    pass

@app.task(time_limit=20)
def ping():
    pass
"""


@pytest.mark.parametrize("queues,expected", [
    ("celery", None),                      # only ping (20 s) is routed there
    ("reports", "export` may run 1800 s"),
    ("celery,bulk", "reindex` may run 900 s"),
    ("${QUEUES}", "export` may run 1800 s"),  # qlint cannot read the queues: every task counts
    (None, "export` may run 1800 s"),      # no -Q: nothing narrows what the worker runs
])
def test_qlt702_a_celery_worker_waits_only_for_tasks_routed_to_its_queues(tmp_path, queues, expected):
    args = '["celery", "-A", "proj", "worker"' + (f', "-Q", "{queues}"]' if queues else "]")
    files = _deployment(args)
    files.update({"proj/__init__.py": "", "proj/tasks.py": ROUTED_TASKS})
    found = _found(tmp_path, files, "QLT702")
    assert [expected in f[3] for f in found] == ([] if expected is None else [True])


def test_qlt702_a_task_on_the_default_queue_counts_for_every_worker(tmp_path):
    """The default queue may be renamed where qlint does not look (the container's environment):
    a task sent there is not ruled out by the worker's -Q."""
    files = _deployment('["celery", "-A", "proj", "worker", "-Q", "bulk"]')
    files.update({"proj/__init__.py": "",
                  "proj/tasks.py": ROUTED_TASKS.replace("time_limit=20)", "time_limit=1200)")})
    (found,) = _found(tmp_path, files, "QLT702")
    assert "ping` may run 1200 s" in found[3]


def test_qlt702_declared_queues_may_bind_other_routing_keys(tmp_path):
    files = _deployment('["celery", "-A", "proj", "worker", "-Q", "celery"]')
    declared = ROUTED_TASKS + ('from kombu import Exchange, Queue\n\napp.conf.task_queues = '
                               '[Queue("celery"), Queue("reports", Exchange("celery"), routing_key="celery")]\n')
    files.update({"proj/__init__.py": "", "proj/tasks.py": declared})
    (found,) = _found(tmp_path, files, "QLT702")
    assert "export` may run 1800 s" in found[3]


def test_qlt702_a_call_that_sends_a_task_to_the_worker_queue_counts(tmp_path):
    files = _deployment('["celery", "-A", "proj", "worker", "-Q", "celery"]')
    files.update({"proj/__init__.py": "", "proj/tasks.py": ROUTED_TASKS,
                  "proj/views.py": "from proj.tasks import export\n\n\ndef run():\n"
                                   "    export.apply_async(queue='celery')\n"})
    (found,) = _found(tmp_path, files, "QLT702")
    assert "export` may run 1800 s" in found[3]
