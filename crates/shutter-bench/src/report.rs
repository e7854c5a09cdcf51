//! results.json (`{"machine": {...}, "scenarios": {"<scenario>": {"<figure>": number}}}`) and
//! the readable table printed at the end (and saved beside it as results.txt).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::scenario::{Figures, Scenario};

/// How one scenario of the list ended.
pub enum Outcome {
    Measured(Figures),
    Failed(String),
    NotRun,
}

pub fn results_json(machine: &Map<String, Value>, results: &[(String, Outcome)]) -> Value {
    let mut scenarios = Map::new();
    for (name, outcome) in results {
        if let Outcome::Measured(f) = outcome {
            scenarios.insert(
                name.clone(),
                Value::Object(f.0.clone().into_iter().collect()),
            );
        }
    }
    let mut root = Map::new();
    root.insert("machine".into(), Value::Object(machine.clone()));
    root.insert("scenarios".into(), Value::Object(scenarios));
    Value::Object(root)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// The readable table: the machine, then every scenario with its figures, targets and
/// whether they were met.
pub fn table(
    machine: &Map<String, Value>,
    entries: &[Box<dyn Scenario>],
    results: &[(String, Outcome)],
    quick: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Shutter benchmarks ({} mode, {} storage)",
        if quick { "quick" } else { "full" },
        crate::scenario::storage().name()
    );
    for (k, v) in machine {
        let _ = writeln!(out, "  {k:<14} {}", show(v));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:<22} {:>14}  {:<18} met",
        "scenario", "figure", "value", "target"
    );
    let _ = writeln!(out, "{}", "-".repeat(80));
    for entry in entries {
        let name = entry.name();
        let outcome = results.iter().find(|(n, _)| n == name).map(|(_, o)| o);
        match outcome {
            None | Some(Outcome::NotRun) => {
                let _ = writeln!(out, "{name:<16} not run");
            }
            Some(Outcome::Failed(e)) => {
                let _ = writeln!(out, "{name:<16} FAILED: {e}");
            }
            Some(Outcome::Measured(f)) => {
                let s = entry;
                let targets = s.targets();
                let mut first = true;
                for (fig, v) in &f.0 {
                    let target = targets.iter().find(|t| t.figure == fig);
                    let (t, met) = match target {
                        Some(t) => (
                            t.describe(),
                            match t.met(f) {
                                Some(true) => "met",
                                Some(false) => "NOT MET",
                                None => "?",
                            },
                        ),
                        None => (String::new(), ""),
                    };
                    let _ = writeln!(
                        out,
                        "{:<16} {:<22} {:>14}  {:<18} {}",
                        if first { name } else { "" },
                        fig,
                        show(v),
                        t,
                        met
                    );
                    first = false;
                }
                for t in targets.iter().filter(|t| !f.0.contains_key(t.figure)) {
                    let _ = writeln!(
                        out,
                        "{:<16} {:<22} {:>14}  {:<18} not measured",
                        "",
                        t.figure,
                        "-",
                        t.describe()
                    );
                }
                for (fig, why) in s.skipped(quick) {
                    let _ = writeln!(out, "{:<16} {:<22} {:>14}  {why}", "", fig, "-");
                }
            }
        }
    }
    out
}
