"""What the SQS rules (QLT801-QLT804) share: where a queue is reported, and how long things last."""

from __future__ import annotations

from qlint.fixers.yaml import set_nested, set_scalar
from qlint.lint.diagnostics import Edit
from qlint.lint.facts import FileFacts
from qlint.manifests.cloudformation import Queue, Template


def queue_file(queue: Queue) -> FileFacts:
    """The template as rules report on it (``RuleContext.report`` takes a file's facts)."""
    return FileFacts(path=queue.path, module="")


def duration(seconds: float) -> str:
    """``345600 s (4 days)``: seconds, and the largest whole unit when there is one."""
    value = int(seconds) if float(seconds).is_integer() else seconds
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{value} s ({count} {unit}{'s' if count > 1 else ''})"
    return f"{value} s"


def queues(project) -> list[tuple[Template, Queue]]:
    return [(template, queue) for template in project.templates for queue in template.queues.values()]


# CloudFormation's names, and Terraform's (qlint.manifests.terraform): how a message names them.
TERRAFORM_NAMES = {"VisibilityTimeout": "visibility_timeout_seconds", "MessageRetentionPeriod": "message_retention_seconds",
                   "RedrivePolicy": "redrive_policy"}


def named(queue, key: str) -> str:
    """``VisibilityTimeout``, or ``visibility_timeout_seconds`` for a Terraform queue."""
    return TERRAFORM_NAMES.get(key, key) if str(queue.path).endswith(".tf") else key


def set_property(src, queue: Queue, key: str, value: str) -> list[Edit]:
    """Edits writing ``key: value`` in the queue's ``Properties`` (added after ``Type`` when it has
    none); none when ``Properties`` is something else (a parameter, a flow mapping qlint leaves).
    A Terraform queue writes its own attribute."""
    if hasattr(queue, "set_edits"):
        return queue.set_edits(key, value)
    if queue.properties is not None:
        if flow_or_json(src, queue.properties) and queue.properties.get(key) is None:
            return []  # a key of its own in JSON or a flow mapping is the formatter's to lay out
        return set_scalar(src, queue.properties, key, value)
    if queue.resource.get("Properties") is None and not flow_or_json(src, queue.resource):
        return set_nested(src, queue.resource, "Properties", key, value, after="Type")
    return []


def flow_or_json(src, node) -> bool:
    """A JSON file, or a ``{...}`` mapping: its values can be replaced, but a line of YAML
    cannot be added to it."""
    return str(src.path).endswith((".json", ".template")) or src.utf8[node.span.start:node.span.start + 1] == b"{"
