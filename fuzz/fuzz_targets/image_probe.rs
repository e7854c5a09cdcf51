//! The image pipeline on hostile bytes: `sniff`, `probe`, and the whole `process` with a
//! 4-megapixel limit (so one run stays fast), declared as image/jpeg, image/png or image/webp
//! by the first input byte; the rest is the upload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shutter_media::{probe, process, sniff, Limits, MediaError, IMAGE_JPEG, IMAGE_PNG, IMAGE_WEBP};

const LIMITS: Limits = Limits {
    max_pixels: 4_000_000,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let declared = [IMAGE_JPEG, IMAGE_PNG, IMAGE_WEBP][usize::from(selector % 3)];

    let _ = sniff(bytes);
    let info = probe(bytes).ok();
    if let Some(info) = info {
        assert!(info.width > 0 && info.height > 0, "{info:?}");
        assert!((1..=8).contains(&info.orientation), "{info:?}");
    }

    match process(bytes, declared, &LIMITS) {
        Ok(done) => {
            let Some(info) = info else {
                panic!("processed, but the header does not probe");
            };
            assert!(info.pixels() <= LIMITS.max_pixels);
            assert_eq!(
                (done.width, done.height),
                (info.display_width(), info.display_height())
            );
            let names: Vec<_> = done.variants.iter().map(|v| v.name).collect();
            assert_eq!(names, ["thumb", "w640", "w1080"]);
            for v in &done.variants {
                assert!(
                    v.width > 0 && v.height > 0,
                    "{}: {}x{}",
                    v.name,
                    v.width,
                    v.height
                );
                assert!(
                    v.width <= done.width && v.height <= done.height,
                    "{} upscaled",
                    v.name
                );
                assert!(
                    v.jpeg.starts_with(&[0xFF, 0xD8]),
                    "{} is not a JPEG",
                    v.name
                );
            }
            let thumb = &done.variants[0];
            assert_eq!(thumb.width, thumb.height, "the thumb is not square");
            assert!(done.variants[1].width <= 640 && done.variants[2].width <= 1080);
        }
        Err(MediaError::ImageTooLarge { pixels, max }) => {
            assert!(pixels > max && max == LIMITS.max_pixels);
        }
        Err(MediaError::ContentMismatch(_) | MediaError::Unsupported(_)) => {}
    }
});
