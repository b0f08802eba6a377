//! `bedrock-converse endpoint`: runs the binary on the example configs of the ECA editor's
//! Bedrock provider documentation ("the seed").

#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-converse");

mod common;
use common::seed::{CONFIG_EU_WEST_1 as SEED_EU, CONFIG_PROXY as SEED_PROXY};

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bedrock-converse-cli-endpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("endpoint")
        .args(args)
        .env("BEDROCK_API_KEY", "k")
        .env_remove("BEDROCK_CONVERSE_CONFIG")
        .output()
        .expect("run binary")
}

fn stdout_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout.clone()).expect("utf-8");
    assert_eq!(s.lines().count(), 1, "one line: {s:?}");
    assert!(s.ends_with('\n'));
    s.trim_end().to_string()
}

#[test]
fn endpoint_prints_seed_urls() {
    let proxy = write_config("proxy.json", SEED_PROXY);
    let proxy = proxy.to_str().expect("utf-8 path");
    assert_eq!(
        stdout_line(&run(&["--config", proxy, "bedrock/claude-3-sonnet"])),
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse-stream"
    );
    assert_eq!(
        stdout_line(&run(&["--config", proxy, "bedrock/claude-3-haiku"])),
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/us-east-1.anthropic.claude-3-haiku-20240307-v1:0/converse"
    );
    assert_eq!(
        stdout_line(&run(&["--config", proxy, "bedrock/claude-3-sonnet", "--no-stream"])),
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse"
    );
    let eu = write_config("eu.json", SEED_EU);
    assert_eq!(
        stdout_line(&run(&[
            "--config",
            eu.to_str().expect("utf-8"),
            "bedrock/cohere-command-r"
        ])),
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu-west-1.cohere.command-r-v1:0/converse"
    );
}

#[test]
fn endpoint_from_env_config_variable_and_without_key() {
    let eu = write_config("eu-env.json", SEED_EU);
    let out = Command::new(BIN)
        .args(["endpoint", "cohere.command-r-v1:0"])
        .env("BEDROCK_CONVERSE_CONFIG", &eu)
        .env_remove("BEDROCK_API_KEY")
        .output()
        .expect("run binary");
    assert_eq!(
        stdout_line(&out),
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu-west-1.cohere.command-r-v1:0/converse-stream"
    );
}

#[test]
fn endpoint_without_config_uses_aws_region() {
    let home = std::env::temp_dir().join(format!(
        "bedrock-converse-cli-endpoint-home-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&home).expect("home");
    let out = Command::new(BIN)
        .args(["endpoint", "us.anthropic.claude-sonnet-4-20250514-v1:0"])
        .env_remove("BEDROCK_CONVERSE_CONFIG")
        .env("HOME", &home)
        .env("AWS_REGION", "us-west-2")
        .output()
        .expect("run binary");
    assert_eq!(
        stdout_line(&out),
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/us.anthropic.claude-sonnet-4-20250514-v1:0/converse-stream"
    );
}

#[test]
fn endpoint_reports_bad_config() {
    let bad = write_config(
        "bad.json",
        "{ \"providers\": { \"bedrock\": { \"api\": \"bedrock\", ",
    );
    let out = run(&["--config", bad.to_str().expect("utf-8"), "x"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid config"), "{err}");
}
