//! `medic-agent exec`: wraps a cron job. Records the start of a run, runs the command with its
//! output shown as usual and its tail captured, then reports completion or failure. The
//! command always runs and its exit code is always passed through, whatever Medic does.

use crate::client::{Client, RunReport};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::exec::{self, Tail, Tee};
use crate::shutdown;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The server keeps at most this much of a run's output; the end is what matters.
pub const OUTPUT_TAIL_BYTES: usize = 10 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const REPORT_ATTEMPTS: u32 = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub service: String,
    pub run_id: Option<String>,
    pub config: Option<PathBuf>,
    pub command: Vec<OsString>,
}

/// How the end of the run will be reported.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// `/complete` or `/fail` for this run id.
    Run(String),
    /// Older server without run tracking: plain heartbeat on success only.
    Legacy,
    /// Medic could not be reached or is not configured.
    Unreported,
}

struct CommandOutcome {
    exit_code: i32,
    duration: Duration,
    message: String,
    tail: String,
}

static CHILD_PID: AtomicI32 = AtomicI32::new(0);
static PENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Runs the wrapper; returns the exit code for the process.
pub fn run(opts: &Options) -> i32 {
    // Before any thread or child exists, so that all inherit the blocked mask (children get
    // it reset by the standard library).
    if let Err(e) = shutdown::handle_signals(
        &[libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT],
        forward_signal,
    ) {
        warn(&format!("signals will not be forwarded: {e}"));
    }
    let client = match connect(opts) {
        Ok(c) => Some(c),
        Err(e) => {
            warn(&format!("not reporting to Medic: {e}"));
            None
        }
    };
    let mode = match &client {
        Some(c) => start(c, opts),
        None => Mode::Unreported,
    };
    let outcome = run_command(&opts.command);
    if let Some(c) = &client {
        finish(c, &mode, &opts.service, &outcome);
    }
    outcome.exit_code
}

/// SIGTERM and SIGHUP go to the command. SIGINT and SIGQUIT are not forwarded: from a
/// terminal the command already receives them itself.
fn forward_signal(sig: libc::c_int) {
    if sig != libc::SIGTERM && sig != libc::SIGHUP {
        return;
    }
    let pid = CHILD_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    } else {
        PENDING_SIGNAL.store(sig, Ordering::SeqCst);
    }
}

fn connect(opts: &Options) -> Result<Client> {
    let from_config = |path: &Path| -> Result<Client> {
        let c = Config::load(path)?;
        let key = config::read_key_file(&c.key_file)?;
        Client::new(&c.server_url, &key, c.ca_file.as_deref(), CONNECT_TIMEOUT)
    };
    if let Some(path) = &opts.config {
        return from_config(path);
    }
    if let Some(url) = std::env::var_os("MEDIC_URL") {
        let url = config::validate_server_url(&url.to_string_lossy())?;
        let key = if let Some(key) = std::env::var_os("MEDIC_API_KEY") {
            config::validate_key(key.to_string_lossy().trim())
                .map_err(|m| Error::Config(format!("MEDIC_API_KEY: {m}")))?
        } else if let Some(file) = std::env::var_os("MEDIC_API_KEY_FILE") {
            config::read_key_file(Path::new(&file))?
        } else {
            return Err(Error::Config(
                "MEDIC_URL is set but neither MEDIC_API_KEY nor MEDIC_API_KEY_FILE".into(),
            ));
        };
        let ca = std::env::var_os("MEDIC_CA_FILE").map(PathBuf::from);
        return Client::new(&url, &key, ca.as_deref(), CONNECT_TIMEOUT);
    }
    let default = Path::new(config::DEFAULT_CONFIG_PATH);
    if default.exists() {
        return from_config(default);
    }
    Err(Error::Config(
        "no server configured: pass --config FILE or set MEDIC_URL and MEDIC_API_KEY".into(),
    ))
}

fn start(client: &Client, opts: &Options) -> Mode {
    let mut attempt = 1;
    loop {
        match client.heartbeat_start(&opts.service, opts.run_id.as_deref(), REQUEST_TIMEOUT) {
            Ok(id) => return Mode::Run(id),
            Err(e) if is_missing_endpoint(&e) => return Mode::Legacy,
            // Only a server that answered is retried: an unreachable one would delay the job.
            Err(e) if e.status().is_some() && e.is_retryable() && attempt < REPORT_ATTEMPTS => {
                thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
                attempt += 1;
            }
            Err(e) => {
                warn(&format!("could not record the start of the run: {e}"));
                return match &opts.run_id {
                    Some(id) => Mode::Run(id.clone()),
                    None => Mode::Unreported,
                };
            }
        }
    }
}

/// An older server has no `/start` route: 404 with the generic `not_found` code (or no
/// error envelope at all).
fn is_missing_endpoint(e: &Error) -> bool {
    matches!(e, Error::Status { status: 404, code, .. } if code == "not_found" || code.is_empty())
}

fn finish(client: &Client, mode: &Mode, service: &str, outcome: &CommandOutcome) {
    let success = outcome.exit_code == 0;
    let sent = match mode {
        Mode::Run(run_id) => {
            let report = RunReport {
                run_id,
                exit_code: outcome.exit_code,
                duration_ms: outcome.duration.as_millis() as u64,
                message: &outcome.message,
                output_tail: &outcome.tail,
            };
            retrying(|| client.heartbeat_finish(service, success, &report, REQUEST_TIMEOUT))
        }
        Mode::Legacy if success => retrying(|| client.heartbeat_up(service, REQUEST_TIMEOUT)),
        Mode::Legacy | Mode::Unreported => Ok(()),
    };
    if let Err(e) = sent {
        warn(&format!("could not report the end of the run: {e}"));
    }
}

fn retrying(send: impl Fn() -> Result<()>) -> Result<()> {
    let mut attempt = 1;
    loop {
        match send() {
            Err(e) if e.is_retryable() && attempt < REPORT_ATTEMPTS => {
                thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn run_command(command: &[OsString]) -> CommandOutcome {
    let started = Instant::now();
    let failed = |code: i32, message: String| {
        let _ = writeln!(std::io::stderr(), "medic-agent: {message}");
        CommandOutcome {
            exit_code: code,
            duration: started.elapsed(),
            tail: message.clone(),
            message,
        }
    };
    let Some((program, args)) = command.split_first() else {
        return failed(2, "no command given".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match exec::spawn_retrying(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            // The shell's conventions: 127 not found, 126 found but not executable.
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return failed(
                code,
                format!("cannot run {}: {e}", program.to_string_lossy()),
            );
        }
    };
    CHILD_PID.store(child.id() as i32, Ordering::SeqCst);
    let pending = PENDING_SIGNAL.swap(0, Ordering::SeqCst);
    if pending != 0 {
        forward_signal(pending);
    }

    let tail = Arc::new(Mutex::new(Tail::new(OUTPUT_TAIL_BYTES)));
    let (done_tx, done_rx) = mpsc::channel();
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        if exec::spawn_reader(out, tail.clone(), Tee::Stdout, done_tx.clone()).is_ok() {
            readers += 1;
        }
    }
    if let Some(err) = child.stderr.take() {
        if exec::spawn_reader(err, tail.clone(), Tee::Stderr, done_tx.clone()).is_ok() {
            readers += 1;
        }
    }
    drop(done_tx);
    let status = child.wait();
    CHILD_PID.store(0, Ordering::SeqCst);
    let duration = started.elapsed();
    exec::wait_readers(&done_rx, readers);
    let tail = {
        let mut guard = tail.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *guard, Tail::new(0)).into_string()
    };
    let (exit_code, message) = match status {
        Ok(st) => exit_code_and_message(st),
        Err(e) => (1, format!("cannot wait for the command: {e}")),
    };
    CommandOutcome {
        exit_code,
        duration,
        message,
        tail,
    }
}

fn exit_code_and_message(status: std::process::ExitStatus) -> (i32, String) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, format!("exited with code {code}")),
        // As a shell reports it: 128 + signal number.
        (None, Some(sig)) => (128 + sig, format!("killed by signal {sig}")),
        (None, None) => (1, "ended without an exit code".into()),
    }
}

fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "medic-agent: warning: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_endpoint_is_recognised() {
        let not_found = crate::client::status_error(
            404,
            r#"{"error":{"code":"not_found","message":"x","fields":{}}}"#,
        );
        assert!(is_missing_endpoint(&not_found));
        assert!(is_missing_endpoint(&crate::client::status_error(
            404, "<html>"
        )));
        let other = crate::client::status_error(
            404,
            r#"{"error":{"code":"service_not_found","message":"x","fields":{}}}"#,
        );
        assert!(!is_missing_endpoint(&other));
        assert!(!is_missing_endpoint(&crate::client::status_error(500, "")));
    }
}
