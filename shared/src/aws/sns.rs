//! SNS adapter: sends one rendered [`Publish`].

use aws_sdk_sns::types::MessageAttributeValue;

use super::aws_error;
use crate::error::Result;
use crate::notify::Publish;

/// Publishes with `MessageStructure=json`; returns the message id.
pub async fn publish(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    publish: &Publish,
) -> Result<String> {
    let mut request = client
        .publish()
        .topic_arn(topic_arn)
        .subject(&publish.subject)
        .message(&publish.message)
        .message_structure("json");
    for (name, value) in &publish.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| {
                crate::error::AutopilotError::invalid_event(
                    format!("attribute {name}"),
                    e.to_string(),
                )
            })?;
        request = request.message_attributes(name, attribute);
    }
    let output = request
        .send()
        .await
        .map_err(|e| aws_error("sns", "Publish", e))?;
    Ok(output.message_id().unwrap_or_default().to_owned())
}
