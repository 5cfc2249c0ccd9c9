"""ECS Autopilot's security walk, as a cfn-lint rule (`make test` runs it over template.yaml,
after cfn-lint's own SAM transform, and member-template.yaml; `lint-rules/insecure.yaml` is the
template it must refuse).

E9001 refuses:
- an allowed action that is not a read on `Resource: "*"`;
- `iam:PassRole` (or `iam:*`, `*`) allowed without an `iam:PassedToService` condition;
- an SQS queue without server-side encryption (`SqsManagedSseEnabled` or `KmsMasterKeyId`) and
  an SNS topic without `KmsMasterKeyId` (DynamoDB encrypts every table at rest: no table fails);
- `sts:AssumeRole` allowed on a role of any account (`iam::*`) without an `aws:ResourceAccount`
  or `aws:ResourceOrgID` condition;
- a role trusting an AWS principal by wildcard (`role/*` in the principal or in its
  `aws:PrincipalArn` condition), or an account's root with no exact `aws:PrincipalArn`.

Policies are read from roles' inline policies, SAM functions' inline policy documents (the rule
sees the template before the transform) and AWS::IAM::Policy, RolePolicy and ManagedPolicy
resources; a statement under Fn::If counts in both branches.
"""

from cfnlint.rules import CloudFormationLintRule, RuleMatch

READ_VERBS = ("Describe", "List", "Get", "BatchGet", "Query", "Scan")
PASSING = ("iam:PassRole", "iam:*", "*")


def _text(value):
    """The text of a string or of an Fn::Sub's template, else ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        template = value["Fn::Sub"]
        return template[0] if isinstance(template, list) and template else _text(template)
    return ""


def _condition_keys(condition):
    """The condition keys of a statement's Condition (both branches of an Fn::If)."""
    keys = {}
    for block in _items(condition or {}):
        if not isinstance(block, dict):
            continue
        for operator, values in block.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    keys.setdefault(key, []).extend(_items(value))
    return keys


def _trust_findings(logical_id, document):
    """What is wrong with a role's trust policy: AWS principals by wildcard or bare roots."""
    findings = []
    for statement in _items((document or {}).get("Statement", [])):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        named = _items(principal.get("AWS", [])) if isinstance(principal, dict) else [principal]
        narrowed = _condition_keys(statement.get("Condition")).get("aws:PrincipalArn", [])
        for text in [_text(value) for value in named + narrowed]:
            if "*" in text:
                findings.append(f"{logical_id}: trusts {text}")
        if any(_text(value).endswith(":root") for value in named) and not narrowed:
            findings.append(f"{logical_id}: trusts an account's root with no aws:PrincipalArn")
    return findings


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
                for finding in _trust_findings(logical_id, properties.get("AssumeRolePolicyDocument")):
                    matches.append(RuleMatch(path, finding))
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
                        any_account = any(
                            ":iam::*:" in _text(r) for r in _items(statement.get("Resource", []))
                        )
                        keys = _condition_keys(condition)
                        if (
                            action in ("sts:AssumeRole", "sts:*", "*")
                            and any_account
                            and not ({"aws:ResourceAccount", "aws:ResourceOrgID"} & set(keys))
                        ):
                            matches.append(
                                RuleMatch(path, f"{logical_id}/{sid}: {action} in any account")
                            )
                        if action in PASSING and not conditioned:
                            matches.append(
                                RuleMatch(path, f"{logical_id}/{sid}: {action} without iam:PassedToService")
                            )
        return matches
