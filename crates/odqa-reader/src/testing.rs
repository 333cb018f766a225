//! Small in-code tokenizers for tests (this crate's and its users'), so that
//! window and span logic can be exercised without downloading a model.

use serde_json::{json, Map, Value};
use tokenizers::Tokenizer;

use crate::error::{ReaderError, Result};

/// Which special tokens and pair template a test tokenizer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStyle {
    /// `[PAD]`=0 `[UNK]`=1 `[CLS]`=2 `[SEP]`=3 `[MASK]`=4, `BertProcessing`:
    /// `[CLS] A [SEP] B [SEP]`, type ids 0 then 1.
    Bert,
    /// `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3 `<mask>`=4, a `TemplateProcessing`
    /// copied from multilingual-e5-small: `<s> A </s> </s> B </s>`, type ids
    /// all 0.
    Roberta,
}

/// A character-level WordPiece tokenizer: the `BertPreTokenizer` splits on
/// whitespace and punctuation, then every character of `alphabet` is its own
/// token (`c` at a word start, `##c` inside a word). Characters outside
/// `alphabet` become the unknown token. No normalizer, so each known
/// token's surface (without `##`) is exactly the text its offsets cover.
pub fn char_wordpiece_tokenizer(alphabet: &str, style: TestStyle) -> Result<Tokenizer> {
    let specials: [&str; 5] = match style {
        TestStyle::Bert => ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        TestStyle::Roberta => ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    };
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, tok) in specials.iter().enumerate() {
        vocab.insert((*tok).to_string(), json!(id));
        added.push(json!({
            "id": id, "content": tok, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }));
    }
    let mut chars: Vec<char> = alphabet.chars().filter(|c| !c.is_whitespace()).collect();
    chars.sort_unstable();
    chars.dedup();
    for c in chars {
        for tok in [c.to_string(), format!("##{c}")] {
            let id = vocab.len();
            vocab.entry(tok).or_insert(json!(id));
        }
    }
    let (unk, post) = match style {
        TestStyle::Bert => (
            "[UNK]",
            json!({"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]}),
        ),
        TestStyle::Roberta => (
            "<unk>",
            json!({
                "type": "TemplateProcessing",
                "single": [
                    {"SpecialToken": {"id": "<s>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "</s>", "type_id": 0}}
                ],
                "pair": [
                    {"SpecialToken": {"id": "<s>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "</s>", "type_id": 0}},
                    {"SpecialToken": {"id": "</s>", "type_id": 0}},
                    {"Sequence": {"id": "B", "type_id": 0}},
                    {"SpecialToken": {"id": "</s>", "type_id": 0}}
                ],
                "special_tokens": {
                    "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]},
                    "<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}
                }
            }),
        ),
    };
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": post,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {
            "type": "WordPiece",
            "unk_token": unk,
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 1_000_000,
            "vocab": Value::Object(vocab)
        }
    });
    Tokenizer::from_bytes(spec.to_string()).map_err(|e| ReaderError::Tokenizer {
        what: "test tokenizer spec".into(),
        detail: e.to_string(),
    })
}

/// The surface text of a [`char_wordpiece_tokenizer`] token id: the token
/// without its `##` prefix; `None` for special and unknown tokens.
pub fn char_token_surface(tokenizer: &Tokenizer, id: u32) -> Option<String> {
    if id < 5 {
        return None;
    }
    let tok = tokenizer.id_to_token(id)?;
    Some(tok.strip_prefix("##").unwrap_or(&tok).to_string())
}
