"""Edge cases beyond the embedded examples: QLT704, QLT706, QLT707."""

from __future__ import annotations

from pathlib import Path

from qlint.lint.source import SourceFile
from qlint.manifests import collect as manifests
from tests.helpers import findings, fix, write_project


def _found(tmp_path, files, code, codes=None):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, codes or [code]) if c == code]


def _fixed(tmp_path, files, code):
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    out = {}
    for path, src in outcome.fixed.items():
        manifests.read(SourceFile.from_text(Path(path), src.text))  # still loads
        out[str(path).replace(str(tmp_path) + "/", "")] = src.text
    return out


def _huey_deployment(container_extra: str = "", command: str = '["huey_consumer", "proj.tasks.huey", "-w", "2"]'):
    return {"k8s/huey.yaml": f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  template:
    spec:
      containers:
        - name: huey
          image: proj
          command: {command}
{container_extra}"""}


# -- QLT704 -------------------------------------------------------------------------------

def test_qlt704_kubernetes_stop_signal_field_is_honoured(tmp_path):
    files = _huey_deployment("          lifecycle:\n            stopSignal: SIGINT\n")
    assert _found(tmp_path, files, "QLT704") == []


def test_qlt704_other_kubernetes_stop_signal_is_reported_without_a_fix(tmp_path):
    files = _huey_deployment("          lifecycle:\n            stopSignal: SIGQUIT\n")
    found = _found(tmp_path, files, "QLT704")
    assert [(p, row) for p, row, _ in found] == [("k8s/huey.yaml", 11)]
    assert "`lifecycle.stopSignal: SIGQUIT`" in found[0][2] and "STOPSIGNAL" not in found[0][2]
    assert _fixed(tmp_path, files, "QLT704") == {}


def test_qlt704_prestop_sleep_is_not_a_graceful_signal(tmp_path):
    files = _huey_deployment("          lifecycle:\n            preStop:\n              exec:\n"
                             "                command: [\"sleep\", \"5\"]\n")
    assert [(p, row) for p, row, _ in _found(tmp_path, files, "QLT704")] == [("k8s/huey.yaml", 11)]


def test_qlt704_compose_signal_spellings(tmp_path):
    for value, expected in (("INT", []), ('"2"', []), ("sigint", []), ("${STOP_SIGNAL:-SIGTERM}", []),
                            ("SIGTERM", [("docker-compose.yml", 3)])):
        files = {"docker-compose.yml": f"""
services:
  huey:
    command: huey_consumer proj.tasks.huey
    stop_signal: {value}
"""}
        assert [(p, row) for p, row, _ in _found(tmp_path, files, "QLT704")] == expected, value


def test_qlt704_sh_c_script_gets_the_flag_inside_the_script(tmp_path):
    files = _huey_deployment(command='["sh", "-c", "python manage.py migrate && exec huey_consumer proj.tasks.huey"]')
    fixed = _fixed(tmp_path, files, "QLT704")
    assert '"sh", "-c", "python manage.py migrate && exec huey_consumer proj.tasks.huey -g TERM"]' in \
        fixed["k8s/huey.yaml"]


def test_qlt704_no_fix_when_the_consumer_is_not_the_scripts_last_command(tmp_path):
    files = _huey_deployment(command='["sh", "-c", "huey_consumer proj.tasks.huey || echo stopped"]')
    assert len(_found(tmp_path, files, "QLT704")) == 1
    assert _fixed(tmp_path, files, "QLT704") == {}


def test_qlt704_explicit_int_graceful_signal_is_reported_at_the_flag(tmp_path):
    files = _huey_deployment(command="\n            - huey_consumer\n            - proj.tasks.huey\n"
                                     "            - --graceful-signal\n            - INT")
    found = _found(tmp_path, files, "QLT704")
    assert [(p, row) for p, row, _ in found] == [("k8s/huey.yaml", 14)]
    assert _fixed(tmp_path, files, "QLT704") == {}  # a flag already there is the user's choice to change


def test_qlt704_django_run_huey_with_graceful_term(tmp_path):
    files = _huey_deployment(command='["python", "manage.py", "run_huey", "-g", "TERM"]')
    assert _found(tmp_path, files, "QLT704") == []


def test_qlt704_noqa_on_the_command_line(tmp_path):
    files = _huey_deployment(command='["huey_consumer", "proj.tasks.huey"]  # noqa: QLT704 (STOPSIGNAL SIGINT)')
    assert _found(tmp_path, files, "QLT704") == []


def _built(dockerfile: str, build: str = "build: .") -> dict[str, str]:
    return {"compose.yaml": f"""
services:
  huey:
    {build}
    command: ["huey_consumer", "proj.tasks.huey"]
""", "Dockerfile": dockerfile}


def test_qlt704_dockerfile_without_stopsignal(tmp_path):
    found = _found(tmp_path, _built("FROM python:3.13-slim\nCMD [\"huey_consumer\"]\n"), "QLT704")
    assert [(p, row) for p, row, _ in found] == [("compose.yaml", 4)]
    assert "`Dockerfile` sets no `STOPSIGNAL`" in found[0][2] and "unless" not in found[0][2]


def test_qlt704_dockerfile_stage_inherits_stopsignal_and_joins_continuations(tmp_path):
    dockerfile = """
FROM python:3.13-slim AS base
STOPSIGNAL \\
    SIGINT
FROM base AS app
COPY . .
"""
    assert _found(tmp_path, _built(dockerfile), "QLT704") == []


def test_qlt704_dockerfile_target_stage_decides(tmp_path):
    dockerfile = "FROM python:3.13-slim AS worker\nSTOPSIGNAL SIGINT\nFROM python:3.13-slim AS web\n"
    build = "build: {context: ., target: web}"
    found = _found(tmp_path, _built(dockerfile, build), "QLT704")
    assert len(found) == 1 and "sets no `STOPSIGNAL`" in found[0][2]
    assert _found(tmp_path, _built(dockerfile, "build: {context: ., target: worker}"), "QLT704") == []


def test_qlt704_missing_dockerfile_falls_back_to_docker_stop(tmp_path):
    files = _built("", "build: ./images/worker")
    del files["Dockerfile"]
    found = _found(tmp_path, files, "QLT704")
    assert len(found) == 1 and "unless the image sets `STOPSIGNAL SIGINT`" in found[0][2]


ARQ_WORKER = """
from arq.connections import RedisSettings

async def export(ctx, report_id):
    pass

class WorkerSettings:
    functions = [export]
    redis_settings = RedisSettings()
{extra}"""


def _arq(tmp_path, extra: str, manifest: str):
    return {"proj/__init__.py": "", "proj/worker.py": ARQ_WORKER.format(extra=extra), "docker-compose.yml": manifest}


ARQ_COMPOSE = """
services:
  arq:
    image: proj
    command: arq proj.worker.WorkerSettings
"""


def test_qlt704_arq_explicit_zero_and_compose_default_grace(tmp_path):
    found = _found(tmp_path, _arq(tmp_path, "    job_completion_wait = 0\n", ARQ_COMPOSE), "QLT704")
    assert [(p, row) for p, row, _ in found] == [("docker-compose.yml", 4)]
    assert "`job_completion_wait = 0` in `WorkerSettings`" in found[0][2]
    assert "the default 10 s" in found[0][2]


def test_qlt704_arq_wait_set(tmp_path):
    assert _found(tmp_path, _arq(tmp_path, "    job_completion_wait = 8\n", ARQ_COMPOSE), "QLT704") == []


def test_qlt704_arq_zero_grace_has_nothing_to_wait_for(tmp_path):
    manifest = ARQ_COMPOSE + "    stop_grace_period: 0s\n"
    assert _found(tmp_path, _arq(tmp_path, "", manifest), "QLT704") == []


def test_qlt704_arq_inherited_settings_are_unknown(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/base.py": "class Base:\n    job_completion_wait = 20\n",
        "proj/worker.py": """
from arq import func
from proj.base import Base

async def export(ctx):
    pass

class WorkerSettings(Base):
    functions = [func(export, timeout=60)]
""",
        "docker-compose.yml": ARQ_COMPOSE,
    }
    assert _found(tmp_path, files, "QLT704") == []


def test_qlt704_arq_without_its_settings_class_is_not_guessed(tmp_path):
    assert _found(tmp_path, {"docker-compose.yml": ARQ_COMPOSE}, "QLT704") == []


def test_qlt704_arq_picks_the_named_settings_class(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/worker.py": ARQ_WORKER.format(extra="    job_completion_wait = 20\n") + """
class SlowSettings:
    functions = [export]
    job_completion_wait = 0
""",
        "docker-compose.yml": """
services:
  fast:
    command: arq proj.worker.WorkerSettings
  slow:
    command: ["arq", "proj.worker.SlowSettings"]
""",
    }
    found = _found(tmp_path, files, "QLT704")
    assert [(p, row) for p, row, _ in found] == [("docker-compose.yml", 5)]
    assert "`SlowSettings`" in found[0][2]


def test_qlt704_dramatiq_separate_value_token(tmp_path):
    files = {"k8s/d.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 90
      containers:
        - name: d
          args: ["dramatiq", "proj.actors", "--worker-shutdown-timeout", "0"]
"""}
    found = _found(tmp_path, files, "QLT704")
    assert [(p, row) for p, row, _ in found] == [("k8s/d.yaml", 11)]
    assert "`--worker-shutdown-timeout 0`" in found[0][2] and "90 s" in found[0][2]


# -- QLT706 -------------------------------------------------------------------------------

WORKER_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: default
          args: ["celery", "-A", "proj", "worker", "-Q", "default"]
        - name: priority
          args: ["celery", "-A", "proj", "worker", "-Q", "priority"]
"""


def test_qlt706_is_opt_in(tmp_path):
    write_project(tmp_path, {"k8s/worker.yaml": WORKER_DEPLOYMENT})
    assert [f for f in findings(tmp_path) if f[2] == "QLT706"] == []


def test_qlt706_reports_a_workload_once(tmp_path):
    found = _found(tmp_path, {"k8s/worker.yaml": WORKER_DEPLOYMENT}, "QLT706")
    assert [(p, row) for p, row, _ in found] == [("k8s/worker.yaml", 2)]


def test_qlt706_a_scaler_of_another_kind_does_not_count(tmp_path):
    files = {"k8s/worker.yaml": WORKER_DEPLOYMENT + """---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: worker
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: worker
  maxReplicas: 4
"""}
    assert len(_found(tmp_path, files, "QLT706")) == 1


def test_qlt706_beat_inside_the_worker_is_left_to_qlt703(tmp_path):
    files = {"k8s/worker.yaml": WORKER_DEPLOYMENT.replace('"-Q", "priority"', '"-B"')}
    assert _found(tmp_path, files, "QLT706") == []


# -- QLT707 -------------------------------------------------------------------------------

def _cron(command: str, spec_extra: str = "") -> dict[str, str]:
    return {"k8s/cron.yaml": f"""
apiVersion: batch/v1
kind: CronJob
metadata:
  name: drain
spec:
  schedule: "*/15 * * * *"
{spec_extra}  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: drain
              command: {command}
"""}


def test_qlt707_short_burst_flag(tmp_path):
    found = _found(tmp_path, _cron('["rq", "worker", "-b", "low"]'), "QLT707")
    assert len(found) == 1 and "`-b`" in found[0][2]


def test_qlt707_rq_worker_without_burst_never_exits(tmp_path):
    found = _found(tmp_path, _cron("rq worker low"), "QLT707")
    assert len(found) == 1 and "no `--burst`" in found[0][2] and "runs forever" in found[0][2]


def test_qlt707_arq_no_burst_overrides_the_settings_class(tmp_path):
    files = {"proj/__init__.py": "", "proj/worker.py": ARQ_WORKER.format(extra="    burst = True\n"),
             **_cron('["arq", "--no-burst", "proj.worker.WorkerSettings"]')}
    found = _found(tmp_path, files, "QLT707")
    assert len(found) == 1 and "never exits" in found[0][2]


def test_qlt707_scheduler_only_cronjob_is_not_a_worker(tmp_path):
    assert _found(tmp_path, _cron('["taskiq", "scheduler", "proj.scheduler:scheduler"]'), "QLT707") == []


def test_qlt707_fix_places_the_policy_after_schedule_and_keeps_comments(tmp_path):
    files = _cron('["sh", "-c", "exec rq worker --burst low  # drain"]', "  # keep three runs\n")
    fixed = _fixed(tmp_path, files, "QLT707")["k8s/cron.yaml"]
    assert '  schedule: "*/15 * * * *"\n  concurrencyPolicy: Forbid\n  # keep three runs\n' in fixed


def test_qlt707_two_workers_in_one_cronjob_are_one_finding(tmp_path):
    files = {"k8s/cron.yaml": _cron('["rq", "worker", "--burst", "low"]')["k8s/cron.yaml"] + """            - name: high
              command: ["rq", "worker", "--burst", "high"]
"""}
    assert [(p, row) for p, row, _ in _found(tmp_path, files, "QLT707")] == [("k8s/cron.yaml", 2)]
