//! `Range` headers against any object size, through `parse_range` as the download handler
//! calls it. A satisfiable range is `start..end` (end exclusive) inside the object.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shutter_api::routes::files::{parse_range, Unsatisfiable};

fuzz_target!(|data: &[u8]| {
    // 8 bytes of object size, then the header value.
    let Some((total, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let total = u64::from_le_bytes(*total);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    match parse_range(Some(header), total) {
        Ok(Some((start, end))) => {
            assert!(
                start < end,
                "{header:?} of {total}: empty range {start}..{end}"
            );
            assert!(
                end <= total,
                "{header:?} of {total}: {start}..{end} runs past the end"
            );
            let content_length = end - start;
            assert!(content_length <= total);
        }
        Ok(None) => {}
        Err(Unsatisfiable) => assert!(
            header.trim().starts_with("bytes="),
            "{header:?} is not a byte range but was refused"
        ),
    }
    assert_eq!(parse_range(None, total), Ok(None));
});
