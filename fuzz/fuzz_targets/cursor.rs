//! `Cursor::decode` on any text (what `?cursor=` carries), and encode → decode round trips:
//! of every cursor that decodes, and of a cursor made from any millisecond count and id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shutter_core::{Cursor, Id, Timestamp};

fn round_trip(cursor: Cursor) {
    let text = cursor.encode();
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{text:?} is not URL-safe"
    );
    match Cursor::decode(&text) {
        Ok(again) => assert_eq!(again, cursor, "{text:?}"),
        Err(_) => panic!("{cursor:?} encodes to {text:?}, which does not decode"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cursor) = Cursor::decode(text) {
            round_trip(cursor);
        }
    }
    // Any (millis, id) pair: 8 bytes of milliseconds, 16 of id.
    if let Some((ms, rest)) = data.split_first_chunk::<8>() {
        if let Some(id) = rest.first_chunk::<16>() {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let text = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            );
            if let Ok(id) = text.parse::<Id>() {
                round_trip(Cursor::new(
                    Timestamp::from_millis(i64::from_le_bytes(*ms)),
                    id,
                ));
            }
        }
    }
});
