//! A UDP payload: decode must never panic; whatever decodes must emit back
//! to the very same bytes and decode again to the same value.
#![no_main]

use duet_wire::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let bytes = m.to_vec().expect("a decoded message must emit");
        assert_eq!(bytes, data, "decode -> emit changed the bytes");
        let again = Message::parse(&bytes).expect("emitted bytes must decode");
        assert_eq!(again, m, "decode -> emit -> decode is not stable");
        let _ = m.unwrap_relays();
        let _ = again.into_owned();
    }
});
