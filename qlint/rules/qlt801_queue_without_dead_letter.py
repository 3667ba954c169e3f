from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.cloudformation import RETENTION_DEFAULT
from qlint.rules._sqs import duration, named, queue_file, queues


@register
class QueueWithoutDeadLetter(Rule):
    """## What it does
    Checks for an SQS queue (`AWS::SQS::Queue` in a CloudFormation, SAM or Serverless
    Framework template, YAML or JSON; `aws_sqs_queue` in Terraform, read when the optional
    `python-hcl2` parser is installed) with no `RedrivePolicy` (`redrive_policy`, or an
    `aws_sqs_queue_redrive_policy` resource), that is not itself a dead-letter queue: the
    target of another queue's redrive policy, or of a dead-letter or on-failure setting of
    another resource of the template (a Lambda function's `DeadLetterConfig`, SAM's
    `DeadLetterQueue`, an EventBridge target's `DeadLetterConfig`, an `OnFailure` destination).

    ## Why is this bad?
    Without a redrive policy, a message its consumer fails on every time (a poison message:
    a payload the code cannot handle, a record that no longer exists) becomes visible again
    after each visibility timeout and is received again, for as long as the queue keeps it:
    the retention period, 4 days unless set. It takes a consumer's time on every receive, and
    when the period ends SQS deletes it without a trace. A dead-letter queue moves it aside
    after `maxReceiveCount` receives, where it can be inspected, alarmed on and redriven.

    ## Example
    ```yaml
    Resources:
      OrdersQueue:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: 180
    ```

    Use instead:
    ```yaml
    Resources:
      OrdersQueue:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: 180
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt OrdersDeadLetterQueue.Arn
            maxReceiveCount: 5
      OrdersDeadLetterQueue:
        Type: AWS::SQS::Queue
        Properties:
          MessageRetentionPeriod: 1209600
    ```

    ## Known problems
    A queue whose dead-letter target is set outside the template (a `RedrivePolicy` applied
    by another stack or by the console) is reported. A `RedrivePolicy` written as a JSON
    string or a parameter counts as a policy. A queue a Terraform module creates is not seen.

    ## Fix safety
    There is no fix: a dead-letter queue is a new resource with a name, a retention period
    and an alarm of its own to choose.

    ## References
    - [Amazon SQS dead-letter queues](https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html)
    - [AWS::SQS::Queue](https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queue.html)
    """

    code = "QLT801"
    name = "queue-without-dead-letter"
    summary = "An SQS queue has no dead-letter queue: a message that always fails is received until it expires"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("sqs",)

    VALID = [
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
"""}, note="a redrive policy, and the dead-letter queue it names is no finding either"),
        Valid({"template.yaml": """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: '{"deadLetterTargetArn": "arn:aws:sqs:eu-west-1:123456789012:orders-dlq", "maxReceiveCount": 5}'
"""}, note="a policy written as a JSON string"),
        Valid({"serverless.yml": """
service: orders
functions:
  handle:
    handler: handler.main
resources:
  Resources:
    Orders:
      Type: AWS::SQS::Queue
      Properties:
        RedrivePolicy:
          deadLetterTargetArn:
            Fn::GetAtt: [OrdersDead, Arn]
          maxReceiveCount: 3
    OrdersDead:
      Type: AWS::SQS::Queue
"""}, note="Serverless Framework, the JSON form of GetAtt"),
        Valid({"template.yaml": """
Resources:
  Handler:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      DeadLetterQueue:
        Type: SQS
        TargetArn: !GetAtt HandlerFailures.Arn
  HandlerFailures:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  Rule:
    Type: AWS::Events::Rule
    Properties:
      Targets:
        - Arn: !GetAtt Handler.Arn
          Id: "1"
          DeadLetterConfig:
            Arn: !GetAtt RuleFailures.Arn
  RuleFailures:
    Type: AWS::SQS::Queue
"""}, note="queues that are a Lambda's and an EventBridge rule's dead-letter queues"),
        Valid({"tests/template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
"""}, note="a template for tests is not production"),
        Valid({"template.yaml": """
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""}, note="no queue"),
    ]
    INVALID = [
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 180
"""}, expect=[("template.yaml", 2)], message="4 days"),
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 86400
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  Emails:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 86400
"""}, expect=[("template.yaml", 13)], message="86400 s (1 day)", note="one queue of three has none"),
        Invalid({"infra/queues.tf": """
resource "aws_sqs_queue" "emails" {
  name = "emails"
}

resource "aws_sqs_queue" "orders" {
  name           = "orders"
  redrive_policy = jsonencode({ deadLetterTargetArn = aws_sqs_queue.orders_dlq.arn, maxReceiveCount = 5 })
}

resource "aws_sqs_queue" "orders_dlq" {
  name                      = "orders-dlq"
  message_retention_seconds = 1209600
}
"""}, expect=[("infra/queues.tf", 1)], message="`redrive_policy`", note="Terraform"),
        Invalid({"serverless.yml": """
service: orders
functions:
  handle:
    handler: handler.main
    events:
      - sqs:
          arn: !GetAtt Orders.Arn
resources:
  Resources:
    Orders:
      Type: AWS::SQS::Queue
"""}, expect=[("serverless.yml", 10)], note="Serverless Framework: a consumed queue with no dead letters"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for template, queue in queues(ctx.project):
            if queue.redrive is not None or queue.redrive_text or queue.logical_id in template.targets():
                continue
            retention, written = queue.number("MessageRetentionPeriod")
            if retention is not None:
                kept = duration(retention)
            elif written is not None:
                kept = "its retention period"  # a variable, a parameter: not known here
            else:
                kept = f"{duration(RETENTION_DEFAULT)} by SQS's default"
            ctx.report(queue_file(queue), queue.anchor,
                       f"SQS queue `{queue.logical_id}` has no redrive policy and is no dead-letter queue itself: a "
                       "message its consumer fails on every time is received again after each visibility timeout for "
                       f"as long as the queue keeps it, {kept}, then deleted without a trace; add a dead-letter "
                       f"queue (`{named(queue, 'RedrivePolicy')}` with `deadLetterTargetArn` and `maxReceiveCount`)")
