//! Latencies, CPU time from `/proc`, and the server's own counters from `/metrics`.

use std::collections::HashMap;
use std::time::Duration;

/// Latency percentiles of a run.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ticks_per_sec() -> f64 {
    // Linux reports CPU time in USER_HZ, 100 on every platform Rust targets.
    100.0
}

/// CPU seconds (user + system) of process `pid`, children excluded.
pub fn cpu_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // The command name may hold spaces; fields after it are space-separated.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // After ")": state is field 0, utime field 11, stime field 12.
    (num(11) + num(12)) / ticks_per_sec()
}

/// CPU seconds of every process named `postgres` (the database server's backends and helpers).
pub fn cpu_of_postgres() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    let mut total = 0.0;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres") {
            total += cpu_of(pid);
        }
    }
    total
}

/// Counters the server exposes per operation: requests, statements and round trips.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpCounters {
    pub requests: f64,
    pub statements: f64,
    pub round_trips: f64,
}

/// Reads `crm_graphql_requests_total`, `crm_graphql_db_statements_total` and
/// `crm_graphql_db_round_trips_total` per operation (outcomes summed).
pub fn parse_metrics(text: &str) -> HashMap<String, OpCounters> {
    let mut out: HashMap<String, OpCounters> = HashMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(v) = value.parse::<f64>() else { continue };
        let Some((name, labels)) = series.split_once('{') else { continue };
        let Some(op) = labels.split("operation=\"").nth(1).and_then(|r| r.split('"').next()) else { continue };
        let c = out.entry(op.to_owned()).or_default();
        match name {
            "crm_graphql_requests_total" => c.requests += v,
            "crm_graphql_db_statements_total" => c.statements += v,
            "crm_graphql_db_round_trips_total" => c.round_trips += v,
            _ => {}
        }
    }
    out
}
