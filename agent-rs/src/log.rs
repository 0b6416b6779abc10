//! JSON-lines logging to stderr: one object per line with `ts`, `level`, `msg` and fields.

use serde_json::Value;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

pub fn info(msg: &str, fields: &[(&str, Value)]) {
    emit(Level::Info, msg, fields);
}

pub fn warn(msg: &str, fields: &[(&str, Value)]) {
    emit(Level::Warn, msg, fields);
}

pub fn error(msg: &str, fields: &[(&str, Value)]) {
    emit(Level::Error, msg, fields);
}

/// Writes one log line. Lines are written with a single `write_all` on a locked stderr so that
/// lines from different threads never interleave.
pub fn emit(level: Level, msg: &str, fields: &[(&str, Value)]) {
    let line = format_line(now_millis(), level, msg, fields);
    let stderr = std::io::stderr();
    let mut lock = stderr.lock();
    // Nothing sensible can be done when stderr is gone.
    let _ = lock.write_all(line.as_bytes());
}

pub fn format_line(epoch_ms: u64, level: Level, msg: &str, fields: &[(&str, Value)]) -> String {
    let mut line = String::with_capacity(96);
    line.push_str("{\"ts\":\"");
    line.push_str(&rfc3339_millis(epoch_ms));
    line.push_str("\",\"level\":\"");
    line.push_str(level.as_str());
    line.push_str("\",\"msg\":");
    line.push_str(&Value::from(msg).to_string());
    for (key, value) in fields {
        line.push(',');
        line.push_str(&Value::from(*key).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push_str("}\n");
    line
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2024-05-01T12:00:00.123Z` for milliseconds since the epoch (UTC, proleptic Gregorian).
pub fn rfc3339_millis(epoch_ms: u64) -> String {
    let secs = epoch_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        epoch_ms % 1000
    )
}

// Howard Hinnant's days-to-civil algorithm; avoids pulling in a date crate for one timestamp.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_714_565_106_789),
            "2024-05-01T12:05:06.789Z"
        );
    }

    #[test]
    fn lines_are_one_json_object() {
        let line = format_line(
            0,
            Level::Warn,
            "job skipped",
            &[("reason", "not_registered".into()), ("n", 3.into())],
        );
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "job skipped");
        assert_eq!(v["reason"], "not_registered");
        assert_eq!(v["n"], 3);
        assert!(line.starts_with("{\"ts\":\"1970-01-01T00:00:00.000Z\""));
    }
}
