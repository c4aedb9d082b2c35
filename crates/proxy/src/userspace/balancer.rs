//! Endpoint selection, pure: a [`Pool`] of backends with per-backend
//! connection counts, round-robin and least-connections picking, and the
//! ClientIP [`AffinityTable`]. Nothing here does I/O; time comes in as an
//! argument so the tests can move it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Balance;

/// One endpoint as the proxy sees it. It lives as long as a pool or a
/// connection holds it, so a connection that outlives its endpoint's
/// removal still counts on the same object ("draining").
#[derive(Debug)]
pub(crate) struct Backend {
    pub addr: SocketAddrV4,
    /// Connections open in both directions (IPVS's ActiveConn); UDP sessions.
    active: AtomicU64,
    /// Connections one side has finished, still draining the other
    /// direction (IPVS's InActConn: FIN_WAIT and friends).
    inactive: AtomicU64,
}

impl Backend {
    pub fn new(addr: SocketAddrV4) -> Arc<Backend> {
        Arc::new(Backend { addr, active: AtomicU64::new(0), inactive: AtomicU64::new(0) })
    }

    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    pub fn inactive(&self) -> u64 {
        self.inactive.load(Ordering::Relaxed)
    }

    /// What least-connections compares: every connection still open.
    pub fn load(&self) -> u64 {
        self.active() + self.inactive()
    }

    /// Counts one more connection, from the moment it is picked (so that
    /// concurrent picks see each other) until the guard drops.
    pub fn reserve(self: &Arc<Backend>) -> ConnGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        ConnGuard { backend: self.clone(), half_closed: false }
    }
}

/// One counted connection (or UDP session) on a backend.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    backend: Arc<Backend>,
    half_closed: bool,
}

impl ConnGuard {
    pub fn addr(&self) -> SocketAddrV4 {
        self.backend.addr
    }

    /// One direction has ended: the connection moves from active to inactive.
    pub fn half_close(&mut self) {
        if !self.half_closed {
            self.half_closed = true;
            self.backend.active.fetch_sub(1, Ordering::Relaxed);
            self.backend.inactive.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let counter = if self.half_closed { &self.backend.inactive } else { &self.backend.active };
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The endpoints one front balances over, in the snapshot's order
/// (sorted by address), so round-robin visits them in a stable order.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    backends: Vec<Arc<Backend>>,
}

impl Pool {
    pub fn new(backends: Vec<Arc<Backend>>) -> Pool {
        Pool { backends }
    }

    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    fn get(&self, addr: SocketAddrV4) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.addr == addr)
    }

    /// The next backend by `balance`, skipping those in `tried`. `cursor`
    /// is the front's round-robin position; it survives pool updates, so a
    /// changed endpoint list does not send everyone back to the first one.
    pub fn pick(&self, balance: Balance, cursor: &AtomicUsize, tried: &[SocketAddrV4]) -> Option<&Arc<Backend>> {
        let n = self.backends.len();
        if n == 0 {
            return None;
        }
        let start = cursor.fetch_add(1, Ordering::Relaxed) % n;
        let candidates = (0..n).map(|i| &self.backends[(start + i) % n]).filter(|b| !tried.contains(&b.addr));
        match balance {
            Balance::RoundRobin => candidates.into_iter().next(),
            // Ties go to the first from the rotating start, so equal loads
            // still spread evenly instead of piling on the first endpoint.
            Balance::LeastConnections => candidates.min_by_key(|b| b.load()),
        }
    }
}

/// How often the affinity table drops expired entries, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Sticky {
    backend: SocketAddrV4,
    last: Instant,
}

/// `sessionAffinity: ClientIP`: the endpoint each client IP last used and
/// when. Shared by the fronts of one service port (cluster IP and node
/// port), as kube-proxy's per-endpoint `recent` lists are.
#[derive(Debug)]
pub(crate) struct AffinityTable {
    inner: Mutex<AffinityInner>,
}

#[derive(Debug)]
struct AffinityInner {
    entries: HashMap<Ipv4Addr, Sticky>,
    last_sweep: Instant,
}

impl Default for AffinityTable {
    fn default() -> Self {
        AffinityTable { inner: Mutex::new(AffinityInner { entries: HashMap::new(), last_sweep: Instant::now() }) }
    }
}

impl AffinityTable {
    fn lock(&self) -> MutexGuard<'_, AffinityInner> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single insert or remove), so poison is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client's endpoint if it came back within `timeout`; refreshes
    /// the entry's time.
    pub fn lookup(&self, client: Ipv4Addr, timeout: Duration, now: Instant) -> Option<SocketAddrV4> {
        let mut inner = self.lock();
        let sticky = inner.entries.get_mut(&client)?;
        if now.saturating_duration_since(sticky.last) > timeout {
            inner.entries.remove(&client);
            return None;
        }
        sticky.last = now;
        Some(sticky.backend)
    }

    /// Pins `client` to `backend` from `now`.
    pub fn record(&self, client: Ipv4Addr, backend: SocketAddrV4, timeout: Duration, now: Instant) {
        let mut inner = self.lock();
        inner.entries.insert(client, Sticky { backend, last: now });
        if now.saturating_duration_since(inner.last_sweep) >= SWEEP_EVERY.min(timeout) {
            inner.last_sweep = now;
            inner.entries.retain(|_, s| now.saturating_duration_since(s.last) <= timeout);
        }
    }

    /// Forgets `client`'s pin if it points at `backend` (which just failed).
    pub fn forget(&self, client: Ipv4Addr, backend: SocketAddrV4) {
        let mut inner = self.lock();
        if inner.entries.get(&client).is_some_and(|s| s.backend == backend) {
            inner.entries.remove(&client);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// Everything one pick needs.
pub(crate) struct Picker<'a> {
    pub pool: &'a Pool,
    pub balance: Balance,
    pub cursor: &'a AtomicUsize,
    /// The affinity table and timeout, with ClientIP affinity.
    pub affinity: Option<(&'a AffinityTable, Duration)>,
}

impl Picker<'_> {
    /// The backend for a new connection from `client`, not one of
    /// `tried`, reserved (counted) for it: the client's sticky endpoint if
    /// it still is in the pool, else the balancer's choice, which becomes
    /// the client's sticky endpoint.
    pub fn choose(&self, client: Ipv4Addr, tried: &[SocketAddrV4], now: Instant) -> Option<ConnGuard> {
        if let Some((table, timeout)) = self.affinity {
            if let Some(addr) = table.lookup(client, timeout, now) {
                if !tried.contains(&addr) {
                    if let Some(b) = self.pool.get(addr) {
                        return Some(b.reserve());
                    }
                }
            }
        }
        let backend = self.pool.pick(self.balance, self.cursor, tried)?;
        if let Some((table, timeout)) = self.affinity {
            table.record(client, backend.addr, timeout, now);
        }
        Some(backend.reserve())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 244, 1, last), 8080)
    }

    fn pool(n: u8) -> Pool {
        Pool::new((1..=n).map(|i| Backend::new(addr(i))).collect())
    }

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 100);

    #[test]
    fn round_robin_visits_every_endpoint_in_order() {
        let p = pool(3);
        let cursor = AtomicUsize::new(0);
        let picks: Vec<u8> = (0..7)
            .map(|_| p.pick(Balance::RoundRobin, &cursor, &[]).map(|b| b.addr.ip().octets()[3]).unwrap_or(0))
            .collect();
        assert_eq!(picks, [1, 2, 3, 1, 2, 3, 1]);
    }

    #[test]
    fn round_robin_skips_tried_endpoints_and_gives_up_after_all() {
        let p = pool(3);
        let cursor = AtomicUsize::new(0);
        let picker = Picker { pool: &p, balance: Balance::RoundRobin, cursor: &cursor, affinity: None };
        let mut tried = Vec::new();
        let now = Instant::now();
        while let Some(g) = picker.choose(CLIENT, &tried, now) {
            tried.push(g.addr());
            assert!(tried.len() <= 3, "retries are bounded by the pool");
        }
        tried.sort();
        assert_eq!(tried, [addr(1), addr(2), addr(3)]);
    }

    #[test]
    fn least_connections_picks_the_least_loaded_endpoint() {
        let p = pool(3);
        let cursor = AtomicUsize::new(0);
        let held: Vec<ConnGuard> =
            (0..3).filter_map(|_| p.pick(Balance::LeastConnections, &cursor, &[]).map(|b| b.reserve())).collect();
        // One each, spread by the rotating tie-break.
        assert!(p.backends().iter().all(|b| b.load() == 1));
        let extra = p.backends()[0].reserve();
        let extra2 = p.backends()[2].reserve();
        // Endpoint 2 now has the fewest connections, whatever the cursor says.
        for _ in 0..4 {
            let b = p.pick(Balance::LeastConnections, &cursor, &[]).map(|b| b.addr);
            assert_eq!(b, Some(addr(2)));
        }
        drop((held, extra, extra2));
        assert!(p.backends().iter().all(|b| b.load() == 0));
    }

    #[test]
    fn least_connections_counts_half_closed_connections_until_they_end() {
        let p = pool(2);
        let cursor = AtomicUsize::new(0);
        let mut g = p.backends()[0].reserve();
        g.half_close();
        g.half_close();
        assert_eq!((p.backends()[0].active(), p.backends()[0].inactive()), (0, 1));
        assert_eq!(p.pick(Balance::LeastConnections, &cursor, &[]).map(|b| b.addr), Some(addr(2)));
        drop(g);
        assert_eq!((p.backends()[0].active(), p.backends()[0].inactive()), (0, 0));
    }

    #[test]
    fn affinity_sticks_while_the_client_returns_within_the_timeout() {
        let p = pool(3);
        let cursor = AtomicUsize::new(0);
        let table = AffinityTable::default();
        let timeout = Duration::from_secs(2);
        let picker =
            Picker { pool: &p, balance: Balance::RoundRobin, cursor: &cursor, affinity: Some((&table, timeout)) };
        let t0 = Instant::now();
        let first = picker.choose(CLIENT, &[], t0).map(|g| g.addr());
        // Each return refreshes the entry, so 1.5 s steps never expire it.
        for i in 1..5 {
            let now = t0 + Duration::from_millis(1500 * i);
            assert_eq!(picker.choose(CLIENT, &[], now).map(|g| g.addr()), first);
        }
        // Another client is balanced normally.
        let other = picker.choose(Ipv4Addr::new(10, 244, 1, 101), &[], t0).map(|g| g.addr());
        assert_ne!(other, first);
    }

    #[test]
    fn affinity_expires_after_the_timeout() {
        let p = pool(3);
        let cursor = AtomicUsize::new(0);
        let table = AffinityTable::default();
        let timeout = Duration::from_secs(2);
        let picker =
            Picker { pool: &p, balance: Balance::RoundRobin, cursor: &cursor, affinity: Some((&table, timeout)) };
        let t0 = Instant::now();
        let first = picker.choose(CLIENT, &[], t0).map(|g| g.addr());
        let later = picker.choose(CLIENT, &[], t0 + Duration::from_millis(2100)).map(|g| g.addr());
        assert_eq!(first, Some(addr(1)));
        assert_eq!(later, Some(addr(2)), "expired: round-robin moves on");
    }

    #[test]
    fn affinity_moves_when_the_sticky_endpoint_fails_or_leaves() {
        let p = pool(3);
        let cursor = AtomicUsize::new(0);
        let table = AffinityTable::default();
        let timeout = Duration::from_secs(60);
        let picker =
            Picker { pool: &p, balance: Balance::RoundRobin, cursor: &cursor, affinity: Some((&table, timeout)) };
        let now = Instant::now();
        let first = picker.choose(CLIENT, &[], now).map(|g| g.addr()).unwrap_or(addr(0));
        // Connecting to it failed: the retry picks another and re-pins.
        let retry = picker.choose(CLIENT, &[first], now).map(|g| g.addr()).unwrap_or(addr(0));
        assert_ne!(retry, first);
        assert_eq!(picker.choose(CLIENT, &[], now).map(|g| g.addr()), Some(retry));
        // The endpoint left the pool: a new one is chosen.
        let smaller = Pool::new(p.backends().iter().filter(|b| b.addr != retry).cloned().collect());
        let picker2 = Picker { pool: &smaller, ..picker };
        let moved = picker2.choose(CLIENT, &[], now).map(|g| g.addr());
        assert!(moved.is_some_and(|a| a != retry));
        table.forget(CLIENT, moved.unwrap_or(addr(0)));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn affinity_table_sweeps_expired_entries() {
        let table = AffinityTable::default();
        let timeout = Duration::from_secs(1);
        let t0 = Instant::now();
        for i in 0..100u8 {
            table.record(Ipv4Addr::new(10, 0, 0, i), addr(1), timeout, t0);
        }
        table.record(CLIENT, addr(1), timeout, t0 + Duration::from_secs(5));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn an_empty_pool_picks_nothing() {
        let p = Pool::default();
        let cursor = AtomicUsize::new(0);
        assert!(p.pick(Balance::LeastConnections, &cursor, &[]).is_none());
        assert!(p.is_empty());
    }
}
