//! The [`MemberRoles`] adapter against a scripted HTTP client (STS, ECS and Logs answered in
//! process): a member account is reached with the member role's credentials, assumed once and
//! shared by every client of that scope until they expire; the function's own account and
//! region use its own ports; another region of its own account uses its own credentials there;
//! a member account without a configured role is unreachable, with the reason.

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;

use autopilot::aws::reach::MemberRoles;
use autopilot::aws::AwsClients;
use autopilot::ports::{Reach, Scope, ScopedPorts};
use autopilot::trust::Accounts;

const HOME: &str = "111122223333";
const MEMBER: &str = "222233334444";

/// One request as the fake endpoint saw it.
#[derive(Debug, Clone)]
struct Seen {
    host: String,
    /// The access key that signed it.
    key: String,
    body: String,
}

fn assume_role_answer(expires: &str) -> String {
    format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAMEMBERSESSION</AccessKeyId>
      <SecretAccessKey>member-secret</SecretAccessKey>
      <SessionToken>member-token</SessionToken>
      <Expiration>{expires}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:ecs-autopilot-task-triage</AssumedRoleId>
      <Arn>arn:aws:sts::{MEMBER}:assumed-role/ecs-autopilot-member/ecs-autopilot-task-triage</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
</AssumeRoleResponse>"#
    )
}

/// Clients for the function's own account (us-east-1) whose every request the fake answers.
async fn home_clients(expires: &'static str) -> (AwsClients, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
        let host = request.uri().host().unwrap_or_default().to_owned();
        let auth = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let key = auth
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into();
        log.lock().unwrap().push(Seen {
            host: host.clone(),
            key,
            body,
        });
        let body = if host.starts_with("sts.") {
            assume_role_answer(expires)
        } else if host.starts_with("ecs.") {
            r#"{"services":[{"serviceName":"orders-api","status":"ACTIVE","desiredCount":2,"runningCount":1}],"failures":[]}"#.into()
        } else {
            r#"{"events":[{"message":"member line\n"}]}"#.into()
        };
        http::Response::builder().status(200).body(body).unwrap()
    });
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIAHOME",
            "home-secret",
            None,
            None,
            "test",
        ))
        .http_client(http)
        .load()
        .await;
    (AwsClients::from_config(config), seen)
}

fn triage_ports(clients: &AwsClients) -> ScopedPorts {
    ScopedPorts {
        services: Arc::new(clients.clone()),
        inspector: Arc::new(clients.clone()),
        logs: Arc::new(clients.clone()),
        ..ScopedPorts::unwired()
    }
}

fn roles(clients: &AwsClients, role: Option<&str>) -> MemberRoles {
    MemberRoles::new(
        clients.clone(),
        Accounts::new(Some(HOME.into()), [MEMBER.to_owned()], None),
        role.map(str::to_owned),
        "task-triage",
        triage_ports,
    )
}

#[tokio::test]
async fn a_member_is_read_with_the_member_roles_session_assumed_once() {
    let (clients, seen) = home_clients("2099-01-01T00:00:00Z").await;
    // task-triage's own member role, by its path and name (member-template.yaml's ReadRole).
    let roles = roles(&clients, Some("ecs-autopilot/ecs-autopilot-member-read"));
    let scope = Scope::new(MEMBER, "eu-west-1");
    let ports = roles.ports_in(&scope).await.expect("a member's own ports");
    let service = ports.services.describe_service("shop", "orders-api").await;
    let lines = ports.logs.tail("/ecs/orders-api", "ecs/x/1", 5).await;
    assert_eq!(service.unwrap().unwrap().desired, 2);
    assert_eq!(lines.unwrap(), ["member line"]);
    // Reached again (the next event of that account): the same clients and session.
    let again = roles.ports_in(&scope).await.unwrap();
    again
        .services
        .describe_service("shop", "orders-api")
        .await
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    let hosts: Vec<&str> = seen.iter().map(|s| s.host.as_str()).collect();
    assert_eq!(
        hosts,
        [
            "sts.us-east-1.amazonaws.com",
            "ecs.eu-west-1.amazonaws.com",
            "logs.eu-west-1.amazonaws.com",
            "ecs.eu-west-1.amazonaws.com",
        ],
        "one AssumeRole (in the function's region), then the member's region"
    );
    assert_eq!(
        seen[0].key, "AKIAHOME",
        "assumed with the function's own role"
    );
    assert!(
        seen[0].body.contains("Action=AssumeRole")
            && seen[0].body.contains(
                "RoleArn=arn%3Aaws%3Aiam%3A%3A222233334444%3Arole%2Fecs-autopilot%2Fecs-autopilot-member-read&"
            )
            && seen[0]
                .body
                .contains("RoleSessionName=ecs-autopilot-task-triage"),
        "{}",
        seen[0].body
    );
    assert!(
        seen[1..].iter().all(|s| s.key == "ASIAMEMBERSESSION"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn credentials_about_to_expire_are_assumed_again() {
    // Expired already: the SDK's cache does not keep them, so each call assumes the role.
    let (clients, seen) = home_clients("2000-01-01T00:00:00Z").await;
    let roles = roles(&clients, Some("ecs-autopilot-member"));
    let ports = roles
        .ports_in(&Scope::new(MEMBER, "us-east-1"))
        .await
        .unwrap();
    for _ in 0..2 {
        ports
            .services
            .describe_service("shop", "orders-api")
            .await
            .ok();
    }
    let sts = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.host.starts_with("sts."))
        .count();
    assert_eq!(sts, 2);
}

#[tokio::test]
async fn the_own_account_uses_its_own_ports_and_credentials() {
    let (clients, seen) = home_clients("2099-01-01T00:00:00Z").await;
    let roles = roles(&clients, Some("ecs-autopilot-member"));
    assert!(roles
        .ports_in(&Scope::new(HOME, "us-east-1"))
        .await
        .is_none());
    let other_region = roles
        .ports_in(&Scope::new(HOME, "ap-southeast-2"))
        .await
        .expect("clients in the other region");
    other_region
        .services
        .describe_service("shop", "orders-api")
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "no AssumeRole: {seen:?}");
    assert_eq!(seen[0].host, "ecs.ap-southeast-2.amazonaws.com");
    assert_eq!(seen[0].key, "AKIAHOME");
}

/// Why `account` (in us-east-1) cannot be reached: the error its ports answer with.
async fn unreachable(roles: &MemberRoles, account: &str) -> String {
    let ports = roles
        .ports_in(&Scope::new(account, "us-east-1"))
        .await
        .unwrap();
    let error = ports
        .services
        .describe_service("shop", "orders-api")
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AccountUnreachable");
    error.to_string()
}

#[tokio::test]
async fn without_a_member_role_a_member_is_unreachable_and_says_why() {
    let (clients, seen) = home_clients("2099-01-01T00:00:00Z").await;
    let roles = roles(&clients, None);
    assert_eq!(
        unreachable(&roles, MEMBER).await,
        "account 222233334444 in us-east-1 cannot be reached: no member role is configured \
         (MEMBER_ROLE_NAME; the stack's MemberRoleName)"
    );
    assert!(seen.lock().unwrap().is_empty(), "nothing sent");
}

#[tokio::test]
async fn no_role_is_assumed_in_an_account_that_is_not_a_member() {
    let (clients, seen) = home_clients("2099-01-01T00:00:00Z").await;
    let roles = roles(&clients, Some("ecs-autopilot-member"));
    assert_eq!(
        unreachable(&roles, "999988887777").await,
        "account 999988887777 in us-east-1 cannot be reached: it is not one of the stack's \
         member accounts"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "no AssumeRole, nothing sent"
    );
}

#[tokio::test]
async fn without_a_home_account_every_scope_is_the_functions_own() {
    let (clients, _) = home_clients("2099-01-01T00:00:00Z").await;
    let roles = MemberRoles::new(
        clients,
        Accounts::default(),
        None,
        "task-triage",
        triage_ports,
    );
    assert!(roles
        .ports_in(&Scope::new(MEMBER, "eu-west-1"))
        .await
        .is_none());
}

#[tokio::test]
async fn the_clients_of_at_most_max_scopes_are_kept() {
    let (clients, seen) = home_clients("2099-01-01T00:00:00Z").await;
    let roles = roles(&clients, Some("ecs-autopilot-member"));
    let max = autopilot::aws::reach::MAX_SCOPES.get();
    for i in 0..max + 10 {
        // Other regions of the home account: clients without an AssumeRole.
        let scope = Scope::new(HOME, format!("eu-test-{i}"));
        assert!(roles.ports_in(&scope).await.is_some());
    }
    assert_eq!(roles.scopes_kept(), max);
    assert!(seen.lock().unwrap().is_empty(), "nothing sent");
}
