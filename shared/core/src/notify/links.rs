//! AWS console links to a task, a service, a cluster's tasks, a CloudWatch Logs stream and a
//! CloudWatch alarm. A region comes from event data (an ARN, a task definition's
//! `awslogs-region`), so a link is made only for a region of AWS's shape: every link points at an
//! AWS console host, never at one an event names.

/// `region` when it has the shape of an AWS region (`us-east-1`, `us-gov-west-1`,
/// `ap-southeast-5`): two lowercase letters, one or more lowercase words, a number.
pub fn console_region(region: &str) -> Option<&str> {
    crate::arn::is_aws_region(region).then_some(region)
}

/// The console's task page.
pub fn task_url(region: &str, cluster: &str, task_id: &str) -> Option<String> {
    let region = console_region(region)?;
    Some(format!("https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/tasks/{}/configuration?region={region}", path(cluster), path(task_id)))
}

/// The console's service health page.
pub fn service_url(region: &str, cluster: &str, service: &str) -> Option<String> {
    let region = console_region(region)?;
    Some(format!("https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/health?region={region}", path(cluster), path(service)))
}

/// The console's list of a cluster's tasks.
pub fn cluster_tasks_url(region: &str, cluster: &str) -> Option<String> {
    let region = console_region(region)?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/tasks?region={region}",
        path(cluster)
    ))
}

/// The console's log-events page for one stream.
pub fn log_stream_url(region: &str, group: &str, stream: &str) -> Option<String> {
    let region = console_region(region)?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
        console_fragment(group),
        console_fragment(stream)
    ))
}

/// The CloudWatch console's page of one alarm.
pub fn alarm_url(region: &str, alarm_name: &str) -> Option<String> {
    let region = console_region(region)?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
        path(alarm_name)
    ))
}

/// Percent-encodes a URL path segment (RFC 3986 unreserved characters stay).
fn path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The CloudWatch console's fragment encoding: percent-encoding with `%` written as `$25`.
fn console_fragment(value: &str) -> String {
    path(value).replace('%', "$25")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_stream_links_use_the_console_fragment_encoding() {
        let url = log_stream_url("us-east-1", "/ecs/orders-api", "ecs/orders-api/abc").unwrap();
        assert!(
            url.ends_with(
                "log-group/$252Fecs$252Forders-api/log-events/ecs$252Forders-api$252Fabc"
            ),
            "{url}"
        );
    }

    #[test]
    fn task_and_service_links() {
        assert_eq!(
            task_url("eu-west-1", "shop", "abc").unwrap(),
            "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/shop/tasks/abc/configuration?region=eu-west-1"
        );
        assert!(service_url("eu-west-1", "shop", "orders api")
            .unwrap()
            .contains("/services/orders%20api/health"));
    }

    #[test]
    fn a_region_not_of_aws_shape_makes_no_link() {
        for region in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-5",
            "cn-northwest-1",
        ] {
            assert_eq!(console_region(region), Some(region));
        }
        for region in [
            "evil.example/#",
            "evil.example/#us-east-1",
            "us-east-1.evil.example",
            "US-EAST-1",
            "us-east",
            "us--1",
            "u-east-1",
            "",
        ] {
            assert_eq!(console_region(region), None, "{region}");
            assert_eq!(task_url(region, "shop", "abc"), None);
            assert_eq!(log_stream_url(region, "/ecs/a", "s"), None);
            assert_eq!(alarm_url(region, "a"), None);
        }
    }
}
