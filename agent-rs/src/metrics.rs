//! Prometheus counters and the optional local endpoint that serves them.

use crate::error::{Error, Result};
use crate::log;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;

/// Label sets kept per counter family. Script names in skipped jobs come from the server, so
/// the number of series is bounded; the rest is counted under `script="_other"`.
const MAX_SERIES: usize = 500;
const OTHER: &str = "_other";

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Families>,
}

#[derive(Debug, Default)]
struct Families {
    executions: BTreeMap<(String, String), u64>,
    skipped: BTreeMap<(String, String), u64>,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    /// `status` is one of `success`, `failure`, `timeout`, `error` (could not start).
    pub fn inc_execution(&self, script: &str, status: &str) {
        let mut f = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        bump(&mut f.executions, script, status);
    }

    pub fn inc_skipped(&self, script: &str, reason: &str) {
        let mut f = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        bump(&mut f.skipped, script, reason);
    }

    /// The counters in Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let f = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(512);
        family(
            &mut out,
            "medic_agent_script_executions_total",
            "Scripts the agent ran, by final status.",
            "status",
            &f.executions,
        );
        family(
            &mut out,
            "medic_agent_script_skipped_total",
            "Jobs the agent refused to run, by reason.",
            "reason",
            &f.skipped,
        );
        out.push_str("# HELP medic_agent_build_info Agent version.\n");
        out.push_str("# TYPE medic_agent_build_info gauge\n");
        let _ = writeln!(
            out,
            "medic_agent_build_info{{version=\"{}\"}} 1",
            escape(crate::client::VERSION)
        );
        out
    }
}

fn bump(map: &mut BTreeMap<(String, String), u64>, script: &str, second: &str) {
    let key = (script.to_string(), second.to_string());
    if let Some(n) = map.get_mut(&key) {
        *n += 1;
    } else if map.len() < MAX_SERIES {
        map.insert(key, 1);
    } else {
        *map.entry((OTHER.to_string(), second.to_string()))
            .or_insert(0) += 1;
    }
}

fn family(
    out: &mut String,
    name: &str,
    help: &str,
    second: &str,
    samples: &BTreeMap<(String, String), u64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for ((script, value), n) in samples {
        let _ = writeln!(
            out,
            "{name}{{script=\"{}\",{second}=\"{}\"}} {n}",
            escape(script),
            escape(value)
        );
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `addr` from a background thread.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<()> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| Error::Config(format!("cannot listen for metrics on {addr}: {e}")))?;
    thread::Builder::new()
        .name("metrics".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            for request in server.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or("");
                let response = if path == "/metrics" {
                    let ctype = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"text/plain; version=0.0.4; charset=utf-8"[..],
                    );
                    let resp = tiny_http::Response::from_string(metrics.render());
                    match ctype {
                        Ok(h) => resp.with_header(h),
                        Err(()) => resp,
                    }
                } else {
                    tiny_http::Response::from_string("not found\n").with_status_code(404)
                };
                if let Err(e) = request.respond(response) {
                    log::warn(
                        "metrics response failed",
                        &[("error", e.to_string().into())],
                    );
                }
            }
        })
        .map_err(|e| Error::io("cannot start metrics thread", e))?;
    log::info(
        "metrics endpoint listening",
        &[("addr", addr.to_string().into())],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_escaped_labels() {
        let m = Metrics::new();
        m.inc_execution("restart_nginx", "success");
        m.inc_execution("restart_nginx", "success");
        m.inc_skipped("evil\"name\n", "not_registered");
        let text = m.render();
        assert!(text.contains("# TYPE medic_agent_script_executions_total counter\n"));
        assert!(text.contains(
            "medic_agent_script_executions_total{script=\"restart_nginx\",status=\"success\"} 2\n"
        ));
        assert!(text.contains(
            "medic_agent_script_skipped_total{script=\"evil\\\"name\\n\",reason=\"not_registered\"} 1\n"
        ));
    }

    #[test]
    fn series_are_bounded() {
        let m = Metrics::new();
        for i in 0..(MAX_SERIES + 10) {
            m.inc_skipped(&format!("s{i}"), "not_registered");
        }
        let text = m.render();
        assert!(
            text.contains("script=\"_other\",reason=\"not_registered\"} 10\n"),
            "{text}"
        );
    }
}
