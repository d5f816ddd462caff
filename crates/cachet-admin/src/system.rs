//! The process's and the machine's memory, for the "performance" view of
//! `/stats`: read from `/proc` on Linux, absent elsewhere.

use serde::Serialize;

/// Memory figures, in bytes; `None` where the platform does not say.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Memory {
    /// The process's resident set size.
    pub(crate) process_rss_bytes: Option<u64>,
    /// The machine's total memory.
    pub(crate) system_total_bytes: Option<u64>,
    /// The memory available for new allocations without swapping.
    pub(crate) system_available_bytes: Option<u64>,
}

impl Memory {
    pub(crate) fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            process_rss_bytes: kib_field(&status, "VmRSS:"),
            system_total_bytes: kib_field(&meminfo, "MemTotal:"),
            system_available_bytes: kib_field(&meminfo, "MemAvailable:"),
        }
    }
}

/// A `Name:   1234 kB` line of a `/proc` file, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_read_as_bytes() {
        let text = "Name:\tcachet\nVmRSS:\t   20480 kB\n";
        assert_eq!(kib_field(text, "VmRSS:"), Some(20 * 1024 * 1024));
        assert_eq!(kib_field(text, "VmSwap:"), None);
        if cfg!(target_os = "linux") {
            let memory = Memory::now();
            assert!(memory.process_rss_bytes.is_some_and(|rss| rss > 0));
            assert!(memory.system_total_bytes >= memory.system_available_bytes);
        }
    }
}
