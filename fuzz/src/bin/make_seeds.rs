//! Writes the committed seeds of `icc_profile` and `image_probe` (run from `fuzz/`, after
//! `cargo +nightly fuzz build make_seeds`, as
//! `target/x86_64-unknown-linux-gnu/release/make_seeds seeds`): small matrix profiles, and
//! 16×16 JPEG, PNG and WebP images, one JPEG tagged Display P3.

use std::path::Path;
use std::{env, fs, io};

use shutter_media::icc::{embed_in_jpeg, matrix_profile, DISPLAY_P3, SRGB};

const SIDE: u32 = 16;

fn pixels() -> Vec<u8> {
    let side = SIDE as usize;
    let mut out = Vec::with_capacity(side * side * 3);
    for y in 0..side {
        for x in 0..side {
            out.extend([(x * 16) as u8, (y * 16) as u8, 128]);
        }
    }
    out
}

fn jpeg() -> io::Result<Vec<u8>> {
    let pixels = pixels();
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width: SIDE as usize,
        pitch: SIDE as usize * 3,
        height: SIDE as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2)
        .map(|j| j.to_vec())
        .map_err(io::Error::other)
}

fn png() -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(io::Error::other)?;
    writer
        .write_image_data(&pixels())
        .map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)?;
    Ok(out)
}

fn webp() -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&pixels(), SIDE, SIDE, image_webp::ColorType::Rgb8)
        .map_err(io::Error::other)?;
    Ok(out)
}

fn write(dir: &Path, name: &str, parts: &[&[u8]]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), parts.concat())
}

fn main() -> io::Result<()> {
    let root = env::args().nth(1).unwrap_or_else(|| "seeds".to_owned());
    let root = Path::new(&root);
    let p3 = matrix_profile("Display P3", DISPLAY_P3);
    let srgb = matrix_profile("sRGB IEC61966-2.1", SRGB);

    // icc_profile: the chunk-size byte, then the profile.
    let icc = root.join("icc_profile");
    write(&icc, "display_p3", &[&[255], &p3])?;
    write(&icc, "display_p3_chunked", &[&[3], &p3])?;
    write(&icc, "srgb_named", &[&[255], &srgb])?;
    write(&icc, "truncated", &[&[255], &p3[..200]])?;

    // image_probe: the declared-type byte (0 JPEG, 1 PNG, 2 WebP), then the file.
    let images = root.join("image_probe");
    let jpeg = jpeg()?;
    write(&images, "small.jpg", &[&[0], &jpeg])?;
    write(&images, "small.png", &[&[1], &png()?])?;
    write(&images, "small.webp", &[&[2], &webp()?])?;
    write(
        &images,
        "display_p3.jpg",
        &[&[0], &embed_in_jpeg(&jpeg, &p3, 200)],
    )?;
    Ok(())
}
