//! Many concurrent writers on overlapping keys, checked against what the
//! watchers saw.
//!
//! The watch stream of the whole key space is the store's history; the test
//! replays it and checks that (1) it is gap-free and in order, (2) replaying
//! it gives exactly the final state, (3) every successful call appears in it
//! at its revision with the `prev` its CAS demanded, and (4) every reported
//! failure (`Conflict`, `AlreadyExists`, `NotFound`) was true of the key at
//! some revision during the call.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use svcnet_store::{EmbeddedStore, Error, EventKind, KeyValue, Revision, Store, TxnOp, Watch, WatchEvent};

use crate::support::{b, next_event, open, seed, tempdir};

const TASKS: u64 = 16;
const OPS_PER_TASK: usize = 250;
const KEYS: usize = 24;

/// One call and what it returned.
#[derive(Debug)]
struct Outcome {
    /// (key, expected mod_revision if CAS-guarded, kind) per op.
    ops: Vec<(String, Option<Revision>, OpKind)>,
    /// Store revision before the call was sent and after it returned.
    window: (Revision, Revision),
    result: Result<Revision, Error>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum OpKind {
    Create,
    Update,
    Delete,
}

fn key(rng: &mut StdRng) -> String {
    format!("/k/{}", rng.random_range(0..KEYS))
}

async fn run_client(store: Arc<EmbeddedStore>, seed: u64) -> Vec<Outcome> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcomes = Vec::with_capacity(OPS_PER_TASK);
    for i in 0..OPS_PER_TASK {
        // Mostly read-then-CAS on a shared key, the API server's pattern.
        let mut ops = Vec::new();
        let n = if rng.random_bool(0.15) { rng.random_range(2..=3) } else { 1 };
        for _ in 0..n {
            let mut k = key(&mut rng);
            // Keys within one txn are distinct so each op's failure refers
            // to state from before the txn.
            while ops.iter().any(|(other, _, _): &(String, _, _)| *other == k) {
                k = key(&mut rng);
            }
            let current = store.get(&k).await.expect("get").map(|kv| kv.mod_revision);
            let stale = rng.random_bool(0.1);
            let op = match (current, rng.random_range(0..10)) {
                (None, _) | (_, 0..=1) => (k, None, OpKind::Create),
                (Some(rev), 2..=7) => (k, Some(if stale { rev - 1 } else { rev }), OpKind::Update),
                (Some(rev), _) => {
                    let expected = if rng.random_bool(0.3) { None } else { Some(if stale { rev + 1 } else { rev }) };
                    (k, expected, OpKind::Delete)
                }
            };
            ops.push(op);
        }
        let value = b(&format!("{seed}-{i}"));
        let txn_ops: Vec<TxnOp> = ops
            .iter()
            .map(|(key, expected, kind)| match kind {
                OpKind::Create => TxnOp::Create { key: key.clone(), value: value.clone() },
                OpKind::Update => {
                    TxnOp::Update { key: key.clone(), value: value.clone(), expected: expected.unwrap_or_default() }
                }
                OpKind::Delete => TxnOp::Delete { key: key.clone(), expected: *expected },
            })
            .collect();
        let before = store.current_revision();
        let result = if let [op] = &txn_ops[..] {
            match op.clone() {
                TxnOp::Create { key, value } => store.create(&key, value).await,
                TxnOp::Update { key, value, expected } => store.update(&key, value, expected).await,
                TxnOp::Delete { key, expected } => store.delete(&key, expected).await.map(|kv| kv.mod_revision),
            }
        } else {
            store.txn(txn_ops).await
        };
        let after = store.current_revision();
        outcomes.push(Outcome { ops, window: (before, after), result });
    }
    outcomes
}

/// Reads `watch` up to and including the first event at revision `until`.
/// Callers make `until` a single-op write, so no event of it is left behind.
async fn collect_until(watch: &mut Watch, until: Revision) -> Vec<WatchEvent> {
    let mut events: Vec<WatchEvent> = Vec::new();
    while events.last().is_none_or(|e| e.kv.mod_revision < until) {
        events.push(next_event(watch).await);
    }
    events
}

async fn collect_n(watch: &mut Watch, n: usize) -> Vec<WatchEvent> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next_event(watch).await);
    }
    events
}

/// The mod_revision of each key after each revision: key -> [(rev, state)].
fn key_histories(events: &[WatchEvent]) -> HashMap<String, Vec<(Revision, Option<Revision>)>> {
    let mut out: HashMap<String, Vec<(Revision, Option<Revision>)>> = HashMap::new();
    for e in events {
        let state = (e.kind == EventKind::Put).then_some(e.kv.mod_revision);
        out.entry(e.kv.key.clone()).or_default().push((e.kv.mod_revision, state));
    }
    out
}

/// Whether `key` was in a state satisfying `ok` at some revision in `window`.
fn held_during(
    histories: &HashMap<String, Vec<(Revision, Option<Revision>)>>,
    key: &str,
    (from, to): (Revision, Revision),
    ok: impl Fn(Option<Revision>) -> bool,
) -> bool {
    let empty = Vec::new();
    let history = histories.get(key).unwrap_or(&empty);
    let at_start = history.iter().take_while(|(rev, _)| *rev <= from).last().and_then(|(_, s)| *s);
    ok(at_start) || history.iter().filter(|(rev, _)| *rev > from && *rev <= to).any(|(_, s)| ok(*s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_writers_and_watchers_agree_on_one_history() {
    let seed = seed("concurrent_cas_writers_and_watchers_agree_on_one_history");
    let dir = tempdir();
    let store = open(dir.path()).await;
    let mut all = store.watch("", 0).await.expect("watch all");
    let mut some = store.watch("/k/1", 0).await.expect("watch prefix");

    let mut clients = Vec::new();
    for task in 0..TASKS {
        clients.push(tokio::spawn(run_client(Arc::clone(&store), seed.wrapping_add(task))));
    }
    // A watcher joining mid-way, resuming from wherever the store is then.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let late_from = store.current_revision();
    let mut late = store.watch("", late_from).await.expect("late watch");

    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("client task"));
    }
    let last = store.current_revision();
    let final_state = store.list("", None, 0).await.expect("list");
    assert_eq!(final_state.revision, last);
    // The last client write may be a txn with several events; a single-op
    // write after it marks where the history of interest ends.
    let sentinel = store.create("/sentinel", b("end")).await.expect("sentinel");
    let mut events = collect_until(&mut all, sentinel).await;
    assert_eq!(events.pop().map(|e| e.kv.key), Some("/sentinel".to_owned()));
    // (1) Gap-free and ordered; several events per revision only for txns.
    let mut expected_next = 1;
    let mut txn_revisions = Vec::new();
    for pair in events.windows(2) {
        let (a, b) = (pair[0].kv.mod_revision, pair[1].kv.mod_revision);
        assert!(b == a || b == a + 1, "seed {seed}: revision {a} followed by {b}");
        if a == b {
            txn_revisions.push(a);
        }
    }
    for e in &events {
        if e.kv.mod_revision == expected_next {
            expected_next += 1;
        }
    }
    assert_eq!(expected_next - 1, last, "seed {seed}: every revision up to {last} is seen");

    // (2) Replaying the events gives the final state, revisions included.
    let mut replayed: BTreeMap<String, KeyValue> = BTreeMap::new();
    for e in &events {
        match e.kind {
            EventKind::Put => {
                let prev = replayed.insert(e.kv.key.clone(), e.kv.clone());
                assert_eq!(prev, e.prev, "seed {seed}: prev of {:?} at {}", e.kv.key, e.kv.mod_revision);
            }
            EventKind::Delete => {
                let prev = replayed.remove(&e.kv.key);
                assert_eq!(prev, e.prev, "seed {seed}: prev of deleted {:?}", e.kv.key);
            }
        }
    }
    assert_eq!(replayed.into_values().collect::<Vec<_>>(), final_state.kvs, "seed {seed}");

    // The other watchers saw exactly their slice of the same history.
    let slice = |from: Revision, prefix: &str| -> Vec<(Revision, String, EventKind)> {
        events
            .iter()
            .filter(|e| e.kv.mod_revision > from && e.kv.key.starts_with(prefix))
            .map(|e| (e.kv.mod_revision, e.kv.key.clone(), e.kind))
            .collect()
    };
    let summary = |events: Vec<WatchEvent>| -> Vec<(Revision, String, EventKind)> {
        events.into_iter().map(|e| (e.kv.mod_revision, e.kv.key, e.kind)).collect()
    };
    let expected_some = slice(0, "/k/1");
    assert_eq!(summary(collect_n(&mut some, expected_some.len()).await), expected_some, "seed {seed}");
    let expected_late = slice(late_from, "");
    assert_eq!(summary(collect_n(&mut late, expected_late.len()).await), expected_late, "seed {seed}");

    // (3) and (4): every call's answer is consistent with the history.
    let by_revision: HashMap<Revision, Vec<&WatchEvent>> = events.iter().fold(HashMap::new(), |mut map, e| {
        map.entry(e.kv.mod_revision).or_default().push(e);
        map
    });
    let histories = key_histories(&events);
    let mut successes = Vec::new();
    let (mut conflicts, mut failures) = (0, 0);
    for outcome in &outcomes {
        match &outcome.result {
            Ok(revision) => {
                successes.push(*revision);
                let at = by_revision.get(revision).map(Vec::as_slice).unwrap_or_default();
                assert_eq!(at.len(), outcome.ops.len(), "seed {seed}: events at {revision} for {outcome:?}");
                for ((key, expected, kind), event) in outcome.ops.iter().zip(at) {
                    assert_eq!(&event.kv.key, key, "seed {seed}: {outcome:?}");
                    let prev = event.prev.as_ref().map(|p| p.mod_revision);
                    match kind {
                        OpKind::Create => assert_eq!((event.kind, prev), (EventKind::Put, None)),
                        OpKind::Update => assert_eq!((event.kind, prev), (EventKind::Put, *expected)),
                        OpKind::Delete => {
                            assert_eq!(event.kind, EventKind::Delete);
                            assert!(expected.is_none() || prev == *expected, "seed {seed}: {outcome:?}");
                        }
                    }
                }
            }
            Err(error) => {
                failures += 1;
                let window = outcome.window;
                let held = match error {
                    Error::Conflict { key, expected, current } => {
                        conflicts += 1;
                        let guarded = outcome.ops.iter().any(|(k, e, _)| k == key && *e == Some(*expected));
                        guarded && current != expected && held_during(&histories, key, window, |s| s == Some(*current))
                    }
                    Error::AlreadyExists(key) => held_during(&histories, key, window, |s| s.is_some()),
                    Error::NotFound(key) => held_during(&histories, key, window, |s| s.is_none()),
                    other => panic!("seed {seed}: unexpected error {other:?}"),
                };
                assert!(held, "seed {seed}: {error:?} never true during {window:?} for {outcome:?}");
            }
        }
    }
    // Every revision came from exactly one successful call.
    successes.sort_unstable();
    assert_eq!(successes, (1..=last).collect::<Vec<_>>(), "seed {seed}");
    assert!(conflicts > 0, "seed {seed}: the workload should provoke CAS conflicts");
    println!(
        "{} calls: {} ok, {failures} failed ({conflicts} conflicts), {} txn revisions",
        outcomes.len(),
        last,
        txn_revisions.len()
    );
}
