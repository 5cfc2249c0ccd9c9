//! Delivering a notice, the same way for every handler: render it, publish it when live, and
//! otherwise say in a note what would have been sent.

use super::Backend;
use crate::domain::HttpsFormat;
use crate::error::Result;
use crate::notify::{self, Notice};

/// Renders and, on a live backend, publishes `notice`; gives the message id. Notes say what was
/// left out to fit, or that the mode publishes nothing.
pub async fn deliver(
    backend: &Backend,
    notice: &Notice,
    https_format: HttpsFormat,
    notes: &mut Vec<String>,
) -> Result<Option<String>> {
    let publish = notify::render(notice, https_format);
    if publish.log_lines_dropped > 0 {
        notes.push(format!(
            "{} log lines left out to fit SNS's 256 KiB",
            publish.log_lines_dropped
        ));
    }
    match backend {
        Backend::Live { notifier, .. } => {
            let message_id = notifier.publish(&publish).await?;
            tracing::info!(message_id, subject = publish.subject, "published");
            Ok(Some(message_id))
        }
        other => {
            notes.push(format!(
                "{}: not published: {}",
                other.mode().label(),
                publish.subject
            ));
            Ok(None)
        }
    }
}
