//! CPU time and resident memory of processes, from /proc (Linux).

/// Pids of `root` and all its descendants.
fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1).and_then(|v| v.parse::<u32>().ok())) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Fields of /proc/PID/stat after the command name: [state, ppid, …].
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit(')').next()?.split_whitespace().map(str::to_string).collect())
}

/// User + system CPU seconds of `pid` (0 = this process) and its descendants.
pub fn cpu_seconds(pid: u32) -> f64 {
    let root = if pid == 0 { std::process::id() } else { pid };
    let pids = if pid == 0 { vec![root] } else { tree(root) };
    pids.iter()
        .filter_map(|p| stat_fields(*p))
        .map(|f| {
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (ticks(11) + ticks(12)) / 100.0 // utime, stime at 100 Hz
        })
        .sum()
}

/// Resident memory in MiB of `pid` (0 = this process) and its descendants.
pub fn rss_mib(pid: u32) -> f64 {
    let root = if pid == 0 { std::process::id() } else { pid };
    let pids = if pid == 0 { vec![root] } else { tree(root) };
    let kb: f64 = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .sum();
    kb / 1024.0
}
