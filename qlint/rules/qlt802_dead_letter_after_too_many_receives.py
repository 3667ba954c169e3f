from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._sqs import queue_file, queues


@register
class DeadLetterAfterTooManyReceives(Rule):
    """## What it does
    Checks for an SQS redrive policy (CloudFormation's `RedrivePolicy`, Terraform's
    `redrive_policy` or `aws_sqs_queue_redrive_policy`) whose `maxReceiveCount` is above the
    `max-receive-count` setting (10 unless configured).

    ## Why is this bad?
    `maxReceiveCount` is how many times a message is received, and fails, before SQS moves it
    to the dead-letter queue. A message that fails every time (a poison message) is processed
    that many times first: each attempt takes a consumer for up to its timeout and waits a
    visibility timeout before the next, so with a high count it holds a share of the consumers
    for hours and reaches the dead-letter queue, and its alarm, long after the failure began.
    Transient failures are retried by the consumer itself or need only a few receives.

    ## Example
    ```yaml
    Resources:
      Orders:
        Type: AWS::SQS::Queue
        Properties:
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt OrdersDead.Arn
            maxReceiveCount: 100
    ```

    Use instead:
    ```yaml
    Resources:
      Orders:
        Type: AWS::SQS::Queue
        Properties:
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt OrdersDead.Arn
            maxReceiveCount: 5
    ```

    ## Fix safety
    The fix sets `maxReceiveCount` to `max-receive-count`. It is unsafe: a consumer that relies
    on many receives to get through a long outage (rather than retrying itself) now sends those
    messages to the dead-letter queue sooner, where they wait to be redriven.

    ## Options
    - `max-receive-count`

    ## References
    - [Amazon SQS dead-letter queues: maxReceiveCount](https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html)
    """

    code = "QLT802"
    name = "dead-letter-after-too-many-receives"
    summary = "A redrive policy lets a failing message be received many times before it reaches the dead-letter queue"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("sqs",)

    VALID = [
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 10
  OrdersDead:
    Type: AWS::SQS::Queue
"""}, note="at the setting's value"),
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: !Ref MaxReceives
  OrdersDead:
    Type: AWS::SQS::Queue
"""}, note="a parameter: its value is not in the template"),
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: '{"deadLetterTargetArn": "arn:aws:sqs:eu-west-1:123456789012:dlq", "maxReceiveCount": 50}'
"""}, note="a JSON string is not read: no guess at its count"),
    ]
    INVALID = [
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 100  # as many as it takes
  OrdersDead:
    Type: AWS::SQS::Queue
"""}, expect=[("template.yaml", 7)], message="received 100 times", fixed={"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 10  # as many as it takes
  OrdersDead:
    Type: AWS::SQS::Queue
"""}),
        Invalid({"serverless.yml": """
service: orders
resources:
  Resources:
    Orders:
      Type: AWS::SQS::Queue
      Properties:
        RedrivePolicy: {deadLetterTargetArn: {"Fn::GetAtt": [OrdersDead, Arn]}, maxReceiveCount: "50"}
    OrdersDead:
      Type: AWS::SQS::Queue
"""}, expect=[("serverless.yml", 7)], message="50", note="a flow mapping and a quoted count: reported, no fix"),
        Invalid({"main.tf": """
resource "aws_sqs_queue" "orders" {
  name = "orders"
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.orders_dlq.arn
    maxReceiveCount     = 100
  })
}

resource "aws_sqs_queue" "orders_dlq" {
  name = "orders-dlq"
}
"""}, expect=[("main.tf", 5)], message="received 100 times", fixed={"main.tf": """
resource "aws_sqs_queue" "orders" {
  name = "orders"
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.orders_dlq.arn
    maxReceiveCount     = 10
  })
}

resource "aws_sqs_queue" "orders_dlq" {
  name = "orders-dlq"
}
"""}, note="Terraform"),
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        maxReceiveCount: 25
        deadLetterTargetArn: arn:aws:sqs:eu-west-1:123456789012:shared-dlq
"""}, expect=[("template.yaml", 6)], message="received 25 times", fixed={"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        maxReceiveCount: 10
        deadLetterTargetArn: arn:aws:sqs:eu-west-1:123456789012:shared-dlq
"""}, note="a dead-letter queue named by its ARN"),
    ]

    def check(self, ctx: RuleContext) -> None:
        limit = ctx.settings.max_receive_count
        for _, queue in queues(ctx.project):
            node = queue.max_receive
            count = node.number() if node is not None and node.is_scalar else None
            if count is None or count <= limit:
                continue
            fix = None
            text = ctx.sources[queue.path].utf8[node.span.start:node.span.end]
            if text.strip().isdigit():  # a number written as such (YAML, JSON, Terraform): replaced in place
                fix = ctx.fix(queue_file(queue), f"Set `maxReceiveCount` to {limit}",
                              [Edit(node.span.start, node.span.end, str(limit))])
            ctx.report(queue_file(queue), node.span,
                       f"SQS queue `{queue.logical_id}` moves a message to its dead-letter queue only after it is "
                       f"received {int(count)} times: a message that fails every time takes a consumer that many "
                       f"times, a visibility timeout apart, before anyone is told; at most {limit} "
                       "(`max-receive-count`)", fix=fix)

