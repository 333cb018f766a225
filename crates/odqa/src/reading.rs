//! Subcommands that run the span reader: `read` and `ask`, and how
//! `--reader` flags become a loaded reader.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use odqa_pipeline::{AskResult, Pipeline, Reader, ReaderOptions};

use crate::{Ctx, ReaderArgs};

/// The directory a `--reader` value names: itself, or for
/// `hf:ORG/NAME[@REVISION]` the checkpoint's snapshot in the Hugging Face
/// cache (`HF_HOME`; downloaded into it unless `HF_HUB_OFFLINE` is set).
pub(crate) fn reader_dir(arg: &Path) -> Result<PathBuf> {
    match odqa_encoder::ReaderLocation::parse(arg)? {
        odqa_encoder::ReaderLocation::Dir(dir) => Ok(dir),
        odqa_encoder::ReaderLocation::Hub(id) => {
            let mut settings = odqa_encoder::HubSettings::from_env()?;
            settings.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let found = id.resolve(&settings)?;
            eprintln!("reader {}", found.describe());
            Ok(found.dir)
        }
    }
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
        // odqa's reader was trained with "no answer" at position 0: its
        // probabilities are normalised over the passage tokens and that position.
        options.scoring.allow_no_answer = odqa_encoder::is_delta_reader(&dir);
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

pub fn read(
    ctx: &Ctx,
    question: &str,
    context: Option<&str>,
    context_file: Option<&Path>,
    args: &ReaderArgs,
    json: bool,
) -> Result<()> {
    let context = match (context, context_file) {
        (Some(text), None) => text.to_string(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        _ => bail!("give the passage with --context TEXT or --context-file FILE"),
    };
    if question.trim().is_empty() {
        bail!("the question is empty");
    }
    let reader = args.load(ctx)?;
    let output = reader.read(question, &[context.as_str()])?;
    if json {
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
    let retriever = args
        .retrieval
        .open(ctx, &index_dir, &crate::Bm25Args::default())?;
    let pipeline = Pipeline::new(retriever, args.reader.load(ctx)?);
    let options = args.fusion.options(args.answers);
    let result = pipeline.ask(&args.question, &options)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &result)?;
        writeln!(out)?;
    } else {
        print_answers(&mut out, &result)?;
    }
    Ok(())
}

/// The sentence with the answer marked 【like this】 (its first occurrence).
fn marked(sentence: &str, answer: &str) -> String {
    let sentence = sentence.replace('\n', " ");
    if answer.is_empty() {
        return sentence;
    }
    sentence.replacen(answer, &format!("【{answer}】"), 1)
}

pub(crate) fn print_answers(out: &mut impl Write, result: &AskResult) -> Result<()> {
    match result.answers.first() {
        None => writeln!(out, "  no answer found")?,
        Some(best) if result.no_answer => writeln!(
            out,
            "  no answer (best candidate {:?} scores {:.3}, below the threshold)",
            best.text, best.score
        )?,
        Some(_) => {}
    }
    for (rank, answer) in result.answers.iter().enumerate() {
        let ev = &answer.evidence;
        writeln!(
            out,
            "{:>2}. {}  (score {:.3}, span p {:.3}, retrieval #{} {:.2})\n    {}  — {} [{}]",
            rank + 1,
            answer.text,
            answer.score,
            answer.span_probability,
            ev.retrieval_rank,
            ev.retrieval_score,
            marked(&ev.sentence, &answer.text),
            ev.title,
            ev.passage_id,
        )?;
        if !answer.other_evidence.is_empty() {
            let also: Vec<String> = answer
                .other_evidence
                .iter()
                .map(|e| format!("{} [{}] #{}", e.title, e.passage_id, e.retrieval_rank))
                .collect();
            writeln!(out, "    also in: {}", also.join("; "))?;
        }
    }
    writeln!(
        out,
        "  retrieve {:.1} ms · read {:.1} ms ({} windows, {} of {} passages)",
        result.timings.retrieve_ms,
        result.timings.read_ms,
        result.timings.windows,
        result.timings.passages_read,
        result.hits.len()
    )?;
    Ok(())
}
