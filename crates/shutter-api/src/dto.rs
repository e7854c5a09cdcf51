//! The JSON shapes of the API, with their OpenAPI schemas. Requests hold raw values; the use
//! cases validate them. Responses are built from the use cases' records.

use serde::{Deserialize, Serialize};
use shutter_app::accounts::{LimitsView, Session};
use shutter_app::posts::PostView;
use shutter_core::model::{Comment, User, UserSummary};
use shutter_core::{Cursor, Page};
use utoipa::ToSchema;

/// A non-negative whole number, also when written with a zero fraction (`2084.0`): JSON does
/// not tell the two apart, and neither does JSON Schema's `integer`.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    use serde::de::{Error, Unexpected};
    let n = serde_json::Number::deserialize(d)?;
    if let Some(whole) = n.as_u64() {
        return Ok(whole);
    }
    match n.as_f64() {
        // Every u64 is below 2^64; sizes that large are refused as too large anyway.
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 => Ok(f as u64),
        _ => Err(D::Error::invalid_value(
            Unexpected::Other(&n.to_string()),
            &"a whole number of bytes",
        )),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3..30 of `[a-z0-9_]`, lowercased.
    #[schema(pattern = "^[A-Za-z0-9_]{3,30}$", min_length = 3, max_length = 30)]
    pub username: String,
    /// 8..128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// At most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
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
    /// At most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub display_name: Option<String>,
    /// At most 500 characters; line breaks and tabs are the only control characters allowed.
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub bio: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// Required for password accounts.
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminUpdateUserRequest {
    pub tier: Option<TierValue>,
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
    /// 1..2200 characters, not only white space.
    #[schema(
        min_length = 1,
        max_length = 2200,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub caption: String,
    /// Photos to upload with the post (0..10 together with `file_ids`, JPEG/PNG/WebP); the
    /// response has a ticket for each.
    #[schema(max_items = 10)]
    pub media: Option<Vec<MediaSpec>>,
    /// Ready images the caller already uploaded, attached after `media`.
    #[schema(max_items = 10, value_type = Option<Vec<uuid::Uuid>>)]
    pub file_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MediaSpec {
    /// 1..255 bytes, no control characters or slashes.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f/\\]+$"
    )]
    pub filename: String,
    /// Post photos are JPEG, PNG or WebP, in any letter case, parameters allowed (anything
    /// else: 415).
    #[schema(
        example = "image/jpeg",
        pattern = r"^\s*[Ii][Mm][Aa][Gg][Ee]/([Jj][Pp][Ee][Gg]|[Pp][Nn][Gg]|[Ww][Ee][Bb][Pp])\s*(;.*)?$"
    )]
    pub content_type: String,
    /// Exact size in bytes.
    #[serde(deserialize_with = "whole_number")]
    pub size: u64,
    #[schema(pattern = "^[0-9A-Fa-f]{64}$")]
    pub sha256: Option<String>,
    #[schema(pattern = "^[0-9A-Fa-f]{32}$")]
    pub md5: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdatePostRequest {
    /// 1..2200 characters, not only white space.
    #[schema(
        min_length = 1,
        max_length = 2200,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub caption: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCommentRequest {
    /// 1..2200 characters, not only white space.
    #[schema(
        min_length = 1,
        max_length = 2200,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
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
pub struct VariantDto {
    pub url: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantsDto {
    /// 150×150 centre crop.
    pub thumb: Option<VariantDto>,
    /// Fits 640 wide, never upscaled.
    pub w640: Option<VariantDto>,
    /// Fits 1080 wide, never upscaled.
    pub w1080: Option<VariantDto>,
}

impl VariantsDto {
    fn from_list(list: Vec<(String, String, u32, u32)>) -> Option<Self> {
        if list.is_empty() {
            return None;
        }
        let mut v = VariantsDto {
            thumb: None,
            w640: None,
            w1080: None,
        };
        for (name, url, width, height) in list {
            let dto = Some(VariantDto { url, width, height });
            match name.as_str() {
                "thumb" => v.thumb = dto,
                "w640" => v.w640 = dto,
                "w1080" => v.w1080 = dto,
                _ => {}
            }
        }
        Some(v)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaDto {
    pub file_id: String,
    pub content_type: String,
    /// Displayed size (after EXIF orientation), once known.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub blurhash: Option<String>,
    #[schema(example = "ready")]
    pub status: String,
    pub failure: Option<FailureDto>,
    pub url: Option<String>,
    pub variants: Option<VariantsDto>,
}

impl From<shutter_app::posts::MediaView> for MediaDto {
    fn from(m: shutter_app::posts::MediaView) -> Self {
        let f = m.file;
        MediaDto {
            file_id: f.id.to_string(),
            content_type: f.content_type,
            width: f.width,
            height: f.height,
            blurhash: f.blurhash,
            status: f.status.as_str().to_owned(),
            failure: f.failure.map(|x| FailureDto {
                code: x.code.as_str().to_owned(),
                detail: x.detail,
            }),
            url: m.url,
            variants: VariantsDto::from_list(m.variants),
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
    pub media: Vec<MediaDto>,
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
            media: v.media.into_iter().map(Into::into).collect(),
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
    /// Upload tickets for the post's new photos, in order.
    pub uploads: Vec<UploadTicketDto>,
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

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateFileRequest {
    /// 1..255 bytes, no control characters or slashes.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f/\\]+$"
    )]
    pub filename: String,
    /// Exact size in bytes.
    #[serde(deserialize_with = "whole_number")]
    pub size: u64,
    #[schema(
        example = "image/jpeg",
        pattern = r"^\s*[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}\s*(;.*)?$"
    )]
    pub content_type: String,
    /// Hex SHA-256 of the bytes, checked when the upload completes.
    #[schema(pattern = "^[0-9A-Fa-f]{64}$")]
    pub sha256: Option<String>,
    /// Hex MD5 of the bytes, checked when the upload completes.
    #[schema(pattern = "^[0-9A-Fa-f]{32}$")]
    pub md5: Option<String>,
    /// Default `private`.
    pub visibility: Option<VisibilityValue>,
    /// At most 20, each 1..50 of `[a-z0-9_-]` (lowercased).
    #[schema(max_items = 20)]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VisibilityValue {
    Private,
    Public,
}

impl From<VisibilityValue> for shutter_core::domain::Visibility {
    fn from(v: VisibilityValue) -> Self {
        match v {
            VisibilityValue::Private => Self::Private,
            VisibilityValue::Public => Self::Public,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateFileRequest {
    /// 1..255 bytes, no control characters or slashes.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f/\\]+$"
    )]
    pub filename: Option<String>,
    pub visibility: Option<VisibilityValue>,
    /// At most 20, each 1..50 of `[a-z0-9_-]` (lowercased).
    #[schema(max_items = 20)]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CompleteUploadRequest {
    /// Multipart parts (S3 storage only), each as the bucket acknowledged it.
    pub parts: Option<Vec<CompletedPart>>,
}

/// One uploaded part of a multipart upload, as the object store acknowledged it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompletedPart {
    /// The part's number in the ticket, 1..10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub number: u32,
    /// The `ETag` the bucket answered the part's upload with.
    pub etag: String,
}

impl CompleteUploadRequest {
    /// Part numbers are 1..10000 and each ETag is non-empty; errors name `parts[i].field`.
    pub fn validate(&self) -> Result<(), shutter_app::AppError> {
        let mut errors = Vec::new();
        for (i, part) in self.parts.iter().flatten().enumerate() {
            if !(1..=10_000).contains(&part.number) {
                errors.push(shutter_core::error::FieldError::new(
                    format!("parts[{i}].number"),
                    "must be a part number from 1 to 10000",
                ));
            }
            if part.etag.trim().is_empty() {
                errors.push(shutter_core::error::FieldError::new(
                    format!("parts[{i}].etag"),
                    "must not be empty",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(shutter_app::AppError::validation(errors))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailureDto {
    pub code: String,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileDto {
    pub id: String,
    pub owner_id: String,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256: of the received bytes once complete, else as declared.
    pub sha256: Option<String>,
    pub md5: Option<String>,
    #[schema(example = "private")]
    pub visibility: String,
    pub tags: Vec<String>,
    #[schema(example = "ready")]
    pub status: String,
    pub bytes_received: u64,
    pub failure: Option<FailureDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blurhash: Option<String>,
    /// Signed URL of the bytes once the file is ready.
    pub url: Option<String>,
    /// Images only, once processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variants: Option<VariantsDto>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<shutter_app::files::FileView> for FileDto {
    fn from(v: shutter_app::files::FileView) -> Self {
        let f = v.file;
        FileDto {
            id: f.id.to_string(),
            owner_id: f.owner_id.to_string(),
            filename: f.filename,
            content_type: f.content_type,
            size: f.size,
            sha256: f.sha256.or(f.declared_sha256),
            md5: f.md5.or(f.declared_md5),
            visibility: f.visibility.as_str().to_owned(),
            tags: f.tags,
            status: f.status.as_str().to_owned(),
            bytes_received: f.bytes_received,
            failure: f.failure.map(|x| FailureDto {
                code: x.code.as_str().to_owned(),
                detail: x.detail,
            }),
            width: f.width,
            height: f.height,
            blurhash: f.blurhash,
            url: v.url,
            variants: VariantsDto::from_list(v.variants),
            created_at: f.created_at.to_string(),
            updated_at: f.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTicketDto {
    pub file_id: String,
    #[schema(example = "PUT")]
    pub method: String,
    /// Presigned: needs no Authorization header.
    pub url: String,
    /// Headers to send with the bytes.
    #[schema(value_type = Object)]
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub expires_at: String,
    /// tus 1.0.0 endpoint of the same file (with `Authorization: Bearer`).
    pub tus_url: String,
    /// On S3 storage, for files of `storage.multipart_threshold` or more: `PUT` each part to
    /// its URL, then `POST` the parts' ETags to `complete_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipart: Option<MultipartTicketDto>,
}

/// A multipart upload straight to the bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct MultipartTicketDto {
    /// Every part but the last has exactly this many bytes.
    pub part_size: u64,
    pub parts: Vec<MultipartPartDto>,
    /// `POST {parts: [{number, etag}]}` here once every part is uploaded.
    pub complete_url: String,
}

/// One part to upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct MultipartPartDto {
    pub number: u32,
    /// Presigned `PUT` URL of the part.
    pub url: String,
}

impl From<shutter_app::files::UploadTicket> for UploadTicketDto {
    fn from(t: shutter_app::files::UploadTicket) -> Self {
        UploadTicketDto {
            file_id: t.file_id.to_string(),
            method: t.method.to_owned(),
            url: t.url,
            headers: t
                .headers
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
            expires_at: t.expires_at.to_string(),
            tus_url: t.tus_url,
            multipart: t.multipart.map(|m| MultipartTicketDto {
                part_size: m.part_size,
                parts: m
                    .parts
                    .into_iter()
                    .map(|(number, url)| MultipartPartDto { number, url })
                    .collect(),
                complete_url: m.complete_url,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreateFileResponse {
    pub file: FileDto,
    pub upload: UploadTicketDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileResponse {
    pub file: FileDto,
}

page_type!(FilePage, FileDto);

/// A live event as sent over SSE and WebSocket.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    #[serde(rename = "type")]
    #[schema(example = "file.progress")]
    pub type_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDto>,
    pub at: String,
}

impl From<shutter_app::ports::Event> for EventDto {
    fn from(e: shutter_app::ports::Event) -> Self {
        EventDto {
            type_: e.kind.as_str().to_owned(),
            file_id: e.file_id.map(|i| i.to_string()),
            post_id: e.post_id.map(|i| i.to_string()),
            bytes_received: e.bytes_received,
            size: e.size,
            failure: e.failure.map(|x| FailureDto {
                code: x.code.as_str().to_owned(),
                detail: x.detail,
            }),
            at: e.at.to_string(),
        }
    }
}

page_type!(UserSummaryPage, UserSummaryDto);
