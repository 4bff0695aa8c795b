"""The AWS resources a user must create, as CloudFormation: valid by cfn-lint and wired as the handler expects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import PROJECT_ROOT

TEMPLATES = sorted((PROJECT_ROOT / "deploy" / "cloudformation").glob("*.yaml"))
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt and the other short-form intrinsics as plain tagged values."""


_CloudFormationLoader.add_multi_constructor("!", lambda loader, tag, node: {
    tag: loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
    else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node)})


def test_every_template_passes_cfn_lint():
    assert TEMPLATES, "no CloudFormation templates found"
    result = subprocess.run([CFN_LINT, *map(str, TEMPLATES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_feedback_template_publishes_the_four_events_to_a_queue_only_its_topic_can_write():
    template = yaml.load((PROJECT_ROOT / "deploy" / "cloudformation" / "ses-feedback.yaml").read_text(),
                         Loader=_CloudFormationLoader)
    resources = template["Resources"]
    destination = resources["FeedbackEventDestination"]["Properties"]["EventDestination"]
    assert sorted(destination["MatchingEventTypes"]) == ["bounce", "complaint", "delivery", "reject"]
    assert destination["SnsDestination"]["TopicARN"] == {"Ref": "FeedbackTopic"}
    subscription = resources["FeedbackSubscription"]["Properties"]
    assert subscription["Protocol"] == "sqs" and subscription["RawMessageDelivery"] is False
    [statement] = resources["FeedbackQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Ref": "FeedbackTopic"}
    assert resources["FeedbackQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] > 1
