//! The one error type of the agent.

use std::fmt;
use std::io;

/// Everything that can go wrong inside the agent and the job wrapper.
#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// A configuration or registry file is missing a value or holds a wrong one.
    Config(String),
    /// A local file or process operation failed.
    Io { context: String, source: io::Error },
    /// The server could not be reached (DNS, connect, TLS, timeout, broken connection).
    Transport(String),
    /// The server answered with a 4xx/5xx status; `code` and `message` come from its error envelope.
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// The server answered 2xx with a body that does not follow the protocol.
    Protocol(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Worth trying again later: the server was unreachable, overloaded or failing.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The HTTP status of a server error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "usage: {msg}"),
            Error::Config(msg) => write!(f, "configuration: {msg}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Transport(msg) => write!(f, "server unreachable: {msg}"),
            Error::Status {
                status,
                code,
                message,
            } => {
                if code.is_empty() {
                    write!(f, "server answered {status}: {message}")
                } else {
                    write!(f, "server answered {status} ({code}): {message}")
                }
            }
            Error::Protocol(msg) => write!(f, "unexpected server response: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
