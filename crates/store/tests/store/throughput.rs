//! Group-commit throughput, printed rather than asserted (timing depends on
//! the machine). Run with `--nocapture` to see the figures.

use std::sync::Arc;
use std::time::Instant;

use svcnet_store::Store;

use crate::support::{b, open, tempdir};

const CLIENTS: usize = 32;
const CREATES_PER_CLIENT: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throughput_of_durable_creates_with_32_clients() {
    let dir = tempdir();
    let store = open(dir.path()).await;

    // One client: every create pays a full fsync.
    let start = Instant::now();
    for i in 0..100 {
        store.create(&format!("/single/{i}"), b("v")).await.expect("create");
    }
    let single = start.elapsed();

    let start = Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let store = Arc::clone(&store);
        clients.push(tokio::spawn(async move {
            for i in 0..CREATES_PER_CLIENT {
                let value = b(&format!("{{\"client\":{c},\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(200)));
                store.create(&format!("/bench/{c}/{i}"), value).await.expect("create");
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    let elapsed = start.elapsed();
    let total = CLIENTS * CREATES_PER_CLIENT;
    println!(
        "1 client: {:.2} ms per durable create; {CLIENTS} clients: {total} creates in {:.2} s = {:.0} creates/s",
        single.as_secs_f64() * 10.0,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(store.list("/bench/", None, 0).await.expect("list").kvs.len(), total);
}
