//! Scripts run in their own process group, under rlimits, with a cleared environment; output
//! is capped to its tail and a timeout takes down the whole group.

mod common;

use common::TestDir;
use medic_agent::exec::{run_limited, ExecLimits, Outcome, Spec, Stop};
use std::path::Path;
use std::time::{Duration, Instant};

fn limits() -> ExecLimits {
    ExecLimits {
        timeout: Duration::from_secs(20),
        cpu_seconds: 20,
        memory_mb: 512,
        open_files: 64,
        processes: 64,
        output_bytes: 4096,
    }
}

fn env() -> Vec<(String, String)> {
    vec![("PATH".into(), "/usr/bin:/bin".into())]
}

fn run_script(dir: &TestDir, body: &str, limits: ExecLimits) -> Outcome {
    run_script_args(dir, body, limits, &[])
}

fn run_script_args(dir: &TestDir, body: &str, limits: ExecLimits, args: &[String]) -> Outcome {
    let script = dir.script("job.sh", &format!("#!/bin/sh\n{body}\n"));
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let env = env();
    let spec = Spec {
        program: &script,
        args,
        cwd: &work,
        env: &env,
        limits,
    };
    run_limited(&spec, None).unwrap()
}

#[test]
fn exit_code_and_output_are_captured() {
    let dir = TestDir::new("exit");
    let out = run_script(&dir, "echo out; echo err >&2; exit 7", limits());
    assert_eq!(out.exit_code, Some(7));
    assert_eq!(out.signal, None);
    assert_eq!(out.stdout_tail, "out\n");
    assert_eq!(out.stderr_tail, "err\n");
    assert!(!out.timed_out);
}

#[test]
fn arguments_are_passed_without_a_shell() {
    let dir = TestDir::new("args");
    let args = vec!["--name=a b; echo pwned".to_string(), "--n=1".to_string()];
    let out = run_script_args(
        &dir,
        "for a in \"$@\"; do echo \"[$a]\"; done",
        limits(),
        &args,
    );
    assert_eq!(out.stdout_tail, "[--name=a b; echo pwned]\n[--n=1]\n");
}

#[test]
fn output_cap_keeps_the_tail() {
    let dir = TestDir::new("cap");
    let mut l = limits();
    l.output_bytes = 1000;
    let out = run_script(&dir, "seq 1 100000", l);
    assert_eq!(out.exit_code, Some(0));
    assert!(out.stdout_tail.len() <= 1000);
    assert!(
        out.stdout_tail.ends_with("99999\n100000\n"),
        "{:?}",
        &out.stdout_tail
    );
}

#[test]
fn timeout_kills_the_process_group_including_grandchildren() {
    let dir = TestDir::new("timeout");
    let pidfile = dir.join("grandchild.pid");
    let mut l = limits();
    l.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let out = run_script(
        &dir,
        &format!(
            "sh -c 'sleep 300; echo survived' &\necho $! > {}\nsleep 300",
            pidfile.display()
        ),
        l,
    );
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert_eq!(out.signal, Some(libc::SIGTERM));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while common::process_alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !common::process_alive(pid),
        "grandchild {pid} survived the timeout"
    );
}

#[test]
fn script_ignoring_sigterm_is_killed() {
    let dir = TestDir::new("ignore-term");
    let mut l = limits();
    l.timeout = Duration::from_millis(500);
    let out = run_script(&dir, "trap '' TERM\nwhile :; do sleep 1; done", l);
    assert!(out.timed_out);
    assert_eq!(out.signal, Some(libc::SIGKILL));
}

#[test]
fn background_leftovers_are_killed_when_the_script_ends() {
    let dir = TestDir::new("leftover");
    let pidfile = dir.join("bg.pid");
    let out = run_script(
        &dir,
        &format!("sleep 300 &\necho $! > {}\nexit 0", pidfile.display()),
        limits(),
    );
    assert_eq!(out.exit_code, Some(0));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while common::process_alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!common::process_alive(pid));
}

#[test]
fn memory_hog_is_stopped_by_rlimit_as() {
    let dir = TestDir::new("memhog");
    let mut l = limits();
    l.memory_mb = 64;
    // Doubles a string until allocation fails; without the limit it would take gigabytes.
    let out = run_script(&dir, "awk 'BEGIN { s = \"x\"; while (1) s = s s }'", l);
    assert!(!out.timed_out, "{out:?}");
    assert_ne!(out.exit_code, Some(0), "{out:?}");
}

#[test]
fn cpu_limit_stops_a_busy_loop() {
    let dir = TestDir::new("cpu");
    let mut l = limits();
    l.cpu_seconds = 1;
    let out = run_script(&dir, "while :; do :; done", l);
    assert!(!out.timed_out);
    assert!(
        out.signal == Some(libc::SIGXCPU) || out.signal == Some(libc::SIGKILL),
        "{out:?}"
    );
}

/// The limits' values as the script's own /proc/PID/limits shows them.
#[cfg(target_os = "linux")]
fn limits_seen_by_script(name: &str, l: ExecLimits) -> Vec<Vec<String>> {
    let dir = TestDir::new(name);
    let out = run_script(&dir, "cat /proc/$$/limits", l);
    out.stdout_tail
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[cfg(target_os = "linux")]
fn limit_line<'a>(lines: &'a [Vec<String>], name: &str) -> &'a [String] {
    lines
        .iter()
        .find(|l| l.join(" ").starts_with(name))
        .unwrap_or_else(|| panic!("{name} missing in {lines:?}"))
}

#[cfg(target_os = "linux")]
#[test]
fn rlimits_are_applied() {
    let mut l = limits();
    l.cpu_seconds = 42;
    l.open_files = 77;
    l.processes = 55;
    let lines = limits_seen_by_script("rlimits", l);
    assert_eq!(limit_line(&lines, "Max cpu time")[3], "42");
    assert_eq!(limit_line(&lines, "Max open files")[3], "77");
    assert_eq!(limit_line(&lines, "Max processes")[2], "55");
}

#[cfg(target_os = "linux")]
#[test]
fn address_space_limit_is_applied() {
    let mut l = limits();
    l.memory_mb = 300;
    let lines = limits_seen_by_script("rlimit-as", l);
    assert_eq!(
        limit_line(&lines, "Max address space")[3],
        (300u64 * 1024 * 1024).to_string()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn script_has_own_group_clean_env_and_no_blocked_signals() {
    std::env::set_var("MEDIC_TEST_SECRET", "leak");
    let dir = TestDir::new("env");
    let out = run_script(
        &dir,
        "env | sort\necho pgid=$(ps -o pgid= $$ | tr -d ' ') pid=$$\ngrep SigBlk /proc/self/status\npwd",
        limits(),
    );
    let text = &out.stdout_tail;
    assert!(!text.contains("MEDIC_TEST_SECRET"), "{text}");
    assert!(text.contains("PATH=/usr/bin:/bin"), "{text}");
    let pg = text.lines().find(|l| l.starts_with("pgid=")).unwrap();
    let (pgid, pid) = pg.split_once(' ').unwrap();
    assert_eq!(
        pgid.trim_start_matches("pgid="),
        pid.trim_start_matches("pid="),
        "{pg}"
    );
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    assert!(text.trim_end().ends_with("/work"), "{text}");
}

#[test]
fn stop_request_terminates_after_the_grace_period() {
    let dir = TestDir::new("stop");
    let script = dir.script("job.sh", "#!/bin/sh\nsleep 300\n");
    let env = env();
    let spec = Spec {
        program: &script,
        args: &[],
        cwd: Path::new("/"),
        env: &env,
        limits: limits(),
    };
    let requested = || true;
    let stop = Stop {
        requested: &requested,
        grace: Duration::from_millis(300),
    };
    let started = Instant::now();
    let out = run_limited(&spec, Some(&stop)).unwrap();
    assert!(out.interrupted && !out.timed_out);
    assert_eq!(out.signal, Some(libc::SIGTERM));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn missing_program_is_an_error() {
    let env = env();
    let spec = Spec {
        program: Path::new("/nonexistent/script"),
        args: &[],
        cwd: Path::new("/"),
        env: &env,
        limits: limits(),
    };
    let e = run_limited(&spec, None).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
}
