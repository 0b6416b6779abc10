//! `medic-agent exec`: start/complete/fail around a command, output teed and its tail
//! reported, the command's exit code passed through whatever the server does.

mod common;

use common::{MockServer, Reply, TestDir};
use serde_json::json;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_medic-agent");

fn medic_server() -> MockServer {
    MockServer::start(|req| {
        if req.path.ends_with("/start") {
            let run_id = req.json()["run_id"]
                .as_str()
                .unwrap_or("run-42")
                .to_string();
            return Reply::json(201, json!({"run_id": run_id, "service": "backup"}));
        }
        Reply::json(201, json!({"ok": true}))
    })
}

fn wrap(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("exec")
        .args(args)
        .env("MEDIC_URL", url)
        .env("MEDIC_API_KEY", "cron-key")
        .env_remove("MEDIC_API_KEY_FILE")
        .output()
        .unwrap()
}

#[test]
fn success_is_reported_as_complete() {
    let srv = medic_server();
    let out = wrap(
        &srv.url(),
        &[
            "--service",
            "backup",
            "--",
            "sh",
            "-c",
            "echo saved; echo note >&2",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    // The user still sees the output.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "saved\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("note\n"));

    let reqs = srv.requests();
    let paths: Vec<_> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v2/heartbeat/backup/start",
            "/v2/heartbeat/backup/complete"
        ]
    );
    assert_eq!(reqs[0].header("Authorization"), Some("Bearer cron-key"));
    assert_eq!(reqs[0].json(), json!({}));
    let done = reqs[1].json();
    assert_eq!(done["run_id"], "run-42");
    assert_eq!(done["exit_code"], 0);
    assert!(done["duration_ms"].is_u64());
    assert_eq!(done["message"], "exited with code 0");
    let tail = done["output_tail"].as_str().unwrap();
    assert!(
        tail.contains("saved\n") && tail.contains("note\n"),
        "{tail}"
    );
}

#[test]
fn failure_is_reported_and_exit_code_passed_through() {
    let srv = medic_server();
    let out = wrap(
        &srv.url(),
        &[
            "--service",
            "backup",
            "--run-id",
            "cron-7",
            "--",
            "sh",
            "-c",
            "echo disk full >&2; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let reqs = srv.requests();
    assert_eq!(reqs[0].json(), json!({"run_id": "cron-7"}));
    assert_eq!(reqs[1].path, "/v2/heartbeat/backup/fail");
    let body = reqs[1].json();
    assert_eq!(body["run_id"], "cron-7");
    assert_eq!(body["exit_code"], 3);
    assert_eq!(body["output_tail"], "disk full\n");
}

#[test]
fn output_tail_keeps_the_last_10240_bytes() {
    let srv = medic_server();
    let out = wrap(
        &srv.url(),
        &["--service", "backup", "--", "seq", "1", "20000"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), 108_894, "all output still reaches stdout");
    let body = srv.matching("POST", "/v2/heartbeat/backup/complete")[0].json();
    let tail = body["output_tail"].as_str().unwrap();
    assert!(tail.len() <= 10240 && tail.len() > 10000, "{}", tail.len());
    assert!(tail.ends_with("19999\n20000\n"));
}

#[test]
fn signal_death_is_a_failure_with_shell_exit_code() {
    let srv = medic_server();
    let out = wrap(
        &srv.url(),
        &["--service", "backup", "--", "sh", "-c", "kill -KILL $$"],
    );
    assert_eq!(out.status.code(), Some(128 + 9));
    let body = srv.matching("POST", "/v2/heartbeat/backup/fail")[0].json();
    assert_eq!(body["exit_code"], 137);
    assert_eq!(body["message"], "killed by signal 9");
}

#[test]
fn missing_command_exits_127_and_is_reported() {
    let srv = medic_server();
    let out = wrap(
        &srv.url(),
        &["--service", "backup", "--", "/nonexistent/cmd"],
    );
    assert_eq!(out.status.code(), Some(127));
    let body = srv.matching("POST", "/v2/heartbeat/backup/fail")[0].json();
    assert_eq!(body["exit_code"], 127);
}

#[test]
fn older_server_gets_a_plain_heartbeat_on_success_only() {
    let srv = MockServer::start(|req| {
        if req.path.ends_with("/start") {
            return Reply::error(404, "not_found");
        }
        Reply::json(201, json!({}))
    });
    let ok = wrap(&srv.url(), &["--service", "legacy", "--", "true"]);
    assert_eq!(ok.status.code(), Some(0));
    let bad = wrap(&srv.url(), &["--service", "legacy", "--", "false"]);
    assert_eq!(bad.status.code(), Some(1));

    let paths: Vec<_> = srv.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v2/heartbeat/legacy/start",
            "/v2/heartbeat/legacy",
            "/v2/heartbeat/legacy/start"
        ]
    );
    assert_eq!(
        srv.matching("POST", "/v2/heartbeat/legacy")[1].json(),
        json!({"status": "UP"})
    );
}

#[test]
fn unreachable_server_still_runs_the_command() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TestDir::new("wrapper-down");
    let marker = dir.join("ran");
    let out = wrap(
        &format!("http://127.0.0.1:{port}"),
        &[
            "--service",
            "backup",
            "--",
            "sh",
            "-c",
            &format!("touch {}; exit 4", marker.display()),
        ],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(marker.exists());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("medic-agent: warning:"), "{stderr}");
}

#[test]
fn server_errors_do_not_change_the_exit_code() {
    let srv = MockServer::start(|_| Reply::error(500, "boom").after(Duration::from_millis(10)));
    let out = wrap(&srv.url(), &["--service", "backup", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn unconfigured_wrapper_warns_and_runs() {
    let out = Command::new(BIN)
        .args([
            "exec",
            "--service",
            "x",
            "--config",
            "/nonexistent.toml",
            "--",
            "sh",
            "-c",
            "exit 5",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not reporting to Medic"));
}

#[test]
fn key_file_and_config_file_are_accepted() {
    let srv = medic_server();
    let dir = TestDir::new("wrapper-config");
    dir.write("key", "file-key\n");
    let cfg = dir.write(
        "agent.toml",
        &format!(
            "server_url = \"{}\"\nkey_file = \"key\"\nscripts_dir = \"scripts\"\n",
            srv.url()
        ),
    );
    let out = Command::new(BIN)
        .args(["exec", "--service", "a", "--config"])
        .arg(&cfg)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = Command::new(BIN)
        .args(["exec", "--service", "b", "--", "true"])
        .env("MEDIC_URL", srv.url())
        .env_remove("MEDIC_API_KEY")
        .env("MEDIC_API_KEY_FILE", dir.join("key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    for r in srv.requests() {
        assert_eq!(
            r.header("Authorization"),
            Some("Bearer file-key"),
            "{}",
            r.path
        );
    }
    assert_eq!(srv.requests().len(), 4);
}

#[test]
fn sigterm_is_forwarded_to_the_command() {
    let srv = medic_server();
    let dir = TestDir::new("wrapper-term");
    let ready = dir.join("ready");
    let mut child = Command::new(BIN)
        .args(["exec", "--service", "backup", "--", "sh", "-c"])
        .arg(format!(
            "trap 'echo got term; exit 42' TERM; touch {}; while :; do sleep 0.05; done",
            ready.display()
        ))
        .env("MEDIC_URL", srv.url())
        .env("MEDIC_API_KEY", "k")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(std::time::Instant::now() < until, "command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));
    let body = srv.matching("POST", "/v2/heartbeat/backup/fail")[0].json();
    assert_eq!(body["exit_code"], 42);
    assert_eq!(body["output_tail"], "got term\n");
}
