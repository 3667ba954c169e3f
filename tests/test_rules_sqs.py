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
