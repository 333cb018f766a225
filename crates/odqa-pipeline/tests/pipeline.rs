//! The whole retrieve-then-read path on a real index with a tiny randomly
//! initialised BERT QA model built here: plumbing, offsets and errors
//! (the answers themselves are meaningless).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use odqa_encoder::testing::{write_tiny_bert_qa, TinyBertQa};
use odqa_encoder::Device;
use odqa_index::{build_index, BuildOptions, PassageIndex};
use odqa_pipeline::{
    AskOptions, Pipeline, PipelineError, Reader, ReaderOptions, RetrievalOptions, Retriever,
};

fn demo_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpora/demo/odqa-demo.jsonl")
}

fn articles() -> Vec<odqa_corpus_article::Article> {
    std::fs::read_to_string(demo_corpus())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

mod odqa_corpus_article {
    #[derive(serde::Deserialize)]
    pub struct Article {
        pub id: String,
        pub text: String,
    }
}

/// A 1-layer random BERT QA model over a character vocabulary of the demo
/// corpus.
fn tiny_model(dir: &Path, architecture: &str) -> PathBuf {
    let model = dir.join("tiny-qa");
    let alphabet: String = std::fs::read_to_string(demo_corpus()).unwrap() + "?";
    let options = TinyBertQa {
        architecture,
        ..TinyBertQa::bert(&alphabet)
    };
    write_tiny_bert_qa(&model, &options).unwrap();
    model
}

fn demo_index(dir: &Path) -> PassageIndex {
    let out = dir.join("index");
    let options = BuildOptions::new(demo_corpus(), out.clone());
    build_index(&options, &AtomicBool::new(false)).unwrap();
    PassageIndex::open(&out, &options.dictionary).unwrap()
}

fn small_windows() -> ReaderOptions {
    let mut options = ReaderOptions::default();
    // Short windows so passages span several of them.
    options.windows.max_len = 96;
    options.windows.doc_stride = 48;
    options.windows.max_query_len = 32;
    options.batch_size = 4;
    options
}

#[test]
fn ask_returns_exact_spans_with_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "BertForQuestionAnswering");
    let reader = Reader::load(&model, small_windows(), &Device::Cpu).unwrap();
    let retriever =
        Retriever::new(demo_index(tmp.path()), None, RetrievalOptions::default()).unwrap();
    let pipeline = Pipeline::new(retriever, reader);
    let options = AskOptions {
        top_k: 5,
        retrieval_weight: 0.0,
        answers: 3,
        early_stop: false,
        ..AskOptions::default()
    };
    let result = pipeline.ask("이순신이 태어난 해는?", &options).unwrap();
    assert!(
        (2..=5).contains(&result.hits.len()),
        "{}",
        result.hits.len()
    );
    assert_eq!(result.hits[0].title, "이순신");
    assert!(!result.answers.is_empty() && result.answers.len() <= 3);
    assert!(
        result.timings.windows > 5,
        "passages span several windows: {}",
        result.timings.windows
    );
    let articles = articles();
    for answer in &result.answers {
        let ev = &answer.evidence;
        let hit = result
            .hits
            .iter()
            .find(|h| h.passage_id == ev.passage_id)
            .unwrap();
        let from_passage: String = hit
            .text
            .chars()
            .skip(ev.passage_char_start)
            .take(ev.passage_char_end - ev.passage_char_start)
            .collect();
        assert_eq!(from_passage, answer.text);
        let article = articles.iter().find(|a| a.id == ev.article_id).unwrap();
        let from_article: String = article
            .text
            .chars()
            .skip(ev.article_char_start)
            .take(ev.article_char_end - ev.article_char_start)
            .collect();
        assert_eq!(from_article, answer.text);
        assert!(
            ev.sentence.contains(answer.text.trim()),
            "{:?} in {:?}",
            answer.text,
            ev.sentence
        );
        assert!(answer.span_probability > 0.0 && answer.span_probability <= 1.0);
    }
    let scores: Vec<f32> = result.answers.iter().map(|a| a.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
}

#[test]
fn reading_is_deterministic_and_batch_independent() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "BertForQuestionAnswering");
    let passages = [
        "서울특별시는 대한민국의 수도이다. 한강이 도시를 가로지른다.",
        "부산은 항구 도시이다.",
    ];
    let mut one = small_windows();
    one.batch_size = 1;
    let a = Reader::load(&model, one, &Device::Cpu)
        .unwrap()
        .read("수도는?", &passages)
        .unwrap();
    let b = Reader::load(&model, small_windows(), &Device::Cpu)
        .unwrap()
        .read("수도는?", &passages)
        .unwrap();
    assert_eq!(a.answers.len(), b.answers.len());
    for (x, y) in a.answers.iter().zip(&b.answers) {
        assert_eq!(
            (x.passage_index, x.char_start, x.char_end),
            (y.passage_index, y.char_start, y.char_end)
        );
        assert!((x.score - y.score).abs() < 1e-4);
    }
}

#[test]
fn model_and_input_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let unsupported = tiny_model(&tmp.path().join("x"), "XLMRobertaForQuestionAnswering");
    let err = Reader::load(&unsupported, ReaderOptions::default(), &Device::Cpu)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("XLMRobertaForQuestionAnswering"),
        "{err}"
    );

    let missing = tmp.path().join("missing");
    std::fs::create_dir_all(&missing).unwrap();
    let err = Reader::load(&missing, ReaderOptions::default(), &Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("config.json"), "{err}");

    let no_weights = tiny_model(&tmp.path().join("y"), "BertForQuestionAnswering");
    std::fs::remove_file(no_weights.join("model.safetensors")).unwrap();
    let err = Reader::load(&no_weights, ReaderOptions::default(), &Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("no weights"), "{err}");

    let model = tiny_model(&tmp.path().join("z"), "BertForQuestionAnswering");
    let reader = Reader::load(&model, small_windows(), &Device::Cpu).unwrap();
    let err = reader.read("질문?", &["정상 지문.", "   "]).unwrap_err();
    assert!(matches!(err, PipelineError::Reader(_)), "{err}");
    assert!(
        err.to_string().contains('1'),
        "names the empty passage: {err}"
    );
    // A question far longer than a window is truncated to max_query_len,
    // so it still reads.
    let long_question = "서울".repeat(400);
    assert!(reader.read(&long_question, &["서울은 수도이다."]).is_ok());
    let mut bad = small_windows();
    bad.windows.max_query_len = 200;
    assert!(
        Reader::load(&model, bad, &Device::Cpu).is_err(),
        "max_query_len leaving no room for passage tokens"
    );
}

/// Re-scoring stored reads (what `bench odqa --cache` keeps) gives exactly
/// what a fresh `ask` gives, at several weights, with and without early
/// stopping; early stopping reads no more and keeps the best answer.
#[test]
fn rescoring_stored_reads_equals_a_fresh_run() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "BertForQuestionAnswering");
    let reader = Reader::load(&model, small_windows(), &Device::Cpu).unwrap();
    let retriever =
        Retriever::new(demo_index(tmp.path()), None, RetrievalOptions::default()).unwrap();
    let pipeline = Pipeline::new(retriever, reader);
    let question = "훈민정음을 창제한 왕은 누구인가?";
    let hits = pipeline.retriever().retrieve(question, 8).unwrap();
    let stored = pipeline.read_hits(question, &hits, None).unwrap();
    assert_eq!(stored.len(), hits.len());
    for weight in [0.0, 0.5, 1.0] {
        let mut full_best = None;
        for early_stop in [false, true] {
            let options = AskOptions {
                top_k: 8,
                retrieval_weight: weight,
                answers: 3,
                early_stop,
                batch_windows: 2,
                no_answer_threshold: 0.0,
            };
            let fresh = pipeline.ask(question, &options).unwrap();
            let cached = odqa_reader::fusion::decide(&stored, &options.fusion());
            let fresh_answers: Vec<(String, f32)> = fresh
                .answers
                .iter()
                .map(|a| (a.text.clone(), a.score))
                .collect();
            let cached_answers: Vec<(String, f32)> = cached
                .answers
                .iter()
                .map(|a| (a.text.clone(), a.score))
                .collect();
            assert_eq!(
                fresh_answers, cached_answers,
                "μ {weight} early {early_stop}"
            );
            assert_eq!(fresh.timings.windows, cached.windows_read);
            let best = fresh_answers.first().cloned();
            match early_stop {
                false => full_best = best,
                true => assert_eq!(best, full_best, "early stopping changed the answer"),
            }
        }
    }
}
