"""Workloads and containers from Kubernetes manifests and docker-compose files.

Kubernetes: ``Deployment``, ``StatefulSet``, ``DaemonSet``, ``ReplicaSet``, ``Pod``, ``Job``,
``CronJob`` (pod templates), ``HorizontalPodAutoscaler`` and KEDA ``ScaledObject`` (what they
scale). Compose: every service of a file with a top-level ``services:`` mapping.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

from qlint.lint.facts import FileFacts, Span
from qlint.manifests.yamldoc import MERGE_TAG, Node

POD_PATHS = {
    "Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
SCALERS = {"HorizontalPodAutoscaler": ("spec", "scaleTargetRef"), "ScaledObject": ("spec", "scaleTargetRef")}
_QUANTITY = re.compile(r"^\s*([0-9.]+)\s*([a-zA-Z]*)\s*$")
_MEMORY = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30,
           "Ti": 2 ** 40, "m": 1e-3, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "g": 1e9}


@dataclass
class Token:
    """One word of a command and where it is written: its own list item, or the string holding it."""

    text: str
    span: Span
    own_item: bool  # a list item of its own (a fix or a finding can point at it alone)
    # The file the word is written in when it is not the workload's own (a line of a shell script
    # the container runs): ``span`` is in that file, and no fix of the workload's file may use it.
    path: str | None = None


@dataclass
class Container:
    name: str
    anchor: Span  # the ``- name:`` line (compose: the service key)
    argv: list[Token] = field(default_factory=list)
    command_line: Span | None = None  # the ``command:`` (or ``args:``) line
    cpu_limit: float | None = None
    cpu_request: float | None = None
    memory_limit: float | None = None  # bytes
    memory_request: float | None = None
    env: dict[str, tuple[str | None, Span]] = field(default_factory=dict)  # value None: from a secret/ref
    liveness: bool = False
    node: Node | None = field(default=None, repr=False)  # the container's mapping, for fixes

    @property
    def cpu_requested(self) -> float | None:
        """The CPU the scheduler reserves: the request, else the limit (Kubernetes copies a limit into
        a request that is not written)."""
        return self.cpu_request if self.cpu_request is not None else self.cpu_limit


GRACE_DEFAULTS = {"compose": 10.0}  # seconds; Kubernetes (every other kind): 30
KUBERNETES_GRACE = 30.0


@dataclass
class Workload:
    kind: str  # a Kubernetes kind, or "compose"
    name: str
    path: str
    anchor: Span  # the ``kind:`` line (compose: the service key)
    containers: list[Container] = field(default_factory=list)
    replicas: int | None = None  # None: not written (Kubernetes default 1)
    strategy: str | None = None  # Deployment ``strategy.type`` (default RollingUpdate)
    autoscaled_by: list[str] = field(default_factory=list)  # "HorizontalPodAutoscaler hpa-name", ...
    grace_seconds: float | None = None
    concurrency_policy: str | None = None  # CronJob
    active_deadline: float | None = None
    stop_signal: str | None = None  # compose
    # The mappings fixes edit: the workload's ``spec`` (``replicas``, ``strategy``) and the pod
    # spec (``terminationGracePeriodSeconds``); compose: the service.
    spec: Node | None = field(default=None, repr=False)
    pod: Node | None = field(default=None, repr=False)
    # Why this is a developer's stack rather than a deployment ("" for a deployment): a compose
    # service that mounts the project's source from the host (``./:/app``) runs the working copy,
    # not the image that is shipped. Rules about how a deployment runs its workers skip it.
    development: str = ""
    namespace: str | None = None  # ``metadata.namespace`` (None: the namespace it is applied to)
    # Container resources a ``LimitRange`` of the project fills in when a container leaves them out
    # ("memory limit", "cpu request", ...): Kubernetes writes them at admission.
    defaulted: set[str] = field(default_factory=set)

    @property
    def file(self) -> FileFacts:
        """The manifest as rules report on it (``RuleContext.report`` takes a file's facts)."""
        return FileFacts(path=self.path, module="")

    @property
    def grace(self) -> tuple[float, bool]:
        """How long the workload's containers get to stop after SIGTERM, in seconds, and whether
        that is the default: Kubernetes' ``terminationGracePeriodSeconds`` of 30 s, or the 10 s
        ``docker stop`` waits for a compose service without ``stop_grace_period``."""
        if self.grace_seconds is not None:
            return self.grace_seconds, False
        return GRACE_DEFAULTS.get(self.kind, KUBERNETES_GRACE), True


def cpu(text: str | None) -> float | None:
    """Kubernetes CPU quantities: ``500m``, ``"2"``, ``0.5``; compose ``cpus: "1.5"``."""
    m = _QUANTITY.match(text or "")
    if not m:
        return None
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "m" else value if not m.group(2) else None


def memory(text: str | None) -> float | None:
    """Bytes from ``512Mi``, ``1G``, ``512m`` (compose), ``1073741824``."""
    m = _QUANTITY.match(text or "")
    if not m or m.group(2) not in _MEMORY:
        return None
    return float(m.group(1)) * _MEMORY[m.group(2)]


def seconds(text: str | None) -> float | None:
    """Compose durations (``1m30s``, ``10s``) and plain numbers."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    total, found = 0.0, False
    for amount, unit in re.findall(r"([0-9.]+)(ms|us|h|m|s)", text):
        found = True
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    return total if found else None


def tokens(node: Node | None) -> list[Token]:
    """A ``command``/``args`` value as words: a list (each item one word, as the container
    runtime passes it: ``sh -c``'s script stays whole) or a string (shell-split, as compose does)."""
    if node is None:
        return []
    if node.is_seq:
        return [Token(item.text, item.span, True) for item in node.items() if item.text is not None]
    if node.text is not None:
        return [Token(w, node.span, False) for w in _split(node.text)]
    return []


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: split on spaces rather than give up
        return text.split()


def _container(node: Node) -> Container:
    name = node.lookup("name")
    key = _key_line(node, "name")
    container = Container(name.text if name is not None and name.text else "?",
                          key if key is not None else node.line_start, node=node)
    command, args = node.lookup("command"), node.lookup("args")
    container.argv = tokens(command) + tokens(args)
    container.command_line = _key_line(node, "command") or _key_line(node, "args")
    resources = node.lookup("resources")
    if resources is not None:
        limits, requests = resources.lookup("limits"), resources.lookup("requests")
        container.cpu_limit = cpu(_text(limits, "cpu"))
        container.memory_limit = memory(_text(limits, "memory"))
        container.cpu_request = cpu(_text(requests, "cpu"))
        container.memory_request = memory(_text(requests, "memory"))
    env = node.lookup("env")
    for item in env.items() if env is not None else ():
        key_name = item.lookup("name")
        if key_name is None or key_name.text is None:
            continue
        value = item.lookup("value")
        container.env[key_name.text] = (value.text if value is not None else None, item.line_start)
    container.liveness = node.lookup("livenessProbe") is not None
    return container


def _text(node: Node | None, key: str) -> str | None:
    """A scalar under ``key``, merge keys (``<<: *anchor``) applied."""
    value = node.lookup(key) if node is not None else None
    return value.text if value is not None else None


def _scalar(node: Node | None) -> str | None:
    return node.text if node is not None else None


def _key_line(mapping: Node, key: str) -> Span | None:
    """Where ``key`` is written for ``mapping``: its own key, else the key of the anchor it merges in."""
    for name, key_node, _ in mapping.merged_pairs():
        if name == key:
            return key_node.line_start
    return None


def kubernetes(doc: Node, path: str) -> tuple[Workload | None, tuple[str, str, str] | None]:
    """A workload, or a scaler as (scaler description, target kind, target name)."""
    kind_node = doc.get("kind")
    kind = kind_node.text if kind_node is not None else None
    if kind in SCALERS:
        target = doc.path(*SCALERS[kind])
        name = _text(doc.get("metadata"), "name") or "?"
        if target is not None:
            return None, (f"{kind} {name}", _text(target, "kind") or "Deployment", _text(target, "name") or "")
        return None, None
    if kind not in POD_PATHS:
        return None, None
    key = doc.key_node("kind")
    workload = Workload(kind, _text(doc.get("metadata"), "name") or "?", path, key.line_start)
    workload.namespace = _text(doc.get("metadata"), "namespace")
    pod = doc.path(*POD_PATHS[kind])
    workload.spec = doc.get("spec")
    workload.pod = pod
    if pod is None:
        return workload, None
    containers = pod.get("containers")
    workload.containers = [_container(c) for c in containers.items()] if containers is not None else []
    grace = pod.get("terminationGracePeriodSeconds")
    if grace is not None:
        workload.grace_seconds = grace.number()
    replicas = doc.path("spec", "replicas")
    if replicas is not None and replicas.number() is not None:
        workload.replicas = int(replicas.number())
    strategy = doc.path("spec", "strategy", "type")
    workload.strategy = strategy.text if strategy is not None else None
    if kind == "CronJob":
        policy = doc.path("spec", "concurrencyPolicy")
        workload.concurrency_policy = policy.text if policy is not None else None
        deadline = doc.path("spec", "jobTemplate", "spec", "activeDeadlineSeconds")
        workload.active_deadline = deadline.number() if deadline is not None else None
    return workload, None


def limit_range(doc: Node) -> tuple[str | None, set[str]] | None:
    """A ``LimitRange``: its namespace and the container resources it defaults ("memory limit",
    "cpu request", ...). A default limit is also the default request when none is given."""
    kind = doc.get("kind")
    if kind is None or kind.text != "LimitRange":
        return None
    defaulted: set[str] = set()
    limits = doc.path("spec", "limits")
    for item in limits.items() if limits is not None else ():
        if (_text(item, "type") or "Container") != "Container":
            continue
        for resource in ("cpu", "memory"):
            if _text(item.get("default"), resource) is not None:
                defaulted |= {f"{resource} limit", f"{resource} request"}
            if _text(item.get("defaultRequest"), resource) is not None:
                defaulted.add(f"{resource} request")
    return _text(doc.get("metadata"), "namespace"), defaulted


def compose(doc: Node, path: str) -> list[Workload]:
    """Every service of a compose file. A service's keys are read with merge keys applied
    (``<<: *worker-base``, an ``x-`` anchor shared by services); where such a key is written is
    the anchor's line."""
    services = doc.get("services")
    out = []
    for name, key, service in services.pairs() if services is not None else ():
        if not service.is_map or key.node.tag == MERGE_TAG:
            continue
        workload = Workload("compose", name, path, key.line_start, spec=service, pod=service)
        container = Container(name, key.line_start)
        merged = {k: (key_node, value) for k, key_node, value in service.merged_pairs()}  # one walk

        def get(k: str) -> Node | None:
            return merged[k][1] if k in merged else None

        def line(k: str) -> Span | None:
            return merged[k][0].line_start if k in merged else None

        container.argv = tokens(get("entrypoint")) + tokens(get("command"))
        container.command_line = line("command") or line("entrypoint")
        deploy = get("deploy")
        limits = deploy.lookup_path("resources", "limits") if deploy is not None else None
        container.memory_limit = memory(_text(limits, "memory")) or memory(_scalar(get("mem_limit")))
        container.cpu_limit = cpu(_text(limits, "cpus")) or cpu(_scalar(get("cpus")))
        reservations = deploy.lookup_path("resources", "reservations") if deploy is not None else None
        container.cpu_request = cpu(_text(reservations, "cpus"))
        container.memory_request = memory(_text(reservations, "memory"))
        container.liveness = get("healthcheck") is not None
        environment = get("environment")
        if environment is not None and environment.is_map:
            for env_name, env_key, value in environment.merged_pairs():
                container.env[env_name] = (value.text, env_key.line_start)
        elif environment is not None and environment.is_seq:
            for item in environment.items():
                if item.text is not None:
                    env_name, sep, value_text = item.text.partition("=")
                    container.env[env_name] = (value_text if sep else None, item.line_start)
        replicas = (deploy.lookup("replicas") if deploy is not None else None) or get("scale")
        if replicas is not None and replicas.number() is not None:
            workload.replicas = int(replicas.number())
        grace = get("stop_grace_period")
        if grace is not None:
            workload.grace_seconds = seconds(grace.text)
        signal = get("stop_signal")
        workload.stop_signal = signal.text if signal is not None else None
        workload.development = _source_mount(get("volumes"), path) or development_file(path)
        workload.containers = [container]
        out.append(workload)
    return out


# Words of a compose file's name, and folders right above it, that say it describes a developer's
# stack: ``docker-compose.dev.yml``, ``compose.override.local.yaml``, ``development/docker-compose.yml``,
# ``.devcontainer/docker-compose.yml``.
_DEV_NAME_WORDS = frozenset({"dev", "development", "local", "debug", "devcontainer"})
_DEV_FOLDERS = frozenset({"development", ".devcontainer", "devcontainer"})


def development_file(path: str) -> str:
    """Why a compose file is a developer's stack by its name or folder ("" when it is not)."""
    name = os.path.basename(path)
    words = set(re.split(r"[._-]", name.lower()))
    if words & _DEV_NAME_WORDS:
        return f"is defined in `{name}`, a development compose file"
    folders = os.path.normpath(os.path.abspath(path)).split(os.sep)[-3:-1]
    for folder in folders:
        if folder.lower() in _DEV_FOLDERS:
            return f"is defined under `{folder}/`, a development setup"
    return ""


# Files that mark a folder as a Python project or package: a folder holding one (or a package
# folder right under it) is source code, not data.
_SOURCE_MARKERS = ("__init__.py", "manage.py", "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt")


def _source_mount(volumes: Node | None, path: str) -> str:
    """How a compose service mounts the project's source from the host, as a reason ("" when it does
    not): a bind mount (``./:/app``, ``./src/app:/code/app``, ``type: bind``) of a folder that is Python
    source (a project, a package, or a folder holding packages)."""
    if volumes is None or not volumes.is_seq:
        return ""
    base = os.path.dirname(os.path.abspath(path))
    for item in volumes.items():
        host = target = None
        if item.text is not None:  # ``HOST:CONTAINER[:MODE]``
            parts = item.text.split(":")
            if len(parts) >= 2:
                host, target = parts[0], parts[1]
        elif item.is_map and _text(item, "type") == "bind":
            host, target = _text(item, "source"), _text(item, "target")
        if not host or not target:
            continue
        for variable in ("${PWD}", "$PWD"):
            if host.startswith(variable):
                host = "." + host[len(variable):]
        if not host.startswith("."):
            continue  # a named volume, or an absolute host path qlint cannot place
        folder = os.path.normpath(os.path.join(base, host))
        if _is_source(folder):
            return f"mounts the project's source from the host (`{host}` at `{target}`)"
    return ""


def _is_source(folder: str) -> bool:
    if not os.path.isdir(folder):
        return False
    try:
        with os.scandir(folder) as entries:
            children = list(entries)
    except OSError:
        return False
    if any(entry.name in _SOURCE_MARKERS for entry in children):
        return True
    return any(entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, "__init__.py"))
               for entry in children)
