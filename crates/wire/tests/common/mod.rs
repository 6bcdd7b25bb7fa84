//! Helpers shared by the fixture tests.
#![allow(dead_code, unreachable_pub)]

/// Bytes from hex with any whitespace (so fixtures can be laid out by field).
pub fn h(s: &str) -> Vec<u8> {
    let clean: String = s.split_whitespace().collect();
    hex::decode(clean).expect("fixture hex")
}

/// A parse/emit pair over one option fixture, smoltcp style.
#[macro_export]
macro_rules! option_fixture {
    ($name:ident, $hex:expr, $value:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn parse() {
                let bytes = $crate::common::h($hex);
                assert_eq!(DhcpOption::parse_one(&bytes).unwrap(), $value);
            }
            #[test]
            fn emit() {
                let value = $value;
                assert_eq!(value.buffer_len(), $crate::common::h($hex).len());
                assert_eq!(value.to_vec().unwrap(), $crate::common::h($hex));
            }
        }
    };
}

/// A parse/emit pair over one UDP message fixture.
#[macro_export]
macro_rules! message_fixture {
    ($name:ident, $hex:expr, $value:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn parse() {
                let bytes = $crate::common::h($hex);
                assert_eq!(Message::parse(&bytes).unwrap(), $value);
            }
            #[test]
            fn emit() {
                let value = $value;
                assert_eq!(value.buffer_len(), $crate::common::h($hex).len());
                assert_eq!(value.to_vec().unwrap(), $crate::common::h($hex));
            }
        }
    };
}

/// A parse/emit pair over one failover-stream message fixture.
#[macro_export]
macro_rules! stream_fixture {
    ($name:ident, $hex:expr, $value:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn parse() {
                let bytes = $crate::common::h($hex);
                assert_eq!(StreamMessage::parse(&bytes).unwrap(), $value);
            }
            #[test]
            fn emit() {
                let value = $value;
                let mut buf = vec![0u8; value.buffer_len()];
                let n = value.emit(&mut buf).unwrap();
                assert_eq!(&buf[..n], &$crate::common::h($hex)[..]);
            }
        }
    };
}
