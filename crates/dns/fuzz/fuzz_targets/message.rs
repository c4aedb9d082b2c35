//! Decoding is total (an error, never a panic), and whatever decodes
//! encodes back to a message that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use svcnet_dns::wire::{Encoder, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::decode(data) else { return };
    let mut e = Encoder::default();
    let counts = [m.questions.len(), m.answers.len(), m.authority.len(), m.additional.len() + usize::from(m.edns.is_some())];
    if counts.iter().any(|&c| c > u16::MAX as usize) {
        return;
    }
    e.header(m.id, m.flags, counts.map(|c| c as u16));
    for q in &m.questions {
        e.question(q.name.wire(), q.qtype, q.qclass);
    }
    for r in m.answers.iter().chain(&m.authority).chain(&m.additional) {
        e.record(r);
    }
    if let Some(edns) = &m.edns {
        e.opt(edns);
    }
    let again = Message::decode(&e.into_inner()).expect("a re-encoded message decodes");
    assert_eq!(again.questions, m.questions);
    assert_eq!(again.answers, m.answers);
    assert_eq!(again.authority, m.authority);
    assert_eq!(again.additional, m.additional);
});
