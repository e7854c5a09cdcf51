//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "shutter-cli",
    version,
    about = "Command-line client for a Shutter server: log in, upload files (resumable), manage them, post photos, read the feed.",
    after_help = "Exit codes: 0 success, 1 failure (the server's error code is printed), 2 invalid arguments."
)]
pub struct Cli {
    /// The server's base URL. Default: the server of the stored login, else http://127.0.0.1:8080.
    #[arg(long, global = true, env = "SHUTTER_URL", value_name = "URL")]
    pub server: Option<String>,
    /// Machine-readable output: JSON on stdout (errors too, as the problem JSON); no progress bars.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the credentials and the state of unfinished uploads are kept. Default: the user's
    /// configuration directory + /shutter (e.g. ~/.config/shutter).
    #[arg(
        long,
        global = true,
        env = "SHUTTER_CLI_CONFIG_DIR",
        value_name = "DIR"
    )]
    pub config_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account on the server and log in as it.
    Register(RegisterArgs),
    /// Log in; the session is stored (mode 0600) and used by every other command.
    Login(LoginArgs),
    /// End the session on the server and delete the stored credentials.
    Logout,
    /// Show the logged-in user.
    Whoami,
    /// Upload files with tus (resumable): run the same command again after an interruption
    /// and it goes on from where the server stands. The SHA-256 is sent and checked.
    Upload(UploadArgs),
    /// Your files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Post photos with a caption; waits until the post is published.
    Post(PostArgs),
    /// Your home feed: posts of the people you follow and your own, newest first.
    Feed(PageArgs),
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input (else SHUTTER_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username (prompted for when missing).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Username: 3..30 of a-z, 0-9 and _ (prompted for when missing).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Display name.
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Files to upload.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Make the files public (default: private).
    #[arg(long)]
    pub public: bool,
    /// Tag the files (repeatable; 1..50 of a-z, 0-9, _ and -).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Content type of every file (default: from its first bytes or its extension).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    #[command(flatten)]
    pub rate: RateArgs,
}

#[derive(Debug, Args)]
pub struct RateArgs {
    /// Send at most this many bytes per second (suffixes K, M, G: powers of 1024).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// List your files, newest first.
    Ls(LsArgs),
    /// Download a file.
    Get(GetArgs),
    /// Make a file public and print its URL.
    Share(IdArg),
    /// Delete a file.
    Rm(IdArg),
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// The file id.
    pub id: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VisibilityArg {
    Private,
    Public,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Pending,
    Uploading,
    Processing,
    Ready,
    Failed,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only private or only public files.
    #[arg(long, value_enum)]
    pub visibility: Option<VisibilityArg>,
    /// Only files with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only this content type; `image/*` matches every image.
    #[arg(long = "type", value_name = "CONTENT_TYPE")]
    pub content_type: Option<String>,
    /// Only files in this state.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only files created after this instant (RFC 3339, exclusive).
    #[arg(long, value_name = "TIME")]
    pub created_after: Option<String>,
    /// Only files created before this instant (RFC 3339, exclusive).
    #[arg(long, value_name = "TIME")]
    pub created_before: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
    /// Every page, following next_cursor.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page (1..100; the server's default is 20).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,
    /// Start at this cursor (the next_cursor of a previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VariantArg {
    Thumb,
    W640,
    W1080,
}

impl VariantArg {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantArg::Thumb => "thumb",
            VariantArg::W640 => "w640",
            VariantArg::W1080 => "w1080",
        }
    }
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The file id.
    pub id: String,
    /// Where to write it (`-` for standard output). Default: the file's name in the current directory.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Overwrite PATH if it exists.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// An image variant instead of the original.
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UploadVia {
    /// tus (resumable), the ticket's tus_url.
    Tus,
    /// The ticket's presigned PUT (multipart parts on S3), then complete.
    Put,
}

#[derive(Debug, Args)]
pub struct PostArgs {
    /// The caption (1..2200 characters).
    #[arg(long)]
    pub caption: String,
    /// Photos (JPEG, PNG or WebP; up to 10).
    #[arg(value_name = "PHOTO")]
    pub photos: Vec<PathBuf>,
    /// Do not wait for the post to be published; print it as it stands after the upload.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the post to be published, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// The Idempotency-Key of the post. Default: derived from the user and the whole request
    /// (caption; each photo's name, type, size and SHA-256), so that running the same command
    /// again after an interruption resumes the same post.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// How the photos are sent.
    #[arg(long, value_enum, default_value_t = UploadVia::Tus)]
    pub upload_via: UploadVia,
    #[command(flatten)]
    pub rate: RateArgs,
}

/// `1048576`, `512K`, `1M`, `1.5M`, `2G` (powers of 1024; a trailing `B` or `/s` is allowed).
pub fn parse_rate(raw: &str) -> Result<u64, String> {
    let text = raw.trim();
    let text = text.strip_suffix("/s").unwrap_or(text);
    let text = text
        .strip_suffix(['B', 'b'])
        .filter(|t| !t.is_empty())
        .unwrap_or(text);
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c.to_ascii_uppercase())),
        _ => (text, None),
    };
    let multiplier: f64 = match unit {
        None => 1.0,
        Some('K') => 1024.0,
        Some('M') => 1024.0 * 1024.0,
        Some('G') => 1024.0 * 1024.0 * 1024.0,
        Some(u) => return Err(format!("unknown unit {u:?} (use K, M or G)")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a rate like 500K or 2M"))?;
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{raw:?} must be at least 1 byte per second"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_like_curl() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("512K"), Ok(512 * 1024));
        assert_eq!(parse_rate("2m"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_rate("1.5M"), Ok(1_572_864));
        assert_eq!(parse_rate("1MB/s"), Ok(1024 * 1024));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3X").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
