"""Google Cloud Tasks / App Engine task queues in ``queue.yaml``.

``queue:`` is a list of queues, each ``name:`` with ``mode:`` (``push`` unless ``pull``) and
``retry_parameters:`` (``task_retry_limit``, ``task_age_limit``, ``min_backoff_seconds``,
``max_backoff_seconds``, ``max_doublings``). Without a retry limit or an age limit a failing push
task is retried until it succeeds, at most once an hour (``max_backoff_seconds`` defaults to
3,600); ``min_backoff_seconds`` defaults to 0.1 s (Google's queue.yaml reference).
"""

from __future__ import annotations

from dataclasses import dataclass

from qlint.lint.facts import FileFacts, Span
from qlint.lint.source import SourceFile
from qlint.manifests.yamldoc import Node

MIN_BACKOFF_DEFAULT = 0.1
MAX_BACKOFF_DEFAULT = 3600


@dataclass
class TaskQueue:
    name: str
    path: str
    src: SourceFile
    entry: Node  # the queue's mapping
    anchor: Span  # its ``- name:`` line
    retry: Node | None  # ``retry_parameters``

    @property
    def file(self) -> FileFacts:
        """The ``queue.yaml`` as rules report on it."""
        return FileFacts(path=self.path, module="")

    def parameter(self, key: str) -> Node | None:
        return self.retry.get(key) if self.retry is not None and self.retry.is_map else None


def read(doc: Node, path: str) -> list[TaskQueue]:
    queues = doc.get("queue")
    if queues is None or not queues.is_seq:
        return []
    out = []
    for entry in queues.items():
        if not entry.is_map:
            continue
        name = entry.get("name")
        mode = entry.get("mode")
        if name is None or not name.is_scalar or (mode is not None and mode.text == "pull"):
            continue  # a pull queue's tasks are leased by workers, not retried by the service
        key = entry.key_node("name")
        out.append(TaskQueue(name.text or "", path, doc.src, entry, key.line_start, entry.get("retry_parameters")))
    return out
