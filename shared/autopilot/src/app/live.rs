//! A configuration that changes under a running function: the function's handler of the
//! moment, rebuilt from a valid new version of the SSM parameters (looked at, at most, every
//! `config_refresh_s`) without a cold start, and kept when a new version is refused — which is
//! told once for all functions (one critical notice under a shared claim) and counted in the
//! invocation's EMF document. What to make of the versions read is decided in
//! [`crate::config::refresh`].

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

/// How long the claim on telling a refused version lives: past any refresh interval.
const REFUSED_CLAIM_TTL_S: u64 = 7 * 24 * 60 * 60;

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
                            Ok((app, setup)) => {
                                tracing::info!("configuration {versions} applied");
                                held.app = app;
                                held.setup = setup;
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
                                tell(&held.setup, self.source, &versions, &[problem], &in_use)
                                    .await;
                            }
                        }
                    }
                    Refresh::Refuse { versions, problems } => {
                        refused = 1;
                        let in_use = refresher.in_use().clone();
                        tell(&held.setup, self.source, &versions, &problems, &in_use).await;
                    }
                }
            }
        }
        Served {
            app: held.app.clone(),
            version: held
                .refresh
                .as_ref()
                .map(|(refresher, _)| refresher.in_use().to_string()),
            refused,
        }
    }
}

impl<T> Serving<T> for Live<T> {
    async fn current(&self) -> Served<T> {
        Live::current(self).await
    }
}

/// Logs the refusal and sends its critical notice once for every function: under a claim when
/// the state table is there. A failure to tell is logged; the function carries on.
async fn tell(
    setup: &Setup,
    source: Source,
    versions: &Versions,
    problems: &[Problem],
    in_use: &Versions,
) {
    let notice = refusal_notice(source, versions, problems, in_use);
    tracing::error!(
        error_type = "InvalidConfig",
        "{}; the last good configuration ({in_use}) stays",
        notice.title
    );
    let now = setup.clock.now_s();
    let occasion = Occasion {
        at: now,
        deadline_s: now + 10,
        ..Occasion::default()
    };
    let mut notes = Vec::new();
    let invocation = Invocation::default();
    let key = config_refused_key(&versions.to_string());
    let held = match setup.backend.state_access() {
        Some(state) => {
            match claim::access(
                state,
                &key,
                now,
                &invocation,
                REFUSED_CLAIM_TTL_S,
                &mut notes,
            )
            .await
            {
                Ok(Access::Go { held }) => held,
                Ok(Access::Duplicate { .. }) => {
                    tracing::info!("the refusal of {versions} was told already");
                    return;
                }
                Err(error) => {
                    tracing::warn!("the refusal of {versions} is told without a claim: {error}");
                    None
                }
            }
        }
        None => None,
    };
    let result = setup
        .courier
        .deliver(&setup.backend, &notice, occasion, held.as_ref(), &mut notes)
        .await;
    if let Err(error) = &result {
        tracing::error!("the refusal of {versions} could not be told: {error}");
    }
    if let Some(held) = held {
        let message_id = result.as_ref().ok().and_then(|d| d.message_id.clone());
        let work = result.map(|_| ());
        if let Some(note) = held.settle(&work, "notify", message_id.as_deref()).await {
            tracing::warn!("{note}");
        }
    }
}
