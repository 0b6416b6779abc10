//! The agent against a stand-in Medic server: registration, long polls, results and skip
//! reports, retries.

mod common;

use common::{MockServer, Reply, Request, TestDir};
use medic_agent::agent::Agent;
use medic_agent::client::Client;
use medic_agent::config::Config;
use medic_agent::metrics::Metrics;
use medic_agent::registry::Registry;
use medic_agent::shutdown::Shutdown;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A server that hands out queued jobs, then answers polls with 204 after a short hold.
struct JobServer {
    server: MockServer,
    jobs: Arc<Mutex<VecDeque<Value>>>,
}

impl JobServer {
    fn start() -> JobServer {
        Self::start_with(|_| None)
    }

    /// `override_reply` may answer a request instead of the default behaviour.
    fn start_with<F>(override_reply: F) -> JobServer
    where
        F: Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
    {
        let jobs = Arc::new(Mutex::new(VecDeque::<Value>::new()));
        let queue = jobs.clone();
        let server = MockServer::start(move |req| {
            if let Some(reply) = override_reply(req) {
                return reply;
            }
            if req.is("POST", "/v2/agent/register") {
                return Reply::json(200, json!({"agent_id": "agent-1", "poll_wait_seconds": 1}));
            }
            if req.is("GET", "/v2/agent/jobs") {
                return match queue.lock().unwrap().pop_front() {
                    Some(job) => Reply::json(200, job),
                    None => Reply::empty(204).after(Duration::from_millis(50)),
                };
            }
            Reply::json(200, json!({}))
        });
        JobServer { server, jobs }
    }

    fn push(&self, job: Value) {
        self.jobs.lock().unwrap().push_back(job);
    }
}

struct Running {
    shutdown: Arc<Shutdown>,
    metrics: Arc<Metrics>,
    handle: JoinHandle<medic_agent::Result<()>>,
}

impl Running {
    fn stop(self) -> medic_agent::Result<()> {
        self.shutdown.request();
        self.handle.join().unwrap()
    }
}

struct Host {
    dir: TestDir,
    sha: String,
}

fn host() -> Host {
    let dir = TestDir::new("agent");
    let script = dir.script(
        "scripts/report.sh",
        "#!/bin/sh\necho \"args: $*\"\necho \"job: $MEDIC_JOB_ID home: $HOME\"\necho oops >&2\nexit 3\n",
    );
    let sha = common::sha256_file(&script);
    dir.write(
        "scripts.toml",
        &format!("[[script]]\nname = \"report\"\npath = \"report.sh\"\nsha256 = \"{sha}\"\n"),
    );
    dir.write("key", "test-key\n");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    Host { dir, sha }
}

fn start_agent(host: &Host, url: &str) -> Running {
    let text = format!(
        "server_url = \"{url}\"\nkey_file = \"key\"\nscripts_dir = \"scripts\"\nwork_dir = \"work\"\n\
         labels = [\"env:test\"]\npoll_wait_seconds = 7\n[limits]\ntimeout_seconds = 20\n"
    );
    let config = Config::from_toml(&text, &host.dir.path).unwrap();
    let registry = Registry::load(&config.registry_file, &config.scripts_dir).unwrap();
    let key = medic_agent::config::read_key_file(&config.key_file).unwrap();
    let client = Client::new(&config.server_url, &key, None, Duration::from_secs(2)).unwrap();
    let shutdown = Arc::new(Shutdown::new());
    let metrics = Arc::new(Metrics::new());
    let agent = Agent::new(config, registry, client, metrics.clone(), shutdown.clone());
    let handle = thread::spawn(move || agent.run());
    Running {
        shutdown,
        metrics,
        handle,
    }
}

fn job(id: &str, name: &str, sha: &str, args: Value) -> Value {
    json!({
        "id": id,
        "script": {"name": name, "version": 2, "sha256": sha},
        "args": args,
        "timeout_seconds": 10,
        "limits": {"cpu_seconds": 5, "memory_mb": 256, "open_files": 64, "processes": 32, "output_bytes": 4096}
    })
}

#[test]
fn registers_with_host_facts_and_registered_scripts() {
    let host = host();
    let srv = JobServer::start();
    let agent = start_agent(&host, &srv.server.url());
    let reg = srv.server.wait_for("POST", "/v2/agent/register", 1, WAIT);
    srv.server.wait_for("GET", "/v2/agent/jobs", 2, WAIT);
    agent.stop().unwrap();

    let body = reg[0].json();
    assert_eq!(reg[0].header("Authorization"), Some("Bearer test-key"));
    assert!(!body["hostname"].as_str().unwrap().is_empty());
    assert_eq!(body["os"], std::env::consts::OS);
    assert_eq!(body["arch"], std::env::consts::ARCH);
    assert_eq!(body["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["labels"], json!(["env:test"]));
    assert_eq!(
        body["scripts"],
        json!([{"name": "report", "sha256": host.sha}])
    );
    // The server's poll_wait_seconds (1) wins over the configured default (7).
    let polls = srv.server.matching("GET", "/v2/agent/jobs");
    // Each poll reports the agent's version and resident memory (VmRSS, in bytes).
    let (wait, report) = polls[0].path.split_once('&').unwrap();
    assert_eq!(wait, "/v2/agent/jobs?wait=1");
    let version = format!("version={}&rss_bytes=", env!("CARGO_PKG_VERSION"));
    let rss: u64 = report.strip_prefix(&version).unwrap().parse().unwrap();
    assert!(rss > 0 && rss.is_multiple_of(1024), "{report}");
    assert_eq!(polls[0].header("Authorization"), Some("Bearer test-key"));
}

#[test]
fn job_runs_and_its_result_is_reported() {
    let host = host();
    let srv = JobServer::start();
    srv.push(job(
        "job-1",
        "report",
        &host.sha,
        json!({"unit": "nginx", "force": true}),
    ));
    let agent = start_agent(&host, &srv.server.url());
    let results = srv
        .server
        .wait_for("POST", "/v2/agent/jobs/job-1/result", 1, WAIT);
    let metrics = agent.metrics.render();
    agent.stop().unwrap();

    let r = results[0].json();
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["signal"], Value::Null);
    assert_eq!(r["timed_out"], false);
    assert!(r["duration_ms"].is_u64());
    let stdout = r["stdout_tail"].as_str().unwrap();
    assert!(
        stdout.contains("args: --force=true --unit=nginx\n"),
        "{stdout}"
    );
    assert!(stdout.contains("job: job-1 home: "), "{stdout}");
    assert_eq!(r["stderr_tail"], "oops\n");
    assert!(metrics
        .contains("medic_agent_script_executions_total{script=\"report\",status=\"failure\"} 1"));
    // The job's private directory is gone.
    assert_eq!(std::fs::read_dir(host.dir.join("work")).unwrap().count(), 0);
}

#[test]
fn refused_jobs_are_reported_with_their_reason() {
    let host = host();
    let srv = JobServer::start();
    srv.push(job("j-unreg", "rm_rf", &host.sha, json!({})));
    srv.push(job("j-server", "report", &"a".repeat(64), json!({})));
    srv.push(job("j-args", "report", &host.sha, json!({"bad-name": 1})));
    srv.push(json!({"id": "j-malformed", "script": "report"}));
    let agent = start_agent(&host, &srv.server.url());
    let skipped = srv.server.wait_for("POST", "/v2/agent/jobs/j-", 4, WAIT);
    // Changing the file on disk after registration is caught at execution time.
    host.dir
        .script("scripts/report.sh", "#!/bin/sh\necho tampered\n");
    srv.push(job("j-disk", "report", &host.sha, json!({})));
    srv.server
        .wait_for("POST", "/v2/agent/jobs/j-disk/skipped", 1, WAIT);
    let metrics = agent.metrics.render();
    agent.stop().unwrap();

    let reason = |id: &str| -> Value {
        let path = format!("/v2/agent/jobs/{id}/skipped");
        let req = srv.server.matching("POST", &path);
        assert_eq!(req.len(), 1, "{id}: {skipped:#?}");
        req[0].json()
    };
    assert_eq!(reason("j-unreg")["reason"], "not_registered");
    assert_eq!(reason("j-server")["reason"], "hash_mismatch_server");
    assert_eq!(reason("j-args")["reason"], "invalid_args");
    assert_eq!(reason("j-malformed")["reason"], "invalid_args");
    assert_eq!(reason("j-disk")["reason"], "hash_mismatch_disk");
    assert!(reason("j-unreg")["detail"]
        .as_str()
        .unwrap()
        .contains("rm_rf"));
    assert!(srv
        .server
        .matching("POST", "/v2/agent/jobs/j-disk/result")
        .is_empty());
    assert!(metrics.contains(
        "medic_agent_script_skipped_total{script=\"rm_rf\",reason=\"not_registered\"} 1"
    ));
    assert!(metrics.contains(
        "medic_agent_script_skipped_total{script=\"report\",reason=\"hash_mismatch_disk\"} 1"
    ));
}

#[test]
fn unreachable_or_failing_server_is_retried() {
    let host = host();
    let register_calls = Arc::new(AtomicUsize::new(0));
    let result_calls = Arc::new(AtomicUsize::new(0));
    let (rc, res) = (register_calls.clone(), result_calls.clone());
    let srv = JobServer::start_with(move |req| {
        if req.is("POST", "/v2/agent/register") && rc.fetch_add(1, Ordering::SeqCst) == 0 {
            return Some(Reply::error(503, "unavailable"));
        }
        if req.path.ends_with("/result") && res.fetch_add(1, Ordering::SeqCst) == 0 {
            return Some(Reply::error(502, "bad_gateway"));
        }
        None
    });
    srv.push(job("job-r", "report", &host.sha, json!({})));
    let agent = start_agent(&host, &srv.server.url());
    srv.server
        .wait_for("POST", "/v2/agent/jobs/job-r/result", 2, WAIT);
    agent.stop().unwrap();
    assert_eq!(register_calls.load(Ordering::SeqCst), 2);
}

#[test]
fn forgotten_agent_registers_again() {
    let host = host();
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let srv = JobServer::start_with(move |req| {
        if req.is("GET", "/v2/agent/jobs") && p.fetch_add(1, Ordering::SeqCst) == 0 {
            return Some(Reply::error(404, "agent_not_found"));
        }
        None
    });
    let agent = start_agent(&host, &srv.server.url());
    srv.server.wait_for("POST", "/v2/agent/register", 2, WAIT);
    srv.server.wait_for("GET", "/v2/agent/jobs", 2, WAIT);
    agent.stop().unwrap();
}

#[test]
fn refused_registration_stops_the_agent() {
    let host = host();
    let srv = JobServer::start_with(|req| {
        req.is("POST", "/v2/agent/register")
            .then(|| Reply::error(401, "unauthorized"))
    });
    let agent = start_agent(&host, &srv.server.url());
    let err = agent.handle.join().unwrap().unwrap_err();
    assert_eq!(err.status(), Some(401));
}

#[test]
fn job_arriving_during_shutdown_is_skipped() {
    let host = host();
    let shutdown_slot: Arc<Mutex<Option<Arc<Shutdown>>>> = Arc::new(Mutex::new(None));
    let slot = shutdown_slot.clone();
    let sha = host.sha.clone();
    let srv = JobServer::start_with(move |req| {
        if req.is("GET", "/v2/agent/jobs") {
            // The shutdown request lands while this poll is in flight.
            if let Some(s) = slot.lock().unwrap().as_ref() {
                s.request();
            }
            return Some(Reply::json(200, job("j-late", "report", &sha, json!({}))));
        }
        None
    });
    let agent = start_agent(&host, &srv.server.url());
    *shutdown_slot.lock().unwrap() = Some(agent.shutdown.clone());
    agent.handle.join().unwrap().unwrap();
    let skipped = srv.server.matching("POST", "/v2/agent/jobs/j-late/skipped");
    assert!(!skipped.is_empty(), "{:#?}", srv.server.requests());
    assert_eq!(skipped[0].json()["reason"], "shutting_down");
}
