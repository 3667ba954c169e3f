"""SQS queues and their Lambda consumers in CloudFormation, SAM and Serverless Framework templates.

Read from the YAML composer's nodes like every manifest (intrinsic functions such as ``!Ref``,
``!GetAtt`` and ``!Sub`` are tagged nodes, never constructed), only along the paths these
templates define:

- ``Resources.<id>`` of type ``AWS::SQS::Queue``: ``RedrivePolicy`` (``deadLetterTargetArn``,
  ``maxReceiveCount``), ``VisibilityTimeout``, ``MessageRetentionPeriod``;
- ``AWS::Lambda::Function`` / ``AWS::Serverless::Function`` ``Timeout`` (SAM's
  ``Globals.Function.Timeout``), joined to a queue by an ``AWS::Lambda::EventSourceMapping`` or a
  SAM ``Events`` entry of ``Type: SQS``;
- Serverless Framework's ``resources.Resources`` and ``functions.<name>`` with ``timeout``
  (``provider.timeout``) and ``events: - sqs: ...``.

A reference qlint cannot follow (another stack's export, an ARN string, a parameter) joins
nothing: a queue whose dead-letter target or consumer is elsewhere is not judged on a guess.
Defaults are the services' own: a queue's visibility timeout 30 s and retention 345,600 s
(4 days; at most 1,209,600 s), a Lambda function's timeout 3 s (Serverless Framework's 6 s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qlint.lint.facts import Span
from qlint.lint.source import SourceFile
from qlint.manifests.yamldoc import Node

QUEUE = "AWS::SQS::Queue"
FUNCTIONS = ("AWS::Lambda::Function", "AWS::Serverless::Function")
MAPPING = "AWS::Lambda::EventSourceMapping"

VISIBILITY_DEFAULT = 30
VISIBILITY_MAX = 43_200
RETENTION_DEFAULT = 345_600
RETENTION_MAX = 1_209_600
LAMBDA_TIMEOUT_DEFAULT = 3
SERVERLESS_TIMEOUT_DEFAULT = 6
CONSUMER_FACTOR = 6  # AWS: a source queue's visibility timeout at least six times the function's timeout

_SUB = re.compile(r"^\$\{([A-Za-z0-9]+)(?:\.Arn)?\}$")


@dataclass
class Queue:
    logical_id: str
    path: str
    src: SourceFile
    resource: Node  # the resource's mapping (``Type:``, ``Properties:``)
    anchor: Span  # the line of its logical id
    properties: Node | None
    redrive: Node | None = None  # ``RedrivePolicy`` as a mapping (a JSON string cannot be edited)
    redrive_text: bool = False  # a RedrivePolicy written as a JSON string
    dead_letter: str | None = None  # the logical id its ``deadLetterTargetArn`` names, when in this template
    max_receive: Node | None = None

    def number(self, key: str) -> tuple[float | None, Node | None]:
        node = self.properties.get(key) if self.properties is not None else None
        return (node.number() if node is not None and node.is_scalar else None), node


@dataclass
class Function:
    logical_id: str
    timeout: float
    timeout_node: Node | None
    source: str  # "" when written on the function, else "default" or "Globals" (SAM) / "provider" (Serverless)


@dataclass
class Consumer:
    queue: str  # logical id
    function: str
    window: float = 0.0  # ``MaximumBatchingWindowInSeconds``


@dataclass
class Template:
    """One file's queues, functions and consumers (a Terraform file's too: qlint.manifests.terraform)."""

    path: str
    src: SourceFile
    queues: dict[str, Queue] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    consumers: list[Consumer] = field(default_factory=list)
    # Queues named under a dead-letter or on-failure key anywhere in the template: a Lambda's or
    # an EventBridge rule's ``DeadLetterConfig``, SAM's ``DeadLetterQueue``, an SNS subscription's
    # ``RedrivePolicy``, an ``OnFailure`` destination. Each is a dead-letter queue itself.
    failure_targets: set[str] = field(default_factory=set)

    def targets(self) -> set[str]:
        """The queues of the template that receive some resource's dead letters."""
        return {q.dead_letter for q in self.queues.values() if q.dead_letter} | self.failure_targets


def reference(node: Node | None) -> str | None:
    """The logical id an intrinsic names: ``!Ref X``, ``!GetAtt X.Arn`` (or ``[X, Arn]``),
    ``!Sub "${X.Arn}"``, and their JSON forms (``{"Ref": X}``, ``{"Fn::GetAtt": [X, "Arn"]}``)."""
    if node is None:
        return None
    tag = getattr(node.node, "tag", "") or ""
    if node.is_scalar and tag in ("!Ref", "!GetAtt"):
        return (node.text or "").split(".")[0] or None
    if node.is_scalar and tag == "!Sub":
        found = _SUB.match(node.text or "")
        return found.group(1) if found else None
    if node.is_seq and tag == "!GetAtt":
        items = list(node.items())
        return items[0].text if items and items[0].is_scalar else None
    if node.is_map:
        for key in ("Ref", "Fn::GetAtt", "Fn::Sub"):
            value = node.get(key)
            if value is None:
                continue
            if value.is_scalar:
                text = value.text or ""
                if key == "Fn::Sub":
                    found = _SUB.match(text)
                    return found.group(1) if found else None
                return text.split(".")[0] or None
            if value.is_seq:
                items = list(value.items())
                return items[0].text if items and items[0].is_scalar else None
    return None


def read(doc: Node, path: str) -> Template | None:
    """The template's queues, functions and consumers; None for a document that is no template."""
    resources = doc.get("Resources")
    serverless = doc.path("resources", "Resources")
    if not (resources is not None and resources.is_map) and not (serverless is not None and serverless.is_map):
        return None
    template = Template(path, doc.src)
    globals_timeout = doc.path("Globals", "Function", "Timeout")
    default_timeout, default_source = LAMBDA_TIMEOUT_DEFAULT, "default"
    if globals_timeout is not None and globals_timeout.number() is not None:
        default_timeout, default_source = globals_timeout.number(), "Globals"
    for table in (resources, serverless):
        if table is None or not table.is_map:
            continue
        for logical_id, key, resource in table.pairs():
            if not resource.is_map:
                continue
            kind = resource.get("Type")
            kind_text = kind.text if kind is not None and kind.is_scalar else None
            if kind_text == QUEUE:
                template.queues[logical_id] = _queue(logical_id, key, resource, path)
            elif kind_text in FUNCTIONS:
                _function(template, logical_id, resource, default_timeout, default_source)
            elif kind_text == MAPPING:
                props = resource.get("Properties")
                if props is not None:
                    queue, function = reference(props.get("EventSourceArn")), reference(props.get("FunctionName"))
                    if queue and function:
                        template.consumers.append(Consumer(queue, function, _window(props)))
    if serverless is not None:
        _serverless_functions(template, doc)
    for table in (resources, serverless, doc.get("functions")):
        if table is not None:
            _failure_targets(table, template.failure_targets, False, 0)
    return template if template.queues else None


_FAILURE_KEY = re.compile(r"dead.?letter|onfailure|redrivepolicy", re.IGNORECASE)
_MAX_DEPTH = 12


def _failure_targets(node: Node, found: set[str], under: bool, depth: int) -> None:
    """Every reference under a dead-letter or on-failure key (bounded depth: a template is small,
    but anchors could make it a maze)."""
    if depth > _MAX_DEPTH:
        return
    if under:
        ref = reference(node)
        if ref:
            found.add(ref)
            return
    if node.is_map:
        for key, _, value in node.pairs():
            _failure_targets(value, found, under or bool(_FAILURE_KEY.search(key)), depth + 1)
    elif node.is_seq:
        for item in node.items():
            _failure_targets(item, found, under, depth + 1)


def _queue(logical_id: str, key: Node, resource: Node, path: str) -> Queue:
    properties = resource.get("Properties")
    if properties is not None and not properties.is_map:
        properties = None
    queue = Queue(logical_id, path, resource.src, resource, key.line_start, properties)
    redrive = properties.get("RedrivePolicy") if properties is not None else None
    if redrive is not None:
        if redrive.is_map:
            queue.redrive = redrive
            queue.dead_letter = reference(redrive.get("deadLetterTargetArn"))
            queue.max_receive = redrive.get("maxReceiveCount")
        else:
            queue.redrive_text = True  # a JSON string (or a parameter): a policy all the same
    return queue


def _window(props: Node) -> float:
    node = props.get("MaximumBatchingWindowInSeconds")
    value = node.number() if node is not None and node.is_scalar else None
    return value or 0.0


def _function(template: Template, logical_id: str, resource: Node, default_timeout: float,
              default_source: str) -> None:
    props = resource.get("Properties")
    node = props.get("Timeout") if props is not None else None
    value = node.number() if node is not None and node.is_scalar else None
    written = value is not None
    template.functions[logical_id] = Function(logical_id, value if written else default_timeout,
                                              node if written else None, "" if written else default_source)
    events = props.get("Events") if props is not None else None
    if events is None or not events.is_map:
        return
    for _, _, event in events.pairs():
        kind = event.get("Type")
        if kind is None or kind.text != "SQS":
            continue
        event_props = event.get("Properties")
        queue = reference(event_props.get("Queue")) if event_props is not None else None
        if queue:
            template.consumers.append(Consumer(queue, logical_id, _window(event_props)))


def _serverless_functions(template: Template, doc: Node) -> None:
    provider = doc.path("provider", "timeout")
    written = provider.number() if provider is not None else None
    default = written if written is not None else SERVERLESS_TIMEOUT_DEFAULT
    default_source = "provider" if written is not None else "default"
    functions = doc.get("functions")
    if functions is None or not functions.is_map:
        return
    for name, _, function in functions.pairs():
        if not function.is_map:
            continue
        node = function.get("timeout")
        value = node.number() if node is not None and node.is_scalar else None
        logical = f"serverless:{name}"
        template.functions[logical] = Function(logical, value if value is not None else default,
                                               node if value is not None else None,
                                               "" if value is not None else default_source)
        events = function.get("events")
        for event in (events.items() if events is not None and events.is_seq else []):
            sqs = event.get("sqs") if event.is_map else None
            if sqs is None:
                continue
            arn = sqs.get("arn") if sqs.is_map else sqs
            queue = reference(arn)
            if queue:
                window = sqs.get("maximumBatchingWindow") if sqs.is_map else None
                seconds = window.number() if window is not None and window.is_scalar else None
                template.consumers.append(Consumer(queue, logical, seconds or 0.0))
