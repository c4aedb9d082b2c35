//! Writing `status.loadBalancer.ingress`, off the rebuild loop.
//!
//! The rebuild loop hands every build's set of served Ingresses to one
//! writer task ([`run`]) and goes on; the writer brings each Ingress's
//! status to what it should be:
//!
//! - served: our addresses;
//! - no longer served (class changed to another controller's, the class
//!   annotation or `ingressClassName` changed, the IngressClass changed)
//!   after we had it: cleared (an empty list), but only while it still
//!   shows our addresses — an empty status or another controller's is
//!   left alone, as ingress-nginx does.
//!
//! A write happens only when the status differs, at most [`WRITERS`] at a
//! time, and one that fails is retried after [`FIRST_RETRY`], doubling up
//! to [`MAX_RETRY`], without waiting for the next change.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Status writes in flight at once.
pub(crate) const WRITERS: usize = 8;
/// The wait before retrying a failed write ...
pub(crate) const FIRST_RETRY: Duration = Duration::from_secs(1);
/// ... doubled after each further failure, up to this.
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(30);

/// An Ingress: (namespace, name).
pub(crate) type Key = (String, String);

/// Writes `status.loadBalancer.ingress` of an Ingress to these IPs (none:
/// cleared).
pub(crate) type WriteFn =
    Arc<dyn Fn(Key, Vec<String>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// The current object of an Ingress (from the reflector's store).
pub(crate) type LookupFn = Arc<dyn Fn(&Key) -> Option<Arc<Ingress>> + Send + Sync>;

/// The IPs an Ingress's status lists.
pub(crate) fn status_ips(ing: &Ingress) -> Vec<String> {
    ing.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| list.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// What the writer knows between passes (pure: [`Book::plan`] decides,
/// [`Book::done`] records the outcome).
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// Ingresses we serve or served and may still carry our status.
    ours: HashSet<Key>,
    /// A failed write's next attempt and the wait before it.
    backoff: HashMap<Key, (Instant, Duration)>,
    /// The last successful write: the `resourceVersion` it was decided on
    /// and what was written, so a store that has not caught up with our
    /// own write yet does not cause the same write again.
    written: HashMap<Key, (String, Vec<String>)>,
    inflight: HashSet<Key>,
}

impl Book {
    /// The writes due now: `(key, ips, resourceVersion)`.
    pub(crate) fn plan(
        &mut self,
        now: Instant,
        served: &HashSet<Key>,
        want: &[String],
        lookup: &dyn Fn(&Key) -> Option<Arc<Ingress>>,
    ) -> Vec<(Key, Vec<String>, String)> {
        self.ours.extend(served.iter().cloned());
        let mut due = Vec::new();
        let mut gone = Vec::new();
        for key in &self.ours {
            let Some(ing) = lookup(key) else {
                gone.push(key.clone());
                continue;
            };
            let have = status_ips(&ing);
            let target: Vec<String> = if served.contains(key) {
                if have == want {
                    self.backoff.remove(key);
                    continue;
                }
                want.to_vec()
            } else if have == want && !want.is_empty() {
                Vec::new()
            } else {
                // Already empty, or another controller's: not ours to touch.
                gone.push(key.clone());
                continue;
            };
            if self.inflight.contains(key) || self.backoff.get(key).is_some_and(|(at, _)| *at > now) {
                continue;
            }
            let rv = ing.metadata.resource_version.clone().unwrap_or_default();
            if self.written.get(key).is_some_and(|(v, ips)| *v == rv && *ips == target) {
                // Written already; the store has yet to show it.
                self.backoff.remove(key);
                continue;
            }
            due.push((key.clone(), target, rv));
        }
        for key in gone {
            self.forget(&key);
        }
        due.sort();
        due
    }

    fn forget(&mut self, key: &Key) {
        self.ours.remove(key);
        self.backoff.remove(key);
        self.written.remove(key);
    }

    pub(crate) fn started(&mut self, key: &Key) {
        self.inflight.insert(key.clone());
    }

    /// Records a write's outcome.
    pub(crate) fn done(&mut self, now: Instant, key: Key, ips: Vec<String>, rv: String, result: Result<(), String>) {
        self.inflight.remove(&key);
        match result {
            Ok(()) => {
                self.backoff.remove(&key);
                if ips.is_empty() {
                    self.forget(&key);
                } else if self.ours.contains(&key) {
                    self.written.insert(key, (rv, ips));
                }
            }
            Err(e) => {
                let wait = self.backoff.get(&key).map_or(FIRST_RETRY, |(_, w)| (*w * 2).min(MAX_RETRY));
                tracing::warn!(ingress = %format!("{}/{}", key.0, key.1), error = %e, retry_in = ?wait, "writing Ingress status failed");
                if self.ours.contains(&key) {
                    self.backoff.insert(key, (now + wait, wait));
                }
            }
        }
    }

    /// When the earliest retry is due.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.backoff.iter().filter(|(k, _)| !self.inflight.contains(*k)).map(|(_, (at, _))| *at).min()
    }
}

/// The writer task: ends when the sender of `served` is dropped (and the
/// writes in flight have ended).
pub(crate) async fn run(
    want: Vec<String>,
    mut served: watch::Receiver<Arc<HashSet<Key>>>,
    lookup: LookupFn,
    write: WriteFn,
) {
    let mut book = Book::default();
    let mut tasks: JoinSet<(Key, Vec<String>, String, Result<(), String>)> = JoinSet::new();
    let mut open = true;
    loop {
        let current = served.borrow_and_update().clone();
        if open {
            for (key, ips, rv) in book.plan(Instant::now(), &current, &want, &*lookup) {
                if tasks.len() >= WRITERS {
                    break;
                }
                book.started(&key);
                let write = write.clone();
                tasks.spawn(async move {
                    let result = write(key.clone(), ips.clone()).await;
                    (key, ips, rv, result)
                });
            }
        } else if tasks.is_empty() {
            return;
        }
        let retry = book.next_retry();
        tokio::select! {
            changed = served.changed(), if open => {
                if changed.is_err() {
                    open = false;
                }
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((key, ips, rv, result)) = joined {
                    book.done(Instant::now(), key, ips, rv, result);
                }
            }
            // With every writer busy, a finished write wakes us instead
            // (a retry already due would otherwise spin).
            () = sleep_until(retry), if retry.is_some() && open && tasks.len() < WRITERS => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use k8s_openapi::api::networking::v1::{IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus};

    use super::*;
    use crate::testkit::meta;

    fn key(name: &str) -> Key {
        ("default".to_string(), name.to_string())
    }

    fn ing(name: &str, rv: &str, ips: &[&str]) -> Arc<Ingress> {
        let mut m = meta("default", name);
        m.resource_version = Some(rv.to_string());
        Arc::new(Ingress {
            metadata: m,
            status: Some(IngressStatus {
                load_balancer: Some(IngressLoadBalancerStatus {
                    ingress: Some(
                        ips.iter()
                            .map(|ip| IngressLoadBalancerIngress { ip: Some(ip.to_string()), ..Default::default() })
                            .collect(),
                    ),
                }),
            }),
            ..Default::default()
        })
    }

    /// A fake API: objects by key; each write bumps the resourceVersion.
    #[derive(Default)]
    struct Fake {
        objects: Mutex<HashMap<Key, Arc<Ingress>>>,
        fail_first: AtomicUsize,
        writes: Mutex<Vec<(Key, Vec<String>, Instant)>>,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    fn fns(fake: &Arc<Fake>) -> (LookupFn, WriteFn) {
        let f = fake.clone();
        let lookup: LookupFn = Arc::new(move |k: &Key| f.objects.lock().unwrap().get(k).cloned());
        let f = fake.clone();
        let write: WriteFn = Arc::new(move |k: Key, ips: Vec<String>| {
            let f = f.clone();
            Box::pin(async move {
                let n = f.running.fetch_add(1, SeqCst) + 1;
                f.most_running.fetch_max(n, SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                f.running.fetch_sub(1, SeqCst);
                f.writes.lock().unwrap().push((k.clone(), ips.clone(), Instant::now()));
                if f.fail_first.load(SeqCst) > 0 {
                    f.fail_first.fetch_sub(1, SeqCst);
                    return Err("injected".to_string());
                }
                let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
                let mut objects = f.objects.lock().unwrap();
                let rv = objects.get(&k).and_then(|o| o.metadata.resource_version.clone()).unwrap_or_default();
                let next = format!("{rv}+");
                objects.insert(k.clone(), ing(&k.1, &next, &ip_refs));
                Ok(())
            })
        });
        (lookup, write)
    }

    fn want() -> Vec<String> {
        vec!["192.0.2.10".to_string()]
    }

    #[test]
    fn an_ingress_no_longer_ours_is_cleared_only_while_it_shows_our_addresses() {
        let t = Instant::now();
        let mut book = Book::default();
        let objects = Mutex::new(HashMap::from([(key("a"), ing("a", "1", &[])), (key("b"), ing("b", "1", &[]))]));
        let lookup = |k: &Key| objects.lock().unwrap().get(k).cloned();
        let served: HashSet<Key> = [key("a"), key("b")].into();
        let due = book.plan(t, &served, &want(), &lookup);
        assert_eq!(due.len(), 2);
        for (k, ips, rv) in due {
            book.started(&k);
            book.done(t, k.clone(), ips, rv, Ok(()));
        }
        // The store has not caught up: no second write.
        assert!(book.plan(t, &served, &want(), &lookup).is_empty());
        objects.lock().unwrap().insert(key("a"), ing("a", "2", &["192.0.2.10"]));
        objects.lock().unwrap().insert(key("b"), ing("b", "2", &["192.0.2.10"]));
        assert!(book.plan(t, &served, &want(), &lookup).is_empty());
        // a is no longer ours: cleared. b is no longer ours either, but
        // another controller has written its status meanwhile: untouched.
        objects.lock().unwrap().insert(key("b"), ing("b", "3", &["198.51.100.1"]));
        let due = book.plan(t, &HashSet::new(), &want(), &lookup);
        assert_eq!(due, vec![(key("a"), vec![], "2".to_string())]);
        book.started(&key("a"));
        book.done(t, key("a"), vec![], "2".to_string(), Ok(()));
        objects.lock().unwrap().insert(key("a"), ing("a", "3", &[]));
        assert!(book.plan(t, &HashSet::new(), &want(), &lookup).is_empty());
        assert!(book.ours.is_empty(), "{:?}", book.ours);
    }

    #[test]
    fn failed_writes_back_off_doubling_to_the_cap() {
        let t = Instant::now();
        let mut book = Book::default();
        let lookup = |_: &Key| Some(ing("a", "1", &[]));
        let served: HashSet<Key> = [key("a")].into();
        let mut now = t;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let due = book.plan(now, &served, &want(), &lookup);
            assert_eq!(due.len(), 1);
            let (k, ips, rv) = due.into_iter().next().unwrap();
            book.started(&k);
            assert!(book.plan(now, &served, &want(), &lookup).is_empty(), "in flight");
            book.done(now, k, ips, rv, Err("refused".into()));
            let at = book.next_retry().expect("a retry");
            waits.push(at - now);
            assert!(book.plan(at - Duration::from_millis(1), &served, &want(), &lookup).is_empty());
            now = at;
        }
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        let (k, ips, rv) = book.plan(now, &served, &want(), &lookup).remove(0);
        book.done(now, k, ips, rv, Ok(()));
        assert_eq!(book.next_retry(), None);
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn the_writer_retries_on_its_own_and_runs_at_most_eight_writes_at_once() {
        let fake = Arc::new(Fake::default());
        let mut served = HashSet::new();
        for i in 0..20 {
            let name = format!("i{i:02}");
            fake.objects.lock().unwrap().insert(key(&name), ing(&name, "1", &[]));
            served.insert(key(&name));
        }
        // The first write of all fails.
        fake.fail_first.store(1, SeqCst);
        let (lookup, write) = fns(&fake);
        let (tx, rx) = watch::channel(Arc::new(served));
        let started = Instant::now();
        let task = tokio::spawn(run(want(), rx, lookup, write));
        until("20 writes and a retry", || fake.writes.lock().unwrap().len() == 21).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let writes = fake.writes.lock().unwrap().clone();
        assert_eq!(writes.len(), 21, "20 writes and one retry");
        assert_eq!(fake.most_running.load(SeqCst), WRITERS);
        // The 20 first writes take three rounds of 10 ms, not twenty.
        assert!(writes[19].2 - started < Duration::from_millis(150), "{:?}", writes[19].2 - started);
        let failed = &writes[0];
        let retried = writes.iter().rposition(|w| w.0 == failed.0).unwrap();
        assert!(retried > 0);
        let gap = writes[retried].2 - failed.2;
        assert!(gap >= FIRST_RETRY && gap < FIRST_RETRY * 3, "{gap:?}");
        for (k, o) in fake.objects.lock().unwrap().iter() {
            assert_eq!(status_ips(o), want(), "{k:?}");
        }
        // Nothing is served any more: every status is cleared, and the
        // writer ends with its sender.
        tx.send_replace(Arc::new(HashSet::new()));
        until("41 writes", || fake.writes.lock().unwrap().len() == 41).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (k, o) in fake.objects.lock().unwrap().iter() {
            assert!(status_ips(o).is_empty(), "{k:?}");
        }
        assert_eq!(fake.writes.lock().unwrap().len(), 41);
        drop(tx);
        tokio::time::timeout(Duration::from_secs(1), task).await.expect("the writer ends").expect("no panic");
    }
}
