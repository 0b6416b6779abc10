//! The binary: version, hash, usage errors, and clean shutdown of `run` on SIGTERM.

mod common;

use common::{MockServer, Reply, TestDir};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_medic-agent");

#[test]
fn version_and_usage() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("medic-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(BIN).arg("bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}

#[test]
fn hash_prints_sha256_for_the_registry() {
    let dir = TestDir::new("hash");
    let f = dir.write("s.sh", "abc");
    let out = Command::new(BIN).arg("hash").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  {}\n",
            f.display()
        )
    );
    let out = Command::new(BIN)
        .args(["hash", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_config_exits_1_with_a_json_log_line() {
    let dir = TestDir::new("badcfg");
    let cfg = dir.write(
        "agent.toml",
        "server_url = \"ftp://x\"\nkey_file = \"k\"\nscripts_dir = \"s\"\n",
    );
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(
        v["error"].as_str().unwrap().contains("server_url"),
        "{line}"
    );
}

fn agent_host(url: &str, script: &str) -> (TestDir, std::path::PathBuf) {
    let dir = TestDir::new("cli-agent");
    let s = dir.script("scripts/slow.sh", script);
    let sha = common::sha256_file(&s);
    dir.write(
        "scripts.toml",
        &format!("[[script]]\nname = \"slow\"\npath = \"slow.sh\"\nsha256 = \"{sha}\"\n"),
    );
    dir.write("key", "k\n");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let cfg = dir.write(
        "agent.toml",
        &format!(
            "server_url = \"{url}\"\nkey_file = \"key\"\nscripts_dir = \"scripts\"\nwork_dir = \"work\"\n\
             shutdown_grace_seconds = 1\nmetrics_listen = \"127.0.0.1:0\"\n"
        ),
    );
    (dir, cfg)
}

fn spawn_agent(cfg: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn terminate_and_wait(child: &mut Child, within: Duration) -> i32 {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let until = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("agent did not exit within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_during_a_long_poll_exits_0_at_once() {
    let srv = MockServer::start(|req| {
        if req.is("POST", "/v2/agent/register") {
            return Reply::json(200, json!({"agent_id": "a", "poll_wait_seconds": 30}));
        }
        Reply::empty(204).after(Duration::from_secs(30))
    });
    let (_dir, cfg) = agent_host(&srv.url(), "#!/bin/sh\ntrue\n");
    let mut child = spawn_agent(&cfg);
    srv.wait_for("GET", "/v2/agent/jobs", 1, Duration::from_secs(10));
    let started = Instant::now();
    assert_eq!(terminate_and_wait(&mut child, Duration::from_secs(5)), 0);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn sigterm_during_a_job_stops_it_reports_it_and_exits_0() {
    let job_given = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let given = job_given.clone();
    let dir_marker = TestDir::new("cli-marker");
    let marker = dir_marker.join("started");
    let script = format!("#!/bin/sh\ntouch {}\nsleep 300\n", marker.display());
    let sha = {
        let tmp = TestDir::new("cli-sha");
        common::sha256_file(&tmp.write("x", &script))
    };
    let srv = MockServer::start(move |req| {
        if req.is("POST", "/v2/agent/register") {
            return Reply::json(200, json!({"agent_id": "a", "poll_wait_seconds": 30}));
        }
        if req.is("GET", "/v2/agent/jobs") {
            if !given.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Reply::json(
                    200,
                    json!({"id": "long-1", "script": {"name": "slow", "version": 1, "sha256": sha},
                           "args": {}, "timeout_seconds": 600, "limits": {}}),
                );
            }
            return Reply::empty(204).after(Duration::from_secs(30));
        }
        Reply::json(200, json!({}))
    });
    let (_dir, cfg) = agent_host(&srv.url(), &script);
    let mut child = spawn_agent(&cfg);
    let until = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < until, "job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(terminate_and_wait(&mut child, Duration::from_secs(10)), 0);
    let result = srv.matching("POST", "/v2/agent/jobs/long-1/result");
    assert_eq!(result.len(), 1, "{:#?}", srv.requests());
    let body = result[0].json();
    assert_eq!(body["signal"], libc::SIGTERM);
    assert_eq!(body["exit_code"], serde_json::Value::Null);
    assert_eq!(body["timed_out"], false);
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    use medic_agent::metrics::{serve, Metrics};
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = std::sync::Arc::new(Metrics::new());
    metrics.inc_skipped("cleanup", "hash_mismatch_disk");
    serve(format!("127.0.0.1:{port}").parse().unwrap(), metrics).unwrap();
    let send = |request: &str| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let get = |method: &str, path: &str| -> String {
        send(&format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ))
    };
    let text = get("GET", "/metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "{text}");
    assert!(text.contains(
        "medic_agent_script_skipped_total{script=\"cleanup\",reason=\"hash_mismatch_disk\"} 1"
    ));
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{head}"
    );
    assert!(get("GET", "/metrics?x=1").starts_with("HTTP/1.1 200"));
    let text = get("HEAD", "/metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "HEAD has no body: {text}");
    assert!(get("GET", "/other").starts_with("HTTP/1.1 404"));
    let text = get("POST", "/metrics");
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
    assert!(text.contains("\r\nAllow: GET, HEAD\r\n"), "{text}");
    assert!(send("nonsense\r\n\r\n").starts_with("HTTP/1.1 400"));
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert!(send(&huge).starts_with("HTTP/1.1 431"));
    // A client that connects and says nothing does not block the next one for long.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    assert!(get("GET", "/metrics").starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() < Duration::from_secs(8));
}
