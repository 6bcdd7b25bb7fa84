//! Bytes arriving on the failover TCP stream, in arbitrary chunks: the
//! frame decoder and the message decoder must never panic; every frame that
//! decodes must emit back to the same bytes and decode again identically.
#![no_main]

use duet_wire::{FrameDecoder, StreamMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so partial frames are exercised.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::new();
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let frame = frame.to_vec();
                    if let Ok(m) = StreamMessage::parse(&frame) {
                        let mut out = Vec::new();
                        m.encode_frame(&mut out).expect("a decoded message must emit");
                        assert_eq!(&out[2..], &frame[..], "decode -> emit changed the bytes");
                        let again = StreamMessage::parse(&out[2..]).expect("emitted bytes must decode");
                        assert_eq!(again, m, "decode -> emit -> decode is not stable");
                    }
                }
                Ok(None) => break,
                Err(_) => continue,
            }
        }
    }
});
