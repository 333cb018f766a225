use std::collections::HashMap;
use std::path::{Path, PathBuf};

use odqa_analysis::{DictionarySource, KoreanAnalyzer, TOKENIZER_NAME};
use serde::{Deserialize, Serialize};
use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{
    DocAddress, DocSet, Index, IndexReader, Searcher, TantivyDocument, Term, TERMINATED,
};

use crate::build::Fields;
use crate::manifest::{Bm25Params, IndexManifest};
use crate::IndexError;

/// One ranked passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub passage_id: String,
    pub article_id: String,
    pub title: String,
    pub ordinal: u32,
    /// Character offsets of the passage in its article's text.
    pub char_start: usize,
    pub char_end: usize,
    pub score: f32,
    pub text: String,
}

/// An opened index, ready to search from many threads.
pub struct PassageIndex {
    path: PathBuf,
    manifest: IndexManifest,
    analyzer: KoreanAnalyzer,
    reader: IndexReader,
    fields: Fields,
}

impl std::fmt::Debug for PassageIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassageIndex")
            .field("path", &self.path)
            .finish()
    }
}

impl PassageIndex {
    /// Opens an index built by [`crate::build_index`], with the analyzer its
    /// manifest records.
    pub fn open(path: &Path, dictionary: &DictionarySource) -> Result<Self, IndexError> {
        let manifest = IndexManifest::read(path)?;
        let tantivy_err = |source| IndexError::Tantivy {
            path: path.to_path_buf(),
            source,
        };
        let index = Index::open_in_dir(path).map_err(tantivy_err)?;
        let fields = Fields::of(&index.schema()).map_err(|message| IndexError::BadManifest {
            path: path.to_path_buf(),
            message,
        })?;
        let analyzer = KoreanAnalyzer::new(manifest.analyzer.clone(), dictionary)?;
        index
            .tokenizers()
            .register(TOKENIZER_NAME, analyzer.tokenizer());
        let reader = index.reader().map_err(tantivy_err)?;
        Ok(PassageIndex {
            path: path.to_path_buf(),
            manifest,
            analyzer,
            reader,
            fields,
        })
    }

    pub fn manifest(&self) -> &IndexManifest {
        &self.manifest
    }

    pub fn analyzer(&self) -> &KoreanAnalyzer {
        &self.analyzer
    }

    pub fn num_passages(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The passage with this id, if the index has it.
    pub fn passage(&self, passage_id: &str) -> Result<Option<Hit>, IndexError> {
        let searcher = self.reader.searcher();
        let term = Term::from_field_text(self.fields.passage_id, passage_id);
        let tantivy_err = |source| IndexError::Tantivy {
            path: self.path.clone(),
            source,
        };
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            let inverted = segment
                .inverted_index(self.fields.passage_id)
                .map_err(tantivy_err)?;
            let postings = inverted
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(|e| tantivy_err(e.into()))?;
            if let Some(postings) = postings {
                let doc = postings.doc();
                if doc != TERMINATED && segment.alive_bitset().is_none_or(|a| a.is_alive(doc)) {
                    let address = DocAddress::new(segment_ord as u32, doc);
                    return self.hit(&searcher, address, 0.0).map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Every passage as `(passage_id, text)`, in index order: the same
    /// order for the same index, so work over it can resume.
    pub fn passages(&self) -> Result<Vec<(String, String)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            for doc in 0..segment.max_doc() {
                if segment.alive_bitset().is_some_and(|a| !a.is_alive(doc)) {
                    continue;
                }
                let hit = self.hit(&searcher, DocAddress::new(segment_ord as u32, doc), 0.0)?;
                out.push((hit.passage_id, hit.text));
            }
        }
        Ok(out)
    }

    /// The top `k` passages for `query` under the manifest's BM25 parameters.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<Hit>, IndexError> {
        self.search_with(query, k, &self.manifest.bm25)
    }

    /// The top `k` passages under explicit BM25 parameters.
    pub fn search_with(
        &self,
        query: &str,
        k: usize,
        params: &Bm25Params,
    ) -> Result<Vec<Hit>, IndexError> {
        params.validate()?;
        let terms = self.analyzer.terms(query)?;
        if terms.is_empty() {
            return Err(IndexError::EmptyQuery {
                query: query.to_string(),
            });
        }
        let mut query_terms: Vec<(String, f32)> = Vec::new();
        for term in terms {
            match query_terms.iter_mut().find(|(t, _)| *t == term) {
                Some((_, count)) => *count += 1.0,
                None => query_terms.push((term, 1.0)),
            }
        }
        let searcher = self.reader.searcher();
        let top = self
            .score(&searcher, &query_terms, params, k)
            .map_err(|source| IndexError::Tantivy {
                path: self.path.clone(),
                source,
            })?;
        top.into_iter()
            .map(|(score, address)| self.hit(&searcher, address, score))
            .collect()
    }

    /// Term-at-a-time BM25 over title and text with a dense accumulator per
    /// segment; exact, and fast enough for passage collections of this size.
    fn score(
        &self,
        searcher: &Searcher,
        query_terms: &[(String, f32)],
        params: &Bm25Params,
        k: usize,
    ) -> tantivy::Result<Vec<(f32, DocAddress)>> {
        let num_docs = searcher.num_docs().max(1) as f32;
        let fields = [
            (self.fields.text, 1.0f32),
            (self.fields.title, params.title_weight),
        ];
        let mut field_stats: HashMap<Field, f32> = HashMap::new();
        for (field, _) in fields {
            let mut tokens = 0u64;
            for segment in searcher.segment_readers() {
                tokens += segment.inverted_index(field)?.total_num_tokens();
            }
            field_stats.insert(field, tokens as f32 / num_docs);
        }

        let mut top: Vec<(f32, DocAddress)> = Vec::new();
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            let mut scores = vec![0f32; segment.max_doc() as usize];
            for &(field, field_weight) in &fields {
                if field_weight == 0.0 {
                    continue;
                }
                let avg_len = field_stats.get(&field).copied().unwrap_or(1.0).max(1.0);
                let inverted = segment.inverted_index(field)?;
                let norms = segment.get_fieldnorms_reader(field)?;
                for (text, query_count) in query_terms {
                    let term = Term::from_field_text(field, text);
                    let doc_freq = searcher.doc_freq(&term)? as f32;
                    if doc_freq == 0.0 {
                        continue;
                    }
                    let idf = (1.0 + (num_docs - doc_freq + 0.5) / (doc_freq + 0.5)).ln();
                    let weight = field_weight * query_count * idf * (params.k1 + 1.0);
                    let Some(mut postings) =
                        inverted.read_postings(&term, IndexRecordOption::WithFreqs)?
                    else {
                        continue;
                    };
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        let tf = postings.term_freq() as f32;
                        let len = norms.fieldnorm(doc) as f32;
                        let norm = params.k1 * (1.0 - params.b + params.b * len / avg_len);
                        scores[doc as usize] += weight * tf / (tf + norm);
                        doc = postings.advance();
                    }
                }
            }
            let alive = segment.alive_bitset();
            for (doc, &score) in scores.iter().enumerate() {
                if score > 0.0 && alive.is_none_or(|a| a.is_alive(doc as u32)) {
                    top.push((score, DocAddress::new(segment_ord as u32, doc as u32)));
                }
            }
            keep_best(&mut top, k);
        }
        top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(top)
    }

    fn hit(&self, searcher: &Searcher, address: DocAddress, score: f32) -> Result<Hit, IndexError> {
        let doc: TantivyDocument = searcher
            .doc(address)
            .map_err(|source| IndexError::Tantivy {
                path: self.path.clone(),
                source,
            })?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let number = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_u64())
                .unwrap_or_default()
        };
        Ok(Hit {
            passage_id: text(self.fields.passage_id),
            article_id: text(self.fields.article_id),
            title: text(self.fields.title),
            ordinal: number(self.fields.ordinal) as u32,
            char_start: number(self.fields.char_start) as usize,
            char_end: number(self.fields.char_end) as usize,
            score,
            text: text(self.fields.text),
        })
    }
}

/// Keeps the `k` best-scoring entries (ties broken by address, for
/// deterministic results), in no particular order.
fn keep_best(entries: &mut Vec<(f32, DocAddress)>, k: usize) {
    if entries.len() > k {
        entries.select_nth_unstable_by(k.saturating_sub(1), |a, b| {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
        });
        entries.truncate(k);
    }
}
