//! A process's CPU time, to report work per event next to wall-clock
//! rates (which swing with the other load on a shared machine).

/// CPU time (user + system, all threads) this process has used so far, in
/// seconds, from `/proc/self/stat` (clock ticks of 1/100 s).
#[allow(dead_code)] // not every bench reports its own CPU
pub fn process_seconds() -> f64 {
    stat_seconds("self")
}

/// The same for another process (a gateway the bench started).
#[allow(dead_code)]
pub fn seconds_of(pid: u32) -> f64 {
    stat_seconds(&pid.to_string())
}

fn stat_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // utime and stime are the 14th and 15th fields of the line, the 12th
    // and 13th after the parenthesised command name.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
