//! The JSON shapes of the API, with their OpenAPI schemas. Requests hold raw values; the use
//! cases validate them. Responses are built from the use cases' records.

use serde::{Deserialize, Serialize};
use shutter_app::accounts::{LimitsView, Session};
use shutter_app::posts::PostView;
use shutter_core::model::{Comment, User, UserSummary};
use shutter_core::{Cursor, Page};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3..30 of `[a-z0-9_]`, lowercased.
    pub username: String,
    /// 8..128 characters.
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// At most 100 characters.
    pub display_name: Option<String>,
    /// At most 500 characters.
    pub bio: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// Required for password accounts.
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminUpdateUserRequest {
    #[schema(value_type = Option<String>, example = "premium")]
    pub tier: Option<TierValue>,
    #[schema(value_type = Option<String>, example = "admin")]
    pub role: Option<RoleValue>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TierValue {
    Basic,
    Premium,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleValue {
    User,
    Admin,
}

impl From<TierValue> for shutter_core::domain::Tier {
    fn from(t: TierValue) -> Self {
        match t {
            TierValue::Basic => Self::Basic,
            TierValue::Premium => Self::Premium,
        }
    }
}

impl From<RoleValue> for shutter_core::domain::Role {
    fn from(r: RoleValue) -> Self {
        match r {
            RoleValue::User => Self::User,
            RoleValue::Admin => Self::Admin,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePostRequest {
    /// 1..2200 characters.
    pub caption: String,
    /// Photos to upload with the post (not yet supported by this server).
    #[schema(value_type = Option<Vec<Object>>)]
    pub media: Option<Vec<serde_json::Value>>,
    /// Already uploaded files to attach (not yet supported by this server).
    pub file_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdatePostRequest {
    pub caption: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCommentRequest {
    /// 1..2200 characters.
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    #[schema(example = "basic")]
    pub tier: String,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    pub followers_count: i64,
    pub following_count: i64,
    pub posts_count: i64,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        UserDto {
            id: u.id.to_string(),
            username: u.username,
            display_name: u.display_name,
            bio: u.bio,
            tier: u.tier.as_str().to_owned(),
            created_at: u.created_at.to_string(),
            followers_count: u.followers_count,
            following_count: u.following_count,
            posts_count: u.posts_count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserSummaryDto {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

impl From<UserSummary> for UserSummaryDto {
    fn from(u: UserSummary) -> Self {
        UserSummaryDto {
            id: u.id.to_string(),
            username: u.username,
            display_name: u.display_name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserDto,
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<Session> for AuthResponse {
    fn from(s: Session) -> Self {
        AuthResponse {
            user: s.user.into(),
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            token_type: "Bearer".into(),
            expires_in: s.expires_in,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsResponse {
    pub tier: String,
    pub limits: TierLimitsDto,
    pub usage: UsageDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierLimitsDto {
    /// Bytes.
    pub max_file_size: u64,
    pub max_concurrent_uploads: u32,
    /// Bytes.
    pub storage_quota: u64,
    pub posts_per_minute: u32,
    pub max_pixels: u64,
    pub post_media_types: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDto {
    pub bytes_stored: u64,
    pub uploads_open: u64,
}

impl From<LimitsView> for LimitsResponse {
    fn from(v: LimitsView) -> Self {
        LimitsResponse {
            tier: v.tier.as_str().to_owned(),
            limits: TierLimitsDto {
                max_file_size: v.max_file_size,
                max_concurrent_uploads: v.max_concurrent_uploads,
                storage_quota: v.storage_quota,
                posts_per_minute: v.posts_per_minute,
                max_pixels: v.max_pixels,
                post_media_types: v.post_media_types.into_iter().map(str::to_owned).collect(),
            },
            usage: UsageDto {
                bytes_stored: v.bytes_stored,
                uploads_open: v.uploads_open,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentDto {
    pub id: String,
    pub post_id: String,
    pub author: UserSummaryDto,
    pub text: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Comment> for CommentDto {
    fn from(c: Comment) -> Self {
        CommentDto {
            id: c.id.to_string(),
            post_id: c.post_id.to_string(),
            author: c.author.into(),
            text: c.text,
            created_at: c.created_at.to_string(),
            updated_at: c.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostDto {
    pub id: String,
    pub author: UserSummaryDto,
    pub caption: String,
    #[schema(example = "published")]
    pub status: String,
    /// Photos in the order given.
    #[schema(value_type = Vec<Object>)]
    pub media: Vec<serde_json::Value>,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    /// The 3 newest comments, newest first.
    pub comments_preview: Vec<CommentDto>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<PostView> for PostDto {
    fn from(v: PostView) -> Self {
        let p = v.post;
        PostDto {
            id: p.id.to_string(),
            author: p.author.into(),
            caption: p.caption,
            status: p.status.as_str().to_owned(),
            media: Vec::new(),
            like_count: p.like_count,
            comment_count: p.comment_count,
            liked_by_me: p.liked_by_me,
            comments_preview: v.comments_preview.into_iter().map(Into::into).collect(),
            created_at: p.created_at.to_string(),
            updated_at: p.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatePostResponse {
    pub post: PostDto,
    /// Upload tickets for the post's photos, in order.
    #[schema(value_type = Vec<Object>)]
    pub uploads: Vec<serde_json::Value>,
}

macro_rules! page_type {
    ($name:ident, $item:ty) => {
        /// A page of results; pass `next_cursor` as `?cursor=` for the next one.
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            pub next_cursor: Option<String>,
        }

        impl<T: Into<$item>> From<Page<T>> for $name {
            fn from(page: Page<T>) -> Self {
                $name {
                    items: page.items.into_iter().map(Into::into).collect(),
                    next_cursor: page.next_cursor.as_ref().map(Cursor::encode),
                }
            }
        }
    };
}

page_type!(PostPage, PostDto);
page_type!(CommentPage, CommentDto);
