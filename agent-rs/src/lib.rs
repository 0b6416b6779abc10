//! medic-agent: runs host-approved remediation scripts for the Medic server, and wraps cron
//! jobs so that Medic sees their start, end, exit code and output tail.

pub mod agent;
pub mod backoff;
pub mod client;
pub mod config;
pub mod error;
pub mod exec;
pub mod http;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod registry;
pub mod shutdown;
pub mod wrapper;

pub use error::{Error, Result};

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage:
  medic-agent run [--config FILE]
      Run the agent (default config /etc/medic-agent/medic-agent.toml).
  medic-agent exec --service NAME [--run-id ID] [--config FILE] -- COMMAND [ARGS...]
      Run COMMAND and report its run to Medic; exits with COMMAND's exit code.
      Without --config: MEDIC_URL and MEDIC_API_KEY (or MEDIC_API_KEY_FILE), optional
      MEDIC_CA_FILE; otherwise /etc/medic-agent/medic-agent.toml if present.
  medic-agent hash FILE...
      Print the sha256 of each FILE, for the script registry.
  medic-agent --version | --help
";

/// Parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run { config: PathBuf },
    Exec(wrapper::Options),
    Hash { files: Vec<PathBuf> },
    Version,
    Help,
}

/// Entry point: parses `args` (including the program name) and returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let command = match parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "medic-agent: {e}\n\n{USAGE}");
            return 2;
        }
    };
    match command {
        Command::Help => print(USAGE),
        Command::Version => print(&format!("medic-agent {}\n", client::VERSION)),
        Command::Hash { files } => hash_files(&files),
        Command::Exec(opts) => wrapper::run(&opts),
        Command::Run { config } => match agent::run(&config) {
            Ok(()) => 0,
            Err(e) => {
                log::error("agent failed", &[("error", e.to_string().into())]);
                1
            }
        },
    }
}

fn print(text: &str) -> i32 {
    let _ = std::io::stdout().write_all(text.as_bytes());
    0
}

fn hash_files(files: &[PathBuf]) -> i32 {
    let mut code = 0;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for f in files {
        match registry::hash_file(f) {
            Ok(h) => {
                let _ = writeln!(out, "{h}  {}", f.display());
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "medic-agent: {}: {e}", f.display());
                code = 1;
            }
        }
    }
    code
}

pub fn parse_args(args: Vec<OsString>) -> Result<Command> {
    let mut it = args.into_iter().skip(1);
    let Some(sub) = it.next() else {
        return Err(Error::Usage("missing command".into()));
    };
    match sub.to_str().unwrap_or("") {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" | "version" => Ok(Command::Version),
        "run" => {
            let mut config = PathBuf::from(config::DEFAULT_CONFIG_PATH);
            let rest: Vec<OsString> = it.collect();
            let mut flags = Flags::new(rest);
            while let Some(flag) = flags.next_flag()? {
                match flag.as_str() {
                    "--config" => config = PathBuf::from(flags.value(&flag)?),
                    _ => return Err(Error::Usage(format!("unknown option {flag} for run"))),
                }
            }
            if let Some(extra) = flags.rest.first() {
                return Err(Error::Usage(format!(
                    "unexpected argument {:?} for run",
                    extra
                )));
            }
            Ok(Command::Run { config })
        }
        "exec" => parse_exec(it.collect()),
        "hash" => {
            let files: Vec<PathBuf> = it.map(PathBuf::from).collect();
            if files.is_empty() {
                return Err(Error::Usage("hash needs at least one FILE".into()));
            }
            Ok(Command::Hash { files })
        }
        other => Err(Error::Usage(format!("unknown command {other:?}"))),
    }
}

fn parse_exec(args: Vec<OsString>) -> Result<Command> {
    let mut opts = wrapper::Options::default();
    let mut flags = Flags::new(args);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--service" => opts.service = flags.value(&flag)?,
            "--run-id" => opts.run_id = Some(flags.value(&flag)?),
            "--config" => opts.config = Some(PathBuf::from(flags.value(&flag)?)),
            _ => return Err(Error::Usage(format!("unknown option {flag} for exec"))),
        }
    }
    opts.command = flags.rest;
    if opts.service.is_empty() {
        return Err(Error::Usage("exec needs --service NAME".into()));
    }
    let printable = |s: &str| s.len() <= 200 && !s.chars().any(char::is_control);
    if !printable(&opts.service) {
        return Err(Error::Usage(
            "--service must be at most 200 printable characters".into(),
        ));
    }
    if let Some(id) = &opts.run_id {
        if id.is_empty() || !printable(id) {
            return Err(Error::Usage(
                "--run-id must be 1 to 200 printable characters".into(),
            ));
        }
    }
    if opts.command.is_empty() {
        return Err(Error::Usage("exec needs a command after --".into()));
    }
    Ok(Command::Exec(opts))
}

/// Minimal option scanner: `--name value`, `--name=value`, `--` ends options, and the first
/// argument not starting with `-` ends them too.
struct Flags {
    args: std::vec::IntoIter<OsString>,
    inline_value: Option<String>,
    rest: Vec<OsString>,
}

impl Flags {
    fn new(args: Vec<OsString>) -> Self {
        Flags {
            args: args.into_iter(),
            inline_value: None,
            rest: Vec::new(),
        }
    }

    fn next_flag(&mut self) -> Result<Option<String>> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        let text = arg.to_str().unwrap_or("");
        if text == "--" {
            self.rest = self.args.by_ref().collect();
            return Ok(None);
        }
        if !text.starts_with('-') || text == "-" {
            self.rest = std::iter::once(arg.clone())
                .chain(self.args.by_ref())
                .collect();
            return Ok(None);
        }
        match text.split_once('=') {
            Some((name, value)) => {
                self.inline_value = Some(value.to_string());
                Ok(Some(name.to_string()))
            }
            None => {
                self.inline_value = None;
                Ok(Some(text.to_string()))
            }
        }
    }

    fn value(&mut self, flag: &str) -> Result<String> {
        if let Some(v) = self.inline_value.take() {
            return Ok(v);
        }
        match self.args.next() {
            Some(v) => v
                .into_string()
                .map_err(|_| Error::Usage(format!("{flag} needs a UTF-8 value"))),
            None => Err(Error::Usage(format!("{flag} needs a value"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command> {
        parse_args(
            std::iter::once("medic-agent")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect(),
        )
    }

    #[test]
    fn parses_run() {
        assert_eq!(
            parse(&["run"]).unwrap(),
            Command::Run {
                config: PathBuf::from(config::DEFAULT_CONFIG_PATH)
            }
        );
        assert_eq!(
            parse(&["run", "--config", "/x.toml"]).unwrap(),
            Command::Run {
                config: PathBuf::from("/x.toml")
            }
        );
        assert_eq!(
            parse(&["run", "--config=/y.toml"]).unwrap(),
            Command::Run {
                config: PathBuf::from("/y.toml")
            }
        );
        assert!(parse(&["run", "--bogus"]).is_err());
        assert!(parse(&["run", "--config"]).is_err());
        assert!(parse(&["run", "extra"]).is_err());
    }

    #[test]
    fn parses_exec() {
        let Command::Exec(o) = parse(&[
            "exec",
            "--service",
            "backup",
            "--run-id=r1",
            "--",
            "tar",
            "-c",
            "--",
            "x",
        ])
        .unwrap() else {
            panic!("not exec")
        };
        assert_eq!(o.service, "backup");
        assert_eq!(o.run_id.as_deref(), Some("r1"));
        let cmd: Vec<_> = o.command.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(cmd, ["tar", "-c", "--", "x"]);
        assert!(parse(&["exec", "--", "true"]).is_err(), "service required");
        assert!(
            parse(&["exec", "--service", "s"]).is_err(),
            "command required"
        );
        assert!(parse(&["exec", "--service", "s", "--run-id", "", "--", "true"]).is_err());
    }

    #[test]
    fn parses_misc() {
        assert_eq!(parse(&["--version"]).unwrap(), Command::Version);
        assert_eq!(parse(&["--help"]).unwrap(), Command::Help);
        assert!(parse(&[]).is_err());
        assert!(parse(&["hash"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }
}
