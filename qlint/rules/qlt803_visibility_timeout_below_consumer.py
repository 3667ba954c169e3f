from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.cloudformation import (
    CONSUMER_FACTOR,
    VISIBILITY_DEFAULT,
    VISIBILITY_MAX,
)
from qlint.rules._sqs import duration, named, queue_file, queues, set_property


@register
class VisibilityTimeoutBelowConsumer(Rule):
    """## What it does
    Checks for an SQS queue consumed by a Lambda function (an `AWS::Lambda::EventSourceMapping`,
    a SAM `Events` entry of `Type: SQS`, a Serverless Framework `sqs` event, or Terraform's
    `aws_lambda_event_source_mapping`, in the same file) whose visibility timeout (30 s unless set) is below six times the function's
    timeout (3 s unless set; Serverless Framework's 6 s), plus its batching window.

    ## Why is this bad?
    A received message is hidden for the visibility timeout; if it has not been deleted by
    then, it is received again, while the first invocation may still be working on it. AWS
    asks for at least six times the function's timeout so that the Lambda service can retry a
    throttled batch before the messages reappear: below it, messages of a slow or throttled
    batch are processed twice (a charge made twice, an e-mail sent twice) and count receives
    toward the dead-letter queue without having failed. A visibility timeout below the
    function's timeout itself is refused when the mapping is created.

    ## Example
    ```yaml
    Resources:
      Orders:
        Type: AWS::SQS::Queue
      HandleOrder:
        Type: AWS::Serverless::Function
        Properties:
          Timeout: 60
          Events:
            Queue:
              Type: SQS
              Properties:
                Queue: !GetAtt Orders.Arn
    ```

    Use instead:
    ```yaml
    Resources:
      Orders:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: 360
    ```

    ## Known problems
    Consumers in another template or stack, and Celery, Dramatiq or Taskiq workers reading the
    queue through an `sqs://` broker, are not joined yet.

    ## Fix safety
    The fix sets `VisibilityTimeout` to six times the longest consumer's timeout plus its
    batching window (at most 43,200 s), adding `Properties` when the queue has none. It is
    unsafe: a message whose consumer crashed now waits that long before another consumer
    receives it.

    ## References
    - [AWS Lambda: Using Lambda with Amazon SQS (queue configuration)](https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)
    - [Amazon SQS visibility timeout](https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html)
    """

    code = "QLT803"
    name = "visibility-timeout-below-consumer"
    summary = "An SQS queue's visibility timeout is below six times its Lambda consumer's timeout"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("sqs",)

    VALID = [
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
  HandleOrder:
    Type: AWS::Lambda::Function
    Properties:
      Timeout: 60
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Orders.Arn
      FunctionName: !Ref HandleOrder
"""}, note="six times the timeout"),
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
  HandleOrder:
    Type: AWS::Lambda::Function
    Properties:
      Timeout: 5
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Orders.Arn
      FunctionName: !Ref HandleOrder
"""}, note="30 s (the default) covers a 5 s function"),
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Orders.Arn
      FunctionName: arn:aws:lambda:eu-west-1:123456789012:function:other-stack
"""}, note="a consumer outside the template: its timeout is unknown"),
    ]
    INVALID = [
        Invalid({"template.yaml": """
Globals:
  Function:
    Timeout: 60
Resources:
  Orders:
    Type: AWS::SQS::Queue
  HandleOrder:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
"""}, expect=[("template.yaml", 5)], message="60 s timeout (from `Globals`) of its consumer `HandleOrder`",
            fixed={"template.yaml": """
Globals:
  Function:
    Timeout: 60
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
  HandleOrder:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
"""}, note="SAM: the Globals' timeout; no Properties yet"),
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 120
  HandleOrder:
    Type: AWS::Lambda::Function
    Properties:
      Timeout: 300
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: {"Fn::GetAtt": ["Orders", "Arn"]}
      FunctionName: {"Ref": "HandleOrder"}
      MaximumBatchingWindowInSeconds: 10
"""}, expect=[("template.yaml", 5)], message="even below the function's own timeout", fixed={"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1810
  HandleOrder:
    Type: AWS::Lambda::Function
    Properties:
      Timeout: 300
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: {"Fn::GetAtt": ["Orders", "Arn"]}
      FunctionName: {"Ref": "HandleOrder"}
      MaximumBatchingWindowInSeconds: 10
"""}, note="an event source mapping in JSON intrinsics, a batching window"),
        Invalid({"serverless.yml": """
service: orders
provider:
  name: aws
functions:
  handle:
    handler: handler.main
    timeout: 30
    events:
      - sqs:
          arn: !GetAtt Orders.Arn
resources:
  Resources:
    Orders:
      Type: AWS::SQS::Queue
      Properties:
        VisibilityTimeout: 60
"""}, expect=[("serverless.yml", 16)], message="180 s", fixed={"serverless.yml": """
service: orders
provider:
  name: aws
functions:
  handle:
    handler: handler.main
    timeout: 30
    events:
      - sqs:
          arn: !GetAtt Orders.Arn
resources:
  Resources:
    Orders:
      Type: AWS::SQS::Queue
      Properties:
        VisibilityTimeout: 180
"""}, note="Serverless Framework"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for template, queue in queues(ctx.project):
            needs = []
            for consumer in template.consumers:
                function = template.functions.get(consumer.function)
                if consumer.queue == queue.logical_id and function is not None:
                    needs.append((function.timeout * CONSUMER_FACTOR + consumer.window, function, consumer))
            if not needs:
                continue
            need, function, consumer = max(needs, key=lambda n: n[0])
            visibility, node = queue.number("VisibilityTimeout")
            if node is not None and visibility is None:
                continue  # a parameter or an intrinsic: not known here
            current = visibility if visibility is not None else VISIBILITY_DEFAULT
            if current >= need:
                continue
            name = function.logical_id.removeprefix("serverless:")
            where = ", SQS's default," if visibility is None else ","
            seconds = f"{function.timeout:g} s"
            timeout = {"": f"{seconds} timeout", "default": f"{seconds} default timeout",
                       "Globals": f"{seconds} timeout (from `Globals`)",
                       "provider": f"{seconds} timeout (from `provider`)"}[function.source]
            window = f" plus its {duration(consumer.window)} batching window" if consumer.window else ""
            worse = (", and even below the function's own timeout, so a message is received again while its "
                     "first invocation still runs") if current < function.timeout else ""
            value = int(min(need, VISIBILITY_MAX))
            message = (f"SQS queue `{queue.logical_id}` hides a received message for {duration(current)}{where} less "
                       f"than six times the {timeout} of its consumer `{name}`{window}, {duration(need)}{worse}: a "
                       "slow or throttled batch is received and processed again before it is deleted; set "
                       f"`{named(queue, 'VisibilityTimeout')}` to at least {value}")
            ctx.report(queue_file(queue), node.span if node is not None else queue.anchor, message,
                       fix=self._fix(ctx, queue, value))

    @staticmethod
    def _fix(ctx: RuleContext, queue, value: int):
        edits = set_property(ctx.sources[queue.path], queue, "VisibilityTimeout", str(value))
        return ctx.fix(queue_file(queue), f"Set `{named(queue, 'VisibilityTimeout')}` to {value}", edits) \
            if edits else None
