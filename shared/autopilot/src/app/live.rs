//! A configuration that changes under a running function: the function's handler of the
//! moment, rebuilt from a valid new version of the SSM parameters (looked at, at most, every
//! `config_refresh_s`) without a cold start, and kept when a new version is refused — which is
//! told once for all functions (one critical notice under a shared claim) and counted in the
//! invocation's EMF document. What to make of the versions read is decided in
//! [`crate::config::refresh`]. Each configuration put to use is also held to the stack's
//! template parameters ([`crate::config::stack`]): a warning line per problem and one warning
//! notice per version.

use std::fmt;
use std::sync::Arc;

use super::claim::{self, Access};
use super::publish::Occasion;
use super::Setup;
use crate::config::parts::Problem;
use crate::config::refresh::{refusal_notice, Refresh, Refresher, Versions};
use crate::config::StackConfig;
use crate::domain::Source;
use crate::entry::{Invocation, Served, Serving};
use crate::error::Result;
use crate::keys::config_refused_key;
use crate::ports::ConfigReader;

/// How long the claim on telling a refused or mismatched version lives: past any refresh
/// interval.
const TOLD_CLAIM_TTL_S: u64 = 7 * 24 * 60 * 60;

/// How long a disagreement with the stack that could not be told waits to be tried again.
const TELL_AGAIN_AFTER_S: i64 = 60;

/// Makes a function's setup of a new configuration (the same clients and deployment).
pub type Rebuild = Arc<dyn Fn(StackConfig) -> Result<Setup> + Send + Sync>;

/// Where a refreshable configuration comes from: its reader, the versions read at cold start
/// and how a setup is rebuilt.
#[derive(Clone)]
pub struct Reload {
    pub reader: Arc<dyn ConfigReader>,
    pub versions: Versions,
    pub rebuild: Rebuild,
}

impl fmt::Debug for Reload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reload")
            .field("reader", &self.reader)
            .field("versions", &self.versions.to_string())
            .finish_non_exhaustive()
    }
}

/// Makes a function's handler of a setup.
pub type Make<T> = Box<dyn Fn(Setup) -> Result<T> + Send + Sync>;

/// The handler of the moment and what it was made of.
pub struct Live<T> {
    source: Source,
    make: Make<T>,
    held: tokio::sync::Mutex<Held<T>>,
}

struct Held<T> {
    app: Arc<T>,
    setup: Setup,
    refresh: Option<(Refresher, Reload)>,
    /// When the configuration in use is next held to the stack's parameters (`None`: done).
    check_at_s: Option<i64>,
}

impl<T> fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<T> Live<T> {
    /// The handler `make` builds of `setup`, refreshed when the setup came from SSM.
    pub fn new(
        setup: Setup,
        source: Source,
        make: impl Fn(Setup) -> Result<T> + Send + Sync + 'static,
    ) -> Result<Self> {
        let refresh = setup.reload.clone().map(|reload| {
            let refresher = Refresher::new(
                reload.versions.clone(),
                setup.clock.now_s(),
                setup.config.config_refresh_s,
            );
            (refresher, reload)
        });
        let app = Arc::new(make(setup.clone())?);
        Ok(Self {
            source,
            make: Box::new(make),
            held: tokio::sync::Mutex::new(Held {
                app,
                setup,
                refresh,
                check_at_s: Some(i64::MIN),
            }),
        })
    }

    /// The handler to run an invocation with, after a look at the parameters when one is due.
    /// Nothing here fails: an unreadable or invalid configuration leaves the last good one.
    pub async fn current(&self) -> Served<T> {
        let mut held = self.held.lock().await;
        let held = &mut *held;
        let mut refused = 0;
        if let Some((refresher, reload)) = held.refresh.as_mut() {
            let now = held.setup.clock.now_s();
            if refresher.due(now) {
                let before = refresher.in_use().clone();
                let refresh = match reload.reader.parts().await {
                    Ok(parts) => refresher.consider(&parts, now),
                    Err(error) => {
                        tracing::warn!("configuration not refreshed, the last one stays: {error}");
                        refresher.unreadable(now);
                        Refresh::Unchanged
                    }
                };
                match refresh {
                    Refresh::Unchanged => {}
                    Refresh::Apply {
                        config,
                        versions,
                        warnings,
                    } => {
                        for warning in &warnings {
                            tracing::warn!("configuration {versions}: {warning}");
                        }
                        match (reload.rebuild)(*config)
                            .and_then(|setup| Ok((Arc::new((self.make)(setup.clone())?), setup)))
                        {
                            Ok((app, mut setup)) => {
                                tracing::info!("configuration {versions} applied");
                                // The stack did not change: only the configuration did.
                                setup.stack_parameters = held.setup.stack_parameters.take();
                                held.app = app;
                                held.setup = setup;
                                held.check_at_s = Some(i64::MIN);
                            }
                            Err(error) => {
                                refused = 1;
                                let problem = Problem {
                                    part: None,
                                    path: "$".into(),
                                    problem: error.to_string(),
                                };
                                refresher.roll_back(before);
                                let in_use = refresher.in_use().clone();
                                if !tell(&held.setup, self.source, &versions, &[problem], &in_use)
                                    .await
                                {
                                    refresher.forget_refusal();
                                }
                            }
                        }
                    }
                    Refresh::Refuse { versions, problems } => {
                        refused = 1;
                        let in_use = refresher.in_use().clone();
                        if !tell(&held.setup, self.source, &versions, &problems, &in_use).await {
                            refresher.forget_refusal();
                        }
                    }
                }
            }
        }
        let version = held
            .refresh
            .as_ref()
            .map(|(refresher, _)| refresher.in_use().to_string());
        let now = held.setup.clock.now_s();
        if held.check_at_s.is_some_and(|at| at <= now) {
            let done = check_against_stack(&held.setup, self.source, version.as_deref()).await;
            // Not told (no claim, no delivery): again a minute on, not at every invocation.
            held.check_at_s = (!done).then_some(now + TELL_AGAIN_AFTER_S);
        }
        Served {
            app: held.app.clone(),
            version,
            refused,
        }
    }
}

/// Holds the configuration in use to the stack's template parameters: each problem a warning
/// line, and one warning notice for every function and environment per configuration version.
/// True once it is done (nothing to tell, or told).
async fn check_against_stack(setup: &Setup, source: Source, version: Option<&str>) -> bool {
    let Some(parameters) = &setup.stack_parameters else {
        return true;
    };
    let problems = crate::config::stack::cross_check_for(source, &setup.config, parameters);
    if problems.is_empty() {
        return true;
    }
    let versions = version.unwrap_or("in the template");
    for problem in &problems {
        tracing::warn!("configuration {versions} against the stack's parameters: {problem}");
    }
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    let key = crate::keys::config_mismatch_key(versions, &lines.join("\n"));
    let notice = crate::config::stack::mismatch_notice(source, versions, &problems);
    tell_once(setup, &key, &notice).await
}

impl<T> Serving<T> for Live<T> {
    async fn current(&self) -> Served<T> {
        Live::current(self).await
    }
}

/// Logs the refusal and sends its critical notice once for every function.
async fn tell(
    setup: &Setup,
    source: Source,
    versions: &Versions,
    problems: &[Problem],
    in_use: &Versions,
) -> bool {
    let notice = refusal_notice(source, versions, problems, in_use);
    tracing::error!(
        error_type = "InvalidConfig",
        "{}; the last good configuration ({in_use}) stays",
        notice.title
    );
    tell_once(setup, &config_refused_key(&versions.to_string()), &notice).await
}

/// Sends `notice` once for every function and execution environment, under the claim `key`
/// (no state table: from each environment). True when it is told (now or before); false when
/// the claim could not be taken or the delivery failed, so that the caller tries again later
/// rather than each environment telling it on its own.
async fn tell_once(setup: &Setup, key: &str, notice: &crate::notify::Notice) -> bool {
    let now = setup.clock.now_s();
    let occasion = Occasion {
        at: now,
        deadline_s: now + 10,
        ..Occasion::default()
    };
    let mut notes = Vec::new();
    let invocation = Invocation::default();
    let held = match setup.backend.state_access() {
        Some(state) => {
            match claim::access(state, key, now, &invocation, TOLD_CLAIM_TTL_S, &mut notes).await {
                Ok(Access::Go { held }) => held,
                Ok(Access::Duplicate { .. }) => {
                    tracing::info!("{} was told already", notice.title);
                    return true;
                }
                Err(error) => {
                    tracing::warn!("{} not told yet, tried again later: {error}", notice.title);
                    return false;
                }
            }
        }
        None => None,
    };
    let result = setup
        .courier
        .deliver(&setup.backend, notice, occasion, held.as_ref(), &mut notes)
        .await;
    if let Err(error) = &result {
        tracing::error!(
            "{} could not be told, tried again later: {error}",
            notice.title
        );
    }
    let told = result.is_ok();
    if let Some(held) = held {
        let message_id = result.as_ref().ok().and_then(|d| d.message_id.clone());
        let work = result.map(|_| ());
        if let Some(note) = held.settle(&work, "notify", message_id.as_deref()).await {
            tracing::warn!("{note}");
        }
    }
    told
}
