//! Embeds the web app: every file under `web/` becomes an entry of `WEB_ASSETS` (its path
//! relative to `web/`, and its bytes), written to `$OUT_DIR/web_assets.rs` and included by
//! `src/web.rs`. Cargo runs this again whenever anything under `web/` changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() -> io::Result<()> {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("web");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    if root.is_dir() {
        walk(&root, &mut files)?;
    }
    files.sort();
    let mut out = String::from("pub static WEB_ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let Ok(relative) = file.strip_prefix(&root) else {
            continue;
        };
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let _ = writeln!(
            out,
            "    ({name:?}, include_bytes!({:?})),",
            file.display().to_string()
        );
    }
    out.push_str("];\n");
    let target = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("web_assets.rs");
    fs::write(target, out)
}

/// Every file below `dir`, skipping hidden entries (editor and OS litter such as `.DS_Store`).
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
