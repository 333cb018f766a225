//! Question + passage windows for a span-extraction model, in the manner of
//! BERT's `run_squad.py` / Hugging Face's `prepare_train_features`:
//!
//! ```text
//! BERT style:     [CLS] question [SEP] passage-chunk [SEP]
//! XLM-R style:    <s> question </s> </s> passage-chunk </s>
//! ```
//!
//! The layout is not hard-coded: [`PairLayout::from_tokenizer`] asks the
//! tokenizer's own post-processor how it lays out a pair, so
//! multilingual-e5-small (XLM-R SentencePiece vocabulary, BERT model with
//! all-zero token type ids) gets exactly what its `tokenizer.json` says.
//!
//! The question is tokenized without special tokens and truncated to
//! [`WindowConfig::max_query_len`] tokens. Each passage is tokenized on its
//! own (no special tokens, with offsets) and cut into chunks of at most
//! `max_len - question_tokens - special_tokens` tokens. **`doc_stride` is the
//! number of tokens between the starts of consecutive chunks** (as in the
//! original BERT `run_squad.py`, not HF's "overlap" meaning), capped at the
//! chunk length so that no token is ever skipped; the last chunk ends at the
//! last passage token.
//!
//! Every passage token in a window carries its span in the passage in
//! **characters** (not bytes), with leading and trailing whitespace trimmed
//! (SentencePiece's `▁` pieces otherwise cover the preceding space), so any
//! span built from these offsets is an exact substring of the passage that
//! neither starts nor ends with whitespace. A token that is only `▁` (a
//! space, or the prefix space Metaspace adds before the first word) gets the
//! empty span at the start of the text that follows it; span scoring never
//! returns empty answers.

use std::borrow::Cow;
use std::ops::Range;

use tokenizers::{Encoding, Token, Tokenizer};

use crate::error::{ReaderError, Result};

/// The most special tokens a window of the built-in layouts holds
/// (XLM-R: `<s>`, `</s>`, `</s>`, `</s>`).
pub const MAX_SPECIAL_TOKENS: usize = 4;

/// How windows are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowConfig {
    /// Window length in tokens, special tokens included (no padding).
    pub max_len: usize,
    /// Tokens between the starts of consecutive chunks of one passage.
    pub doc_stride: usize,
    /// The question is truncated to this many tokens.
    pub max_query_len: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            max_len: 384,
            doc_stride: 128,
            max_query_len: 64,
        }
    }
}

impl WindowConfig {
    /// Checks that `doc_stride` is in `1..max_len` and that a question of
    /// `max_query_len` tokens plus [`MAX_SPECIAL_TOKENS`] leaves room for at
    /// least one passage token.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ReaderError::Config(m));
        if self.doc_stride == 0 {
            return bad("doc_stride must be at least 1".into());
        }
        if self.doc_stride >= self.max_len {
            return bad(format!(
                "doc_stride ({}) must be less than max_len ({})",
                self.doc_stride, self.max_len
            ));
        }
        if self.max_query_len == 0 {
            return bad("max_query_len must be at least 1".into());
        }
        if self.max_query_len + MAX_SPECIAL_TOKENS >= self.max_len {
            return bad(format!(
                "max_query_len ({}) + {MAX_SPECIAL_TOKENS} special tokens leaves no room for \
                 passage tokens in max_len ({})",
                self.max_query_len, self.max_len
            ));
        }
        Ok(())
    }
}

/// How a (question, passage) pair is laid out around special tokens:
/// `prefix question middle passage suffix`, each special token with its
/// token type id, plus the type ids of question and passage tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairLayout {
    /// `(id, type_id)` before the question (`[CLS]` / `<s>`).
    pub prefix: Vec<(u32, u32)>,
    /// Type id of question tokens.
    pub question_type: u32,
    /// `(id, type_id)` between question and passage (`[SEP]` / `</s></s>`).
    pub middle: Vec<(u32, u32)>,
    /// Type id of passage tokens.
    pub passage_type: u32,
    /// `(id, type_id)` after the passage (`[SEP]` / `</s>`).
    pub suffix: Vec<(u32, u32)>,
}

impl PairLayout {
    /// `[CLS] A [SEP] B [SEP]` with type ids 0 for `[CLS] A [SEP]`, 1 after.
    pub fn bert(cls: u32, sep: u32) -> Self {
        Self {
            prefix: vec![(cls, 0)],
            question_type: 0,
            middle: vec![(sep, 0)],
            passage_type: 1,
            suffix: vec![(sep, 1)],
        }
    }

    /// `<s> A </s> </s> B </s>` with all type ids 0.
    pub fn roberta(bos: u32, eos: u32) -> Self {
        Self {
            prefix: vec![(bos, 0)],
            question_type: 0,
            middle: vec![(eos, 0), (eos, 0)],
            passage_type: 0,
            suffix: vec![(eos, 0)],
        }
    }

    /// Number of special tokens in a window.
    pub fn num_special(&self) -> usize {
        self.prefix.len() + self.middle.len() + self.suffix.len()
    }

    /// The tokenizer's own pair layout. With a post-processor, it is probed:
    /// a one-token question and a one-token passage are run through it and
    /// whatever it puts around them is the layout. Without one, `<s>`/`</s>`
    /// give [`PairLayout::roberta`], else `[CLS]`/`[SEP]` give
    /// [`PairLayout::bert`].
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> Result<Self> {
        if tokenizer.get_post_processor().is_some() {
            let clean = sanitized(tokenizer);
            return probe(&clean);
        }
        Self::from_special_names(tokenizer)
    }

    /// By special token names only: `<s>`/`</s>` → XLM-R/RoBERTa layout,
    /// else `[CLS]`/`[SEP]` → BERT layout.
    pub fn from_special_names(tokenizer: &Tokenizer) -> Result<Self> {
        let id = |t: &str| tokenizer.token_to_id(t);
        if let (Some(bos), Some(eos)) = (id("<s>"), id("</s>")) {
            return Ok(Self::roberta(bos, eos));
        }
        if let (Some(cls), Some(sep)) = (id("[CLS]"), id("[SEP]")) {
            return Ok(Self::bert(cls, sep));
        }
        Err(ReaderError::NoSpecialTokens)
    }
}

/// The tokenizer without truncation or padding (borrowed when it has none).
fn sanitized(tokenizer: &Tokenizer) -> Cow<'_, Tokenizer> {
    if tokenizer.get_truncation().is_none() && tokenizer.get_padding().is_none() {
        return Cow::Borrowed(tokenizer);
    }
    let mut t = tokenizer.clone();
    t.with_padding(None);
    // Removing truncation cannot fail (only setting bad params can).
    let _ = t.with_truncation(None);
    Cow::Owned(t)
}

fn probe(tokenizer: &Tokenizer) -> Result<PairLayout> {
    const QA: u32 = u32::MAX - 1;
    const PB: u32 = u32::MAX - 2;
    let enc = |id: u32| Encoding::from_tokens(vec![Token::new(id, String::new(), (0, 0))], 0);
    let out = tokenizer
        .post_process(enc(QA), Some(enc(PB)), true)
        .map_err(|e| ReaderError::Tokenizer {
            what: "pair layout probe".into(),
            detail: e.to_string(),
        })?;
    let ids = out.get_ids();
    let types = out.get_type_ids();
    let bad = || ReaderError::Tokenizer {
        what: "pair layout probe".into(),
        detail: format!("post-processor gave an unexpected pair layout {ids:?}"),
    };
    let one = |m: u32| {
        let mut it = ids.iter().enumerate().filter(|(_, &x)| x == m);
        match (it.next(), it.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    };
    let (qa, pb) = match (one(QA), one(PB)) {
        (Some(a), Some(b)) if a < b && ids.len() == types.len() => (a, b),
        _ => return Err(bad()),
    };
    let seg = |r: Range<usize>| -> Vec<(u32, u32)> { r.map(|i| (ids[i], types[i])).collect() };
    let layout = PairLayout {
        prefix: seg(0..qa),
        question_type: types[qa],
        middle: seg(qa + 1..pb),
        passage_type: types[pb],
        suffix: seg(pb + 1..ids.len()),
    };
    if layout.num_special() == 0 {
        // A post-processor that adds nothing is not a pair template.
        return PairLayout::from_special_names(tokenizer);
    }
    Ok(layout)
}

/// One model input: a question and a chunk of one passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Index of the passage (in the list given) this chunk comes from.
    pub passage_index: usize,
    /// Token ids, special tokens included, unpadded.
    pub input_ids: Vec<u32>,
    /// All 1 (padding is added by [`crate::Batch::pack`]).
    pub attention_mask: Vec<u32>,
    /// Token type ids as the layout says.
    pub token_type_ids: Vec<u32>,
    /// Window positions of the passage tokens.
    pub context_range: Range<usize>,
    /// Per window position: `(char_start, char_end)` in the passage, in
    /// chars, whitespace-trimmed, for passage tokens; `None` elsewhere.
    pub token_char_offsets: Vec<Option<(usize, usize)>>,
    /// Which of the passage's tokens this window holds (indices into the
    /// passage's own tokenization); `context_range` in passage terms.
    pub passage_token_range: Range<usize>,
}

impl Window {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Never true for windows this module builds.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// A passage's tokens with char offsets (whitespace-trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageTokens {
    /// Token ids, no special tokens.
    pub ids: Vec<u32>,
    /// `(char_start, char_end)` per token.
    pub char_offsets: Vec<(usize, usize)>,
}

/// Builds [`Window`]s with one tokenizer, layout and config.
#[derive(Debug, Clone)]
pub struct Windower<'t> {
    tokenizer: Cow<'t, Tokenizer>,
    layout: PairLayout,
    config: WindowConfig,
}

impl<'t> Windower<'t> {
    /// Validates `config`, takes the layout from the tokenizer
    /// ([`PairLayout::from_tokenizer`]) and checks that it fits. A tokenizer
    /// with truncation or padding configured is cloned without them.
    pub fn new(tokenizer: &'t Tokenizer, config: WindowConfig) -> Result<Self> {
        let layout = PairLayout::from_tokenizer(tokenizer)?;
        Self::with_layout(tokenizer, config, layout)
    }

    /// [`Windower::new`] with an explicit layout.
    pub fn with_layout(
        tokenizer: &'t Tokenizer,
        config: WindowConfig,
        layout: PairLayout,
    ) -> Result<Self> {
        config.validate()?;
        if config.max_query_len + layout.num_special() >= config.max_len {
            return Err(ReaderError::Config(format!(
                "max_query_len ({}) + {} special tokens leaves no room for passage tokens in \
                 max_len ({})",
                config.max_query_len,
                layout.num_special(),
                config.max_len
            )));
        }
        Ok(Self {
            tokenizer: sanitized(tokenizer),
            layout,
            config,
        })
    }

    /// The pair layout in use.
    pub fn layout(&self) -> &PairLayout {
        &self.layout
    }

    /// The config in use.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The tokenizer in use (without truncation/padding).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The padding id for [`batch`]: the tokenizer's padding params if it
    /// had any, else `<pad>` or `[PAD]`.
    pub fn pad_id(&self) -> Option<u32> {
        pad_id(&self.tokenizer)
    }

    /// Question token ids, no special tokens, truncated to `max_query_len`.
    pub fn tokenize_question(&self, question: &str) -> Result<Vec<u32>> {
        if question.trim().is_empty() {
            return Err(ReaderError::EmptyQuestion);
        }
        let enc = self
            .tokenizer
            .encode(question, false)
            .map_err(|e| ReaderError::Tokenizer {
                what: "question".into(),
                detail: e.to_string(),
            })?;
        let mut ids = enc.get_ids().to_vec();
        if ids.is_empty() {
            return Err(ReaderError::EmptyQuestion);
        }
        ids.truncate(self.config.max_query_len);
        Ok(ids)
    }

    /// A passage's token ids with whitespace-trimmed char offsets;
    /// `index` is only used in errors.
    pub fn tokenize_passage(&self, index: usize, passage: &str) -> Result<PassageTokens> {
        if passage.trim().is_empty() {
            return Err(ReaderError::EmptyPassage { index });
        }
        let enc = self
            .tokenizer
            .encode(passage, false)
            .map_err(|e| ReaderError::Tokenizer {
                what: format!("passage {index}"),
                detail: e.to_string(),
            })?;
        if enc.get_ids().is_empty() {
            return Err(ReaderError::EmptyPassage { index });
        }
        let map = CharMap::new(passage);
        let char_offsets = enc
            .get_offsets()
            .iter()
            .zip(enc.get_tokens())
            .map(|(&(b0, b1), tok)| {
                let (s, e) = map.trimmed_span(b0, b1);
                // A bare SentencePiece `▁` stands for a space; when it is the
                // prefix the pre-tokenizer added, its offsets cover the first
                // real char instead. Either way it holds no text.
                if tok.chars().all(|c| c == '\u{2581}' || c.is_whitespace()) {
                    (s, s)
                } else {
                    (s, e)
                }
            })
            .collect();
        Ok(PassageTokens {
            ids: enc.get_ids().to_vec(),
            char_offsets,
        })
    }

    /// All windows for `question` over `passages`, passage by passage, chunk
    /// by chunk. No passages → no windows. An empty or whitespace-only
    /// passage is an error naming its index.
    pub fn windows(&self, question: &str, passages: &[&str]) -> Result<Vec<Window>> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let question_ids = self.tokenize_question(question)?;
        let mut out = Vec::new();
        for (index, passage) in passages.iter().enumerate() {
            let tokens = self.tokenize_passage(index, passage)?;
            self.push_windows(index, &question_ids, &tokens, &mut out)?;
        }
        Ok(out)
    }

    /// Chunk starts and lengths for a passage of `n` tokens next to a
    /// question of `question_len` tokens.
    pub fn chunks(&self, question_len: usize, n: usize) -> Result<Vec<Range<usize>>> {
        let used = question_len + self.layout.num_special();
        let capacity = self.config.max_len.saturating_sub(used);
        if capacity == 0 {
            return Err(ReaderError::Config(format!(
                "a question of {question_len} tokens leaves no room for passage tokens"
            )));
        }
        let step = self.config.doc_stride.min(capacity);
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let end = (start + capacity).min(n);
            out.push(start..end);
            if end == n {
                break;
            }
            start += step;
        }
        Ok(out)
    }

    fn push_windows(
        &self,
        passage_index: usize,
        question: &[u32],
        tokens: &PassageTokens,
        out: &mut Vec<Window>,
    ) -> Result<()> {
        let l = &self.layout;
        for chunk in self.chunks(question.len(), tokens.ids.len())? {
            let total = l.num_special() + question.len() + chunk.len();
            let mut ids: Vec<u32> = Vec::with_capacity(total);
            let mut types: Vec<u32> = Vec::with_capacity(total);
            let specials = |seg: &[(u32, u32)], ids: &mut Vec<u32>, types: &mut Vec<u32>| {
                for &(id, ty) in seg {
                    ids.push(id);
                    types.push(ty);
                }
            };
            specials(&l.prefix, &mut ids, &mut types);
            ids.extend_from_slice(question);
            types.extend(std::iter::repeat_n(l.question_type, question.len()));
            specials(&l.middle, &mut ids, &mut types);
            let ctx_start = ids.len();
            ids.extend_from_slice(&tokens.ids[chunk.clone()]);
            types.extend(std::iter::repeat_n(l.passage_type, chunk.len()));
            let ctx = ctx_start..ids.len();
            specials(&l.suffix, &mut ids, &mut types);
            let mut token_char_offsets = vec![None; ids.len()];
            for (pos, off) in ctx.clone().zip(&tokens.char_offsets[chunk.clone()]) {
                token_char_offsets[pos] = Some(*off);
            }
            out.push(Window {
                passage_index,
                attention_mask: vec![1; ids.len()],
                input_ids: ids,
                token_type_ids: types,
                context_range: ctx,
                token_char_offsets,
                passage_token_range: chunk,
            });
        }
        Ok(())
    }
}

/// The passage tokens `(first, last)` (inclusive) that cover the characters
/// `answer` (half-open) of the passage, or `None` when no token does.
/// Tokens that hold no text (a bare `▁`) are never chosen.
pub fn answer_tokens(tokens: &PassageTokens, answer: &Range<usize>) -> Option<(usize, usize)> {
    let overlaps = |&(s, e): &(usize, usize)| e > s && e > answer.start && s < answer.end;
    let first = tokens.char_offsets.iter().position(overlaps)?;
    let last = tokens.char_offsets.iter().rposition(overlaps)?;
    Some((first, last))
}

impl Window {
    /// The window positions `(start, end)` of passage tokens `(first,
    /// last)` (from [`answer_tokens`]) when the window holds both; `None`
    /// when the span is not wholly inside.
    pub fn positions_of(&self, passage_tokens: (usize, usize)) -> Option<(usize, usize)> {
        let (first, last) = passage_tokens;
        let held = &self.passage_token_range;
        if held.contains(&first) && held.contains(&last) {
            let at = |t: usize| self.context_range.start + (t - held.start);
            Some((at(first), at(last)))
        } else {
            None
        }
    }
}

/// `Windower::new(tokenizer, config)?.windows(question, passages)`.
pub fn build_windows(
    tokenizer: &Tokenizer,
    question: &str,
    passages: &[&str],
    config: WindowConfig,
) -> Result<Vec<Window>> {
    Windower::new(tokenizer, config)?.windows(question, passages)
}

/// The padding id: the tokenizer's padding params if set, else `<pad>` or
/// `[PAD]`.
pub fn pad_id(tokenizer: &Tokenizer) -> Option<u32> {
    if let Some(p) = tokenizer.get_padding() {
        return Some(p.pad_id);
    }
    tokenizer
        .token_to_id("<pad>")
        .or_else(|| tokenizer.token_to_id("[PAD]"))
}

/// Byte offset → char index for one string, and whitespace trimming.
struct CharMap {
    /// Byte start of every char, ascending.
    starts: Vec<usize>,
    /// Whether each char is whitespace.
    space: Vec<bool>,
    /// Length of the string in bytes.
    byte_len: usize,
}

impl CharMap {
    fn new(s: &str) -> Self {
        let (starts, space) = s
            .char_indices()
            .map(|(b, c)| (b, c.is_whitespace()))
            .unzip();
        Self {
            starts,
            space,
            byte_len: s.len(),
        }
    }

    fn n_chars(&self) -> usize {
        self.starts.len()
    }

    /// The char containing byte `b`; `n_chars` at or past the end.
    fn char_floor(&self, b: usize) -> usize {
        if b >= self.byte_len {
            return self.n_chars();
        }
        self.starts.partition_point(|&s| s <= b).saturating_sub(1)
    }

    /// The first char starting at or after byte `b` (`n_chars` past the end).
    fn char_ceil(&self, b: usize) -> usize {
        self.starts.partition_point(|&s| s < b)
    }

    /// Char span of the byte span `b0..b1`, widened to whole chars, clamped,
    /// then trimmed of whitespace on both sides. An all-whitespace span
    /// collapses to the empty span at its end.
    fn trimmed_span(&self, b0: usize, b1: usize) -> (usize, usize) {
        let n = self.n_chars();
        let mut e = self.char_ceil(b1).min(n);
        let mut s = self.char_floor(b0).min(e);
        while s < e && self.space[s] {
            s += 1;
        }
        while e > s && self.space[e - 1] {
            e -= 1;
        }
        if s == e {
            // All whitespace: keep the empty span at the original end.
            e = self.char_ceil(b1).min(n);
            s = e;
        }
        (s, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{char_token_surface, char_wordpiece_tokenizer, TestStyle};

    const ALPHA: &str = "가나다라마바사아자차카타파하서울특별시대한민국의수도는은어디인가요?.,!()abcdefghijklmnopqrstuvwxyzABC0123456789";

    fn bert() -> Tokenizer {
        char_wordpiece_tokenizer(ALPHA, TestStyle::Bert).unwrap()
    }

    fn roberta() -> Tokenizer {
        char_wordpiece_tokenizer(ALPHA, TestStyle::Roberta).unwrap()
    }

    fn cfg(max_len: usize, doc_stride: usize, max_query_len: usize) -> WindowConfig {
        WindowConfig {
            max_len,
            doc_stride,
            max_query_len,
        }
    }

    #[test]
    fn config_validation() {
        WindowConfig::default().validate().unwrap();
        assert_eq!(WindowConfig::default(), cfg(384, 128, 64));
        for bad in [
            cfg(24, 0, 4),
            cfg(24, 24, 4),
            cfg(24, 30, 4),
            cfg(24, 8, 0),
            cfg(24, 8, 20),
            cfg(24, 8, 25),
        ] {
            assert!(
                matches!(bad.validate(), Err(ReaderError::Config(_))),
                "{bad:?}"
            );
        }
        cfg(24, 8, 19).validate().unwrap();
        let t = bert();
        assert!(Windower::new(&t, cfg(24, 24, 4)).is_err());
    }

    #[test]
    fn layouts_follow_the_post_processor() {
        let b = bert();
        let l = PairLayout::from_tokenizer(&b).unwrap();
        assert_eq!(l, PairLayout::bert(2, 3));
        assert_eq!(PairLayout::from_special_names(&b).unwrap(), l);
        let r = roberta();
        let l = PairLayout::from_tokenizer(&r).unwrap();
        assert_eq!(l, PairLayout::roberta(0, 2));
        assert_eq!(l.num_special(), 4);
        assert_eq!(PairLayout::from_special_names(&r).unwrap(), l);
        // Without a post-processor: by names.
        let mut bare = bert();
        bare.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
        assert_eq!(
            PairLayout::from_tokenizer(&bare).unwrap(),
            PairLayout::bert(2, 3)
        );
    }

    #[test]
    fn bert_window_layout_and_offsets() {
        let t = bert();
        let w = Windower::new(&t, cfg(64, 16, 8)).unwrap();
        let passage = "서울은 대한민국의 수도.";
        let ws = w.windows("수도는?", &[passage]).unwrap();
        assert_eq!(ws.len(), 1);
        let win = &ws[0];
        // [CLS] 수 ##도 ##는 ? [SEP] ... [SEP]
        assert_eq!(win.input_ids[0], 2);
        assert_eq!(win.input_ids[5], 3);
        assert_eq!(*win.input_ids.last().unwrap(), 3);
        assert_eq!(win.context_range, 6..win.len() - 1);
        assert_eq!(
            win.token_type_ids,
            [vec![0; 6], vec![1; win.len() - 6]].concat()
        );
        assert!(win.attention_mask.iter().all(|&m| m == 1));
        let chars: Vec<char> = passage.chars().collect();
        let mut surfaces = String::new();
        for (pos, off) in win.token_char_offsets.iter().enumerate() {
            match off {
                Some((s, e)) => {
                    assert!(win.context_range.contains(&pos));
                    let sub: String = chars[*s..*e].iter().collect();
                    assert_eq!(
                        Some(sub.clone()),
                        char_token_surface(&t, win.input_ids[pos])
                    );
                    surfaces.push_str(&sub);
                }
                None => assert!(!win.context_range.contains(&pos)),
            }
        }
        assert_eq!(surfaces, passage.replace(' ', ""));
    }

    #[test]
    fn roberta_window_layout() {
        let t = roberta();
        let w = Windower::new(&t, cfg(64, 16, 8)).unwrap();
        let ws = w.windows("수도", &["서울"]).unwrap();
        assert_eq!(ws[0].input_ids[0], 0);
        // <s> 수 ##도 </s> </s> 서 ##울 </s>
        assert_eq!(ws[0].input_ids.len(), 8);
        assert_eq!(ws[0].input_ids[0], 0);
        assert_eq!(&ws[0].input_ids[3..5], &[2, 2]);
        assert_eq!(ws[0].input_ids[7], 2);
        assert_eq!(ws[0].context_range, 5..7);
        assert!(ws[0].token_type_ids.iter().all(|&x| x == 0));
        assert_eq!(w.pad_id(), Some(1));
    }

    #[test]
    fn sliding_windows_cover_with_stride() {
        let t = bert();
        let w = Windower::new(&t, cfg(16, 4, 4)).unwrap();
        // Question 2 tokens + 3 specials -> capacity 11.
        let passage: String = "가나다라마바사아자차카타파하"
            .chars()
            .cycle()
            .take(30)
            .collect();
        let ws = w.windows("수도", &[&passage]).unwrap();
        let ranges: Vec<_> = ws.iter().map(|w| w.passage_token_range.clone()).collect();
        // Single word: 30 tokens (가 ##나 ...).
        assert_eq!(ranges, vec![0..11, 4..15, 8..19, 12..23, 16..27, 20..30]);
        for win in &ws {
            assert!(win.len() <= 16);
            assert_eq!(win.context_range.len(), win.passage_token_range.len());
        }
        // Stride larger than capacity is capped at the capacity.
        let w = Windower::new(&t, cfg(16, 14, 4)).unwrap();
        let ranges: Vec<_> = w.chunks(2, 30).unwrap().into_iter().collect();
        assert_eq!(ranges, vec![0..11, 11..22, 22..30]);
        assert_eq!(w.chunks(2, 11).unwrap(), vec![0..11]);
        assert_eq!(w.chunks(2, 0).unwrap(), Vec::<Range<usize>>::new());
    }

    #[test]
    fn question_truncated_to_max_query_len() {
        let t = bert();
        let w = Windower::new(&t, cfg(24, 8, 3)).unwrap();
        assert_eq!(w.tokenize_question("대한민국의수도").unwrap().len(), 3);
        let ws = w.windows("대한민국의수도", &["서울"]).unwrap();
        assert_eq!(ws[0].context_range, 5..7);
    }

    #[test]
    fn errors_and_empty_inputs() {
        let t = bert();
        let w = Windower::new(&t, cfg(24, 8, 4)).unwrap();
        assert!(w.windows("수도", &[]).unwrap().is_empty());
        assert!(matches!(
            w.windows("수도", &["서울", " \t\n"]),
            Err(ReaderError::EmptyPassage { index: 1 })
        ));
        assert!(matches!(
            w.windows("수도", &[""]),
            Err(ReaderError::EmptyPassage { index: 0 })
        ));
        assert!(matches!(
            w.windows("  ", &["서울"]),
            Err(ReaderError::EmptyQuestion)
        ));
        let e = w.windows("수도", &["서울", ""]).unwrap_err();
        assert!(e.to_string().contains("passage 1"), "{e}");
        // No special tokens at all.
        let plain: Tokenizer = char_wordpiece_tokenizer("ab", TestStyle::Bert).unwrap();
        let mut bare = plain.clone();
        bare.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
        assert!(PairLayout::from_tokenizer(&bare).is_ok());
    }

    #[test]
    fn truncation_and_padding_on_the_tokenizer_are_ignored() {
        let mut t = bert();
        t.with_truncation(Some(tokenizers::TruncationParams {
            max_length: 3,
            ..Default::default()
        }))
        .unwrap();
        t.with_padding(Some(tokenizers::PaddingParams {
            strategy: tokenizers::PaddingStrategy::Fixed(50),
            pad_id: 0,
            ..Default::default()
        }));
        let w = Windower::new(&t, cfg(24, 8, 4)).unwrap();
        assert_eq!(w.layout(), &PairLayout::bert(2, 3));
        let ws = w.windows("수도", &["서울특별시"]).unwrap();
        assert_eq!(ws[0].context_range.len(), 5);
        assert_eq!(w.pad_id(), Some(0));
    }

    #[test]
    fn char_map_bytes_to_chars_and_trimming() {
        let s = "가 b\u{3000}다 ";
        let m = CharMap::new(s);
        // 가=0..3, ' '=3, b=4, U+3000=5..8, 다=8..11, ' '=11
        assert_eq!(m.trimmed_span(0, 3), (0, 1));
        assert_eq!(m.trimmed_span(3, 5), (2, 3));
        assert_eq!(m.trimmed_span(4, 11), (2, 5));
        // All whitespace -> empty at the end.
        assert_eq!(m.trimmed_span(5, 8), (4, 4));
        assert_eq!(m.trimmed_span(11, 12), (6, 6));
        // Inside a char: widened to the whole char.
        assert_eq!(m.trimmed_span(1, 2), (0, 1));
        // Out of range: clamped.
        assert_eq!(m.trimmed_span(100, 200), (6, 6));
        assert_eq!(CharMap::new("").trimmed_span(0, 0), (0, 0));
    }
}
