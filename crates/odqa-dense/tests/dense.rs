//! Dense index on the real multilingual-e5-small (fetched like
//! odqa-encoder's reference test: `$ODQA_HOME`, else
//! `<workspace>/target/odqa-home`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use odqa_dense::{
    build_dense_index, build_dense_index_from_embeddings, Checksum, DenseBuildOptions, DenseError,
    DenseIndex, DenseManifest, HnswParams, EMBEDDINGS_FILE, EMBEDDINGS_PARTIAL_FILE, GRAPH_FILE,
    IDS_FILE, IDS_PARTIAL_FILE, MANIFEST_FILE, PARTIAL_META_FILE,
};
use odqa_encoder::{fetch_model, Device, Encoder, TextKind};

fn home() -> PathBuf {
    match std::env::var_os("ODQA_HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/odqa-home"),
    }
}

fn encoder() -> &'static Encoder {
    static ENC: OnceLock<Encoder> = OnceLock::new();
    ENC.get_or_init(|| {
        let dir = fetch_model(&home()).expect("fetch multilingual-e5-small");
        Encoder::load(&dir, &Device::Cpu).expect("load encoder")
    })
}

const SEOUL_ID: &str = "p07";

const TEXTS: [&str; 40] = [
    "부산광역시는 대한민국 제2의 도시이자 최대의 항구 도시이다.",
    "한라산은 제주도에 있는 대한민국에서 가장 높은 산이다.",
    "광합성은 식물이 빛 에너지를 화학 에너지로 바꾸는 과정이다.",
    "세종대왕은 조선의 제4대 왕으로 훈민정음을 창제하였다.",
    "김치는 배추와 무를 소금에 절여 양념한 한국의 전통 발효 음식이다.",
    "이순신은 임진왜란 때 거북선을 이끌고 왜군을 물리친 조선의 장군이다.",
    "태양계에서 가장 큰 행성은 목성이다.",
    "서울특별시는 대한민국의 수도이자 최대 도시로, 한강이 도시를 가로지른다.",
    "도쿄는 일본의 수도이며 세계에서 인구가 가장 많은 도시권이다.",
    "물은 섭씨 100도에서 끓고 섭씨 0도에서 언다.",
    "축구는 한 팀에 열한 명의 선수가 공을 차서 상대 골문에 넣는 경기이다.",
    "베토벤은 교향곡 제9번 합창을 작곡한 독일의 작곡가이다.",
    "경주는 신라의 천년 수도로 불국사와 석굴암이 있다.",
    "인터넷은 전 세계의 컴퓨터 네트워크를 연결한 통신망이다.",
    "한글은 자음 열네 자와 모음 열 자를 기본으로 하는 문자이다.",
    "독도는 동해에 있는 대한민국의 섬이다.",
    "지구는 태양 주위를 약 365일에 한 번 공전한다.",
    "비빔밥은 밥 위에 나물과 고기, 고추장을 얹어 비벼 먹는 음식이다.",
    "평양은 조선민주주의인민공화국의 수도이다.",
    "DNA는 유전 정보를 담고 있는 이중 나선 구조의 분자이다.",
    "태권도는 한국에서 유래한 무술로 올림픽 정식 종목이다.",
    "아인슈타인은 상대성 이론을 발표한 물리학자이다.",
    "한강은 강원도에서 발원하여 서울을 지나 황해로 흘러간다.",
    "백두산은 한반도에서 가장 높은 산으로 천지라는 호수가 있다.",
    "고려는 918년 왕건이 세운 나라로 개경을 도읍으로 삼았다.",
    "컴퓨터의 중앙 처리 장치는 명령어를 해석하고 실행한다.",
    "판소리는 한 명의 소리꾼이 고수의 북장단에 맞추어 이야기를 노래하는 예술이다.",
    "제주도는 화산 활동으로 만들어진 대한민국 최대의 섬이다.",
    "인천국제공항은 대한민국 최대의 국제공항이다.",
    "베이징은 중화인민공화국의 수도이다.",
    "피아노는 건반을 눌러 현을 때려 소리를 내는 악기이다.",
    "대전광역시는 대한민국 중부에 있는 과학 도시이다.",
    "추석은 음력 8월 15일로 한국의 대표적인 명절이다.",
    "반도체는 전기 전도도가 도체와 부도체의 중간인 물질이다.",
    "조선은 1392년 이성계가 건국하여 한양을 도읍으로 정하였다.",
    "올림픽은 4년마다 열리는 국제 스포츠 대회이다.",
    "광주광역시는 5·18 민주화 운동이 일어난 도시이다.",
    "달은 지구의 유일한 자연 위성이다.",
    "파리는 프랑스의 수도로 에펠탑이 있다.",
    "바둑은 흑돌과 백돌을 번갈아 놓아 집을 많이 차지하는 쪽이 이기는 놀이이다.",
];

fn passages() -> Vec<(String, String)> {
    TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("p{i:02}"), t.to_string()))
        .collect()
}

fn options(dir: &Path, batch: usize) -> DenseBuildOptions {
    DenseBuildOptions {
        batch_size: batch,
        progress: false,
        ..DenseBuildOptions::new(dir, "multilingual-e5-small")
    }
}

fn no_interrupt() -> AtomicBool {
    AtomicBool::new(false)
}

/// A clean build shared by several tests (built once).
fn clean() -> &'static (tempfile::TempDir, DenseManifest) {
    static CLEAN: OnceLock<(tempfile::TempDir, DenseManifest)> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let m = build_dense_index(
            &passages(),
            encoder(),
            &options(tmp.path(), 16),
            &no_interrupt(),
        )
        .unwrap();
        (tmp, m)
    })
}

fn query_vec(q: &str) -> Vec<f32> {
    encoder().embed(&[q], TextKind::Query).unwrap().remove(0)
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Copies a complete index to a fresh directory for destructive tests.
fn copy_index(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

#[test]
fn index_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<DenseIndex>();
}

#[test]
fn build_open_and_search() {
    let (dir, manifest) = clean();
    println!(
        "clean build of 40 passages: {:.1} passages/s ({:.2}s), graph {:.3}s",
        manifest.passages_per_s, manifest.seconds_embedding, manifest.seconds_graph
    );
    assert_eq!(manifest.count, 40);
    assert_eq!(manifest.dim, 384);
    assert_eq!(manifest.rows_embedded, 40);
    assert_eq!(manifest.rows_resumed, 0);
    assert_eq!(manifest.hnsw, HnswParams::default());
    assert!(manifest.passages_per_s > 0.0);
    assert!(!dir.path().join(EMBEDDINGS_PARTIAL_FILE).exists());
    assert!(!dir.path().join(IDS_PARTIAL_FILE).exists());

    let index = DenseIndex::open(dir.path()).unwrap();
    assert_eq!(index.len(), 40);
    assert!(!index.is_empty());
    assert_eq!(index.manifest(), manifest);
    assert_eq!(index.passage_id(7), Some(SEOUL_ID));
    assert_eq!(index.passage_id(40), None);

    let q = query_vec("대한민국의 수도는 어디인가?");
    let hnsw = index.search(&q, 10, None).unwrap();
    let exact = index.search_exact(&q, 10).unwrap();
    assert_eq!(hnsw[0].passage_id, SEOUL_ID, "{hnsw:?}");
    assert_eq!(exact[0].passage_id, SEOUL_ID, "{exact:?}");
    assert_eq!(hnsw.len(), 10);
    let ids = |h: &[odqa_dense::DenseHit]| h.iter().map(|x| x.row).collect::<Vec<_>>();
    assert_eq!(ids(&hnsw), ids(&exact));
    for w in exact.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
    for (a, b) in hnsw.iter().zip(&exact) {
        assert!((a.score - b.score).abs() < 1e-6);
    }
    // cosine of normalized vectors: in [-1, 1], and a scaled query scores
    // the same.
    assert!(exact[0].score > 0.5 && exact[0].score <= 1.0 + 1e-5);
    let scaled: Vec<f32> = q.iter().map(|x| x * 3.0).collect();
    let again = index.search_exact(&scaled, 10).unwrap();
    assert_eq!(ids(&again), ids(&exact));

    // All 40 with tiny and huge ef; k above count is capped.
    assert_eq!(index.search(&q, 100, Some(1)).unwrap().len(), 40);
    assert_eq!(index.search_exact(&q, 100).unwrap().len(), 40);
    assert!(index.search(&q, 0, None).unwrap().is_empty());

    // Bad queries.
    assert!(matches!(
        index.search(&q[..100], 5, None),
        Err(DenseError::DimensionMismatch {
            expected: 384,
            got: 100
        })
    ));
    assert!(matches!(
        index.search_exact(&[0.0; 3], 5),
        Err(DenseError::DimensionMismatch { .. })
    ));
    let mut nan = q.clone();
    nan[3] = f32::NAN;
    assert!(matches!(
        index.search(&nan, 5, None),
        Err(DenseError::InvalidQuery { .. })
    ));
    assert!(matches!(
        index.search_exact(&[0.0; 384], 5),
        Err(DenseError::InvalidQuery { .. })
    ));
}

#[test]
fn interrupted_build_resumes_without_reembedding() {
    let (clean_dir, _) = clean();
    let clean_rows = read_f32(&clean_dir.path().join(EMBEDDINGS_FILE));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ps = passages();

    // Two batches of 8, then stop.
    let mut opts = options(dir, 8);
    opts.max_batches = Some(2);
    match build_dense_index(&ps, encoder(), &opts, &no_interrupt()) {
        Err(DenseError::Interrupted {
            embedded: 16,
            total: 40,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(read_f32(&dir.join(EMBEDDINGS_PARTIAL_FILE)).len(), 16 * 384);
    assert!(!dir.join(MANIFEST_FILE).exists());
    assert!(matches!(
        DenseIndex::open(dir),
        Err(DenseError::NotBuilt { .. })
    ));

    // The interrupt flag: nothing more embedded.
    opts.max_batches = None;
    match build_dense_index(&ps, encoder(), &opts, &AtomicBool::new(true)) {
        Err(DenseError::Interrupted {
            embedded: 16,
            total: 40,
        }) => {}
        other => panic!("{other:?}"),
    }

    // A torn batch (half a row more of embeddings, no id) is dropped.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(EMBEDDINGS_PARTIAL_FILE))
            .unwrap();
        f.write_all(&[0u8; 700]).unwrap();
    }

    // Other passages: refused, partial files kept.
    let mut other = ps.clone();
    other.swap(3, 30);
    match build_dense_index(&other, encoder(), &opts, &no_interrupt()) {
        Err(e @ DenseError::PartialMismatch { .. }) => {
            assert!(e.to_string().contains("row 3"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let mut other_model = opts.clone();
    other_model.model = "another-model".into();
    assert!(matches!(
        build_dense_index(&ps, encoder(), &other_model, &no_interrupt()),
        Err(DenseError::PartialMismatch { .. })
    ));

    // Resume.
    let m = build_dense_index(&ps, encoder(), &opts, &no_interrupt()).unwrap();
    assert_eq!(m.rows_resumed, 16);
    assert_eq!(m.rows_embedded, 24);
    assert_eq!(m.count, 40);
    let rows = read_f32(&dir.join(EMBEDDINGS_FILE));
    assert_eq!(rows.len(), 40 * 384, "no row embedded twice");
    let ids = std::fs::read_to_string(dir.join(IDS_FILE)).unwrap();
    let ids: Vec<&str> = ids.lines().collect();
    let want: Vec<String> = ps.iter().map(|p| p.0.clone()).collect();
    assert_eq!(ids, want);
    let max_diff = rows
        .iter()
        .zip(&clean_rows)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-5, "max abs diff {max_diff}");

    let index = DenseIndex::open(dir).unwrap();
    let q = query_vec("대한민국의 수도는 어디인가?");
    assert_eq!(index.search(&q, 1, None).unwrap()[0].passage_id, SEOUL_ID);
}

#[test]
fn interrupted_graph_build_resumes() {
    // State after an interruption while building the graph: all rows in
    // embeddings.f32 / ids.txt, the partial description, no manifest.
    let (clean_dir, clean_m) = clean();
    let dir = copy_index(clean_dir.path());
    std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
    std::fs::write(
        dir.path().join(PARTIAL_META_FILE),
        r#"{"model": "multilingual-e5-small", "dim": 384}"#,
    )
    .unwrap();
    assert!(matches!(
        DenseIndex::open(dir.path()),
        Err(DenseError::NotBuilt { .. })
    ));
    let ps = passages();
    let opts = options(dir.path(), 16);
    // Interrupted again, in the graph phase: still resumable.
    assert!(matches!(
        build_dense_index(&ps, encoder(), &opts, &AtomicBool::new(true)),
        Err(DenseError::Interrupted {
            embedded: 40,
            total: 40
        })
    ));
    assert!(!dir.path().join(MANIFEST_FILE).exists());
    let m = build_dense_index(&ps, encoder(), &opts, &no_interrupt()).unwrap();
    assert_eq!((m.count, m.rows_embedded, m.rows_resumed), (40, 0, 40));
    assert_eq!(m.files[0], clean_m.files[0], "same embeddings file");
    assert!(!dir.path().join(PARTIAL_META_FILE).exists());
    assert_eq!(DenseIndex::open(dir.path()).unwrap().len(), 40);

    // A build over a complete index starts from scratch.
    let few: Vec<(String, String)> = ps.into_iter().take(5).collect();
    let m = build_dense_index(&few, encoder(), &opts, &no_interrupt()).unwrap();
    assert_eq!((m.count, m.rows_embedded, m.rows_resumed), (5, 5, 0));
    assert_eq!(DenseIndex::open(dir.path()).unwrap().len(), 5);
}

#[test]
fn missing_manifest_is_not_built() {
    let tmp = tempfile::tempdir().unwrap();
    let err = DenseIndex::open(tmp.path()).unwrap_err();
    assert!(matches!(err, DenseError::NotBuilt { .. }));
    assert!(
        err.to_string().contains("odqa index build --dense"),
        "{err}"
    );
    let err = DenseIndex::open(&tmp.path().join("nope")).unwrap_err();
    assert!(matches!(err, DenseError::NotBuilt { .. }));
}

fn rewrite_entry(dir: &Path, name: &str) {
    // Updates the manifest's size + checksum of `name` to the file's
    // current contents (to get damaged data past the checksum).
    let mpath = dir.join(MANIFEST_FILE);
    let mut m: DenseManifest = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let mut sum = Checksum::new();
    sum.update(&bytes);
    let e = m.files.iter_mut().find(|f| f.name == name).unwrap();
    e.bytes = bytes.len() as u64;
    e.checksum = sum.finish();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
}

#[test]
fn damaged_files_are_clear_errors() {
    let (clean_dir, _) = clean();

    // Truncated embeddings.
    let d = copy_index(clean_dir.path());
    let p = d.path().join(EMBEDDINGS_FILE);
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let err = DenseIndex::open(d.path()).unwrap_err();
    assert!(matches!(err, DenseError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("embeddings.f32") && msg.contains("truncated"),
        "{msg}"
    );

    // Same size, one flipped byte.
    let d = copy_index(clean_dir.path());
    let p = d.path().join(EMBEDDINGS_FILE);
    let mut b = std::fs::read(&p).unwrap();
    b[1001] ^= 0x40;
    std::fs::write(&p, b).unwrap();
    let err = DenseIndex::open(d.path()).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");

    // NaN inside, checksum fixed up.
    let d = copy_index(clean_dir.path());
    let p = d.path().join(EMBEDDINGS_FILE);
    let mut b = std::fs::read(&p).unwrap();
    b[400..404].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&p, b).unwrap();
    rewrite_entry(d.path(), EMBEDDINGS_FILE);
    let err = DenseIndex::open(d.path()).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");

    // Truncated graph.
    let d = copy_index(clean_dir.path());
    let p = d.path().join(GRAPH_FILE);
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    let err = DenseIndex::open(d.path()).unwrap_err();
    assert!(
        matches!(err, DenseError::Corrupt { .. }) && err.to_string().contains("graph"),
        "{err}"
    );
    // ... even with the manifest agreeing: hnsw_rs's failure is an error.
    rewrite_entry(d.path(), GRAPH_FILE);
    let err = DenseIndex::open(d.path()).unwrap_err();
    assert!(err.to_string().contains("graph"), "{err}");

    // Ids file with a line missing.
    let d = copy_index(clean_dir.path());
    let p = d.path().join(IDS_FILE);
    let s = std::fs::read_to_string(&p).unwrap();
    let s: String = s.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, s).unwrap();
    rewrite_entry(d.path(), IDS_FILE);
    let err = DenseIndex::open(d.path()).unwrap_err();
    assert!(err.to_string().contains("ids.txt"), "{err}");

    // Garbage / wrong manifest.
    let d = copy_index(clean_dir.path());
    std::fs::write(d.path().join(MANIFEST_FILE), b"{ not json").unwrap();
    let err = DenseIndex::open(d.path()).unwrap_err();
    assert!(
        matches!(err, DenseError::Manifest { .. }) && err.to_string().contains(MANIFEST_FILE),
        "{err}"
    );
    let d = copy_index(clean_dir.path());
    let mpath = d.path().join(MANIFEST_FILE);
    let mut m: DenseManifest = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m.count = 41;
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    assert!(matches!(
        DenseIndex::open(d.path()),
        Err(DenseError::Corrupt { .. })
    ));
    m.count = 40;
    m.hnsw.m = 1000;
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    assert!(matches!(
        DenseIndex::open(d.path()),
        Err(DenseError::Manifest { .. })
    ));
    // Missing graph file.
    let d = copy_index(clean_dir.path());
    std::fs::remove_file(d.path().join(GRAPH_FILE)).unwrap();
    assert!(matches!(
        DenseIndex::open(d.path()),
        Err(DenseError::Io { .. })
    ));
}

#[test]
fn invalid_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ps = passages();
    ps[5].0 = ps[4].0.clone();
    assert!(matches!(
        build_dense_index(&ps, encoder(), &options(tmp.path(), 8), &no_interrupt()),
        Err(DenseError::InvalidPassage { index: 5, .. })
    ));
    let mut ps = passages();
    ps[2].0 = "a\nb".into();
    assert!(matches!(
        build_dense_index(&ps, encoder(), &options(tmp.path(), 8), &no_interrupt()),
        Err(DenseError::InvalidPassage { index: 2, .. })
    ));
    let mut o = options(tmp.path(), 0);
    assert!(matches!(
        build_dense_index(&passages(), encoder(), &o, &no_interrupt()),
        Err(DenseError::InvalidParams {
            field: "batch_size",
            ..
        })
    ));
    o.batch_size = 4;
    o.hnsw.m = 300;
    assert!(o.hnsw.validate().is_err());
    assert!(matches!(
        build_dense_index(&passages(), encoder(), &o, &no_interrupt()),
        Err(DenseError::InvalidParams {
            field: "hnsw.m",
            ..
        })
    ));
    assert!(HnswParams {
        ef_search: 0,
        ..HnswParams::default()
    }
    .validate()
    .is_err());
    assert!(HnswParams::default().validate().is_ok());
}

#[test]
fn empty_and_precomputed_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let m = build_dense_index(&[], encoder(), &options(tmp.path(), 8), &no_interrupt()).unwrap();
    assert_eq!(m.count, 0);
    let index = DenseIndex::open(tmp.path()).unwrap();
    assert!(index.is_empty());
    let q = vec![1.0f32; 384];
    assert!(index.search(&q, 5, None).unwrap().is_empty());
    assert!(index.search_exact(&q, 5).unwrap().is_empty());

    // Precomputed: 3 rows in 4 dims, stored normalized.
    let tmp = tempfile::tempdir().unwrap();
    let ids: Vec<String> = ["x", "y", "z"].iter().map(|s| s.to_string()).collect();
    let rows = [2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    let o = options(tmp.path(), 8);
    build_dense_index_from_embeddings(&ids, &rows, 4, &o, &no_interrupt()).unwrap();
    let index = DenseIndex::open(tmp.path()).unwrap();
    let hits = index.search(&[1.0, 0.0, 0.0, 0.0], 3, None).unwrap();
    let got: Vec<(&str, f32)> = hits
        .iter()
        .map(|h| (h.passage_id.as_str(), h.score))
        .collect();
    assert_eq!(got[0], ("x", 1.0));
    assert_eq!(got[1].0, "z");
    assert!((got[1].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    assert_eq!(got[2], ("y", 0.0));
    assert_eq!(index.search_exact(&[1.0, 0.0, 0.0, 0.0], 3).unwrap(), hits);
    assert!(matches!(
        build_dense_index_from_embeddings(&ids, &rows[..8], 4, &o, &no_interrupt()),
        Err(DenseError::InvalidParams { .. })
    ));
    let mut zero = rows;
    zero[4..8].fill(0.0);
    assert!(matches!(
        build_dense_index_from_embeddings(&ids, &zero, 4, &o, &no_interrupt()),
        Err(DenseError::InvalidPassage { index: 1, .. })
    ));
}
