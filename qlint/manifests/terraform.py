"""SQS queues and their Lambda consumers in Terraform (``*.tf``), for the same rules as CloudFormation's.

The file is parsed by python-hcl2, an optional extra (``pip install qlint-tasks[terraform]``):
without it ``.tf`` files are skipped, and ``-v`` says so. The parser gives values but no
positions, so each resource's block is then found in the text (``resource "aws_sqs_queue"
"orders" {`` to its closing brace, strings, heredocs and comments skipped), and the attributes
the rules read are located in it:

- ``aws_sqs_queue``: ``visibility_timeout_seconds`` (30), ``message_retention_seconds``
  (345,600), ``redrive_policy`` (``jsonencode({deadLetterTargetArn = aws_sqs_queue.dlq.arn,
  maxReceiveCount = 5})`` or a JSON string), or an ``aws_sqs_queue_redrive_policy`` resource;
- ``aws_lambda_function`` ``timeout`` (3), joined to a queue by an
  ``aws_lambda_event_source_mapping`` (``event_source_arn``, ``function_name``,
  ``maximum_batching_window_in_seconds``).

A value that is a variable, a local or a module output is unknown; a queue built by a module
(``terraform-aws-modules/sqs``) is not seen.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from qlint.lint.diagnostics import Edit
from qlint.lint.facts import Span
from qlint.lint.source import SourceFile
from qlint.manifests.cloudformation import (
    LAMBDA_TIMEOUT_DEFAULT,
    Consumer,
    Function,
    Template,
)

# CloudFormation's property names, as the rules ask for them, and Terraform's.
ATTRIBUTES = {"VisibilityTimeout": "visibility_timeout_seconds", "MessageRetentionPeriod": "message_retention_seconds"}


class Unavailable(Exception):
    """python-hcl2 is not installed."""


def _hcl2():
    try:
        import hcl2
    except ImportError:  # the optional extra
        raise Unavailable("Terraform is read with the optional python-hcl2 parser: "
                          "pip install 'qlint-tasks[terraform]'") from None
    return hcl2


@dataclass
class Value:
    """A value written in the file: its text's span, and the number it holds (None: not a literal)."""

    span: Span
    text: str

    @property
    def is_scalar(self) -> bool:
        return True

    def number(self) -> float | None:
        try:
            return float(self.text.strip('"'))
        except ValueError:
            return None


@dataclass
class Block:
    start: int  # the ``resource`` keyword
    open: int  # just after ``{``
    close: int  # the ``}``


@dataclass
class TfQueue:
    logical_id: str  # ``aws_sqs_queue.orders``
    path: str
    src: SourceFile
    block: Block
    anchor: Span
    attributes: dict[str, Value] = field(default_factory=dict)
    redrive: None = None  # (a mapping of CloudFormation's; Terraform's policy is a string)
    redrive_text: bool = False
    dead_letter: str | None = None
    max_receive: Value | None = None

    def number(self, key: str) -> tuple[float | None, Value | None]:
        found = self.attributes.get(ATTRIBUTES.get(key, key))
        return (found.number() if found is not None else None), found

    def set_edits(self, key: str, value: str) -> list[Edit]:
        """``attribute = value``: the written value replaced, else a line added after the block's
        opening line, indented as the block's first attribute."""
        name = ATTRIBUTES.get(key, key)
        found = self.attributes.get(name)
        if found is not None:
            return [Edit(found.span.start, found.span.end, value)]
        data = self.src.utf8
        line_end = data.find(b"\n", self.block.open)
        if line_end < 0 or line_end > self.block.close or data[self.block.open:line_end].strip():
            return []
        first = re.compile(rb"\n([ \t]+)\S").search(data, line_end, self.block.close)
        indent = first.group(1).decode() if first else "  "
        return [Edit(line_end + 1, line_end + 1, f"{indent}{name} = {value}{self.src.newline}")]


_RESOURCE = re.compile(rb'^[ \t]*resource[ \t]+"([A-Za-z0-9_]+)"[ \t]+"([A-Za-z0-9_-]+)"[ \t]*\{', re.MULTILINE)
# References, ``count``/``for_each`` instances too (``aws_sqs_queue.this[0].url``).
_INDEX = r"(?:\[[^\]]{0,40}\])?"
_QUEUE_REF = re.compile(r"aws_sqs_queue\.([A-Za-z0-9_-]+)" + _INDEX + r"\.(?:arn|id|url)")
_FUNCTION_REF = re.compile(r"aws_lambda_function\.([A-Za-z0-9_-]+)" + _INDEX
                           + r"\.(?:arn|function_name|id|qualified_arn)")
_DLQ = re.compile(r"deadLetterTargetArn\W{0,8}[^,}]{0,80}?aws_sqs_queue\.([A-Za-z0-9_-]+)" + _INDEX + r"\.arn")
_MAX_RECEIVE = re.compile(rb'maxReceiveCount\W{0,6}?[:=][ \t]*\\?"?(\d+)')


def read(src: SourceFile) -> Template | None:
    """The file's SQS queues, Lambda functions and event source mappings; None when it has no queue.
    Raises ``Unavailable`` without python-hcl2 and ``ValueError`` for a file it cannot parse."""
    if b"aws_sqs_queue" not in src.utf8:
        return None  # (before the parser is imported: most Terraform files declare no queue)
    hcl2 = _hcl2()
    try:
        parsed = hcl2.load(io.StringIO(src.text))
    except Exception as exc:  # noqa: BLE001 - the parser raises its own (lark) errors
        raise ValueError(f"Terraform that the HCL parser cannot read: {str(exc).splitlines()[0][:120]}") from None
    template = Template(str(src.path), src)
    blocks = _blocks(src.utf8)
    policies: list[tuple[str, str, Block]] = []  # aws_sqs_queue_redrive_policy: (queue, policy text, block)
    for kind, name, body in _resources(parsed):
        block = blocks.get((kind, name))
        if block is None:
            continue
        if kind == "aws_sqs_queue":
            template.queues[f"aws_sqs_queue.{name}"] = _queue(src, kind, name, body, block)
        elif kind == "aws_lambda_function":
            timeout = body.get("timeout")
            if timeout is None:
                value, source = float(LAMBDA_TIMEOUT_DEFAULT), "default"
            elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
                value, source = float(timeout), ""
            else:
                continue  # a variable: not known here
            template.functions[f"aws_lambda_function.{name}"] = Function(f"aws_lambda_function.{name}", value,
                                                                         None, source)
        elif kind == "aws_lambda_event_source_mapping":
            queue = _QUEUE_REF.search(str(body.get("event_source_arn", "")))
            function = _FUNCTION_REF.search(str(body.get("function_name", "")))
            window = body.get("maximum_batching_window_in_seconds")
            if queue and function:
                template.consumers.append(Consumer(f"aws_sqs_queue.{queue.group(1)}",
                                                   f"aws_lambda_function.{function.group(1)}",
                                                   float(window) if isinstance(window, (int, float)) else 0.0))
        elif kind == "aws_sqs_queue_redrive_policy":
            queue = _QUEUE_REF.search(str(body.get("queue_url", "")))
            if queue:
                policies.append((f"aws_sqs_queue.{queue.group(1)}", str(body.get("redrive_policy", "")), block))
    for queue_id, policy, block in policies:
        queue = template.queues.get(queue_id)
        if queue is not None and queue.dead_letter is None:
            _redrive(src, queue, policy, block)
    return template if template.queues else None


def _resources(parsed: dict):
    """(type, name, attributes) of every resource block (python-hcl2 keeps the quotes of labels)."""
    for entry in parsed.get("resource", []) or []:
        if not isinstance(entry, dict):
            continue
        for kind, named in entry.items():
            if not isinstance(named, dict):
                continue
            for name, body in named.items():
                if isinstance(body, dict):
                    yield kind.strip('"'), name.strip('"'), body


def _queue(src: SourceFile, kind: str, name: str, body: dict, block: Block) -> TfQueue:
    line_start = src.utf8.rfind(b"\n", 0, block.start) + 1
    queue = TfQueue(f"{kind}.{name}", str(src.path), src, block, Span(line_start, line_start))
    for attribute in ATTRIBUTES.values():
        value = _attribute(src, block, attribute)
        if value is not None:
            queue.attributes[attribute] = value
    if "redrive_policy" in body:
        _redrive(src, queue, str(body["redrive_policy"]), block)
    return queue


def _redrive(src: SourceFile, queue: TfQueue, policy: str, block: Block) -> None:
    dead = _DLQ.search(policy)
    queue.dead_letter = f"aws_sqs_queue.{dead.group(1)}" if dead else None
    queue.redrive_text = True  # a policy, whatever it names
    start = _attribute_start(src, block, "redrive_policy")
    if start is None:
        return
    found = _MAX_RECEIVE.search(src.utf8, start, block.close)
    if found is not None:
        queue.max_receive = Value(Span(found.start(1), found.end(1)), found.group(1).decode())


def _attribute_start(src: SourceFile, block: Block, name: str) -> int | None:
    found = re.compile(rb"^[ \t]*" + re.escape(name.encode()) + rb"[ \t]*=[ \t]*", re.MULTILINE).search(
        src.utf8, block.open, block.close)
    return found.end() if found is not None and _depth(src.utf8, block.open, found.start()) == 0 else None


def _attribute(src: SourceFile, block: Block, name: str) -> Value | None:
    """``name = <value>`` at the block's own level: the value's text up to the end of its line
    (a comment left out)."""
    start = _attribute_start(src, block, name)
    if start is None:
        return None
    data = src.utf8
    end = data.find(b"\n", start, block.close)
    end = block.close if end < 0 else end
    text = data[start:end]
    for marker in (b"#", b"//"):
        cut = text.find(marker)
        if cut >= 0 and b'"' not in text[:cut]:
            text = text[:cut]
    text = text.rstrip()
    return Value(Span(start, start + len(text)), text.decode("utf-8", "replace"))


def _depth(data: bytes, start: int, end: int) -> int:
    """Braces and brackets opened and not closed between ``start`` and ``end`` (strings skipped)."""
    depth = 0
    index = start
    while index < end:
        char = data[index:index + 1]
        if char == b'"':
            index = _string_end(data, index)
            continue
        if char in (b"{", b"[", b"("):
            depth += 1
        elif char in (b"}", b"]", b")"):
            depth -= 1
        index += 1
    return depth


def _string_end(data: bytes, start: int) -> int:
    index = start + 1
    while index < len(data):
        char = data[index:index + 1]
        if char == b"\\":
            index += 2
            continue
        if char == b'"' or char == b"\n":
            return index + 1
        index += 1
    return index


_HEREDOC = re.compile(rb"<<-?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n")


def _blocks(data: bytes) -> dict[tuple[str, str], Block]:
    """Each resource block's extent: from ``resource`` to its matching ``}``, skipping strings,
    heredocs and comments."""
    out: dict[tuple[str, str], Block] = {}
    for match in _RESOURCE.finditer(data):
        depth = 1
        index = match.end()
        while index < len(data) and depth:
            char = data[index:index + 1]
            if char == b'"':
                index = _string_end(data, index)
                continue
            if char == b"#" or data.startswith(b"//", index):
                newline = data.find(b"\n", index)
                index = len(data) if newline < 0 else newline
                continue
            if data.startswith(b"/*", index):
                close = data.find(b"*/", index + 2)
                index = len(data) if close < 0 else close + 2
                continue
            heredoc = _HEREDOC.match(data, index)
            if heredoc is not None:
                marker = re.compile(rb"^[ \t]*" + re.escape(heredoc.group(1)) + rb"[ \t]*$", re.MULTILINE)
                closing = marker.search(data, heredoc.end())
                index = len(data) if closing is None else closing.end()
                continue
            if char == b"{":
                depth += 1
            elif char == b"}":
                depth -= 1
                if not depth:
                    out[(match.group(1).decode(), match.group(2).decode())] = Block(match.start(), match.end(), index)
            index += 1
    return out
