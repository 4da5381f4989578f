//! Index segment files in object storage: the files one index commit adds are uploaded together as one
//! sealed **bundle** object (one PUT per commit instead of one per file, and encrypted at rest like
//! packs); the manifest names, for every live file, its bundle and its place in it. A node that takes a
//! shard over restores its local index directory from the bundles.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::objects::{ObjectError, Objects};
use crate::{DataKey, crypto};

const BUNDLE_AAD: &[u8] = b"arca/index-bundle/v1\0";

/// One live index file: its name in the index directory, its size, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub name: String,
    pub size: u64,
    /// The bundle object holding the file.
    pub bundle: String,
    /// Byte offset of the file in the opened bundle.
    pub offset: u64,
    /// Size of the opened bundle: with the live files' sizes, how much of it merges have replaced.
    #[serde(default)]
    pub bundle_bytes: u64,
}

/// Why index files could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum IndexFilesError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("index file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("index bundle {bundle} is damaged or sealed under another key")]
    Damaged { bundle: String },
    #[error("index bundle {bundle} is shorter than the manifest says (file {name})")]
    Short { bundle: String, name: String },
}

/// A bundle being assembled from the files of one commit.
#[derive(Debug, Default)]
pub struct BundleBuilder {
    bytes: Vec<u8>,
    files: Vec<IndexFile>,
}

impl BundleBuilder {
    /// Adds the file at `path` under `name`.
    pub fn add(&mut self, name: &str, path: &Path, bundle: &str) -> Result<(), IndexFilesError> {
        let data = std::fs::read(path)
            .map_err(|source| IndexFilesError::Io { path: path.display().to_string(), source })?;
        self.files.push(IndexFile {
            name: name.to_string(),
            size: data.len() as u64,
            bundle: bundle.to_string(),
            offset: self.bytes.len() as u64,
            bundle_bytes: 0,
        });
        self.bytes.extend_from_slice(&data);
        Ok(())
    }

    /// True when no file was added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Seals the bundle under `key` for object `bundle` and uploads it with one PUT; answers its files.
    pub async fn upload(
        self,
        objects: &Objects,
        key: &DataKey,
        bundle: &str,
    ) -> Result<Vec<IndexFile>, IndexFilesError> {
        let mut sealed = Vec::with_capacity(self.bytes.len() + 64);
        crypto::seal_into(key.secret(), &aad(bundle), self.bytes, &mut sealed)
            .map_err(|_| IndexFilesError::Damaged { bundle: bundle.to_string() })?;
        objects.put(bundle, sealed).await?;
        let total = self.files.iter().map(|f| f.size).sum();
        Ok(self.files.into_iter().map(|f| IndexFile { bundle_bytes: total, ..f }).collect())
    }
}

fn aad(bundle: &str) -> Vec<u8> {
    let mut aad = BUNDLE_AAD.to_vec();
    aad.extend_from_slice(bundle.as_bytes());
    aad
}

/// Bundles that `before` referenced and `after` no longer does: deletable once `after` is committed.
pub fn unreferenced(before: &[IndexFile], after: &[IndexFile]) -> Vec<String> {
    let live: HashSet<&str> = after.iter().map(|f| f.bundle.as_str()).collect();
    let mut gone: Vec<String> =
        before.iter().map(|f| f.bundle.clone()).filter(|b| !live.contains(b.as_str())).collect();
    gone.sort();
    gone.dedup();
    gone
}

/// Writes every file of `files` that `dir` lacks (or holds with another size), one GET per bundle.
pub async fn restore(
    objects: &Objects,
    key: &DataKey,
    files: &[IndexFile],
    dir: &Path,
) -> Result<(), IndexFilesError> {
    let io = |path: &Path, source| IndexFilesError::Io { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut wanted: BTreeMap<&str, Vec<&IndexFile>> = BTreeMap::new();
    for f in files {
        if std::fs::metadata(dir.join(&f.name)).map(|m| m.len()).ok() != Some(f.size) {
            wanted.entry(f.bundle.as_str()).or_default().push(f);
        }
    }
    for (bundle, files) in wanted {
        let sealed = objects.get(bundle).await?;
        let opened = crypto::open(key.secret(), &aad(bundle), &sealed)
            .map_err(|_| IndexFilesError::Damaged { bundle: bundle.to_string() })?;
        for f in files {
            let bytes = usize::try_from(f.offset)
                .ok()
                .zip(usize::try_from(f.offset + f.size).ok())
                .and_then(|(from, to)| opened.get(from..to))
                .ok_or_else(|| IndexFilesError::Short { bundle: bundle.to_string(), name: f.name.clone() })?;
            let path = dir.join(&f.name);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bundle: &str) -> IndexFile {
        IndexFile { name: name.into(), size: 1, bundle: bundle.into(), offset: 0, bundle_bytes: 2 }
    }

    #[tokio::test]
    async fn a_bundle_restores_its_files_byte_exact_and_a_flipped_byte_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let objects = Objects::local(&tmp.path().join("objects")).unwrap();
        let key = DataKey::generate();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a.idx"), b"postings").unwrap();
        std::fs::write(src.join("a.term"), vec![7u8; 10_000]).unwrap();
        let mut b = BundleBuilder::default();
        b.add("a.idx", &src.join("a.idx"), "t/index/b1").unwrap();
        b.add("a.term", &src.join("a.term"), "t/index/b1").unwrap();
        let files = b.upload(&objects, &key, "t/index/b1").await.unwrap();
        assert_eq!(files.len(), 2);

        let dst = tmp.path().join("dst");
        restore(&objects, &key, &files, &dst).await.unwrap();
        assert_eq!(std::fs::read(dst.join("a.idx")).unwrap(), b"postings");
        assert_eq!(std::fs::read(dst.join("a.term")).unwrap(), vec![7u8; 10_000]);

        let stored = tmp.path().join("objects/t/index/b1");
        let mut bytes = std::fs::read(&stored).unwrap();
        assert!(!bytes.windows(8).any(|w| w == b"postings"), "index bytes are sealed at rest");
        bytes[40] ^= 1;
        std::fs::write(&stored, bytes).unwrap();
        let again = tmp.path().join("again");
        let err = restore(&objects, &key, &files, &again).await.unwrap_err();
        assert!(matches!(err, IndexFilesError::Damaged { .. }), "{err}");
    }

    #[test]
    fn a_bundle_is_unreferenced_only_when_none_of_its_files_is_live() {
        let before = [file("a", "b1"), file("b", "b1"), file("c", "b2")];
        let after = [file("a", "b1"), file("d", "b3")];
        assert_eq!(unreferenced(&before, &after), vec!["b2".to_string()]);
    }
}
