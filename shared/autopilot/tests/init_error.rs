//! A failed initialisation reaches the Runtime API's `/runtime/init/error` with the error's
//! stable type and a message naming the field, against a one-request Runtime API stand-in.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use autopilot::entry::report_init_error;
use autopilot::error::AutopilotError;

/// What the stand-in received: request line, headers (lower-case names), body.
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Serves one request with `status`, and hands over what it received.
fn runtime_api(status: &'static str) -> (http::Uri, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map_or(0, |(_, value)| value.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        writer
            .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
            .unwrap();
        sender
            .send(Received {
                request_line,
                headers,
                body: String::from_utf8(body).unwrap(),
            })
            .unwrap();
    });
    (uri, receiver)
}

#[tokio::test]
async fn a_bad_config_is_posted_to_init_error_with_its_type_and_field() {
    let (uri, received) = runtime_api("202 Accepted");
    let error =
        AutopilotError::invalid_config("scaling.alarms.orders-backlog.min", "must be ≤ max");
    report_init_error(Some(uri), &error).await.unwrap();

    let request = received.recv().unwrap();
    assert!(
        request
            .request_line
            .starts_with("POST /2018-06-01/runtime/init/error "),
        "{}",
        request.request_line
    );
    assert!(request.headers.contains(&(
        "lambda-runtime-function-error-type".into(),
        "Runtime.InvalidConfig".into()
    )));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["errorType"], "InvalidConfig");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("scaling.alarms.orders-backlog.min"),
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_report_is_an_error() {
    let (uri, _received) = runtime_api("500 Internal Server Error");
    let error = AutopilotError::invalid_config("triage", "bad");
    assert!(report_init_error(Some(uri), &error).await.is_err());
}
