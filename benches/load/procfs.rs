//! What `/proc` says about a process the benchmark started: its CPU time and its resident memory.

use std::time::Duration;

/// User plus system CPU time process `pid` has used so far (10 ms ticks).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = 100; // USER_HZ on Linux
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A process whose CPU time a scenario reads before and after its load.
pub trait Metered {
    /// The process's id.
    fn pid(&self) -> u32;

    /// User plus system CPU time it has used so far.
    fn cpu_time(&self) -> Duration {
        cpu_time(self.pid())
    }
}
