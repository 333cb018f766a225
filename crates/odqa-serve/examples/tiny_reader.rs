//! Writes a tiny randomly initialised BERT QA reader (one layer, hidden
//! size 16) around a given `tokenizer.json`: for load tests of the server's
//! plumbing with realistic windows. Its answers are meaningless.
//!
//! ```sh
//! cargo run --release -p odqa-serve --example tiny_reader -- OUT_DIR TOKENIZER_JSON
//! ```

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), Some(tokenizer_path)) = (args.next(), args.next()) else {
        return Err("usage: tiny_reader OUT_DIR TOKENIZER_JSON".into());
    };
    let out = PathBuf::from(out);
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)?;
    let vocab = tokenizer.get_vocab_size(true);
    odqa_encoder::testing::write_random_bert_qa(&out, vocab, "BertForQuestionAnswering")?;
    std::fs::copy(&tokenizer_path, out.join("tokenizer.json"))?;
    eprintln!(
        "wrote a random 1-layer BERT QA model ({vocab} tokens) to {}",
        out.display()
    );
    Ok(())
}
