//! Writing ICC profiles: the small matrix/TRC display profiles (Display P3 and the like)
//! that tests and the benchmark tag images with, and embedding one in a JPEG. Reading and
//! applying profiles is the pipeline's business (`process` converts tagged images to sRGB).

/// sRGB's colorants (red, green, blue) adapted to D50, as ICC profiles store them.
pub const SRGB: [[f64; 3]; 3] = [
    [0.436_074_7, 0.222_504_5, 0.013_932_2],
    [0.385_064_9, 0.716_878_6, 0.097_104_5],
    [0.143_080_4, 0.060_616_9, 0.714_173_3],
];

/// Display P3's colorants (the wide gamut of phone cameras and screens), adapted to D50.
pub const DISPLAY_P3: [[f64; 3]; 3] = [
    [0.515_102, 0.241_182, -0.001_049],
    [0.291_965, 0.692_236, 0.041_882],
    [0.157_153, 0.066_590, 0.784_378],
];

fn s15(v: f64) -> [u8; 4] {
    ((v * 65536.0).round() as i32).to_be_bytes()
}

fn be32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

/// A version 2 matrix/TRC RGB display profile with the given colorants (red, green, blue;
/// XYZ adapted to D50), the sRGB transfer curve on every channel and `description` as its
/// `desc` text.
pub fn matrix_profile(description: &str, [r, g, b]: [[f64; 3]; 3]) -> Vec<u8> {
    const D50: [f64; 3] = [0.9642, 1.0, 0.8249];
    let xyz = |c: [f64; 3]| {
        let mut t = b"XYZ \0\0\0\0".to_vec();
        c.iter().for_each(|&v| t.extend(s15(v)));
        t
    };
    // parametricCurveType, function 3: the sRGB curve.
    let mut para = b"para\0\0\0\0\0\x03\0\0".to_vec();
    for v in [2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045] {
        para.extend(s15(v));
    }
    // textDescriptionType: ASCII with its NUL, then empty Unicode and ScriptCode parts.
    let mut text = b"desc\0\0\0\0".to_vec();
    text.extend(be32(description.len() + 1));
    text.extend(description.as_bytes());
    text.extend([0; 1 + 4 + 4 + 2 + 1 + 67]);
    let tags: [(&[u8; 4], Vec<u8>); 8] = [
        (b"desc", text),
        (b"wtpt", xyz(D50)),
        (b"rXYZ", xyz(r)),
        (b"gXYZ", xyz(g)),
        (b"bXYZ", xyz(b)),
        (b"rTRC", para.clone()),
        (b"gTRC", para.clone()),
        (b"bTRC", para),
    ];
    let mut header = vec![0u8; 128];
    header[8..12].copy_from_slice(&[2, 0x10, 0, 0]);
    header[12..16].copy_from_slice(b"mntr");
    header[16..20].copy_from_slice(b"RGB ");
    header[20..24].copy_from_slice(b"XYZ ");
    header[36..40].copy_from_slice(b"acsp");
    for (i, v) in D50.into_iter().enumerate() {
        header[68 + i * 4..72 + i * 4].copy_from_slice(&s15(v));
    }
    let mut table = be32(tags.len()).to_vec();
    let mut data = Vec::new();
    let data_start = 128 + 4 + tags.len() * 12;
    for (signature, body) in &tags {
        while data.len() % 4 != 0 {
            data.push(0);
        }
        table.extend(*signature);
        table.extend(be32(data_start + data.len()));
        table.extend(be32(body.len()));
        data.extend(body);
    }
    let mut icc = [header, table, data].concat();
    let size = be32(icc.len());
    icc[0..4].copy_from_slice(&size);
    icc
}

/// `jpeg` with `icc` embedded right after its SOI marker, in `APP2 "ICC_PROFILE"` segments
/// of at most `chunk` bytes of profile each (written last to first: readers must order them
/// by sequence number). At most 255 segments; `chunk` is at least 1 and at most 65 519.
pub fn embed_in_jpeg(jpeg: &[u8], icc: &[u8], chunk: usize) -> Vec<u8> {
    let parts: Vec<&[u8]> = icc.chunks(chunk.clamp(1, 65_519)).take(255).collect();
    let count = u8::try_from(parts.len()).unwrap_or(u8::MAX);
    let mut out = jpeg.get(..2).unwrap_or_default().to_vec();
    for (seq, part) in (1..=count).zip(&parts).rev() {
        let mut body = b"ICC_PROFILE\0".to_vec();
        body.extend([seq, count]);
        body.extend(*part);
        out.extend([0xFF, 0xE2]);
        out.extend(
            u16::try_from(body.len() + 2)
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        out.extend(body);
    }
    out.extend(jpeg.get(2..).unwrap_or_default());
    out
}
