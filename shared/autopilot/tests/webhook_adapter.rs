//! The webhook adapter over real HTTP on this machine: the URL comes from SSM (mocked) once per
//! cold start, the POST goes through the SDK's own HTTP client to a local server this test runs,
//! path and query (a Teams URL's signature) arrive intact, a 429's `Retry-After` is handed back,
//! a routed topic reaches SNS, ListTagsForResource's tags come back as a map, and no error quotes
//! the URL.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_ecs::types::Tag;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
use aws_sdk_ssm::types::Parameter;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use autopilot::aws::http::https_client_set_up_on_first_request;
use autopilot::aws::sns::SnsNotifier;
use autopilot::aws::webhook::Webhooks;
use autopilot::aws::AwsClients;
use autopilot::notify::Publish;
use autopilot::ports::{RetryAfter, TagReader};

/// One request as the server read it: request line and body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A local HTTP server answering each request with the next of `answers` (status, extra
/// header lines); gives its address and what it saw.
async fn server(answers: Vec<(u16, &'static str)>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        for (status, headers) in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|l| l.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_owned(), body.to_owned());
                    }
                }
                if n == 0 {
                    break (text, String::new());
                }
            };
            let request_line = head.lines().next().unwrap_or_default().to_owned();
            record.lock().unwrap().push((request_line, body));
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n{headers}\r\nok"
            );
            socket.write_all(reply.as_bytes()).await.unwrap();
            socket.shutdown().await.ok();
        }
    });
    (address, seen)
}

fn clients_with_url(url: String) -> AwsClients {
    let parameter = mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| {
            r.name() == Some("/autopilot/webhooks/teams") && r.with_decryption() == Some(true)
        })
        .then_output(move || {
            GetParameterOutput::builder()
                .parameter(Parameter::builder().value(url.clone()).build())
                .build()
        });
    let http = https_client_set_up_on_first_request(BehaviorVersion::latest()).unwrap();
    let config = aws_config::SdkConfig::builder().http_client(http).build();
    AwsClients::from_config(config).with_ssm(mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        &[&parameter]
    ))
}

fn webhooks(clients: &AwsClients) -> Webhooks {
    Webhooks::new(
        clients.clone(),
        [(
            "payments-teams".to_owned(),
            "/autopilot/webhooks/teams".to_owned(),
        )]
        .into(),
    )
}

#[tokio::test]
async fn posts_go_through_the_sdk_http_client_with_path_and_query_intact() {
    let (address, seen) = server(vec![(429, "retry-after: 3\r\n"), (202, "")]).await;
    let url = format!("http://{address}/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRET");
    let clients = clients_with_url(url);
    let webhooks = webhooks(&clients);
    let first = webhooks
        .post("payments-teams", r#"{"type":"message"}"#)
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.retry_after),
        (429, Some(RetryAfter::Seconds(3)))
    );
    let second = webhooks
        .post("payments-teams", r#"{"type":"message"}"#)
        .await
        .unwrap();
    assert_eq!(second.status, 202);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].0,
        "POST /workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRET HTTP/1.1"
    );
    assert_eq!(seen[1].1, r#"{"type":"message"}"#);
}

#[tokio::test]
async fn an_unreachable_webhook_is_an_error_that_does_not_quote_the_url() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let clients = clients_with_url(format!("http://{address}/hook?sig=SECRET"));
    let error = webhooks(&clients)
        .post("payments-teams", "{}")
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "WebhookFailed");
    let message = error.to_string();
    assert!(
        message.starts_with("webhook payments-teams failed: not reached"),
        "{message}"
    );
    assert!(
        !message.contains("SECRET") && !message.contains("/hook"),
        "{message}"
    );
    // A URL that is neither https nor this machine is refused before any request.
    let clients = clients_with_url("http://hooks.example.com/x".into());
    let error = webhooks(&clients)
        .post("payments-teams", "{}")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "webhook payments-teams failed: its URL is not https"
    );
    let error = webhooks(&clients).post("nobody", "{}").await.unwrap_err();
    assert_eq!(error.error_type(), "InvalidConfig");
}

#[tokio::test]
async fn a_routed_topic_is_published_to_and_tags_are_read_as_a_map() {
    let routed = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| r.topic_arn() == Some("arn:aws:sns:us-east-1:111122223333:payments"))
        .then_output(|| PublishOutput::builder().message_id("m-routed").build());
    let default = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| r.topic_arn() == Some("arn:aws:sns:us-east-1:111122223333:default"))
        .then_output(|| PublishOutput::builder().message_id("m-default").build());
    let clients = AwsClients::from_config(aws_config::SdkConfig::builder().build());
    let sns = SnsNotifier::new(
        clients.clone().with_sns(mock_client!(
            aws_sdk_sns,
            RuleMode::MatchAny,
            &[&routed, &default]
        )),
        "arn:aws:sns:us-east-1:111122223333:default",
    );
    let publish = Publish {
        subject: "s".into(),
        message: r#"{"default":"d"}"#.into(),
        attributes: Vec::new(),
        log_lines_dropped: 0,
    };
    assert_eq!(sns.publish(None, &publish).await.unwrap(), "m-default");
    assert_eq!(
        sns.publish(
            Some("arn:aws:sns:us-east-1:111122223333:payments"),
            &publish
        )
        .await
        .unwrap(),
        "m-routed"
    );
    let tags = mock!(aws_sdk_ecs::Client::list_tags_for_resource)
        .match_requests(|r| {
            r.resource_arn() == Some("arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api")
        })
        .then_output(|| {
            ListTagsForResourceOutput::builder()
                .tags(Tag::builder().key("team").value("payments").build())
                .tags(Tag::builder().key("tier").value("1").build())
                .build()
        });
    let ecs = AwsClients::from_config(aws_config::SdkConfig::builder().build())
        .with_ecs(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&tags]));
    let read = ecs
        .resource_tags("arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api")
        .await
        .unwrap();
    assert_eq!(
        read,
        [
            ("team".to_owned(), "payments".to_owned()),
            ("tier".to_owned(), "1".to_owned())
        ]
        .into()
    );
}
