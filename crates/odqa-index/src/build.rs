use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use odqa_analysis::{
    AnalyzerConfig, DictionarySource, KoreanAnalyzer, UserDictionaryInfo, UserWords, TOKENIZER_NAME,
};
use odqa_corpus::{open_corpus, PassageConfig, PassageEvent, Passages, UniqueArticles};
use tantivy::schema::{IndexRecordOption, Schema, TextFieldIndexing, TextOptions, STORED, STRING};
use tantivy::{doc, Index, IndexWriter};

use crate::manifest::{Bm25Params, IndexManifest};
use crate::IndexError;

/// Default [`BuildOptions::memory_mb`]: tantivy's writers flush segments
/// within it.
pub const DEFAULT_MEMORY_MB: usize = 512;

/// Settings of one index build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub corpus: PathBuf,
    pub out: PathBuf,
    pub passages: PassageConfig,
    pub analyzer: AnalyzerConfig,
    pub dictionary: DictionarySource,
    pub bm25: Bm25Params,
    /// Indexing threads (tantivy segment writers, which also run the analyzer).
    pub threads: usize,
    /// Indexing memory budget in MB, shared by the threads
    /// ([`DEFAULT_MEMORY_MB`]).
    pub memory_mb: usize,
    /// Count and skip malformed corpus records instead of failing.
    pub skip_bad_lines: bool,
    /// Replace an existing index at `out`.
    pub force: bool,
    pub progress: bool,
    /// Add the corpus's article titles to ko-dic as user-dictionary entries
    /// (those it splits; see `KoreanAnalyzer::title_words`).
    pub title_dictionary: bool,
    /// A word list (one word a line, optionally `word,TAG`) added the same way.
    pub user_dictionary: Option<PathBuf>,
}

/// Size of the stored-passage blocks that tantivy compresses together.
/// Reading a hit decompresses its whole block: at tantivy's 16 KiB, fetching
/// the top 100 passages of kowiki-2020-10k took 1.3 ms a query, at 4 KiB
/// 0.8 ms, for 3% more index (bench/README.md, "Term pairs").
pub const DOCSTORE_BLOCK_BYTES: usize = 4096;

/// File, inside an index, holding its user-dictionary entries.
pub const USER_DICTIONARY_FILE: &str = "user-dictionary.csv";

/// Default of [`BuildOptions::title_dictionary`], chosen on the dev question
/// sets (bench/README.md).
pub const DEFAULT_TITLE_DICTIONARY: bool = false;

impl BuildOptions {
    pub fn new(corpus: PathBuf, out: PathBuf) -> Self {
        BuildOptions {
            corpus,
            out,
            passages: PassageConfig::default(),
            analyzer: AnalyzerConfig::default(),
            dictionary: DictionarySource::resolve(None),
            bm25: Bm25Params::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mb: DEFAULT_MEMORY_MB,
            skip_bad_lines: false,
            force: false,
            progress: false,
            title_dictionary: DEFAULT_TITLE_DICTIONARY,
            user_dictionary: None,
        }
    }
}

pub(crate) struct Fields {
    pub passage_id: tantivy::schema::Field,
    pub article_id: tantivy::schema::Field,
    pub title: tantivy::schema::Field,
    pub text: tantivy::schema::Field,
    pub ordinal: tantivy::schema::Field,
    pub char_start: tantivy::schema::Field,
    pub char_end: tantivy::schema::Field,
}

pub(crate) fn schema() -> Schema {
    let analyzed = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER_NAME)
            // BM25 needs term frequencies and field norms, not positions.
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let mut builder = Schema::builder();
    builder.add_text_field("passage_id", STRING | STORED);
    builder.add_text_field("article_id", STRING | STORED);
    builder.add_text_field("title", analyzed.clone());
    builder.add_text_field("text", analyzed);
    builder.add_u64_field("ordinal", STORED);
    builder.add_u64_field("char_start", STORED);
    builder.add_u64_field("char_end", STORED);
    builder.build()
}

impl Fields {
    pub(crate) fn of(schema: &Schema) -> Result<Self, String> {
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| format!("the index has no field {name:?}"))
        };
        Ok(Fields {
            passage_id: field("passage_id")?,
            article_id: field("article_id")?,
            title: field("title")?,
            text: field("text")?,
            ordinal: field("ordinal")?,
            char_start: field("char_start")?,
            char_end: field("char_end")?,
        })
    }
}

/// Builds an index from `options.corpus` into `options.out`.
///
/// The index is written to a hidden sibling directory and renamed into
/// place only when complete, so an interrupted build leaves any previous
/// index untouched. `interrupt` is polled between articles.
pub fn build_index(
    options: &BuildOptions,
    interrupt: &AtomicBool,
) -> Result<IndexManifest, IndexError> {
    options.passages.validate()?;
    options.bm25.validate()?;
    if options.threads == 0 {
        return Err(IndexError::InvalidOption(
            "--threads must be at least 1".into(),
        ));
    }
    let out = options.out.as_path();
    if out.exists() && !options.force {
        return Err(IndexError::AlreadyExists {
            path: out.to_path_buf(),
        });
    }
    let mut analyzer_config = options.analyzer.clone();
    analyzer_config.user_dictionary = None;
    let mut analyzer = KoreanAnalyzer::new(analyzer_config.clone(), &options.dictionary)?;
    let words = user_words(options, &analyzer)?;
    let corpus = open_corpus(&options.corpus)?;

    let staging = StagingDir::create(out)?;
    if let Some((words, info)) = words {
        let path = staging.path.join(USER_DICTIONARY_FILE);
        std::fs::write(&path, words.to_csv()).map_err(|source| IndexError::Io { path, source })?;
        analyzer_config.user_dictionary = Some(info);
        analyzer =
            KoreanAnalyzer::with_user_words(analyzer_config.clone(), &options.dictionary, &words)?;
    }
    let started = Instant::now();
    let tantivy_err = |source| IndexError::Tantivy {
        path: staging.path.clone(),
        source,
    };
    let settings = tantivy::IndexSettings {
        docstore_blocksize: DOCSTORE_BLOCK_BYTES,
        ..tantivy::IndexSettings::default()
    };
    let index = Index::builder()
        .schema(schema())
        .settings(settings)
        .create_in_dir(&staging.path)
        .map_err(tantivy_err)?;
    index
        .tokenizers()
        .register(TOKENIZER_NAME, analyzer.tokenizer());
    let fields = Fields::of(&index.schema()).map_err(|message| IndexError::BadManifest {
        path: staging.path.clone(),
        message,
    })?;
    let per_thread = (options.memory_mb * 1_000_000 / options.threads).max(15_000_000);
    let mut writer: IndexWriter = index
        .writer_with_num_threads(options.threads, per_thread * options.threads)
        .map_err(tantivy_err)?;
    // Segments are merged once, at the end (below); merges along the way
    // would only rewrite the same postings several times.
    writer.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));

    let bar = progress_bar(options.progress);
    let mut manifest = IndexManifest::new(
        options.corpus.clone(),
        options.passages,
        analyzer_config,
        options.bm25,
    );
    let mut stream = Passages::new(
        UniqueArticles::new(corpus, options.skip_bad_lines),
        Some(options.passages),
    );
    while let Some(event) = stream.next() {
        if interrupt.load(Ordering::Relaxed) {
            return Err(IndexError::Interrupted);
        }
        let (record, passages) = match event? {
            PassageEvent::Article { record, passages } => (record, passages),
            PassageEvent::Repeat { record, first } => {
                bar.println(format!(
                    "{}: article {:?} repeats {first} exactly; indexed once",
                    record.location, record.article.id
                ));
                continue;
            }
            PassageEvent::Skipped(err) => {
                bar.println(format!("skipped: {err}"));
                continue;
            }
        };
        for passage in passages {
            writer
                .add_document(doc!(
                    fields.passage_id => passage.id,
                    fields.article_id => passage.article_id,
                    fields.title => passage.title,
                    fields.text => passage.text,
                    fields.ordinal => u64::from(passage.ordinal),
                    fields.char_start => passage.char_start as u64,
                    fields.char_end => passage.char_end as u64,
                ))
                .map_err(tantivy_err)?;
        }
        bar.inc(record.bytes as u64);
        bar.set_message(format!(
            "{} articles, {} passages",
            stream.counts().articles,
            stream.counts().passages
        ));
    }
    manifest.counts = *stream.counts();
    if manifest.counts.passages == 0 {
        return Err(IndexError::NoPassages {
            path: options.corpus.clone(),
        });
    }
    bar.set_message(format!(
        "{} articles, {} passages; committing",
        manifest.counts.articles, manifest.counts.passages
    ));
    writer.commit().map_err(tantivy_err)?;
    // The index is read-only once built: one segment means one dictionary
    // lookup per query term and one top-k pass, instead of one per segment.
    let segments = index.searchable_segment_ids().map_err(tantivy_err)?;
    if interrupt.load(Ordering::Relaxed) {
        return Err(IndexError::Interrupted);
    }
    if segments.len() > 1 {
        bar.set_message(format!(
            "{} articles, {} passages; merging {} segments into one",
            manifest.counts.articles,
            manifest.counts.passages,
            segments.len()
        ));
        writer.merge(&segments).wait().map_err(tantivy_err)?;
    }
    writer.wait_merging_threads().map_err(tantivy_err)?;
    bar.finish_and_clear();

    manifest.build_seconds = started.elapsed().as_secs_f64();
    manifest.threads = options.threads;
    manifest.created_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    manifest.write(&staging.path)?;
    staging.publish(out)?;
    Ok(manifest)
}

/// The user-dictionary entries of this build (titles, then the user's list,
/// which wins), or `None` when there are none.
fn user_words(
    options: &BuildOptions,
    analyzer: &KoreanAnalyzer,
) -> Result<Option<(UserWords, UserDictionaryInfo)>, IndexError> {
    if analyzer.config().kind != odqa_analysis::AnalyzerKind::Morphological {
        return Ok(None);
    }
    let mut words = UserWords::default();
    if options.title_dictionary {
        let mut titles = Vec::new();
        for event in odqa_corpus::articles(&options.corpus, options.skip_bad_lines)? {
            if let PassageEvent::Article { record, .. } = event? {
                titles.push(record.article.title);
            }
        }
        words = analyzer.title_words(titles.iter().map(String::as_str))?;
    }
    let from_titles = words.len();
    if let Some(path) = &options.user_dictionary {
        let text = std::fs::read_to_string(path).map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
        words.extend(UserWords::parse_list(&text, &path.display().to_string())?);
    }
    if words.is_empty() {
        return Ok(None);
    }
    let info = UserDictionaryInfo {
        file: USER_DICTIONARY_FILE.into(),
        entries: words.len(),
        from_titles,
        user_file: options
            .user_dictionary
            .as_ref()
            .map(|p| p.display().to_string()),
    };
    Ok(Some((words, info)))
}

fn progress_bar(visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        None,
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {msg} · {bytes} read ({bytes_per_sec})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A hidden directory beside the destination; removed unless published.
struct StagingDir {
    path: PathBuf,
    published: bool,
}

impl StagingDir {
    fn create(out: &Path) -> Result<Self, IndexError> {
        let name = out
            .file_name()
            .ok_or_else(|| {
                IndexError::InvalidOption(format!("--out {} must name a directory", out.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|source| IndexError::Io {
            path: parent.clone(),
            source,
        })?;
        remove_stale_staging(&parent, &name);
        let path = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| IndexError::Io {
                path: path.clone(),
                source,
            })?;
        }
        std::fs::create_dir(&path).map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(StagingDir {
            path,
            published: false,
        })
    }

    fn publish(mut self, out: &Path) -> Result<(), IndexError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, source }
        };
        if out.exists() {
            let old = self.path.with_extension("old");
            std::fs::rename(out, &old).map_err(io(out))?;
            std::fs::rename(&self.path, out).map_err(io(out))?;
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        } else {
            std::fs::rename(&self.path, out).map_err(io(out))?;
        }
        self.published = true;
        Ok(())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Staging directories of builds that were killed (no Drop ran) and whose
/// process is gone.
fn remove_stale_staging(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = pid.trim_end_matches(".old");
        let alive = Path::new("/proc").join(pid).exists() && pid != std::process::id().to_string();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
