//! Client tests against a real HTTP/1.1 server on 127.0.0.1 (a few lines of std networking,
//! one request per connection).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use super::*;

/// A recorded request.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    body: String,
}

/// Serve `replies.len()` connections, answering them in order with `(status, content_type,
/// body)`; every request is sent on the returned channel.
fn serve(replies: Vec<(u16, &'static str, String)>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, ctype, body) in replies {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut buf = vec![0u8; len];
            reader.read_exact(&mut buf).unwrap();
            let _ = tx.send(Seen {
                method,
                path,
                body: String::from_utf8(buf).unwrap(),
            });
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    (url, rx)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn start_and_stop_post_the_expected_bodies() {
    let (url, seen) = serve(vec![
        (200, "text/plain", "Start profiling.\n".into()),
        (
            200,
            "text/plain",
            "Stop profiling. This will take some time.\n".into(),
        ),
    ]);
    let http = http_client().unwrap();
    let body = ProfileReqInput {
        output_dir: Some("/tmp/x".into()),
        num_steps: Some(5),
        activities: Some(vec!["CPU".into()]),
        ..Default::default()
    };
    rt().block_on(async {
        assert_eq!(
            start_profile(&http, &format!("{url}/"), &body)
                .await
                .unwrap(),
            "Start profiling.\n"
        );
        assert_eq!(
            stop_profile(&http, &url).await.unwrap(),
            "Stop profiling. This will take some time.\n"
        );
    });
    let start = seen.recv().unwrap();
    assert_eq!(
        (start.method.as_str(), start.path.as_str()),
        ("POST", "/start_profile")
    );
    let sent: ProfileReqInput = serde_json::from_str(&start.body).unwrap();
    assert_eq!(sent, body);
    let stop = seen.recv().unwrap();
    assert_eq!(stop.path, "/stop_profile");
    assert_eq!(stop.body, "{}");
}

#[test]
fn server_errors_carry_the_server_message() {
    let (url, _seen) = serve(vec![(
        409,
        "text/plain",
        "Profiling is already in progress. Call /stop_profile first.".into(),
    )]);
    let http = http_client().unwrap();
    let err = rt()
        .block_on(start_profile(&http, &url, &ProfileReqInput::default()))
        .unwrap_err();
    assert!(matches!(err, ClientError::Status { status: 409, .. }));
    assert!(err
        .to_string()
        .ends_with("HTTP 409: Profiling is already in progress. Call /stop_profile first."));
}

#[test]
fn pd_fan_out_calls_every_worker_and_reports_each() {
    let (prefill, p_seen) = serve(vec![(200, "text/plain", "Start profiling.\n".into())]);
    let (decode, d_seen) = serve(vec![(500, "text/plain", "Internal Server Error".into())]);
    let targets = pd_targets(std::slice::from_ref(&prefill), &[format!("{decode}/")]);
    assert_eq!(
        targets.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
        ["Prefill-0", "Decode-0"]
    );
    let http = http_client().unwrap();
    let results = rt().block_on(start_profile_all(&http, &targets, |t| ProfileReqInput {
        profile_prefix: Some(t.label.clone()),
        ..Default::default()
    }));
    assert!(results[0].result.is_ok());
    assert!(matches!(
        results[1].result,
        Err(ClientError::Status { status: 500, .. })
    ));
    let p: ProfileReqInput = serde_json::from_str(&p_seen.recv().unwrap().body).unwrap();
    assert_eq!(p.profile_prefix.as_deref(), Some("Prefill-0"));
    let d: ProfileReqInput = serde_json::from_str(&d_seen.recv().unwrap().body).unwrap();
    assert_eq!(d.profile_prefix.as_deref(), Some("Decode-0"));
}

#[test]
fn server_info_falls_back_to_the_new_endpoint() {
    let (url, seen) = serve(vec![
        (404, "text/plain", "Not Found".into()),
        (200, "application/json", "{\"tp_size\": 1}".into()),
    ]);
    let http = http_client().unwrap();
    let info = rt().block_on(server_info(&http, &url)).unwrap();
    assert_eq!(info["tp_size"], 1);
    assert_eq!(seen.recv().unwrap().path, "/get_server_info");
    assert_eq!(seen.recv().unwrap().path, "/server_info");
}

fn opts(stream: bool) -> SendOneOptions {
    SendOneOptions {
        prompt: SEND_ONE_PROMPT.into(),
        batch_size: 1,
        different_prompts: false,
        temperature: 0.0,
        max_new_tokens: 8,
        frequency_penalty: 0.0,
        presence_penalty: 0.0,
        json: false,
        return_logprob: false,
        image: false,
        many_images: false,
        stream,
    }
}

#[test]
fn send_one_non_streaming() {
    let reply = serde_json::json!({
        "text": " hello",
        "meta_info": {"e2e_latency": 0.5, "completion_tokens": 4, "spec_verify_ct": 2}
    });
    let (url, seen) = serve(vec![(200, "application/json", reply.to_string())]);
    let http = http_client().unwrap();
    let r = rt()
        .block_on(send_one(&http, &url, &opts(false), |_| {
            panic!("not streaming")
        }))
        .unwrap();
    assert_eq!(r.text, " hello");
    assert_eq!(r.tokens, 4);
    assert_eq!(r.latency_s, 0.5);
    assert_eq!(r.acc_length, 2.0);
    assert_eq!(r.speed, 8.0);
    let req = seen.recv().unwrap();
    assert_eq!(req.path, "/generate");
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["sampling_params"]["max_new_tokens"], 8);
    assert_eq!(
        body["sampling_params"]["stop"],
        serde_json::json!(["Question", "Assistant:", "<|separator|>", "<|eos|>"])
    );
    assert_eq!(body["stream"], false);
    assert_eq!(body["image_data"], Value::Null);
}

#[test]
fn send_one_streaming_prints_deltas_of_cumulative_text() {
    let sse = [
        serde_json::json!({"text": "He", "meta_info": {"e2e_latency": 0.1, "completion_tokens": 1}}),
        serde_json::json!({"text": "Hello", "meta_info": {"e2e_latency": 0.2, "completion_tokens": 2}}),
    ]
    .iter()
    .map(|v| format!("data: {v}\n\n"))
    .collect::<String>()
        + "data: [DONE]\n\n";
    let (url, _seen) = serve(vec![(200, "text/event-stream", sse)]);
    let http = http_client().unwrap();
    let mut deltas = Vec::new();
    let r = rt()
        .block_on(send_one(&http, &url, &opts(true), |d| {
            deltas.push(d.to_string())
        }))
        .unwrap();
    assert_eq!(deltas, ["He", "llo"]);
    assert_eq!(r.text, "Hello");
    assert_eq!(r.tokens, 2);
    assert_eq!(r.acc_length, 1.0);
}

#[test]
fn send_one_body_variants() {
    let mut o = opts(false);
    o.batch_size = 2;
    o.different_prompts = true;
    o.json = true;
    let body = send_one_body(&o);
    let texts = body["text"].as_array().unwrap();
    assert!(texts[1]
        .as_str()
        .unwrap()
        .starts_with("Test case 2: Human: What is the capital"));
    assert_eq!(body["sampling_params"]["json_schema"], "$$ANY$$");
}

#[test]
fn timestamped_dir_is_created_under_the_normalized_base() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("a/../b/.");
    let dir = timestamped_output_dir(Some(&base), Some("run1")).unwrap();
    assert!(dir.is_dir());
    assert_eq!(dir.parent().unwrap(), tmp.path().join("b/run1"));
    let leaf: f64 = dir.file_name().unwrap().to_str().unwrap().parse().unwrap();
    assert!(leaf > 1.6e9);
}

#[test]
fn written_traces_lists_rank_merged_and_memory_files_only() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "1.5-TP-0-DP-1.trace.json.gz",
        "merged-1.5.trace.json.gz",
        "1.6-TP-0-memory.json.gz",
        "server_args.json",
        ".1.5-TP-0.trace.json.gz.tmp-7-1",
    ] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let found: Vec<String> = written_traces(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        found,
        [
            "1.5-TP-0-DP-1.trace.json.gz",
            "1.6-TP-0-memory.json.gz",
            "merged-1.5.trace.json.gz"
        ]
    );
    assert!(written_traces(&dir.path().join("missing"))
        .unwrap()
        .is_empty());
}
