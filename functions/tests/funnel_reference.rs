//! The funnel behind `/v1/funnels` against slow, obviously correct
//! references, for what ClickHouse does not have: exclusions, time to
//! convert, and unordered funnels. The references enumerate every chain
//! (or every assignment of steps to events) instead of scanning once.

#![allow(clippy::unwrap_used)]

use contrail_functions::funnel::Row;
use contrail_functions::funnel::chain::{Exclusion, Order, Spec};
use proptest::prelude::*;

/// Rows meeting no step, one, or (one in four) several; times on a tiny
/// clock, so ties and window edges are common.
fn rows(steps: usize, exclusions: usize) -> impl Strategy<Value = Vec<Row>> {
    let mask = prop::bits::u32::between(0, steps);
    prop::collection::vec((0i64..20, 0..=steps, mask, 0..4, prop::bits::u32::between(0, exclusions.max(1))), 0..9)
        .prop_map(move |raw| {
            raw.into_iter()
                .map(|(at, step, several, pick, excluded)| Row {
                    at,
                    steps: if pick == 0 {
                        several
                    } else if step == steps {
                        0
                    } else {
                        1 << step
                    },
                    excluded: if exclusions == 0 { 0 } else { excluded },
                    value: 0,
                })
                .collect()
        })
}

/// The processing order the funnel documents: time, then the lowest step
/// the row meets, then arrival. A chain's rows strictly follow this order,
/// so no row stands for two steps.
fn key(rows: &[Row], i: usize) -> (i64, u32, usize) {
    (rows[i].at, rows[i].steps.trailing_zeros(), i)
}

/// Every valid ordered chain, as row indices, by brute force.
fn chains(spec: &Spec, rows: &[Row]) -> Vec<Vec<usize>> {
    fn extend(spec: &Spec, rows: &[Row], chain: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(chain.clone());
        let step = chain.len();
        if step == spec.steps {
            return;
        }
        for next in 0..rows.len() {
            if rows[next].steps & (1 << step) == 0 {
                continue;
            }
            if let Some(&last) = chain.last() {
                let start = rows[chain[0]].at;
                let after_last = key(rows, next) > key(rows, last);
                let in_window = rows[next].at <= start + spec.window;
                // No exclusion event strictly between its from-step and this step.
                let clean = spec.exclusions.iter().enumerate().all(|(k, e)| {
                    e.to != step
                        || !rows.iter().any(|r| {
                            r.excluded & (1 << k) != 0 && r.at > rows[chain[e.from]].at && r.at < rows[next].at
                        })
                });
                if !(after_last && in_window && clean) {
                    continue;
                }
            }
            chain.push(next);
            extend(spec, rows, chain, out);
            chain.pop();
        }
    }
    let mut out = Vec::new();
    extend(spec, rows, &mut Vec::new(), &mut out);
    out
}

/// The most distinct steps that distinct rows of one window can stand for.
fn unordered_level(spec: &Spec, rows: &[Row]) -> usize {
    fn assign(step: usize, spec: &Spec, window: &[Row], used: &mut Vec<bool>) -> usize {
        if step == spec.steps {
            return 0;
        }
        let mut best = assign(step + 1, spec, window, used);
        for i in 0..window.len() {
            if !used[i] && window[i].steps & (1 << step) != 0 {
                used[i] = true;
                best = best.max(1 + assign(step + 1, spec, window, used));
                used[i] = false;
            }
        }
        best
    }
    rows.iter()
        .filter(|r| r.steps != 0)
        .map(|start| {
            let window: Vec<Row> = rows
                .iter()
                .filter(|r| r.steps != 0 && r.at >= start.at && r.at <= start.at + spec.window)
                .copied()
                .collect();
            assign(0, spec, &window, &mut vec![false; window.len()])
        })
        .max()
        .unwrap_or(0)
}

fn spec_strategy() -> impl Strategy<Value = (Spec, Vec<Row>)> {
    (2usize..=4, 0i64..8, 0usize..=2).prop_flat_map(|(steps, window, exclusions)| {
        let spans =
            prop::collection::vec((0..steps - 1).prop_flat_map(move |from| (Just(from), from + 1..steps)), exclusions);
        (Just(steps), Just(window), spans, rows(steps, exclusions)).prop_map(|(steps, window, spans, rows)| {
            let exclusions = spans.into_iter().map(|(from, to)| Exclusion { from, to }).collect();
            (Spec { steps, window, order: Order::Ordered, exclusions }, rows)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// The furthest step is the longest valid chain; the times reported are
    /// those of the chain whose last step comes first, taking the latest
    /// possible earlier steps.
    #[test]
    fn ordered_funnels_with_exclusions_match_the_brute_force((spec, rows) in spec_strategy()) {
        let ours = spec.evaluate(&rows);
        let all = chains(&spec, &rows);
        let level = all.iter().map(Vec::len).max().unwrap_or(0);
        prop_assert_eq!(usize::from(ours.level), level);
        if level > 0 {
            let first_last = all.iter().filter(|c| c.len() == level).map(|c| key(&rows, c[level - 1])).min().unwrap();
            let expected = all
                .iter()
                .filter(|c| c.len() == level && key(&rows, c[level - 1]) == first_last)
                .map(|c| c.iter().map(|&i| rows[i].at).collect::<Vec<_>>())
                .max_by(|a, b| a.iter().rev().cmp(b.iter().rev()))
                .unwrap();
            prop_assert_eq!(ours.times, expected);
        }
    }

    #[test]
    fn unordered_funnels_match_the_brute_force((spec, rows) in spec_strategy()) {
        let spec = Spec { order: Order::Unordered, exclusions: Vec::new(), ..spec };
        prop_assert_eq!(usize::from(spec.evaluate(&rows).level), unordered_level(&spec, &rows));
    }
}

/// One row meeting several steps still stands for one of them.
#[test]
fn a_row_meeting_two_steps_advances_one() {
    let spec = Spec { steps: 2, window: 10, order: Order::Ordered, exclusions: Vec::new() };
    let both = Row { at: 0, steps: 0b11, excluded: 0, value: 0 };
    assert_eq!(spec.evaluate(&[both]).level, 1);
    assert_eq!(spec.evaluate(&[both, Row { at: 5, ..both }]).level, 2);
    let unordered = Spec { order: Order::Unordered, ..spec };
    assert_eq!(unordered.evaluate(&[both]).level, 1);
}
