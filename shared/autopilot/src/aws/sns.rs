//! SNS adapter: publishes one rendered [`Publish`] to the default topic or a routed one, and is
//! with [`super::webhook::Webhooks`] the [`Notifier`] port.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use super::webhook::Webhooks;
use super::{aws_error, AwsClients};
use crate::error::Result;
use crate::notify::Publish;
use crate::ports::{Notifier, WebhookReply};

/// Publishes to the default topic (`NOTIFY_TOPIC_ARN`) or a routed one.
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

impl SnsNotifier {
    /// Publishes with `MessageStructure=json` to `topic` (`None`: the default); returns the
    /// message id.
    pub async fn publish(&self, topic: Option<&str>, publish: &Publish) -> Result<String> {
        let mut request = self
            .clients
            .sns()
            .publish()
            .topic_arn(topic.unwrap_or(&self.topic_arn))
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

/// The notifier of a live function: SNS topics and the named webhooks.
#[derive(Debug)]
pub struct AwsNotifier {
    pub topics: SnsNotifier,
    pub webhooks: Webhooks,
}

#[async_trait]
impl Notifier for AwsNotifier {
    async fn publish(&self, topic: Option<&str>, publish: &Publish) -> Result<String> {
        self.topics.publish(topic, publish).await
    }

    async fn post(&self, webhook: &str, body: &str) -> Result<WebhookReply> {
        self.webhooks.post(webhook, body).await
    }
}
