//! Agent configuration: one strict TOML file. Unknown keys are errors, so a typo never
//! silently falls back to a default.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/medic-agent/medic-agent.toml";
pub const DEFAULT_JOB_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server_url: String,
    key_file: PathBuf,
    ca_file: Option<PathBuf>,
    scripts_dir: PathBuf,
    registry_file: Option<PathBuf>,
    #[serde(default)]
    labels: Vec<String>,
    metrics_listen: Option<String>,
    #[serde(default = "default_poll_wait")]
    poll_wait_seconds: u64,
    work_dir: Option<PathBuf>,
    #[serde(default = "default_shutdown_grace")]
    shutdown_grace_seconds: u64,
    job_path: Option<String>,
    #[serde(default)]
    limits: Limits,
}

fn default_poll_wait() -> u64 {
    30
}

fn default_shutdown_grace() -> u64 {
    10
}

/// Upper bounds set by the host owner. A job's own limits are clamped to these; a limit the
/// server leaves out (or sends as 0) takes the value from here.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub timeout_seconds: u64,
    pub cpu_seconds: u64,
    pub memory_mb: u64,
    pub open_files: u64,
    pub processes: u64,
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_seconds: 600,
            cpu_seconds: 300,
            memory_mb: 1024,
            open_files: 1024,
            processes: 128,
            output_bytes: 64 * 1024,
        }
    }
}

/// Largest output tail per stream that is kept and sent to the server.
pub const MAX_OUTPUT_BYTES: u64 = 1024 * 1024;

/// A validated configuration with every path made absolute.
#[derive(Clone, Debug)]
pub struct Config {
    pub server_url: String,
    pub key_file: PathBuf,
    pub ca_file: Option<PathBuf>,
    pub scripts_dir: PathBuf,
    pub registry_file: PathBuf,
    pub labels: Vec<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub poll_wait_seconds: u64,
    pub work_dir: PathBuf,
    pub shutdown_grace: Duration,
    pub job_path: String,
    pub limits: Limits,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read config {}", path.display()), e))?;
        // Relative paths in the file are relative to the file, wherever the agent runs from:
        // an absolute base keeps them valid in a job's own working directory.
        let path = std::path::absolute(path)
            .map_err(|e| Error::io(format!("cannot resolve config {}", path.display()), e))?;
        let base = path.parent().unwrap_or_else(|| Path::new("/"));
        Config::from_toml(&text, base).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parses and validates config text; relative paths are taken relative to `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let server_url = validate_server_url(&raw.server_url)?;
        let labels = validate_labels(raw.labels)?;
        if !(1..=300).contains(&raw.poll_wait_seconds) {
            return Err(Error::Config(
                "poll_wait_seconds must be between 1 and 300".into(),
            ));
        }
        if raw.shutdown_grace_seconds > 3600 {
            return Err(Error::Config(
                "shutdown_grace_seconds must be at most 3600".into(),
            ));
        }
        let metrics_listen = match raw.metrics_listen.as_deref() {
            None | Some("") => None,
            Some(addr) => Some(addr.parse::<SocketAddr>().map_err(|_| {
                Error::Config(format!(
                    "metrics_listen {addr:?} is not an IP:port address such as \"127.0.0.1:9464\""
                ))
            })?),
        };
        validate_limits(&raw.limits)?;
        let job_path = raw.job_path.unwrap_or_else(|| DEFAULT_JOB_PATH.to_string());
        if job_path.is_empty() || job_path.contains('\0') {
            return Err(Error::Config(
                "job_path must be a non-empty PATH string".into(),
            ));
        }
        let abs = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            }
        };
        Ok(Config {
            server_url,
            key_file: abs(&raw.key_file),
            ca_file: raw.ca_file.as_deref().map(abs),
            scripts_dir: abs(&raw.scripts_dir),
            registry_file: abs(raw
                .registry_file
                .as_deref()
                .unwrap_or_else(|| Path::new("scripts.toml"))),
            labels,
            metrics_listen,
            poll_wait_seconds: raw.poll_wait_seconds,
            work_dir: raw
                .work_dir
                .as_deref()
                .map(abs)
                .unwrap_or_else(std::env::temp_dir),
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_seconds),
            job_path,
            limits: raw.limits,
        })
    }
}

/// Accepts `http://` and `https://` URLs with a host; returns the URL without trailing `/`.
pub fn validate_server_url(url: &str) -> Result<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::Config(format!(
                "server_url {url:?} must start with https:// (or http://)"
            ))
        })?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Config(format!(
            "server_url {url:?} has no host or contains spaces"
        )));
    }
    if url.contains('?') || url.contains('#') {
        return Err(Error::Config(format!(
            "server_url {url:?} must not carry a query or fragment"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn validate_labels(labels: Vec<String>) -> Result<Vec<String>> {
    if labels.len() > 64 {
        return Err(Error::Config("at most 64 labels are allowed".into()));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 128 || label.chars().any(char::is_control) {
            return Err(Error::Config(format!(
                "label {label:?} must be 1 to 128 printable characters"
            )));
        }
    }
    Ok(labels)
}

fn validate_limits(limits: &Limits) -> Result<()> {
    let named = [
        ("timeout_seconds", limits.timeout_seconds),
        ("cpu_seconds", limits.cpu_seconds),
        ("memory_mb", limits.memory_mb),
        ("open_files", limits.open_files),
        ("processes", limits.processes),
        ("output_bytes", limits.output_bytes),
    ];
    for (name, value) in named {
        if value == 0 {
            return Err(Error::Config(format!("limits.{name} must be above 0")));
        }
    }
    if limits.output_bytes > MAX_OUTPUT_BYTES {
        return Err(Error::Config(format!(
            "limits.output_bytes must be at most {MAX_OUTPUT_BYTES}"
        )));
    }
    if limits.memory_mb > 1024 * 1024 {
        return Err(Error::Config(
            "limits.memory_mb must be at most 1048576".into(),
        ));
    }
    Ok(())
}

/// Reads an API key file: the key is the file's content without surrounding whitespace.
pub fn read_key_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read key file {}", path.display()), e))?;
    validate_key(text.trim())
        .map_err(|msg| Error::Config(format!("key file {}: {msg}", path.display())))
}

/// An API key goes into an HTTP header: it must be non-empty visible ASCII.
pub fn validate_key(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the key must be one line of visible ASCII characters".into());
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
server_url = "https://medic.example.com/"
key_file = "api-key"
scripts_dir = "/etc/medic-agent/scripts"
"#;

    fn parse(text: &str) -> Result<Config> {
        Config::from_toml(text, Path::new("/etc/medic-agent"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_relative_config_path_gives_absolute_paths() {
        // `medic-agent --config agent.toml` run from the config's directory: its relative paths
        // must not stay relative, because a job runs in its own directory, where a relative
        // script path does not resolve (every job failed with exit 127). cargo runs tests in
        // the package root, so this path is relative to the current directory.
        let dir = Path::new("target").join(format!("config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("agent.toml");
        std::fs::write(
            &file,
            "server_url = \"http://127.0.0.1:8000\"\nkey_file = \"api-key\"\n\
             scripts_dir = \"scripts\"\nwork_dir = \"jobs\"\n",
        )
        .unwrap();
        let loaded = Config::load(&file);
        std::fs::remove_dir_all(&dir).unwrap();
        let c = loaded.unwrap();
        let base = std::env::current_dir().unwrap().join(&dir);
        assert_eq!(c.work_dir, base.join("jobs"));
        assert_eq!(c.scripts_dir, base.join("scripts"));
        assert_eq!(c.key_file, base.join("api-key"));
        assert_eq!(c.registry_file, base.join("scripts.toml"));
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.server_url, "https://medic.example.com");
        assert_eq!(c.key_file, Path::new("/etc/medic-agent/api-key"));
        assert_eq!(c.registry_file, Path::new("/etc/medic-agent/scripts.toml"));
        assert_eq!(c.poll_wait_seconds, 30);
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.ca_file, None);
        assert_eq!(c.job_path, DEFAULT_JOB_PATH);
    }

    #[test]
    fn full_config_is_read() {
        let c = parse(
            r#"
server_url = "http://localhost:8000"
key_file = "/run/keys/medic"
ca_file = "ca.pem"
scripts_dir = "scripts"
registry_file = "/srv/allowed.toml"
labels = ["env:prod", "role:db"]
metrics_listen = "127.0.0.1:9464"
poll_wait_seconds = 20
work_dir = "/var/lib/medic-agent/jobs"
shutdown_grace_seconds = 5
job_path = "/usr/bin:/bin"

[limits]
timeout_seconds = 60
memory_mb = 256
"#,
        )
        .unwrap();
        assert_eq!(
            c.ca_file.as_deref(),
            Some(Path::new("/etc/medic-agent/ca.pem"))
        );
        assert_eq!(c.scripts_dir, Path::new("/etc/medic-agent/scripts"));
        assert_eq!(c.registry_file, Path::new("/srv/allowed.toml"));
        assert_eq!(c.labels, vec!["env:prod", "role:db"]);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.limits.timeout_seconds, 60);
        assert_eq!(c.limits.memory_mb, 256);
        assert_eq!(c.limits.cpu_seconds, Limits::default().cpu_seconds);
        assert_eq!(c.job_path, "/usr/bin:/bin");
    }

    #[test]
    fn missing_required_key_is_named() {
        let e = err("key_file = \"k\"\nscripts_dir = \"s\"\n");
        assert!(e.contains("missing field `server_url`"), "{e}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let e = err(&format!("{MINIMAL}pol_wait_seconds = 5\n"));
        assert!(e.contains("unknown field `pol_wait_seconds`"), "{e}");
        let e = err(&format!("{MINIMAL}[limits]\nmemory = 5\n"));
        assert!(e.contains("unknown field `memory`"), "{e}");
    }

    #[test]
    fn syntax_error_reports_position() {
        let e = err("server_url = \"https://x\nkey_file = 1\n");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let e = err(&format!("{MINIMAL}labels = \"prod\"\n"));
        assert!(e.contains("invalid type"), "{e}");
        let e = err(&format!("{MINIMAL}poll_wait_seconds = -1\n"));
        assert!(
            e.contains("invalid value") || e.contains("invalid type"),
            "{e}"
        );
    }

    #[test]
    fn server_url_must_be_http_with_host() {
        let body = "key_file = \"k\"\nscripts_dir = \"s\"\n";
        for bad in [
            "medic.example.com",
            "ftp://x",
            "https://",
            "https:// x",
            "https://x/?a=1",
        ] {
            let e = err(&format!("server_url = \"{bad}\"\n{body}"));
            assert!(e.contains("server_url"), "{bad}: {e}");
        }
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert!(err(&format!("{MINIMAL}poll_wait_seconds = 0\n")).contains("poll_wait_seconds"));
        assert!(err(&format!("{MINIMAL}poll_wait_seconds = 301\n")).contains("poll_wait_seconds"));
        assert!(
            err(&format!("{MINIMAL}metrics_listen = \"localhost\"\n")).contains("metrics_listen")
        );
        assert!(err(&format!("{MINIMAL}labels = [\"\"]\n")).contains("label"));
        assert!(err(&format!("{MINIMAL}[limits]\nprocesses = 0\n")).contains("limits.processes"));
        assert!(
            err(&format!("{MINIMAL}[limits]\noutput_bytes = 2000000\n")).contains("output_bytes")
        );
    }

    #[test]
    fn keys_must_be_visible_ascii() {
        assert!(validate_key("").is_err());
        assert!(validate_key("abc def").is_err());
        assert!(validate_key("abc\r\nX-Evil: 1").is_err());
        assert_eq!(validate_key("mk_live_123").unwrap(), "mk_live_123");
    }

    #[test]
    fn key_file_is_trimmed_and_checked() {
        let dir = std::env::temp_dir().join(format!("medic-agent-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "  secret-key\n").unwrap();
        assert_eq!(read_key_file(&good).unwrap(), "secret-key");
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(read_key_file(&empty)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(read_key_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
