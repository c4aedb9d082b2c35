//! The measuring client: sequential short TCP connections from a pod —
//! connect, send a small request, read the echo, close — timed on a
//! single-threaded runtime of its own, on the pod's namespace thread (so
//! its sockets are the pod's, and no other work shares that thread).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::BoxError;
use crate::lab::Pod;

/// Per target: time to established and time to the whole reply.
#[derive(Default)]
pub struct Run {
    pub connect: Vec<Vec<Duration>>,
    pub reply: Vec<Vec<Duration>>,
    pub errors: Vec<usize>,
    pub first_error: Option<String>,
    /// Wall time of the whole run (every target).
    pub elapsed: Duration,
}

/// No more errors than this in one run; then it stops.
const MAX_ERRORS: usize = 50;
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// `count` connections to each of `targets`, interleaved (target 0, 1, …,
/// 0, 1, …), each sending `payload` bytes and reading them back; stops
/// early after `limit` or [`MAX_ERRORS`] failures.
pub async fn connections(
    pod: &Pod,
    targets: Vec<SocketAddr>,
    count: usize,
    payload: usize,
    limit: Duration,
) -> Result<Run, BoxError> {
    let run = pod
        .sockets
        .run(move || -> Result<Run, String> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            Ok(rt.block_on(drive(targets, count, payload, limit)))
        })
        .await??;
    Ok(run)
}

async fn drive(targets: Vec<SocketAddr>, count: usize, payload: usize, limit: Duration) -> Run {
    let n = targets.len();
    let mut run = Run {
        connect: vec![Vec::with_capacity(count); n],
        reply: vec![Vec::with_capacity(count); n],
        errors: vec![0; n],
        ..Run::default()
    };
    let request = vec![b'x'; payload.max(1)];
    let mut reply = vec![0u8; request.len()];
    let started = Instant::now();
    let mut total_errors = 0;
    'outer: for _ in 0..count {
        for (t, target) in targets.iter().enumerate() {
            if started.elapsed() > limit || total_errors >= MAX_ERRORS {
                break 'outer;
            }
            match one(*target, &request, &mut reply).await {
                Ok((c, r)) => {
                    run.connect[t].push(c);
                    run.reply[t].push(r);
                }
                Err(e) => {
                    total_errors += 1;
                    run.errors[t] += 1;
                    run.first_error.get_or_insert_with(|| format!("{target}: {e}"));
                }
            }
        }
    }
    run.elapsed = started.elapsed();
    run
}

async fn one(target: SocketAddr, request: &[u8], reply: &mut [u8]) -> Result<(Duration, Duration), String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    let t0 = Instant::now();
    let mut s = tokio::time::timeout(OP_TIMEOUT, socket.connect(target))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let connected = t0.elapsed();
    let _ = s.set_nodelay(true);
    let exchange = async {
        s.write_all(request).await?;
        s.read_exact(reply).await?;
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(OP_TIMEOUT, exchange)
        .await
        .map_err(|_| "no reply in time".to_string())?
        .map_err(|e| format!("exchange: {e}"))?;
    let replied = t0.elapsed();
    drop(s);
    Ok((connected, replied))
}
