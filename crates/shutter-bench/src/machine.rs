//! What the numbers were measured on: cores, memory, kernel, CPU model, and how loaded the
//! machine was (load averages at the start and the end of the run).

use serde_json::{json, Map, Value};

/// The `machine` object of results.json.
pub fn describe() -> Map<String, Value> {
    let mut m = Map::new();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    m.insert("cores".into(), json!(cores));
    if let Some(model) = cpu_model() {
        m.insert("cpu_model".into(), json!(model));
    }
    if let Some(kib) = meminfo_kib("MemTotal") {
        m.insert(
            "memory_gib".into(),
            json!((kib as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0),
        );
    }
    if let Some(kernel) = read_trimmed("/proc/sys/kernel/osrelease") {
        m.insert("kernel".into(), json!(kernel));
    }
    if let Some(os) = os_name() {
        m.insert("os".into(), json!(os));
    }
    if let Some(load) = load_average() {
        m.insert("loadavg_start".into(), json!(load));
    }
    m
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = read_trimmed("/proc/loadavg")?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<f64>().ok());
    Some([parts.next()??, parts.next()??, parts.next()??])
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn os_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_at_least_the_cores() {
        let m = describe();
        assert!(m.get("cores").and_then(Value::as_u64).unwrap_or(0) >= 1);
    }
}
