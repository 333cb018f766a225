//! Articles that share an id would give passages that share ids.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::{ArticleRecord, CorpusError, SourceLocation};

/// What [`DuplicateIds::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occurrence {
    /// The first article with this id.
    First,
    /// The same id with the same title and text again: a repeated line,
    /// safe to drop (the caller should count it).
    Repeat { first: SourceLocation },
}

/// Remembers every article id seen so far in one pass over a corpus.
#[derive(Debug, Default)]
pub struct DuplicateIds {
    seen: HashMap<String, (u64, SourceLocation)>,
}

impl DuplicateIds {
    /// A repeated identical article is [`Occurrence::Repeat`]; an id reused
    /// for different content is a malformed (recoverable) record.
    pub fn check(&mut self, record: &ArticleRecord) -> Result<Occurrence, CorpusError> {
        let mut hasher = DefaultHasher::new();
        record.article.title.hash(&mut hasher);
        record.article.text.hash(&mut hasher);
        let digest = hasher.finish();
        match self.seen.entry(record.article.id.clone()) {
            Entry::Vacant(slot) => {
                slot.insert((digest, record.location.clone()));
                Ok(Occurrence::First)
            }
            Entry::Occupied(slot) if slot.get().0 == digest => Ok(Occurrence::Repeat {
                first: slot.get().1.clone(),
            }),
            Entry::Occupied(slot) => Err(CorpusError::Malformed {
                location: record.location.clone(),
                message: format!(
                    "article id {:?} was already used for a different article at {}",
                    record.article.id,
                    slot.get().1
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Article;

    fn record(id: &str, text: &str, line: usize) -> ArticleRecord {
        ArticleRecord {
            article: Article {
                id: id.into(),
                title: "t".into(),
                text: text.into(),
            },
            location: SourceLocation {
                path: "c.jsonl".into(),
                line,
            },
            bytes: 0,
        }
    }

    #[test]
    fn repeats_and_conflicts() {
        let mut ids = DuplicateIds::default();
        assert_eq!(ids.check(&record("1", "a", 1)).unwrap(), Occurrence::First);
        assert_eq!(ids.check(&record("2", "a", 2)).unwrap(), Occurrence::First);
        assert_eq!(
            ids.check(&record("1", "a", 3)).unwrap(),
            Occurrence::Repeat {
                first: SourceLocation {
                    path: "c.jsonl".into(),
                    line: 1
                }
            }
        );
        let err = ids.check(&record("1", "b", 4)).unwrap_err();
        assert!(err.is_recoverable());
        assert!(err.to_string().contains("c.jsonl:4"), "{err}");
        assert!(err.to_string().contains("c.jsonl:1"), "{err}");
    }
}

/// One step of [`UniqueArticles`].
#[derive(Debug)]
pub enum CorpusEvent {
    /// An article to use.
    Article(ArticleRecord),
    /// An exact repeat of an earlier article, to count and drop.
    Repeat {
        record: ArticleRecord,
        first: SourceLocation,
    },
    /// A malformed record skipped because the caller allowed it.
    Skipped(CorpusError),
}

/// A corpus's articles with repeats recognised and, when `skip_bad_records`
/// is set, malformed records turned into [`CorpusEvent::Skipped`]; every
/// other error ends the iteration with `Err`.
#[derive(Debug)]
pub struct UniqueArticles {
    reader: crate::CorpusReader,
    ids: DuplicateIds,
    skip_bad_records: bool,
}

impl UniqueArticles {
    pub fn new(reader: crate::CorpusReader, skip_bad_records: bool) -> Self {
        UniqueArticles {
            reader,
            ids: DuplicateIds::default(),
            skip_bad_records,
        }
    }
}

impl Iterator for UniqueArticles {
    type Item = Result<CorpusEvent, CorpusError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.reader.next()?;
        let event = record.and_then(|record| match self.ids.check(&record)? {
            Occurrence::First => Ok(CorpusEvent::Article(record)),
            Occurrence::Repeat { first } => Ok(CorpusEvent::Repeat { record, first }),
        });
        Some(match event {
            Err(err) if self.skip_bad_records && err.is_recoverable() => {
                Ok(CorpusEvent::Skipped(err))
            }
            other => other,
        })
    }
}
