//! The agent loop: register, long-poll for jobs, check, run and report them.

use crate::backoff::Backoff;
use crate::client::{Client, Job, JobResult, Registration, ScriptRecord, VERSION};
use crate::config::{self, Config, Limits};
use crate::error::{Error, Result};
use crate::exec::{self, ExecLimits, Spec, Stop};
use crate::log;
use crate::metrics::{self, Metrics};
use crate::registry::{self, Prepared, Registry, Skip, SkipReason};
use crate::shutdown::{self, Shutdown};
use serde_json::Value;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Attempts to deliver a result or skip report before it is given up (logged as lost).
const REPORT_ATTEMPTS: u32 = 8;
const REPORT_ATTEMPTS_SHUTTING_DOWN: u32 = 3;

pub struct Agent {
    config: Config,
    registry: Registry,
    client: Client,
    metrics: Arc<Metrics>,
    shutdown: Arc<Shutdown>,
    jobs_started: AtomicU64,
}

/// `medic-agent run`: loads everything, installs signal handling and runs until SIGTERM/SIGINT.
pub fn run(config_path: &Path) -> Result<()> {
    limit_malloc_arenas();
    let config = Config::load(config_path)?;
    let registry = Registry::load(&config.registry_file, &config.scripts_dir)?;
    let key = config::read_key_file(&config.key_file)?;
    warn_if_exposed(&config.key_file);
    if config.server_url.starts_with("http://") && !is_loopback_url(&config.server_url) {
        log::warn(
            "server_url uses plain http: the API key travels unencrypted",
            &[("server_url", config.server_url.clone().into())],
        );
    }

    let shutdown = Arc::new(Shutdown::new());
    install_signal_handling(shutdown.clone())?;

    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = config.metrics_listen {
        metrics::serve(addr, metrics.clone())?;
    }
    let client = Client::new(
        &config.server_url,
        &key,
        config.ca_file.as_deref(),
        Duration::from_secs(10),
    )?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.work_dir)
        .map_err(|e| {
            Error::io(
                format!("cannot create work_dir {}", config.work_dir.display()),
                e,
            )
        })?;
    log::info(
        "agent starting",
        &[
            ("version", VERSION.into()),
            ("server_url", config.server_url.clone().into()),
            ("scripts", registry.len().into()),
        ],
    );
    let agent = Agent::new(config, registry, client, metrics, shutdown);
    agent.run()?;
    log::info("agent stopped", &[]);
    Ok(())
}

fn install_signal_handling(shutdown: Arc<Shutdown>) -> Result<()> {
    shutdown::handle_signals(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP], move |sig| {
        if sig == libc::SIGHUP {
            log::info(
                "SIGHUP ignored: restart the agent to reload its configuration",
                &[],
            );
            return;
        }
        if shutdown.is_requested() {
            log::info("already shutting down", &[("signal", sig.into())]);
            return;
        }
        let idle = shutdown.request();
        log::info(
            "shutdown requested",
            &[("signal", sig.into()), ("job_running", (!idle).into())],
        );
        if idle {
            // Blocked in a long poll or a backoff sleep: nothing to finish or report.
            log::info("agent stopped", &[]);
            std::process::exit(0);
        }
    })
}

impl Agent {
    pub fn new(
        config: Config,
        registry: Registry,
        client: Client,
        metrics: Arc<Metrics>,
        shutdown: Arc<Shutdown>,
    ) -> Agent {
        Agent {
            config,
            registry,
            client,
            metrics,
            shutdown,
            jobs_started: AtomicU64::new(0),
        }
    }

    /// Runs until shutdown is requested. Errors only when the server refuses registration.
    pub fn run(&self) -> Result<()> {
        self.check_scripts_on_disk();
        release_free_memory();
        let mut backoff = Backoff::default();
        let mut wait = match self.register(&mut backoff)? {
            Some(w) => w,
            None => return Ok(()),
        };
        release_free_memory();
        while !self.shutdown.is_requested() {
            match self.client.poll(wait) {
                Ok(None) => backoff.reset(),
                Ok(Some(raw)) => {
                    backoff.reset();
                    self.handle(raw);
                    release_free_memory();
                }
                Err(e) if e.is_retryable() => {
                    let delay = backoff.next_delay();
                    log::warn(
                        "job poll failed; retrying",
                        &[
                            ("error", e.to_string().into()),
                            ("retry_in_ms", (delay.as_millis() as u64).into()),
                        ],
                    );
                    self.shutdown.sleep(delay);
                }
                Err(e) => {
                    // A 4xx here usually means the server forgot this agent (restart, data
                    // reset): register again, which fails loudly if the key was revoked.
                    let delay = backoff.next_delay();
                    log::warn(
                        "job poll refused; registering again",
                        &[
                            ("error", e.to_string().into()),
                            ("retry_in_ms", (delay.as_millis() as u64).into()),
                        ],
                    );
                    if self.shutdown.sleep(delay) {
                        break;
                    }
                    wait = match self.register(&mut backoff)? {
                        Some(w) => w,
                        None => break,
                    };
                }
            }
        }
        Ok(())
    }

    /// Registers, retrying while the server is unreachable. `Ok(None)` on shutdown.
    fn register(&self, backoff: &mut Backoff) -> Result<Option<u64>> {
        let registration = Registration {
            hostname: crate::client::hostname(),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            agent_version: VERSION,
            labels: &self.config.labels,
            scripts: self
                .registry
                .scripts()
                .map(|s| ScriptRecord {
                    name: &s.name,
                    sha256: &s.sha256,
                })
                .collect(),
        };
        loop {
            if self.shutdown.is_requested() {
                return Ok(None);
            }
            match self.client.register(&registration) {
                Ok(registered) => {
                    let wait = match registered.poll_wait_seconds {
                        Some(w) if w > 0 => w.min(300),
                        _ => self.config.poll_wait_seconds,
                    };
                    log::info(
                        "registered",
                        &[
                            ("agent_id", registered.agent_id.into()),
                            ("poll_wait_seconds", wait.into()),
                        ],
                    );
                    return Ok(Some(wait));
                }
                Err(e) if e.is_retryable() => {
                    let delay = backoff.next_delay();
                    log::warn(
                        "registration failed; retrying",
                        &[
                            ("error", e.to_string().into()),
                            ("retry_in_ms", (delay.as_millis() as u64).into()),
                        ],
                    );
                    self.shutdown.sleep(delay);
                }
                Err(e) => {
                    log::error("registration refused", &[("error", e.to_string().into())]);
                    return Err(e);
                }
            }
        }
    }

    /// Handles one job from the server: refuse it with a reason, or run it; then report.
    pub fn handle(&self, raw: Value) {
        let id = match raw.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                log::error("job without an id ignored", &[("job", raw)]);
                return;
            }
        };
        let script = raw
            .pointer("/script/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !self.shutdown.begin_job() {
            self.skip(
                &id,
                &script,
                Skip::new(SkipReason::ShuttingDown, "agent is shutting down"),
            );
        } else {
            match serde_json::from_value::<Job>(raw) {
                Ok(job) => self.run_job(&job),
                Err(e) => self.skip(
                    &id,
                    &script,
                    Skip::new(SkipReason::InvalidArgs, format!("malformed job: {e}")),
                ),
            }
        }
        self.shutdown.end_job();
    }

    fn run_job(&self, job: &Job) {
        log::info(
            "job received",
            &[
                ("job_id", job.id.clone().into()),
                ("script", job.script.name.clone().into()),
                ("script_version", job.script.version.into()),
            ],
        );
        if self.shutdown.is_requested() {
            let skip = Skip::new(SkipReason::ShuttingDown, "agent is shutting down");
            return self.skip(&job.id, &job.script.name, skip);
        }
        match self
            .registry
            .prepare(&job.script.name, &job.script.sha256, &job.args)
        {
            Ok(prepared) => self.execute(job, prepared),
            Err(skip) => self.skip(&job.id, &job.script.name, skip),
        }
    }

    fn execute(&self, job: &Job, prepared: Prepared) {
        let limits = effective_limits(job, &self.config.limits);
        let n = self.jobs_started.fetch_add(1, Ordering::Relaxed);
        let (result, status) = match self.execute_in_dir(job, &prepared, limits, n) {
            Ok(outcome) => {
                let status = if outcome.timed_out {
                    "timeout"
                } else if outcome.exit_code == Some(0) {
                    "success"
                } else {
                    "failure"
                };
                let result = JobResult {
                    exit_code: outcome.exit_code,
                    duration_ms: outcome.duration.as_millis() as u64,
                    stdout_tail: outcome.stdout_tail,
                    stderr_tail: outcome.stderr_tail,
                    timed_out: outcome.timed_out,
                    signal: outcome.signal,
                };
                if outcome.interrupted {
                    log::warn(
                        "job stopped because the agent is shutting down",
                        &[("job_id", job.id.clone().into())],
                    );
                }
                (result, status)
            }
            Err(e) => {
                let code = match &e {
                    Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                        127
                    }
                    _ => 126,
                };
                let result = JobResult {
                    exit_code: Some(code),
                    duration_ms: 0,
                    stdout_tail: String::new(),
                    stderr_tail: format!("medic-agent: {e}"),
                    timed_out: false,
                    signal: None,
                };
                (result, "error")
            }
        };
        log::info(
            "job finished",
            &[
                ("job_id", job.id.clone().into()),
                ("script", job.script.name.clone().into()),
                ("status", status.into()),
                ("exit_code", result.exit_code.into()),
                ("signal", result.signal.into()),
                ("timed_out", result.timed_out.into()),
                ("duration_ms", result.duration_ms.into()),
            ],
        );
        self.metrics.inc_execution(&job.script.name, status);
        self.deliver("result", &job.id, || {
            self.client.report_result(&job.id, &result)
        });
    }

    fn execute_in_dir(
        &self,
        job: &Job,
        prepared: &Prepared,
        limits: ExecLimits,
        n: u64,
    ) -> Result<exec::Outcome> {
        let dir = JobDir::create(&self.config.work_dir, &job.id, n)?;
        let file_name = prepared
            .script
            .path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("script");
        let program = dir.install_script(file_name, &prepared.bytes)?;
        let work = dir.work();
        let work_str = work.to_string_lossy().into_owned();
        let env = vec![
            ("PATH".to_string(), self.config.job_path.clone()),
            (
                "LANG".to_string(),
                std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
            ),
            ("HOME".to_string(), work_str.clone()),
            ("TMPDIR".to_string(), work_str),
            ("MEDIC_JOB_ID".to_string(), job.id.clone()),
        ];
        let spec = Spec {
            program: &program,
            args: &prepared.argv,
            cwd: &work,
            env: &env,
            limits,
        };
        let requested = || self.shutdown.is_requested();
        let stop = Stop {
            requested: &requested,
            grace: self.config.shutdown_grace,
        };
        exec::run_limited(&spec, Some(&stop))
            .map_err(|e| Error::io(format!("cannot execute {}", prepared.script.name), e))
    }

    fn skip(&self, job_id: &str, script: &str, skip: Skip) {
        log::warn(
            "job skipped",
            &[
                ("job_id", job_id.into()),
                ("script", script.into()),
                ("reason", skip.reason.as_str().into()),
                ("detail", skip.detail.clone().into()),
            ],
        );
        self.metrics.inc_skipped(script, skip.reason.as_str());
        self.deliver("skipped", job_id, || {
            self.client
                .report_skipped(job_id, skip.reason.as_str(), &skip.detail)
        });
    }

    /// Sends a report, retrying with backoff while the server is unreachable; fewer and
    /// shorter retries once shutdown is under way.
    fn deliver(&self, what: &str, job_id: &str, send: impl Fn() -> Result<()>) {
        let mut backoff = Backoff::default();
        let mut attempt = 1;
        loop {
            let err = match send() {
                Ok(()) => return,
                Err(e) => e,
            };
            let shutting_down = self.shutdown.is_requested();
            let max = if shutting_down {
                REPORT_ATTEMPTS_SHUTTING_DOWN
            } else {
                REPORT_ATTEMPTS
            };
            if !err.is_retryable() || attempt >= max {
                log::error(
                    "report lost",
                    &[
                        ("report", what.into()),
                        ("job_id", job_id.into()),
                        ("attempts", attempt.into()),
                        ("error", err.to_string().into()),
                    ],
                );
                return;
            }
            let delay = if shutting_down {
                Duration::from_millis(500)
            } else {
                backoff.next_delay()
            };
            log::warn(
                "report failed; retrying",
                &[
                    ("report", what.into()),
                    ("job_id", job_id.into()),
                    ("error", err.to_string().into()),
                    ("retry_in_ms", (delay.as_millis() as u64).into()),
                ],
            );
            if shutting_down {
                std::thread::sleep(delay);
            } else {
                self.shutdown.sleep(delay);
            }
            attempt += 1;
        }
    }

    /// Warns at startup about registered scripts that would be refused as they stand.
    fn check_scripts_on_disk(&self) {
        if self.registry.is_empty() {
            log::warn(
                "no scripts registered: every job will be skipped",
                &[(
                    "registry_file",
                    self.config.registry_file.display().to_string().into(),
                )],
            );
        }
        for s in self.registry.scripts() {
            match registry::hash_file(&s.path) {
                Ok(h) if h == s.sha256 => {}
                Ok(h) => log::warn(
                    "registered script differs from the file on disk; its jobs will be skipped",
                    &[
                        ("script", s.name.clone().into()),
                        ("path", s.path.display().to_string().into()),
                        ("registered", s.sha256.clone().into()),
                        ("on_disk", h.into()),
                    ],
                ),
                Err(e) => log::warn(
                    "registered script cannot be read; its jobs will be skipped",
                    &[
                        ("script", s.name.clone().into()),
                        ("path", s.path.display().to_string().into()),
                        ("error", e.to_string().into()),
                    ],
                ),
            }
        }
    }
}

/// The server's limits clamped to the host's caps; missing or zero values take the cap.
pub fn effective_limits(job: &Job, caps: &Limits) -> ExecLimits {
    fn pick(asked: Option<u64>, cap: u64) -> u64 {
        match asked {
            Some(v) if v > 0 => v.min(cap),
            _ => cap,
        }
    }
    let l = &job.limits;
    ExecLimits {
        timeout: Duration::from_secs(pick(job.timeout_seconds, caps.timeout_seconds)),
        cpu_seconds: pick(l.cpu_seconds, caps.cpu_seconds),
        memory_mb: pick(l.memory_mb, caps.memory_mb),
        open_files: pick(l.open_files, caps.open_files),
        processes: pick(l.processes, caps.processes),
        output_bytes: pick(l.output_bytes, caps.output_bytes) as usize,
    }
}

/// A private directory per job: `bin/` holds the verified copy of the script, `work/` is the
/// script's fresh working directory. Removed when dropped.
struct JobDir {
    root: PathBuf,
}

impl JobDir {
    fn create(base: &Path, job_id: &str, n: u64) -> Result<JobDir> {
        let safe: String = job_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(40)
            .collect();
        let root = base.join(format!("medic-job-{safe}-{}-{n}", std::process::id()));
        let mut builder = DirBuilder::new();
        builder.mode(0o700);
        // create (not create_all): fails if the path exists, so nothing pre-planted is used.
        builder
            .create(&root)
            .map_err(|e| Error::io(format!("cannot create {}", root.display()), e))?;
        let dir = JobDir { root };
        for sub in ["bin", "work"] {
            let p = dir.root.join(sub);
            builder
                .create(&p)
                .map_err(|e| Error::io(format!("cannot create {}", p.display()), e))?;
        }
        Ok(dir)
    }

    fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    fn install_script(&self, file_name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.root.join("bin").join(file_name);
        let ctx = || format!("cannot write {}", path.display());
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .map_err(|e| Error::io(ctx(), e))?;
        f.write_all(bytes).map_err(|e| Error::io(ctx(), e))?;
        drop(f);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o500))
            .map_err(|e| Error::io(ctx(), e))?;
        Ok(path)
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            log::warn(
                "cannot remove job directory",
                &[
                    ("path", self.root.display().to_string().into()),
                    ("error", e.to_string().into()),
                ],
            );
        }
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.trim_start_matches("http://");
    let host = rest.split(['/', ':']).next().unwrap_or("");
    matches!(host, "localhost" | "127.0.0.1") || rest.starts_with("[::1]")
}

fn warn_if_exposed(key_file: &Path) {
    if let Ok(meta) = std::fs::metadata(key_file) {
        if meta.permissions().mode() & 0o004 != 0 {
            log::warn(
                "key file is readable by every user; chmod 640 it",
                &[("key_file", key_file.display().to_string().into())],
            );
        }
    }
}

/// One malloc arena for all threads: the agent's threads allocate little, and every extra
/// arena costs resident memory.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands freed heap pages back to the kernel so that idle resident memory stays low after
/// startup (certificate parsing) and after each job.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
