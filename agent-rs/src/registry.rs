//! The host owner's allow-list of scripts, and the checks a job must pass before it runs.
//!
//! A job runs only if its script is registered here, the server's sha256 for it equals the
//! registered one, its arguments are well formed, and the file on disk still hashes to the
//! registered value at the moment of execution. The bytes that were hashed are the bytes that
//! run (see `Prepared::bytes`), so the file cannot be swapped between check and exec.

use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub const MAX_ARGS: usize = 64;
pub const MAX_ARG_NAME: usize = 64;
pub const MAX_ARG_VALUE: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    script: Vec<RawScript>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    name: String,
    path: PathBuf,
    sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

#[derive(Clone, Debug, Default)]
pub struct Registry {
    scripts: BTreeMap<String, Script>,
}

/// Why a job was refused; the wire names are part of the server protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    NotRegistered,
    HashMismatchDisk,
    HashMismatchServer,
    InvalidArgs,
    ShuttingDown,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotRegistered => "not_registered",
            SkipReason::HashMismatchDisk => "hash_mismatch_disk",
            SkipReason::HashMismatchServer => "hash_mismatch_server",
            SkipReason::InvalidArgs => "invalid_args",
            SkipReason::ShuttingDown => "shutting_down",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub reason: SkipReason,
    pub detail: String,
}

impl Skip {
    pub fn new(reason: SkipReason, detail: impl Into<String>) -> Self {
        Skip {
            reason,
            detail: detail.into(),
        }
    }
}

/// A job that passed every check: the exact script bytes to run and its argv.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub script: Script,
    pub bytes: Vec<u8>,
    pub argv: Vec<String>,
}

impl Registry {
    pub fn load(path: &Path, scripts_dir: &Path) -> Result<Registry> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read script registry {}", path.display()), e))?;
        Registry::from_toml(&text, scripts_dir)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses registry text. Script paths are relative to `scripts_dir` and may not leave it.
    pub fn from_toml(text: &str, scripts_dir: &Path) -> Result<Registry, String> {
        let raw: RawRegistry = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut scripts = BTreeMap::new();
        for s in raw.script {
            if !valid_script_name(&s.name) {
                return Err(format!(
                    "script name {:?} must be 1 to 128 characters from A-Z a-z 0-9 _ . -",
                    s.name
                ));
            }
            let relative_ok = !s.path.as_os_str().is_empty()
                && s.path
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
            if !relative_ok {
                return Err(format!(
                    "script {:?}: path {:?} must be relative to scripts_dir, without \"..\"",
                    s.name,
                    s.path.display()
                ));
            }
            let sha256 = s.sha256.trim().to_ascii_lowercase();
            if !is_sha256_hex(&sha256) {
                return Err(format!(
                    "script {:?}: sha256 must be 64 hex digits (see `medic-agent hash FILE`)",
                    s.name
                ));
            }
            let script = Script {
                name: s.name.clone(),
                path: scripts_dir.join(&s.path),
                sha256,
            };
            if scripts.insert(s.name.clone(), script).is_some() {
                return Err(format!("script {:?} is registered twice", s.name));
            }
        }
        Ok(Registry { scripts })
    }

    pub fn scripts(&self) -> impl Iterator<Item = &Script> {
        self.scripts.values()
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Script> {
        self.scripts.get(name)
    }

    /// Runs every check on a job; on success returns the bytes to execute.
    pub fn prepare(
        &self,
        name: &str,
        server_sha256: &str,
        args: &Map<String, Value>,
    ) -> Result<Prepared, Skip> {
        let script = self.scripts.get(name).ok_or_else(|| {
            Skip::new(
                SkipReason::NotRegistered,
                format!("script {name:?} is not in this host's registry"),
            )
        })?;
        if !server_sha256.eq_ignore_ascii_case(&script.sha256) {
            return Err(Skip::new(
                SkipReason::HashMismatchServer,
                format!(
                    "server sha256 {server_sha256} differs from registered {}",
                    script.sha256
                ),
            ));
        }
        let argv = args_to_argv(args).map_err(|d| Skip::new(SkipReason::InvalidArgs, d))?;
        let bytes = std::fs::read(&script.path).map_err(|e| {
            Skip::new(
                SkipReason::HashMismatchDisk,
                format!("cannot read {}: {e}", script.path.display()),
            )
        })?;
        let on_disk = sha256_hex(&bytes);
        if on_disk != script.sha256 {
            return Err(Skip::new(
                SkipReason::HashMismatchDisk,
                format!(
                    "{} hashes to {on_disk}, registered {}",
                    script.path.display(),
                    script.sha256
                ),
            ));
        }
        Ok(Prepared {
            script: script.clone(),
            bytes,
            argv,
        })
    }
}

fn valid_script_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

pub fn valid_arg_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ARG_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Turns job arguments into `--name=value` argv entries (sorted by name). Values must be
/// scalars; nothing is ever interpreted by a shell.
pub fn args_to_argv(args: &Map<String, Value>) -> Result<Vec<String>, String> {
    if args.len() > MAX_ARGS {
        return Err(format!(
            "{} arguments, at most {MAX_ARGS} allowed",
            args.len()
        ));
    }
    let mut argv = Vec::with_capacity(args.len());
    for (name, value) in args {
        if !valid_arg_name(name) {
            return Err(format!(
                "argument name {name:?} must be 1 to {MAX_ARG_NAME} characters from A-Z a-z 0-9 _"
            ));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "argument {name:?} must be a string, number or boolean"
                ))
            }
        };
        if text.contains('\0') || text.len() > MAX_ARG_VALUE {
            return Err(format!(
                "argument {name:?} must be at most {MAX_ARG_VALUE} bytes without NUL"
            ));
        }
        argv.push(format!("--{name}={text}"));
    }
    Ok(argv)
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hashes a file without reading it into memory at once.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_known_inputs() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn registry_parses_and_resolves_paths() {
        let r = Registry::from_toml(
            &format!(
                "[[script]]\nname = \"restart_nginx\"\npath = \"nginx/restart.sh\"\nsha256 = \"{}\"\n",
                EMPTY_SHA.to_uppercase()
            ),
            Path::new("/etc/medic-agent/scripts"),
        )
        .unwrap();
        let s = r.get("restart_nginx").unwrap();
        assert_eq!(
            s.path,
            Path::new("/etc/medic-agent/scripts/nginx/restart.sh")
        );
        assert_eq!(s.sha256, EMPTY_SHA);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn empty_registry_is_allowed() {
        assert!(Registry::from_toml("", Path::new("/s")).unwrap().is_empty());
    }

    #[test]
    fn registry_errors_are_specific() {
        let entry = |name: &str, path: &str, sha: &str| {
            format!("[[script]]\nname = \"{name}\"\npath = \"{path}\"\nsha256 = \"{sha}\"\n")
        };
        let dir = Path::new("/s");
        let e = Registry::from_toml(&entry("a b", "a.sh", EMPTY_SHA), dir).unwrap_err();
        assert!(e.contains("script name"), "{e}");
        let e = Registry::from_toml(&entry("a", "../a.sh", EMPTY_SHA), dir).unwrap_err();
        assert!(e.contains("must be relative"), "{e}");
        let e = Registry::from_toml(&entry("a", "/bin/sh", EMPTY_SHA), dir).unwrap_err();
        assert!(e.contains("must be relative"), "{e}");
        let e = Registry::from_toml(&entry("a", "a.sh", "abc"), dir).unwrap_err();
        assert!(e.contains("64 hex"), "{e}");
        let twice = format!(
            "{}{}",
            entry("a", "a.sh", EMPTY_SHA),
            entry("a", "b.sh", EMPTY_SHA)
        );
        let e = Registry::from_toml(&twice, dir).unwrap_err();
        assert!(e.contains("registered twice"), "{e}");
        let e = Registry::from_toml("[[script]]\nname = \"a\"\n", dir).unwrap_err();
        assert!(e.contains("missing field"), "{e}");
        let e = Registry::from_toml("[[scripts]]\nname = \"a\"\n", dir).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn scalar_args_become_sorted_flags() {
        let argv = args_to_argv(&args(json!({
            "service": "nginx; rm -rf /",
            "count": 3,
            "ratio": 0.5,
            "force": true,
        })))
        .unwrap();
        assert_eq!(
            argv,
            vec![
                "--count=3",
                "--force=true",
                "--ratio=0.5",
                "--service=nginx; rm -rf /"
            ]
        );
    }

    #[test]
    fn bad_arg_names_and_values_are_refused() {
        for bad in ["", "bad-name", "a b", "x;y", "é", &"a".repeat(65)] {
            let mut m = Map::new();
            m.insert(bad.to_string(), json!("v"));
            assert!(args_to_argv(&m).is_err(), "{bad:?} accepted");
        }
        for bad in [json!(null), json!([1]), json!({"a": 1}), json!("a\u{0}b")] {
            let mut m = Map::new();
            m.insert("x".into(), bad.clone());
            assert!(args_to_argv(&m).is_err(), "{bad} accepted");
        }
    }
}
