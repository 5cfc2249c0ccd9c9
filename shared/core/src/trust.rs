//! Which accounts may move the stack: its own (`AUTOPILOT_ACCOUNT_ID`) and its members
//! (`MEMBER_ACCOUNT_IDS`, or any account of `MEMBER_ORGANIZATION_ID` when no list is given, since
//! the bus policy then admits only the organisation's). An event naming any other account, in its
//! envelope or in an ARN, is ignored by every function before anything is read or assumed in
//! that account.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

/// The accounts the stack acts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    /// Unknown (offline, without `AUTOPILOT_ACCOUNT_ID`): nothing to check against.
    home: Option<String>,
    members: BTreeSet<String>,
    organization: Option<String>,
}

/// An account an event named that the stack does not act for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Foreign {
    /// The account named.
    pub account: String,
    /// Where the event named it (`account`, `detail.taskArn` …).
    pub named_by: String,
}

impl Foreign {
    /// The reason an outcome gives.
    pub fn reason(&self) -> String {
        format!(
            "account {} ({}) is not this stack's or one of its members'",
            self.account, self.named_by
        )
    }
}

impl fmt::Display for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

impl Accounts {
    /// Accounts from the deployment: `home`, the listed `members`, and the `organization` whose
    /// accounts count as members when no list is given.
    pub fn new(
        home: Option<String>,
        members: impl IntoIterator<Item = String>,
        organization: Option<String>,
    ) -> Self {
        Self {
            home,
            members: members.into_iter().collect(),
            organization,
        }
    }

    /// The stack's own account, when known.
    pub fn home(&self) -> Option<&str> {
        self.home.as_deref()
    }

    /// Whether the stack acts for `account`.
    pub fn admits(&self, account: &str) -> bool {
        match &self.home {
            None => true,
            Some(home) if home == account => true,
            Some(_) if !self.members.is_empty() => self.members.contains(account),
            Some(_) => self.organization.is_some(),
        }
    }

    /// The first of the accounts an event names (`(where, account)`; an empty account, as a
    /// global ARN has, names none) that the stack does not act for.
    pub fn check<'a>(
        &self,
        named: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<(), Foreign> {
        for (named_by, account) in named {
            let Some(account) = account.filter(|a| !a.is_empty()) else {
                continue;
            };
            if !self.admits(account) {
                return Err(Foreign {
                    // Event text: an account id is 12 digits; anything longer is cut.
                    account: crate::domain::clipped(account.to_owned(), 32),
                    named_by: named_by.to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "111122223333";
    const MEMBER: &str = "444455556666";
    const STRANGER: &str = "999988887777";

    fn accounts(members: &[&str], organization: Option<&str>) -> Accounts {
        Accounts::new(
            Some(HOME.into()),
            members.iter().map(|m| m.to_string()),
            organization.map(str::to_owned),
        )
    }

    #[test]
    fn the_home_account_and_listed_members_are_admitted_and_no_one_else() {
        let listed = accounts(&[MEMBER], None);
        assert!(listed.admits(HOME));
        assert!(listed.admits(MEMBER));
        assert!(!listed.admits(STRANGER));
        let alone = accounts(&[], None);
        assert!(alone.admits(HOME));
        assert!(!alone.admits(MEMBER));
        // A list wins over the organisation: only the listed members.
        let both = accounts(&[MEMBER], Some("o-abcdefghij"));
        assert!(!both.admits(STRANGER));
    }

    #[test]
    fn an_organisation_without_a_list_admits_every_account_the_bus_lets_in() {
        assert!(accounts(&[], Some("o-abcdefghij")).admits(STRANGER));
    }

    #[test]
    fn with_no_home_account_nothing_is_checked() {
        assert!(Accounts::default().admits(STRANGER));
    }

    #[test]
    fn the_first_foreign_account_is_named_with_where_it_was_found() {
        let listed = accounts(&[MEMBER], None);
        let refused = listed
            .check([
                ("account", Some(HOME)),
                ("resources[0]", Some("")),
                ("detail.taskArn", Some(STRANGER)),
                ("detail.clusterArn", None),
            ])
            .unwrap_err();
        assert_eq!(
            refused.reason(),
            "account 999988887777 (detail.taskArn) is not this stack's or one of its members'"
        );
        assert!(listed
            .check([("account", Some(MEMBER)), ("alarmArn", Some(HOME))])
            .is_ok());
    }
}
