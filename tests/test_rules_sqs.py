"""SQS in CloudFormation / SAM / Serverless templates (QLT801-QLT804), on templates shaped like real ones."""

from __future__ import annotations

from pathlib import Path

from qlint.lint.source import SourceFile
from qlint.manifests import collect
from tests.helpers import findings, fix, write_project

SAM = '''
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: Order processing

Parameters:
  Stage:
    Type: String
    Default: prod

Globals:
  Function:
    Runtime: python3.12
    Timeout: 120
    MemorySize: 512

Resources:
  OrdersQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${Stage}-orders"
      VisibilityTimeout: 300
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDLQ.Arn
        maxReceiveCount: 30
  OrdersDLQ:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${Stage}-orders-dlq"
  ProcessOrder:
    Type: AWS::Serverless::Function
    Properties:
      Handler: orders.handler
      Environment:
        Variables:
          API_KEY: "{{resolve:secretsmanager:orders-api:SecretString:key}}"
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt OrdersQueue.Arn
            BatchSize: 10
  Notifications:
    Type: AWS::SQS::Queue
  ProcessOrderFailures:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  ProcessOrderAsync:
    Type: AWS::Lambda::EventInvokeConfig
    Properties:
      FunctionName: !Ref ProcessOrder
      Qualifier: $LATEST
      DestinationConfig:
        OnFailure:
          Destination: !GetAtt ProcessOrderFailures.Arn
Outputs:
  QueueUrl:
    Value: !Ref OrdersQueue
'''


def test_a_sam_template_gets_each_finding_once(tmp_path):
    write_project(tmp_path, {"template.yaml": SAM})
    got = {(code, row) for _, row, code, _ in findings(tmp_path, ["QLT801", "QLT802", "QLT803", "QLT804"])}
    assert got == {
        ("QLT802", 24),  # maxReceiveCount: 30
        ("QLT803", 21),  # VisibilityTimeout 300 < 6 x 120 (Globals)
        ("QLT804", 25),  # the DLQ keeps 4 days, as its source
        ("QLT801", 42),  # Notifications: no redrive policy, no one's dead-letter queue
    }  # ProcessOrderFailures is the function's OnFailure destination: a dead-letter queue itself


def test_fixes_converge_and_keep_the_template_readable(tmp_path):
    write_project(tmp_path, {"template.yaml": SAM})
    outcome = fix(tmp_path, ["QLT801", "QLT802", "QLT803", "QLT804"])
    [text] = [f.text for f in outcome.fixed.values()]
    assert "      VisibilityTimeout: 720\n" in text and "        maxReceiveCount: 10\n" in text
    assert "    Properties:\n      MessageRetentionPeriod: 1209600\n      QueueName: !Sub \"${Stage}-orders-dlq\"\n" in text
    found = collect.read(SourceFile.from_text(Path(tmp_path / "template.yaml"), text))
    assert [sorted(t.queues) for t in found.templates] == [
        ["Notifications", "OrdersDLQ", "OrdersQueue", "ProcessOrderFailures"]]
    (tmp_path / "template.yaml").write_text(text)
    left = {code for _, _, code, _ in findings(tmp_path, ["QLT801", "QLT802", "QLT803", "QLT804"])}
    assert left == {"QLT801"}  # no fix: a dead-letter queue is a resource to design
    assert fix(tmp_path, ["QLT801", "QLT802", "QLT803", "QLT804"]).fixed == {}


def test_templates_are_not_helm_and_other_yaml_is_not_a_template(tmp_path):
    write_project(tmp_path, {
        "values.yaml": "resources:\n  limits:\n    cpu: 1\n",  # Helm values: not read as a template
        "ci.yml": "jobs:\n  test:\n    runs-on: ubuntu-latest\n",
        "template.yaml": "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                         "      QueueName: '{{resolve:ssm:/orders/queue-name}}'\n",
    })
    assert [(p, code) for p, _, code, _ in findings(tmp_path, ["QLT801"])] == [("template.yaml", "QLT801")]


def test_references_that_leave_the_template_judge_nothing(tmp_path):
    write_project(tmp_path, {"template.yaml": '''
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !Ref Visibility
      MessageRetentionPeriod: !FindInMap [Retention, !Ref Stage, Seconds]
      RedrivePolicy:
        deadLetterTargetArn: !ImportValue shared-dlq-arn
        maxReceiveCount: !Ref MaxReceives
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Orders.Arn
      FunctionName: !ImportValue other-stack-function
'''})
    assert findings(tmp_path, ["QLT801", "QLT802", "QLT803", "QLT804"]) == []


JSON_TEMPLATE = '''{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Resources": {
    "Orders": {
      "Type": "AWS::SQS::Queue",
      "Properties": {
        "VisibilityTimeout": 60,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["OrdersDead", "Arn"]}, "maxReceiveCount": 40}
      }
    },
    "OrdersDead": {
      "Type": "AWS::SQS::Queue",
      "Properties": {"QueueName": "orders-dead"}
    },
    "Handler": {
      "Type": "AWS::Lambda::Function",
      "Properties": {"Timeout": 30}
    },
    "Mapping": {
      "Type": "AWS::Lambda::EventSourceMapping",
      "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Orders", "Arn"]}, "FunctionName": {"Ref": "Handler"}}
    }
  }
}
'''


def test_a_json_template_is_read_and_fixed_only_where_a_value_is_replaced(tmp_path):
    write_project(tmp_path, {"infra/orders.template.json": JSON_TEMPLATE, "package.json": '{"Resources": 1}'})
    codes = ["QLT801", "QLT802", "QLT803", "QLT804"]
    got = sorted((path, row, code) for path, row, code, _ in findings(tmp_path, codes))
    assert got == [("infra/orders.template.json", 7, "QLT803"), ("infra/orders.template.json", 8, "QLT802"),
                   ("infra/orders.template.json", 11, "QLT804")]  # package.json is no template
    outcome = fix(tmp_path, codes)
    [text] = [f.text for f in outcome.fixed.values()]
    import json

    data = json.loads(text)  # still JSON
    props = data["Resources"]["Orders"]["Properties"]
    assert props["VisibilityTimeout"] == 180 and props["RedrivePolicy"]["maxReceiveCount"] == 10
    assert data["Resources"]["OrdersDead"]["Properties"] == {"QueueName": "orders-dead"}  # no key added to JSON


TERRAFORM = '''
resource "aws_sqs_queue" "orders" {
  name                       = "orders"
  visibility_timeout_seconds = 60 # one minute
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.orders_dlq.arn
    maxReceiveCount     = 50
  })
}

resource "aws_sqs_queue" "orders_dlq" {
  name = "orders-dlq"
}

resource "aws_sqs_queue" "emails" {
  name                      = "emails"
  message_retention_seconds = var.retention
}

resource "aws_sqs_queue" "reports" {
  name = "reports"
}

resource "aws_sqs_queue_redrive_policy" "reports" {
  queue_url = aws_sqs_queue.reports.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.orders_dlq.arn
    maxReceiveCount     = 4
  })
}

resource "aws_lambda_function" "handler" {
  function_name = "handler"
  timeout       = 120
  description   = "handles { orders } and \\"quotes\\""
  environment {
    variables = { MODE = "sqs" }
  }
}

resource "aws_lambda_event_source_mapping" "orders" {
  event_source_arn                   = aws_sqs_queue.orders.arn
  function_name                      = aws_lambda_function.handler.arn
  maximum_batching_window_in_seconds = 5
}

module "queue" {
  source     = "terraform-aws-modules/sqs/aws"
  create_dlq = false
}
'''


def test_terraform_queues_get_the_same_rules(tmp_path):
    write_project(tmp_path, {"infra/main.tf": TERRAFORM})
    codes = ["QLT801", "QLT802", "QLT803", "QLT804"]
    got = sorted((row, code, message) for path, row, code, message in findings(tmp_path, codes))
    assert [(row, code) for row, code, _ in got] == [(3, "QLT803"), (6, "QLT802"), (10, "QLT804"), (14, "QLT801")]
    assert "725 s" in got[0][2] and "`visibility_timeout_seconds`" in got[0][2]  # 6 x 120 s + the 5 s window
    assert "`redrive_policy`" in got[3][2]  # reports has one, in its own resource; the module is not read
    outcome = fix(tmp_path, codes)
    [text] = [f.text for f in outcome.fixed.values()]
    assert "  visibility_timeout_seconds = 725 # one minute\n" in text
    assert "    maxReceiveCount     = 10\n" in text
    assert 'resource "aws_sqs_queue" "orders_dlq" {\n  message_retention_seconds = 1209600\n  name = "orders-dlq"' in text
    import hcl2
    import io

    hcl2.load(io.StringIO(text))  # still Terraform
    (tmp_path / "infra/main.tf").write_text(text)
    assert {code for _, _, code, _ in findings(tmp_path, codes)} == {"QLT801"}


def test_without_the_hcl2_parser_terraform_is_skipped_and_verbose_says_so(tmp_path, monkeypatch, capsys):
    import sys

    from qlint.cli import main

    write_project(tmp_path, {"main.tf": TERRAFORM})
    (tmp_path / ".git").mkdir()
    monkeypatch.setitem(sys.modules, "hcl2", None)  # ``import hcl2`` raises ImportError
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--no-cache", "-v", "."]) == 0
    err = capsys.readouterr().err
    assert "main.tf" in err and "pip install 'qlint-tasks[terraform]'" in err


def test_terraform_module_shapes_count_instances_and_variables(tmp_path):
    """As terraform-aws-modules/sqs writes it: count-indexed references, a separate
    aws_sqs_queue_redrive_policy, values from variables (unknown, never a default)."""
    write_project(tmp_path, {"main.tf": '''
resource "aws_sqs_queue" "this" {
  count = var.create ? 1 : 0

  message_retention_seconds  = var.message_retention_seconds
  visibility_timeout_seconds = var.visibility_timeout_seconds
}

resource "aws_sqs_queue_redrive_policy" "this" {
  count = var.create && var.create_dlq ? 1 : 0

  queue_url = aws_sqs_queue.this[0].url
  redrive_policy = jsonencode(
    merge(
      {
        deadLetterTargetArn = var.create_dlq ? aws_sqs_queue.dlq[0].arn : var.redrive_policy.deadLetterTargetArn
        maxReceiveCount     = 10
      },
      var.redrive_policy
    )
  )
}

resource "aws_sqs_queue" "dlq" {
  count = var.create && var.create_dlq ? 1 : 0

  message_retention_seconds = try(coalesce(var.dlq_message_retention_seconds, var.message_retention_seconds), null)
}
'''})
    assert findings(tmp_path, ["QLT801", "QLT802", "QLT803", "QLT804"]) == []
