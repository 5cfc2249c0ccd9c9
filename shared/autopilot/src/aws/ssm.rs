//! SSM adapter: reads the configuration document from a parameter.

use super::aws_error;
use crate::error::Result;

/// The (decrypted) value of a parameter.
pub async fn parameter_value(client: &aws_sdk_ssm::Client, name: &str) -> Result<String> {
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| aws_error("ssm", "GetParameter", e))?;
    Ok(output
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default()
        .to_owned())
}
