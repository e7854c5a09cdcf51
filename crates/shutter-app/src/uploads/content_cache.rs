//! Ready files as downloads see them, kept a moment so that serving a photo — every view of
//! every post in a feed — does not read its row each time.
//!
//! SPEC 4 lets a deleted file's URLs work for up to 5 s; an entry lives [`TTL`], well inside
//! that, on every node. On the node where a file changes (renamed, made public or private,
//! deleted, with its post or its owner), the whole cache is dropped at once: every such
//! change ends with [`ContentCache::invalidate`], which moves the cache to a new epoch, and
//! an entry counts only in the epoch it was read in. An entry is stamped with the epoch from
//! *before* its row was read, so a read racing a change is never kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shutter_core::domain::FileStatus;
use shutter_core::model::FileRecord;
use shutter_core::Id;

/// How long another node may serve a file after it changed: well inside SPEC's 5 s.
const TTL: Duration = Duration::from_secs(2);
/// Entries at most; past it, expired ones go, then all.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(crate) struct ContentCache {
    epoch: AtomicU64,
    entries: Mutex<HashMap<Id, (FileRecord, u64, Instant)>>,
}

impl ContentCache {
    /// The epoch to stamp a row read from now on with.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn get(&self, id: Id) -> Option<FileRecord> {
        let now = Instant::now();
        let epoch = self.epoch();
        let entries = self.entries.lock().ok()?;
        entries
            .get(&id)
            .filter(|(_, e, at)| *e == epoch && now.duration_since(*at) < TTL)
            .map(|(file, _, _)| file.clone())
    }

    /// Keeps a ready file read in `epoch`.
    pub(crate) fn put(&self, file: &FileRecord, epoch: u64) {
        if file.status != FileStatus::Ready || epoch != self.epoch() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= CAPACITY {
            let current = self.epoch();
            entries.retain(|_, (_, e, at)| *e == current && now.duration_since(*at) < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(file.id, (file.clone(), epoch, now));
    }

    /// After any change to a file or its access (committed): nothing read before counts.
    pub(crate) fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use shutter_core::domain::Visibility;
    use shutter_core::Timestamp;

    fn file(status: FileStatus) -> FileRecord {
        FileRecord {
            id: Id::new(),
            owner_id: Id::new(),
            filename: "a.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 1,
            declared_sha256: None,
            declared_md5: None,
            sha256: None,
            md5: None,
            visibility: Visibility::Public,
            tags: Vec::new(),
            status,
            bytes_received: 1,
            failure: None,
            width: None,
            height: None,
            blurhash: None,
            upload_expires_at: Timestamp::from_millis(0),
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn only_ready_files_read_in_the_current_epoch_are_kept() {
        let cache = ContentCache::default();
        let ready = file(FileStatus::Ready);
        let epoch = cache.epoch();
        cache.put(&ready, epoch);
        assert_eq!(cache.get(ready.id).map(|f| f.id), Some(ready.id));
        let pending = file(FileStatus::Pending);
        cache.put(&pending, cache.epoch());
        assert!(cache.get(pending.id).is_none());
        // A change between the read and the put: the read is not kept.
        let raced = file(FileStatus::Ready);
        let before = cache.epoch();
        cache.invalidate();
        cache.put(&raced, before);
        assert!(cache.get(raced.id).is_none());
        assert!(cache.get(ready.id).is_none(), "a change drops everything");
    }
}
