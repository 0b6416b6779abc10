//! The agent's own resident memory, reported to the server with every job poll so that Medic can
//! list agents that outgrow their footprint promise.

/// Resident set size of this process in bytes (`VmRSS` from `/proc/self/status`), or `None`
/// where there is no such file or it cannot be read.
#[cfg(target_os = "linux")]
pub fn resident_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_vm_rss(&status))
}

/// Not measured outside Linux: the poll then carries no memory figure.
#[cfg(not(target_os = "linux"))]
pub fn resident_bytes() -> Option<u64> {
    None
}

/// `VmRSS:     3012 kB` from the text of `/proc/<pid>/status`, in bytes. `None` when the line
/// is missing or not in kB.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let rest = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let mut parts = rest.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status =
            "Name:\tmedic-agent\nVmPeak:\t  9000 kB\nVmRSS:\t    3012 kB\nVmData:\t 100 kB\n";
        assert_eq!(parse_vm_rss(status), Some(3012 * 1024));
    }

    #[test]
    fn missing_or_odd_vm_rss_is_none() {
        assert_eq!(parse_vm_rss("Name:\tx\nVmPeak:\t9000 kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tmany kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t99999999999999999 kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_size() {
        let bytes = resident_bytes().expect("VmRSS on Linux");
        assert!(bytes > 0 && bytes.is_multiple_of(1024));
    }
}
