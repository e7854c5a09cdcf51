//! What every `MediaRepo` adapter must do. Each scenario gets a fresh, migrated database.
//!
//! Files are brought into the state a scenario needs through `FileRepo` (so the only jobs
//! in the queue are the ones the `MediaRepo` method under test enqueued), likes through SQL.

use futures::future::join_all;
use shutter_app::ports::{
    delete_objects_job, job_kinds, process_file_job, AllowanceRefusal, FileDeletion, FileRepo, Job,
    JobStatus, MediaRepo, NewFile, NewPost, PostMedia, PostMediaRefusal, PublishOutcome, RepoError,
    UploadAllowance, UploadResult, Usage, VariantInfo,
};
use shutter_core::domain::{FileStatus, PostStatus, Visibility};
use shutter_core::model::{Failure, FileRecord, PostRecord, User};
use shutter_core::{ErrorCode, Id, PageRequest};

use crate::backends::TestDb;
use crate::scenarios::{at, user, T0};

/// Limits no scenario reaches unless it means to.
const ROOMY: UploadAllowance = UploadAllowance {
    max_open_uploads: 10_000,
    storage_quota: 1 << 50,
};

const BLURHASH: &str = "LEHV6nWB2yk8pyo0adR*.7kCMdnj";

fn new_file(owner: &User, ms: i64, content_type: &str, size: u64) -> NewFile {
    NewFile {
        id: Id::new(),
        owner_id: owner.id,
        filename: format!("photo-{ms}"),
        content_type: content_type.to_owned(),
        size,
        declared_sha256: None,
        declared_md5: None,
        visibility: Visibility::Public,
        tags: vec![format!("t{ms}"), "photo".to_owned()],
        created_at: at(ms),
        upload_expires_at: at(ms + 3_600_000),
    }
}

fn new_post(author: &User, ms: i64) -> NewPost {
    NewPost {
        id: Id::new(),
        author_id: author.id,
        caption: format!("post at {ms}"),
        status: PostStatus::Pending,
        created_at: at(ms),
    }
}

fn result(status: FileStatus) -> UploadResult {
    UploadResult {
        sha256: "ab".repeat(32),
        md5: "cd".repeat(16),
        status,
        width: Some(640),
        height: Some(480),
    }
}

/// Given out of order on purpose: they come back smallest first.
fn variants() -> Vec<VariantInfo> {
    [
        ("w1080", 1080, 810, 90_000),
        ("thumb", 150, 150, 4_000),
        ("w640", 640, 480, 30_000),
    ]
    .map(|(name, width, height, size)| VariantInfo {
        name: name.to_owned(),
        width,
        height,
        size,
    })
    .to_vec()
}

fn smallest_first() -> Vec<VariantInfo> {
    let mut all = variants();
    all.sort_by_key(|v| v.width);
    all
}

async fn create(files: &dyn FileRepo, new: NewFile) -> FileRecord {
    files
        .create_files(new.owner_id, vec![new], ROOMY)
        .await
        .unwrap()
        .expect("within the allowance")
        .remove(0)
}

async fn reload(files: &dyn FileRepo, id: Id) -> FileRecord {
    files.file_by_id(id).await.unwrap().expect("file exists")
}

/// A file whose bytes arrived, completed as `status` through `FileRepo` (no job).
async fn uploaded(
    db: &TestDb,
    owner: &User,
    ms: i64,
    content_type: &str,
    status: FileStatus,
) -> FileRecord {
    let file = create(db.files(), new_file(owner, ms, content_type, 100)).await;
    assert!(db.files().begin_upload(file.id, at(ms + 1)).await.unwrap());
    db.files()
        .complete_upload(file.id, result(status), at(ms + 2))
        .await
        .unwrap()
        .expect("was uploading")
}

/// A ready image with variants, as the processing job leaves it.
async fn processed(db: &TestDb, owner: &User, ms: i64) -> FileRecord {
    let file = uploaded(db, owner, ms, "image/jpeg", FileStatus::Processing).await;
    finish(db, file.id, ms + 3).await.expect("was processing")
}

async fn finish(db: &TestDb, id: Id, ms: i64) -> Option<FileRecord> {
    db.media()
        .finish_processing(id, 480, 640, BLURHASH.to_owned(), variants(), at(ms))
        .await
        .unwrap()
}

async fn post_with(
    media: &dyn MediaRepo,
    post: NewPost,
    new_files: Vec<NewFile>,
    attach: Vec<Id>,
) -> (PostRecord, Vec<FileRecord>) {
    media
        .create_post_with_media(post, new_files, attach, ROOMY)
        .await
        .unwrap()
        .expect("post accepted")
}

async fn author(db: &TestDb, who: &User) -> User {
    db.repo()
        .user_by_id(who.id)
        .await
        .unwrap()
        .expect("user exists")
}

async fn post_by_id(db: &TestDb, id: Id) -> Option<PostRecord> {
    db.repo().post_by_id(id, None).await.unwrap()
}

fn ids(files: &[FileRecord]) -> Vec<Id> {
    files.iter().map(|f| f.id).collect()
}

fn media_files(media: &[PostMedia]) -> Vec<(Id, u32, Id)> {
    media
        .iter()
        .map(|m| (m.post_id, m.position, m.file.id))
        .collect()
}

async fn rows(db: &TestDb, table: &str) -> i64 {
    db.count(&format!("SELECT COUNT(*) FROM {table}")).await
}

/// Rows of every table a post with photos writes to (and the job queue).
async fn snapshot(db: &TestDb) -> [i64; 6] {
    let mut counts = [0; 6];
    for (count, table) in counts.iter_mut().zip([
        "posts",
        "files",
        "file_tags",
        "post_media",
        "file_variants",
        "jobs",
    ]) {
        *count = rows(db, table).await;
    }
    counts
}

/// The `delete_objects` jobs, oldest first.
async fn delete_jobs(db: &TestDb) -> Vec<Job> {
    let mut jobs: Vec<Job> = db
        .jobs()
        .list_jobs(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|job| job.kind == job_kinds::DELETE_OBJECTS)
        .collect();
    jobs.reverse();
    jobs
}

/// The job is the `delete_objects` job of exactly `file_ids` (in that order), queued at `ms`.
fn assert_delete_job(job: &Job, file_ids: &[Id], ms: i64) {
    let expected = delete_objects_job(file_ids, at(ms));
    assert_eq!(
        (
            &job.kind,
            &job.payload,
            job.status,
            job.run_at,
            job.max_attempts,
            job.priority
        ),
        (
            &expected.kind,
            &expected.payload,
            JobStatus::Queued,
            at(ms),
            expected.max_attempts,
            expected.priority
        )
    );
}

pub async fn uploads_complete_into_processing_with_their_job(db: &TestDb) {
    let (repo, files, media, jobs) = (db.repo(), db.files(), db.media(), db.jobs());
    let ann = user(repo, "ann").await;
    let photo = create(files, new_file(&ann, 10, "image/jpeg", 100)).await;
    let job = process_file_job(photo.id, 10, at(20));

    // Not uploading yet (or gone): nothing changes, nothing is enqueued.
    for id in [photo.id, Id::new()] {
        let done = media
            .complete_upload_for_processing(id, result(FileStatus::Processing), job.clone(), at(20))
            .await
            .unwrap();
        assert_eq!(done, None);
    }
    assert_eq!(reload(files, photo.id).await, photo);
    assert!(jobs.list_jobs(None, 10).await.unwrap().is_empty());

    assert!(files.begin_upload(photo.id, at(15)).await.unwrap());
    let uploading = reload(files, photo.id).await;
    let done = media
        .complete_upload_for_processing(
            photo.id,
            result(FileStatus::Processing),
            job.clone(),
            at(20),
        )
        .await
        .unwrap()
        .expect("was uploading");
    assert_eq!(
        done,
        FileRecord {
            status: FileStatus::Processing,
            sha256: Some("ab".repeat(32)),
            md5: Some("cd".repeat(16)),
            bytes_received: 100,
            width: Some(640),
            height: Some(480),
            updated_at: at(20),
            ..uploading
        }
    );
    assert_eq!(reload(files, photo.id).await, done);
    let queued = jobs.list_jobs(None, 10).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(
        (
            queued[0].id,
            queued[0].kind.as_str(),
            &queued[0].payload,
            queued[0].priority,
            queued[0].status,
            queued[0].run_at
        ),
        (
            job.id,
            job_kinds::PROCESS_FILE,
            &job.payload,
            10,
            JobStatus::Queued,
            at(20)
        )
    );

    // Completing twice does nothing the second time.
    let again = media
        .complete_upload_for_processing(
            photo.id,
            result(FileStatus::Processing),
            process_file_job(photo.id, 0, at(30)),
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(jobs.list_jobs(None, 10).await.unwrap().len(), 1);

    // A result that is not `processing` is the caller's mistake: refused, nothing written.
    let other = create(files, new_file(&ann, 11, "image/png", 100)).await;
    assert!(files.begin_upload(other.id, at(15)).await.unwrap());
    let other = reload(files, other.id).await;
    let refused = media
        .complete_upload_for_processing(
            other.id,
            result(FileStatus::Ready),
            process_file_job(other.id, 0, at(30)),
            at(30),
        )
        .await;
    assert!(matches!(refused, Err(RepoError::Other(_))), "{refused:?}");
    assert_eq!(reload(files, other.id).await, other);
    assert_eq!(jobs.list_jobs(None, 10).await.unwrap().len(), 1);
}

pub async fn processing_finishes_once_and_replaces_variants(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let ann = user(repo, "ann").await;
    let photo = uploaded(db, &ann, 10, "image/jpeg", FileStatus::Processing).await;
    // Left by an earlier attempt that died before committing its status, say.
    db.exec(&format!(
        "INSERT INTO file_variants (file_id, name, width, height, size) \
         VALUES ('{}', 'stale', 1, 1, 1)",
        photo.id
    ))
    .await;

    let ready = finish(db, photo.id, 50).await.expect("was processing");
    assert_eq!(
        ready,
        FileRecord {
            status: FileStatus::Ready,
            width: Some(480),
            height: Some(640),
            blurhash: Some(BLURHASH.to_owned()),
            updated_at: at(50),
            ..photo.clone()
        }
    );
    assert_eq!(reload(files, photo.id).await, ready);
    let expected: Vec<(Id, VariantInfo)> = smallest_first()
        .into_iter()
        .map(|v| (photo.id, v))
        .collect();
    assert_eq!(
        media.variants_of(&[photo.id]).await.unwrap(),
        expected,
        "replaced whole"
    );

    // A repeated job changes nothing.
    let again = media
        .finish_processing(photo.id, 1, 1, "other".into(), Vec::new(), at(60))
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(reload(files, photo.id).await, ready);
    assert_eq!(media.variants_of(&[photo.id]).await.unwrap(), expected);

    // Only from processing.
    let uploading = create(files, new_file(&ann, 11, "image/png", 100)).await;
    assert!(files.begin_upload(uploading.id, at(12)).await.unwrap());
    let uploading = reload(files, uploading.id).await;
    assert_eq!(finish(db, uploading.id, 60).await, None);
    assert_eq!(reload(files, uploading.id).await, uploading);
    let failed = uploaded(db, &ann, 12, "image/png", FileStatus::Processing).await;
    let failure = Failure {
        code: ErrorCode::ImageTooLarge,
        detail: "too many pixels".into(),
    };
    let failed = files
        .fail_file(failed.id, failure, at(20))
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(finish(db, failed.id, 60).await, None);
    assert_eq!(reload(files, failed.id).await, failed);
    assert_eq!(finish(db, Id::new(), 60).await, None);
    assert_eq!(rows(db, "file_variants").await, 3);

    // Files in the order asked for, each once; files without variants give none.
    let second = uploaded(db, &ann, 13, "image/webp", FileStatus::Processing).await;
    let thumb = smallest_first().remove(0);
    media
        .finish_processing(
            second.id,
            150,
            150,
            BLURHASH.into(),
            vec![thumb.clone()],
            at(70),
        )
        .await
        .unwrap()
        .expect("was processing");
    let mut both = vec![(second.id, thumb)];
    both.extend(expected.clone());
    assert_eq!(
        media
            .variants_of(&[second.id, uploading.id, photo.id, second.id, Id::new()])
            .await
            .unwrap(),
        both
    );
    assert!(media.variants_of(&[]).await.unwrap().is_empty());
}

pub async fn posts_with_media_are_created_whole(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let ann = user(repo, "ann").await;
    let with_variants = processed(db, &ann, 1).await;
    let plain = uploaded(db, &ann, 2, "image/webp", FileStatus::Ready).await;
    let unrelated = uploaded(db, &ann, 3, "image/png", FileStatus::Ready).await;
    let usage = files.usage(ann.id).await.unwrap();

    let fresh = [
        new_file(&ann, 10, "image/jpeg", 1000),
        new_file(&ann, 11, "image/png", 2000),
    ];
    // The status given is not consulted: a post with photos starts pending.
    let post = NewPost {
        status: PostStatus::Published,
        ..new_post(&ann, 20)
    };
    let (created, new_files) = post_with(
        media,
        post.clone(),
        fresh.to_vec(),
        vec![plain.id, with_variants.id],
    )
    .await;
    assert_eq!(
        created,
        PostRecord {
            id: post.id,
            author: ann.summary(),
            caption: post.caption.clone(),
            status: PostStatus::Pending,
            like_count: 0,
            comment_count: 0,
            liked_by_me: false,
            created_at: at(20),
            updated_at: at(20),
        }
    );
    assert_eq!(post_by_id(db, post.id).await, Some(created.clone()));
    assert_eq!(
        author(db, &ann).await.posts_count,
        0,
        "pending posts do not count"
    );

    // The new files as `create_files` makes them, in order.
    assert_eq!(ids(&new_files), vec![fresh[0].id, fresh[1].id]);
    for (file, new) in new_files.iter().zip(&fresh) {
        assert_eq!(file.status, FileStatus::Pending);
        assert_eq!((file.size, &file.tags), (new.size, &new.tags));
        assert_eq!(reload(files, file.id).await, *file);
    }
    assert_eq!(
        files.usage(ann.id).await.unwrap(),
        Usage {
            uploads_open: usage.uploads_open + 2,
            bytes_stored: usage.bytes_stored + 3000,
        }
    );

    // New files first, then the attached ones, each whole with its tags and variants.
    let found = media.media_of_posts(&[post.id]).await.unwrap();
    let order = [fresh[0].id, fresh[1].id, plain.id, with_variants.id];
    assert_eq!(
        media_files(&found),
        order
            .iter()
            .enumerate()
            .map(|(i, id)| (post.id, i as u32, *id))
            .collect::<Vec<_>>()
    );
    for m in &found {
        assert_eq!(m.file, reload(files, m.file.id).await);
        let expected = if m.file.id == with_variants.id {
            smallest_first()
        } else {
            Vec::new()
        };
        assert_eq!(m.variants, expected, "variants of {}", m.file.id);
    }
    for id in order {
        assert_eq!(media.post_of_file(id).await.unwrap(), Some(post.id));
    }
    assert_eq!(media.post_of_file(unrelated.id).await.unwrap(), None);
    assert_eq!(media.post_of_file(Id::new()).await.unwrap(), None);

    // Several posts: in the order asked for, each once; unknown posts give nothing.
    let (other, _) = post_with(media, new_post(&ann, 30), Vec::new(), vec![unrelated.id]).await;
    let both = media
        .media_of_posts(&[other.id, Id::new(), post.id, other.id])
        .await
        .unwrap();
    let mut expected = vec![(other.id, 0, unrelated.id)];
    expected.extend(media_files(&found));
    assert_eq!(media_files(&both), expected);
    assert!(media.media_of_posts(&[]).await.unwrap().is_empty());
    assert_eq!(rows(db, "post_media").await, 5);
}

pub async fn posts_without_media_are_published_at_once(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let ann = user(repo, "ann").await;
    // Attaching nothing and uploading nothing needs no allowance, even one already used up.
    create(files, new_file(&ann, 1, "image/jpeg", 100)).await;
    let spent = UploadAllowance {
        max_open_uploads: 0,
        storage_quota: 0,
    };
    let post = new_post(&ann, 10);
    let (created, new_files) = media
        .create_post_with_media(post.clone(), Vec::new(), Vec::new(), spent)
        .await
        .unwrap()
        .expect("nothing to refuse");
    assert_eq!(created.status, PostStatus::Published);
    assert!(new_files.is_empty());
    assert_eq!(post_by_id(db, post.id).await, Some(created));
    assert_eq!(author(db, &ann).await.posts_count, 1);
    assert!(media.media_of_posts(&[post.id]).await.unwrap().is_empty());
    assert_eq!(
        media.publish_post_if_ready(post.id, at(20)).await.unwrap(),
        PublishOutcome::NotPending
    );
    assert_eq!(author(db, &ann).await.posts_count, 1);

    // No author, no post.
    let orphan = media
        .create_post_with_media(
            NewPost {
                author_id: Id::new(),
                ..new_post(&ann, 11)
            },
            Vec::new(),
            Vec::new(),
            ROOMY,
        )
        .await;
    assert!(matches!(orphan, Err(RepoError::Conflict(_))), "{orphan:?}");
}

pub async fn refused_posts_write_nothing(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let (ann, bob) = (user(repo, "ann").await, user(repo, "bob").await);
    create(files, new_file(&ann, 1, "image/jpeg", 100)).await;
    let good = uploaded(db, &ann, 2, "image/jpeg", FileStatus::Ready).await;
    let theirs = uploaded(db, &bob, 3, "image/jpeg", FileStatus::Ready).await;
    let gif = uploaded(db, &ann, 4, "image/gif", FileStatus::Ready).await;
    let text = uploaded(db, &ann, 5, "text/plain", FileStatus::Ready).await;
    let processing = uploaded(db, &ann, 6, "image/png", FileStatus::Processing).await;
    let pending = create(files, new_file(&ann, 7, "image/png", 100)).await;
    let failed = uploaded(db, &ann, 8, "image/png", FileStatus::Processing).await;
    files
        .fail_file(
            failed.id,
            Failure {
                code: ErrorCode::ImageTooLarge,
                detail: "big".into(),
            },
            at(9),
        )
        .await
        .unwrap();
    let used = uploaded(db, &ann, 9, "image/webp", FileStatus::Ready).await;
    post_with(media, new_post(&ann, 10), Vec::new(), vec![used.id]).await;
    let usage = files.usage(ann.id).await.unwrap();
    assert_eq!(usage.uploads_open, 2);
    let before = snapshot(db).await;

    // Over the allowance: refused whole, whatever is attached.
    let tight = UploadAllowance {
        max_open_uploads: 3,
        storage_quota: usage.bytes_stored + 150,
    };
    let two = vec![
        new_file(&ann, 20, "image/jpeg", 10),
        new_file(&ann, 21, "image/jpeg", 10),
    ];
    let outcome = media
        .create_post_with_media(new_post(&ann, 20), two, vec![good.id], tight)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Err(PostMediaRefusal::Allowance(
            AllowanceRefusal::TooManyUploads { open: 4 }
        ))
    );
    let big = vec![new_file(&ann, 22, "image/jpeg", 151)];
    let outcome = media
        .create_post_with_media(new_post(&ann, 22), big, vec![good.id], tight)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Err(PostMediaRefusal::Allowance(
            AllowanceRefusal::QuotaExceeded {
                used: usage.bytes_stored + 151
            }
        ))
    );
    assert_eq!(snapshot(db).await, before);

    // Attached files that cannot go on the post: the first such is named, nothing written.
    let absent = Id::new();
    for bad in [
        theirs.id,
        gif.id,
        text.id,
        processing.id,
        pending.id,
        failed.id,
        used.id,
        absent,
        good.id,
    ] {
        let outcome = media
            .create_post_with_media(
                new_post(&ann, 30),
                vec![new_file(&ann, 30, "image/jpeg", 10)],
                vec![good.id, bad, gif.id],
                ROOMY,
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Err(PostMediaRefusal::FileUnavailable(bad)),
            "{bad}"
        );
        assert_eq!(snapshot(db).await, before, "attaching {bad}");
    }
    assert_eq!(files.usage(ann.id).await.unwrap(), usage);
    assert_eq!(author(db, &ann).await.posts_count, 0);

    // The same post without the bad file goes through.
    let (post, new_files) = post_with(
        media,
        new_post(&ann, 40),
        vec![new_file(&ann, 40, "image/jpeg", 10)],
        vec![good.id],
    )
    .await;
    assert_eq!(new_files.len(), 1);
    assert_eq!(media.media_of_posts(&[post.id]).await.unwrap().len(), 2);
}

pub async fn publishing_waits_for_every_photo(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let ann = user(repo, "ann").await;
    let (post, new_files) = post_with(
        media,
        new_post(&ann, 10),
        vec![
            new_file(&ann, 10, "image/jpeg", 10),
            new_file(&ann, 11, "image/png", 10),
        ],
        Vec::new(),
    )
    .await;
    let still = |ms| media.publish_post_if_ready(post.id, at(ms));
    assert_eq!(still(20).await.unwrap(), PublishOutcome::StillPending);

    // One by one: uploading, processing, ready.
    for (i, file) in new_files.iter().enumerate() {
        assert!(files.begin_upload(file.id, at(30)).await.unwrap());
        assert_eq!(still(31).await.unwrap(), PublishOutcome::StillPending);
        media
            .complete_upload_for_processing(
                file.id,
                result(FileStatus::Processing),
                process_file_job(file.id, 0, at(32)),
                at(32),
            )
            .await
            .unwrap()
            .expect("was uploading");
        assert_eq!(still(33).await.unwrap(), PublishOutcome::StillPending);
        finish(db, file.id, 34).await.expect("was processing");
        if i == 0 {
            assert_eq!(still(35).await.unwrap(), PublishOutcome::StillPending);
        }
    }
    assert_eq!(
        post_by_id(db, post.id).await.unwrap().status,
        PostStatus::Pending
    );
    assert_eq!(author(db, &ann).await.posts_count, 0);

    let outcome = still(50).await.unwrap();
    let published = post_by_id(db, post.id).await.expect("post exists");
    assert_eq!(outcome, PublishOutcome::Published(published.clone()));
    assert_eq!(
        published,
        PostRecord {
            status: PostStatus::Published,
            updated_at: at(50),
            ..post.clone()
        }
    );
    assert_eq!(author(db, &ann).await.posts_count, 1);
    let listed = repo
        .posts_by_author(
            ann.id,
            false,
            None,
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.items, vec![published.clone()]);

    // Once only.
    assert_eq!(still(60).await.unwrap(), PublishOutcome::NotPending);
    assert_eq!(post_by_id(db, post.id).await, Some(published));
    assert_eq!(author(db, &ann).await.posts_count, 1);
    assert_eq!(
        media
            .publish_post_if_ready(Id::new(), at(60))
            .await
            .unwrap(),
        PublishOutcome::NotPending
    );

    // Attached ready photos only: publishable at once.
    let ready = uploaded(db, &ann, 70, "image/png", FileStatus::Ready).await;
    let (second, _) = post_with(media, new_post(&ann, 70), Vec::new(), vec![ready.id]).await;
    assert_eq!(second.status, PostStatus::Pending);
    assert!(matches!(
        media.publish_post_if_ready(second.id, at(71)).await.unwrap(),
        PublishOutcome::Published(p) if p.status == PostStatus::Published && p.updated_at == at(71)
    ));
    assert_eq!(author(db, &ann).await.posts_count, 2);

    // A failed photo is not ready: the post stays pending (failing it is the caller's call).
    let (third, photos) = post_with(
        media,
        new_post(&ann, 80),
        vec![new_file(&ann, 80, "image/jpeg", 10)],
        Vec::new(),
    )
    .await;
    files
        .fail_file(
            photos[0].id,
            Failure {
                code: ErrorCode::ContentMismatch,
                detail: "x".into(),
            },
            at(81),
        )
        .await
        .unwrap();
    assert_eq!(
        media.publish_post_if_ready(third.id, at(82)).await.unwrap(),
        PublishOutcome::StillPending
    );
    assert_eq!(author(db, &ann).await.posts_count, 2);
}

pub async fn pending_posts_fail_once(db: &TestDb) {
    let (repo, media) = (db.repo(), db.media());
    let ann = user(repo, "ann").await;
    let (post, _) = post_with(
        media,
        new_post(&ann, 10),
        vec![new_file(&ann, 10, "image/jpeg", 10)],
        Vec::new(),
    )
    .await;
    assert!(media.fail_post(post.id, at(30)).await.unwrap());
    let failed = post_by_id(db, post.id).await.expect("post exists");
    assert_eq!(
        failed,
        PostRecord {
            status: PostStatus::Failed,
            updated_at: at(30),
            ..post.clone()
        }
    );
    assert!(!media.fail_post(post.id, at(40)).await.unwrap());
    assert_eq!(
        media.publish_post_if_ready(post.id, at(40)).await.unwrap(),
        PublishOutcome::NotPending
    );
    assert_eq!(post_by_id(db, post.id).await, Some(failed));
    assert_eq!(author(db, &ann).await.posts_count, 0);

    // Published posts and absent ones do not fail.
    let (published, _) = post_with(media, new_post(&ann, 50), Vec::new(), Vec::new()).await;
    assert!(!media.fail_post(published.id, at(60)).await.unwrap());
    assert_eq!(post_by_id(db, published.id).await, Some(published));
    assert!(!media.fail_post(Id::new(), at(60)).await.unwrap());
    assert_eq!(author(db, &ann).await.posts_count, 1);
}

pub async fn racing_publishers_publish_once(db: &TestDb) {
    let (repo, media) = (db.repo(), db.media());
    let ann = user(repo, "ann").await;
    for round in 0..4i64 {
        let photos = [
            uploaded(db, &ann, round * 10, "image/jpeg", FileStatus::Ready).await,
            uploaded(db, &ann, round * 10 + 1, "image/png", FileStatus::Ready).await,
        ];
        let (post, _) =
            post_with(media, new_post(&ann, round * 10), Vec::new(), ids(&photos)).await;
        let racers = (0..8).map(|i| {
            let media = db.shared_media();
            tokio::spawn(async move { media.publish_post_if_ready(post.id, at(100 + i)).await })
        });
        let outcomes: Vec<PublishOutcome> = join_all(racers)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().unwrap())
            .collect();
        let published: Vec<&PostRecord> = outcomes
            .iter()
            .filter_map(|o| match o {
                PublishOutcome::Published(p) => Some(p),
                _ => None,
            })
            .collect();
        let not_pending = outcomes
            .iter()
            .filter(|o| **o == PublishOutcome::NotPending)
            .count();
        assert_eq!(
            (published.len(), not_pending),
            (1, 7),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(post_by_id(db, post.id).await.as_ref(), Some(published[0]));
        assert_eq!(author(db, &ann).await.posts_count, round + 1);
    }
}

pub async fn deleting_a_post_deletes_its_photos_and_enqueues_their_objects(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let (ann, bob) = (user(repo, "ann").await, user(repo, "bob").await);
    let first = processed(db, &ann, 1).await;
    let second = uploaded(db, &ann, 2, "image/webp", FileStatus::Ready).await;
    let (shown, _) = post_with(
        media,
        new_post(&ann, 10),
        Vec::new(),
        vec![second.id, first.id],
    )
    .await;
    assert!(matches!(
        media.publish_post_if_ready(shown.id, at(11)).await.unwrap(),
        PublishOutcome::Published(_)
    ));
    let kept = post_with(media, new_post(&ann, 12), Vec::new(), Vec::new())
        .await
        .0;
    let bobs_photo = uploaded(db, &bob, 3, "image/png", FileStatus::Ready).await;
    let bobs = post_with(media, new_post(&bob, 13), Vec::new(), vec![bobs_photo.id])
        .await
        .0;
    for post in [&shown, &kept] {
        repo.create_comment(shutter_app::ports::NewComment {
            id: Id::new(),
            post_id: post.id,
            author_id: bob.id,
            text: "nice".into(),
            created_at: at(20),
        })
        .await
        .unwrap();
    }
    db.exec(&format!(
        "INSERT INTO likes (post_id, user_id, created_at) VALUES ('{s}', '{b}', {T0}), ('{k}', '{b}', {T0}); \
         UPDATE posts SET like_count = like_count + 1 WHERE id IN ('{s}', '{k}')",
        s = shown.id,
        k = kept.id,
        b = bob.id
    ))
    .await;
    assert_eq!(author(db, &ann).await.posts_count, 2);
    assert!(delete_jobs(db).await.is_empty());

    assert!(media
        .delete_post_with_media(shown.id, at(100))
        .await
        .unwrap());
    assert_eq!(post_by_id(db, shown.id).await, None);
    assert_eq!(author(db, &ann).await.posts_count, 1);
    for table in ["comments", "likes", "post_media"] {
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE post_id = '{}'",
                shown.id
            ))
            .await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        files
            .existing_file_ids(&[first.id, second.id])
            .await
            .unwrap(),
        Vec::<Id>::new()
    );
    for table in ["file_tags", "file_variants"] {
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE file_id IN ('{}', '{}')",
                first.id, second.id
            ))
            .await,
            0,
            "{table}"
        );
    }
    let enqueued = delete_jobs(db).await;
    assert_eq!(enqueued.len(), 1, "{enqueued:?}");
    assert_delete_job(&enqueued[0], &[second.id, first.id], 100);

    // Everything else is as it was.
    let kept_now = post_by_id(db, kept.id).await.expect("kept");
    assert_eq!((kept_now.comment_count, kept_now.like_count), (1, 1));
    assert_eq!(post_by_id(db, bobs.id).await, Some(bobs.clone()));
    assert_eq!(reload(files, bobs_photo.id).await, bobs_photo);

    // A pending post goes the same way, its photos in position order, with no count to fix.
    let attached = uploaded(db, &ann, 30, "image/png", FileStatus::Ready).await;
    let (pending, fresh) = post_with(
        media,
        new_post(&ann, 31),
        vec![new_file(&ann, 31, "image/jpeg", 10)],
        vec![attached.id],
    )
    .await;
    assert!(media
        .delete_post_with_media(pending.id, at(200))
        .await
        .unwrap());
    assert_eq!(author(db, &ann).await.posts_count, 1);
    let enqueued = delete_jobs(db).await;
    assert_eq!(enqueued.len(), 2, "{enqueued:?}");
    assert_delete_job(&enqueued[1], &[fresh[0].id, attached.id], 200);

    // Absent: nothing. No photos: no job.
    assert!(!media
        .delete_post_with_media(pending.id, at(300))
        .await
        .unwrap());
    assert!(!media
        .delete_post_with_media(Id::new(), at(300))
        .await
        .unwrap());
    assert!(media
        .delete_post_with_media(kept.id, at(300))
        .await
        .unwrap());
    assert_eq!(author(db, &ann).await.posts_count, 0);
    assert_eq!(delete_jobs(db).await.len(), 2);
    assert_eq!(
        rows(db, "post_media").await,
        1,
        "only bob's photo is on a post"
    );
    assert_eq!(rows(db, "posts").await, 1);
}

pub async fn plain_post_deletes_unlink_their_photos(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let ann = user(repo, "ann").await;
    let photo = processed(db, &ann, 1).await;
    let (post, _) = post_with(media, new_post(&ann, 10), Vec::new(), vec![photo.id]).await;
    media.publish_post_if_ready(post.id, at(11)).await.unwrap();
    assert_eq!(author(db, &ann).await.posts_count, 1);

    assert!(repo.delete_post(post.id).await.unwrap());
    assert_eq!(author(db, &ann).await.posts_count, 0);
    assert_eq!(rows(db, "post_media").await, 0);
    assert_eq!(media.post_of_file(photo.id).await.unwrap(), None);
    // The photo stays (`Repo::delete_post` leaves files alone) and is free for another post.
    assert_eq!(reload(files, photo.id).await, photo);
    assert_eq!(media.variants_of(&[photo.id]).await.unwrap().len(), 3);
    let (again, _) = post_with(media, new_post(&ann, 20), Vec::new(), vec![photo.id]).await;
    assert_eq!(media.post_of_file(photo.id).await.unwrap(), Some(again.id));
    assert!(db.jobs().list_jobs(None, 10).await.unwrap().is_empty());
}

pub async fn files_in_use_are_not_deleted(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let ann = user(repo, "ann").await;
    let on_post = processed(db, &ann, 1).await;
    let (post, fresh) = post_with(
        media,
        new_post(&ann, 10),
        vec![new_file(&ann, 10, "image/jpeg", 10)],
        vec![on_post.id],
    )
    .await;

    // Attached and new photos alike are in use, whichever port is asked.
    for id in [on_post.id, fresh[0].id] {
        let before = reload(files, id).await;
        assert_eq!(
            media.delete_file_unless_used(id, at(20)).await.unwrap(),
            FileDeletion::InUse
        );
        let refused = files.delete_file(id).await;
        assert!(
            matches!(&refused, Err(RepoError::Conflict(rule)) if rule == "file_in_use"),
            "{refused:?}"
        );
        assert_eq!(reload(files, id).await, before);
    }
    assert_eq!(media.variants_of(&[on_post.id]).await.unwrap().len(), 3);
    assert!(db.jobs().list_jobs(None, 10).await.unwrap().is_empty());

    // An unused file goes with its tags and variants, and its bytes are enqueued.
    let unused = processed(db, &ann, 30).await;
    assert_eq!(
        media
            .delete_file_unless_used(unused.id, at(40))
            .await
            .unwrap(),
        FileDeletion::Deleted
    );
    assert_eq!(files.file_by_id(unused.id).await.unwrap(), None);
    assert!(media.variants_of(&[unused.id]).await.unwrap().is_empty());
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM file_tags WHERE file_id = '{}'",
            unused.id
        ))
        .await,
        0
    );
    let enqueued = delete_jobs(db).await;
    assert_eq!(enqueued.len(), 1, "{enqueued:?}");
    assert_delete_job(&enqueued[0], &[unused.id], 40);
    assert_eq!(
        media
            .delete_file_unless_used(unused.id, at(50))
            .await
            .unwrap(),
        FileDeletion::Missing
    );
    assert_eq!(delete_jobs(db).await.len(), 1);

    // `FileRepo::delete_file` deletes unused files as before (and enqueues nothing).
    let plain = uploaded(db, &ann, 60, "text/plain", FileStatus::Ready).await;
    assert!(files.delete_file(plain.id).await.unwrap());
    assert!(!files.delete_file(plain.id).await.unwrap());
    assert_eq!(delete_jobs(db).await.len(), 1);

    // Once the post is gone, so are its photos.
    assert!(media.delete_post_with_media(post.id, at(70)).await.unwrap());
    assert_eq!(
        media
            .delete_file_unless_used(on_post.id, at(80))
            .await
            .unwrap(),
        FileDeletion::Missing
    );
    assert_eq!(rows(db, "files").await, 0);
}

pub async fn deleting_a_user_enqueues_all_their_objects(db: &TestDb) {
    let (repo, files, media) = (db.repo(), db.files(), db.media());
    let (gone, bob) = (user(repo, "gone").await, user(repo, "bob").await);
    // Their files in every state: on a published post, on a pending post, unused.
    let shown = processed(db, &gone, 1).await;
    let (published, _) = post_with(media, new_post(&gone, 10), Vec::new(), vec![shown.id]).await;
    media
        .publish_post_if_ready(published.id, at(11))
        .await
        .unwrap();
    let (_, fresh) = post_with(
        media,
        new_post(&gone, 12),
        vec![
            new_file(&gone, 12, "image/jpeg", 10),
            new_file(&gone, 13, "image/png", 10),
        ],
        Vec::new(),
    )
    .await;
    let unused = processed(db, &gone, 20).await;
    let waiting = create(files, new_file(&gone, 21, "application/pdf", 10)).await;
    // Bob's post, which the user commented on and liked, and Bob's comment on theirs.
    let bobs_photo = uploaded(db, &bob, 30, "image/png", FileStatus::Ready).await;
    let (bobs, _) = post_with(media, new_post(&bob, 30), Vec::new(), vec![bobs_photo.id]).await;
    media.publish_post_if_ready(bobs.id, at(31)).await.unwrap();
    for (post, by) in [(&bobs, &gone), (&published, &bob)] {
        repo.create_comment(shutter_app::ports::NewComment {
            id: Id::new(),
            post_id: post.id,
            author_id: by.id,
            text: "hi".into(),
            created_at: at(40),
        })
        .await
        .unwrap();
    }
    db.exec(&format!(
        "INSERT INTO likes (post_id, user_id, created_at) VALUES ('{p}', '{g}', {T0}); \
         UPDATE posts SET like_count = like_count + 1 WHERE id = '{p}'",
        p = bobs.id,
        g = gone.id
    ))
    .await;
    let bobs_before = post_by_id(db, bobs.id).await.unwrap();
    assert_eq!((bobs_before.comment_count, bobs_before.like_count), (1, 1));

    assert!(media
        .delete_user_with_objects(gone.id, at(100))
        .await
        .unwrap());
    assert_eq!(repo.user_by_id(gone.id).await.unwrap(), None);
    let mut all = vec![shown.id, fresh[0].id, fresh[1].id, unused.id, waiting.id];
    all.sort();
    assert_eq!(
        files.existing_file_ids(&all).await.unwrap(),
        Vec::<Id>::new()
    );
    let enqueued = delete_jobs(db).await;
    assert_eq!(enqueued.len(), 1, "{enqueued:?}");
    assert_delete_job(&enqueued[0], &all, 100);

    // Only Bob's rows are left, his counters fixed.
    assert_eq!(rows(db, "posts").await, 1);
    assert_eq!(rows(db, "files").await, 1);
    assert_eq!(rows(db, "post_media").await, 1);
    assert_eq!(rows(db, "file_variants").await, 0);
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM file_tags WHERE file_id <> '{}'",
            bobs_photo.id
        ))
        .await,
        0
    );
    assert_eq!(rows(db, "comments").await, 0);
    let bobs_after = post_by_id(db, bobs.id).await.unwrap();
    assert_eq!((bobs_after.comment_count, bobs_after.like_count), (0, 0));
    assert_eq!(author(db, &bob).await.posts_count, 1);
    assert_eq!(reload(files, bobs_photo.id).await, bobs_photo);

    // Absent: nothing. No files: no job.
    assert!(!media
        .delete_user_with_objects(gone.id, at(200))
        .await
        .unwrap());
    let empty = user(repo, "empty").await;
    assert!(media
        .delete_user_with_objects(empty.id, at(200))
        .await
        .unwrap());
    assert_eq!(repo.user_by_id(empty.id).await.unwrap(), None);
    assert_eq!(delete_jobs(db).await.len(), 1);
}

pub async fn plain_user_deletes_are_not_blocked_by_media(db: &TestDb) {
    let (repo, media) = (db.repo(), db.media());
    let ann = user(repo, "ann").await;
    let photo = processed(db, &ann, 1).await;
    let (post, _) = post_with(
        media,
        new_post(&ann, 10),
        vec![new_file(&ann, 10, "image/jpeg", 10)],
        vec![photo.id],
    )
    .await;
    assert_eq!(rows(db, "post_media").await, 2);

    assert!(repo.delete_user(ann.id).await.unwrap());
    assert_eq!(post_by_id(db, post.id).await, None);
    for table in [
        "users",
        "posts",
        "files",
        "file_tags",
        "file_variants",
        "post_media",
        "jobs",
    ] {
        assert_eq!(rows(db, table).await, 0, "{table}");
    }
}
