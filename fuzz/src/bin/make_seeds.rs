//! Writes the committed seeds of `icc_profile` and `image_probe` (run from `fuzz/`, after
//! `cargo +nightly fuzz build make_seeds`, as
//! `target/x86_64-unknown-linux-gnu/release/make_seeds seeds`): small matrix profiles (two
//! with an A2B0 table, lut16 and v4 lutAToB, so the fuzzer starts inside qcms' table code),
//! and 16×16 JPEG, PNG and WebP images, one JPEG tagged Display P3.

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

/// `icc` with one more tag, `tag`, at the end (and its header version set to `version`).
fn with_tag(icc: &[u8], tag: (&[u8; 4], Vec<u8>), version: u8) -> Vec<u8> {
    let be32 = |at: usize| u32::from_be_bytes([icc[at], icc[at + 1], icc[at + 2], icc[at + 3]]);
    let mut tags: Vec<([u8; 4], Vec<u8>)> = (0..be32(128) as usize)
        .map(|i| {
            let at = 132 + i * 12;
            let (offset, size) = (be32(at + 4) as usize, be32(at + 8) as usize);
            let signature = [icc[at], icc[at + 1], icc[at + 2], icc[at + 3]];
            (signature, icc[offset..offset + size].to_vec())
        })
        .collect();
    tags.push((*tag.0, tag.1));
    let mut header = icc[..128].to_vec();
    header[8] = version;
    let mut table = (tags.len() as u32).to_be_bytes().to_vec();
    let mut data = Vec::new();
    let start = 128 + 4 + tags.len() * 12;
    for (signature, body) in &tags {
        while data.len() % 4 != 0 {
            data.push(0);
        }
        table.extend(signature);
        table.extend(((start + data.len()) as u32).to_be_bytes());
        table.extend((body.len() as u32).to_be_bytes());
        data.extend(body);
    }
    let mut out = [header, table, data].concat();
    let size = (out.len() as u32).to_be_bytes();
    out[..4].copy_from_slice(&size);
    out
}

/// lut16Type: identity matrix, two-entry identity curves and a 2×2×2 grid.
fn lut16() -> Vec<u8> {
    let mut lut = b"mft2\0\0\0\0\x03\x03\x02\0".to_vec();
    for i in 0..9 {
        lut.extend(if i % 4 == 0 { 65_536i32 } else { 0 }.to_be_bytes());
    }
    let curves = [0u16, 65_535, 0, 65_535, 0, 65_535];
    let mut words = vec![2u16, 2];
    words.extend(curves);
    for corner in 0..8u16 {
        let [r, g, b] = [(corner >> 2) & 1, (corner >> 1) & 1, corner & 1];
        words.extend([r * 0xD2F0, g * 0xFFFF, b * 0xD2F0]);
    }
    words.extend(curves);
    words.iter().for_each(|w| lut.extend(w.to_be_bytes()));
    lut
}

/// lutAToBType with B curves only (three identity `curv`s).
fn mab() -> Vec<u8> {
    let mut mab = b"mAB \0\0\0\0\x03\x03\0\0".to_vec();
    for offset in [32u32, 0, 0, 0, 0] {
        mab.extend(offset.to_be_bytes());
    }
    for _ in 0..3 {
        mab.extend(b"curv\0\0\0\0\0\0\0\0");
    }
    mab
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
    let lut16 = with_tag(&p3, (b"A2B0", lut16()), 2);
    write(&icc, "lut16_a2b0", &[&[255], &lut16])?;
    let mab = with_tag(&p3, (b"A2B0", mab()), 4);
    write(&icc, "mab_a2b0_v4", &[&[255], &mab])?;

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
