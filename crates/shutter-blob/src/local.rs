//! The embedded `BlobStore`: one directory on a local file system.
//!
//! Layout under the root:
//!
//! ```text
//! objects/<shard>/<id>/original            files/<id>
//! objects/<shard>/<id>/variants/<variant>  files/<id>/<variant>
//! objects/<shard>/<id>/.tmp-<random>       a put in progress
//! partial/<id>                             the upload of files/<id> in progress
//! ```
//!
//! `<shard>` is the last two hex digits of the id. (Its first ones are the UUIDv7 timestamp,
//! identical for years; the last ones are random, so 256 shards fill evenly.) Everything of
//! one file lives in one directory, so deleting a file is one `remove_dir_all` and a
//! crashed `put` leaves its temp file where that delete finds it.
//!
//! **Invariant:** an object path only ever appears by `rename` of a complete, fsynced file,
//! followed by an fsync of its directory; readers see the old object or the new one.

use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use shutter_app::ports::{BlobError, BlobRead, BlobResult, BlobStore, ByteStream, PartialWriter};
use shutter_core::{Id, Timestamp};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::key::BlobKey;

/// Size of the chunks a read streams: the memory one reader holds, whatever the object.
const READ_CHUNK: usize = 64 * 1024;
/// How much of an upload is gathered before it goes to the file.
const WRITE_BUFFER: usize = 256 * 1024;
const ORIGINAL: &str = "original";
const VARIANTS: &str = "variants";
const TMP_PREFIX: &str = ".tmp-";

/// A `BlobStore` over a local directory (see the module documentation for the layout).
#[derive(Clone, Debug)]
pub struct LocalBlobStore {
    root: PathBuf,
    objects: PathBuf,
    partial: PathBuf,
}

impl LocalBlobStore {
    /// Opens the store at `root`, creating the directory and its layout if needed.
    pub fn new(root: PathBuf) -> anyhow::Result<Self> {
        let objects = root.join("objects");
        let partial = root.join("partial");
        for dir in [&root, &objects, &partial] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the blob directory {}", dir.display()))?;
        }
        Ok(LocalBlobStore {
            root,
            objects,
            partial,
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shard(id: Id) -> String {
        let simple = id.as_uuid().simple().to_string();
        simple[simple.len() - 2..].to_owned()
    }

    fn object_dir(&self, id: Id) -> PathBuf {
        self.objects.join(Self::shard(id)).join(id.to_string())
    }

    fn object_path(&self, key: &BlobKey) -> PathBuf {
        let dir = self.object_dir(key.id());
        match key.variant() {
            Some(variant) => dir.join(VARIANTS).join(variant),
            None => dir.join(ORIGINAL),
        }
    }

    /// Creates the directories an object goes in, one level at a time below `objects/`.
    /// Never `objects/` itself: a root that vanished (an unmounted volume, say) is an error,
    /// not something to quietly re-create on the wrong disk.
    async fn create_object_dirs(&self, key: &BlobKey) -> BlobResult<PathBuf> {
        let id = key.id();
        let mut dir = self.objects.clone();
        let mut parts = vec![Self::shard(id), id.to_string()];
        if key.variant().is_some() {
            parts.push(VARIANTS.to_owned());
        }
        for part in parts {
            let parent = dir.clone();
            dir.push(part);
            match fs::create_dir(&dir).await {
                // A new directory entry is only durable once its parent is synced.
                Ok(()) => sync_dir(&parent)
                    .await
                    .map_err(|e| write_error(e, &parent))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(write_error(e, &dir)),
            }
        }
        Ok(dir)
    }

    /// The partial object of a `files/<id>` key; uploads only ever write a file's own bytes.
    fn partial_path(&self, key: &str) -> BlobResult<PathBuf> {
        let key = BlobKey::parse(key)?;
        if key.variant().is_some() {
            return Err(BlobError::Other(anyhow::anyhow!(
                "partial objects exist only for files/<id> keys, not {key}"
            )));
        }
        Ok(self.partial.join(key.id().to_string()))
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn open_partial(&self, key: &str, offset: u64) -> BlobResult<Box<dyn PartialWriter>> {
        let path = self.partial_path(key)?;
        let mut file = if offset == 0 {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .map_err(|e| write_error(e, &path))?
        } else {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .await
                .map_err(|e| read_error(e, &path))?;
            let len = file
                .metadata()
                .await
                .map_err(|e| read_error(e, &path))?
                .len();
            if len < offset {
                return Err(BlobError::NotFound);
            }
            if len > offset {
                // Bytes that arrived but were never acknowledged: the client sends them again.
                file.set_len(offset)
                    .await
                    .map_err(|e| write_error(e, &path))?;
            }
            file
        };
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| write_error(e, &path))?;
        Ok(Box::new(LocalPartialWriter {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            len: offset,
            dir_to_sync: (offset == 0).then(|| self.partial.clone()),
            path,
        }))
    }

    async fn partial_len(&self, key: &str) -> BlobResult<Option<u64>> {
        let path = self.partial_path(key)?;
        match fs::metadata(&path).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(read_error(e, &path)),
        }
    }

    async fn read_partial(&self, key: &str) -> BlobResult<BlobRead> {
        let path = self.partial_path(key)?;
        read_file(&path, None).await
    }

    async fn commit_partial(&self, key: &str) -> BlobResult<()> {
        let path = self.partial_path(key)?;
        let file = File::open(&path).await.map_err(|e| read_error(e, &path))?;
        file.sync_all().await.map_err(|e| write_error(e, &path))?;
        drop(file);
        let object = BlobKey::parse(key)?;
        let dir = self.create_object_dirs(&object).await?;
        let target = dir.join(ORIGINAL);
        fs::rename(&path, &target)
            .await
            .map_err(|e| write_error(e, &target))?;
        sync_dir(&dir).await.map_err(|e| write_error(e, &dir))?;
        sync_dir(&self.partial)
            .await
            .map_err(|e| write_error(e, &self.partial))
    }

    async fn discard_partial(&self, key: &str) -> BlobResult<()> {
        let path = self.partial_path(key)?;
        remove_if_present(fs::remove_file(&path).await, &path)
    }

    async fn put(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        let key = BlobKey::parse(key)?;
        let dir = self.create_object_dirs(&key).await?;
        let target = self.object_path(&key);
        // The temp file sits in the file's directory: same file system as the target (so
        // the rename is atomic), and removed with the file if a crash leaves it behind.
        let tmp = self
            .object_dir(key.id())
            .join(format!("{TMP_PREFIX}{}", Id::new()));
        let written = async {
            let mut file = File::create(&tmp).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            drop(file);
            fs::rename(&tmp, &target).await?;
            sync_dir(&dir).await
        }
        .await;
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp).await;
            return Err(write_error(e, &target));
        }
        Ok(())
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> BlobResult<BlobRead> {
        let key = BlobKey::parse(key)?;
        read_file(&self.object_path(&key), range).await
    }

    async fn delete(&self, key: &str) -> BlobResult<()> {
        let key = BlobKey::parse(key)?;
        if key.variant().is_some() {
            let path = self.object_path(&key);
            return remove_if_present(fs::remove_file(&path).await, &path);
        }
        let dir = self.object_dir(key.id());
        remove_if_present(fs::remove_dir_all(&dir).await, &dir)?;
        let partial = self.partial.join(key.id().to_string());
        remove_if_present(fs::remove_file(&partial).await, &partial)
    }

    async fn list_file_ids(&self) -> BlobResult<Vec<(Id, Timestamp)>> {
        let mut newest: HashMap<Id, SystemTime> = HashMap::new();
        let mut shards = fs::read_dir(&self.objects)
            .await
            .map_err(|e| unavailable(e, &self.objects))?;
        while let Some(shard) = shards
            .next_entry()
            .await
            .map_err(|e| read_error(e, &self.objects))?
        {
            let mut ids = match fs::read_dir(shard.path()).await {
                Ok(ids) => ids,
                // A stray file, or a shard gone since it was listed.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotADirectory | io::ErrorKind::NotFound
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(read_error(e, &shard.path())),
            };
            while let Some(entry) = ids
                .next_entry()
                .await
                .map_err(|e| read_error(e, &shard.path()))?
            {
                let Some(id) = file_id(&entry.file_name()) else {
                    continue;
                };
                if let Some(mtime) = newest_mtime(entry.path()).await? {
                    note_mtime(&mut newest, id, mtime);
                }
            }
        }
        let mut partials = fs::read_dir(&self.partial)
            .await
            .map_err(|e| unavailable(e, &self.partial))?;
        while let Some(entry) = partials
            .next_entry()
            .await
            .map_err(|e| read_error(e, &self.partial))?
        {
            let Some(id) = file_id(&entry.file_name()) else {
                continue;
            };
            match entry.metadata().await.and_then(|m| m.modified()) {
                Ok(mtime) => note_mtime(&mut newest, id, mtime),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(read_error(e, &entry.path())),
            }
        }
        let mut ids: Vec<(Id, Timestamp)> = newest
            .into_iter()
            .map(|(id, mtime)| (id, timestamp(mtime)))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn ping(&self) -> BlobResult<()> {
        let meta = fs::metadata(&self.root)
            .await
            .map_err(|e| unavailable(e, &self.root))?;
        if !meta.is_dir() {
            return Err(BlobError::Unavailable(anyhow::anyhow!(
                "blob root {} is not a directory",
                self.root.display()
            )));
        }
        // Writable is what matters, and only writing tells (permissions lie to root, and a
        // read-only mount keeps its mode bits).
        let probe = self.partial.join(format!("{TMP_PREFIX}ping-{}", Id::new()));
        fs::write(&probe, b"ping")
            .await
            .map_err(|e| unavailable(e, &probe))?;
        fs::remove_file(&probe)
            .await
            .map_err(|e| unavailable(e, &probe))
    }
}

/// Appends to `partial/<id>` through a buffer; `sync` makes it durable.
struct LocalPartialWriter {
    file: BufWriter<File>,
    len: u64,
    /// The partial directory, until a first `sync` has made a newly created file's
    /// directory entry durable too.
    dir_to_sync: Option<PathBuf>,
    path: PathBuf,
}

#[async_trait]
impl PartialWriter for LocalPartialWriter {
    async fn write(&mut self, chunk: &[u8]) -> BlobResult<()> {
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| write_error(e, &self.path))?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    async fn sync(&mut self) -> BlobResult<u64> {
        self.file
            .flush()
            .await
            .map_err(|e| write_error(e, &self.path))?;
        self.file
            .get_ref()
            .sync_data()
            .await
            .map_err(|e| write_error(e, &self.path))?;
        if let Some(dir) = &self.dir_to_sync {
            sync_dir(dir).await.map_err(|e| write_error(e, dir))?;
            self.dir_to_sync = None;
        }
        Ok(self.len)
    }
}

/// Opens `path` and streams `range` of it (the end clamped to the length, like an HTTP
/// range; a start past the end is an error).
async fn read_file(path: &Path, range: Option<(u64, u64)>) -> BlobResult<BlobRead> {
    let mut file = File::open(path).await.map_err(|e| read_error(e, path))?;
    let total_len = file
        .metadata()
        .await
        .map_err(|e| read_error(e, path))?
        .len();
    let (start, end) = match range {
        None => (0, total_len),
        Some((start, end)) => (start, end.min(total_len)),
    };
    if start > end {
        return Err(BlobError::Other(anyhow::anyhow!(
            "range {start}..{end} is outside an object of {total_len} bytes"
        )));
    }
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| read_error(e, path))?;
    }
    Ok(BlobRead {
        stream: chunks(file.take(end - start)),
        total_len,
    })
}

/// A stream of chunks of at most [`READ_CHUNK`] bytes, each read when the consumer asks:
/// memory stays flat however long the reader is.
fn chunks<R: AsyncRead + Unpin + Send + 'static>(reader: R) -> ByteStream {
    Box::pin(futures::stream::try_unfold(
        reader,
        |mut reader| async move {
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            let n = reader.read_buf(&mut buf).await?;
            Ok((n > 0).then(|| (buf.freeze(), reader)))
        },
    ))
}

/// Fsyncs a directory, making the entries created or renamed in it durable.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir).await?.sync_all().await
    } else {
        // Directories cannot be opened as files elsewhere; their entries are made durable
        // by the file system's own journal.
        Ok(())
    }
}

/// The newest modification time of a file's directory and everything in it (its own
/// object, variants, a temp file), or `None` if it disappeared meanwhile.
async fn newest_mtime(dir: PathBuf) -> BlobResult<Option<SystemTime>> {
    let mut newest = None;
    let mut pending = vec![(dir, 0)];
    while let Some((path, depth)) = pending.pop() {
        let meta = match fs::symlink_metadata(&path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(read_error(e, &path)),
        };
        let mtime = meta.modified().map_err(|e| read_error(e, &path))?;
        newest = newest.max(Some(mtime));
        // `<id>/` and `<id>/variants/`: nothing deeper is ever written.
        if meta.is_dir() && depth < 2 {
            let mut entries = match fs::read_dir(&path).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(read_error(e, &path)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| read_error(e, &path))?
            {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    Ok(newest)
}

fn note_mtime(newest: &mut HashMap<Id, SystemTime>, id: Id, mtime: SystemTime) {
    let slot = newest.entry(id).or_insert(mtime);
    *slot = (*slot).max(mtime);
}

/// The id a directory or partial file is named after; other names (temp files, strays)
/// are not files of ours.
fn file_id(name: &std::ffi::OsStr) -> Option<Id> {
    let name = name.to_str()?;
    let id: Id = name.parse().ok()?;
    (id.to_string() == name).then_some(id)
}

fn timestamp(time: SystemTime) -> Timestamp {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(millis)
}

/// Deleting what is already gone succeeds.
fn remove_if_present(result: io::Result<()>, path: &Path) -> BlobResult<()> {
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(write_error(e, path)),
        _ => Ok(()),
    }
}

/// Reading something absent is `NotFound`: the object (or partial object) does not exist.
fn read_error(e: io::Error, path: &Path) -> BlobError {
    if e.kind() == io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        classify(e, path)
    }
}

/// When writing, an absent path means the store's own directories are gone: the store is
/// unusable, not the object missing.
fn write_error(e: io::Error, path: &Path) -> BlobError {
    if e.kind() == io::ErrorKind::NotFound {
        unavailable(e, path)
    } else {
        classify(e, path)
    }
}

/// Failures of the disk itself (full, read-only, not ours to write) make the store
/// unavailable; the rest are errors of the one operation.
fn classify(e: io::Error, path: &Path) -> BlobError {
    match e.kind() {
        io::ErrorKind::PermissionDenied
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::StorageFull => unavailable(e, path),
        _ => BlobError::Other(anyhow::Error::new(e).context(format!("at {}", path.display()))),
    }
}

fn unavailable(e: io::Error, path: &Path) -> BlobError {
    BlobError::Unavailable(anyhow::Error::new(e).context(format!("at {}", path.display())))
}

#[cfg(test)]
mod tests;
