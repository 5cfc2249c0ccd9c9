//! SNS adapter: the [`Notifier`] that publishes one rendered [`Publish`] to the topic.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use super::{aws_error, AwsClients};
use crate::error::Result;
use crate::notify::Publish;
use crate::ports::Notifier;

/// Publishes to one topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    clients: AwsClients,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(clients: AwsClients, topic_arn: impl Into<String>) -> Self {
        Self {
            clients,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    /// Publishes with `MessageStructure=json`; returns the message id.
    async fn publish(&self, publish: &Publish) -> Result<String> {
        let mut request = self
            .clients
            .sns()
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&publish.subject)
            .message(&publish.message)
            .message_structure("json");
        for (name, value) in &publish.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| crate::error::AutopilotError::Aws {
                    service: "sns",
                    operation: "Publish",
                    code: "InvalidRequest".into(),
                    message: format!("message attribute {name}: {e}"),
                })?;
            request = request.message_attributes(name, attribute);
        }
        let output = request
            .send()
            .await
            .map_err(|e| aws_error("sns", "Publish", e))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}
