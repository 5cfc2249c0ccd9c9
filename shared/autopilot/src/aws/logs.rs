//! CloudWatch Logs adapter: the [`LogReader`] giving the tail of one log stream.

use async_trait::async_trait;

use super::{aws_error, AwsClients};
use crate::error::Result;
use crate::ports::LogReader;

#[async_trait]
impl LogReader for AwsClients {
    /// The last `lines` events of a stream, oldest first, without trailing newlines.
    async fn tail(&self, group: &str, stream: &str, lines: u32) -> Result<Vec<String>> {
        if lines == 0 {
            return Ok(Vec::new());
        }
        let output = self
            .logs()
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(i32::try_from(lines).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| aws_error("logs", "GetLogEvents", e))?;
        let mut messages: Vec<String> = output
            .events()
            .iter()
            .filter_map(|event| event.message())
            .map(|message| message.trim_end_matches(['\n', '\r']).to_owned())
            .collect();
        let excess = messages.len().saturating_sub(lines as usize);
        messages.drain(..excess);
        Ok(messages)
    }
}
