//! The runners over odqa-pipeline's reader, pipeline and retriever and
//! odqa-encoder's models: a scripted span model where the answers matter,
//! a tiny random BERT over the demo corpus where only the plumbing does.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use odqa_analysis::DictionarySource;
use odqa_bench::{
    bench_ann, bench_retrieval, bench_throughput, rescore, AnnEvent, AnnOptions, BenchError,
    ReadCache, ReadingBench, RetrievalRun, SweepGrid, ThroughputEvent, ThroughputOptions,
    TimedModel,
};
use odqa_encoder::testing::{write_tiny_bert_qa, TinyBertQa};
use odqa_encoder::{Device, Encoder, Precision, QaModel, TextKind};
use odqa_pipeline::{AskOptions, Pipeline, Reader, ReaderOptions, RetrievalOptions, Retriever};
use odqa_reader::testing::{char_token_surface, char_wordpiece_tokenizer, TestStyle};
use odqa_reader::{SpanLogits, SpanModel, Window};
use tokenizers::Tokenizer;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn demo_corpus() -> PathBuf {
    repo().join("corpora/demo/odqa-demo.jsonl")
}

fn demo_questions() -> PathBuf {
    repo().join("corpora/demo/QUESTIONS.json")
}

/// The ko-dic the workspace's other index tests read (no embedded copy).
fn dictionary() -> DictionarySource {
    DictionarySource::Directory(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/ko-dic/lindera-cache/6.2.0-fmt2/lindera-ko-dic"),
    )
}

fn keys(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// Start logits peak on `서` and end logits on `울`: "서울" wherever the
/// passage holds it.
struct Scripted {
    tokenizer: Tokenizer,
}

impl SpanModel for Scripted {
    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn span_logits(&self, windows: &[Window]) -> odqa_reader::Result<SpanLogits> {
        let seq_len = windows.iter().map(Window::len).max().unwrap_or(0);
        let (mut start, mut end) = (Vec::new(), Vec::new());
        for w in windows {
            for i in 0..seq_len {
                let surface = w
                    .input_ids
                    .get(i)
                    .and_then(|&id| char_token_surface(&self.tokenizer, id));
                start.push(if surface.as_deref() == Some("서") {
                    9.0
                } else {
                    0.0
                });
                end.push(if surface.as_deref() == Some("울") {
                    9.0
                } else {
                    0.0
                });
            }
        }
        Ok(SpanLogits {
            start,
            end,
            batch: windows.len(),
            seq_len,
        })
    }
}

fn bench<'a>(questions: &'a Path, reader: &'a Path, limit: Option<usize>) -> ReadingBench<'a> {
    ReadingBench {
        questions_file: questions,
        reader,
        label: None,
        limit,
        show_progress: false,
    }
}

#[test]
fn mrc_reads_the_gold_paragraph_and_records_the_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let questions = tmp.path().join("gold.json");
    std::fs::write(
        &questions,
        r#"[{"id": "q1", "question": "수도는?", "context": "한국의 수도는 서울이다.", "answers": ["서울"]},
            {"id": "q2", "question": "항구는?", "context": "부산은 항구다.", "answers": ["부산"]}]"#,
    )
    .unwrap();
    let tokenizer =
        char_wordpiece_tokenizer("한국의수도는서울이다부산항구?", TestStyle::Bert).unwrap();
    let reader = Reader::new(Scripted { tokenizer }, ReaderOptions::default()).unwrap();
    let reader_path = Path::new("models/scripted");
    let run = bench(&questions, reader_path, Some(1));
    assert_eq!(run.label(), "scripted");

    let machine = test_machine();
    let (report, predictions) = run
        .mrc(&reader, &run.mrc_questions().unwrap(), &machine)
        .unwrap();
    assert_eq!((report.kind.as_str(), report.questions), ("mrc", 1));
    assert_eq!(predictions["q1"], "서울");
    assert_eq!(report.exact_match, 100.0);
    assert_eq!(keys(&report.extra), ["machine", "options", "reader"]);
    assert_eq!(report.extra["machine"], serde_json::json!(machine));
    assert_eq!(report.extra["reader"], "models/scripted");

    let (json, preds) = report
        .write(&tmp.path().join("results"), &questions, &predictions)
        .unwrap();
    assert!(json.ends_with("results/mrc-gold-scripted.json"), "{json:?}");
    assert!(preds.is_file());

    let no_context = tmp.path().join("open.json");
    std::fs::write(
        &no_context,
        r#"[{"id": "x1", "question": "수도는?", "answers": ["서울"]}]"#,
    )
    .unwrap();
    let err = bench(&no_context, reader_path, None)
        .mrc_questions()
        .unwrap_err();
    assert!(
        matches!(&err, BenchError::NoContext { id, .. } if id == "x1"),
        "{err}"
    );
    assert!(err
        .to_string()
        .ends_with("has no context: bench mrc needs gold paragraphs"));
}

/// A 1-layer random BERT QA model over the demo corpus's characters.
fn tiny_model(dir: &Path) -> PathBuf {
    let model = dir.join("tiny-qa");
    let alphabet = std::fs::read_to_string(demo_corpus()).unwrap() + "?";
    write_tiny_bert_qa(&model, &TinyBertQa::bert(&alphabet)).unwrap();
    model
}

fn demo_index(dir: &Path) -> PathBuf {
    let out = dir.join("demo-index");
    let mut options = odqa_index::BuildOptions::new(demo_corpus(), out.clone());
    options.dictionary = dictionary();
    options.threads = 1;
    odqa_index::build_index(&options, &AtomicBool::new(false)).unwrap();
    out
}

fn retriever(index: &Path) -> Retriever {
    let bm25 = odqa_index::PassageIndex::open(index, &dictionary()).unwrap();
    Retriever::new(bm25, None, RetrievalOptions::default()).unwrap()
}

#[test]
fn odqa_the_read_cache_and_its_sweep_over_the_demo_index() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let index = demo_index(tmp.path());
    let mut reader_options = ReaderOptions::default();
    reader_options.windows.max_len = 96;
    reader_options.windows.doc_stride = 48;
    reader_options.windows.max_query_len = 32;
    let reader = Reader::load(&model, reader_options, &Device::Cpu).unwrap();
    let pipeline = Pipeline::new(retriever(&index), reader);
    let questions_file = demo_questions();
    let mut run = bench(&questions_file, &model, Some(3));
    run.label = Some("tiny".into());
    let questions = run.questions().unwrap();
    assert_eq!(questions.len(), 3);
    let options = AskOptions {
        top_k: 3,
        ..AskOptions::default()
    };
    let machine = test_machine();

    let (report, predictions) = run
        .odqa(&pipeline, &index, &options, &questions, &machine)
        .unwrap();
    assert_eq!(
        (report.kind.as_str(), report.label.as_str()),
        ("odqa", "tiny")
    );
    assert_eq!(predictions.len(), 3);
    assert!(report.windows >= 3);
    assert_eq!(
        keys(&report.extra),
        ["ask", "index", "machine", "options", "reader", "retrieval"]
    );

    let cache = tmp.path().join("cache/read.json");
    let (report, predictions) = run
        .build_read_cache(&pipeline, &index, &options, &questions, &cache, &machine)
        .unwrap();
    assert_eq!(report.label, "tiny-cache-top3");
    assert_eq!(keys(&report.extra), ["ask", "cache", "machine", "source"]);
    assert_eq!(report.extra["ask"]["early_stop"], false);
    let stored = ReadCache::read(&cache).unwrap();
    assert_eq!((stored.top_k, stored.questions.len()), (3, 3));
    assert_eq!(stored.source, report.extra["source"]);
    // The report scores what re-scoring the cache at the same settings gives.
    let read_all = AskOptions {
        early_stop: false,
        ..options
    };
    assert_eq!(rescore(&stored, &read_all.fusion()).unwrap().1, predictions);

    let mut limited = run.clone();
    limited.limit = Some(2);
    let grid = SweepGrid {
        weights: &[0.0, 0.5],
        ..SweepGrid::default()
    };
    let sweep = limited.sweep(&cache, &options, &grid).unwrap();
    // 2 weights × the options' depth and threshold × early stop off and on.
    assert_eq!((sweep.rows.len(), sweep.questions), (4, 2));
    assert!(sweep.rows.iter().all(|r| r.settings.top_k == 3));
    assert_eq!(sweep.table.lines().count(), 2 + 4);
    assert_eq!(sweep.stem, "odqa-sweep-QUESTIONS-tiny");
    let (md, json) = sweep.write(&tmp.path().join("results")).unwrap();
    assert!(md.is_file() && json.is_file());
    let deeper = SweepGrid {
        top_ks: &[4],
        ..SweepGrid::default()
    };
    assert!(limited.sweep(&cache, &options, &deeper).is_err());
}

#[test]
fn retrieval_writes_its_report_and_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let index = demo_index(tmp.path());
    let retriever = retriever(&index);
    let questions = demo_questions();
    let hits = tmp.path().join("hits.jsonl");
    let out_dir = tmp.path().join("results");
    let mut run = RetrievalRun {
        questions_file: &questions,
        index: &index,
        label: None,
        mode: "bm25",
        depth: 10,
        warmup: 1,
        export_hits: Some(&hits),
        out_dir: &out_dir,
        show_progress: false,
    };
    let err = bench_retrieval(&retriever, &run).unwrap_err();
    assert!(matches!(err, BenchError::InvalidOptions(_)), "{err}");
    run.depth = 100;
    let (report, files) = bench_retrieval(&retriever, &run).unwrap();
    assert_eq!(
        (report.label.as_str(), report.questions),
        ("demo-index", 20)
    );
    assert_eq!(
        keys(&report.extra),
        ["analyzer", "bm25", "passage_count", "passages", "retrieval"]
    );
    // BM25 runs also time the ranking alone; it is in the JSON and the table.
    let ranking = report.ranking_latency_ms.expect("bm25 times its ranking");
    assert!(ranking.p50 > 0.0 && ranking.p50 <= ranking.max);
    let json = std::fs::read_to_string(&files.json).unwrap();
    assert!(json.contains("\"ranking_latency_ms\""), "{json}");
    let table = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(table.contains("ranking p50 ms"), "{table}");
    assert!(files
        .json
        .ends_with("results/retrieval-QUESTIONS-demo-index.json"));
    assert!(files.markdown.is_file() && files.svg.is_file());
    assert_eq!(std::fs::read_to_string(&hits).unwrap().lines().count(), 20);

    let nowhere = tmp.path().join("missing/hits.jsonl");
    run.export_hits = Some(&nowhere);
    let err = bench_retrieval(&retriever, &run).unwrap_err();
    assert!(matches!(err, BenchError::Create { .. }), "{err}");
    assert!(err.to_string().starts_with("creating "), "{err}");
}

fn throughput_options<'a>(batch_sizes: &'a [usize], out_dir: &'a Path) -> ThroughputOptions<'a> {
    ThroughputOptions {
        seq_len: 16,
        batch_sizes,
        windows: 3,
        profile: true,
        label: None,
        reader: Path::new("tiny-qa"),
        device: "Cpu".into(),
        out_dir,
    }
}

#[test]
fn throughput_times_each_batch_size_and_profiles_the_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_model(tmp.path());
    let out_dir = tmp.path().join("results");
    let model = TimedModel::Reader(QaModel::load_at(&dir, &Device::Cpu, Precision::F32).unwrap());
    let options = throughput_options(&[1, 2], &out_dir);
    let mut events = Vec::new();
    let (report, path) = bench_throughput(
        &model,
        &demo_corpus(),
        &options,
        test_machine(),
        &mut |event| match event {
            ThroughputEvent::Timed(row) => events.push(format!("batch {}", row.batch)),
            ThroughputEvent::Profiled(stages) => events.push(format!("{} stages", stages.len())),
        },
    )
    .unwrap();
    assert_eq!(events, ["batch 1", "8 stages", "batch 2", "8 stages"]);
    // Whole batches: 3 windows at batch 2 are two passes.
    let windows: Vec<usize> = report.rows.iter().map(|r| r.windows).collect();
    assert_eq!(windows, [3, 4]);
    assert!(report
        .rows
        .iter()
        .all(|r| r.stages_ms_per_window.as_ref().map(|s| s.len()) == Some(8)));
    assert_eq!(report.reader.as_deref(), Some(Path::new("tiny-qa")));
    assert!(
        path.ends_with("results/reader-throughput-reader.json"),
        "{path:?}"
    );

    let short = tmp.path().join("short.jsonl");
    std::fs::write(
        &short,
        "{\"id\": 1, \"title\": \"짧은\", \"text\": \"짧다.\"}\n",
    )
    .unwrap();
    let err = bench_throughput(&model, &short, &options, test_machine(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, BenchError::ShortCorpus { tokens: 16, .. }),
        "{err}"
    );

    let empty_batch = throughput_options(&[0], &out_dir);
    assert!(empty_batch.validate().is_err());
    let tiny_window = ThroughputOptions {
        seq_len: ThroughputOptions::MIN_SEQ_LEN - 1,
        ..options.clone()
    };
    assert!(tiny_window.validate().is_err());

    // The encoder is timed without a stage breakdown and records no reader.
    let encoder = TimedModel::Encoder(Encoder::load(&dir, &Device::Cpu).unwrap());
    let mut profiled = false;
    let (report, path) = bench_throughput(
        &encoder,
        &demo_corpus(),
        &throughput_options(&[2], &out_dir),
        test_machine(),
        &mut |event| profiled |= matches!(event, ThroughputEvent::Profiled(_)),
    )
    .unwrap();
    assert!(!profiled);
    assert_eq!((report.kind, report.reader.as_ref()), ("embed", None));
    assert!(
        path.ends_with("results/embed-throughput-embed.json"),
        "{path:?}"
    );
}

#[test]
fn ann_compares_hnsw_with_exact_search() {
    let tmp = tempfile::tempdir().unwrap();
    let encoder = Encoder::load(&tiny_model(tmp.path()), &Device::Cpu).unwrap();
    let texts: Vec<String> = std::fs::read_to_string(demo_corpus())
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = encoder.embed(&refs, TextKind::Passage).unwrap();
    let ids: Vec<String> = (0..vectors.len()).map(|i| format!("p{i}")).collect();
    let dir = tmp.path().join("demo/dense");
    let mut options = odqa_dense::DenseBuildOptions::new(&dir, "tiny-qa");
    options.progress = false;
    odqa_dense::build_dense_index_from_embeddings(
        &ids,
        &vectors.concat(),
        vectors[0].len(),
        &options,
        &AtomicBool::new(false),
    )
    .unwrap();
    let dense = odqa_dense::DenseIndex::open(&dir).unwrap();

    let out_dir = tmp.path().join("results");
    let questions = demo_questions();
    let index = tmp.path().join("demo");
    let mut ann = AnnOptions {
        index: &index,
        questions_file: &questions,
        k: 5,
        ef_searches: &[4, 64],
        out_dir: &out_dir,
    };
    let mut events = Vec::new();
    let (report, path) = bench_ann(&dense, &encoder, &ann, &mut |e| events.push(e)).unwrap();
    assert!(matches!(events[0], AnnEvent::Exact { passages: 40, .. }));
    assert_eq!(events.len(), 3);
    for (event, row) in events[1..].iter().zip(&report.rows[1..]) {
        let AnnEvent::Hnsw {
            ef_search, recall, ..
        } = event
        else {
            panic!("{event:?}");
        };
        assert_eq!(
            (Some(*ef_search), Some(*recall)),
            (row.ef_search, row.recall_vs_exact)
        );
        assert!((0.0..=1.0).contains(recall));
    }
    assert_eq!((report.queries, report.k), (20, 5));
    assert!(path.ends_with("results/ann-demo.json"), "{path:?}");

    ann.ef_searches = &[];
    assert!(bench_ann(&dense, &encoder, &ann, &mut |_| {}).is_err());
}

/// A machine description that no real run has.
fn test_machine() -> odqa_encoder::Machine {
    odqa_encoder::Machine {
        cpu: "test".into(),
        flags: vec!["avx2"],
        threads: 1,
        device: "Cpu".into(),
        precision: None,
    }
}
