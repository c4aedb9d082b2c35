//! Choosing an endpoint of an upstream for one attempt: the affinity
//! cookie's endpoint while it is ready, else round robin or the less busy
//! of two random endpoints. Endpoints already tried (a failed connect) are
//! skipped.

use std::sync::atomic::Ordering::Relaxed;

use rand::Rng as _;

use crate::annotations::Balance;
use crate::pool::Pools;
use crate::table::Upstream;

/// The endpoint (index into `upstream.endpoints`) whose cookie value is
/// `cookie`, if it is still ready.
pub(crate) fn by_cookie(upstream: &Upstream, cookie: &str) -> Option<usize> {
    upstream.endpoints.iter().position(|e| e.cookie == cookie)
}

/// The next endpoint to try, never one in `tried`; `None` when every
/// endpoint was tried.
/// The endpoints one request tries, in order: the affinity cookie's first,
/// then the balancer's picks, each once, at most
/// [`MAX_ATTEMPTS`](crate::proxy::MAX_ATTEMPTS) of them; one endpoint may
/// have a second go on a new connection when its pooled one was stale.
pub(crate) struct Tries {
    left: usize,
    sticky: Option<usize>,
    tried: [usize; crate::proxy::MAX_ATTEMPTS + 1],
    n: usize,
    stale_retry: bool,
}

impl Tries {
    pub fn new(upstream: &Upstream, sticky: Option<usize>) -> Tries {
        Tries {
            left: crate::proxy::MAX_ATTEMPTS.min(upstream.endpoints.len()),
            sticky,
            tried: [usize::MAX; crate::proxy::MAX_ATTEMPTS + 1],
            n: 0,
            stale_retry: true,
        }
    }

    /// The next endpoint to try, if any is left.
    pub fn next(&mut self, upstream: &Upstream, balance: Balance, pools: &Pools) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let i = match self.sticky.take() {
            Some(i) => i,
            None => pick(upstream, balance, pools, &self.tried[..self.n])?,
        };
        if self.n < self.tried.len() {
            self.tried[self.n] = i;
            self.n += 1;
        }
        Some(i)
    }

    /// Gives endpoint `i`, whose pooled connection turned out stale, one
    /// more go (on a new connection); false if that go is spent.
    pub fn again_after_stale(&mut self, i: usize) -> bool {
        if !std::mem::take(&mut self.stale_retry) {
            return false;
        }
        self.left += 1;
        self.n -= 1;
        self.sticky = Some(i);
        true
    }
}

pub(crate) fn pick(upstream: &Upstream, balance: Balance, pools: &Pools, tried: &[usize]) -> Option<usize> {
    let n = upstream.endpoints.len();
    if n == 0 || tried.len() >= n {
        return None;
    }
    match balance {
        Balance::RoundRobin => {
            // Each call moves the shared position on, so retries spread too.
            for _ in 0..n {
                let i = upstream.next.fetch_add(1, Relaxed) % n;
                if !tried.contains(&i) {
                    return Some(i);
                }
            }
            (0..n).find(|i| !tried.contains(i))
        }
        Balance::LeastRequest => {
            let left: Vec<usize> = (0..n).filter(|i| !tried.contains(i)).collect();
            if left.len() == 1 {
                return left.first().copied();
            }
            let mut rng = rand::rng();
            let a = left[rng.random_range(0..left.len())];
            let mut b = left[rng.random_range(0..left.len() - 1)];
            if b == a {
                b = left[left.len() - 1];
            }
            let load = |i: usize| pools.endpoint(upstream.endpoints[i].addr, upstream.protocol).inflight.load(Relaxed);
            Some(if load(b) < load(a) { b } else { a })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::annotations::BackendProtocol;
    use crate::pool::{DirectConnector, InFlight};
    use crate::table::{Endpoint, cookie_for};

    fn upstream(n: u16) -> Upstream {
        Upstream {
            namespace: "default".into(),
            service: "web".into(),
            port: "80".into(),
            protocol: BackendProtocol::Http1,
            endpoints: (0..n)
                .map(|i| {
                    let addr = SocketAddr::from(([127, 0, 0, 1], 8000 + i));
                    Endpoint { addr, cookie: cookie_for(addr) }
                })
                .collect(),
            unavailable: None,
            next: AtomicUsize::new(0),
            metrics: Default::default(),
        }
    }

    #[test]
    fn round_robin_visits_every_endpoint_in_turn_and_skips_tried_ones() {
        let pools = Pools::new(Arc::new(DirectConnector));
        let u = upstream(3);
        let picks: Vec<_> = (0..6).map(|_| pick(&u, Balance::RoundRobin, &pools, &[]).expect("pick")).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_eq!(pick(&u, Balance::RoundRobin, &pools, &[0, 1]), Some(2));
        assert_eq!(pick(&u, Balance::RoundRobin, &pools, &[0, 1, 2]), None);
    }

    #[test]
    fn least_request_prefers_the_idle_endpoint() {
        let pools = Pools::new(Arc::new(DirectConnector));
        let u = upstream(2);
        let _busy: Vec<InFlight> =
            (0..5).map(|_| InFlight::new(pools.endpoint(u.endpoints[0].addr, BackendProtocol::Http1))).collect();
        for _ in 0..20 {
            assert_eq!(pick(&u, Balance::LeastRequest, &pools, &[]), Some(1));
        }
        assert_eq!(pick(&u, Balance::LeastRequest, &pools, &[1]), Some(0));
    }

    #[test]
    fn the_cookie_names_an_endpoint_while_it_is_ready() {
        let u = upstream(3);
        let c = cookie_for(u.endpoints[2].addr);
        assert_eq!(by_cookie(&u, &c), Some(2));
        assert_eq!(by_cookie(&u, "0000000000000000"), None);
        assert_eq!(cookie_for(u.endpoints[2].addr), c, "stable");
    }
}
