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
