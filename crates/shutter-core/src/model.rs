//! Records as the use cases see them. The HTTP layer renders them; the stores produce them.

use crate::domain::{PostStatus, Role, Tier};
use crate::{Cursor, Id, Timestamp};

/// A user account with its public profile and exact counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub tier: Tier,
    pub role: Role,
    pub created_at: Timestamp,
    pub followers_count: i64,
    pub following_count: i64,
    pub posts_count: i64,
}

impl User {
    pub fn summary(&self) -> UserSummary {
        UserSummary {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
        }
    }
}

/// The short form of a user shown next to posts, comments and in lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSummary {
    pub id: Id,
    pub username: String,
    pub display_name: String,
}

/// A post as stored, with its author and counters; comment previews and media are added by
/// the use case that assembles a full post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostRecord {
    pub id: Id,
    pub author: UserSummary,
    pub caption: String,
    pub status: PostStatus,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl PostRecord {
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id)
    }
}

/// A comment on a post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub id: Id,
    pub post_id: Id,
    pub author: UserSummary,
    pub text: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Comment {
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id)
    }
}

/// Why a file failed: the error code and a readable detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: crate::ErrorCode,
    pub detail: String,
}

/// A stored file and the state of its upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub id: Id,
    pub owner_id: Id,
    pub filename: String,
    pub content_type: String,
    /// The declared size in bytes: exactly this many must arrive.
    pub size: u64,
    /// Hex digests the client declared, checked when the upload completes.
    pub declared_sha256: Option<String>,
    pub declared_md5: Option<String>,
    /// Hex digests of the bytes received, set when the upload completes.
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub visibility: crate::domain::Visibility,
    pub tags: Vec<String>,
    pub status: crate::domain::FileStatus,
    pub bytes_received: u64,
    pub failure: Option<Failure>,
    /// Displayed size of an image (after EXIF orientation).
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub blurhash: Option<String>,
    /// Upload URLs and tus sessions stop working at this instant.
    pub upload_expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl FileRecord {
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id)
    }
}
