//! What every `FileRepo` adapter must do. Each scenario gets a fresh, migrated database.

use std::collections::HashSet;

use futures::future::join_all;
use shutter_app::ports::{
    AllowanceRefusal, FileChange, FileFilter, FileRepo, NewFile, RepoError, UploadAllowance,
    UploadResult, Usage,
};
use shutter_core::domain::{FileStatus, Visibility};
use shutter_core::model::{Failure, FileRecord, User};
use shutter_core::{ErrorCode, Id, PageRequest, Timestamp};

use crate::backends::TestDb;
use crate::scenarios::{at, early_id, user, T0};

/// Limits no scenario reaches unless it means to.
const ROOMY: UploadAllowance = UploadAllowance {
    max_open_uploads: 10_000,
    storage_quota: 1 << 50,
};

/// Upload windows close an hour after creation.
const WINDOW_MS: i64 = 3_600_000;

fn new_file(owner: &User, ms: i64, content_type: &str, size: u64) -> NewFile {
    NewFile {
        id: Id::new(),
        owner_id: owner.id,
        filename: format!("file-{ms}.bin"),
        content_type: content_type.to_owned(),
        size,
        declared_sha256: None,
        declared_md5: None,
        visibility: Visibility::Private,
        tags: Vec::new(),
        created_at: at(ms),
        upload_expires_at: at(ms + WINDOW_MS),
    }
}

async fn create(files: &dyn FileRepo, new: NewFile) -> FileRecord {
    let owner = new.owner_id;
    files
        .create_files(owner, vec![new], ROOMY)
        .await
        .unwrap()
        .expect("within the allowance")
        .remove(0)
}

async fn reload(files: &dyn FileRepo, file: &FileRecord) -> FileRecord {
    files
        .file_by_id(file.id)
        .await
        .unwrap()
        .expect("file exists")
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

/// Uploads the file's bytes and completes it as `status`.
async fn finish(files: &dyn FileRepo, file: &FileRecord, status: FileStatus) -> FileRecord {
    assert!(files.begin_upload(file.id, at(1)).await.unwrap());
    files
        .complete_upload(file.id, result(status), at(2))
        .await
        .unwrap()
        .expect("was uploading")
}

fn failure(code: ErrorCode) -> Failure {
    Failure {
        code,
        detail: format!("{} happened", code.as_str()),
    }
}

fn ids(files: &[FileRecord]) -> Vec<Id> {
    files.iter().map(|f| f.id).collect()
}

/// Newest first by `(created_at, id)`, as file lists are ordered.
fn newest_first(files: &mut [FileRecord]) {
    files.sort_by_key(|f| std::cmp::Reverse((f.created_at, f.id)));
}

async fn file_rows(db: &TestDb, owner: &User) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) FROM files WHERE owner_id = '{}'",
        owner.id
    ))
    .await
}

pub async fn files_are_created_with_their_metadata(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let ann = user(repo, "ann").await;

    let mut photo = new_file(&ann, 10, "image/jpeg", 2048);
    photo.filename = "beach.jpg".into();
    photo.declared_sha256 = Some("12".repeat(32));
    photo.declared_md5 = Some("34".repeat(16));
    photo.visibility = Visibility::Public;
    // Order kept, repeats dropped.
    photo.tags = ["summer", "beach", "summer", "2026"]
        .map(String::from)
        .to_vec();
    let mut notes = new_file(&ann, 10, "text/plain", 7);
    notes.tags = Vec::new();

    let created = files
        .create_files(ann.id, vec![photo.clone(), notes.clone()], ROOMY)
        .await
        .unwrap()
        .expect("within the allowance");
    assert_eq!(
        ids(&created),
        vec![photo.id, notes.id],
        "in the order given"
    );
    let expected = FileRecord {
        id: photo.id,
        owner_id: ann.id,
        filename: "beach.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 2048,
        declared_sha256: photo.declared_sha256.clone(),
        declared_md5: photo.declared_md5.clone(),
        sha256: None,
        md5: None,
        visibility: Visibility::Public,
        tags: ["summer", "beach", "2026"].map(String::from).to_vec(),
        status: FileStatus::Pending,
        bytes_received: 0,
        failure: None,
        width: None,
        height: None,
        blurhash: None,
        upload_expires_at: at(10 + WINDOW_MS),
        created_at: at(10),
        updated_at: at(10),
    };
    assert_eq!(created[0], expected);
    assert_eq!(created[1].tags, Vec::<String>::new());
    assert_eq!(created[1].visibility, Visibility::Private);
    assert_eq!(reload(files, &created[0]).await, expected);
    assert_eq!(reload(files, &created[1]).await, created[1]);
    assert_eq!(files.file_by_id(Id::new()).await.unwrap(), None);

    // Nothing to create is nothing done.
    assert_eq!(
        files.create_files(ann.id, Vec::new(), ROOMY).await.unwrap(),
        Ok(Vec::new())
    );
    // An unknown owner is a broken reference; the same id twice a duplicate. Neither leaves
    // anything behind.
    let ghost = Id::new();
    let mut orphan = new_file(&ann, 20, "image/png", 1);
    orphan.owner_id = ghost;
    match files.create_files(ghost, vec![orphan], ROOMY).await {
        Err(RepoError::Conflict(rule)) => assert_eq!(rule, "missing_reference"),
        other => panic!("expected a missing reference, got {other:?}"),
    }
    let fresh = new_file(&ann, 30, "image/png", 1);
    let mut again = photo.clone();
    again.created_at = at(30);
    match files
        .create_files(ann.id, vec![fresh.clone(), again], ROOMY)
        .await
    {
        Err(RepoError::Conflict(_)) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(files.file_by_id(fresh.id).await.unwrap(), None);
    assert_eq!(file_rows(db, &ann).await, 2);

    let unknown = Id::new();
    assert_eq!(
        files
            .existing_file_ids(&[unknown, notes.id, photo.id, notes.id])
            .await
            .unwrap(),
        vec![notes.id, photo.id]
    );
    assert_eq!(
        files.existing_file_ids(&[]).await.unwrap(),
        Vec::<Id>::new()
    );

    assert!(files.delete_file(photo.id).await.unwrap());
    assert!(!files.delete_file(photo.id).await.unwrap());
    assert_eq!(files.file_by_id(photo.id).await.unwrap(), None);
    assert_eq!(
        files
            .existing_file_ids(&[photo.id, notes.id])
            .await
            .unwrap(),
        vec![notes.id]
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM file_tags WHERE file_id = '{}'",
            photo.id
        ))
        .await,
        0,
        "tags go with their file"
    );
}

pub async fn file_limits_refuse_whole_batches(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let bea = user(repo, "bea").await;
    let limits = UploadAllowance {
        max_open_uploads: 3,
        storage_quota: 1000,
    };
    let first = files
        .create_files(
            bea.id,
            vec![
                new_file(&bea, 1, "image/png", 300),
                new_file(&bea, 2, "image/png", 300),
            ],
            limits,
        )
        .await
        .unwrap()
        .expect("2 of 3 uploads, 600 of 1000 bytes");
    let before = files.usage(bea.id).await.unwrap();
    assert_eq!(
        before,
        Usage {
            bytes_stored: 600,
            uploads_open: 2
        }
    );

    let refused = [
        // Two more would make four open uploads (and the bytes would fit).
        (
            vec![(3, 10), (4, 10)],
            AllowanceRefusal::TooManyUploads { open: 4 },
        ),
        // 401 more bytes would make 1001.
        (
            vec![(5, 401)],
            AllowanceRefusal::QuotaExceeded { used: 1001 },
        ),
        // Both over: open uploads are named first.
        (
            vec![(6, 500), (7, 500)],
            AllowanceRefusal::TooManyUploads { open: 4 },
        ),
    ];
    for (batch, refusal) in refused {
        let new: Vec<NewFile> = batch
            .iter()
            .map(|&(ms, size)| new_file(&bea, ms, "image/png", size))
            .collect();
        let new_ids: Vec<Id> = new.iter().map(|f| f.id).collect();
        assert_eq!(
            files.create_files(bea.id, new, limits).await.unwrap(),
            Err(refusal)
        );
        assert_eq!(files.existing_file_ids(&new_ids).await.unwrap(), vec![]);
        assert_eq!(files.usage(bea.id).await.unwrap(), before);
        assert_eq!(file_rows(db, &bea).await, 2);
    }

    // Exactly at both limits is allowed.
    files
        .create_files(bea.id, vec![new_file(&bea, 8, "image/png", 400)], limits)
        .await
        .unwrap()
        .expect("3 of 3 uploads, 1000 of 1000 bytes");
    assert_eq!(
        files
            .create_files(bea.id, vec![new_file(&bea, 9, "image/png", 0)], limits)
            .await
            .unwrap(),
        Err(AllowanceRefusal::TooManyUploads { open: 4 })
    );

    // A failed file frees its upload slot and its bytes; a finished one only its slot.
    files
        .fail_file(first[0].id, failure(ErrorCode::SizeMismatch), at(10))
        .await
        .unwrap()
        .expect("exists");
    finish(files, &first[1], FileStatus::Ready).await;
    assert_eq!(
        files.usage(bea.id).await.unwrap(),
        Usage {
            bytes_stored: 700,
            uploads_open: 1
        }
    );
    assert_eq!(
        files
            .create_files(bea.id, vec![new_file(&bea, 11, "image/png", 301)], limits)
            .await
            .unwrap(),
        Err(AllowanceRefusal::QuotaExceeded { used: 1001 })
    );
    files
        .create_files(
            bea.id,
            vec![
                new_file(&bea, 12, "image/png", 150),
                new_file(&bea, 13, "image/png", 150),
            ],
            limits,
        )
        .await
        .unwrap()
        .expect("3 of 3 uploads, 1000 of 1000 bytes");
}

pub async fn racing_file_creations_fit_under_the_limits(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let cy = user(repo, "cy").await;
    let other = user(repo, "cy_other").await;

    // Room for one more upload: of two racing requests exactly one gets it.
    let one_slot = UploadAllowance {
        max_open_uploads: 1,
        storage_quota: 1 << 40,
    };
    let outcomes = join_all(
        (0..2)
            .map(|i| files.create_files(cy.id, vec![new_file(&cy, i, "image/png", 10)], one_slot)),
    )
    .await;
    let won = outcomes.iter().filter(|o| matches!(o, Ok(Ok(_)))).count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Err(AllowanceRefusal::TooManyUploads { open: 2 }))))
        .count();
    assert_eq!((won, refused), (1, 1), "{outcomes:?}");
    assert_eq!(file_rows(db, &cy).await, 1);

    // Room for three more 100-byte files: of eight racers exactly three fit, and another
    // owner's racers do not count against it.
    let quota = UploadAllowance {
        max_open_uploads: 100,
        storage_quota: 10 + 300,
    };
    let outcomes = join_all((0..8).flat_map(|i| {
        [
            files.create_files(cy.id, vec![new_file(&cy, 100 + i, "image/png", 100)], quota),
            files.create_files(
                other.id,
                vec![new_file(&other, 100 + i, "image/png", 100)],
                quota,
            ),
        ]
    }))
    .await;
    let (mut cy_won, mut other_won) = (0, 0);
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(created) if created[0].owner_id == cy.id => cy_won += 1,
            Ok(_) => other_won += 1,
            Err(refusal) => assert!(
                matches!(refusal, AllowanceRefusal::QuotaExceeded { used: 410 | 400 }),
                "{refusal:?}"
            ),
        }
    }
    assert_eq!((cy_won, other_won), (3, 3));
    assert_eq!(
        files.usage(cy.id).await.unwrap(),
        Usage {
            bytes_stored: 310,
            uploads_open: 4
        }
    );
    assert_eq!(files.usage(other.id).await.unwrap().bytes_stored, 300);
}

pub async fn usage_counts_open_uploads_and_stored_bytes(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let dee = user(repo, "dee").await;
    assert_eq!(files.usage(dee.id).await.unwrap(), Usage::default());
    assert_eq!(files.usage(Id::new()).await.unwrap(), Usage::default());

    let sizes = [1u64, 10, 100, 1_000, 10_000, 5_000_000_000];
    let mut made = Vec::new();
    for (i, size) in (0i64..).zip(sizes) {
        made.push(create(files, new_file(&dee, i, "application/zip", size)).await);
    }
    // pending, uploading, processing, ready, failed, and a big pending one.
    assert!(files.begin_upload(made[1].id, at(50)).await.unwrap());
    finish(files, &made[2], FileStatus::Processing).await;
    finish(files, &made[3], FileStatus::Ready).await;
    files
        .fail_file(made[4].id, failure(ErrorCode::ContentMismatch), at(60))
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(
        files.usage(dee.id).await.unwrap(),
        Usage {
            bytes_stored: 1 + 10 + 100 + 1_000 + 5_000_000_000,
            uploads_open: 3
        }
    );
    assert!(files.delete_file(made[5].id).await.unwrap());
    assert_eq!(
        files.usage(dee.id).await.unwrap(),
        Usage {
            bytes_stored: 1_111,
            uploads_open: 2
        }
    );
}

pub async fn file_filters_all_hold(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let eve = user(repo, "eve").await;
    let stranger = user(repo, "eve_other").await;

    let mut specs = Vec::new();
    for (ms, content_type, visibility, tags) in [
        (10, "image/png", Visibility::Public, vec!["cat", "pet"]),
        (20, "image/jpeg", Visibility::Private, vec!["cat"]),
        (30, "image/jpeg", Visibility::Public, vec!["dog", "pet"]),
        (40, "video/mp4", Visibility::Private, vec![]),
        (50, "imagery/x-raw", Visibility::Public, vec!["cat"]),
        (60, "application/pdf", Visibility::Private, vec!["pet"]),
        (60, "image/webp", Visibility::Private, vec![]),
    ] {
        let mut new = new_file(&eve, ms, content_type, 10);
        new.visibility = visibility;
        new.tags = tags.into_iter().map(String::from).collect();
        specs.push(create(files, new).await);
    }
    let [png, jpeg, dog, video, raw, pdf, webp] = specs.clone().try_into().unwrap();
    finish(files, &jpeg, FileStatus::Ready).await;
    finish(files, &dog, FileStatus::Ready).await;
    finish(files, &pdf, FileStatus::Processing).await;
    files
        .fail_file(video.id, failure(ErrorCode::SizeMismatch), at(70))
        .await
        .unwrap();
    // Another owner's matching files never show.
    let mut theirs = new_file(&stranger, 30, "image/jpeg", 10);
    theirs.tags = vec!["cat".into()];
    theirs.visibility = Visibility::Public;
    create(files, theirs).await;

    let eve_id = eve.id;
    let list = |filter: FileFilter| async move {
        let page = files
            .files_of_owner(eve_id, filter, PageRequest::first(100))
            .await
            .unwrap();
        assert!(page.next_cursor.is_none());
        page.items.into_iter().map(|f| f.id).collect::<Vec<_>>()
    };
    let (webp_or_pdf_first, webp_or_pdf_second) = if webp.id > pdf.id {
        (webp.id, pdf.id)
    } else {
        (pdf.id, webp.id)
    };
    assert_eq!(
        list(FileFilter::default()).await,
        vec![
            webp_or_pdf_first,
            webp_or_pdf_second,
            raw.id,
            video.id,
            dog.id,
            jpeg.id,
            png.id
        ]
    );
    let cases = [
        (
            FileFilter {
                visibility: Some(Visibility::Public),
                ..FileFilter::default()
            },
            vec![raw.id, dog.id, png.id],
        ),
        (
            FileFilter {
                tag: Some("cat".into()),
                ..FileFilter::default()
            },
            vec![raw.id, jpeg.id, png.id],
        ),
        (
            FileFilter {
                tag: Some("ca".into()),
                ..FileFilter::default()
            },
            vec![],
        ),
        (
            FileFilter {
                content_type: Some("image/jpeg".into()),
                ..FileFilter::default()
            },
            vec![dog.id, jpeg.id],
        ),
        (
            FileFilter {
                content_type: Some("image/*".into()),
                ..FileFilter::default()
            },
            vec![webp.id, dog.id, jpeg.id, png.id],
        ),
        (
            FileFilter {
                content_type: Some("image".into()),
                ..FileFilter::default()
            },
            vec![],
        ),
        (
            // No LIKE wildcards: `_` is a plain character.
            FileFilter {
                content_type: Some("imag_/*".into()),
                ..FileFilter::default()
            },
            vec![],
        ),
        (
            FileFilter {
                content_type: Some("IMAGE/*".into()),
                ..FileFilter::default()
            },
            vec![],
        ),
        (
            FileFilter {
                status: Some(FileStatus::Ready),
                ..FileFilter::default()
            },
            vec![dog.id, jpeg.id],
        ),
        (
            FileFilter {
                status: Some(FileStatus::Pending),
                ..FileFilter::default()
            },
            vec![webp.id, raw.id, png.id],
        ),
        (
            FileFilter {
                status: Some(FileStatus::Failed),
                ..FileFilter::default()
            },
            vec![video.id],
        ),
        (
            // Both bounds exclusive.
            FileFilter {
                created_after: Some(at(20)),
                created_before: Some(at(50)),
                ..FileFilter::default()
            },
            vec![video.id, dog.id],
        ),
        (
            FileFilter {
                created_after: Some(at(50)),
                ..FileFilter::default()
            },
            vec![webp_or_pdf_first, webp_or_pdf_second],
        ),
        (
            FileFilter {
                created_before: Some(at(10)),
                ..FileFilter::default()
            },
            vec![],
        ),
        (
            // Every filter at once.
            FileFilter {
                visibility: Some(Visibility::Public),
                tag: Some("pet".into()),
                content_type: Some("image/*".into()),
                status: Some(FileStatus::Ready),
                created_after: Some(at(10)),
                created_before: Some(at(31)),
            },
            vec![dog.id],
        ),
    ];
    for (filter, expected) in cases {
        let shown = format!("{filter:?}");
        assert_eq!(list(filter).await, expected, "{shown}");
    }
    // Tags filtered on come back whole, in order.
    let pets = files
        .files_of_owner(
            eve.id,
            FileFilter {
                tag: Some("pet".into()),
                ..FileFilter::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    let tags: Vec<Vec<String>> = pets.items.into_iter().map(|f| f.tags).collect();
    assert_eq!(
        tags,
        vec![
            vec!["pet".to_owned()],
            vec!["dog".to_owned(), "pet".to_owned()],
            vec!["cat".to_owned(), "pet".to_owned()]
        ]
    );
}

pub async fn file_pages_are_stable_while_files_arrive(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let fay = user(repo, "fay").await;
    let mut expected = Vec::new();
    for i in 0..22 {
        // Pairs share a millisecond, so ties on created_at are broken by id.
        let mut new = new_file(&fay, 1_000 + (i / 2) * 10, "image/png", 10);
        new.tags = vec![format!("t{i}"), "all".into()];
        expected.push(create(files, new).await);
    }
    newest_first(&mut expected);

    let filter = || FileFilter {
        tag: Some("all".into()),
        ..FileFilter::default()
    };
    let mut seen: Vec<FileRecord> = Vec::new();
    let mut after = None;
    let mut pages = 0i64;
    loop {
        let page = files
            .files_of_owner(fay.id, filter(), PageRequest { limit: 4, after })
            .await
            .unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().cloned());
        let Some(cursor) = page.next_cursor else {
            break;
        };
        pages += 1;
        assert!(pages < 20, "paging does not end");
        assert_eq!(Some(cursor), page.items.last().map(FileRecord::cursor));
        // Between two reads: a newer file, and two at the cursor's very millisecond, one
        // with a larger id (before the cursor in newest-first order: never shown) and one
        // with a smaller id (after it: shown on a later page).
        let same_ms = cursor.created_at.millis() - T0;
        let arrivals = [
            new_file(&fay, 100_000 + pages, "image/png", 10),
            NewFile {
                id: Id::new(),
                ..new_file(&fay, same_ms, "image/png", 10)
            },
            NewFile {
                id: early_id(u8::try_from(pages).unwrap()),
                ..new_file(&fay, same_ms, "image/png", 10)
            },
        ];
        for mut new in arrivals {
            new.tags = vec!["all".into()];
            let file = create(files, new).await;
            if (file.created_at, file.id) < (cursor.created_at, cursor.id) {
                expected.push(file);
            }
        }
        newest_first(&mut expected);
        after = Some(cursor);
    }
    assert!(pages >= 5);
    let seen_ids = ids(&seen);
    assert_eq!(
        seen_ids.iter().collect::<HashSet<_>>().len(),
        seen_ids.len(),
        "no repeats"
    );
    assert_eq!(seen_ids, ids(&expected), "no gaps, newest first");
    assert_eq!(seen, expected, "with all their tags");

    // A page that ends exactly at the last file has no next cursor.
    let all = files
        .files_of_owner(fay.id, FileFilter::default(), PageRequest::first(100))
        .await
        .unwrap();
    let total = u32::try_from(all.items.len()).unwrap();
    assert!(all.next_cursor.is_none());
    let exact = files
        .files_of_owner(fay.id, FileFilter::default(), PageRequest::first(total))
        .await
        .unwrap();
    assert!(exact.next_cursor.is_none());
    assert_eq!(exact.items, all.items);
    let short = files
        .files_of_owner(fay.id, FileFilter::default(), PageRequest::first(total - 1))
        .await
        .unwrap();
    assert!(short.next_cursor.is_some());
    let mut sorted = all.items.clone();
    newest_first(&mut sorted);
    assert_eq!(all.items, sorted);
    let nobody = files
        .files_of_owner(Id::new(), FileFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert!(nobody.items.is_empty() && nobody.next_cursor.is_none());
}

pub async fn upload_states_move_only_where_allowed(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let gus = user(repo, "gus").await;
    let file = create(files, new_file(&gus, 0, "image/png", 1000)).await;
    let status = |f: &FileRecord| (f.status, f.bytes_received, f.updated_at);

    // Progress and completion need an upload under way.
    files.record_progress(file.id, 10, at(1)).await.unwrap();
    files.pause_upload(file.id, 10, at(1)).await.unwrap();
    assert_eq!(
        files
            .complete_upload(file.id, result(FileStatus::Ready), at(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        status(&reload(files, &file).await),
        (FileStatus::Pending, 0, at(0))
    );

    assert!(files.begin_upload(file.id, at(2)).await.unwrap());
    files.record_progress(file.id, 400, at(3)).await.unwrap();
    assert_eq!(
        status(&reload(files, &file).await),
        (FileStatus::Uploading, 400, at(3))
    );
    // A resumed upload may begin again while uploading.
    assert!(files.begin_upload(file.id, at(4)).await.unwrap());
    files.pause_upload(file.id, 256, at(5)).await.unwrap();
    assert_eq!(
        status(&reload(files, &file).await),
        (FileStatus::Pending, 256, at(5))
    );
    files.record_progress(file.id, 300, at(6)).await.unwrap();
    assert_eq!(reload(files, &file).await.bytes_received, 256);

    assert!(files.begin_upload(file.id, at(7)).await.unwrap());
    files.record_progress(file.id, 1000, at(8)).await.unwrap();
    let done = files
        .complete_upload(file.id, result(FileStatus::Ready), at(9))
        .await
        .unwrap()
        .expect("was uploading");
    assert_eq!(
        (
            done.status,
            done.bytes_received,
            done.sha256.as_deref(),
            done.md5.as_deref(),
            done.width,
            done.height,
            done.updated_at,
            done.failure.as_ref()
        ),
        (
            FileStatus::Ready,
            1000,
            Some("ab".repeat(32).as_str()),
            Some("cd".repeat(16).as_str()),
            Some(640),
            Some(480),
            at(9),
            None
        )
    );
    assert_eq!(reload(files, &file).await, done);

    // A finished file takes no more bytes.
    assert!(!files.begin_upload(file.id, at(10)).await.unwrap());
    files.record_progress(file.id, 5, at(10)).await.unwrap();
    files.pause_upload(file.id, 0, at(10)).await.unwrap();
    assert_eq!(
        files
            .complete_upload(file.id, result(FileStatus::Ready), at(10))
            .await
            .unwrap(),
        None
    );
    assert_eq!(reload(files, &file).await, done);

    // Completion counts every declared byte, even when no progress was recorded (S3).
    let s3 = create(files, new_file(&gus, 20, "image/png", 777)).await;
    let processing = finish(files, &s3, FileStatus::Processing).await;
    assert_eq!(
        (processing.status, processing.bytes_received),
        (FileStatus::Processing, 777)
    );
    assert!(!files.begin_upload(s3.id, at(21)).await.unwrap());
    // Only `ready` and `processing` are completions.
    let odd = create(files, new_file(&gus, 30, "image/png", 1)).await;
    assert!(files.begin_upload(odd.id, at(31)).await.unwrap());
    assert!(files
        .complete_upload(odd.id, result(FileStatus::Pending), at(32))
        .await
        .is_err());
    assert_eq!(reload(files, &odd).await.status, FileStatus::Uploading);

    // Absent files.
    let nobody = Id::new();
    assert!(!files.begin_upload(nobody, at(40)).await.unwrap());
    files.record_progress(nobody, 1, at(40)).await.unwrap();
    files.pause_upload(nobody, 1, at(40)).await.unwrap();
    assert_eq!(
        files
            .complete_upload(nobody, result(FileStatus::Ready), at(40))
            .await
            .unwrap(),
        None
    );
}

pub async fn failing_works_from_any_state(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let hal = user(repo, "hal").await;
    let pending = create(files, new_file(&hal, 0, "image/png", 10)).await;
    let uploading = create(files, new_file(&hal, 1, "image/png", 10)).await;
    assert!(files.begin_upload(uploading.id, at(2)).await.unwrap());
    let processing = create(files, new_file(&hal, 3, "image/png", 10)).await;
    finish(files, &processing, FileStatus::Processing).await;
    let ready = create(files, new_file(&hal, 4, "image/png", 10)).await;
    finish(files, &ready, FileStatus::Ready).await;

    let codes = [
        ErrorCode::UploadExpired,
        ErrorCode::ChecksumMismatch,
        ErrorCode::ImageTooLarge,
        ErrorCode::Internal,
    ];
    for (i, (file, code)) in (0i64..).zip(
        [&pending, &uploading, &processing, &ready]
            .into_iter()
            .zip(codes),
    ) {
        let why = failure(code);
        let failed = files
            .fail_file(file.id, why.clone(), at(100 + i))
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(
            (failed.status, failed.failure.as_ref(), failed.updated_at),
            (FileStatus::Failed, Some(&why), at(100 + i))
        );
        assert_eq!(reload(files, file).await, failed);
    }
    // Failing again replaces the reason; a failed file cannot start over.
    let again = files
        .fail_file(pending.id, failure(ErrorCode::Internal), at(200))
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(again.failure, Some(failure(ErrorCode::Internal)));
    assert!(!files.begin_upload(pending.id, at(201)).await.unwrap());
    assert_eq!(
        files
            .fail_file(Id::new(), failure(ErrorCode::Internal), at(200))
            .await
            .unwrap(),
        None
    );
    // Every code survives the round trip through its text.
    for code in ErrorCode::ALL {
        let failed = files
            .fail_file(ready.id, failure(*code), at(300))
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(reload(files, &failed).await.failure, Some(failure(*code)));
    }
}

pub async fn expired_uploads_are_found(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let ida = user(repo, "ida").await;
    let jon = user(repo, "jon").await;
    let expiring = |owner: &User, ms: i64, expires: i64| {
        let mut new = new_file(owner, ms, "image/png", 10);
        new.upload_expires_at = at(expires);
        new
    };
    let old_pending = create(files, expiring(&ida, 0, 100)).await;
    let old_uploading = create(files, expiring(&jon, 1, 200)).await;
    assert!(files.begin_upload(old_uploading.id, at(2)).await.unwrap());
    let old_ready = create(files, expiring(&ida, 3, 50)).await;
    finish(files, &old_ready, FileStatus::Ready).await;
    let old_processing = create(files, expiring(&ida, 4, 50)).await;
    finish(files, &old_processing, FileStatus::Processing).await;
    let old_failed = create(files, expiring(&ida, 5, 50)).await;
    files
        .fail_file(old_failed.id, failure(ErrorCode::Internal), at(6))
        .await
        .unwrap();
    let at_now = create(files, expiring(&ida, 7, 300)).await;
    create(files, expiring(&jon, 8, 10_000)).await;

    // Windows that closed strictly before now, longest expired first.
    assert_eq!(
        files.expired_uploads(at(300), 10).await.unwrap(),
        vec![old_pending.id, old_uploading.id]
    );
    assert_eq!(
        files.expired_uploads(at(301), 10).await.unwrap(),
        vec![old_pending.id, old_uploading.id, at_now.id]
    );
    assert_eq!(
        files.expired_uploads(at(301), 1).await.unwrap(),
        vec![old_pending.id]
    );
    assert_eq!(
        files.expired_uploads(at(301), 0).await.unwrap(),
        Vec::<Id>::new()
    );
    assert_eq!(
        files.expired_uploads(at(100), 10).await.unwrap(),
        Vec::<Id>::new()
    );
    // A paused upload is still waiting for bytes.
    files
        .pause_upload(old_uploading.id, 3, at(9))
        .await
        .unwrap();
    assert_eq!(
        files.expired_uploads(at(201), 10).await.unwrap(),
        vec![old_pending.id, old_uploading.id]
    );
}

pub async fn file_changes_set_only_given_fields(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let kim = user(repo, "kim").await;
    let mut new = new_file(&kim, 0, "image/png", 10);
    new.filename = "a.png".into();
    new.tags = ["one", "two"].map(String::from).to_vec();
    let file = create(files, new).await;
    let other = create(files, {
        let mut new = new_file(&kim, 1, "image/png", 10);
        new.tags = vec!["two".into()];
        new
    })
    .await;

    let renamed = files
        .update_file(
            file.id,
            FileChange {
                filename: Some("b.png".into()),
                ..FileChange::default()
            },
            at(10),
        )
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(
        renamed,
        FileRecord {
            filename: "b.png".into(),
            updated_at: at(10),
            ..file.clone()
        }
    );

    let public = files
        .update_file(
            file.id,
            FileChange {
                visibility: Some(Visibility::Public),
                ..FileChange::default()
            },
            at(20),
        )
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(
        public,
        FileRecord {
            visibility: Visibility::Public,
            updated_at: at(20),
            ..renamed.clone()
        }
    );

    // Tags are replaced whole, in the order given.
    let retagged = files
        .update_file(
            file.id,
            FileChange {
                tags: Some(["three", "one", "three"].map(String::from).to_vec()),
                ..FileChange::default()
            },
            at(30),
        )
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(retagged.tags, vec!["three".to_owned(), "one".to_owned()]);
    assert_eq!(
        (
            retagged.filename.as_str(),
            retagged.visibility,
            retagged.updated_at
        ),
        ("b.png", Visibility::Public, at(30))
    );
    assert_eq!(reload(files, &file).await, retagged);
    let kim_id = kim.id;
    let tagged = |tag: &str| {
        let tag = tag.to_owned();
        async move {
            let page = files
                .files_of_owner(
                    kim_id,
                    FileFilter {
                        tag: Some(tag),
                        ..FileFilter::default()
                    },
                    PageRequest::first(10),
                )
                .await
                .unwrap();
            ids(&page.items)
        }
    };
    assert_eq!(tagged("two").await, vec![other.id]);
    assert_eq!(tagged("three").await, vec![file.id]);

    // All at once; an empty list clears the tags; the other file is untouched.
    let all = files
        .update_file(
            file.id,
            FileChange {
                filename: Some("c.png".into()),
                visibility: Some(Visibility::Private),
                tags: Some(Vec::new()),
            },
            at(40),
        )
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(
        all,
        FileRecord {
            filename: "c.png".into(),
            visibility: Visibility::Private,
            tags: Vec::new(),
            updated_at: at(40),
            ..file.clone()
        }
    );
    assert_eq!(tagged("one").await, Vec::<Id>::new());
    assert_eq!(reload(files, &other).await, other);

    // Nothing to change still touches `updated_at`.
    let touched = files
        .update_file(file.id, FileChange::default(), at(50))
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(
        touched,
        FileRecord {
            updated_at: at(50),
            ..all
        }
    );
    assert_eq!(
        files
            .update_file(Id::new(), FileChange::default(), at(60))
            .await
            .unwrap(),
        None
    );
}

pub async fn deleting_a_user_removes_their_files(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let lea = user(repo, "lea").await;
    let max = user(repo, "max").await;
    let mut mine = Vec::new();
    for i in 0..3 {
        let mut new = new_file(&lea, i, "image/png", 10);
        new.tags = vec!["mine".into()];
        mine.push(create(files, new).await);
    }
    finish(files, &mine[1], FileStatus::Ready).await;
    let mut new = new_file(&max, 0, "image/png", 10);
    new.tags = vec!["mine".into()];
    let theirs = create(files, new).await;

    assert!(repo.delete_user(lea.id).await.unwrap());
    assert_eq!(file_rows(db, &lea).await, 0);
    assert_eq!(
        files.existing_file_ids(&ids(&mine)).await.unwrap(),
        Vec::<Id>::new()
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM file_tags").await,
        1,
        "only max's tag is left"
    );
    assert_eq!(files.usage(lea.id).await.unwrap(), Usage::default());
    assert_eq!(reload(files, &theirs).await, theirs);
    assert_eq!(
        files
            .expired_uploads(Timestamp::from_millis(i64::MAX), 10)
            .await
            .unwrap(),
        vec![theirs.id]
    );
}

/// The sweeper's expiry and recovery change an upload only if it is still where the sweeper
/// found it: an upload that completed since (or, for recovery, whose writer recorded
/// progress since) stays as it is.
pub async fn expiry_and_recovery_leave_moved_uploads_alone(db: &TestDb) {
    let (repo, files) = (db.repo(), db.files());
    let kim = user(repo, "kim").await;
    let expiring = |ms: i64| {
        let mut new = new_file(&kim, ms, "image/png", 10);
        new.upload_expires_at = at(ms + 100);
        new
    };
    let why = failure(ErrorCode::UploadExpired);
    let pending = create(files, expiring(0)).await;
    let completed = create(files, expiring(1)).await;
    let uploading = create(files, expiring(2)).await;
    let processing = create(files, expiring(3)).await;
    let open = create(files, expiring(4)).await;
    assert!(files.begin_upload(uploading.id, at(3)).await.unwrap());
    // The sweeper found these expired; then two completed.
    assert_eq!(files.expired_uploads(at(500), 10).await.unwrap().len(), 5);
    finish(files, &completed, FileStatus::Ready).await;
    finish(files, &processing, FileStatus::Processing).await;

    for file in [&pending, &uploading] {
        let failed = files
            .expire_upload(file.id, why.clone(), at(500))
            .await
            .unwrap()
            .expect("an upload still waiting for bytes past its window expires");
        assert_eq!(
            (failed.status, failed.failure.as_ref(), failed.updated_at),
            (FileStatus::Failed, Some(&why), at(500))
        );
        assert_eq!(reload(files, file).await, failed);
    }
    for file in [&completed, &processing] {
        let before = reload(files, file).await;
        assert_eq!(
            files
                .expire_upload(file.id, why.clone(), at(500))
                .await
                .unwrap(),
            None
        );
        assert_eq!(reload(files, file).await, before, "left alone");
    }
    // Not past its window yet; already failed; no such file.
    assert_eq!(
        files
            .expire_upload(open.id, why.clone(), at(104))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        files
            .expire_upload(pending.id, why.clone(), at(600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        files
            .expire_upload(Id::new(), why.clone(), at(600))
            .await
            .unwrap(),
        None
    );

    // Recovery: the upload's writer last recorded progress at 3; the sweeper's check counts
    // anything older than 10 as stalled.
    let stalled = create(files, new_file(&kim, 4, "image/png", 10)).await;
    let live = create(files, new_file(&kim, 5, "image/png", 10)).await;
    assert!(files.begin_upload(stalled.id, at(3)).await.unwrap());
    assert!(files.begin_upload(live.id, at(3)).await.unwrap());
    let found = files.stalled_uploads(at(10), 10).await.unwrap();
    assert!(found.contains(&stalled.id) && found.contains(&live.id));
    // The live writer records progress after the check.
    files.record_progress(live.id, 7, at(12)).await.unwrap();
    assert!(files
        .recover_stalled_upload(stalled.id, 4, at(10), at(20))
        .await
        .unwrap());
    let back = reload(files, &stalled).await;
    assert_eq!(
        (back.status, back.bytes_received, back.updated_at),
        (FileStatus::Pending, 4, at(20))
    );
    assert!(!files
        .recover_stalled_upload(live.id, 0, at(10), at(20))
        .await
        .unwrap());
    let still = reload(files, &live).await;
    assert_eq!(
        (still.status, still.bytes_received),
        (FileStatus::Uploading, 7)
    );
    // Completed since the check: nothing to recover.
    assert!(!files
        .recover_stalled_upload(completed.id, 0, at(10_000), at(20))
        .await
        .unwrap());
    assert_eq!(reload(files, &completed).await.status, FileStatus::Ready);
}
