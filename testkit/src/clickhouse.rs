//! ClickHouse as the oracle of the funnel and retention tests: seeded events
//! shaped to find disagreements, and chDB's answers on them
//! (`functions/tests/clickhouse/oracle.py`, run with the test venv's Python).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// One event of the generated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelEvent {
    /// The person (a distinct id).
    pub person: String,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// A step name or `X` (noise).
    pub event: &'static str,
}

/// The step names the generator uses, in funnel order.
pub const STEPS: [&str; 4] = ["A", "B", "C", "D"];

/// Seeded events for `persons` persons starting at `base_ms`, built to reach
/// the corners of `windowFunnel`: heavy-tailed event counts per person,
/// events on a coarse clock (so many share a timestamp), repeated first
/// steps, noise between steps, and steps exactly at the window's edge and
/// one millisecond past it.
pub fn funnel_events(seed: u64, persons: usize, base_ms: i64, window_ms: i64) -> Vec<FunnelEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    for p in 0..persons {
        let person = format!("p{p:04}");
        let start = base_ms + rng.random_range(0..3 * 86_400_000i64);
        // Pareto-like: most persons have a few events, some have hundreds.
        let u: f64 = rng.random_range(0.001..1.0);
        let count = ((1.0 / u.powf(0.7)) as usize).clamp(1, 400);
        // A coarse clock (whole minutes) makes equal timestamps common.
        let tick = if rng.random_bool(0.5) { 60_000 } else { 1 };
        let mut at = start;
        for _ in 0..count {
            let roll: f64 = rng.random();
            let event = match roll {
                r if r < 0.25 => "A",
                r if r < 0.45 => "B",
                r if r < 0.60 => "C",
                r if r < 0.70 => "D",
                _ => "X",
            };
            events.push(FunnelEvent { person: person.clone(), at_ms: at, event });
            let step = rng.random_range(0..window_ms / 3);
            at += step - step % tick;
        }
        // The window's edge: a step exactly at start + window, and one a millisecond past it.
        if p % 7 == 0 {
            let t = start + 10 * window_ms;
            events.push(FunnelEvent { person: person.clone(), at_ms: t, event: "A" });
            events.push(FunnelEvent { person: person.clone(), at_ms: t + window_ms / 2, event: "B" });
            let last = if p % 14 == 0 { t + window_ms } else { t + window_ms + 1 };
            events.push(FunnelEvent { person: person.clone(), at_ms: last, event: "C" });
        }
    }
    events
}

/// Writes `events` as the oracle's CSV (`person,at_ms,event`).
pub fn write_csv(events: &[FunnelEvent], path: &Path) {
    let mut text = String::from("person,at_ms,event\n");
    for e in events {
        text.push_str(&format!("{},{},{}\n", e.person, e.at_ms, e.event));
    }
    std::fs::write(path, text).unwrap();
}

/// ClickHouse's answers on `csv`: `windowFunnel(window_ms)` per mode and
/// `retention` per person, as printed by the oracle.
pub fn oracle(csv: &Path, window_ms: i64, steps: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/tests/clickhouse/oracle.py");
    let output = Command::new(crate::python())
        .arg(script)
        .arg(csv)
        .arg("--window-ms")
        .arg(window_ms.to_string())
        .arg("--steps")
        .arg(steps.join(","))
        .output()
        .expect("the chDB oracle runs");
    assert!(output.status.success(), "oracle failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the oracle prints JSON")
}

/// One mode's levels from the oracle's answer, per person.
pub fn levels(answer: &Value, mode: &str) -> BTreeMap<String, u64> {
    let map = answer["window_funnel"][mode]
        .as_object()
        .unwrap_or_else(|| panic!("mode {mode}: {}", answer["window_funnel"][mode]));
    assert!(map.get("error").is_none(), "ClickHouse refused mode {mode}: {}", map["error"]);
    map.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect()
}
