//! [`Forwarder`]: answers names outside the zone by asking upstream
//! resolvers, through the [`Cache`]. A small client: UDP from a fresh
//! socket (a random port per query), the answer checked against the id and
//! question, TCP when the UDP answer is truncated; each upstream tried in
//! turn, twice, before giving up with SERVFAIL.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::answer::Response;
use crate::cache::{Cache, Cached};
use crate::config::DnsConfig;
use crate::handler::{ForwardJob, Served, write_response};
use crate::metrics::Metrics;
use crate::name::Name;
use crate::wire::{Edns, Encoder, Message, Rcode, WireError, flags};

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no upstream resolvers are configured")]
    NoUpstreams,
    #[error("no upstream answered in time")]
    Timeout,
    #[error("talking to upstream {upstream} failed")]
    Io {
        upstream: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {upstream} sent a malformed answer")]
    Malformed {
        upstream: SocketAddr,
        #[source]
        source: WireError,
    },
}

/// Upstream resolvers and the cache of their answers.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
    cache: Mutex<Cache>,
    metrics: Arc<Metrics>,
    next: AtomicUsize,
    inflight: AtomicUsize,
    max_inflight: usize,
}

/// A forward in flight; counted until dropped.
pub struct Permit(Arc<Forwarder>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Relaxed);
    }
}

impl Forwarder {
    pub fn new(config: &DnsConfig, upstreams: Vec<SocketAddr>, metrics: Arc<Metrics>) -> Forwarder {
        Forwarder {
            upstreams,
            timeout: config.upstream_timeout,
            cache: Mutex::new(Cache::new(config.cache_capacity, config.cache_max_ttl, config.cache_max_negative_ttl)),
            metrics,
            next: AtomicUsize::new(0),
            inflight: AtomicUsize::new(0),
            max_inflight: config.max_concurrent_forwards,
        }
    }

    /// Claims a slot for one more forward, if under the limit.
    pub fn try_start(self: &Arc<Self>) -> Option<Permit> {
        if self.inflight.fetch_add(1, Relaxed) >= self.max_inflight {
            self.inflight.fetch_sub(1, Relaxed);
            return None;
        }
        Some(Permit(self.clone()))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Every critical section is one map operation: a poisoned lock
        // still guards a consistent map.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer to a question, from the cache or the upstreams.
    pub async fn resolve(&self, name: &Name, qtype: u16, qclass: u16) -> Result<Arc<Cached>, ForwardError> {
        if let Some(hit) = self.cache().get(name, qtype, qclass, Instant::now()) {
            let counter = if hit.negative { &self.metrics.cache_hits_denial } else { &self.metrics.cache_hits_success };
            counter.fetch_add(1, Relaxed);
            return Ok(hit);
        }
        self.metrics.cache_misses.fetch_add(1, Relaxed);
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        let id: u16 = rand::random();
        let query = upstream_query(id, name, qtype, qclass);
        let start = self.next.fetch_add(1, Relaxed);
        let mut failure: Option<Cached> = None;
        let mut error = ForwardError::Timeout;
        for attempt in 0..2 * self.upstreams.len() {
            let upstream = self.upstreams[(start + attempt) % self.upstreams.len()];
            match self.exchange(upstream, &query, id, name, qtype, qclass).await {
                Ok(answer)
                    if matches!(answer.rcode, Rcode::SERVFAIL | Rcode::REFUSED | Rcode::NOTIMP | Rcode::FORMERR) =>
                {
                    tracing::debug!(%upstream, %name, rcode = answer.rcode.name(), "upstream failed the question");
                    failure = Some(answer);
                }
                Ok(answer) => {
                    let answer = Arc::new(answer);
                    self.cache().insert(name, qtype, qclass, answer.clone());
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::debug!(%upstream, %name, error = %e, "upstream did not answer");
                    error = e;
                }
            }
        }
        match failure {
            // Failures are passed on but not cached.
            Some(f) => Ok(Arc::new(f)),
            None => Err(error),
        }
    }

    async fn exchange(
        &self,
        upstream: SocketAddr,
        query: &[u8],
        id: u16,
        name: &Name,
        qtype: u16,
        qclass: u16,
    ) -> Result<Cached, ForwardError> {
        let io = |source| ForwardError::Io { upstream, source };
        let bind: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(bind).await.map_err(io)?;
        socket.connect(upstream).await.map_err(io)?;
        socket.send(query).await.map_err(io)?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(io(e)),
                Err(_) => return Err(ForwardError::Timeout),
            };
            let resp = &buf[..n];
            // Anything not answering our query is ignored (spoofing, or a
            // late answer to an earlier one).
            if n < 12 || u16::from_be_bytes([resp[0], resp[1]]) != id || resp[2] & 0x80 == 0 {
                continue;
            }
            let Ok(answer) = Cached::parse(resp, name, qtype, qclass, Instant::now()) else { continue };
            if answer.truncated {
                return self.exchange_tcp(upstream, query, id, name, qtype, qclass).await;
            }
            return Ok(answer);
        }
    }

    async fn exchange_tcp(
        &self,
        upstream: SocketAddr,
        query: &[u8],
        id: u16,
        name: &Name,
        qtype: u16,
        qclass: u16,
    ) -> Result<Cached, ForwardError> {
        let io = |source| ForwardError::Io { upstream, source };
        let work = async {
            let mut stream = TcpStream::connect(upstream).await.map_err(io)?;
            let mut framed = Vec::with_capacity(query.len() + 2);
            framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
            framed.extend_from_slice(query);
            stream.write_all(&framed).await.map_err(io)?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.map_err(io)?;
            let mut resp = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut resp).await.map_err(io)?;
            if resp.len() < 12 || u16::from_be_bytes([resp[0], resp[1]]) != id {
                return Err(ForwardError::Malformed { upstream, source: WireError::Truncated(0) });
            }
            Cached::parse(&resp, name, qtype, qclass, Instant::now())
                .map_err(|source| ForwardError::Malformed { upstream, source })
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| ForwardError::Timeout)?
    }

    /// Finishes a forwarded query: writes the client's response into `out`.
    pub async fn complete(&self, job: &ForwardJob, out: &mut Vec<u8>) -> Served {
        let echo = job.echo();
        if let Some(prefix) = &job.prefix {
            // An ExternalName leading outside the zone: our CNAME, then
            // what the upstreams say about its target (CoreDNS does the
            // same), or the CNAME alone if they say nothing.
            let mut r = prefix.clone();
            r.chase = None;
            if let Ok(upstream) = self.resolve(&job.name, job.qtype, job.qclass).await {
                if let Ok(m) = Message::decode(&upstream.msg) {
                    let age = upstream.age(Instant::now());
                    let rcode = upstream.rcode;
                    if rcode == Rcode::NOERROR || rcode == Rcode::NXDOMAIN {
                        let records = |mut v: Vec<crate::wire::Record>| {
                            for rec in &mut v {
                                rec.ttl = rec.ttl.saturating_sub(age);
                            }
                            v
                        };
                        let found = !m.answers.is_empty();
                        r.answer.extend(records(m.answers));
                        if !found {
                            r.rcode = rcode;
                            r.authority = records(m.authority);
                        }
                    }
                }
            }
            write_response(out, &echo, &r);
            return Served { qtype: job.qtype, rcode: r.rcode, local: true };
        }
        match self.resolve(&job.name, job.qtype, job.qclass).await {
            Ok(answer) => {
                answer.write(out, &echo, Instant::now());
                Served { qtype: job.qtype, rcode: answer.rcode, local: false }
            }
            Err(e) => {
                tracing::debug!(name = %job.name, error = %e, "forwarding failed");
                write_response(out, &echo, &Response::error(Rcode::SERVFAIL));
                Served { qtype: job.qtype, rcode: Rcode::SERVFAIL, local: false }
            }
        }
    }
}

/// A recursive query with EDNS (our payload size; no DNSSEC).
fn upstream_query(id: u16, name: &Name, qtype: u16, qclass: u16) -> Vec<u8> {
    let mut e = Encoder::default();
    e.header(id, flags::RD, [1, 0, 0, 1]);
    e.question(name.wire(), qtype, qclass);
    e.opt(&Edns { udp_size: 1232, ext_rcode: 0, version: 0, dnssec_ok: false });
    e.into_inner()
}
