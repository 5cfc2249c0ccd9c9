//! SQS adapter: the [`BacklogReader`] of target policies — a queue's waiting messages from one
//! GetQueueAttributes call (visible, and in flight when asked).

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;

use super::{aws_error, AwsClients};
use crate::error::{AutopilotError, Result};
use crate::ports::BacklogReader;

#[async_trait]
impl BacklogReader for AwsClients {
    async fn backlog(&self, url: &str, in_flight: bool) -> Result<u64> {
        let mut names = vec![QueueAttributeName::ApproximateNumberOfMessages];
        if in_flight {
            names.push(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        }
        let output = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.clone()))
            .send()
            .await
            .map_err(|e| aws_error("sqs", "GetQueueAttributes", e))?;
        let attributes = output.attributes();
        let mut total: u64 = 0;
        for name in &names {
            let count = attributes
                .and_then(|a| a.get(name))
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| AutopilotError::Aws {
                    service: "sqs",
                    operation: "GetQueueAttributes",
                    code: "MissingAttribute".into(),
                    message: format!("the answer has no number for {}", name.as_str()),
                })?;
            total = total.saturating_add(count);
        }
        Ok(total)
    }
}
