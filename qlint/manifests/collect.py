"""Manifest files into workloads and the worker processes they start.

``read`` turns one file (Kubernetes YAML, docker-compose, Procfile) into a ``ManifestFile``;
``join`` puts every file's workloads together (an HPA in one document scales a Deployment in
another) and finds the workers in each container's command.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from qlint.lint.facts import Span
from qlint.lint.source import SourceFile
from qlint.manifests import yamldoc
from qlint.manifests.commands import WorkerCommand, parse
from qlint.manifests.workloads import Container, Token, Workload, compose, kubernetes, limit_range


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
        """The flag's own list item when there is one, else the ``command:``/``args:`` line."""
        found = self.command.flags.get(flag) if flag else None
        if found is not None and found.token.own_item:
            return Span(found.token.span.start, found.token.span.start)
        return self.container.command_line or self.container.anchor


@dataclass
class ManifestFile:
    path: str
    src: SourceFile
    workloads: list[Workload] = field(default_factory=list)
    scalers: list[tuple[str, str, str]] = field(default_factory=list)  # (scaler, target kind, target name)
    limit_ranges: list[tuple[str | None, set[str]]] = field(default_factory=list)  # (namespace, defaulted)


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
    for doc in yamldoc.documents(src):
        if not doc.is_map:
            continue
        if doc.get("services") is not None and doc.get("kind") is None:
            result.workloads.extend(compose(doc, path))
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
    workers = []
    for workload in workloads:
        for container in workload.containers:
            for command in parse(container.argv, clis):
                workers.append(Worker(command, container, workload))
    return workloads, workers
