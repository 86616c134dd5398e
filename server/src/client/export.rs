//! `aispend export`: streams the server's `/export/usage.csv|jsonl` (the same filter
//! parameters) to standard output or a file, chunk by chunk (constant memory).
//!
//! - A file is written as `FILE.partial` and renamed when the server finished the
//!   export, so an interrupted export never leaves a truncated file under the name
//!   asked for.
//! - Progress (rows, bytes, rate) goes to standard error while it runs, when it is a
//!   terminal; the caller prints the final count.

use super::Client;
use super::filter::Filter;
use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;

/// The export's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExportFormat {
    /// `/export/usage.csv`, with a header row.
    #[default]
    Csv,
    /// `/export/usage.jsonl`, one JSON object per event.
    Jsonl,
}

impl ExportFormat {
    fn path(self) -> &'static str {
        match self {
            ExportFormat::Csv => "/export/usage.csv",
            ExportFormat::Jsonl => "/export/usage.jsonl",
        }
    }
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// CSV or JSONL.
    pub format: ExportFormat,
    /// Which events.
    pub filter: Filter,
    /// The file; standard output when `None`.
    pub output: Option<PathBuf>,
    /// Draw progress on standard error.
    pub progress: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Events (CSV records after the header, or JSON lines).
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Counts records in a stream of chunks: line ends outside CSV quotes (a quoted
/// field may hold a line break; `""` toggles twice, so it needs no special case).
struct RecordCounter {
    csv: bool,
    in_quotes: bool,
    lines: u64,
}

impl RecordCounter {
    fn feed(&mut self, chunk: &[u8]) {
        if !self.csv {
            self.lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            return;
        }
        for b in chunk {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => self.lines += 1,
                _ => {}
            }
        }
    }

    fn rows(&self) -> u64 {
        if self.csv {
            self.lines.saturating_sub(1)
        } else {
            self.lines
        }
    }
}

/// Runs an export; an error (unreachable server, refused token or filter, the
/// server stopping the stream) leaves no file under the output's name.
pub async fn run(client: &Client, options: &ExportOptions) -> anyhow::Result<Exported> {
    let response = client
        .get(options.format.path(), &options.filter.query())
        .await?;
    let (mut out, partial): (Box<dyn Write>, Option<PathBuf>) = match &options.output {
        None => (Box::new(std::io::stdout().lock()), None),
        Some(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".partial");
            let partial = PathBuf::from(name);
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            (Box::new(std::io::BufWriter::new(file)), Some(partial))
        }
    };
    let bar = if options.progress {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {human_pos} rows, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut counter = RecordCounter {
        csv: options.format == ExportFormat::Csv,
        in_quotes: false,
        lines: 0,
    };
    let mut bytes = 0u64;
    let mut body = response.bytes_stream();
    let outcome: anyhow::Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("the server stopped the export before its end")?;
            out.write_all(&chunk).context("writing the export")?;
            counter.feed(&chunk);
            bytes += chunk.len() as u64;
            bar.set_position(counter.rows());
            bar.set_message(indicatif::HumanBytes(bytes).to_string());
        }
        out.flush().context("writing the export")?;
        Ok(())
    }
    .await;
    drop(out);
    bar.finish_and_clear();
    match (outcome, partial, &options.output) {
        (Err(e), Some(partial), _) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
        (Err(e), None, _) => Err(e),
        (Ok(()), Some(partial), Some(path)) => {
            std::fs::rename(&partial, path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            Ok(Exported {
                rows: counter.rows(),
                bytes,
            })
        }
        (Ok(()), _, _) => Ok(Exported {
            rows: counter.rows(),
            bytes,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_counted_across_chunks_and_quoted_line_breaks() {
        let mut c = RecordCounter {
            csv: true,
            in_quotes: false,
            lines: 0,
        };
        for chunk in ["id,model\n1,\"a\n", "b\"\n2,\"say \"\"hi\"\"\"", "\n"] {
            c.feed(chunk.as_bytes());
        }
        assert_eq!(c.rows(), 2);
        let mut j = RecordCounter {
            csv: false,
            in_quotes: false,
            lines: 0,
        };
        j.feed(b"{\"a\":\"\\\"\"}\n{}\n");
        assert_eq!(j.rows(), 2);
    }
}
