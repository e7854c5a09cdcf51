//! Colour management on hostile ICC profiles: a small valid JPEG carrying the input as its
//! embedded profile must always process, the profile either applied or ignored. The first
//! input byte sets the APP2 chunk size (so profiles split over many segments are read back
//! together); the rest is the profile.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shutter_media::icc::embed_in_jpeg;
use shutter_media::{process, Limits, IMAGE_JPEG};

const W: usize = 64;
const H: usize = 48;

/// A 64×48 RGB gradient, so a conversion changes many different colours.
fn jpeg() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| {
        let mut pixels = Vec::with_capacity(W * H * 3);
        for y in 0..H {
            for x in 0..W {
                pixels.extend([(x * 4) as u8, (y * 5) as u8, (255 - x * 2 - y * 2) as u8]);
            }
        }
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: W,
            pitch: W * 3,
            height: H,
            format: turbojpeg::PixelFormat::RGB,
        };
        match turbojpeg::compress(image, 90, turbojpeg::Subsamp::None) {
            Ok(jpeg) => jpeg.to_vec(),
            Err(e) => panic!("cannot make the test JPEG: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, icc)) = data.split_first() else {
        return;
    };
    // 16 bytes to 4 KiB per segment, or (255) the whole profile in one.
    let chunk = match selector {
        255 => 65_519,
        n => (usize::from(n) + 1) * 16,
    };
    let bytes = embed_in_jpeg(jpeg(), icc, chunk);
    let done = match process(&bytes, IMAGE_JPEG, &Limits::default()) {
        Ok(done) => done,
        Err(e) => panic!("a profile failed the image: {e}"),
    };
    assert_eq!((done.width, done.height), (W as u32, H as u32));
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
            v.jpeg.starts_with(&[0xFF, 0xD8]),
            "{} is not a JPEG",
            v.name
        );
    }
});
