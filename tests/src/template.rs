//! Deploys `template.yaml` itself on the local cloud: each function's bootstrap zipped and put
//! in the local S3, its `CodeUri` pointed there (a rewrite that knows which resource a line
//! belongs to and keeps everything else, short-form tags included), then CreateStack with the
//! scene's parameters (the local cloud's CloudFormation applies the SAM transform with
//! aws-sam-translator) and the stack's outputs and resources read back.

use std::collections::BTreeMap;
use std::time::Duration;

use autopilot_dist::template::{indent_of, resource_lines, with_code_uris};
pub use autopilot_dist::template_text;
use aws_sdk_cloudformation::error::DisplayErrorContext;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::{workspace, LocalCloud, Result};

/// The bucket the bootstraps are put in.
pub const ARTIFACTS_BUCKET: &str = "autopilot-artifacts";

/// A resource of the deployed stack.
#[derive(Debug, Clone)]
pub struct StackResource {
    pub resource_type: String,
    pub physical_id: String,
}

/// The deployed stack: its outputs and resources by logical id.
#[derive(Debug, Clone)]
pub struct DeployedStack {
    pub name: String,
    pub outputs: BTreeMap<String, String>,
    pub resources: BTreeMap<String, StackResource>,
    /// Each function's code location, as deployed.
    pub code: BTreeMap<String, String>,
    /// The parameters given.
    pub parameters: BTreeMap<String, String>,
    /// Resources the parameters turn on that the local cloud cannot deploy
    /// ([`LOCAL_CLOUD_LACKS`]): left out, so a test using those parameters states it.
    pub not_deployed: Vec<String>,
}

impl DeployedStack {
    pub fn output(&self, key: &str) -> Result<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("stack {} has no output {key}", self.name))
    }

    /// The physical id of the resource `logical_id`.
    pub fn physical_id(&self, logical_id: &str) -> Result<&str> {
        self.resources
            .get(logical_id)
            .map(|r| r.physical_id.as_str())
            .ok_or_else(|| format!("stack {} has no resource {logical_id}", self.name))
    }

    /// Logical ids of the resources of `resource_type`.
    pub fn of_type(&self, resource_type: &str) -> Vec<&str> {
        self.resources
            .iter()
            .filter(|(_, r)| r.resource_type == resource_type)
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

/// The text of `file` in the workspace.
fn workspace_file(file: &str) -> Result<String> {
    let path = workspace().join(file);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The resources whose own `Type` (directly under them) is one of `types`.
fn resources_of_types<'t>(template: &'t str, types: &[&str]) -> Vec<&'t str> {
    resource_lines(template)
        .into_iter()
        .filter(|(_, line)| {
            indent_of(line) == 4
                && line
                    .trim()
                    .strip_prefix("Type: ")
                    .is_some_and(|t| types.contains(&t))
        })
        .filter_map(|(id, _)| id)
        .collect()
}

/// Logical ids of the template's `AWS::Serverless::Function` resources.
pub fn serverless_functions(template: &str) -> Vec<String> {
    resources_of_types(template, &["AWS::Serverless::Function"])
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Resource types the local cloud's CloudFormation does not know: it refuses a template that
/// holds one even under a false condition.
pub const LOCAL_CLOUD_LACKS: [&str; 1] = ["AWS::Events::EventBusPolicy"];

/// `template` without the resources of `types` (whole blocks under `Resources`), and their
/// logical ids.
pub fn without_resource_types(template: &str, types: &[&str]) -> (String, Vec<String>) {
    let dropped = resources_of_types(template, types);
    let mut out = String::with_capacity(template.len());
    for (id, line) in resource_lines(template) {
        if !id.is_some_and(|id| dropped.contains(&id)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    (out, dropped.into_iter().map(str::to_owned).collect())
}

/// Puts `body` at `s3://bucket/key` on the local cloud (the bucket is created first; a bucket
/// that exists is fine).
async fn put_object(cloud: &LocalCloud, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for (path, body) in [
        (format!("/{bucket}"), Vec::new()),
        (format!("/{bucket}/{key}"), body),
    ] {
        let request = hyper::Request::put(format!("{}{path}", cloud.endpoint))
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("S3 PUT {path}: {e}"))?;
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("S3 PUT {path}: {e}"))?;
        let status = response.status();
        if !status.is_success() && status.as_u16() != 409 {
            return Err(format!("S3 PUT {path}: HTTP {status}"));
        }
    }
    Ok(())
}

/// Deploys `template.yaml` as stack `name` with the given function packages (logical id →
/// zipped bootstrap) and parameters, and waits for CREATE_COMPLETE.
pub async fn deploy(
    cloud: &LocalCloud,
    name: &str,
    packages: Vec<(&str, Vec<u8>)>,
    parameters: &[(&str, String)],
) -> Result<DeployedStack> {
    deploy_file(
        cloud,
        &cloud.config,
        "template.yaml",
        name,
        packages,
        parameters,
    )
    .await
}

/// Deploys the template `file` (of the workspace) as stack `name` with the credentials (and so
/// the account) of `config`.
pub async fn deploy_file(
    cloud: &LocalCloud,
    config: &aws_config::SdkConfig,
    file: &str,
    name: &str,
    packages: Vec<(&str, Vec<u8>)>,
    parameters: &[(&str, String)],
) -> Result<DeployedStack> {
    let template = workspace_file(file)?;
    let mut code = BTreeMap::new();
    // A function the parameters leave out is still translated by the SAM transform, which
    // wants an S3 location; nothing is read from it.
    for function in serverless_functions(&template) {
        code.insert(
            function,
            format!("s3://{ARTIFACTS_BUCKET}/not-deployed.zip"),
        );
    }
    let stack = Stack {
        cloud,
        config,
        name,
        template,
    };
    stack.apply(code, owned(parameters), packages, false).await
}

/// Deploys `packaged.yaml` of the release directory `dir` (`make dist`) as stack `name`, as
/// `aws cloudformation package` + `deploy` would from a machine without the sources: each
/// `CodeUri` naming a file of `dir` is uploaded and replaced by its S3 location.
pub async fn deploy_packaged(
    cloud: &LocalCloud,
    name: &str,
    dir: &std::path::Path,
    parameters: &[(&str, String)],
) -> Result<DeployedStack> {
    let path = dir.join("packaged.yaml");
    let template =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut code = BTreeMap::new();
    for (resource, line) in resource_lines(&template) {
        let (Some(id), Some(file)) = (resource, line.trim().strip_prefix("CodeUri: ")) else {
            continue;
        };
        if indent_of(line) != 6 || file.starts_with("s3://") {
            continue;
        }
        let zip = std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
        let key = format!("{name}/{file}");
        put_object(cloud, ARTIFACTS_BUCKET, &key, zip).await?;
        code.insert(id.to_owned(), format!("s3://{ARTIFACTS_BUCKET}/{key}"));
    }
    let stack = Stack {
        cloud,
        config: &cloud.config,
        name,
        template,
    };
    stack
        .apply(code, owned(parameters), Vec::new(), false)
        .await
}

/// Updates the deployed stack with more packages (the others keep their code) and parameters
/// (the others keep their values), as a user enabling another function would, and waits for
/// UPDATE_COMPLETE.
pub async fn update(
    cloud: &LocalCloud,
    deployed: &DeployedStack,
    packages: Vec<(&str, Vec<u8>)>,
    parameters: &[(&str, String)],
) -> Result<DeployedStack> {
    let mut all = deployed.parameters.clone();
    for (key, value) in parameters {
        all.insert((*key).to_owned(), value.clone());
    }
    let stack = Stack {
        cloud,
        config: &cloud.config,
        name: &deployed.name,
        template: template_text()?,
    };
    stack
        .apply(deployed.code.clone(), all, packages, true)
        .await
}

fn owned(parameters: &[(&str, String)]) -> BTreeMap<String, String> {
    parameters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// CloudFormation's limit on a template passed in the request.
const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// A template to create or update as a stack, in one account.
struct Stack<'a> {
    cloud: &'a LocalCloud,
    config: &'a aws_config::SdkConfig,
    name: &'a str,
    template: String,
}

impl Stack<'_> {
    async fn apply(
        &self,
        mut code: BTreeMap<String, String>,
        parameters: BTreeMap<String, String>,
        packages: Vec<(&str, Vec<u8>)>,
        update: bool,
    ) -> Result<DeployedStack> {
        let (cloud, name, template) = (self.cloud, self.name, &self.template);
        for (logical_id, zip) in packages {
            let key = format!("{name}/{logical_id}.zip");
            put_object(cloud, ARTIFACTS_BUCKET, &key, zip).await?;
            code.insert(
                logical_id.to_owned(),
                format!("s3://{ARTIFACTS_BUCKET}/{key}"),
            );
        }
        let uris: BTreeMap<&str, String> =
            code.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let (template, dropped) = without_resource_types(template, &LOCAL_CLOUD_LACKS);
        // The bus policies are what the member parameters turn on; a stack deployed with them
        // says what it lacks (see `not_deployed`).
        let asked = ["MemberAccountIds", "MemberOrganizationId"]
            .iter()
            .any(|needed| parameters.get(*needed).is_some_and(|v| !v.is_empty()));
        let not_deployed = if asked { dropped } else { Vec::new() };
        let body = with_code_uris(&template, &uris)?;
        // As `sam deploy` does: a body over CloudFormation's 51,200 bytes goes by S3.
        let (body, url) = if body.len() > TEMPLATE_BODY_LIMIT {
            let key = format!("{name}/template.yaml");
            put_object(cloud, ARTIFACTS_BUCKET, &key, body.into_bytes()).await?;
            (
                None,
                Some(format!("{}/{ARTIFACTS_BUCKET}/{key}", cloud.endpoint)),
            )
        } else {
            (Some(body), None)
        };
        let cfn = aws_sdk_cloudformation::Client::new(self.config);
        let parameter_list: Vec<Parameter> = parameters
            .iter()
            .map(|(key, value)| {
                Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build()
            })
            .collect();
        let capabilities = vec![
            Capability::CapabilityIam,
            Capability::CapabilityNamedIam,
            Capability::CapabilityAutoExpand,
        ];
        let (done, in_progress) = match update {
            false => {
                cfn.create_stack()
                    .stack_name(name)
                    .set_template_body(body)
                    .set_template_url(url)
                    .set_capabilities(Some(capabilities))
                    .set_parameters(Some(parameter_list))
                    .send()
                    .await
                    .map_err(|e| format!("CreateStack: {}", DisplayErrorContext(e)))?;
                (StackStatus::CreateComplete, StackStatus::CreateInProgress)
            }
            true => {
                cfn.update_stack()
                    .stack_name(name)
                    .set_template_body(body)
                    .set_template_url(url)
                    .set_capabilities(Some(capabilities))
                    .set_parameters(Some(parameter_list))
                    .send()
                    .await
                    .map_err(|e| format!("UpdateStack: {}", DisplayErrorContext(e)))?;
                (StackStatus::UpdateComplete, StackStatus::UpdateInProgress)
            }
        };
        let started = std::time::Instant::now();
        let stack = loop {
            let described = cfn
                .describe_stacks()
                .stack_name(name)
                .send()
                .await
                .map_err(|e| format!("DescribeStacks: {}", DisplayErrorContext(e)))?;
            let stack = described
                .stacks()
                .first()
                .cloned()
                .ok_or_else(|| format!("stack {name} not found"))?;
            let waiting = matches!(
                stack.stack_status(),
                Some(StackStatus::UpdateCompleteCleanupInProgress)
            ) || stack.stack_status() == Some(&in_progress);
            match stack.stack_status() {
                Some(status) if *status == done => break stack,
                _ if waiting && started.elapsed() < Duration::from_secs(120) => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                other => {
                    return Err(format!(
                        "stack {name}: {other:?} ({})",
                        stack.stack_status_reason().unwrap_or_default()
                    ))
                }
            }
        };
        let outputs = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        let resources = cfn
            .describe_stack_resources()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| format!("DescribeStackResources: {}", DisplayErrorContext(e)))?
            .stack_resources()
            .iter()
            .filter_map(|r| {
                Some((
                    r.logical_resource_id()?.to_owned(),
                    StackResource {
                        resource_type: r.resource_type()?.to_owned(),
                        physical_id: r.physical_resource_id().unwrap_or_default().to_owned(),
                    },
                ))
            })
            .collect();
        Ok(DeployedStack {
            name: name.to_owned(),
            outputs,
            resources,
            code,
            parameters,
            not_deployed,
        })
    }
}

/// The deployed stack's template after the SAM transform (the roles SAM made from each
/// function's `Policies`).
pub async fn processed_template(cloud: &LocalCloud, name: &str) -> Result<serde_json::Value> {
    let cfn = aws_sdk_cloudformation::Client::new(&cloud.config);
    let output = cfn
        .get_template()
        .stack_name(name)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Processed)
        .send()
        .await
        .map_err(|e| format!("GetTemplate: {}", DisplayErrorContext(e)))?;
    let body = output.template_body().unwrap_or_default();
    serde_json::from_str(body).map_err(|e| format!("processed template is not JSON: {e}"))
}

/// Verbs of actions that only read.
const READ_VERBS: [&str; 6] = ["Describe", "List", "Get", "BatchGet", "Query", "Scan"];

/// What a security review of a (processed) template finds, one line each:
/// - an allowed action that is not a read on `Resource: "*"` (`Role/Sid: ecs:RunTask on *`);
/// - `iam:PassRole` (or `iam:*`, `*`) allowed without an `iam:PassedToService` condition;
/// - a queue without server-side encryption (`SqsManagedSseEnabled` or `KmsMasterKeyId`), a
///   topic without `KmsMasterKeyId` (DynamoDB encrypts every table at rest, with an AWS-owned key
///   when the template says nothing, so no table can fail).
///
/// Policies are read from roles' inline policies and from `AWS::IAM::Policy`, `RolePolicy` and
/// `ManagedPolicy` resources; a statement under `Fn::If` counts in both branches (a condition may
/// turn it on). Findings come sorted.
pub fn security_findings(template: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    /// The items of a list, or the value itself; both branches of an `Fn::If`.
    fn items(value: &Value) -> Vec<Value> {
        match value {
            Value::Array(list) => list.iter().flat_map(items).collect(),
            Value::Object(map) if map.contains_key("Fn::If") => map["Fn::If"]
                .as_array()
                .map(|branches| branches.iter().skip(1).flat_map(items).collect())
                .unwrap_or_default(),
            Value::Object(map)
                if map.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") =>
            {
                Vec::new()
            }
            other => vec![other.clone()],
        }
    }
    /// A string, or an `Fn::Sub`'s template.
    fn text(value: &Value) -> &str {
        match &value["Fn::Sub"] {
            Value::String(template) => template,
            Value::Array(parts) => parts.first().and_then(Value::as_str).unwrap_or_default(),
            _ => value.as_str().unwrap_or_default(),
        }
    }
    /// A Condition's keys with their values (both branches of an `Fn::If`).
    fn condition_keys(condition: &Value) -> Vec<(String, Vec<Value>)> {
        items(condition)
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|operators| operators.values())
            .filter_map(Value::as_object)
            .flat_map(|keys| keys.iter())
            .map(|(key, value)| (key.clone(), items(value)))
            .collect()
    }
    /// A role's trust: no AWS principal by wildcard, no account root without an exact
    /// `aws:PrincipalArn`.
    fn trust_findings(id: &str, document: &Value, found: &mut Vec<String>) {
        for statement in items(&document["Statement"]) {
            if statement["Effect"] != "Allow" {
                continue;
            }
            let named = items(&statement["Principal"]["AWS"]);
            let narrowed: Vec<Value> = condition_keys(&statement["Condition"])
                .into_iter()
                .filter(|(key, _)| key == "aws:PrincipalArn")
                .flat_map(|(_, values)| values)
                .collect();
            for value in named.iter().chain(&narrowed) {
                if text(value).contains('*') {
                    found.push(format!("{id}: trusts {}", text(value)));
                }
            }
            if named.iter().any(|v| text(v).ends_with(":root")) && narrowed.is_empty() {
                found.push(format!(
                    "{id}: trusts an account's root with no aws:PrincipalArn"
                ));
            }
        }
    }
    let mut found = Vec::new();
    let resources = template["Resources"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (id, resource) in &resources {
        let properties = &resource["Properties"];
        let documents: Vec<Value> = match resource["Type"].as_str().unwrap_or_default() {
            "AWS::IAM::Role" => {
                trust_findings(id, &properties["AssumeRolePolicyDocument"], &mut found);
                items(&properties["Policies"])
                    .iter()
                    .map(|p| p["PolicyDocument"].clone())
                    .collect()
            }
            "AWS::IAM::Policy" | "AWS::IAM::RolePolicy" | "AWS::IAM::ManagedPolicy" => {
                vec![properties["PolicyDocument"].clone()]
            }
            "AWS::SQS::Queue" => {
                let sse = properties["SqsManagedSseEnabled"] == true
                    || !properties["KmsMasterKeyId"].is_null();
                if !sse {
                    found.push(format!("{id}: queue without server-side encryption"));
                }
                continue;
            }
            "AWS::SNS::Topic" => {
                if properties["KmsMasterKeyId"].is_null() {
                    found.push(format!("{id}: topic without KmsMasterKeyId"));
                }
                continue;
            }
            _ => continue,
        };
        for document in documents {
            for statement in items(&document["Statement"]) {
                if statement["Effect"] != "Allow" {
                    continue;
                }
                let sid = statement["Sid"].as_str().unwrap_or("-");
                let on_any = items(&statement["Resource"]).iter().any(|r| r == "*");
                let conditioned = statement["Condition"]
                    .as_object()
                    .into_iter()
                    .flat_map(|operators| operators.values())
                    .any(|keys| keys.get("iam:PassedToService").is_some());
                for action in items(&statement["Action"]) {
                    let action = action.as_str().unwrap_or_default();
                    let verb = action.split(':').nth(1).unwrap_or(action);
                    if on_any && !READ_VERBS.iter().any(|read| verb.starts_with(read)) {
                        found.push(format!("{id}/{sid}: {action} on *"));
                    }
                    let any_account = items(&statement["Resource"])
                        .iter()
                        .any(|r| text(r).contains(":iam::*:"));
                    let narrowed = condition_keys(&statement["Condition"])
                        .iter()
                        .any(|(key, _)| key == "aws:ResourceAccount" || key == "aws:ResourceOrgID");
                    let assumes = ["sts:AssumeRole", "sts:*", "*"].contains(&action);
                    if assumes && any_account && !narrowed {
                        found.push(format!("{id}/{sid}: {action} in any account"));
                    }
                    let passes = ["iam:PassRole", "iam:*", "*"].contains(&action);
                    if passes && !conditioned {
                        found.push(format!("{id}/{sid}: {action} without iam:PassedToService"));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_security_walk_finds_wide_writes_unconditioned_pass_role_plain_storage_and_wide_trust() {
        let template = serde_json::json!({"Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {
                "Statement": [
                    {"Sid": "Reads", "Effect": "Allow", "Action": ["ecs:DescribeServices", "ecs:ListTasks"], "Resource": "*"},
                    {"Sid": "Scoped", "Effect": "Allow", "Action": "ecs:UpdateService", "Resource": "arn:aws:ecs:us-east-1:1:service/shop/x"},
                    {"Sid": "Wide", "Effect": "Allow", "Action": "ecs:RunTask", "Resource": ["*"]},
                    {"Sid": "Denied", "Effect": "Deny", "Action": "ecs:StopTask", "Resource": "*"},
                    {"Fn::If": ["On", {"Sid": "Maybe", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}, {"Ref": "AWS::NoValue"}]},
                    {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/job"},
                    {"Sid": "PassToEcs", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/job",
                     "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}
                ]
            }}]}},
            "Extra": {"Type": "AWS::IAM::RolePolicy", "Properties": {"PolicyDocument": {"Statement":
                {"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}}}},
            "Assumer": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {
                "Statement": [
                    {"Sid": "Anywhere", "Effect": "Allow", "Action": "sts:AssumeRole",
                     "Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/member"}},
                    {"Sid": "Members", "Effect": "Allow", "Action": "sts:AssumeRole",
                     "Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/member"},
                     "Condition": {"Fn::If": ["Listed",
                        {"StringEquals": {"aws:ResourceAccount": {"Ref": "MemberAccountIds"}}},
                        {"StringEquals": {"aws:ResourceOrgID": {"Ref": "MemberOrganizationId"}}}]}}
                ]
            }}]}},
            "AnyRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole",
                 "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:role/*"}}}]}}},
            "BareRoot": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole"}]}}},
            "OneRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole",
                 "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/ecs-autopilot/triage"}}}]}}},
            "Plain": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Sealed": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": true}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}}
        }});
        assert_eq!(
            security_findings(&template),
            [
                "AnyRole: trusts arn:aws:iam::1:role/*",
                "Assumer/Anywhere: sts:AssumeRole in any account",
                "BareRoot: trusts an account's root with no aws:PrincipalArn",
                "Extra/All: * on *",
                "Extra/All: * without iam:PassedToService",
                "Plain: queue without server-side encryption",
                "Role/Maybe: sns:Publish on *",
                "Role/Pass: iam:PassRole without iam:PassedToService",
                "Role/Wide: ecs:RunTask on *",
                "Topic: topic without KmsMasterKeyId",
            ]
        );
    }

    #[test]
    fn resources_the_local_cloud_lacks_are_dropped_whole() {
        let template = template_text().unwrap();
        let (kept, dropped) = without_resource_types(&template, &LOCAL_CLOUD_LACKS);
        assert_eq!(
            dropped,
            [
                "MemberAccountsMayPutEvents",
                "MemberOrganizationMayPutEvents"
            ]
        );
        assert!(!kept.contains("EventBusPolicy") && !kept.contains("MayPutEvents"));
        assert!(kept.contains("  NotificationTopic:\n    Type: AWS::SNS::Topic"));
        let (same, none) = without_resource_types(&template, &["AWS::Nothing"]);
        assert_eq!((same.as_str(), none.len()), (template.as_str(), 0));
    }

    #[test]
    fn the_template_has_three_functions() {
        assert_eq!(
            serverless_functions(&template_text().unwrap()),
            [
                "TaskTriageFunction",
                "AlarmScalerFunction",
                "BatchRunnerFunction"
            ]
        );
    }
}
