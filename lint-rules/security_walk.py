"""ECS Autopilot's security walk, as a cfn-lint rule (`make test` runs it over template.yaml,
after cfn-lint's own SAM transform, and member-template.yaml; `lint-rules/insecure.yaml` is the
template it must refuse).

E9001 refuses:
- an allowed action that is not a read on `Resource: "*"`;
- `iam:PassRole` (or `iam:*`, `*`) allowed without an `iam:PassedToService` condition;
- an SQS queue without server-side encryption (`SqsManagedSseEnabled` or `KmsMasterKeyId`) and
  an SNS topic without `KmsMasterKeyId` (DynamoDB encrypts every table at rest: no table fails).

Policies are read from roles' inline policies, SAM functions' inline policy documents (the rule
sees the template before the transform) and AWS::IAM::Policy, RolePolicy and ManagedPolicy
resources; a statement under Fn::If counts in both branches.
"""

from cfnlint.rules import CloudFormationLintRule, RuleMatch

READ_VERBS = ("Describe", "List", "Get", "BatchGet", "Query", "Scan")
PASSING = ("iam:PassRole", "iam:*", "*")


def _items(value):
    """The items of a list (or the value), both branches of an Fn::If, no AWS::NoValue."""
    if isinstance(value, list):
        return [item for element in value for item in _items(element)]
    if isinstance(value, dict) and "Fn::If" in value:
        branches = value["Fn::If"]
        return [item for branch in branches[1:] for item in _items(branch)]
    if isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
        return []
    return [value]


class SecurityWalk(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "ECS Autopilot security walk"
    description = (
        "No write on Resource '*', iam:PassRole only with iam:PassedToService, "
        "queues and topics encrypted"
    )
    source_url = "https://github.com/ecs-autopilot"
    tags = ["iam", "security", "encryption"]

    def match(self, cfn):
        matches = []
        for logical_id, resource in cfn.template.get("Resources", {}).items():
            kind = resource.get("Type", "")
            properties = resource.get("Properties", {}) or {}
            path = ["Resources", logical_id]
            if kind == "AWS::SQS::Queue":
                if properties.get("SqsManagedSseEnabled") is not True and "KmsMasterKeyId" not in properties:
                    matches.append(RuleMatch(path, f"{logical_id}: queue without server-side encryption"))
                continue
            if kind == "AWS::SNS::Topic":
                if "KmsMasterKeyId" not in properties:
                    matches.append(RuleMatch(path, f"{logical_id}: topic without KmsMasterKeyId"))
                continue
            if kind == "AWS::IAM::Role":
                documents = [p.get("PolicyDocument", {}) for p in _items(properties.get("Policies", [])) if isinstance(p, dict)]
            elif kind == "AWS::Serverless::Function":
                # Before the SAM transform: inline policy documents in Policies.
                documents = [p for p in _items(properties.get("Policies", [])) if isinstance(p, dict) and "Statement" in p]
            elif kind in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy"):
                documents = [properties.get("PolicyDocument", {})]
            else:
                continue
            for document in documents:
                if not isinstance(document, dict):
                    continue
                for statement in _items(document.get("Statement", [])):
                    if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                        continue
                    sid = statement.get("Sid", "-")
                    on_any = "*" in [r for r in _items(statement.get("Resource", [])) if isinstance(r, str)]
                    condition = statement.get("Condition", {}) or {}
                    conditioned = any(
                        isinstance(keys, dict) and "iam:PassedToService" in keys
                        for keys in condition.values()
                    )
                    for action in _items(statement.get("Action", [])):
                        if not isinstance(action, str):
                            continue
                        verb = action.split(":", 1)[-1]
                        if on_any and not verb.startswith(READ_VERBS):
                            matches.append(RuleMatch(path, f"{logical_id}/{sid}: {action} on *"))
                        if action in PASSING and not conditioned:
                            matches.append(
                                RuleMatch(path, f"{logical_id}/{sid}: {action} without iam:PassedToService")
                            )
        return matches
