//! [`ShardIndex`]: the tantivy index of one shard, in a local directory or in memory.
//!
//! The index is derived data (invariant 7): the shard layer feeds it from packs and manifest, can delete
//! everything (or one archive) and add again, and uploads the immutable segment files that
//! [`ShardIndex::segment_files`] lists. Writes are buffered by one indexing thread per core with a fixed memory budget
//! each ([`WRITER_MEMORY_BYTES_PER_THREAD`]); nothing is searchable or durable before [`ShardIndex::commit`].

use std::path::{Path, PathBuf};

use arca_types::ArchiveId;
use arca_types::document::MessageDoc;
use tantivy::index::SegmentComponent;
use tantivy::schema::Schema;
use tantivy::{Directory, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{SearchError, tantivy_err};
use crate::schema::{
    Fields, PartyFields, display_address, display_recipients, folder_ancestors, folder_term, party_sort_key,
    priority_code, raw_address, subject_sort_key,
};
use crate::tokenizer::{
    ArcaTokenizer, REVERSED_TOKENIZER_NAME, ReversedTokenizer, TOKENIZER_NAME, nfc, reversed,
};

/// Memory budget of each indexing thread; tantivy flushes a segment when it is reached.
pub const WRITER_MEMORY_BYTES_PER_THREAD: usize = 32 * 1024 * 1024;

/// Segments of one size class that are merged together.
const MERGE_MIN_SEGMENTS: usize = 12;

/// Indexing threads: one per core (at most 4), since tokenising and inverting text is the CPU cost
/// of archiving.
fn indexing_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
}

/// Where a message is filed and when it was archived: what the index needs beside its [`MessageDoc`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The message number within the shard.
    pub number: u64,
    pub archive: ArchiveId,
    /// The key of the message's folder (its path at the folder's creation; `records::Archive::folders`);
    /// empty = the top-level folder.
    pub folder: String,
    /// Archive time, Unix seconds.
    pub archived_at: i64,
    /// True when the message was archived as sent (from a sent-items folder), SRCH-05.
    pub sent: bool,
}

/// The search index of one shard.
pub struct ShardIndex {
    index: Index,
    fields: Fields,
    reader: IndexReader,
    /// Opened on first write; behind a lock of its own so that a commit never blocks searches.
    writer: std::sync::Mutex<Option<IndexWriter>>,
}

impl std::fmt::Debug for ShardIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardIndex").field("docs", &self.num_docs()).finish()
    }
}

impl ShardIndex {
    /// A new, empty index held in memory (tests, scratch rebuilds).
    pub fn in_ram() -> Result<ShardIndex, SearchError> {
        let index = builder().create_in_ram().map_err(tantivy_err("create index in memory"))?;
        ShardIndex::from_index(index, "create index in memory")
    }

    /// A new, empty index in `dir`, which must exist and hold no index.
    pub fn create_in_dir(dir: &Path) -> Result<ShardIndex, SearchError> {
        let index = builder()
            .create_in_dir(dir)
            .map_err(tantivy_err(format!("create index in {}", dir.display())))?;
        ShardIndex::from_index(index, "open new index")
    }

    /// The index in `dir`, created when the directory holds none.
    pub fn open_or_create_in_dir(dir: &Path) -> Result<ShardIndex, SearchError> {
        let context = format!("open index in {}", dir.display());
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(|e| SearchError::Index {
            context: context.clone(),
            source: tantivy::TantivyError::from(e),
        })?;
        let index = builder().open_or_create(directory).map_err(tantivy_err(context.clone()))?;
        ShardIndex::from_index(index, &context)
    }

    fn from_index(index: Index, context: &str) -> Result<ShardIndex, SearchError> {
        check_schema(index.schema(), context)?;
        let fields = Fields::from_schema(&index.schema()).map_err(|missing| SearchError::Schema {
            context: context.to_string(),
            reason: format!("field '{missing}' is missing"),
        })?;
        index.tokenizers().register(TOKENIZER_NAME, ArcaTokenizer);
        index.tokenizers().register(REVERSED_TOKENIZER_NAME, ReversedTokenizer);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_err(format!("{context}: open reader")))?;
        Ok(ShardIndex { index, fields, reader, writer: std::sync::Mutex::new(None) })
    }

    /// The field handles of the schema.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The reader of the last commit.
    pub fn reader(&self) -> &IndexReader {
        &self.reader
    }

    /// Number of searchable (committed, not deleted) documents.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The message number of every searchable document, sorted; a number indexed twice appears twice.
    /// `VerifyStore includeIndexes=true` compares it with the manifest.
    pub fn indexed_numbers(&self) -> Result<Vec<u64>, SearchError> {
        let searcher = self.reader.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        for segment in searcher.segment_readers() {
            let column = segment
                .fast_fields()
                .u64(crate::schema::names::NUMBER)
                .map_err(tantivy_err("read the number column"))?;
            let alive = segment.alive_bitset();
            for doc in 0..segment.max_doc() {
                if alive.is_none_or(|a| a.is_alive(doc))
                    && let Some(n) = column.first(doc)
                {
                    out.push(n);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Runs `f` on the index writer, opening it on first use.
    fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> Result<R, SearchError>,
    ) -> Result<R, SearchError> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let threads = indexing_threads();
            let writer = self
                .index
                .writer_with_num_threads(threads, threads * WRITER_MEMORY_BYTES_PER_THREAD)
                .map_err(tantivy_err("open index writer"))?;
            // Merging rewrites every term of the merged segments: wait for more of them (tantivy's
            // default is 8) so that a bulk import merges less often, at a few more segments per search.
            let mut policy = tantivy::indexer::LogMergePolicy::default();
            policy.set_min_num_segments(MERGE_MIN_SEGMENTS);
            writer.set_merge_policy(Box::new(policy));
            *guard = Some(writer);
        }
        match guard.as_mut() {
            Some(writer) => f(writer),
            None => Err(SearchError::Schema {
                context: "open index writer".into(),
                reason: "writer unavailable".into(),
            }),
        }
    }

    /// Adds one message (searchable after the next [`ShardIndex::commit`]).
    pub fn add(&self, entry: &IndexEntry, doc: &MessageDoc) -> Result<(), SearchError> {
        let document = self.document(entry, doc);
        let number = entry.number;
        self.with_writer(|w| w.add_document(document).map_err(tantivy_err(format!("add message {number}"))))?;
        Ok(())
    }

    fn document(&self, entry: &IndexEntry, doc: &MessageDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut d = TantivyDocument::default();
        d.add_u64(f.number, entry.number);
        d.add_u64(f.archive, entry.archive);
        d.add_text(f.folder, folder_term(&entry.folder));
        for path in folder_ancestors(&entry.folder) {
            d.add_text(f.folder_tree, path);
        }
        let subject = nfc(doc.subject.as_deref().unwrap_or("")).into_owned();
        let subject_key = subject_sort_key(&subject);
        if !subject_key.is_empty() {
            d.add_text(f.sort_subject, subject_key);
        }
        d.add_text(f.subject_rev, &subject);
        d.add_text(f.subject, &subject);
        let parties: [(&PartyFields, &Vec<arca_types::document::Address>); 4] =
            [(&f.from, &doc.from), (&f.to, &doc.to), (&f.cc, &doc.cc), (&f.bcc, &doc.bcc)];
        for (pf, list) in parties {
            for a in list {
                if let Some(name) = a.name.as_deref().filter(|n| !n.trim().is_empty()) {
                    let name = nfc(name);
                    d.add_text(pf.name_rev, &name);
                    d.add_text(pf.name, name);
                }
                if let Some(address) = a.address.as_deref().filter(|n| !n.trim().is_empty()) {
                    let address = nfc(address);
                    d.add_text(pf.addr_rev, &address);
                    d.add_text(pf.addr, address);
                }
                if let Some(raw) = raw_address(a) {
                    d.add_text(pf.raw_rev, reversed(&raw));
                    d.add_text(pf.raw, raw);
                }
            }
        }
        let body = nfc(&doc.body_text);
        d.add_text(f.body_rev, &body);
        d.add_text(f.body, body);
        for name in &doc.attachment_names {
            let name = nfc(name);
            d.add_text(f.attachment_names_rev, &name);
            d.add_text(f.attachment_names, name);
        }
        let attachment_text = nfc(&doc.attachment_text);
        d.add_text(f.attachment_text_rev, &attachment_text);
        d.add_text(f.attachment_text, attachment_text);
        d.add_i64(f.date, doc.date.unwrap_or(entry.archived_at));
        d.add_i64(f.archived, entry.archived_at);
        d.add_u64(f.size, doc.size);
        d.add_u64(f.has_attachments, u64::from(doc.has_attachments));
        d.add_u64(f.priority, priority_code(doc.priority));
        d.add_u64(f.sent, u64::from(entry.sent));
        let party = party_sort_key(doc, entry.sent);
        if !party.is_empty() {
            d.add_text(f.sort_party, party);
        }
        d.add_text(f.display_from, doc.from.first().map(display_address).unwrap_or_default());
        d.add_text(f.display_recipients, display_recipients(doc));
        d
    }

    /// Deletes every document (effective at the next commit): the start of a full rebuild.
    pub fn delete_all(&self) -> Result<(), SearchError> {
        self.with_writer(|w| w.delete_all_documents().map_err(tantivy_err("delete all documents")))?;
        Ok(())
    }

    /// Deletes every document of one archive (effective at the next commit): rebuilding one
    /// (shard, archive) entry of SRCH-07.
    pub fn delete_archive(&self, archive: ArchiveId) -> Result<(), SearchError> {
        let term = Term::from_field_u64(self.fields.archive, archive);
        self.with_writer(|w| Ok(w.delete_term(term)))?;
        Ok(())
    }

    /// Deletes every document of one message number, in all archives (effective at the next commit).
    pub fn delete_message(&self, number: u64) -> Result<(), SearchError> {
        let term = Term::from_field_u64(self.fields.number, number);
        self.with_writer(|w| Ok(w.delete_term(term)))?;
        Ok(())
    }

    /// Makes every change since the last commit durable and searchable.
    pub fn commit(&self) -> Result<(), SearchError> {
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            writer.commit().map_err(tantivy_err("commit index"))?;
        }
        self.reader.reload().map_err(tantivy_err("reload index reader"))?;
        Ok(())
    }

    /// The files of the committed index, relative to its directory: `meta.json` and the files of every
    /// searchable segment. Segment files never change once written, so the shard layer can upload each
    /// once (deletes of a segment go to a new, differently named `<segment>.<opstamp>.del` file);
    /// `meta.json` is rewritten by every commit and names the current segments, so it belongs in the
    /// manifest delta of that commit rather than under a fixed object key.
    pub fn segment_files(&self) -> Result<Vec<PathBuf>, SearchError> {
        let metas = self.index.searchable_segment_metas().map_err(tantivy_err("list segments"))?;
        let mut files: Vec<PathBuf> = vec![PathBuf::from("meta.json")];
        let components = [
            SegmentComponent::Postings,
            SegmentComponent::Positions,
            SegmentComponent::Terms,
            SegmentComponent::Store,
            SegmentComponent::FastFields,
            SegmentComponent::FieldNorms,
            SegmentComponent::Delete,
        ];
        for meta in metas {
            for component in components.clone() {
                if component == SegmentComponent::Delete && !meta.has_deletes() {
                    continue;
                }
                let path = meta.relative_path(component);
                let exists = self.index.directory().exists(&path).map_err(|e| SearchError::Index {
                    context: format!("look for index file {}", path.display()),
                    source: tantivy::TantivyError::from(e),
                })?;
                if exists {
                    files.push(path);
                }
            }
        }
        Ok(files)
    }
}

/// A new index's schema and settings: the document store (the result list's fields) compressed with zstd.
fn builder() -> tantivy::IndexBuilder {
    let (schema, _) = Fields::build();
    let settings = tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(3),
        }),
        ..tantivy::IndexSettings::default()
    };
    Index::builder().schema(schema).settings(settings)
}

/// Checks that an opened index has the schema of this version.
fn check_schema(schema: Schema, context: &str) -> Result<(), SearchError> {
    let (expected, _) = Fields::build();
    if schema != expected {
        return Err(SearchError::Schema {
            context: context.to_string(),
            reason: "the index was written with another schema; rebuild it".into(),
        });
    }
    Ok(())
}

impl Fields {
    /// The field handles of a schema built by [`Fields::build`]; `Err` names a missing field.
    pub fn from_schema(schema: &Schema) -> Result<Fields, String> {
        let get = |name: &str| schema.get_field(name).map_err(|_| name.to_string());
        let party = |p: &str| -> Result<PartyFields, String> {
            Ok(PartyFields {
                name: get(&format!("{p}_name"))?,
                addr: get(&format!("{p}_addr"))?,
                raw: get(&format!("{p}_raw"))?,
                name_rev: get(&format!("{p}_name_rev"))?,
                addr_rev: get(&format!("{p}_addr_rev"))?,
                raw_rev: get(&format!("{p}_raw_rev"))?,
            })
        };
        Ok(Fields {
            number: get("number")?,
            archive: get("archive")?,
            folder: get("folder")?,
            folder_tree: get("folder_tree")?,
            subject: get("subject")?,
            from: party("from")?,
            to: party("to")?,
            cc: party("cc")?,
            bcc: party("bcc")?,
            body: get("body")?,
            attachment_names: get("attachment_names")?,
            attachment_text: get("attachment_text")?,
            subject_rev: get("subject_rev")?,
            body_rev: get("body_rev")?,
            attachment_names_rev: get("attachment_names_rev")?,
            attachment_text_rev: get("attachment_text_rev")?,
            date: get("date")?,
            archived: get("archived")?,
            size: get("size")?,
            has_attachments: get("has_attachments")?,
            priority: get("priority")?,
            sent: get("sent")?,
            sort_party: get("sort_party")?,
            sort_subject: get("sort_subject")?,
            display_from: get("display_from")?,
            display_recipients: get("display_recipients")?,
        })
    }
}
