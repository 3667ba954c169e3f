from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.cloudformation import RETENTION_DEFAULT, RETENTION_MAX
from qlint.rules._sqs import duration, named, queue_file, queues, set_property


@register
class DeadLetterRetentionShorter(Rule):
    """## What it does
    Checks for an SQS dead-letter queue (the target of a redrive policy in the same template or
    Terraform file) whose `MessageRetentionPeriod` (`message_retention_seconds`) is not longer
    than its source queue's (both 4 days unless
    set).

    ## Why is this bad?
    A message keeps its original enqueue time when it moves to the dead-letter queue, and the
    dead-letter queue's retention counts from that time. With a retention no longer than the
    source's, a message that spent most of its life being retried in the source expires in the
    dead-letter queue soon after it arrives, or on arrival: the failure the dead-letter queue
    exists to keep is deleted before anyone looks. AWS's guidance is to make a dead-letter
    queue's retention longer than its source's.

    ## Example
    ```yaml
    Resources:
      Orders:
        Type: AWS::SQS::Queue
        Properties:
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt OrdersDead.Arn
            maxReceiveCount: 5
      OrdersDead:
        Type: AWS::SQS::Queue
    ```

    Use instead:
    ```yaml
    Resources:
      OrdersDead:
        Type: AWS::SQS::Queue
        Properties:
          MessageRetentionPeriod: 1209600
    ```

    ## Fix safety
    The fix sets the dead-letter queue's `MessageRetentionPeriod` to 1,209,600 s (14 days, the
    most SQS keeps a message), adding `Properties` when the queue has none; there is no fix when
    the source already keeps messages that long. It is unsafe: failed messages are kept, and
    billed, for longer.

    ## References
    - [Amazon SQS dead-letter queues: message retention](https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html)
    """

    code = "QLT804"
    name = "dead-letter-retention-shorter"
    summary = "A dead-letter queue keeps messages no longer than its source: failures expire on arrival"
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
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
"""}, note="14 days against the source's 4"),
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: arn:aws:sqs:eu-west-1:123456789012:shared-dlq
        maxReceiveCount: 5
"""}, note="a dead-letter queue outside the template: its retention is unknown"),
        Valid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: !Ref Retention
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
"""}, note="a retention given as a parameter: not known here"),
    ]
    INVALID = [
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
"""}, expect=[("template.yaml", 8)], message="both keep SQS's default", fixed={"template.yaml": """
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
"""}, note="both at the default: no Properties yet"),
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 604800
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 172800
"""}, expect=[("template.yaml", 12)], message="172800 s (2 days) against 604800 s (7 days)", fixed={"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 604800
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
"""}),
        Invalid({"template.yaml": """
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDead.Arn
        maxReceiveCount: 5
  OrdersDead:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
"""}, expect=[("template.yaml", 12)], message="14 days", note="the source keeps the most SQS allows: no fix"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for template, source in queues(ctx.project):
            target = template.queues.get(source.dead_letter or "")
            if target is None or target is source:
                continue
            kept, kept_node = source.number("MessageRetentionPeriod")
            dead, dead_node = target.number("MessageRetentionPeriod")
            if kept_node is not None and kept is None or dead_node is not None and dead is None:
                continue  # a parameter or an intrinsic
            kept_s = kept if kept is not None else RETENTION_DEFAULT
            dead_s = dead if dead is not None else RETENTION_DEFAULT
            if dead_s > kept_s:
                continue
            if kept is None and dead is None:
                both = f"both keep SQS's default of {duration(RETENTION_DEFAULT)}"
            else:
                both = (f"{duration(dead_s)}{' by default' if dead is None else ''} against "
                        f"{duration(kept_s)}{' by default' if kept is None else ''}")
            message = (f"Dead-letter queue `{target.logical_id}` keeps messages no longer than its source "
                       f"`{source.logical_id}`, {both}: a message keeps its enqueue time when it moves, so one that "
                       "spent its life being retried expires in the dead-letter queue soon after it arrives; make "
                       f"its `{named(target, 'MessageRetentionPeriod')}` longer")
            ctx.report(queue_file(target), dead_node.span if dead_node is not None else target.anchor, message,
                       fix=self._fix(ctx, target, kept_s))

    @staticmethod
    def _fix(ctx: RuleContext, target, kept_s: float):
        if kept_s >= RETENTION_MAX:
            return None
        edits = set_property(ctx.sources[target.path], target, "MessageRetentionPeriod", str(RETENTION_MAX))
        return ctx.fix(queue_file(target), "Keep dead letters 14 days", edits) if edits else None
