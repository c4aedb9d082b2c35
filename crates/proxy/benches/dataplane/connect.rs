//! Connections per second and connect latency: a client pod opens
//! sequential short connections (connect, 32-byte request, echo, close) to
//! the backend pod directly and to a Service VIP programmed by each mode,
//! in interleaved rounds; one mode is programmed at a time, each with its
//! own VIP so no round meets another's TIME_WAIT entries.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use svcnet_proxy::Mode;

use crate::client::connections;
use crate::lab::{Lab, echo_server};
use crate::plane::{Plane, parse_modes, single};
use crate::stats::{median_f, percentile, ratio, thousands, us};
use crate::{Args, BoxError};

pub const BACKEND_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 11);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 100);
const BACKEND_PORT: u16 = 8080;
const PAYLOAD: usize = 32;
/// One measured block may last this long at most.
const BLOCK_LIMIT: Duration = Duration::from_secs(120);

struct Target {
    label: String,
    mode: Option<Mode>,
    addr: SocketAddr,
    connect: Vec<Duration>,
    reply: Vec<Duration>,
    rates: Vec<f64>,
    /// CPU seconds of this process (client, server, and the userspace
    /// proxy when it is the path) per connection.
    cpu: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
}

pub async fn run(args: &Args) -> Result<(), BoxError> {
    // In total per path, split evenly among the rounds.
    let total = args.num("connections", 5000)?.clamp(1, 100_000);
    let rounds = args.num("rounds", 5)?.clamp(1, 20);
    let count = total.div_ceil(rounds);
    let modes = parse_modes(&args.str("modes", "nftables,iptables,userspace"))?;
    let lab = Lab::new("conn", &[("backend", BACKEND_IP), ("client", CLIENT_IP)]).await?;
    echo_server(lab.pod(0), &[BACKEND_PORT]).await?;
    let backend = SocketAddr::from((BACKEND_IP, BACKEND_PORT));

    let mut targets = vec![Target::new("direct (pod IP)".into(), None, backend)];
    for (i, mode) in modes.iter().enumerate() {
        let vip = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 10 + i as u8), 80));
        targets.push(Target::new(format!("{} (Service VIP)", mode.name()), Some(*mode), vip));
    }
    eprintln!("connect: {count} connections per path and round, {rounds} rounds");
    for round in 0..rounds {
        // Rotated, so no target always follows the same one.
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let t = &mut targets[i];
            let mut plane = None;
            if let Some(mode) = t.mode {
                let mut p = Plane::new(mode, &lab.env);
                p.sync(&single("echo", t.addr, &[backend])).await?;
                plane = Some(p);
            }
            // Warm-up: ARP, the proxy's first accept, caches.
            let warm = connections(lab.pod(1), vec![t.addr], 50, PAYLOAD, BLOCK_LIMIT).await?;
            if warm.connect[0].is_empty() {
                return Err(format!("{}: no connection succeeds: {:?}", t.label, warm.first_error).into());
            }
            let cpu_before = crate::lab::cpu_seconds("self");
            let r = connections(lab.pod(1), vec![t.addr], count, PAYLOAD, BLOCK_LIMIT).await?;
            let done = r.connect[0].len();
            t.cpu.push((crate::lab::cpu_seconds("self") - cpu_before) / done.max(1) as f64);
            t.rates.push(done as f64 / r.elapsed.as_secs_f64());
            t.connect.extend_from_slice(&r.connect[0]);
            t.reply.extend_from_slice(&r.reply[0]);
            t.errors += r.errors[0];
            if t.first_error.is_none() {
                t.first_error = r.first_error.clone();
            }
            eprintln!(
                "  round {}: {:<28} {:>8} conn/s ({done} in {:.2?}, {} errors)",
                round + 1,
                t.label,
                thousands(done as f64 / r.elapsed.as_secs_f64()),
                r.elapsed,
                r.errors[0]
            );
            if let Some(mut p) = plane {
                p.cleanup().await?;
            }
        }
    }

    let direct_rate = median_f(&targets[0].rates);
    let direct_p99 = percentile(&targets[0].connect, 99.0).as_secs_f64();
    let direct_reply_p99 = percentile(&targets[0].reply, 99.0).as_secs_f64();
    println!();
    println!(
        "Sequential short TCP connections from a client pod, {} per path in {rounds} interleaved rounds of {count} \
         (connect, {PAYLOAD}-byte request, echo, close); one mode programmed at a time:",
        count * rounds
    );
    println!();
    println!(
        "| path | conn/s (median of rounds) | vs direct | connect p50 / p99 µs | p99 vs direct | connect+reply p50 / p99 µs | reply p99 vs direct | bench process CPU µs / conn | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for t in &targets {
        let rate = median_f(&t.rates);
        println!(
            "| {} | {} | {} | {} / {} | {} | {} / {} | {} | {:.0} | {} |",
            t.label,
            thousands(rate),
            ratio(rate, direct_rate),
            us(percentile(&t.connect, 50.0)),
            us(percentile(&t.connect, 99.0)),
            ratio(percentile(&t.connect, 99.0).as_secs_f64(), direct_p99),
            us(percentile(&t.reply, 50.0)),
            us(percentile(&t.reply, 99.0)),
            ratio(percentile(&t.reply, 99.0).as_secs_f64(), direct_reply_p99),
            median_f(&t.cpu) * 1e6,
            t.errors
        );
    }
    for t in targets.iter().filter(|t| t.first_error.is_some()) {
        println!("\n{}: first error: {}", t.label, t.first_error.as_deref().unwrap_or(""));
    }
    Ok(())
}

impl Target {
    fn new(label: String, mode: Option<Mode>, addr: SocketAddr) -> Target {
        Target {
            label,
            mode,
            addr,
            connect: Vec::new(),
            reply: Vec::new(),
            rates: Vec::new(),
            cpu: Vec::new(),
            errors: 0,
            first_error: None,
        }
    }
}
