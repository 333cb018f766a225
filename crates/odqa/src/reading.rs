//! Subcommands that run the span reader: `read` and `ask`, and how
//! `--reader` flags become a loaded reader.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use odqa_pipeline::{Reader, ReaderOptions};

use crate::{Ctx, ReaderArgs};

/// The directory a `--reader` value names: itself, or for
/// `hf:ORG/NAME[@REVISION]` the checkpoint's snapshot in the Hugging Face
/// cache (`HF_HOME`; downloaded into it unless `HF_HUB_OFFLINE` is set).
pub(crate) fn reader_dir(arg: &Path) -> Result<PathBuf> {
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (dir, found) = odqa_encoder::ReaderLocation::parse(arg)?.local_dir(progress)?;
    if let Some(found) = found {
        eprintln!("reader {found}");
    }
    Ok(dir)
}

impl ReaderArgs {
    pub(crate) fn load(&self, ctx: &Ctx) -> Result<Reader> {
        let dir = reader_dir(&self.reader)?;
        let mut options = ReaderOptions::default();
        options.windows.max_len = self.max_len;
        options.windows.doc_stride = self.doc_stride;
        options.scoring.max_answer_tokens = self.max_answer_tokens;
        options.batch_size = self.batch_size;
        options.precision = ctx.precision;
        let reader = Reader::load(&dir, options, &ctx.device)
            .with_context(|| format!("loading the reader from {}", dir.display()))?;
        crate::report_precision("reader", reader.model().precision());
        if let Some(settings) = reader.model().settings() {
            for note in &settings.notes {
                eprintln!("reader: {note}");
            }
        }
        if self.no_trim {
            return Ok(reader);
        }
        let analyzer = odqa_analysis::KoreanAnalyzer::new(
            odqa_analysis::AnalyzerConfig::default(),
            &ctx.dictionary,
        )
        .context("loading the Korean analyzer that trims answers")?;
        Ok(reader.with_trimmer(analyzer))
    }
}

pub fn read(ctx: &Ctx, args: &crate::ReadArgs) -> Result<()> {
    let context = match (&args.context, &args.context_file) {
        (Some(text), None) => text.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        _ => bail!("give the passage with --context TEXT or --context-file FILE"),
    };
    if args.question.trim().is_empty() {
        bail!("the question is empty");
    }
    let reader = args.reader.load(ctx)?;
    let output = reader.read(&args.question, &[context.as_str()])?;
    if args.json {
        let answers: Vec<_> = output
            .answers
            .iter()
            .map(|a| serde_json::json!({"text": a.text, "score": a.score, "char_start": a.char_start, "char_end": a.char_end}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"answers": answers, "windows": output.windows})
            )?
        );
    } else {
        for (rank, a) in output.answers.iter().enumerate() {
            println!(
                "{:>2}. {:.4}  {}  [{}..{}]",
                rank + 1,
                a.score,
                a.text,
                a.char_start,
                a.char_end
            );
        }
    }
    Ok(())
}

pub fn ask(ctx: &Ctx, args: &crate::AskArgs, index_dir: PathBuf) -> Result<()> {
    if args.question.trim().is_empty() {
        bail!("the question is empty");
    }
    let pipeline = args.retrieval.pipeline(ctx, &index_dir, &args.reader)?;
    let options = odqa_pipeline::AskOptions {
        answers: args.answers,
        ..args.fusion
    };
    let result = pipeline.ask(&args.question, &options)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &result)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", result.text())?;
    }
    Ok(())
}
