use std::path::Path;

use odqa_bench::{
    first_hit_rank, load_questions, markdown_table, percentile, plot_recall_svg,
    run_retrieval_bench, write_report, BenchError, Question, RetrievalBenchOptions,
    RetrievedPassage,
};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn passage(id: &str, text: &str) -> RetrievedPassage {
    RetrievedPassage {
        passage_id: id.to_owned(),
        text: text.to_owned(),
        score: 1.0,
    }
}

fn q(id: &str, question: &str, answers: &[&str]) -> Question {
    Question {
        id: id.to_owned(),
        question: question.to_owned(),
        answers: answers.iter().map(|s| s.to_string()).collect(),
        context: None,
        title: None,
    }
}

#[test]
fn loads_squad_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "squad.json",
        r#"{"version":"1","data":[{"title":"A","paragraphs":[
            {"context":"서울은 수도다","qas":[
              {"id":"q1","question":"수도는?","answers":[{"text":"서울","answer_start":0},{"text":"서울","answer_start":0},{"text":"","answer_start":0},{"text":"서울시","answer_start":0}]},
              {"id":"q2","question":"무엇?","answers":[{"text":"수도","answer_start":4}]}]}]},
          {"title":"B","paragraphs":[{"context":"x","qas":[{"id":"q3","question":"x?","answers":[{"text":"x","answer_start":0}]}]}]}]}"#,
    );
    let qs = load_questions(&p).unwrap();
    assert_eq!(qs.len(), 3);
    let mut q1 = q("q1", "수도는?", &["서울", "서울시"]);
    q1.context = Some("서울은 수도다".into());
    q1.title = Some("A".into());
    assert_eq!(qs[0], q1);
    assert_eq!(qs[2].id, "q3");
    assert_eq!(qs[2].title.as_deref(), Some("B"));
}

#[test]
fn loads_klue_list_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "klue.json",
        r#"[{"id":"mrc-1","title":"T","question":"누구?","context":"c","answers":{"text":["홍길동","홍길동"," "],"answer_start":[0,0,0]}},
            {"id":"mrc-2","title":"T","question":"언제?","context":"c","answers":{"text":["1990년"],"answer_start":[3]}}]"#,
    );
    let qs = load_questions(&p).unwrap();
    assert_eq!(
        qs,
        vec![
            Question {
                context: Some("c".into()),
                title: Some("T".into()),
                ..q("mrc-1", "누구?", &["홍길동"])
            },
            Question {
                context: Some("c".into()),
                title: Some("T".into()),
                ..q("mrc-2", "언제?", &["1990년"])
            },
        ]
    );
}

#[test]
fn load_errors_are_specific() {
    let dir = tempfile::tempdir().unwrap();

    let p = write(dir.path(), "empty.json", "[]");
    let e = load_questions(&p).unwrap_err();
    assert!(matches!(e, BenchError::Empty { .. }), "{e}");
    assert!(e.to_string().contains("empty.json"), "{e}");

    let p = write(dir.path(), "empty-squad.json", r#"{"data":[]}"#);
    assert!(matches!(
        load_questions(&p).unwrap_err(),
        BenchError::Empty { .. }
    ));

    let p = write(
        dir.path(),
        "noans.json",
        r#"[{"id":"ok","question":"a?","answers":{"text":["a"]}},
            {"id":"mrc-lonely","question":"b?","answers":{"text":["", "  "],"answer_start":[0,0]}}]"#,
    );
    let e = load_questions(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BenchError::NoAnswers { .. }), "{msg}");
    assert!(
        msg.contains("mrc-lonely") && msg.contains("noans.json"),
        "{msg}"
    );

    let p = write(dir.path(), "broken.json", "this is not json");
    let e = load_questions(&p).unwrap_err();
    assert!(matches!(e, BenchError::Json { .. }), "{e}");
    assert!(e.to_string().contains("broken.json"), "{e}");

    let p = write(
        dir.path(),
        "missing.json",
        r#"{"data":[{"paragraphs":[{"qas":[{"id":"a","question":"q","answers":[{"text":"x"}]},{"id":"b","answers":[]}]}]}]}"#,
    );
    let msg = load_questions(&p).unwrap_err().to_string();
    assert!(
        msg.contains("missing.json") && msg.contains("data[0].paragraphs[0].qas[1].question"),
        "{msg}"
    );

    let p = write(dir.path(), "scalar.json", "42");
    let msg = load_questions(&p).unwrap_err().to_string();
    assert!(
        msg.contains("scalar.json") && msg.contains("top level"),
        "{msg}"
    );

    let e = load_questions(&dir.path().join("nope.json")).unwrap_err();
    assert!(matches!(e, BenchError::Io { .. }));
    assert!(e.to_string().contains("nope.json"));
}

#[test]
fn loads_real_files_when_present() {
    let klue = Path::new("/work/shared/data/klue-mrc-odqa-val.json");
    if klue.exists() {
        let qs = load_questions(klue).unwrap();
        assert_eq!(qs.len(), 240);
        assert!(qs.iter().all(|q| !q.answers.is_empty()));
    }
    let korquad = Path::new("/work/shared/data/korquad-early-dev-repaired.json");
    if korquad.exists() {
        let qs = load_questions(korquad).unwrap();
        assert_eq!(qs.len(), 5476);
    }
}

#[test]
fn first_hit_rank_finds_substrings() {
    let hits = vec![
        passage("p1", "아무 관련 없음"),
        passage("p2", "수도는 서울특별시이다"),
        passage("p3", "부산"),
    ];
    let answers = vec!["부산".to_string(), "서울".to_string()];
    assert_eq!(first_hit_rank(&answers, &hits), Some(2));
    assert_eq!(first_hit_rank(&["대구".to_string()], &hits), None);
    assert_eq!(first_hit_rank(&[String::new()], &hits), None);
    assert_eq!(first_hit_rank(&answers, &[]), None);
}

#[test]
fn percentile_is_nearest_rank() {
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(percentile(&v, 50.0), 5.0);
    assert_eq!(percentile(&v, 90.0), 9.0);
    assert_eq!(percentile(&v, 91.0), 10.0);
    assert_eq!(percentile(&v, 99.0), 10.0);
    assert_eq!(percentile(&v, 100.0), 10.0);
    assert_eq!(percentile(&v, 0.0), 1.0);
    assert_eq!(percentile(&v, 10.0), 1.0);
    assert_eq!(percentile(&v, 11.0), 2.0);
    let w = [15.0, 20.0, 35.0, 40.0, 50.0];
    assert_eq!(percentile(&w, 30.0), 20.0);
    assert_eq!(percentile(&w, 40.0), 20.0);
    assert_eq!(percentile(&w, 50.0), 35.0);
    assert_eq!(percentile(&[], 50.0), 0.0);
}

/// Four questions whose answers first appear at ranks 1, 3, none and 20.
type SearchResult = Result<Vec<RetrievedPassage>, String>;

fn fake_setup() -> (Vec<Question>, impl FnMut(&str, usize) -> SearchResult) {
    let questions = vec![
        q("a", "qa", &["ANS-A"]),
        q("b", "qb", &["ANS-B", "ALT-B"]),
        q("c", "qc", &["ANS-C"]),
        q("d", "qd", &["ANS-D"]),
    ];
    let search = |question: &str, depth: usize| -> SearchResult {
        let rank = match question {
            "qa" => Some(1),
            "qb" => Some(3),
            "qc" => None,
            "qd" => Some(20),
            other => return Err(format!("unknown question {other}")),
        };
        let tag = question.trim_start_matches('q').to_uppercase();
        Ok((1..=depth + 5)
            .map(|r| {
                let text = if Some(r) == rank {
                    if tag == "B" {
                        "... ALT-B ...".to_string()
                    } else {
                        format!("... ANS-{tag} ...")
                    }
                } else {
                    format!("filler {r}")
                };
                RetrievedPassage {
                    passage_id: format!("{question}-{r}"),
                    text,
                    score: 1.0 / r as f32,
                }
            })
            .collect())
    };
    (questions, search)
}

#[test]
fn recall_and_mrr_on_hand_computed_case() {
    let (questions, search) = fake_setup();
    let options = RetrievalBenchOptions {
        label: "fake".into(),
        mode: "bm25".into(),
        warmup: 2,
        ..Default::default()
    };
    let mut hits = Vec::new();
    let report = run_retrieval_bench(&questions, &options, search, Some(&mut hits)).unwrap();
    assert_eq!(report.questions, 4);
    assert_eq!(report.depth, 100);
    let ks: Vec<usize> = report.recall.iter().map(|r| r.k).collect();
    assert_eq!(ks, vec![1, 5, 10, 20, 50, 100]);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(report.recall_at(1).unwrap(), 0.25));
    assert!(close(report.recall_at(5).unwrap(), 0.5));
    assert!(close(report.recall_at(10).unwrap(), 0.5));
    assert!(close(report.recall_at(20).unwrap(), 0.75));
    assert!(close(report.recall_at(100).unwrap(), 0.75));
    assert!(close(
        report.mrr,
        (1.0 + 1.0 / 3.0 + 0.0 + 1.0 / 20.0) / 4.0
    ));
    assert_eq!(report.threads, 1);
    assert!(report.latency_ms.p50 <= report.latency_ms.p99);
    assert!(report.latency_ms.p99 <= report.latency_ms.max);
    assert!(report.extra.is_null());

    // Hits export: one line per question, truncated to depth.
    let text = String::from_utf8(hits).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1]["id"], "b");
    let b_hits = lines[1]["hits"].as_array().unwrap();
    assert_eq!(b_hits.len(), 100);
    assert_eq!(b_hits[2]["passage_id"], "qb-3");
    assert!(b_hits[0]["score"].as_f64().is_some());

    // Smaller depth: the rank-20 hit is out of reach.
    let (questions, search) = fake_setup();
    let options = RetrievalBenchOptions {
        ks: vec![5, 1, 5],
        depth: 10,
        warmup: 0,
        show_progress: true,
        ..Default::default()
    };
    let report = run_retrieval_bench(&questions, &options, search, None).unwrap();
    assert_eq!(report.recall.len(), 2);
    assert!(close(report.mrr, (1.0 + 1.0 / 3.0) / 4.0));
}

#[test]
fn bad_options_and_failing_search() {
    let (questions, search) = fake_setup();
    let options = RetrievalBenchOptions {
        depth: 10,
        ..Default::default()
    };
    let e = run_retrieval_bench(&questions, &options, search, None).unwrap_err();
    assert!(matches!(e, BenchError::InvalidOptions(_)), "{e}");

    let (_, search) = fake_setup();
    let e = run_retrieval_bench(&[], &RetrievalBenchOptions::default(), search, None).unwrap_err();
    assert!(matches!(e, BenchError::NoQuestions));

    let questions = vec![q("ok-1", "fine", &["x"]), q("bad-7", "boom", &["x"])];
    let failing = |question: &str, _depth: usize| -> Result<Vec<RetrievedPassage>, String> {
        if question == "boom" {
            Err("index exploded".into())
        } else {
            Ok(vec![passage("p", "x")])
        }
    };
    let options = RetrievalBenchOptions {
        warmup: 0,
        ..Default::default()
    };
    let e = run_retrieval_bench(&questions, &options, failing, None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BenchError::Search { .. }), "{msg}");
    assert!(
        msg.contains("bad-7") && msg.contains("index exploded"),
        "{msg}"
    );
}

#[test]
fn reports_are_written() {
    let (questions, search) = fake_setup();
    let options = RetrievalBenchOptions {
        label: "bm25-무형태소".into(),
        index: "idx-10k".into(),
        questions_file: "fake.json".into(),
        mode: "bm25".into(),
        warmup: 0,
        ..Default::default()
    };
    let mut report = run_retrieval_bench(&questions, &options, search, None).unwrap();
    report.extra = serde_json::json!({"tokenizer": "lindera"});

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/reports");
    let files = write_report(&report, &out, "run1").unwrap();
    assert_eq!(files.json, out.join("run1.json"));
    for p in [&files.json, &files.markdown, &files.svg] {
        assert!(p.is_file(), "{}", p.display());
    }

    let back: odqa_bench::RetrievalReport =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    assert_eq!(back.label, report.label);
    assert_eq!(back.extra["tokenizer"], "lindera");

    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("| label | R@1 | R@5 | R@10 | R@20 | R@50 | R@100 | MRR |"),
        "{md}"
    );
    assert!(
        md.contains("| bm25-무형태소 | 0.250 | 0.500 | 0.500 | 0.750 | 0.750 | 0.750 | 0.346 |"),
        "{md}"
    );

    let svg = std::fs::read_to_string(&files.svg).unwrap();
    assert!(svg.contains("<svg"));
    assert!(svg.contains("<text"));
    for needle in [
        "bm25-무형태소",
        "recall@k",
        "k (passages retrieved)",
        "\n100\n",
        "\n20\n",
        "0.5",
    ] {
        assert!(svg.contains(needle), "svg lacks {needle}");
    }
}

#[test]
fn table_and_plot_for_several_reports() {
    let mut reports = Vec::new();
    for (label, ks) in [("a|b", vec![1, 5]), ("c", vec![1, 10])] {
        let (questions, search) = fake_setup();
        let options = RetrievalBenchOptions {
            label: label.into(),
            ks,
            depth: 10,
            warmup: 0,
            ..Default::default()
        };
        reports.push(run_retrieval_bench(&questions, &options, search, None).unwrap());
    }
    let md = markdown_table(&reports);
    assert_eq!(md.lines().count(), 4, "{md}");
    assert!(md.starts_with("| label | R@1 | R@5 | R@10 | MRR | mean ms | p50 ms | p99 ms |"));
    assert!(md.contains("| a\\|b | 0.250 | 0.500 | - |"), "{md}");
    assert!(md.contains("| c | 0.250 | - | 0.500 |"), "{md}");
    assert!(
        !md.contains("ranking"),
        "no ranking columns unless measured"
    );

    // A report that timed its ranking alone gets the two ranking columns;
    // one that did not shows dashes there.
    reports[0].ranking_latency_ms = Some(odqa_bench::LatencySummary::of(vec![1.0, 2.0, 3.0]));
    let md = markdown_table(&reports);
    assert!(
        md.lines()
            .next()
            .unwrap()
            .ends_with("| p99 ms | ranking p50 ms | ranking p99 ms |"),
        "{md}"
    );
    assert!(md.contains(" | 2.00 | 3.00 |\n"), "{md}");
    assert!(md.contains(" | - | - |\n"), "{md}");

    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("cmp.svg");
    plot_recall_svg(&reports, &svg_path, "Comparison").unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("Comparison") && svg.contains("a|b") && svg.contains("\nc\n"));

    let e = plot_recall_svg(&[], &svg_path, "x").unwrap_err();
    assert!(matches!(e, BenchError::Plot { .. }));
}
