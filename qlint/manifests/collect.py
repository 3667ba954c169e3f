"""Manifest files into workloads and the worker processes they start.

``read`` turns one file (Kubernetes YAML, docker-compose, Procfile) into a ``ManifestFile``;
``join`` puts every file's workloads together (an HPA in one document scales a Deployment in
another) and finds the workers in each container's command.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from qlint.lint.facts import FileFacts, Span
from qlint.lint.source import SourceFile
from qlint.manifests import cloudformation, cloudtasks, terraform, yamldoc
from qlint.manifests.commands import WorkerCommand, parse
from qlint.manifests.workloads import (
    Container,
    Token,
    Workload,
    compose,
    kubernetes,
    limit_range,
)


@dataclass
class Worker:
    """A worker (or scheduler) process a container starts."""

    command: WorkerCommand
    container: Container
    workload: Workload

    @property
    def framework(self) -> str:
        return self.command.framework

    def anchor(self, flag: str | None = None) -> Span:
        """The flag's own list item when there is one, else the ``command:``/``args:`` line (always in
        the workload's file: a flag written in a script the container runs points at the command)."""
        found = self.command.flags.get(flag) if flag else None
        if found is not None and found.token.own_item and found.token.path is None:
            return Span(found.token.span.start, found.token.span.start)
        return self.container.command_line or self.container.anchor

    def flag_site(self, flag: str | None = None) -> tuple[FileFacts, Span]:
        """Where a finding about ``flag`` goes: the flag's own list item, the line of the script it is
        written in (a script the container runs), else the command line."""
        found = self.command.flags.get(flag) if flag else None
        if found is not None and found.token.path is not None:
            return FileFacts(path=found.token.path, module=""), Span(found.token.span.start, found.token.span.start)
        return self.workload.file, self.anchor(flag)

    def command_site(self) -> tuple[FileFacts, Span]:
        """Where a finding about the command as a whole goes: the line of the script that holds it
        (a script the container runs), else the ``command:``/``args:`` line."""
        first = self.command.tokens[0] if self.command.tokens else None
        if first is not None and first.path is not None:
            return FileFacts(path=first.path, module=""), Span(first.span.start, first.span.start)
        return self.workload.file, self.anchor()

    @property
    def development(self) -> str:
        """Why this worker is a developer's run ("" for a deployment): its workload (a compose service
        running the mounted source) or its command (a reloader)."""
        return self.workload.development or self.command.development

    @property
    def place(self) -> str:
        """Where the worker runs, for a message: container `worker`, Procfile entry `worker`, `bin/run.sh`."""
        kind = self.workload.kind
        if kind == "Procfile":
            return f"Procfile entry `{self.container.name}`"
        if kind == "script":
            return f"`{self.container.name}`"
        return f"container `{self.container.name}`"


@dataclass
class ManifestFile:
    path: str
    src: SourceFile
    workloads: list[Workload] = field(default_factory=list)
    scalers: list[tuple[str, str, str]] = field(default_factory=list)  # (scaler, target kind, target name)
    limit_ranges: list[tuple[str | None, set[str]]] = field(default_factory=list)  # (namespace, defaulted)
    templates: list[cloudformation.Template] = field(default_factory=list)  # SQS queues and their consumers
    task_queues: list[cloudtasks.TaskQueue] = field(default_factory=list)  # queue.yaml's Cloud Tasks queues
    sidekiq_config: yamldoc.Node | None = None  # a config/sidekiq.yml
    database: yamldoc.Node | None = None  # a Rails config/database.yml


def is_procfile(path: Path) -> bool:
    return path.name == "Procfile" or path.name.startswith("Procfile.")


def is_script(path: Path) -> bool:
    return path.suffix == ".sh"


def read(src: SourceFile) -> ManifestFile:
    """Raises ``yamldoc.Skipped`` / ``yamldoc.Invalid`` for YAML qlint does not read."""
    path = str(src.path)
    result = ManifestFile(path, src)
    if is_procfile(Path(path)):
        result.workloads = _procfile(src)
        return result
    if is_script(Path(path)):
        result.workloads = _script(src)
        return result
    if path.endswith(".tf"):
        try:
            template = terraform.read(src)
        except (terraform.Unavailable, ValueError) as exc:
            raise yamldoc.Skipped(str(exc)) from None  # not qlint's to judge: ``terraform validate`` is
        if template is not None:
            result.templates.append(template)
        return result
    for doc in yamldoc.documents(src):
        if not doc.is_map:
            continue
        if doc.get("services") is not None and doc.get("kind") is None:
            result.workloads.extend(compose(doc, path))
            continue
        name = Path(path).name
        plain = doc.get("kind") is None and doc.get("apiVersion") is None  # no Kubernetes document
        if name in yamldoc.SIDEKIQ_NAMES and plain:
            result.sidekiq_config = doc
            continue
        if name in yamldoc.DATABASE_NAMES and plain:
            result.database = doc
            continue
        if name in yamldoc.QUEUE_YAML_NAMES:
            result.task_queues.extend(cloudtasks.read(doc, path))
            continue
        if doc.get("kind") is None and (doc.get("Resources") is not None or doc.get("resources") is not None):
            template = cloudformation.read(doc, path)  # CloudFormation, SAM, Serverless Framework
            if template is not None:
                result.templates.append(template)
            continue
        defaults = limit_range(doc)
        if defaults is not None:
            result.limit_ranges.append(defaults)
            continue
        workload, scaler = kubernetes(doc, path)
        if workload is not None:
            result.workloads.append(workload)
        if scaler is not None:
            result.scalers.append(scaler)
    return result


def _procfile(src: SourceFile) -> list[Workload]:
    out = []
    for row in range(1, len(src.line_starts) + 1):
        start, end = src.line_span(row)
        line = src.utf8[start:end].decode("utf-8", "surrogatepass")
        name, sep, command = line.partition(":")
        if not sep or not name.strip() or name.lstrip().startswith("#"):
            continue
        span = Span(start, start)
        container = Container(name.strip(), span, command_line=span)
        try:
            words = shlex.split(command, comments=True)
        except ValueError:
            words = command.split()
        container.argv = [Token(w, Span(start, end), False) for w in words]
        out.append(Workload("Procfile", name.strip(), str(src.path), span, containers=[container]))
    return out


def _script(src: SourceFile) -> list[Workload]:
    """A shell script's command lines (``\\`` continuations joined), each a ``script`` workload:
    read for the flags a worker is started with, never judged as a container."""
    out = []
    lines = src.text.splitlines()
    row, start_row = 0, 0
    pending = ""
    while row < len(lines):
        line = lines[row]
        if not pending:
            start_row = row
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            row += 1
            continue
        command = (pending + line).strip()
        pending = ""
        row += 1
        if not command or command.startswith("#"):
            continue
        start = src.line_starts[start_row]
        span = Span(start, start)
        container = Container(Path(str(src.path)).name, span, command_line=span)
        container.argv = [Token(w, span, False) for w in _shell_words(command)]
        out.append(Workload("script", Path(str(src.path)).name, str(src.path), span, containers=[container]))
    return out


def _shell_words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return command.split()


def join(files: list[ManifestFile], clis: dict) -> tuple[list[Workload], list[Worker]]:
    workloads = [w for f in files for w in f.workloads]
    by_name = {(w.kind, w.name): w for w in workloads}
    for f in files:
        for scaler, kind, name in f.scalers:
            target = by_name.get((kind, name))
            if target is not None:
                target.autoscaled_by.append(scaler)
    ranges = [r for f in files for r in f.limit_ranges]
    for workload in workloads:
        if workload.kind in ("compose", "Procfile", "script"):
            continue
        for namespace, defaulted in ranges:
            # Namespaces left out (applied with ``-n``) may be the same one: counted as the same.
            if namespace is None or workload.namespace is None or namespace == workload.namespace:
                workload.defaulted |= defaulted
    scripts = _Scripts([f for f in files if is_script(Path(f.path))])
    workers = []
    for workload in workloads:
        # A container may run a script the repository holds; a script read on its own stands alone.
        reader = None if workload.kind == "script" else scripts.reader(workload.path)
        for container in workload.containers:
            for command in parse(container.argv, clis, reader):
                workers.append(Worker(command, container, workload))
                if command.development and not workload.development:
                    workload.development = command.development  # a reloader's workload is a developer's
    return workloads, workers


_POSITIONAL = re.compile(r"\$\{?[1-9]")


class _Scripts:
    """The shell scripts of the project, found by the path a command names them with."""

    MAX_UP = 6  # folders above a manifest tried for a relative path

    def __init__(self, files: list[ManifestFile]) -> None:
        self.by_path = {os.path.normpath(os.path.abspath(f.path)): f for f in files}

    def reader(self, manifest: str):
        base = os.path.dirname(os.path.abspath(manifest))
        return lambda word: self.lines(word, base)

    def lines(self, word: str, base: str) -> list[list[Token]] | None:
        """The script's command lines, as words; None when the repository holds no such script, or
        when the script reads its arguments (``$1``, ``case "$1"``): the words a container passes
        choose what it runs, which qlint does not follow."""
        found = self.find(word, base)
        if found is None or _POSITIONAL.search(found.src.text):
            return None
        return [[Token(t.text, t.span, False, found.path) for t in container.argv]
                for workload in found.workloads for container in workload.containers]

    def find(self, word: str, base: str) -> ManifestFile | None:
        """``./docker/run.sh`` from the manifest's folder or a folder above it; an absolute path in the
        image (``/entrypoint-worker.sh``, ``/app/bin/run.sh``) by its longest tail that names one
        script of the project and no other."""
        if "$" in word or not word:
            return None
        if not os.path.isabs(word):
            folder = base
            for _ in range(self.MAX_UP):
                hit = self.by_path.get(os.path.normpath(os.path.join(folder, word)))
                if hit is not None:
                    return hit
                parent = os.path.dirname(folder)
                if parent == folder:
                    break
                folder = parent
        parts = [p for p in os.path.normpath(word).split(os.sep) if p not in ("", ".", "..")]
        for start in range(len(parts)):
            tail = os.sep + os.path.join(*parts[start:])
            hits = [f for path, f in self.by_path.items() if path.endswith(tail)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                return None  # two scripts of that name: qlint cannot tell which one the image holds
        return None
