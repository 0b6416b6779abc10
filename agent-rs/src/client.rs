//! HTTP client for the Medic server and the wire types of the agent protocol.

use crate::error::{Error, Result};
use crate::http::{HttpClient, Target};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Timeout for ordinary requests (register, reports, heartbeats).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a long poll may take beyond the wait the server was asked to hold it.
const POLL_SLACK: Duration = Duration::from_secs(15);

#[derive(Debug, Serialize)]
pub struct Registration<'a> {
    pub hostname: String,
    pub os: &'static str,
    pub arch: &'static str,
    pub agent_version: &'static str,
    pub labels: &'a [String],
    pub scripts: Vec<ScriptRecord<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ScriptRecord<'a> {
    pub name: &'a str,
    pub sha256: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct Registered {
    pub agent_id: String,
    #[serde(default)]
    pub poll_wait_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Job {
    pub id: String,
    pub script: JobScript,
    #[serde(default)]
    pub args: Map<String, Value>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub limits: JobLimits,
}

#[derive(Debug, Deserialize)]
pub struct JobScript {
    pub name: String,
    #[serde(default)]
    pub version: Option<i64>,
    pub sha256: String,
}

/// Limits the server asks for; a missing or zero value means "the host's cap".
#[derive(Debug, Default, Deserialize)]
pub struct JobLimits {
    pub cpu_seconds: Option<u64>,
    pub memory_mb: Option<u64>,
    pub open_files: Option<u64>,
    pub processes: Option<u64>,
    pub output_bytes: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct JobResult {
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub timed_out: bool,
    pub signal: Option<i32>,
}

#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    pub run_id: &'a str,
    pub exit_code: i32,
    pub duration_ms: u64,
    pub message: &'a str,
    pub output_tail: &'a str,
}

pub struct Client {
    http: HttpClient,
    auth: String,
    user_agent: String,
}

impl Client {
    /// `server_url` must already be validated (see `config::validate_server_url`). TLS
    /// trusts the certificates in `ca_file` when given, otherwise the system's roots (read
    /// only for an `https://` server).
    pub fn new(
        server_url: &str,
        api_key: &str,
        ca_file: Option<&Path>,
        connect_timeout: Duration,
    ) -> Result<Client> {
        let target = Target::parse(server_url)
            .map_err(|e| Error::Config(format!("server_url {server_url:?} {e}")))?;
        let tls = match ca_file {
            Some(ca) => Some(Arc::new(tls_config_with_ca(ca)?)),
            None if target.tls => Some(Arc::new(tls_config_with_system_roots())),
            None => None,
        };
        Ok(Client {
            http: HttpClient::new(target, tls, connect_timeout),
            auth: format!("Bearer {api_key}"),
            user_agent: format!("medic-agent/{VERSION}"),
        })
    }

    /// Sends one request; returns the status and the parsed JSON body (`Null` when empty).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(u16, Value)> {
        let mut headers = vec![
            ("User-Agent", self.user_agent.as_str()),
            ("Authorization", self.auth.as_str()),
            ("Accept", "application/json"),
        ];
        let payload = body.map(Value::to_string);
        if payload.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let response = self
            .http
            .request(
                method,
                path,
                &headers,
                payload.as_deref().map(str::as_bytes),
                timeout,
            )
            .map_err(Error::Transport)?;
        let status = response.status;
        if status >= 400 {
            let text = String::from_utf8(response.body).unwrap_or_default();
            return Err(status_error(status, &text));
        }
        let text = String::from_utf8(response.body)
            .map_err(|_| Error::Transport("reading response: the body is not UTF-8".into()))?;
        if !(200..300).contains(&status) {
            return Err(Error::Protocol(format!(
                "{method} {path} answered {status}"
            )));
        }
        if text.trim().is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_str(&text)
            .map_err(|e| Error::Protocol(format!("{method} {path}: body is not JSON: {e}")))?;
        Ok((status, value))
    }

    pub fn register(&self, registration: &Registration<'_>) -> Result<Registered> {
        let body = to_value(registration)?;
        let (_, v) = self.request("POST", "/v2/agent/register", Some(&body), REQUEST_TIMEOUT)?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(format!("register response: {e}")))
    }

    /// Long-polls for a job. `Ok(None)` when the server had nothing within `wait_seconds`.
    /// The job comes back raw so that a malformed one can still be answered by its id.
    /// Each poll carries the agent's version and, where measured, its resident memory.
    pub fn poll(&self, wait_seconds: u64) -> Result<Option<Value>> {
        let path = poll_path(wait_seconds, crate::memory::resident_bytes());
        let timeout = Duration::from_secs(wait_seconds) + POLL_SLACK;
        let (status, v) = self.request("GET", &path, None, timeout)?;
        if status == 204 {
            return Ok(None);
        }
        if !v.is_object() {
            return Err(Error::Protocol(format!(
                "job poll answered {status} without a job object"
            )));
        }
        Ok(Some(v))
    }

    pub fn report_result(&self, job_id: &str, result: &JobResult) -> Result<()> {
        let path = format!("/v2/agent/jobs/{}/result", encode_segment(job_id));
        self.request("POST", &path, Some(&to_value(result)?), REQUEST_TIMEOUT)
            .map(|_| ())
    }

    pub fn report_skipped(&self, job_id: &str, reason: &str, detail: &str) -> Result<()> {
        let path = format!("/v2/agent/jobs/{}/skipped", encode_segment(job_id));
        let body = serde_json::json!({ "reason": reason, "detail": detail });
        self.request("POST", &path, Some(&body), REQUEST_TIMEOUT)
            .map(|_| ())
    }

    /// Starts a heartbeat run; returns the run id the server assigned (or confirmed).
    pub fn heartbeat_start(
        &self,
        service: &str,
        run_id: Option<&str>,
        timeout: Duration,
    ) -> Result<String> {
        let path = format!("/v2/heartbeat/{}/start", encode_segment(service));
        let body = match run_id {
            Some(id) => serde_json::json!({ "run_id": id }),
            None => serde_json::json!({}),
        };
        let (_, v) = self.request("POST", &path, Some(&body), timeout)?;
        v.get("run_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::Protocol("heartbeat start answered without run_id".into()))
    }

    /// Finishes a heartbeat run with `/complete` (success) or `/fail`.
    pub fn heartbeat_finish(
        &self,
        service: &str,
        success: bool,
        report: &RunReport<'_>,
        timeout: Duration,
    ) -> Result<()> {
        let action = if success { "complete" } else { "fail" };
        let path = format!("/v2/heartbeat/{}/{action}", encode_segment(service));
        self.request("POST", &path, Some(&to_value(report)?), timeout)
            .map(|_| ())
    }

    /// The plain heartbeat of servers that predate run tracking.
    pub fn heartbeat_up(&self, service: &str, timeout: Duration) -> Result<()> {
        let path = format!("/v2/heartbeat/{}", encode_segment(service));
        let body = serde_json::json!({ "status": "UP" });
        self.request("POST", &path, Some(&body), timeout)
            .map(|_| ())
    }
}

/// `/v2/agent/jobs?wait=N&version=V[&rss_bytes=B]`: without a memory figure (no `/proc`) the
/// parameter is left out rather than sent as 0.
pub fn poll_path(wait_seconds: u64, rss_bytes: Option<u64>) -> String {
    let mut path = format!(
        "/v2/agent/jobs?wait={wait_seconds}&version={}",
        encode_segment(VERSION)
    );
    if let Some(bytes) = rss_bytes {
        path.push_str(&format!("&rss_bytes={bytes}"));
    }
    path
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Protocol(format!("cannot encode request: {e}")))
}

/// Builds an `Error::Status` from a response body in the server's error envelope
/// (`{"error": {"code", "message", "fields"}}`); other bodies become the message.
pub fn status_error(status: u16, body: &str) -> Error {
    let envelope = serde_json::from_str::<Value>(body).ok();
    let err = envelope.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        err.and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let code = field("code").unwrap_or_default();
    let message = field("message").unwrap_or_else(|| {
        let mut text: String = body.chars().take(200).collect();
        if text.trim().is_empty() {
            text = "(empty body)".into();
        }
        text
    });
    Error::Status {
        status,
        code,
        message,
    }
}

/// Percent-encodes one URL path segment (everything but RFC 3986 unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A TLS configuration that trusts only the certificates in a PEM file (a private CA).
pub fn tls_config_with_ca(path: &Path) -> Result<rustls::ClientConfig> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot read CA file {}", path.display()), e))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .map_err(|e| Error::io(format!("cannot parse CA file {}", path.display()), e))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(&certs);
    if added == 0 {
        return Err(Error::Config(format!(
            "CA file {} holds no usable PEM certificate",
            path.display()
        )));
    }
    Ok(tls_config(roots))
}

/// A TLS configuration that trusts the system's root certificates. Certificates the system
/// store holds but that cannot be parsed are skipped; when none can be read, every TLS
/// connection fails with an unknown-issuer error.
pub fn tls_config_with_system_roots() -> rustls::ClientConfig {
    tls_config(system_roots())
}

/// The system's roots from the PEM bundle rustls-native-certs would read (`SSL_CERT_FILE`,
/// else the distribution's bundle as found by openssl-probe), taken one certificate at a
/// time: the parsed roots then lie together on the heap instead of among the freed copies
/// of the whole bundle (about 50 KB less resident with the 144 roots of Debian 12).
#[cfg(all(unix, not(target_os = "macos")))]
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let Some(path) = openssl_probe::probe().cert_file else {
        return roots;
    };
    let Ok(file) = std::fs::File::open(path) else {
        return roots;
    };
    let mut pem = BufReader::new(file);
    while let Ok(Some(item)) = rustls_pemfile::read_one(&mut pem) {
        if let rustls_pemfile::Item::X509Certificate(der) = item {
            let _ = roots.add(&rustls::Certificate(der));
        }
    }
    roots
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(certs) = rustls_native_certs::load_native_certs() {
        for cert in certs {
            let _ = roots.add(&rustls::Certificate(cert.0));
        }
    }
    roots
}

fn tls_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// This host's name as the kernel knows it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL or the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_carry_the_version_and_the_memory_when_measured() {
        assert_eq!(
            poll_path(30, Some(3_084_288)),
            format!("/v2/agent/jobs?wait=30&version={VERSION}&rss_bytes=3084288")
        );
        assert_eq!(
            poll_path(5, None),
            format!("/v2/agent/jobs?wait=5&version={VERSION}")
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("nightly-backup_1.x~"), "nightly-backup_1.x~");
        assert_eq!(encode_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn error_envelope_is_read() {
        let e = status_error(
            404,
            r#"{"error": {"code": "not_found", "message": "No such path", "fields": {}}}"#,
        );
        match e {
            Error::Status {
                status,
                code,
                message,
            } => {
                assert_eq!(
                    (status, code.as_str(), message.as_str()),
                    (404, "not_found", "No such path")
                );
            }
            other => panic!("{other:?}"),
        }
        match status_error(502, "<html>bad gateway</html>") {
            Error::Status { code, message, .. } => {
                assert_eq!(code, "");
                assert_eq!(message, "<html>bad gateway</html>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retryable_errors() {
        assert!(status_error(503, "").is_retryable());
        assert!(status_error(429, "").is_retryable());
        assert!(!status_error(400, "").is_retryable());
        assert!(Error::Transport("refused".into()).is_retryable());
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let path = std::env::temp_dir().join(format!("medic-agent-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = tls_config_with_ca(&path).unwrap_err().to_string();
        assert!(e.contains("no usable PEM certificate"), "{e}");
        std::fs::remove_file(&path).unwrap();
        assert!(tls_config_with_ca(&path).is_err());
    }
}
