mod common;

use std::io::Write;
use std::path::Path;

use common::check_passages;
use odqa_corpus::{open_corpus, split_passages, Article, CorpusError, PassageConfig};

fn write(path: &Path, content: &[u8]) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

fn read_all(path: &Path) -> Vec<Result<odqa_corpus::ArticleRecord, CorpusError>> {
    open_corpus(path).unwrap().collect()
}

fn ok_articles(path: &Path) -> Vec<Article> {
    read_all(path)
        .into_iter()
        .map(|r| r.unwrap().article)
        .collect()
}

fn art(id: &str, title: &str, text: &str) -> Article {
    Article {
        id: id.into(),
        title: title.into(),
        text: text.into(),
    }
}

const JSONL: &str = concat!(
    r#"{"id": "5", "title": "지미 카터", "text": "첫 문단.\n둘째 문단."}"#,
    "\n\n",
    r#"{"id": 12, "url": "https://ko.wikipedia.org/wiki?curid=12", "revid": "1", "title": "수학", "text": ""}"#,
    "\r\n",
    r#"{"title": "T", "text": "x", "id": 7}"#,
);

#[test]
fn jsonl_with_string_and_integer_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    write(&path, JSONL.as_bytes());
    let records: Vec<_> = read_all(&path).into_iter().map(|r| r.unwrap()).collect();
    let articles: Vec<_> = records.iter().map(|r| r.article.clone()).collect();
    assert_eq!(
        articles,
        vec![
            art("5", "지미 카터", "첫 문단.\n둘째 문단."),
            art("12", "수학", ""),
            art("7", "T", "x"),
        ]
    );
    let lines: Vec<usize> = records.iter().map(|r| r.location.line).collect();
    assert_eq!(lines, vec![1, 3, 4]);
    assert_eq!(
        records[1].location.to_string(),
        format!("{}:3", path.display())
    );
    let bytes: usize = records.iter().map(|r| r.bytes).sum();
    assert_eq!(bytes, JSONL.len());
    // Empty text: no passages, but the article is yielded.
    assert!(split_passages(&records[1].article, &PassageConfig::default()).is_empty());
}

#[test]
fn jsonl_zst_is_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl.zst");
    let compressed = zstd::stream::encode_all(JSONL.as_bytes(), 3).unwrap();
    write(&path, &compressed);
    let ids: Vec<String> = ok_articles(&path).into_iter().map(|a| a.id).collect();
    assert_eq!(ids, vec!["5", "12", "7"]);

    // Without a telling extension the content decides.
    let path = dir.path().join("shard.zst");
    write(&path, &compressed);
    assert_eq!(ok_articles(&path).len(), 3);
}

#[test]
fn corrupt_zst_is_an_unrecoverable_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl.zst");
    let mut compressed = zstd::stream::encode_all(JSONL.as_bytes(), 3).unwrap();
    let n = compressed.len();
    compressed.truncate(n / 2);
    write(&path, &compressed);
    let mut reader = open_corpus(&path).unwrap();
    let mut saw_io = false;
    for r in reader.by_ref() {
        if let Err(e) = r {
            assert!(matches!(e, CorpusError::Io { .. }), "{e}");
            assert!(!e.is_recoverable());
            saw_io = true;
            break;
        }
    }
    assert!(saw_io);
    assert!(reader.next().is_none());
}

#[test]
fn line_separators_inside_strings_do_not_split_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let line = "{\"id\": \"1\", \"title\": \"a\u{2028}b\", \"text\": \"x\u{2028}y\u{2029}z\u{85}w\\rv\"}\n";
    write(&path, line.as_bytes());
    let articles = ok_articles(&path);
    assert_eq!(articles.len(), 1);
    assert_eq!(articles[0].title, "a\u{2028}b");
    assert_eq!(articles[0].text, "x\u{2028}y\u{2029}z\u{85}w\rv");
}

#[test]
fn malformed_line_reports_location_and_field_then_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let content = concat!(
        r#"{"id": "1", "title": "a", "text": "x"}"#,
        "\n",
        r#"{"id": "2", "title": "b", "text": "y"}"#,
        "\n",
        r#"{"id": "3", "text": "z"}"#,
        "\n",
        r#"{"id": "4", "title": "d", "text": "w"}"#,
        "\n",
    );
    write(&path, content.as_bytes());
    let mut reader = open_corpus(&path).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().article.id, "1");
    assert_eq!(reader.next().unwrap().unwrap().article.id, "2");
    let err = reader.next().unwrap().unwrap_err();
    assert!(err.is_recoverable());
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}:3", path.display())), "{msg}");
    assert!(msg.contains("title"), "{msg}");
    match &err {
        CorpusError::Malformed { location, .. } => {
            assert_eq!(location.line, 3);
            assert_eq!(location.path, path);
        }
        other => panic!("{other:?}"),
    }
    let rec = reader.next().unwrap().unwrap();
    assert_eq!((rec.article.id.as_str(), rec.location.line), ("4", 4));
    assert!(reader.next().is_none());
}

#[test]
fn bad_json_wrong_types_and_invalid_utf8_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let mut content = Vec::new();
    content.extend_from_slice(b"{\"id\": \"1\", \"title\": \"a\", \"text\": \"x\"\n");
    content.extend_from_slice(b"{\"id\": null, \"title\": \"a\", \"text\": \"x\"}\n");
    content.extend_from_slice(b"{\"id\": \"3\", \"title\": \"a\", \"text\": [\"x\"]}\n");
    content.extend_from_slice(b"{\"id\": \"4\", \"title\": \"\xff\", \"text\": \"x\"}\n");
    content.extend_from_slice(b"[1, 2, 3]\n");
    content.extend_from_slice(b"{\"id\": \"6\", \"title\": \" \", \"text\": \"x\"}\n");
    content.extend_from_slice(b"{\"id\": \"7\", \"title\": \"ok\", \"text\": \"x\"}");
    write(&path, &content);
    let results = read_all(&path);
    assert_eq!(results.len(), 7);
    let expected = [
        (1, "JSON"),
        (2, "`id`"),
        (3, "`text`"),
        (4, "UTF-8"),
        (5, "object"),
        (6, "`title`"),
    ];
    for (r, (line, word)) in results.iter().zip(expected) {
        let e = r.as_ref().unwrap_err();
        assert!(e.is_recoverable());
        assert_eq!(e.location().unwrap().line, line, "{e}");
        assert!(e.to_string().contains(word), "{e}");
    }
    assert_eq!(results[6].as_ref().unwrap().article.id, "7");
}

const WIKI_00: &str = "<doc id=\"5\" url=\"https://ko.wikipedia.org/wiki?curid=5\" title=\"지미 카터\">
지미 카터

제임스 얼 카터 주니어는 미국의 제39대 대통령이다.
지미 카터는 조지아주에서 태어났다.

</doc>
<doc id=\"9\" url=\"https://ko.wikipedia.org/wiki?curid=9\" title=\"&quot;따옴표&quot; &amp; &lt;기호&gt;\">
\"따옴표\" & <기호>
본문.
</doc>
";

const WIKI_01: &str = "
<doc id=\"10\" url=\"u\" title=\"빈 문서\">
빈 문서
</doc>
<doc id=\"11\" url=\"u\" title=\"제목 없는 첫 줄\">
첫 줄이 제목이 아니다.
</doc>
";

#[test]
fn wikiextractor_directory_is_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Written in reverse order to make sure the reader sorts.
    write(&dir.path().join("AB/wiki_00"), b"");
    write(&dir.path().join("AA/wiki_01"), WIKI_01.as_bytes());
    write(&dir.path().join("AA/wiki_00"), WIKI_00.as_bytes());
    write(&dir.path().join("AA/.hidden"), b"garbage");
    write(&dir.path().join(".git/config"), b"garbage");
    let records: Vec<_> = read_all(dir.path())
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let articles: Vec<_> = records.iter().map(|r| r.article.clone()).collect();
    assert_eq!(
        articles,
        vec![
            art(
                "5",
                "지미 카터",
                "제임스 얼 카터 주니어는 미국의 제39대 대통령이다.\n지미 카터는 조지아주에서 태어났다."
            ),
            art("9", "\"따옴표\" & <기호>", "본문."),
            art("10", "빈 문서", ""),
            art("11", "제목 없는 첫 줄", "첫 줄이 제목이 아니다."),
        ]
    );
    let locs: Vec<String> = records.iter().map(|r| r.location.to_string()).collect();
    let aa = dir.path().join("AA");
    assert_eq!(
        locs,
        vec![
            format!("{}:1", aa.join("wiki_00").display()),
            format!("{}:8", aa.join("wiki_00").display()),
            format!("{}:2", aa.join("wiki_01").display()),
            format!("{}:5", aa.join("wiki_01").display()),
        ]
    );
    let bytes: usize = records.iter().map(|r| r.bytes).sum();
    assert_eq!(bytes, WIKI_00.len() + WIKI_01.len());
}

#[test]
fn malformed_wikiextractor_docs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wiki_00");
    let content = "<doc id=\"1\" title=\"a\">
a
text
<doc id=\"2\" url=\"u\">
body of 2
</doc>
stray text
<doc id=\"3\" title=\"c\">
ok
</doc>
</doc>
<doc id=\"4\" title=\"d\">
never closed
";
    write(&path, content.as_bytes());
    let results = read_all(&path);
    let summary: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(rec) => format!("ok {} @{}", rec.article.id, rec.location.line),
            Err(e) => {
                assert!(e.is_recoverable());
                format!("err @{}", e.location().unwrap().line)
            }
        })
        .collect();
    assert_eq!(
        summary,
        vec!["err @1", "err @4", "err @7", "ok 3 @8", "err @11", "err @12"]
    );
    let msgs: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(msgs[0].contains("unclosed"), "{}", msgs[0]);
    assert!(msgs[1].contains("title"), "{}", msgs[1]);
    assert!(msgs[2].contains("outside"), "{}", msgs[2]);
    assert!(msgs[4].contains("unclosed"), "{}", msgs[4]);
}

#[test]
fn unrecognized_file_is_reported_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.txt"), b"\n\nhello\n");
    write(
        &dir.path().join("b.jsonl"),
        br#"{"id": "1", "title": "t", "text": "x"}"#,
    );
    let results = read_all(dir.path());
    assert_eq!(results.len(), 2);
    let e = results[0].as_ref().unwrap_err();
    assert!(e.is_recoverable());
    assert_eq!(e.location().unwrap().line, 3);
    assert_eq!(results[1].as_ref().unwrap().article.id, "1");
}

#[test]
fn missing_and_empty_corpora() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    assert!(matches!(open_corpus(&missing), Err(CorpusError::NotFound(p)) if p == missing));

    let empty_dir = dir.path().join("empty");
    std::fs::create_dir_all(empty_dir.join("sub")).unwrap();
    write(&empty_dir.join(".hidden"), b"x");
    assert!(matches!(
        open_corpus(&empty_dir),
        Err(CorpusError::Empty(_))
    ));

    let empty_file = dir.path().join("empty.jsonl");
    write(&empty_file, b"\n\n");
    let results = read_all(&empty_file);
    assert_eq!(results.len(), 1);
    let e = results[0].as_ref().unwrap_err();
    assert!(matches!(e, CorpusError::Empty(_)) && !e.is_recoverable());
}

#[test]
fn bom_and_crlf_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(
        b"\xEF\xBB\xBF<doc id=\"1\" title=\"t\">\r\nt\r\nline one\r\n\r\nline two\r\n</doc>\r\n",
    )
    .unwrap();
    drop(f);
    assert_eq!(
        ok_articles(&path),
        vec![art("1", "t", "line one\n\nline two")]
    );
}

#[test]
fn kowiki_mini_first_50_articles() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/kowiki-2020-mini.jsonl.zst");
    if !path.exists() {
        return;
    }
    let config = PassageConfig::default();
    let mut n = 0;
    for record in open_corpus(&path).unwrap().take(50) {
        let record = record.unwrap();
        assert!(record.bytes > 0);
        let passages = split_passages(&record.article, &config);
        assert!(!passages.is_empty() || record.article.text.trim().is_empty());
        check_passages(&record.article, &config, &passages).unwrap();
        n += 1;
    }
    assert_eq!(n, 50);
}

#[test]
fn unique_articles_reports_repeats_and_skips_only_when_allowed() {
    use odqa_corpus::{CorpusEvent, UniqueArticles};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let a = r#"{"id": "1", "title": "가", "text": "하나"}"#;
    std::fs::write(
        &path,
        format!("{a}\n{a}\nnot json\n{{\"id\": \"1\", \"title\": \"나\", \"text\": \"둘\"}}\n"),
    )
    .unwrap();
    let events: Vec<_> =
        UniqueArticles::new(odqa_corpus::open_corpus(&path).unwrap(), true).collect();
    assert!(matches!(events[0], Ok(CorpusEvent::Article(_))));
    assert!(matches!(&events[1], Ok(CorpusEvent::Repeat { first, .. }) if first.line == 1));
    assert!(
        matches!(&events[2], Ok(CorpusEvent::Skipped(e)) if e.to_string().contains("c.jsonl:3"))
    );
    assert!(
        matches!(&events[3], Ok(CorpusEvent::Skipped(e)) if e.to_string().contains("already used"))
    );
    assert_eq!(events.len(), 4);

    let strict: Vec<_> =
        UniqueArticles::new(odqa_corpus::open_corpus(&path).unwrap(), false).collect();
    assert!(matches!(&strict[2], Err(e) if e.to_string().contains("c.jsonl:3")));
}
