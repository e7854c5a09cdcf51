//! Posts and comments: who may see, change and delete what, and the assembled views
//! (a post with its newest comments).

use std::collections::HashMap;

use shutter_core::domain::{Caption, CommentText, PostStatus};
use shutter_core::model::{Comment, PostRecord};
use shutter_core::{Id, Page, PageRequest};

use crate::accounts::Principal;
use crate::ports::{NewComment, NewPost, PostMedia, PostMediaRefusal};
use crate::{AppError, AppResult, Shutter};

/// A post about to be assembled, and whether it has photos when the cache knows.
pub(crate) struct Known {
    pub record: PostRecord,
    pub has_media: Option<bool>,
}

impl Known {
    /// A post just read from the database.
    pub fn fresh(record: PostRecord) -> Self {
        Known {
            record,
            has_media: None,
        }
    }

    /// A post taken from the cache (`liked_by_me` false until the caller sets it).
    pub fn cached(post: &crate::cache::CachedPost) -> Self {
        Known {
            record: post.record.clone(),
            has_media: Some(post.has_media),
        }
    }
}

/// How many of a post's newest comments come with it.
pub const COMMENTS_PREVIEW: u32 = 3;

/// A post as clients see it: the record, its photos (in order) and its newest comments
/// (newest first).
#[derive(Clone, Debug)]
pub struct PostView {
    pub post: PostRecord,
    pub media: Vec<MediaView>,
    pub comments_preview: Vec<Comment>,
}

/// A photo of a post with signed URLs of the original and of each variant.
#[derive(Clone, Debug)]
pub struct MediaView {
    pub file: shutter_core::model::FileRecord,
    pub url: Option<String>,
    /// `(name, url, width, height)` of each variant, once the photo is ready.
    pub variants: Vec<(String, String, u32, u32)>,
}

#[derive(Clone, Debug, Default)]
pub struct NewPostInput {
    pub caption: String,
    /// Photos to upload with the post.
    pub media: Vec<crate::files::NewFileInput>,
    /// Files the author already uploaded (ready images).
    pub file_ids: Vec<String>,
}

/// A created post and the upload tickets of its new photos, in order.
#[derive(Clone, Debug)]
pub struct CreatedPost {
    pub view: PostView,
    pub uploads: Vec<crate::files::UploadTicket>,
}

/// At most this many photos per post.
pub const MAX_MEDIA: usize = 10;

fn viewer_id(viewer: Option<&Principal>) -> Option<Id> {
    viewer.map(Principal::id)
}

/// Others see only published posts; the author sees their own in any state. Invisible posts
/// are reported as missing so their existence does not leak.
fn visible_to(post: &PostRecord, viewer: Option<&Principal>) -> bool {
    post.status == PostStatus::Published || viewer_id(viewer) == Some(post.author.id)
}

impl Shutter {
    pub async fn create_post(
        &self,
        who: &Principal,
        input: NewPostInput,
    ) -> AppResult<CreatedPost> {
        let caption = Caption::parse("caption", &input.caption)?;
        if input.media.len() + input.file_ids.len() > MAX_MEDIA {
            return Err(AppError::field("media", "a post has at most 10 photos"));
        }
        for (i, m) in input.media.iter().enumerate() {
            let ct = m
                .content_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if !crate::accounts::POST_MEDIA_TYPES.contains(&ct.as_str()) {
                return Err(AppError::new(
                    shutter_core::ErrorCode::UnsupportedMediaType,
                    format!("media[{i}]: post photos must be image/jpeg, image/png or image/webp"),
                ));
            }
        }
        let mut attach = Vec::with_capacity(input.file_ids.len());
        for (i, raw) in input.file_ids.iter().enumerate() {
            let id = raw
                .parse::<Id>()
                .map_err(|_| AppError::field(&format!("file_ids[{i}]"), "is not a file id"))?;
            if attach.contains(&id) {
                return Err(AppError::field(&format!("file_ids[{i}]"), "is given twice"));
            }
            attach.push(id);
        }
        let (new_files, allowance) =
            self.prepare_files(who, &input.media, |i| format!("media[{i}]."))?;
        let has_media = !new_files.is_empty() || !attach.is_empty();
        let new_post = NewPost {
            id: Id::new(),
            author_id: who.id(),
            caption: caption.into_string(),
            status: if has_media {
                PostStatus::Pending
            } else {
                PostStatus::Published
            },
            created_at: self.clock.now(),
        };
        let created = self
            .media
            .create_post_with_media(new_post, new_files, attach.clone(), allowance)
            .await?;
        let (post, files) = match created {
            Ok(done) => done,
            Err(PostMediaRefusal::Allowance(r)) => {
                return Err(crate::files::allowance_error(r, allowance))
            }
            Err(PostMediaRefusal::FileUnavailable(id)) => {
                let i = attach.iter().position(|a| *a == id).unwrap_or_default();
                return Err(AppError::field(
                    &format!("file_ids[{i}]"),
                    "must be one of your ready JPEG, PNG or WebP files, not used by another post",
                ));
            }
        };
        tracing::info!(post.id = %post.id, user.id = %who.id(), photos = files.len() + attach.len(), "post created");
        // Attached files only: the post can be published at once.
        if files.is_empty() && !attach.is_empty() {
            self.settle_post(post.id, who.id(), false)
                .await
                .map_err(|e| AppError::internal(anyhow::anyhow!(e.message)))?;
        }
        let mut uploads = Vec::with_capacity(files.len());
        for file in &files {
            uploads.push(self.upload_ticket(file).await?);
        }
        if post.status == PostStatus::Published {
            self.after_publish(post.id).await;
        }
        let view = self.post(post.id, Some(who)).await?;
        Ok(CreatedPost { view, uploads })
    }

    /// A post the viewer may see, or `not_found`.
    pub(crate) async fn visible_post(
        &self,
        id: Id,
        viewer: Option<&Principal>,
    ) -> AppResult<PostRecord> {
        match self.repo.post_by_id(id, viewer_id(viewer)).await? {
            Some(post) if visible_to(&post, viewer) => Ok(post),
            _ => Err(AppError::not_found("post")),
        }
    }

    pub async fn post(&self, id: Id, viewer: Option<&Principal>) -> AppResult<PostView> {
        let epoch = self.posts_cache.epoch();
        let post = match self.posts_cache.get(id) {
            // Published, so visible to anyone.
            Some(cached) => {
                let mut post = Known::cached(&cached);
                if let Some(viewer) = viewer {
                    post.record.liked_by_me = !self
                        .social
                        .liked_among(viewer.id(), &[id])
                        .await?
                        .is_empty();
                }
                post
            }
            None => Known::fresh(self.visible_post(id, viewer).await?),
        };
        let mut views = self.assemble(vec![post], epoch).await?;
        views.pop().ok_or_else(|| AppError::not_found("post"))
    }

    pub async fn update_caption(
        &self,
        who: &Principal,
        id: Id,
        caption: &str,
    ) -> AppResult<PostView> {
        let caption = Caption::parse("caption", caption)?;
        let post = self.visible_post(id, Some(who)).await?;
        if post.author.id != who.id() {
            return Err(AppError::forbidden("only the author may edit a post"));
        }
        // updated_at must move forward even when two edits land in the same millisecond.
        let now = self.clock.now().max(shutter_core::Timestamp::from_millis(
            post.updated_at.millis() + 1,
        ));
        let forget = self.posts_cache.forget_after(id);
        let updated = self
            .repo
            .update_post_caption(id, caption.into_string(), now)
            .await;
        forget.done();
        let post = updated?.ok_or_else(|| AppError::not_found("post"))?;
        self.post(post.id, Some(who)).await
    }

    /// The author or an admin deletes a post, in any state: an admin sees every post here,
    /// pending and failed ones included.
    pub async fn delete_post(&self, who: &Principal, id: Id) -> AppResult<()> {
        let post = match self.repo.post_by_id(id, Some(who.id())).await? {
            Some(post) if who.is_admin() || visible_to(&post, Some(who)) => post,
            _ => return Err(AppError::not_found("post")),
        };
        if post.author.id != who.id() && !who.is_admin() {
            return Err(AppError::forbidden(
                "only the author or an admin may delete a post",
            ));
        }
        let forget = self.posts_cache.forget_after(id);
        let deleted = self
            .media
            .delete_post_with_media(id, self.clock.now())
            .await;
        forget.done();
        deleted?;
        self.uploads.content.invalidate();
        self.wake_workers();
        tracing::info!(post.id = %id, user.id = %who.id(), "post deleted");
        Ok(())
    }

    /// A user's posts, newest first: published ones, and the owner's own in any state.
    pub async fn posts_of_user(
        &self,
        author: Id,
        viewer: Option<&Principal>,
        page: PageRequest,
    ) -> AppResult<Page<PostView>> {
        self.user(author).await?;
        let own = viewer_id(viewer) == Some(author);
        let epoch = self.posts_cache.epoch();
        let page = self
            .repo
            .posts_by_author(author, own, viewer_id(viewer), page)
            .await?;
        self.views(page, epoch).await
    }

    /// A page of posts read from the database after `epoch` was taken, assembled.
    pub(crate) async fn views(
        &self,
        posts: Page<PostRecord>,
        epoch: Option<u64>,
    ) -> AppResult<Page<PostView>> {
        let next_cursor = posts.next_cursor;
        let posts = posts
            .items
            .into_iter()
            .map(|record| Known {
                has_media: self.posts_cache.get(record.id).map(|c| c.has_media),
                record,
            })
            .collect();
        let items = self.assemble(posts, epoch).await?;
        Ok(Page { items, next_cursor })
    }

    /// Attaches each post's photos and newest comments, with one query each for the page;
    /// posts known to have no photos skip the first. Posts read from the database after
    /// `epoch` was taken (those without `has_media`) go into the cache.
    pub(crate) async fn assemble(
        &self,
        posts: Vec<Known>,
        epoch: Option<u64>,
    ) -> AppResult<Vec<PostView>> {
        let ids: Vec<Id> = posts
            .iter()
            .filter(|p| p.record.comment_count > 0)
            .map(|p| p.record.id)
            .collect();
        let mut by_post: HashMap<Id, Vec<Comment>> = HashMap::new();
        if !ids.is_empty() {
            for c in self.repo.latest_comments(&ids, COMMENTS_PREVIEW).await? {
                by_post.entry(c.post_id).or_default().push(c);
            }
        }
        let with_media: Vec<Id> = posts
            .iter()
            .filter(|p| p.has_media != Some(false))
            .map(|p| p.record.id)
            .collect();
        let mut media: HashMap<Id, Vec<MediaView>> = HashMap::new();
        if !with_media.is_empty() {
            for m in self.media.media_of_posts(&with_media).await? {
                media.entry(m.post_id).or_default().push(self.media_view(m));
            }
        }
        Ok(posts
            .into_iter()
            .map(
                |Known {
                     record: post,
                     has_media,
                 }| {
                    let comments_preview = by_post.remove(&post.id).unwrap_or_default();
                    let media = media.remove(&post.id).unwrap_or_default();
                    if let (Some(epoch), None) = (epoch, has_media) {
                        self.posts_cache
                            .insert(epoch, post.clone(), !media.is_empty());
                    }
                    PostView {
                        post,
                        media,
                        comments_preview,
                    }
                },
            )
            .collect())
    }

    /// A post's photo with URLs signed for whoever may see the post: the URLs themselves are
    /// the authorisation, like any signed download URL.
    fn media_view(&self, m: PostMedia) -> MediaView {
        let ready = m.file.status == shutter_core::domain::FileStatus::Ready;
        let url = ready.then(|| self.content_url(&m.file, None));
        let variants = if ready {
            m.variants
                .iter()
                .map(|v| {
                    (
                        v.name.clone(),
                        self.content_url(&m.file, Some(&v.name)),
                        v.width,
                        v.height,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        MediaView {
            file: m.file,
            url,
            variants,
        }
    }

    pub async fn add_comment(
        &self,
        who: &Principal,
        post_id: Id,
        text: &str,
    ) -> AppResult<Comment> {
        let text = CommentText::parse("text", text)?;
        self.visible_post(post_id, Some(who)).await?;
        let forget = self.posts_cache.forget_after(post_id);
        let created = self
            .repo
            .create_comment(NewComment {
                id: Id::new(),
                post_id,
                author_id: who.id(),
                text: text.into_string(),
                created_at: self.clock.now(),
            })
            .await;
        forget.done();
        let comment = created.map_err(|e| match e {
            // The post was deleted between the check and the insert.
            crate::ports::RepoError::Conflict(_) => AppError::not_found("post"),
            other => other.into(),
        })?;
        Ok(comment)
    }

    pub async fn comments(
        &self,
        post_id: Id,
        viewer: Option<&Principal>,
        page: PageRequest,
    ) -> AppResult<Page<Comment>> {
        self.visible_post(post_id, viewer).await?;
        Ok(self.repo.comments_of_post(post_id, page).await?)
    }

    /// The comment's author, the post's author and admins may delete a comment; admins also
    /// one on a post only its author can see (pending or failed).
    pub async fn delete_comment(&self, who: &Principal, id: Id) -> AppResult<()> {
        let comment = self
            .repo
            .comment_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("comment"))?;
        if !who.is_admin() {
            let post = self.visible_post(comment.post_id, Some(who)).await?;
            if comment.author.id != who.id() && post.author.id != who.id() {
                return Err(AppError::forbidden(
                    "only the comment's author, the post's author or an admin may delete it",
                ));
            }
        }
        let forget = self.posts_cache.forget_after(comment.post_id);
        let deleted = self.repo.delete_comment(id).await;
        forget.done();
        deleted?;
        Ok(())
    }
}
