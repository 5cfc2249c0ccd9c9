//! SSM adapter: reads the configuration — one parameter, or every parameter under a path (one
//! part each) — with the versions a refresh compares.

use super::aws_error;
use crate::config::parts::Part;
use crate::config::refresh::Versioned;
use crate::error::Result;

/// The (decrypted) value of a parameter.
pub async fn parameter_value(client: &aws_sdk_ssm::Client, name: &str) -> Result<String> {
    Ok(parameter(client, name).await?.part.text)
}

/// A parameter's (decrypted) value and version.
pub async fn parameter(client: &aws_sdk_ssm::Client, name: &str) -> Result<Versioned> {
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| aws_error("ssm", "GetParameter", e))?;
    let parameter = output.parameter();
    Ok(Versioned {
        part: Part {
            name: name.to_owned(),
            text: parameter
                .and_then(|p| p.value())
                .unwrap_or_default()
                .to_owned(),
        },
        version: parameter.map_or(0, |p| p.version()),
    })
}

/// Every parameter under `path` (recursively), decrypted, with its version: one call per ten
/// parameters.
pub async fn parameters_under(client: &aws_sdk_ssm::Client, path: &str) -> Result<Vec<Versioned>> {
    let mut parts = Vec::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("ssm", "GetParametersByPath", e))?;
        parts.extend(page.parameters().iter().map(|p| Versioned {
            part: Part {
                name: p.name().unwrap_or_default().to_owned(),
                text: p.value().unwrap_or_default().to_owned(),
            },
            version: p.version(),
        }));
    }
    Ok(parts)
}

/// The configuration's parts from `name`: every parameter under it when it ends in `/`, else
/// the one parameter.
pub async fn configuration(client: &aws_sdk_ssm::Client, name: &str) -> Result<Vec<Versioned>> {
    if name.ends_with('/') {
        parameters_under(client, name).await
    } else {
        Ok(vec![parameter(client, name).await?])
    }
}

/// The configuration in SSM under `name` (a parameter, or a path ending in `/`).
#[derive(Debug, Clone)]
pub struct SsmConfig {
    pub client: aws_sdk_ssm::Client,
    pub name: String,
}

#[async_trait::async_trait]
impl crate::ports::ConfigReader for SsmConfig {
    async fn parts(&self) -> Result<Vec<Versioned>> {
        configuration(&self.client, &self.name).await
    }
}
