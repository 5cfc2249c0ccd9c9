//! Reaching member accounts: the [`Reach`] port over AWS. An event from another account (or a
//! cluster ARN in another account or region) is served by clients in that scope: the region set
//! to the scope's, and for another account the credentials of the member role
//! (`member-template.yaml`), assumed through STS with the function's own role. Each scope's
//! clients are built once per execution environment and kept for the [`MAX_SCOPES`] most recently
//! used scopes (a crash loop across many accounts cannot grow it without bound); their
//! credentials are cached by the SDK's identity cache until shortly before they expire, then
//! assumed again on the next call.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::Region;
use aws_credential_types::provider::SharedCredentialsProvider;

use super::AwsClients;
use crate::config::ENV_MEMBER_ROLE;
use crate::ports::{Reach, Scope, ScopedPorts};
use crate::trust::Accounts;

/// How many scopes' clients are kept; the least recently used is dropped first.
pub const MAX_SCOPES: NonZeroUsize = NonZeroUsize::new(64).unwrap();

/// Which of a function's ports act in a scope, from that scope's clients.
pub type ScopedWiring = fn(&AwsClients) -> ScopedPorts;

/// The function's own account and region, and how to reach the others.
#[derive(Debug)]
pub struct MemberRoles {
    home: AwsClients,
    /// The home account and the members a role may be assumed in.
    accounts: Accounts,
    member_role: Option<String>,
    /// The STS session name, which member accounts' CloudTrail shows (`ecs-autopilot-task-triage`).
    session_name: String,
    wire: ScopedWiring,
    reached: Mutex<lru::LruCache<Scope, ScopedPorts>>,
}

impl MemberRoles {
    /// Reaches scopes from `home` (the function's clients): with no home account every scope
    /// counts as the function's own (a single-account stack); with no `member_role`, or for an
    /// account that is not a member, other accounts are unreachable (no role is assumed there).
    pub fn new(
        home: AwsClients,
        accounts: Accounts,
        member_role: Option<String>,
        function: &str,
        wire: ScopedWiring,
    ) -> Self {
        Self {
            home,
            accounts,
            member_role,
            session_name: format!("ecs-autopilot-{function}"),
            wire,
            reached: Mutex::new(lru::LruCache::new(MAX_SCOPES)),
        }
    }

    /// How many scopes' clients are kept.
    pub fn scopes_kept(&self) -> usize {
        lock(&self.reached).len()
    }

    fn home_region(&self) -> Option<String> {
        self.home.sdk_config().region().map(|r| r.to_string())
    }

    /// The clients for `scope`, or why it cannot be reached.
    async fn clients_in(&self, scope: &Scope) -> Result<AwsClients, String> {
        let mut config = self
            .home
            .sdk_config()
            .to_builder()
            .region(Region::new(scope.region.clone()));
        if self.accounts.home() != Some(scope.account.as_str()) {
            if !self.accounts.admits(&scope.account) {
                return Err("it is not one of the stack's member accounts".into());
            }
            let Some(role) = &self.member_role else {
                return Err(format!(
                    "no member role is configured ({ENV_MEMBER_ROLE}; the stack's MemberRoleName)"
                ));
            };
            let role_arn = format!(
                "arn:{}:iam::{}:role/{role}",
                partition_of(&scope.region),
                scope.account
            );
            tracing::info!(role_arn, "assuming a member role");
            let provider = AssumeRoleProvider::builder(role_arn)
                .session_name(self.session_name.clone())
                .configure(self.home.sdk_config())
                .build()
                .await;
            config = config
                .credentials_provider(SharedCredentialsProvider::new(provider))
                // One cache for every client of this scope: ECS and Logs share one session.
                .identity_cache(IdentityCache::lazy().build());
        }
        Ok(AwsClients::from_config(config.build()))
    }
}

#[async_trait]
impl Reach for MemberRoles {
    async fn ports_in(&self, scope: &Scope) -> Option<ScopedPorts> {
        let home_account = self.accounts.home()?;
        if scope.account == home_account && Some(&scope.region) == self.home_region().as_ref() {
            return None;
        }
        if let Some(ports) = lock(&self.reached).get(scope) {
            return Some(ports.clone());
        }
        let ports = match self.clients_in(scope).await {
            Ok(clients) => (self.wire)(&clients),
            Err(reason) => return Some(ScopedPorts::unreachable(scope, reason)),
        };
        tracing::info!(
            account = scope.account,
            region = scope.region,
            "reaching another scope"
        );
        lock(&self.reached)
            .get_or_insert(scope.clone(), || ports)
            .clone()
            .into()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The partition of a region (`cn-north-1` → `aws-cn`), for the role's ARN.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_follows_the_region() {
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
