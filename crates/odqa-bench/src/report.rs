use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::{BenchError, RetrievalReport};

/// Paths written by [`write_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub svg: PathBuf,
}

/// Writes `{stem}.json` (the report, pretty-printed), `{stem}.md` (a short
/// header and the one-row [`markdown_table`]) and `{stem}.svg` (the
/// [`plot_recall_svg`] curve) into `dir`, creating `dir` if needed.
pub fn write_report(
    report: &RetrievalReport,
    dir: &Path,
    stem: &str,
) -> Result<ReportFiles, BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = ReportFiles {
        json: dir.join(format!("{stem}.json")),
        markdown: dir.join(format!("{stem}.md")),
        svg: dir.join(format!("{stem}.svg")),
    };

    let mut json = serde_json::to_vec_pretty(report).map_err(|source| BenchError::Serialize {
        what: format!("report {:?}", report.label),
        source,
    })?;
    json.push(b'\n');
    write_file(&files.json, &json)?;

    let markdown = format!(
        "# Retrieval benchmark: {}\n\n\
         - index: `{}`\n- questions: {} from `{}`\n- mode: {}\n- depth: {}\n- threads: {}\n\n{}",
        report.label,
        report.index,
        report.questions,
        report.questions_file,
        report.mode,
        report.depth,
        report.threads,
        markdown_table(std::slice::from_ref(report)),
    );
    write_file(&files.markdown, markdown.as_bytes())?;

    let title = if report.label.is_empty() {
        "Recall@k".to_owned()
    } else {
        format!("Recall@k: {}", report.label)
    };
    plot_recall_svg(std::slice::from_ref(report), &files.svg, &title)?;
    Ok(files)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(|source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// All cut-offs measured by any report, ascending.
fn union_ks(reports: &[RetrievalReport]) -> Vec<usize> {
    let mut ks: Vec<usize> = reports
        .iter()
        .flat_map(|r| r.recall.iter().map(|x| x.k))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// A Markdown table with one row per report: label, `R@k` for every k
/// measured by any report (`-` where a report lacks it) with 3 decimals,
/// MRR with 3 decimals, then latency mean / p50 / p99 in ms with 2 decimals
/// and, when any report has it, the ranking-only p50 / p99 (`-` where a
/// report lacks it). Ends with a newline.
pub fn markdown_table(reports: &[RetrievalReport]) -> String {
    let ks = union_ks(reports);
    let mut header = String::from("| label |");
    let mut rule = String::from("| --- |");
    for k in &ks {
        header.push_str(&format!(" R@{k} |"));
        rule.push_str(" ---: |");
    }
    header.push_str(" MRR | mean ms | p50 ms | p99 ms |");
    rule.push_str(" ---: | ---: | ---: | ---: |");
    let ranking = reports.iter().any(|r| r.ranking_latency_ms.is_some());
    if ranking {
        header.push_str(" ranking p50 ms | ranking p99 ms |");
        rule.push_str(" ---: | ---: |");
    }
    header.push('\n');
    rule.push('\n');

    let mut out = header + &rule;
    for r in reports {
        out.push_str(&format!("| {} |", escape_cell(&r.label)));
        for &k in &ks {
            match r.recall_at(k) {
                Some(v) => out.push_str(&format!(" {v:.3} |")),
                None => out.push_str(" - |"),
            }
        }
        out.push_str(&format!(
            " {:.3} | {:.2} | {:.2} | {:.2} |",
            r.mrr, r.latency_ms.mean, r.latency_ms.p50, r.latency_ms.p99
        ));
        match (ranking, r.ranking_latency_ms) {
            (false, _) => {}
            (true, Some(l)) => out.push_str(&format!(" {:.2} | {:.2} |", l.p50, l.p99)),
            (true, None) => out.push_str(" - | - |"),
        }
        out.push('\n');
    }
    out
}

fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Draws one recall@k curve per report into an SVG file at `path`.
///
/// The x axis places the measured cut-offs (union over all reports) at
/// evenly spaced categorical positions labelled with k; the y axis is
/// recall from 0 to 1. Axis descriptions, tick labels, the title and a
/// legend with each report's label are written as SVG `<text>` elements
/// (no system fonts are needed).
pub fn plot_recall_svg(
    reports: &[RetrievalReport],
    path: &Path,
    title: &str,
) -> Result<(), BenchError> {
    let plot_err = |message: String| BenchError::Plot {
        path: path.to_path_buf(),
        message,
    };
    if reports.is_empty() {
        return Err(plot_err("no reports to plot".into()));
    }
    let ks = union_ks(reports);
    if ks.is_empty() {
        return Err(plot_err("reports hold no recall values".into()));
    }

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 520)).into_drawing_area();
        draw_chart(&root, reports, &ks, title).map_err(plot_err)?;
        root.present().map_err(|e| plot_err(e.to_string()))?;
    }
    write_file(path, svg.as_bytes())
}

const X_STEP: i32 = 10;

fn draw_chart(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    reports: &[RetrievalReport],
    ks: &[usize],
    title: &str,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;

    // Categorical x positions: the i-th cut-off sits at x = 10 * i (an
    // integer axis so plotters' default tick formatting applies), with a
    // little padding either side.
    let last = (ks.len() as i32 - 1) * X_STEP;
    let positions: Vec<i32> = (0..ks.len() as i32).map(|i| i * X_STEP).collect();
    let x_range = (-X_STEP / 3..last + X_STEP / 3).with_key_points(positions);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, 0f64..1f64)
        .map_err(|e| err(&e))?;

    let k_label = |x: &i32| -> String {
        if x.rem_euclid(X_STEP) != 0 {
            return String::new();
        }
        usize::try_from(x / X_STEP)
            .ok()
            .and_then(|i| ks.get(i))
            .map(|k| k.to_string())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_desc("k (passages retrieved)")
        .y_desc("recall@k")
        .x_label_formatter(&k_label)
        .y_labels(11)
        .y_label_formatter(&|y: &f64| format!("{y:.1}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| err(&e))?;

    for (i, report) in reports.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(i32, f64)> = ks
            .iter()
            .enumerate()
            .filter_map(|(pos, &k)| report.recall_at(k).map(|r| (pos as i32 * X_STEP, r)))
            .collect();
        let label = if report.label.is_empty() {
            format!("run {}", i + 1)
        } else {
            report.label.clone()
        };
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(4))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}
