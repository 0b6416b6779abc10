//! Prometheus counters and the optional local endpoint that serves them.

use crate::error::{Error, Result};
use crate::log;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

/// Bytes of request line and headers read before a request is refused.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Time a client gets to send its request, and to take the response.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `GET /metrics` on `addr` from a background thread, one connection at a time (a
/// Prometheus scrape is one short request).
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::Config(format!("cannot listen for metrics on {addr}: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    thread::Builder::new()
        .name("metrics".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = answer(stream, &metrics) {
                        log::warn(
                            "metrics response failed",
                            &[("error", e.to_string().into())],
                        );
                    }
                }
                // Out of file descriptors and the like: do not spin.
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        })
        .map_err(|e| Error::io("cannot start metrics thread", e))?;
    log::info(
        "metrics endpoint listening",
        &[("addr", bound.to_string().into())],
    );
    Ok(())
}

/// Reads one request and answers it, then closes the connection. A client that sends
/// nothing usable within the timeout is dropped without an answer.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let reply = match read_head(&mut stream) {
        Ok(request_line) => route(&request_line, metrics),
        Err(HeadError::TooLarge) => Reply::text(431, "request header too large\n"),
        Err(HeadError::Malformed) => Reply::text(400, "bad request\n"),
        Err(HeadError::Gone) => return Ok(()),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    if reply.status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    if !reply.head_only {
        out.push_str(&reply.body);
    }
    match stream.write_all(out.as_bytes()) {
        // The client went away first: nothing to report.
        Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
            return Ok(());
        }
        other => other?,
    }
    if reply.status != 200 {
        // The request may have more bytes on the way (a body, the rest of an oversized
        // head); closing with them unread would reset the connection and could discard the
        // answer before the client reads it. Take a bounded amount first.
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut sink = [0u8; 1024];
        for _ in 0..64 {
            if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
    }
    Ok(())
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    /// HEAD: the headers a GET would get, without the body.
    head_only: bool,
}

impl Reply {
    fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            head_only: false,
        }
    }
}

enum HeadError {
    TooLarge,
    Malformed,
    /// Closed, reset or timed out before a full request arrived.
    Gone,
}

/// Reads up to the blank line that ends the request head; returns the request line.
fn read_head(stream: &mut TcpStream) -> std::result::Result<String, HeadError> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(HeadError::Gone);
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(HeadError::Gone),
            Ok(n) => n,
        };
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        let tail = &buf[from..];
        let ended =
            tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n");
        if ended {
            let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
            return std::str::from_utf8(&buf[..line_end])
                .map(|l| l.trim_end_matches('\r').to_string())
                .map_err(|_| HeadError::Malformed);
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// The answer to a request line: the metrics for `GET` (or `HEAD`) `/metrics`.
fn route(request_line: &str, metrics: &Metrics) -> Reply {
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Reply::text(400, "bad request\n");
    };
    if !version.starts_with("HTTP/1.") {
        return Reply::text(400, "bad request\n");
    }
    if target.split('?').next() != Some("/metrics") {
        return Reply::text(404, "not found\n");
    }
    if method != "GET" && method != "HEAD" {
        return Reply::text(405, "method not allowed\n");
    }
    Reply {
        status: 200,
        content_type: CONTENT_TYPE,
        body: metrics.render(),
        head_only: method == "HEAD",
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
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
