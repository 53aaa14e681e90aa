//! Exactly once as a property: random interleavings of duplicate events,
//! retried flushes, late events and crashes (any write failing before or after
//! it happens) between compaction steps.

use std::collections::HashSet;

use contrail_warehouse::{Compactor, CompactorConfig};
use proptest::prelude::*;

use crate::faults::{Policy, faulty_location};
use crate::harness::{Backend, DAY_MS, DAY0, TestLocation, events};

#[derive(Debug, Clone)]
enum Op {
    /// A flush of these ids (from a small pool, so they repeat). Each id's
    /// time is one second before some midnight, shifted by `jitter_ms`: a
    /// retry's skew-corrected time moves a little and may cross midnight,
    /// which is the case the neighbour-partition dedupe exists for.
    Flush { ids: Vec<u8>, jitter_ms: i64 },
    /// The same events as an earlier flush, under a new key (a re-sent batch).
    Refly(usize),
    /// A compaction run during which writes fail at random.
    CrashyCompact { seed: u64 },
    /// A clean compaction run.
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (proptest::collection::vec(0u8..60, 1..12), -3_000i64..=3_000).prop_map(|(ids, jitter_ms)| Op::Flush { ids, jitter_ms }),
        1 => (0usize..8).prop_map(Op::Refly),
        2 => any::<u64>().prop_map(|seed| Op::CrashyCompact { seed: seed | 1 }),
        1 => Just(Op::Compact),
    ]
}

async fn check(backend: Backend, ops: Vec<Op>) {
    let t = TestLocation::new(backend);
    let mut flushed: Vec<Vec<contrail_edge::Event>> = Vec::new();
    let mut expected = HashSet::new();
    let mut seq = 0;
    for op in ops {
        match op {
            Op::Flush { ids, jitter_ms } => {
                let batch: Vec<_> = ids
                    .iter()
                    .map(|i| {
                        let base = DAY0 + (*i as i64 % 4) * DAY_MS - 1_000;
                        events("acme", [format!("id-{i}")], base + jitter_ms).remove(0)
                    })
                    .collect();
                expected.extend(ids.iter().map(|i| format!("id-{i}")));
                seq += 1;
                t.put_raw(&batch, DAY0 + seq as i64, seq).await;
                flushed.push(batch);
            }
            Op::Refly(i) if !flushed.is_empty() => {
                let batch = flushed[i % flushed.len()].clone();
                seq += 1;
                t.put_raw(&batch, DAY0 + seq as i64, seq).await;
            }
            Op::Refly(_) => {}
            Op::CrashyCompact { seed } => {
                let (location, _, store) = faulty_location(&t.location, Policy::Random { state: seed, p: 0.3 });
                store.set(Policy::Random { state: seed.rotate_left(29) | 1, p: 0.3 }.decider());
                // A crash is an error at any write; whatever it left must be
                // repaired by later runs.
                let _ = Compactor::new(location, CompactorConfig { max_attempts: 2, ..Default::default() })
                    .run_once()
                    .await;
            }
            Op::Compact => {
                Compactor::new(t.location.clone(), CompactorConfig::default()).run_once().await.unwrap();
            }
        }
    }
    Compactor::new(t.location.clone(), CompactorConfig::default()).run_until_caught_up().await.unwrap();
    let counts = t.id_counts("acme").await;
    let stored: HashSet<String> = counts.keys().cloned().collect();
    assert_eq!(stored, expected, "{backend:?}: every flushed event is in the table");
    assert!(counts.values().all(|n| *n == 1), "{backend:?}: an event twice: {counts:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn exactly_once_on_the_local_file_system(ops in proptest::collection::vec(op(), 1..14)) {
        tokio::runtime::Runtime::new().unwrap().block_on(check(Backend::Local, ops));
    }
}

proptest! {
    // Fewer cases on S3: each is a few dozen HTTP round trips to moto.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn exactly_once_on_s3(ops in proptest::collection::vec(op(), 1..10)) {
        tokio::runtime::Runtime::new().unwrap().block_on(check(Backend::S3, ops));
    }
}
