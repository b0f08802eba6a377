//! Runs `bedrock-converse demo` (the README's first command) and `serve`, and checks
//! their output.

#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-converse");

#[test]
fn demo_runs_a_tool_round_trip() {
    let out = Command::new(BIN)
        .args(["demo", "--frame-delay-ms", "0", "--bench-deltas", "2000"])
        .output()
        .expect("run bedrock-converse demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    assert!(
        stdout.contains("mock Bedrock server on http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/model/us-east-1.mock.tools/converse-stream"),
        "{stdout}"
    );
    assert!(stdout.contains("user: What's the weather in Paris"), "{stdout}");
    // The parallel tool calls, with their parsed inputs.
    assert!(
        stdout.contains(r#"tool call get_weather {"city":"Paris"} [tooluse_"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"tool call add {"a":2,"b":3} [tooluse_"#),
        "{stdout}"
    );
    assert!(stdout.contains("stop: tool_use"), "{stdout}");
    // The results, then the answer that uses them.
    assert!(
        stdout.contains(r#"result get_weather = {"city":"Paris","conditions":"sunny","tempC":21}"#),
        "{stdout}"
    );
    assert!(stdout.contains("result add = 5"), "{stdout}");
    assert!(stdout.contains("stop: end_turn"), "{stdout}");
    let answer = stdout
        .lines()
        .rfind(|l| l.starts_with("assistant: "))
        .expect("an assistant line");
    assert!(
        answer.contains("returned 5") && answer.contains("sunny"),
        "{answer}"
    );
    assert!(stdout.contains("usage: "), "{stdout}");

    let last = stdout.lines().next_back().expect("a last line");
    assert!(last.starts_with("done: 2 turns, 2 requests, "), "{last}");
    for needle in [" frames, ", " bytes received", "; decode: ", " MB/s"] {
        assert!(last.contains(needle), "{needle} in {last}");
    }
    // 2000 text deltas plus messageStart, contentBlockStop, messageStop, metadata.
    assert!(last.contains("decode: 2004 frames / "), "{last}");
}

#[test]
fn serve_prints_its_url() {
    let mut child = Command::new(BIN)
        .args(["serve", "--key", "k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run bedrock-converse serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let second = lines.next().expect("a line").expect("utf-8");
    let status = first
        .strip_prefix("mock Bedrock listening on http://")
        .map(|addr| converse_status(addr, "k"));
    let unauthorized = first
        .strip_prefix("mock Bedrock listening on http://")
        .map(|addr| converse_status(addr, "wrong"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("mock Bedrock listening on http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        second.starts_with("url: http://127.0.0.1:") && second.ends_with("/model/"),
        "{second}"
    );
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(unauthorized.as_deref(), Some("HTTP/1.1 403 Forbidden"));
}

/// One raw HTTP/1.1 `/converse` call; returns the status line.
fn converse_status(addr: &str, key: &str) -> String {
    use std::io::{Read, Write};
    let body = r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        conn,
        "POST /model/us-east-1.mock.text/converse HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    response.lines().next().unwrap_or_default().to_owned()
}
