//! Reduced precisions against f32 on the real models: odqa's trained reader
//! (models/odqa-reader-ko on the fetched multilingual-e5-small) and the
//! encoder's embeddings, on Korean question/passage pairs. Precisions this
//! CPU lacks are skipped with a line saying so (and asking for them is an
//! error, checked here too).

mod common;

use std::path::PathBuf;

use odqa_encoder::{cpu_features, Device, Encoder, EncoderOptions, Precision, QaModel, TextKind};

use common::model as base;

fn reader_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/odqa-reader-ko")
}

const PAIRS: [(&str, &str); 4] = [
    (
        "대한민국의 수도는 어디인가?",
        "서울특별시는 대한민국의 수도이자 최대 도시이다. 조선 시대에는 한성이라 불렸다.",
    ),
    (
        "이순신이 태어난 해는?",
        "이순신은 1545년 한성 건천동에서 태어났다. 임진왜란 때 조선 수군을 이끌었다.",
    ),
    (
        "광합성에 필요한 것은 무엇인가?",
        "광합성은 식물이 빛 에너지를 이용해 물과 이산화 탄소로 포도당을 만드는 과정이다.",
    ),
    (
        "한글을 만든 왕은 누구인가?",
        "훈민정음은 1443년 조선의 세종이 창제한 문자로, 1446년에 반포되었다.",
    ),
];

/// Padded batch of the pairs: (ids, mask, types, batch, seq_len, lengths).
fn batch(model: &QaModel) -> (Vec<u32>, Vec<u32>, Vec<u32>, usize, usize, Vec<usize>) {
    let encodings: Vec<_> = PAIRS
        .iter()
        .map(|&(q, p)| model.tokenizer().encode((q, p), true).unwrap())
        .collect();
    let seq = encodings.iter().map(|e| e.len()).max().unwrap();
    let (mut ids, mut mask, mut types) = (vec![], vec![], vec![]);
    for e in &encodings {
        let pad = seq - e.len();
        ids.extend(
            e.get_ids()
                .iter()
                .copied()
                .chain(std::iter::repeat_n(1, pad)),
        );
        mask.extend(std::iter::repeat_n(1, e.len()).chain(std::iter::repeat_n(0, pad)));
        types.extend(std::iter::repeat_n(0, seq));
    }
    let lens = encodings.iter().map(|e| e.len()).collect();
    (ids, mask, types, PAIRS.len(), seq, lens)
}

/// The best (start ≤ end ≤ start + 30) span of each row over real tokens.
fn best_spans(start: &[f32], end: &[f32], seq: usize, lens: &[usize]) -> Vec<(usize, usize)> {
    lens.iter()
        .enumerate()
        .map(|(r, &len)| {
            let (s, e) = (&start[r * seq..r * seq + len], &end[r * seq..r * seq + len]);
            let mut best = (0, 0, f32::NEG_INFINITY);
            for (i, &si) in s.iter().enumerate().skip(1) {
                for (j, &ej) in e.iter().enumerate().take(len.min(i + 30)).skip(i) {
                    if si + ej > best.2 {
                        best = (i, j, si + ej);
                    }
                }
            }
            (best.0, best.1)
        })
        .collect()
}

#[test]
fn reader_logits_and_spans_per_precision() {
    let load = |p| QaModel::load_delta_at(&reader_dir(), &base(), &Device::Cpu, p);
    let reference = load(Precision::F32).expect("load the f32 reader");
    let (ids, mask, types, b, seq, lens) = batch(&reference);
    let want = reference.logits(&ids, &mask, &types, b, seq).unwrap();
    let want_spans = best_spans(&want.start, &want.end, seq, &lens);
    for (precision, tolerance) in [(Precision::Bf16, 0.25), (Precision::Int8, 0.75)] {
        if !cpu_features().supports(precision) {
            let err = load(precision).unwrap_err().to_string();
            assert!(err.contains(precision.name()), "{err}");
            eprintln!("{precision}: this CPU lacks it; the load says: {err}");
            continue;
        }
        let model = load(precision).unwrap();
        assert_eq!(model.precision().chosen, precision);
        let got = model.logits(&ids, &mask, &types, b, seq).unwrap();
        let mut worst = 0f32;
        for (r, &len) in lens.iter().enumerate() {
            for i in r * seq..r * seq + len {
                worst = worst
                    .max((got.start[i] - want.start[i]).abs())
                    .max((got.end[i] - want.end[i]).abs());
            }
        }
        eprintln!("{precision}: max |logit diff| {worst:.4} against f32");
        assert!(worst < tolerance, "{precision}: max |logit diff| {worst}");
        assert!(
            worst > 0.0,
            "{precision} reproduced f32 exactly: not reduced"
        );
        // A best span may change only where f32 itself had a near tie:
        // f32's best span scores within 2 × the largest logit change of the
        // new best under the reduced model.
        let got_spans = best_spans(&got.start, &got.end, seq, &lens);
        let mut same = 0;
        for (r, (&(ws, we), &(gs, ge))) in want_spans.iter().zip(&got_spans).enumerate() {
            if (ws, we) == (gs, ge) {
                same += 1;
                continue;
            }
            let score = |s: usize, e: usize| got.start[r * seq + s] + got.end[r * seq + e];
            let gap = score(gs, ge) - score(ws, we);
            assert!(
                gap <= 2.0 * worst,
                "{precision}: row {r} best span ({gs},{ge}) beats f32's ({ws},{we}) by {gap}"
            );
        }
        eprintln!("{precision}: same best span {same}/{}", lens.len());
        // Every change was a near tie (checked above); still, at least
        // half of the windows keep f32's span exactly.
        assert!(
            same * 2 >= lens.len(),
            "{precision}: best spans mostly differ"
        );
    }
    let auto = load(Precision::Auto).unwrap();
    eprintln!("auto: {:?}", auto.precision());
    assert_eq!(auto.precision().chosen, cpu_features().preferred());
}

#[test]
fn embeddings_per_precision() {
    let texts: Vec<&str> = PAIRS.iter().map(|p| p.1).collect();
    let embed = |precision| {
        let options = EncoderOptions {
            precision,
            ..Default::default()
        };
        Encoder::load_with(&base(), &Device::Cpu, &options)
            .and_then(|e| e.embed(&texts, TextKind::Passage))
    };
    let reference = embed(Precision::F32).unwrap();
    for precision in [Precision::Bf16, Precision::Int8] {
        if !cpu_features().supports(precision) {
            assert!(embed(precision).is_err());
            continue;
        }
        for (a, b) in reference.iter().zip(embed(precision).unwrap()) {
            let cos: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(cos > 0.995, "{precision}: cosine {cos} against f32");
        }
    }
}
