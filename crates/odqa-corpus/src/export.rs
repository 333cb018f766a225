//! Passages as odqa cuts them, written for other systems (Lucene, a
//! Python reader) as `{"id", "text", "title"}` JSON lines.

use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::{passages, CorpusCounts, CorpusError, PassageConfig, PassageEvent};

/// One exported line. Fields in sorted order: the format has always been
/// written with sorted keys.
#[derive(Serialize)]
struct PassageLine<'a> {
    id: &'a str,
    text: &'a str,
    title: &'a str,
}

/// Writes every passage of the corpus at `corpus` to `out`, one JSON line
/// each, in corpus order (the order `odqa index dense` embeds). The file is
/// written beside `out` (`.partial`) and renamed when complete, so an
/// error or an interrupt never leaves a truncated export behind.
/// `on_skipped` hears of each malformed record skipped (only with
/// `skip_bad_records`).
pub fn export_passages(
    corpus: &Path,
    config: &PassageConfig,
    skip_bad_records: bool,
    out: &Path,
    on_skipped: impl FnMut(&CorpusError),
) -> Result<CorpusCounts, CorpusError> {
    config.validate()?;
    let partial = out.with_extension("partial");
    let written =
        write_lines(corpus, config, skip_bad_records, &partial, on_skipped).and_then(|counts| {
            std::fs::rename(&partial, out).map_err(|source| CorpusError::Io {
                path: out.to_path_buf(),
                source,
            })?;
            Ok(counts)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

fn write_lines(
    corpus: &Path,
    config: &PassageConfig,
    skip_bad_records: bool,
    partial: &Path,
    mut on_skipped: impl FnMut(&CorpusError),
) -> Result<CorpusCounts, CorpusError> {
    let io_error = |source: std::io::Error| CorpusError::Io {
        path: partial.to_path_buf(),
        source,
    };
    let mut writer = BufWriter::new(std::fs::File::create(partial).map_err(io_error)?);
    let mut stream = passages(corpus, config, skip_bad_records)?;
    for event in stream.by_ref() {
        match event? {
            PassageEvent::Article { passages, .. } => {
                for passage in &passages {
                    let line = PassageLine {
                        id: &passage.id,
                        text: &passage.text,
                        title: &passage.title,
                    };
                    serde_json::to_writer(&mut writer, &line)
                        .map_err(|e| io_error(std::io::Error::other(e)))?;
                    writer.write_all(b"\n").map_err(io_error)?;
                }
            }
            PassageEvent::Repeat { .. } => {}
            PassageEvent::Skipped(err) => on_skipped(&err),
        }
    }
    writer.flush().map_err(io_error)?;
    Ok(*stream.counts())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_passage_becomes_one_line_and_a_failure_leaves_nothing(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let corpus = dir.path().join("corpus.jsonl");
        std::fs::write(
            &corpus,
            "{\"id\": 1, \"title\": \"서울\", \"text\": \"서울은 수도이다.\"}\nnot json\n",
        )?;
        let out = dir.path().join("passages.jsonl");
        let failed = export_passages(&corpus, &PassageConfig::default(), false, &out, |_| {});
        assert!(failed.is_err_and(|e| e.is_recoverable()));
        assert!(!out.exists() && !out.with_extension("partial").exists());

        let mut skipped = 0;
        let counts = export_passages(&corpus, &PassageConfig::default(), true, &out, |_| {
            skipped += 1;
        })?;
        assert_eq!(
            (counts.passages, counts.skipped_records, skipped),
            (1, 1, 1)
        );
        assert_eq!(
            std::fs::read_to_string(&out)?,
            "{\"id\":\"1-0\",\"text\":\"서울은 수도이다.\",\"title\":\"서울\"}\n"
        );
        Ok(())
    }
}
