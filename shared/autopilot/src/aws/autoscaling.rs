//! Application Auto Scaling adapter: the [`ScalableTargets`] port, the bounds of a scalable
//! target registered for an ECS service, which `alarm-scaler` must respect besides its own
//! policy bounds.

use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};

use super::{aws_error, AwsClients};
use crate::error::Result;
use crate::ports::ScalableTargets;
use crate::scaling::TargetBounds;

/// The resource id of an ECS service: `service/<cluster name>/<service name>` (names, not ARNs).
pub fn ecs_resource_id(cluster: &str, service: &str) -> String {
    let name = |value: &str| crate::arn::last_segment(value).to_owned();
    format!("service/{}/{}", name(cluster), name(service))
}

#[async_trait]
impl ScalableTargets for AwsClients {
    /// The registered scalable target's [min, max], or `None` when none is registered.
    async fn service_bounds(&self, cluster: &str, service: &str) -> Result<Option<TargetBounds>> {
        service_bounds(self.autoscaling(), cluster, service).await
    }
}

async fn service_bounds(
    client: &aws_sdk_applicationautoscaling::Client,
    cluster: &str,
    service: &str,
) -> Result<Option<TargetBounds>> {
    let output = client
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_ids(ecs_resource_id(cluster, service))
        .send()
        .await
        .map_err(|e| aws_error("application-autoscaling", "DescribeScalableTargets", e))?;
    Ok(output
        .scalable_targets()
        .first()
        .map(|target| TargetBounds {
            min: target.min_capacity().max(0) as u32,
            max: target.max_capacity().max(0) as u32,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_id_uses_names() {
        assert_eq!(
            ecs_resource_id("shop", "orders-api"),
            "service/shop/orders-api"
        );
        assert_eq!(
            ecs_resource_id(
                "arn:aws:ecs:us-east-1:111122223333:cluster/shop",
                "arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api"
            ),
            "service/shop/orders-api"
        );
    }
}
