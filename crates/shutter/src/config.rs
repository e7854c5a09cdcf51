//! Configuration loading: defaults, then the TOML file (`--config`, else `./shutter.toml` if
//! present), then `SHUTTER_<SECTION>__<KEY>` environment variables and `SHUTTER_DATA_DIR`.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use shutter_core::config::Config;

const DEFAULT_FILE: &str = "shutter.toml";

/// A configuration that cannot be used; the message names the key. The binary exits with 2.
#[derive(Debug)]
pub struct InvalidConfig(pub String);

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidConfig {}

/// Loads and validates the configuration.
pub fn load(file: Option<&Path>) -> Result<Config, InvalidConfig> {
    let mut figment = Figment::new();
    match file {
        Some(path) => {
            if !path.is_file() {
                return Err(InvalidConfig(format!(
                    "invalid configuration: config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        None => {
            let default = PathBuf::from(DEFAULT_FILE);
            if default.is_file() {
                figment = figment.merge(Toml::file_exact(default));
            }
        }
    }
    figment = figment.merge(Env::prefixed("SHUTTER_").split("__"));
    let mut config: Config = figment
        .extract()
        .map_err(|e| InvalidConfig(format!("invalid configuration: {}", describe(e))))?;
    config
        .storage
        .s3
        .fill_from_env(|name| std::env::var(name).ok());
    config
        .validate()
        .map_err(|e| InvalidConfig(e.to_string()))?;
    Ok(config)
}

/// Figment's errors say `for key "default.server.listen"`; say `server.listen` and where the
/// value came from.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .and_then(|m| {
                    m.source
                        .as_ref()
                        .map(|s| format!(" (from {s})"))
                        .or_else(|| Some(format!(" (from {})", m.name)))
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
