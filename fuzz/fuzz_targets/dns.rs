//! Any bytes as a DNS message, bare (UDP) or framed (TCP): decoding must return a message or an
//! error, never panic or hang, and a whole message must decode the same as a possibly cut one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_net::dns;

fuzz_target!(|data: &[u8]| {
    let whole = dns::parse(data);
    let prefix = dns::parse_prefix(data);
    if let Ok(m) = &whole {
        assert_eq!(prefix.as_ref(), Ok(m));
    }
    for m in [whole, prefix, dns::parse_tcp(data)].iter().flatten() {
        assert!(m.answers.len() <= dns::MAX_ANSWERS);
    }
});
