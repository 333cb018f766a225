//! Reading corpora: JSON lines (optionally zstd-compressed), WikiExtractor
//! plain shards, and directories of either.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::{Article, CorpusError, SourceLocation};

/// One article read from a corpus, with where it came from.
#[derive(Debug)]
pub struct ArticleRecord {
    /// The article.
    pub article: Article,
    /// Where the record starts (the JSON line, or the `<doc>` line).
    pub location: SourceLocation,
    /// Bytes of input consumed for this record (for a `.zst` file:
    /// decompressed bytes), newlines and preceding blank or bad lines
    /// included, so the sum over records approximates the input size.
    pub bytes: usize,
}

/// Opens a corpus: a file (JSON lines, `.zst`-compressed JSON lines,
/// WikiExtractor plain shard) or a directory of such files.
///
/// A directory is listed here (recursively, sorted, hidden entries skipped);
/// a single file is opened here. Files of a directory are opened as the
/// iteration reaches them.
pub fn open_corpus(path: &Path) -> Result<CorpusReader, CorpusError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CorpusError::NotFound(path.to_path_buf()))
        }
        Err(source) => {
            return Err(CorpusError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if meta.is_dir() {
        let mut files = Vec::new();
        let mut visited = HashSet::new();
        list_files(path, &mut files, &mut visited)?;
        if files.is_empty() {
            return Err(CorpusError::Empty(path.to_path_buf()));
        }
        files.sort();
        Ok(CorpusReader {
            root: path.to_path_buf(),
            files: files.into_iter(),
            current: None,
            articles: 0,
            done: false,
        })
    } else {
        let current = FileReader::open(path)?;
        Ok(CorpusReader {
            root: path.to_path_buf(),
            files: Vec::new().into_iter(),
            current: Some(current),
            articles: 0,
            done: false,
        })
    }
}

fn io_err(path: &Path, source: std::io::Error) -> CorpusError {
    CorpusError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Collects the regular files under `dir`, skipping hidden entries. Symlinks
/// are followed; a directory reached twice (a symlink loop) is listed once.
fn list_files(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
) -> Result<(), CorpusError> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?;
        if meta.is_dir() {
            list_files(&path, files, visited)?;
        } else if meta.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// Iterator over the articles of a corpus, in file order then line order.
///
/// Yields `Err` for a bad record; after a recoverable error
/// ([`CorpusError::is_recoverable`]) it continues with the next record, after
/// any other error it yields `None`. When the corpus ends without a single
/// article it yields [`CorpusError::Empty`] once.
pub struct CorpusReader {
    root: PathBuf,
    files: std::vec::IntoIter<PathBuf>,
    current: Option<FileReader>,
    articles: u64,
    done: bool,
}

impl std::fmt::Debug for CorpusReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorpusReader")
            .field("root", &self.root)
            .field("current", &self.current.as_ref().map(|c| &c.path))
            .field("articles", &self.articles)
            .field("done", &self.done)
            .finish()
    }
}

impl CorpusReader {
    /// The path given to [`open_corpus`].
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Iterator for CorpusReader {
    type Item = Result<ArticleRecord, CorpusError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let reader = match &mut self.current {
                Some(r) => r,
                None => match self.files.next() {
                    Some(path) => match FileReader::open(&path) {
                        Ok(r) => self.current.insert(r),
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    },
                    None => {
                        self.done = true;
                        if self.articles == 0 {
                            return Some(Err(CorpusError::Empty(self.root.clone())));
                        }
                        return None;
                    }
                },
            };
            match reader.next_record() {
                Some(Ok(record)) => {
                    self.articles += 1;
                    return Some(Ok(record));
                }
                Some(Err(e)) => {
                    if !e.is_recoverable() {
                        self.done = true;
                        self.current = None;
                    }
                    return Some(Err(e));
                }
                None => self.current = None,
            }
        }
    }
}

impl std::iter::FusedIterator for CorpusReader {}

/// The format of one file.
#[derive(Debug)]
enum Format {
    /// Decided by the first non-blank line.
    Unknown,
    Jsonl,
    Wiki(WikiState),
}

#[derive(Debug)]
enum WikiState {
    Outside,
    InDoc(DocInProgress),
    /// Inside a `<doc>` element already reported as malformed: its lines are
    /// part of that bad record, up to `</doc>` or the next `<doc`.
    Skipping,
}

#[derive(Debug)]
struct DocInProgress {
    id: String,
    title: String,
    start_line: usize,
    lines: Vec<String>,
    title_checked: bool,
}

/// One line of input, `\n` and a trailing `\r` removed.
struct Line {
    bytes: Vec<u8>,
    number: usize,
}

impl Line {
    fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }
    fn is_doc_start(&self) -> bool {
        self.bytes.starts_with(b"<doc")
            && self
                .bytes
                .get(4)
                .is_some_and(|&b| b == b'>' || b.is_ascii_whitespace())
    }
    fn is_doc_end(&self) -> bool {
        self.bytes.trim_ascii() == b"</doc>"
    }
}

struct FileReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    line_no: usize,
    format: Format,
    /// Bytes read but not yet attributed to a record.
    pending_bytes: usize,
    /// A line to process again (the `<doc` that closed an unclosed doc).
    pushback: Option<Line>,
    finished: bool,
}

fn has_ext(name: &str, ext: &str) -> bool {
    name.len() > ext.len() && name.to_ascii_lowercase().ends_with(ext)
}

impl FileReader {
    fn open(path: &Path) -> Result<FileReader, CorpusError> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let mut name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reader: Box<dyn BufRead + Send> = if has_ext(&name, ".zst") {
            name.truncate(name.len() - 4);
            let decoder = zstd::stream::read::Decoder::new(file).map_err(|e| io_err(path, e))?;
            Box::new(BufReader::with_capacity(1 << 16, decoder))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, file))
        };
        let format = if has_ext(&name, ".jsonl") || has_ext(&name, ".json") {
            Format::Jsonl
        } else {
            Format::Unknown
        };
        Ok(FileReader {
            path: path.to_path_buf(),
            reader,
            line_no: 0,
            format,
            pending_bytes: 0,
            pushback: None,
            finished: false,
        })
    }

    fn location(&self, line: usize) -> SourceLocation {
        SourceLocation {
            path: self.path.clone(),
            line,
        }
    }

    fn malformed(&self, line: usize, message: impl Into<String>) -> CorpusError {
        CorpusError::Malformed {
            location: self.location(line),
            message: message.into(),
        }
    }

    /// Reads the next line, split on `\n` only.
    fn read_line(&mut self) -> Result<Option<Line>, CorpusError> {
        if let Some(line) = self.pushback.take() {
            return Ok(Some(line));
        }
        let mut bytes = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| io_err(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.pending_bytes += n;
        self.line_no += 1;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if self.line_no == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        Ok(Some(Line {
            bytes,
            number: self.line_no,
        }))
    }

    fn take_bytes(&mut self) -> usize {
        std::mem::take(&mut self.pending_bytes)
    }

    fn next_record(&mut self) -> Option<Result<ArticleRecord, CorpusError>> {
        if self.finished {
            return None;
        }
        loop {
            let line = match self.read_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.finished = true;
                    return self.at_eof().map(Err);
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            };
            if let Some(result) = self.process(line) {
                return Some(result);
            }
        }
    }

    fn at_eof(&mut self) -> Option<CorpusError> {
        match std::mem::replace(&mut self.format, Format::Unknown) {
            Format::Wiki(WikiState::InDoc(doc)) => Some(self.malformed(
                doc.start_line,
                format!("unclosed <doc id=\"{}\"> at end of file", doc.id),
            )),
            _ => None,
        }
    }

    /// Handles one line; `Some` when it completes a record or an error.
    fn process(&mut self, line: Line) -> Option<Result<ArticleRecord, CorpusError>> {
        match &self.format {
            Format::Unknown => {
                if line.is_blank() {
                    return None;
                }
                let first = line.bytes.trim_ascii_start();
                if first.starts_with(b"{") {
                    self.format = Format::Jsonl;
                } else if line.is_doc_start() {
                    self.format = Format::Wiki(WikiState::Outside);
                } else {
                    // Nothing of this file can be read: report it as one bad
                    // record and go on with the next file.
                    self.finished = true;
                    return Some(Err(self.malformed(
                        line.number,
                        "unrecognized corpus format: the first non-blank line starts with \
                         neither '{' (JSON lines) nor '<doc' (WikiExtractor); rest of file skipped",
                    )));
                }
                self.process(line)
            }
            Format::Jsonl => self.process_json(line),
            Format::Wiki(_) => self.process_wiki(line),
        }
    }

    fn process_json(&mut self, line: Line) -> Option<Result<ArticleRecord, CorpusError>> {
        if line.is_blank() {
            return None;
        }
        let bytes = self.take_bytes();
        let text = match std::str::from_utf8(&line.bytes) {
            Ok(t) => t,
            Err(e) => {
                return Some(Err(
                    self.malformed(line.number, format!("invalid UTF-8: {e}"))
                ))
            }
        };
        match parse_json_article(text) {
            Ok(article) => Some(Ok(ArticleRecord {
                article,
                location: self.location(line.number),
                bytes,
            })),
            Err(message) => Some(Err(self.malformed(line.number, message))),
        }
    }

    fn process_wiki(&mut self, line: Line) -> Option<Result<ArticleRecord, CorpusError>> {
        let state = match std::mem::replace(&mut self.format, Format::Wiki(WikiState::Outside)) {
            Format::Wiki(s) => s,
            other => {
                self.format = other;
                return None;
            }
        };
        let (next, result) = self.wiki_step(state, line);
        self.format = Format::Wiki(next);
        result
    }

    fn wiki_step(
        &mut self,
        state: WikiState,
        line: Line,
    ) -> (WikiState, Option<Result<ArticleRecord, CorpusError>>) {
        match state {
            WikiState::Outside => {
                if line.is_blank() {
                    (WikiState::Outside, None)
                } else if line.is_doc_start() {
                    match parse_doc_header(&line.bytes) {
                        Ok((id, title)) => (
                            WikiState::InDoc(DocInProgress {
                                id,
                                title,
                                start_line: line.number,
                                lines: Vec::new(),
                                title_checked: false,
                            }),
                            None,
                        ),
                        Err(msg) => (
                            WikiState::Skipping,
                            Some(Err(self.malformed(line.number, msg))),
                        ),
                    }
                } else if line.is_doc_end() {
                    (
                        WikiState::Outside,
                        Some(Err(
                            self.malformed(line.number, "</doc> without an open <doc>")
                        )),
                    )
                } else {
                    (
                        WikiState::Outside,
                        Some(Err(
                            self.malformed(line.number, "text outside a <doc> element")
                        )),
                    )
                }
            }
            WikiState::Skipping => {
                if line.is_doc_end() {
                    (WikiState::Outside, None)
                } else if line.is_doc_start() {
                    self.pushback = Some(line);
                    (WikiState::Outside, None)
                } else {
                    (WikiState::Skipping, None)
                }
            }
            WikiState::InDoc(mut doc) => {
                if line.is_doc_end() {
                    let bytes = self.take_bytes();
                    let location = self.location(doc.start_line);
                    let article = Article {
                        id: doc.id,
                        title: doc.title,
                        text: join_trimmed(&doc.lines),
                    };
                    (
                        WikiState::Outside,
                        Some(Ok(ArticleRecord {
                            article,
                            location,
                            bytes,
                        })),
                    )
                } else if line.is_doc_start() {
                    let err = self.malformed(
                        doc.start_line,
                        format!(
                            "unclosed <doc id=\"{}\">: a new <doc> starts at line {}",
                            doc.id, line.number
                        ),
                    );
                    self.pushback = Some(line);
                    (WikiState::Outside, Some(Err(err)))
                } else {
                    match String::from_utf8(line.bytes) {
                        Ok(text) => {
                            if !doc.title_checked {
                                doc.title_checked = true;
                                if text.trim() == doc.title.trim() {
                                    return (WikiState::InDoc(doc), None);
                                }
                            }
                            doc.lines.push(text);
                            (WikiState::InDoc(doc), None)
                        }
                        Err(e) => {
                            let err = self.malformed(
                                line.number,
                                format!(
                                    "invalid UTF-8 in <doc id=\"{}\"> (line {}): {}",
                                    doc.id,
                                    doc.start_line,
                                    e.utf8_error()
                                ),
                            );
                            (WikiState::Skipping, Some(Err(err)))
                        }
                    }
                }
            }
        }
    }
}

/// Joins lines with `\n`, dropping leading and trailing blank lines.
fn join_trimmed(lines: &[String]) -> String {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(a), Some(b)) => lines[a..=b].join("\n"),
        _ => String::new(),
    }
}

#[derive(serde::Deserialize)]
struct RawArticle {
    id: Option<serde_json::Value>,
    title: Option<serde_json::Value>,
    text: Option<serde_json::Value>,
}

fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses one JSON line into an article; `Err` holds the message.
fn parse_json_article(line: &str) -> Result<Article, String> {
    if !line.trim_start().starts_with('{') {
        return Err("expected a JSON object".to_string());
    }
    let raw: RawArticle = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let id = match raw.id {
        None => return Err("missing field `id`".to_string()),
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(v) => {
            return Err(format!(
                "field `id` must be a string or an integer, found {}",
                type_name(&v)
            ))
        }
    };
    if id.trim().is_empty() {
        return Err("field `id` is empty".to_string());
    }
    let title = match raw.title {
        None => return Err("missing field `title`".to_string()),
        Some(serde_json::Value::String(s)) => s,
        Some(v) => {
            return Err(format!(
                "field `title` must be a string, found {}",
                type_name(&v)
            ))
        }
    };
    if title.trim().is_empty() {
        return Err("field `title` is empty".to_string());
    }
    let text = match raw.text {
        None => return Err("missing field `text`".to_string()),
        Some(serde_json::Value::String(s)) => s,
        Some(v) => {
            return Err(format!(
                "field `text` must be a string, found {}",
                type_name(&v)
            ))
        }
    };
    Ok(Article { id, title, text })
}

/// Parses `<doc id="…" url="…" title="…">` into `(id, title)`.
fn parse_doc_header(bytes: &[u8]) -> Result<(String, String), String> {
    let line =
        std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8 in <doc> line: {e}"))?;
    let line = line.trim_end();
    let inner = line
        .strip_prefix("<doc")
        .and_then(|s| s.strip_suffix('>'))
        .ok_or_else(|| format!("malformed <doc> line: {line:?}"))?;
    let mut id = None;
    let mut title = None;
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("malformed attribute in <doc> line: {rest:?}"))?;
        let name = name.trim();
        let after = after.trim_start();
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| format!("attribute `{name}` of <doc> is not quoted"))?;
        let (value, after) = after
            .split_once('"')
            .ok_or_else(|| format!("unterminated attribute `{name}` in <doc> line"))?;
        match name {
            "id" => id = Some(unescape(value)),
            "title" => title = Some(unescape(value)),
            _ => {}
        }
        rest = after.trim_start();
    }
    let id = id.ok_or("missing attribute `id` in <doc> line")?;
    if id.trim().is_empty() {
        return Err("attribute `id` of <doc> is empty".to_string());
    }
    let title = title.ok_or("missing attribute `title` in <doc> line")?;
    if title.trim().is_empty() {
        return Err("attribute `title` of <doc> is empty".to_string());
    }
    Ok((id, title))
}

/// Unescapes `&quot;`, `&amp;`, `&lt;`, `&gt;`, `&apos;` and `&#39;`; any
/// other `&` is kept as is.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    const ENTITIES: [(&str, char); 6] = [
        ("&quot;", '"'),
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&apos;", '\''),
        ("&#39;", '\''),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        match ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((e, c)) => {
                out.push(*c);
                rest = &rest[e.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_entities_once() {
        assert_eq!(
            unescape("a &quot;b&quot; &amp;quot; &x; &"),
            "a \"b\" &quot; &x; &"
        );
    }

    #[test]
    fn doc_header() {
        let (id, title) =
            parse_doc_header(br#"<doc id="12" url="https://x/?curid=12" title="A &amp; B">"#)
                .unwrap();
        assert_eq!((id.as_str(), title.as_str()), ("12", "A & B"));
        assert!(parse_doc_header(br#"<doc id="12" url="u">"#)
            .unwrap_err()
            .contains("title"));
        assert!(parse_doc_header(br#"<doc title="x">"#)
            .unwrap_err()
            .contains("id"));
        assert!(parse_doc_header(br#"<doc id="1 title="x">"#).is_err());
    }

    #[test]
    fn json_field_errors_name_the_field() {
        assert!(parse_json_article(r#"{"id": 1, "title": "t"}"#)
            .unwrap_err()
            .contains("`text`"));
        assert!(
            parse_json_article(r#"{"id": 1.5, "title": "t", "text": ""}"#)
                .unwrap_err()
                .contains("`id`")
        );
        assert!(parse_json_article(r#"{"id": "1", "title": 3, "text": ""}"#)
            .unwrap_err()
            .contains("`title`"));
        assert!(
            parse_json_article(r#"{"id": "", "title": "t", "text": ""}"#)
                .unwrap_err()
                .contains("`id`")
        );
        assert!(parse_json_article(r#"["1", "t", "x"]"#).is_err());
        let a = parse_json_article(r#"{"id": -3, "title": "t", "text": "", "url": "u"}"#).unwrap();
        assert_eq!(a.id, "-3");
    }
}
