//! The whole query path: any bytes in, never a panic; an answer, when
//! there is one, is a well-formed message within the UDP limit that
//! answers the same id.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use svcnet_dns::handler::{Outcome, Transport, handle};
use svcnet_dns::testkit::sample_cluster;
use svcnet_dns::wire::Message;
use svcnet_dns::{Compiled, ZoneConfig, build_view};

fn compiled() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| {
        let view = build_view(&ZoneConfig::new("cluster.local").expect("zone"), &sample_cluster(), 1);
        Compiled::new(Arc::new(view), true)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    for transport in [Transport::Udp, Transport::Tcp] {
        if let Outcome::Reply(_) = handle(compiled(), data, transport, 1232, &mut out) {
            assert!(transport == Transport::Tcp || out.len() <= 1232);
            let m = Message::decode(&out).expect("our answers decode");
            assert_eq!(m.id.to_be_bytes(), [data[0], data[1]]);
        }
    }
});
