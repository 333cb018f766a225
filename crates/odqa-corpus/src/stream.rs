//! The one pass "corpus file(s) → unique articles → passages" that index
//! builds, exports and pre-training share, with its counts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    open_corpus, split_passages, ArticleRecord, CorpusError, CorpusEvent, Passage, PassageConfig,
    SourceLocation, UniqueArticles,
};

/// What a [`Passages`] stream has counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusCounts {
    /// Articles used (first occurrences of their id).
    pub articles: u64,
    /// Passages of those articles (0 for [`articles`] streams).
    pub passages: u64,
    /// Malformed records skipped (only with `skip_bad_records`).
    pub skipped_records: u64,
    /// Exact repeats of an earlier article, dropped.
    pub repeated_articles: u64,
    /// Characters (Unicode scalar values) of the used articles' texts.
    pub text_chars: u64,
    /// UTF-8 bytes of the used articles' texts.
    pub text_bytes: u64,
}

/// One step of a [`Passages`] stream.
#[derive(Debug)]
pub enum PassageEvent {
    /// An article to use, with its passages (none for [`articles`] streams).
    Article {
        record: ArticleRecord,
        passages: Vec<Passage>,
    },
    /// An exact repeat of an earlier article, counted and dropped.
    Repeat {
        record: ArticleRecord,
        first: SourceLocation,
    },
    /// A malformed record skipped because the caller allowed it (counted).
    Skipped(CorpusError),
}

/// The unique articles of a corpus, each split into passages, counting as
/// it goes ([`Passages::counts`]). An error other than a skipped record
/// is returned as `Err` and the caller stops there.
///
/// Iterate it with `by_ref()` (or `while let`) to read the counts after
/// the last item; stopping early (an interrupt) is just not calling `next`.
#[derive(Debug)]
pub struct Passages {
    articles: UniqueArticles,
    config: Option<PassageConfig>,
    counts: CorpusCounts,
}

/// The passages of the corpus at `path` (a file or a directory of files,
/// see [`open_corpus`]): repeats of an article are dropped, malformed
/// records skipped when `skip_bad_records` is set, and each article split
/// by [`split_passages`] with `config` (not validated here; see
/// [`PassageConfig::validate`]).
pub fn passages(
    path: &Path,
    config: &PassageConfig,
    skip_bad_records: bool,
) -> Result<Passages, CorpusError> {
    Ok(Passages::new(
        UniqueArticles::new(open_corpus(path)?, skip_bad_records),
        Some(*config),
    ))
}

/// The same stream without the split: every [`PassageEvent::Article`] has
/// no passages, for callers that split articles themselves.
pub fn articles(path: &Path, skip_bad_records: bool) -> Result<Passages, CorpusError> {
    Ok(Passages::new(
        UniqueArticles::new(open_corpus(path)?, skip_bad_records),
        None,
    ))
}

impl Passages {
    /// Passages of `articles`, split with `config` (`None`: not split).
    pub fn new(articles: UniqueArticles, config: Option<PassageConfig>) -> Self {
        Passages {
            articles,
            config,
            counts: CorpusCounts::default(),
        }
    }

    /// Counts of the items returned so far.
    pub fn counts(&self) -> &CorpusCounts {
        &self.counts
    }
}

impl Iterator for Passages {
    type Item = Result<PassageEvent, CorpusError>;

    fn next(&mut self) -> Option<Self::Item> {
        let event = match self.articles.next()? {
            Ok(event) => event,
            Err(err) => return Some(Err(err)),
        };
        let counts = &mut self.counts;
        Some(Ok(match event {
            CorpusEvent::Article(record) => {
                let text = &record.article.text;
                counts.articles += 1;
                counts.text_chars += text.chars().count() as u64;
                counts.text_bytes += text.len() as u64;
                let passages = match &self.config {
                    Some(config) => split_passages(&record.article, config),
                    None => Vec::new(),
                };
                counts.passages += passages.len() as u64;
                PassageEvent::Article { record, passages }
            }
            CorpusEvent::Repeat { record, first } => {
                counts.repeated_articles += 1;
                PassageEvent::Repeat { record, first }
            }
            CorpusEvent::Skipped(err) => {
                counts.skipped_records += 1;
                PassageEvent::Skipped(err)
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_articles_repeats_skips_and_passages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let lines = [
            r#"{"id": 1, "title": "가", "text": "첫 문단.\n둘째 문단."}"#,
            r#"{"id": 1, "title": "가", "text": "첫 문단.\n둘째 문단."}"#,
            "not json",
            r#"{"id": 2, "title": "나", "text": "셋"}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let mut stream = passages(&path, &PassageConfig::default(), true).unwrap();
        let events: Vec<_> = stream.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(
            *stream.counts(),
            CorpusCounts {
                articles: 2,
                passages: 2,
                skipped_records: 1,
                repeated_articles: 1,
                text_chars: 13,
                text_bytes: 29,
            }
        );
        let mut stream = articles(&path, true).unwrap();
        assert!(stream.by_ref().all(|e| match e {
            Ok(PassageEvent::Article { passages, .. }) => passages.is_empty(),
            other => other.is_ok(),
        }));
        assert_eq!(stream.counts().passages, 0);
        assert_eq!(stream.counts().articles, 2);
        assert!(passages(&path, &PassageConfig::default(), false)
            .unwrap()
            .any(|e| e.is_err()));
    }
}
