//! Posts and comments: who may see, change and delete what, and the assembled views
//! (a post with its newest comments).

use std::collections::HashMap;

use shutter_core::domain::{Caption, CommentText, PostStatus};
use shutter_core::model::{Comment, PostRecord};
use shutter_core::{Id, Page, PageRequest};

use crate::accounts::Principal;
use crate::ports::{NewComment, NewPost};
use crate::{AppError, AppResult, Shutter};

/// How many of a post's newest comments come with it.
pub const COMMENTS_PREVIEW: u32 = 3;

/// A post as clients see it: the record plus its newest comments (newest first).
#[derive(Clone, Debug)]
pub struct PostView {
    pub post: PostRecord,
    pub comments_preview: Vec<Comment>,
}

#[derive(Clone, Debug, Default)]
pub struct NewPostInput {
    pub caption: String,
    /// Photo specs and already-uploaded files; photo posts are not accepted yet.
    pub media_count: usize,
    pub file_ids_count: usize,
}

fn viewer_id(viewer: Option<&Principal>) -> Option<Id> {
    viewer.map(Principal::id)
}

/// Others see only published posts; the author sees their own in any state. Invisible posts
/// are reported as missing so their existence does not leak.
fn visible_to(post: &PostRecord, viewer: Option<&Principal>) -> bool {
    post.status == PostStatus::Published || viewer_id(viewer) == Some(post.author.id)
}

impl Shutter {
    pub async fn create_post(&self, who: &Principal, input: NewPostInput) -> AppResult<PostView> {
        let caption = Caption::parse("caption", &input.caption)?;
        if input.media_count > 0 || input.file_ids_count > 0 {
            let field = if input.media_count > 0 {
                "media"
            } else {
                "file_ids"
            };
            return Err(AppError::field(
                field,
                "photo posts are not supported by this server yet",
            ));
        }
        let post = self
            .repo
            .create_post(NewPost {
                id: Id::new(),
                author_id: who.id(),
                caption: caption.into_string(),
                status: PostStatus::Published,
                created_at: self.clock.now(),
            })
            .await?;
        tracing::info!(post.id = %post.id, user.id = %who.id(), "post created");
        Ok(PostView {
            post,
            comments_preview: Vec::new(),
        })
    }

    /// A post the viewer may see, or `not_found`.
    async fn visible_post(&self, id: Id, viewer: Option<&Principal>) -> AppResult<PostRecord> {
        match self.repo.post_by_id(id, viewer_id(viewer)).await? {
            Some(post) if visible_to(&post, viewer) => Ok(post),
            _ => Err(AppError::not_found("post")),
        }
    }

    pub async fn post(&self, id: Id, viewer: Option<&Principal>) -> AppResult<PostView> {
        let post = self.visible_post(id, viewer).await?;
        let mut views = self.with_previews(vec![post]).await?;
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
        let post = self
            .repo
            .update_post_caption(id, caption.into_string(), now)
            .await?
            .ok_or_else(|| AppError::not_found("post"))?;
        self.post(post.id, Some(who)).await
    }

    pub async fn delete_post(&self, who: &Principal, id: Id) -> AppResult<()> {
        let post = self.visible_post(id, Some(who)).await?;
        if post.author.id != who.id() && !who.is_admin() {
            return Err(AppError::forbidden(
                "only the author or an admin may delete a post",
            ));
        }
        self.repo.delete_post(id).await?;
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
        let page = self
            .repo
            .posts_by_author(author, own, viewer_id(viewer), page)
            .await?;
        let next_cursor = page.next_cursor;
        let items = self.with_previews(page.items).await?;
        Ok(Page { items, next_cursor })
    }

    /// Attaches each post's newest comments, with one query for the whole page.
    async fn with_previews(&self, posts: Vec<PostRecord>) -> AppResult<Vec<PostView>> {
        let ids: Vec<Id> = posts
            .iter()
            .filter(|p| p.comment_count > 0)
            .map(|p| p.id)
            .collect();
        let mut by_post: HashMap<Id, Vec<Comment>> = HashMap::new();
        if !ids.is_empty() {
            for c in self.repo.latest_comments(&ids, COMMENTS_PREVIEW).await? {
                by_post.entry(c.post_id).or_default().push(c);
            }
        }
        Ok(posts
            .into_iter()
            .map(|post| {
                let comments_preview = by_post.remove(&post.id).unwrap_or_default();
                PostView {
                    post,
                    comments_preview,
                }
            })
            .collect())
    }

    pub async fn add_comment(
        &self,
        who: &Principal,
        post_id: Id,
        text: &str,
    ) -> AppResult<Comment> {
        let text = CommentText::parse("text", text)?;
        self.visible_post(post_id, Some(who)).await?;
        let comment = self
            .repo
            .create_comment(NewComment {
                id: Id::new(),
                post_id,
                author_id: who.id(),
                text: text.into_string(),
                created_at: self.clock.now(),
            })
            .await
            .map_err(|e| match e {
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

    /// The comment's author, the post's author and admins may delete a comment.
    pub async fn delete_comment(&self, who: &Principal, id: Id) -> AppResult<()> {
        let comment = self
            .repo
            .comment_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("comment"))?;
        let post = self.visible_post(comment.post_id, Some(who)).await?;
        let allowed = comment.author.id == who.id() || post.author.id == who.id() || who.is_admin();
        if !allowed {
            return Err(AppError::forbidden(
                "only the comment's author, the post's author or an admin may delete it",
            ));
        }
        self.repo.delete_comment(id).await?;
        Ok(())
    }
}
