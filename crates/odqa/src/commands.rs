//! One function per subcommand.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use odqa_analysis::{AnalyzerConfig, DictionarySource};
use odqa_corpus::{resolve_corpus, PassageConfig, ResolvedCorpus};
use odqa_index::{build_index, snippet, Bm25Params, BuildOptions, IndexManifest, PassageIndex};

use crate::{dense, reading};
use crate::{
    AnalyzerArgs, AnalyzerChoice, Bm25Args, BuildArgs, Command, Ctx, EmbedArgs, IndexCommand,
    ModelsCommand, PassagesCommand, PassagesExportArgs, PruneArgs, SearchArgs,
};

/// Largest `-k` / `--depth` accepted: beyond it BM25 ranks are noise and
/// output gets unwieldy.
const MAX_K: usize = 10_000;

pub fn run(command: Command, ctx: &Ctx) -> Result<()> {
    let (dictionary, progress) = (&ctx.dictionary, ctx.progress);
    match command {
        Command::Demo(args) => demo(&args, ctx),
        Command::Index(IndexCommand::Build(args)) => {
            let corpus = resolve_corpus(args.corpus.as_deref())?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| corpus.default_index_dir());
            build(&args.options(&corpus, &out, ctx)?)?;
            if args.dense {
                dense::build(ctx, &out, None)?;
            }
            Ok(())
        }
        Command::Index(IndexCommand::Dense(args)) => {
            let index = index_dir(args.index.clone())?;
            dense::build(ctx, &index, Some(&args))
        }
        Command::Index(IndexCommand::Info { index }) => {
            let index = index_dir(index)?;
            let manifest = IndexManifest::read(&index)?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(())
        }
        Command::Analyze { text, analyzer } => analyze(&text, &analyzer, dictionary),
        Command::Search(args) => search(&args, ctx),
        Command::Passages(PassagesCommand::Export(args)) => export_passages(&args),
        Command::Models(ModelsCommand::Prune(args)) => prune(&args),
        Command::Models(ModelsCommand::Fetch) => {
            println!("{}", dense::default_model_dir()?.display());
            Ok(())
        }
        Command::Embed(args) => embed(ctx, &args),
        Command::Read(args) => reading::read(ctx, &args),
        Command::Ask(args) => {
            let index = index_dir(args.index.clone())?;
            reading::ask(ctx, &args, index)
        }
        Command::Serve(args) => {
            let index = index_dir(args.index.clone())?;
            crate::serve::run(ctx, &args, index)
        }
        Command::Bench(command) => crate::bench::run(command, ctx),
        Command::Train(crate::TrainCommand::Export(args)) => {
            crate::train::export(&args, dictionary, progress)
        }
        Command::Train(crate::TrainCommand::Parity(args)) => crate::train::parity(ctx, &args),
        Command::Train(crate::TrainCommand::PretrainData(args)) => {
            crate::train::pretrain_data(&args, dictionary, progress)
        }
        Command::Re(args) => crate::relations::run(ctx, &args),
    }
}

pub(crate) fn index_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(dir) => Ok(dir),
        None => Ok(resolve_corpus(None)?.default_index_dir()),
    }
}

impl AnalyzerArgs {
    fn config(&self) -> AnalyzerConfig {
        let mut config = match self.analyzer {
            AnalyzerChoice::Morph => AnalyzerConfig::default(),
            AnalyzerChoice::Whitespace => AnalyzerConfig::whitespace(),
        };
        if let Some(tags) = &self.stop_tags {
            config.stop_tags = tags
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
        }
        if self.no_stem {
            config.stem_inflections = false;
        }
        if let Some(decompound) = self.decompound {
            config.decompound = decompound;
        }
        if self.no_term_pairs {
            config.term_pairs = false;
        }
        config
    }
}

impl Bm25Args {
    pub fn apply(&self, base: Bm25Params) -> Bm25Params {
        Bm25Params {
            k1: self.k1.unwrap_or(base.k1),
            b: self.b.unwrap_or(base.b),
            title_weight: self.title_weight.unwrap_or(base.title_weight),
            question_weight: self.question_weight.unwrap_or(base.question_weight),
            pair_weight: self.pair_weight.unwrap_or(base.pair_weight),
            exhaustive: self.exhaustive || base.exhaustive,
        }
    }
}

pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    // A second handler cannot be installed (the demo builds once); keep going.
    let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::Relaxed));
    flag
}

impl BuildArgs {
    fn options(&self, corpus: &ResolvedCorpus, out: &Path, ctx: &Ctx) -> Result<BuildOptions> {
        let mut options = BuildOptions::new(corpus.path.clone(), out.to_path_buf());
        self.passages.validate()?;
        options.passages = self.passages;
        options.analyzer = self.analyzer.config();
        options.dictionary = ctx.dictionary.clone();
        options.bm25 = self.bm25.apply(Bm25Params::default());
        if let Some(threads) = self.threads {
            options.threads = threads;
        }
        options.memory_mb = self.memory_mb;
        options.skip_bad_lines = self.skip_bad_lines;
        options.force = self.force;
        options.progress = ctx.progress;
        options.title_dictionary = self.analyzer.title_dictionary;
        options.user_dictionary = self.analyzer.user_dictionary.clone();
        Ok(options)
    }
}

/// Builds the BM25 index `options` describe and says what it holds.
fn build(options: &BuildOptions) -> Result<IndexManifest> {
    let (out, corpus) = (&options.out, &options.corpus);
    let interrupt = interrupt_flag();
    let manifest = build_index(options, &interrupt)
        .with_context(|| format!("building {} from {}", out.display(), corpus.display()))?;
    eprintln!("{}", manifest.summary(out));
    Ok(manifest)
}

fn analyze(text: &str, args: &AnalyzerArgs, dictionary: &DictionarySource) -> Result<()> {
    let analyzer = odqa_analysis::KoreanAnalyzer::new(args.config(), dictionary)?;
    for m in analyzer.morphemes(text)? {
        println!(
            "{}\t{}\t{}..{}\t{}",
            m.surface,
            m.tag,
            m.byte_start,
            m.byte_end,
            if m.term.is_none() && m.extra_terms.is_empty() {
                "-".to_string()
            } else {
                m.all_terms().cloned().collect::<Vec<_>>().join(" ")
            }
        );
    }
    if analyzer.config().term_pairs {
        let pairs = odqa_analysis::term_pairs(&analyzer.terms(text)?);
        println!("pairs\t{}", pairs.join(" | "));
    }
    Ok(())
}

/// Writes a multilingual-e5-small keeping only the vocabulary of a corpus's passages.
fn prune(args: &PruneArgs) -> Result<()> {
    let corpus = resolve_corpus(args.corpus.as_deref())?;
    let model = dense::default_model_dir()?;
    let mut texts = Vec::new();
    for event in odqa_corpus::passages(&corpus.path, &PassageConfig::default(), false)? {
        if let odqa_corpus::PassageEvent::Article { passages, .. } = event? {
            texts.extend(passages.into_iter().map(|p| p.text));
        }
    }
    let report = odqa_encoder::prune_model(&model, texts, &args.out)?;
    eprintln!(
        "wrote {}: {} of {} pieces kept, {:.1} MB → {:.1} MB",
        args.out.display(),
        report.kept,
        report.original,
        report.bytes_before as f64 / 1e6,
        report.bytes_after as f64 / 1e6
    );
    Ok(())
}

fn embed(ctx: &Ctx, args: &EmbedArgs) -> Result<()> {
    let encoder = dense::encoder_from(ctx, args.model.clone())?;
    let kind = if args.passage {
        odqa_encoder::TextKind::Passage
    } else {
        odqa_encoder::TextKind::Query
    };
    let refs: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    for vector in encoder.embed(&refs, kind)? {
        println!("{}", serde_json::to_string(&vector)?);
    }
    Ok(())
}

pub(crate) fn check_k(k: usize, flag: &str) -> Result<()> {
    if k == 0 || k > MAX_K {
        bail!("{flag} must be between 1 and {MAX_K}, got {k}");
    }
    Ok(())
}

fn search(args: &SearchArgs, ctx: &Ctx) -> Result<()> {
    check_k(args.k, "-k")?;
    if args.query.trim().is_empty() {
        bail!("the query is empty");
    }
    let dir = index_dir(args.index.clone())?;
    let retriever = args.retrieval.open(ctx, &dir, &args.bm25)?;
    let index = retriever.bm25();
    let hits = retriever.retrieve(&args.query, args.k)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &hits)?;
        writeln!(out)?;
    } else {
        print_hits(&mut out, index, &args.query, &hits)?;
    }
    out.flush()?;
    Ok(())
}

fn print_hits(
    out: &mut impl Write,
    index: &PassageIndex,
    query: &str,
    hits: &[odqa_index::Hit],
) -> Result<()> {
    if hits.is_empty() {
        writeln!(out, "no passage matches {query:?}")?;
    }
    for (rank, hit) in hits.iter().enumerate() {
        let snip = snippet(index.analyzer(), &hit.text, query, 160);
        writeln!(
            out,
            "{:>3}. {:.3}  {}  [{}]\n     {}",
            rank + 1,
            hit.score,
            hit.title,
            hit.passage_id,
            snip.marked("«", "»")
        )?;
    }
    Ok(())
}

fn export_passages(args: &PassagesExportArgs) -> Result<()> {
    let corpus = resolve_corpus(args.corpus.as_deref())?;
    args.passages.validate()?;
    let counts = odqa_corpus::export_passages(
        &corpus.path,
        &args.passages,
        args.skip_bad_lines,
        &args.out,
        |err| eprintln!("skipped: {err}"),
    )?;
    eprintln!(
        "wrote {} passages to {} ({} malformed records skipped, {} exact repeats of an article written once)",
        counts.passages,
        args.out.display(),
        counts.skipped_records,
        counts.repeated_articles
    );
    Ok(())
}

fn demo(args: &crate::DemoArgs, ctx: &Ctx) -> Result<()> {
    let corpus = resolve_corpus(args.corpus.as_deref())?;
    let questions = if args.questions.is_empty() {
        &corpus.sample_questions
    } else {
        &args.questions
    };
    if questions.is_empty() {
        bail!(
            "corpus {:?} has no sample questions (sample_questions in corpora/NAME.toml): ask with --question Q",
            corpus.name
        );
    }
    if let Some(q) = questions.iter().find(|q| q.trim().is_empty()) {
        bail!("--question {q:?} is empty");
    }
    let dir = corpus.default_index_dir();
    if dir.exists() {
        eprintln!(
            "using the index at {} (delete it to rebuild)",
            dir.display()
        );
    } else {
        eprintln!("building {} from {}", dir.display(), corpus.path.display());
        let mut options = BuildOptions::new(corpus.path.clone(), dir.clone());
        options.dictionary = ctx.dictionary.clone();
        options.progress = ctx.progress;
        build(&options)?;
    }
    let retriever = odqa_pipeline::Retriever::new(
        PassageIndex::open(&dir, &ctx.dictionary)?,
        None,
        odqa_pipeline::RetrievalOptions::default(),
    )?;
    let pipeline = odqa_pipeline::Pipeline::new(retriever, args.reader.load(ctx)?);
    let options = odqa_pipeline::AskOptions {
        answers: args.answers,
        ..args.fusion
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for question in questions {
        let result = pipeline.ask(question, &options)?;
        write!(out, "\n{question}\n{}", result.text())?;
    }
    drop(out);
    if args.serve {
        crate::serve::run_loaded(args.addr, pipeline, options)?;
    }
    Ok(())
}
