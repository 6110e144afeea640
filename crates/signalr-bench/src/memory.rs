//! A process's resident memory, from `/proc/<pid>/status` (Linux).

/// `VmRSS` of process `pid` in KiB; `None` when it cannot be read (no such process, not
/// Linux).
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_field(&status, "VmRSS")
}

/// The value in kB of a `Name:   1234 kB` line of a `/proc/<pid>/status` text.
pub fn parse_status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        let mut words = rest.split_whitespace();
        let value = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmrss_from_a_status_text() {
        let status = "Name:\tserver\nVmPeak:\t  200000 kB\nVmRSS:\t   12345 kB\nVmRSSx:\t 1 kB\n";
        assert_eq!(parse_status_field(status, "VmRSS"), Some(12_345));
        assert_eq!(parse_status_field(status, "VmPeak"), Some(200_000));
        assert_eq!(parse_status_field(status, "VmHWM"), None);
        assert_eq!(parse_status_field("VmRSS:\tlots\n", "VmRSS"), None);
    }

    #[test]
    fn reads_this_process() {
        let kib = resident_kib(std::process::id()).expect("Linux has /proc");
        assert!(kib > 0);
    }
}
