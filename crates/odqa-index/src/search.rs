use std::collections::HashMap;
use std::path::{Path, PathBuf};

use odqa_analysis::{DictionarySource, KoreanAnalyzer, UserWords, TOKENIZER_NAME};
use serde::{Deserialize, Serialize};
use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{
    DocAddress, DocSet, Index, IndexReader, Searcher, TantivyDocument, Term, TERMINATED,
};

use crate::build::Fields;
use crate::manifest::{Bm25Params, IndexManifest, QUESTION_TERMS};
use crate::IndexError;
use tantivy::fieldnorm::FieldNormReader;

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

/// A passage of a ranking, before its stored fields are read
/// ([`PassageIndex::fetch`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedPassage {
    pub score: f32,
    address: DocAddress,
}

/// How many of the single terms' best passages a query's pair terms
/// re-rank (at least `k`). On korquad-early over kowiki-2020-10k re-ranking
/// the top 100 gave the recall of scoring pairs in the top-k search itself.
pub const PAIR_RERANK_DEPTH: usize = 100;

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
        let analyzer = match &manifest.analyzer.user_dictionary {
            None => KoreanAnalyzer::new(manifest.analyzer.clone(), dictionary)?,
            Some(info) => {
                let file = path.join(&info.file);
                let text = std::fs::read_to_string(&file).map_err(|source| IndexError::Io {
                    path: file.clone(),
                    source,
                })?;
                let words = UserWords::from_csv(&text, &file.display().to_string())?;
                KoreanAnalyzer::with_user_words(manifest.analyzer.clone(), dictionary, &words)?
            }
        };
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

    /// `(passage id, text)` of every indexed passage in corpus order, cut
    /// again from the corpus the manifest names (what `odqa passages
    /// export` writes and `odqa index dense` embeds: the order is stable, so
    /// an interrupted embedding resumes). A corpus that no longer yields
    /// the indexed passages is an error, not a silently different index.
    pub fn corpus_passages(&self) -> Result<Vec<(String, String)>, IndexError> {
        let manifest = &self.manifest;
        // The build skipped malformed records only under --skip-bad-lines; skip the same.
        let skip_bad = manifest.counts.skipped_records > 0;
        let mut passages = Vec::new();
        for event in odqa_corpus::passages(&manifest.corpus, &manifest.passages, skip_bad)? {
            if let odqa_corpus::PassageEvent::Article { passages: cut, .. } = event? {
                passages.extend(cut.into_iter().map(|p| (p.id, p.text)));
            }
        }
        if passages.len() as u64 != self.num_passages() {
            return Err(IndexError::CorpusChanged {
                corpus: manifest.corpus.clone(),
                index: self.path.clone(),
                yields: passages.len() as u64,
                holds: self.num_passages(),
            });
        }
        Ok(passages)
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
        let ranked = self.rank_with(query, k, params)?;
        self.fetch(&ranked)
    }

    /// The ranking of [`Self::search_with`] without reading the passages'
    /// stored fields: what a benchmark times to compare with engines that
    /// return document ids ([`Self::fetch`] reads them).
    pub fn rank_with(
        &self,
        query: &str,
        k: usize,
        params: &Bm25Params,
    ) -> Result<Vec<RankedPassage>, IndexError> {
        params.validate()?;
        let terms = self.analyzer.terms(query)?;
        if terms.is_empty() {
            return Err(IndexError::EmptyQuery {
                query: query.to_string(),
            });
        }
        let pair_weight = if self.manifest.analyzer.term_pairs {
            params.pair_weight
        } else {
            0.0
        };
        let (singles, pairs) = weigh_query_terms(terms, params.question_weight, pair_weight);
        let searcher = self.reader.searcher();
        // Pairs re-rank the single terms' best passages instead of joining
        // the top-k search: inside it they let many more candidates past
        // the MaxScore bound (ranking latency ×1.8 at 60k articles), for
        // the same recall.
        let depth = if pairs.is_empty() {
            k
        } else {
            k.max(PAIR_RERANK_DEPTH)
        };
        let scored = if params.exhaustive {
            self.score(&searcher, &singles, params, depth)
        } else {
            self.score_maxscore(&searcher, &singles, params, depth)
        };
        let tantivy_err = |source| IndexError::Tantivy {
            path: self.path.clone(),
            source,
        };
        let mut top = scored.map_err(tantivy_err)?;
        if !pairs.is_empty() {
            self.add_pair_scores(&searcher, &pairs, params, &mut top)
                .map_err(tantivy_err)?;
            top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            top.truncate(k);
        }
        Ok(top
            .into_iter()
            .map(|(score, address)| RankedPassage { score, address })
            .collect())
    }

    /// The passages of a ranking from [`Self::rank_with`], in its order.
    pub fn fetch(&self, ranked: &[RankedPassage]) -> Result<Vec<Hit>, IndexError> {
        let searcher = self.reader.searcher();
        ranked
            .iter()
            .map(|r| self.hit(&searcher, r.address, r.score))
            .collect()
    }

    /// Adds each pair term's BM25 score to the passages of `top` that hold
    /// it (in pair order, text then title, so both search paths sum alike).
    /// Pair postings are short: each is walked by seeking the candidates.
    fn add_pair_scores(
        &self,
        searcher: &Searcher,
        pairs: &[(String, f32)],
        params: &Bm25Params,
        top: &mut [(f32, DocAddress)],
    ) -> tantivy::Result<()> {
        let num_docs = searcher.num_docs().max(1) as f32;
        let fields = [
            (self.fields.text, 1.0f32),
            (self.fields.title, params.title_weight),
        ];
        // Candidates in address order, for forward-only seeks.
        let mut order: Vec<usize> = (0..top.len()).collect();
        order.sort_by_key(|&i| top[i].1);
        for (field, field_weight) in fields {
            if field_weight == 0.0 {
                continue;
            }
            let avg_len = average_length(searcher, field)?;
            for (text, query_weight) in pairs {
                let term = Term::from_field_text(field, text);
                let doc_freq = searcher.doc_freq(&term)? as f32;
                if doc_freq == 0.0 {
                    continue;
                }
                let idf = idf(num_docs, doc_freq);
                let weight = field_weight * query_weight * idf * (params.k1 + 1.0);
                let mut segment_postings = None;
                let mut current_segment = u32::MAX;
                for &i in &order {
                    let address = top[i].1;
                    if address.segment_ord != current_segment {
                        current_segment = address.segment_ord;
                        let segment = searcher.segment_reader(current_segment);
                        segment_postings = match segment
                            .inverted_index(field)?
                            .read_postings(&term, IndexRecordOption::WithFreqs)?
                        {
                            Some(p) => Some((p, segment.get_fieldnorms_reader(field)?)),
                            None => None,
                        };
                    }
                    let Some((postings, norms)) = segment_postings.as_mut() else {
                        continue;
                    };
                    if postings.doc() < address.doc_id {
                        postings.seek(address.doc_id);
                    }
                    if postings.doc() == address.doc_id {
                        let tf = postings.term_freq() as f32;
                        let len = norms.fieldnorm(address.doc_id) as f32;
                        let norm = params.k1 * (1.0 - params.b + params.b * len / avg_len);
                        top[i].0 += weight * tf / (tf + norm);
                    }
                }
            }
        }
        Ok(())
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
            field_stats.insert(field, average_length(searcher, field)?);
        }

        let mut top: Vec<(f32, DocAddress)> = Vec::new();
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            let mut scores = vec![0f32; segment.max_doc() as usize];
            for &(field, field_weight) in &fields {
                if field_weight == 0.0 {
                    continue;
                }
                let avg_len = field_stats.get(&field).copied().unwrap_or(1.0);
                let inverted = segment.inverted_index(field)?;
                let norms = segment.get_fieldnorms_reader(field)?;
                for (text, query_count) in query_terms {
                    let term = Term::from_field_text(field, text);
                    let doc_freq = searcher.doc_freq(&term)? as f32;
                    if doc_freq == 0.0 {
                        continue;
                    }
                    let idf = idf(num_docs, doc_freq);
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

    /// MaxScore (Turtle & Flood 1995) document at a time: the query's
    /// (field, term) lists sorted by their score bound; the lists whose
    /// bounds together cannot lift a passage into the current top k are
    /// never walked, only `seek`ed (tantivy skips whole blocks) for
    /// passages the others found. Every passage it returns is scored
    /// exactly as [`Self::score`] scores it, summing in the same order.
    fn score_maxscore(
        &self,
        searcher: &Searcher,
        query_terms: &[(String, f32)],
        params: &Bm25Params,
        k: usize,
    ) -> tantivy::Result<Vec<(f32, DocAddress)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let num_docs = searcher.num_docs().max(1) as f32;
        let fields = [
            (self.fields.text, 1.0f32),
            (self.fields.title, params.title_weight),
        ];
        // Per (field, term), in the exhaustive scorer's order: weight, idf
        // and the field's length normalization per fieldnorm id.
        struct Plan {
            field_slot: usize,
            /// The term's dictionary entry in each segment, in segment order.
            term_infos: Vec<Option<tantivy::postings::TermInfo>>,
            weight: f32,
        }
        let mut plans = Vec::new();
        let mut norm_tables: Vec<[f32; 256]> = Vec::new();
        for (slot, &(field, field_weight)) in fields.iter().enumerate() {
            let avg_len = average_length(searcher, field)?;
            let mut table = [0f32; 256];
            for (id, norm) in table.iter_mut().enumerate() {
                let len = FieldNormReader::id_to_fieldnorm(id as u8) as f32;
                *norm = params.k1 * (1.0 - params.b + params.b * len / avg_len);
            }
            norm_tables.push(table);
            if field_weight == 0.0 {
                continue;
            }
            for (text, query_weight) in query_terms {
                if *query_weight == 0.0 {
                    continue;
                }
                let term = Term::from_field_text(field, text);
                // One dictionary lookup per segment gives both the document
                // frequency and where the postings are (pair terms make the
                // dictionary large enough for lookups to show in latency).
                let mut term_infos = Vec::with_capacity(searcher.segment_readers().len());
                let mut doc_freq = 0u64;
                for segment in searcher.segment_readers() {
                    let info = segment.inverted_index(field)?.get_term_info(&term)?;
                    doc_freq += info.as_ref().map_or(0, |i| u64::from(i.doc_freq));
                    term_infos.push(info);
                }
                if doc_freq == 0 {
                    continue;
                }
                let doc_freq = doc_freq as f32;
                let idf = idf(num_docs, doc_freq);
                plans.push(Plan {
                    field_slot: slot,
                    term_infos,
                    weight: field_weight * query_weight * idf * (params.k1 + 1.0),
                });
            }
        }
        let mut heap = TopK::new(k);
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            struct Cursor {
                plan: usize,
                postings: tantivy::postings::SegmentPostings,
                norms: tantivy::fieldnorm::FieldNormReader,
                bound: f32,
            }
            let mut cursors = Vec::new();
            for (i, plan) in plans.iter().enumerate() {
                let field = fields[plan.field_slot].0;
                let Some(info) = &plan.term_infos[segment_ord] else {
                    continue;
                };
                let postings = segment
                    .inverted_index(field)?
                    .read_postings_from_terminfo(info, IndexRecordOption::WithFreqs)?;
                cursors.push(Cursor {
                    plan: i,
                    postings,
                    norms: segment.get_fieldnorms_reader(field)?,
                    // tf / (tf + norm) < 1, and = 1 when norm is 0 (k1 = 0).
                    bound: plan.weight,
                });
            }
            if cursors.is_empty() {
                continue;
            }
            cursors.sort_by(|a, b| a.bound.total_cmp(&b.bound).then(a.plan.cmp(&b.plan)));
            // prefix[i]: the bounds of cursors 0..=i together.
            let mut prefix = Vec::with_capacity(cursors.len());
            let mut sum = 0f32;
            for c in &cursors {
                sum += c.bound;
                prefix.push(sum);
            }
            // A little slack so float rounding never prunes a true entrant.
            let can_enter = |estimate: f32, threshold: Option<f32>| match threshold {
                None => true,
                Some(t) => estimate * (1.0 + 1e-5) > t,
            };
            // Cursors below `first_essential` cannot alone beat the threshold.
            let mut first_essential = 0;
            let advance_essential = |first: &mut usize, threshold: Option<f32>| {
                while *first < prefix.len() && !can_enter(prefix[*first], threshold) {
                    *first += 1;
                }
            };
            advance_essential(&mut first_essential, heap.threshold());
            let alive = segment.alive_bitset();
            let mut contributions = vec![0f32; plans.len()];
            let mut touched: Vec<usize> = Vec::with_capacity(plans.len());
            while first_essential < cursors.len() {
                let doc = cursors[first_essential..]
                    .iter()
                    .map(|c| c.postings.doc())
                    .min()
                    .unwrap_or(TERMINATED);
                if doc == TERMINATED {
                    break;
                }
                let mut estimate = 0f32;
                for c in cursors[first_essential..].iter_mut() {
                    if c.postings.doc() == doc {
                        let plan = &plans[c.plan];
                        let tf = c.postings.term_freq() as f32;
                        let norm = norm_tables[plan.field_slot][c.norms.fieldnorm_id(doc) as usize];
                        let score = plan.weight * tf / (tf + norm);
                        contributions[c.plan] = score;
                        touched.push(c.plan);
                        estimate += score;
                        c.postings.advance();
                    }
                }
                let mut complete = true;
                for i in (0..first_essential).rev() {
                    if !can_enter(estimate + prefix[i], heap.threshold()) {
                        complete = false;
                        break;
                    }
                    let c = &mut cursors[i];
                    if c.postings.doc() < doc {
                        c.postings.seek(doc);
                    }
                    if c.postings.doc() == doc {
                        let plan = &plans[c.plan];
                        let tf = c.postings.term_freq() as f32;
                        let norm = norm_tables[plan.field_slot][c.norms.fieldnorm_id(doc) as usize];
                        let score = plan.weight * tf / (tf + norm);
                        contributions[c.plan] = score;
                        touched.push(c.plan);
                        estimate += score;
                    }
                }
                if complete && alive.is_none_or(|a| a.is_alive(doc)) {
                    // The exhaustive scorer's summation order: plan order.
                    touched.sort_unstable();
                    let score = touched.iter().fold(0f32, |acc, &p| acc + contributions[p]);
                    if score > 0.0 && heap.push(score, DocAddress::new(segment_ord as u32, doc)) {
                        advance_essential(&mut first_essential, heap.threshold());
                    }
                }
                for &p in &touched {
                    contributions[p] = 0.0;
                }
                touched.clear();
            }
        }
        let mut top = heap.into_vec();
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

/// A field's mean length in terms over the searcher's passages (at least 1).
fn average_length(searcher: &Searcher, field: Field) -> tantivy::Result<f32> {
    let mut tokens = 0u64;
    for segment in searcher.segment_readers() {
        tokens += segment.inverted_index(field)?.total_num_tokens();
    }
    let num_docs = searcher.num_docs().max(1) as f32;
    Ok((tokens as f32 / num_docs).max(1.0))
}

/// BM25's inverse document frequency (Lucene's form, never negative).
fn idf(num_docs: f32, doc_freq: f32) -> f32 {
    (1.0 + (num_docs - doc_freq + 0.5) / (doc_freq + 0.5)).ln()
}

/// The query's single terms and pair terms with their weights: question
/// words at `question_weight` (unless the query is nothing else), every
/// other term at 1; the pairs of adjacent non-question terms at
/// `pair_weight` (none when it is 0). A repeated term or pair adds its
/// weight again.
fn weigh_query_terms(
    terms: Vec<String>,
    question_weight: f32,
    pair_weight: f32,
) -> (WeightedTerms, WeightedTerms) {
    let is_question = |t: &str| QUESTION_TERMS.contains(&t);
    let all_questions = terms.iter().all(|t| is_question(t));
    let pairs = if pair_weight > 0.0 {
        let content: Vec<&str> = terms
            .iter()
            .map(String::as_str)
            .filter(|t| !is_question(t))
            .collect();
        odqa_analysis::term_pairs(&content)
    } else {
        Vec::new()
    };
    let singles = terms.into_iter().map(|term| {
        let weight = if !all_questions && is_question(&term) {
            question_weight
        } else {
            1.0
        };
        (term, weight)
    });
    let pairs = pairs.into_iter().map(|pair| (pair, pair_weight));
    (add_up(singles), add_up(pairs))
}

/// Query terms (or pair terms) with their weights.
type WeightedTerms = Vec<(String, f32)>;

fn add_up(weighted: impl Iterator<Item = (String, f32)>) -> WeightedTerms {
    let mut out: Vec<(String, f32)> = Vec::new();
    for (term, weight) in weighted {
        match out.iter_mut().find(|(t, _)| *t == term) {
            Some((_, w)) => *w += weight,
            None => out.push((term, weight)),
        }
    }
    out
}

/// The best `k` (score, address) pairs seen; ties go to the lower address,
/// as in [`keep_best`].
struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<Entry>,
}

/// Orders worst first at the top of the max-heap: lower score, then
/// higher address, is "greater".
#[derive(PartialEq)]
struct Entry(f32, DocAddress);

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The score a new entry must beat once k are held.
    fn threshold(&self) -> Option<f32> {
        (self.heap.len() >= self.k).then(|| self.heap.peek().map_or(0.0, |e| e.0))
    }

    /// Whether the entry was kept.
    fn push(&mut self, score: f32, address: DocAddress) -> bool {
        let entry = Entry(score, address);
        if self.heap.len() < self.k {
            self.heap.push(entry);
            return true;
        }
        match self.heap.peek() {
            Some(worst) if entry < *worst => {
                self.heap.pop();
                self.heap.push(entry);
                true
            }
            _ => false,
        }
    }

    fn into_vec(self) -> Vec<(f32, DocAddress)> {
        self.heap.into_iter().map(|e| (e.0, e.1)).collect()
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

#[cfg(test)]
mod tests {
    use super::weigh_query_terms;

    fn terms(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn owned(weighted: &[(&str, f32)]) -> Vec<(String, f32)> {
        weighted.iter().map(|&(t, w)| (t.to_string(), w)).collect()
    }

    #[test]
    fn pairs_join_the_content_terms_around_question_words() {
        // 리슐리외가 프랑스 총리가 된 해는? → 되 is a light verb.
        let (singles, pairs) =
            weigh_query_terms(terms(&["리슐리외", "프랑스", "총리", "되", "해"]), 0.3, 0.5);
        assert_eq!(
            singles,
            owned(&[
                ("리슐리외", 1.0),
                ("프랑스", 1.0),
                ("총리", 1.0),
                ("되", 0.3),
                ("해", 1.0)
            ])
        );
        assert_eq!(
            pairs,
            owned(&[
                ("리슐리외 프랑스", 0.5),
                ("프랑스 총리", 0.5),
                ("총리 해", 0.5)
            ])
        );
    }

    #[test]
    fn no_pairs_at_weight_zero_and_repeats_add_up() {
        let (singles, pairs) = weigh_query_terms(terms(&["서울", "서울"]), 0.3, 0.0);
        assert_eq!(singles, owned(&[("서울", 2.0)]));
        assert!(pairs.is_empty());
        let (singles, pairs) = weigh_query_terms(terms(&["a", "b", "a", "b"]), 0.3, 0.5);
        assert_eq!(singles, owned(&[("a", 2.0), ("b", 2.0)]));
        assert_eq!(pairs, owned(&[("a b", 1.0), ("b a", 0.5)]));
        // A question of question words only keeps them at full weight, unpaired.
        let (singles, pairs) = weigh_query_terms(terms(&["누구", "어디"]), 0.3, 0.5);
        assert_eq!(singles, owned(&[("누구", 1.0), ("어디", 1.0)]));
        assert!(pairs.is_empty());
    }
}
