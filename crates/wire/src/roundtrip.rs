//! Property tests: for every wire type, emit then parse gives the same
//! value, and parse then emit gives the same bytes.

use crate::failover::{FailoverMessage, StreamMessage};
use crate::frame::FrameDecoder;
use crate::message::{ClientMessage, Message};
use crate::option::{rank, DhcpOption};
use crate::strategy;
use crate::{DomainName, Duid};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn option_round_trips(o in strategy::option(rank::MESSAGE)) {
        let bytes = o.to_vec().unwrap();
        prop_assert_eq!(bytes.len(), o.buffer_len());
        let parsed = DhcpOption::parse_one(&bytes).unwrap();
        prop_assert_eq!(&parsed, &o);
        prop_assert_eq!(parsed.to_vec().unwrap(), bytes);
    }

    #[test]
    fn leaf_option_round_trips(o in strategy::leaf_option()) {
        let bytes = o.to_vec().unwrap();
        prop_assert_eq!(DhcpOption::parse_one(&bytes).unwrap(), o);
    }

    #[test]
    fn client_message_round_trips(m in strategy::client_message()) {
        let bytes = m.to_vec().unwrap();
        prop_assert_eq!(ClientMessage::parse(&bytes).unwrap(), m.clone());
        prop_assert_eq!(Message::parse(&bytes).unwrap(), Message::Client(m));
    }

    #[test]
    fn message_with_relays_round_trips(m in strategy::message()) {
        let bytes = m.to_vec().unwrap();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.clone().into_owned(), m);
        prop_assert_eq!(parsed.to_vec().unwrap(), bytes);
    }

    #[test]
    fn failover_message_round_trips(m in strategy::failover_message()) {
        let bytes = m.to_vec().unwrap();
        prop_assert_eq!(FailoverMessage::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn stream_message_round_trips_through_frames(
        msgs in proptest::collection::vec(strategy::stream_message(), 1..5),
        chunk in 1usize..64,
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode_frame(&mut stream).unwrap();
        }
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            decoder.push(piece);
            while let Some(frame) = decoder.next_frame().unwrap() {
                got.push(StreamMessage::parse(frame).unwrap().into_owned());
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn duid_round_trips_and_kind_never_panics(d in strategy::duid()) {
        let copy = Duid::new(d.as_bytes().to_vec()).unwrap();
        let _ = copy.kind();
        prop_assert_eq!(copy, d);
    }

    #[test]
    fn domain_name_text_round_trips(n in strategy::domain_name(true)) {
        // Text form is for display; it must at least never panic and keep the root.
        prop_assert!(n.to_text().ends_with('.'));
        let wire = n.as_bytes().to_vec();
        prop_assert_eq!(DomainName::parse_whole(&wire, 0).unwrap(), n);
    }

    /// Arbitrary bytes either fail to parse or emit back to themselves.
    #[test]
    fn arbitrary_bytes_parse_then_emit_identically(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(m) = Message::parse(&bytes) {
            prop_assert_eq!(m.to_vec().unwrap(), bytes.clone());
        }
        if let Ok(m) = StreamMessage::parse(&bytes) {
            let mut buf = vec![0; m.buffer_len()];
            let n = m.emit(&mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &bytes[..]);
        }
    }
}
