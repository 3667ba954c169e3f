"""Edge cases beyond the embedded examples: QLT403, QLT410, QLT504, QLT705 and the YAML edit
primitives and command facts they rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qlint.fixers.yaml import add_block, replace_argument
from qlint.lint.registry import select_rules
from qlint.lint.source import SourceFile
from qlint.manifests import collect as manifests
from qlint.manifests import yamldoc
from qlint.manifests.commands import parse
from qlint.manifests.workloads import tokens
from tests.helpers import findings, fix, write_project


def _found(tmp_path, files, code):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code]) if c == code]


def _fixed(tmp_path, files, code):
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    out = {}
    for path, src in outcome.fixed.items():
        manifests.read(SourceFile.from_text(Path(path), src.text))  # still loads
        out[str(path).replace(str(tmp_path) + "/", "")] = src.text
    return out


def _deployment(args: str, resources: str = "", extra: str = "") -> dict[str, str]:
    return {"k8s/worker.yaml": f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
        - name: worker
          image: proj
          args: {args}
{resources}{extra}"""}


CPU_1 = "          resources:\n            limits:\n              cpu: \"1\"\n              memory: 1Gi\n"


HEAD = "kind: Test\n"  # qlint reads YAML that looks like a manifest


def _apply(src: SourceFile, edits) -> str:
    data = src.utf8
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        data = data[:edit.start] + edit.content.encode() + data[edit.end:]
    return data.decode().removeprefix(HEAD)


def _src(text: str) -> SourceFile:
    return SourceFile.from_text(Path("x.yaml"), HEAD + text)


# -- replace_argument ----------------------------------------------------------------------

@pytest.mark.parametrize("item,old,new,expected", [
    ("- --concurrency=16", "16", "4", "- --concurrency=4"),
    ('- "16"', "16", "4", '- "4"'),
    ("- '16'", "16", "4", "- '4'"),
    ("- -c16", "16", "4", "- -c4"),
    ("- --autoscale=10,3", "10,3", "2,2", "- --autoscale=2,2"),
])
def test_replace_argument_keeps_the_item_style(item, old, new, expected):
    src = _src(f"args:\n  {item}  # keep me\n")
    items = tokens(yamldoc.documents(src)[0].get("args"))
    edits = replace_argument(src, items[0], old, new)
    assert _apply(src, edits) == f"args:\n  {expected}  # keep me\n"


def test_replace_argument_refuses_words_it_cannot_replace_precisely():
    src = _src('command: celery worker -c 16\nescaped: ["--concurrency=\\x3116"]\nplain: [--x=16]\n')
    doc = yamldoc.documents(src)[0]
    string_word = tokens(doc.get("command"))[-1]
    assert replace_argument(src, string_word, "16", "4") == []  # a word inside a string command
    escaped = tokens(doc.get("escaped"))[0]
    assert escaped.text == "--concurrency=116"
    assert replace_argument(src, escaped, "16", "4") == []  # written with an escape
    plain = tokens(doc.get("plain"))[0]
    assert replace_argument(src, plain, "16", "4,2") == []  # a comma would split the flow item
    assert replace_argument(src, plain, "17", "4") == []  # the word does not end with the value


# -- add_block -----------------------------------------------------------------------------

CONTAINERS = """containers:
  - name: worker  # main
    image: proj
    resources:
      limits:
        memory: 1Gi   # measured
  - name: sidecar
    image: envoy
"""


def test_add_block_goes_after_the_last_nested_value_with_the_file_indent():
    src = _src(CONTAINERS)
    worker = next(yamldoc.documents(src)[0].get("containers").items())
    text = _apply(src, add_block(src, worker, "livenessProbe", [(0, "exec:"), (1, "command: [x]"),
                                                                 (0, "periodSeconds: 60")]))
    assert text == CONTAINERS.replace("memory: 1Gi   # measured\n", "memory: 1Gi   # measured\n"
                                      "    livenessProbe:\n      exec:\n        command: [x]\n"
                                      "      periodSeconds: 60\n")
    loaded = yaml.safe_load(text)
    assert loaded["containers"][0]["livenessProbe"] == {"exec": {"command": ["x"]}, "periodSeconds": 60}
    assert loaded["containers"][1] == {"name": "sidecar", "image": "envoy"}


def test_add_block_follows_a_four_space_step_and_a_file_without_final_newline():
    text = "service:\n    image: proj\n    deploy:\n        replicas: 1"
    src = _src(text)
    service = yamldoc.documents(src)[0].get("service")
    out = _apply(src, add_block(src, service, "healthcheck", [(0, "interval: 60s")]))
    assert out == text + "\n    healthcheck:\n        interval: 60s"
    assert yaml.safe_load(out)["service"]["healthcheck"] == {"interval": "60s"}


@pytest.mark.parametrize("text", [
    "c: {name: worker, image: proj}\n",  # a flow mapping
    "c:\n  name: worker\n  script: |\n    run\n",  # ends in a block scalar
    "base: &b {x: 1}\nc:\n  name: worker\n  extra: *b\n",  # ends in an alias
    "c:\n  name: worker\n  livenessProbe: {}\n",  # the key is there
])
def test_add_block_refuses_mappings_it_cannot_extend_safely(text):
    src = _src(text)
    assert add_block(src, yamldoc.documents(src)[0].get("c"), "livenessProbe", [(0, "x: 1")]) == []


# -- command facts: subcommand and runner ---------------------------------------------------

def _commands(text: str):
    from qlint.lint.engine import FRAMEWORKS
    clis = {f.FRAMEWORK: f.CLI for f in FRAMEWORKS if getattr(f, "CLI", None) is not None}
    src = _src(f"command: {text}\n")
    return parse(tokens(yamldoc.documents(src)[0].get("command")), clis)


@pytest.mark.parametrize("text,framework,subcommand,runner", [
    ('["python", "-u", "-m", "celery", "-A", "proj", "worker"]', "celery", "worker", ("python", "-u", "-m")),
    ('["tini", "--", "poetry", "run", "celery", "worker"]', "celery", "worker", ("poetry", "run")),
    ('sh -c "exec newrelic-admin run-program celery beat"', "celery", "beat", ()),
    ('["rq", "worker-pool", "-n", "3"]', "rq", "worker-pool", ()),
    ('["python", "manage.py", "rqworker-pool", "--num-workers", "3"]', "rq", "rqworker-pool", ("python",)),
    ('["dramatiq", "proj.actors"]', "dramatiq", "", ()),
])
def test_worker_commands_know_their_subcommand_and_runner(text, framework, subcommand, runner):
    (command,) = _commands(text)
    assert (command.framework, command.subcommand, command.runner) == (framework, subcommand, runner)


# -- QLT403 --------------------------------------------------------------------------------

def test_qlt403_rq_worker_name_is_not_a_process_count(tmp_path):
    files = _deployment('["rq", "worker", "-n", "16", "default"]', CPU_1)
    assert _found(tmp_path, files, "QLT403") == []
    files = _deployment('["rq", "worker-pool", "-n", "16", "default"]', CPU_1)
    assert [(p, row) for p, row, _ in _found(tmp_path, files, "QLT403")] == [("k8s/worker.yaml", 11)]
    assert _fixed(tmp_path, files, "QLT403")["k8s/worker.yaml"].count('"-n", "2"') == 1


@pytest.mark.parametrize("args,reported", [
    ('["celery", "worker", "-P", "processes", "-c", "8"]', True),
    ('["celery", "worker", "--pool=eventlet", "-c", "8"]', False),
    ('["celery", "worker", "-P", "solo", "-c", "8"]', False),
    ('["celery", "worker", "-c", "auto"]', False),
    ('["celery", "worker", "-c", "$(CONCURRENCY)"]', False),
    ('["huey_consumer", "proj.huey", "--worker-type=process", "--workers=8"]', True),
    ('["huey_consumer", "proj.huey", "-k", "greenlet", "-w", "100"]', False),
    ('["taskiq", "worker", "proj:broker", "-w", "3"]', True),
    ('["celery", "worker", "-c", "2"]', False),
])
def test_qlt403_counts_only_processes(tmp_path, args, reported):
    found = _found(tmp_path, _deployment(args, CPU_1), "QLT403")
    assert bool(found) == reported, found


def test_qlt403_unreadable_app_configuration_may_choose_another_pool(tmp_path):
    files = _deployment('["celery", "-A", "proj", "worker", "-c", "16"]', CPU_1)
    files["proj/__init__.py"] = ""
    files["proj/celery.py"] = 'from celery import Celery\n\noptions = {}\napp = Celery("proj", **options)\n'
    assert _found(tmp_path, files, "QLT403") == []
    files["proj/celery.py"] = 'from celery import Celery\n\napp = Celery("proj")\n'
    assert len(_found(tmp_path, files, "QLT403")) == 1


def test_qlt403_attached_short_value_is_fixed_in_place(tmp_path):
    files = _deployment('\n            - celery\n            - worker\n            - -c16\n', CPU_1)
    fixed = _fixed(tmp_path, files, "QLT403")["k8s/worker.yaml"]
    assert "            - -c2\n" in fixed and "-c16" not in fixed


def test_qlt403_noqa_on_the_flag_item(tmp_path):
    files = _deployment('\n            - celery\n            - worker\n            - --concurrency=16  # noqa: QLT403\n',
                        CPU_1)
    assert _found(tmp_path, files, "QLT403") == []


# -- QLT410 --------------------------------------------------------------------------------

def test_qlt410_pool_from_the_app_configuration(tmp_path):
    files = _deployment('["celery", "-A", "proj", "worker", "-c", "8", "--max-memory-per-child=512000"]', CPU_1)
    files["proj/__init__.py"] = ""
    files["proj/celery.py"] = 'from celery import Celery\n\napp = Celery("proj")\napp.conf.worker_pool = "gevent"\n'
    assert _found(tmp_path, files, "QLT410") == []
    files["proj/celery.py"] = 'from celery import Celery\n\napp = Celery("proj")\napp.conf.worker_pool = "prefork"\n'
    found = _found(tmp_path, files, "QLT410")
    assert [(p, row) for p, row, _ in found] == [("k8s/worker.yaml", 11)]
    assert "8 processes (`-c 8`) x 500 MiB per child" in found[0][2] and "3.91 GiB" in found[0][2]


def test_qlt410_exactly_at_the_limit_is_not_reported(tmp_path):
    # 4 x 262144 KiB = 1 GiB
    files = _deployment('["celery", "worker", "-c", "4", "--max-memory-per-child", "262144"]', CPU_1)
    assert _found(tmp_path, files, "QLT410") == []
    files = _deployment('["celery", "worker", "-c", "4", "--max-memory-per-child", "262145"]', CPU_1)
    assert len(_found(tmp_path, files, "QLT410")) == 1


# -- QLT504 --------------------------------------------------------------------------------

SECRETS = ["s3cr3t", "p@ss", "hunter2"]


def test_qlt504_never_prints_the_password(tmp_path):
    env = ("          env:\n"
           "            - name: CELERY_BROKER_URL\n              value: amqp://proj:s3cr3t@rabbitmq//\n"
           "            - name: CELERY_RESULT_BACKEND\n              value: redis://:hunter2@redis/1\n"
           "            - name: BROKER_PASSWORD\n              value: s3cr3t\n")
    found = _found(tmp_path, _deployment('["celery", "-A", "proj", "worker"]', "", env), "QLT504")
    assert [row for _, row, _ in found] == [13, 15, 17]
    assert not any(secret in msg for _, _, msg in found for secret in SECRETS)


def test_qlt504_reads_only_worker_containers(tmp_path):
    files = {"docker-compose.yml": """
services:
  web:
    image: proj
    command: gunicorn proj.wsgi
    environment:
      CELERY_BROKER_URL: amqp://proj:s3cr3t@rabbitmq//
  flower:
    image: proj
    command: celery -A proj flower
    environment:
      CELERY_BROKER_URL: amqp://proj:s3cr3t@rabbitmq//
"""}
    assert _found(tmp_path, files, "QLT504") == []


def test_qlt504_noqa_on_the_env_entry(tmp_path):
    files = {"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker
    environment:
      CELERY_BROKER_URL: amqp://guest:guest@rabbitmq//  # noqa: QLT504 - local development only
      REDIS_PASSWORD: dev
"""}
    assert [row for _, row, _ in _found(tmp_path, files, "QLT504")] == [7]


# -- QLT705 --------------------------------------------------------------------------------

def test_qlt705_is_opt_in():
    assert "QLT705" not in {r.code for r in select_rules(None)}
    assert "QLT705" in {r.code for r in select_rules(["QLT705"], (), ())}


@pytest.mark.parametrize("args", [
    '["celery", "-A", "proj", "worker", "-n", "worker1"]',  # celery@worker1: not the pod's host name
    '["celery", "-A", "proj", "worker", "-n", "w@%d"]',  # a placeholder the shell cannot give
    '["celery", "-A", "proj", "worker", "-P", "solo"]',  # the main process runs the tasks
    '["celery", "-A", "$(APP)", "worker"]',  # not a plain value
    '["python", "manage.py", "celery", "worker"]',  # no celery program to ask
    '["sh", "-c", "celery -A proj worker -Q a ; celery -A proj worker -Q b -n b@%h"]',  # two workers
])
def test_qlt705_reports_without_a_probe_it_cannot_trust(tmp_path, args):
    files = _deployment(args, CPU_1)
    assert [(p, row) for p, row, _ in _found(tmp_path, files, "QLT705")] == [("k8s/worker.yaml", 9)]
    assert _fixed(tmp_path, files, "QLT705") == {}


def test_qlt705_probe_keeps_the_broker_flag_and_runner(tmp_path):
    files = _deployment('["poetry", "run", "celery", "-b", "redis://redis:6379/0", "-A", "proj", "worker"]', CPU_1)
    fixed = _fixed(tmp_path, files, "QLT705")["k8s/worker.yaml"]
    assert ('command: ["sh", "-c", "poetry run celery -b redis://redis:6379/0 -A proj inspect ping --timeout 10 '
            '-d celery@$HOSTNAME"]') in fixed
    loaded = yaml.safe_load(fixed)
    container = loaded["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["failureThreshold"] == 3 and container["resources"]["limits"]["cpu"] == "1"


def test_qlt705_broker_flag_without_remote_control_blocks_the_probe(tmp_path):
    files = _deployment('["celery", "-b", "sqs://", "-A", "proj", "worker"]', CPU_1)
    assert len(_found(tmp_path, files, "QLT705")) == 1
    assert _fixed(tmp_path, files, "QLT705") == {}


@pytest.mark.parametrize("setting,probe", [
    ('app.conf.broker_url = "sqs://"', False),
    ('app.conf.broker_url = "amqp://rabbitmq//"', True),
    ('app.conf.broker_url = os.environ["CELERY_BROKER_URL"]', True),  # unknown: assumed to answer
    ("app.conf.worker_enable_remote_control = False", False),
])
def test_qlt705_app_configuration_decides_whether_ping_can_answer(tmp_path, setting, probe):
    files = _deployment('["celery", "-A", "proj", "worker"]', CPU_1)
    files["proj/__init__.py"] = ""
    files["proj/celery.py"] = f'import os\nfrom celery import Celery\n\napp = Celery("proj")\n{setting}\n'
    assert len(_found(tmp_path, files, "QLT705")) == 1
    assert bool(_fixed(tmp_path, files, "QLT705")) == probe
