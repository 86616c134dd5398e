//! `aispend import FILE`: loads usage from a file into a running server, in batches
//! through `importUsage`, with a progress bar.
//!
//! - Formats: the export's CSV and JSONL (`/export/usage.csv|jsonl`: `occurred_at`,
//!   `project_id`, `provider`, `model`, token columns, `cost_usd`, `cost_source`, ...)
//!   and the token-usage dashboard's logs CSV (`timestamp, model, endpoint,
//!   prompt_tokens, completion_tokens, ..., total_cost, latency_ms, api_provider`).
//! - Costs: an export row whose `cost_source` is `REPORTED` keeps its cost; other
//!   export rows are priced by the server again; a logs-CSV row's `total_cost` is kept
//!   as the reported cost (what the old dashboard recorded).
//! - Idempotent: each row's idempotency key is its `idempotency_key` column, else
//!   `import:` and a hash of what the row records (the usage input it becomes, without
//!   the project, plus an export's event `id`) — so re-running a finished or
//!   interrupted import, importing overlapping exports, or importing the CSV and the
//!   JSONL export of the same events adds nothing. Two rows recording the same thing
//!   (and no `id` to tell them apart) are one event.
//! - A row that cannot be read (locally) or that the server refuses is reported with
//!   its line number and reasons; the others are imported.

use super::Client;
use crate::domain::money::Usd;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The mutation each batch is sent with.
const IMPORT: &str = "mutation($inputs: [UsageInput!]!) { importUsage(inputs: $inputs) { imported duplicates rejected { index field message } } }";

/// Most rows one request may carry (the server's batch limit).
pub const MAX_BATCH_SIZE: usize = 10_000;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// Comma-separated with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The file.
    pub file: PathBuf,
    /// Import every row into this project (overrides the file's `project_id`).
    pub project: Option<String>,
    /// Rows per request.
    pub batch_size: usize,
    /// The format; guessed from the extension or content when `None`.
    pub format: Option<FileFormat>,
    /// Draw a progress bar (on standard error, when it is a terminal).
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Rows read.
    pub rows: u64,
    /// Events stored.
    pub imported: u64,
    /// Rows already stored (by an earlier run or an overlapping file).
    pub duplicates: u64,
    /// Rows not imported: line number and reasons.
    pub rejected: Vec<(u64, String)>,
}

/// One row of the file: its line and its fields by column name.
struct Row {
    line: u64,
    fields: Map<String, Value>,
}

fn guess_format(path: &Path, head: &[u8]) -> FileFormat {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => FileFormat::Csv,
        Some("jsonl" | "ndjson" | "json") => FileFormat::Jsonl,
        _ if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => FileFormat::Jsonl,
        _ => FileFormat::Csv,
    }
}

/// A row, or the line of one that cannot be read and why.
type RowResult = Result<Row, (u64, String)>;

/// The rows of a file, read lazily.
type Rows = Box<dyn Iterator<Item = RowResult>>;

/// Reads rows one at a time (constant memory): `Err` is a row that cannot be read.
fn rows(format: FileFormat, reader: impl Read + 'static) -> anyhow::Result<Rows> {
    match format {
        FileFormat::Jsonl => {
            let lines = BufReader::new(reader).lines().enumerate();
            Ok(Box::new(lines.filter_map(|(i, line)| {
                let line_no = i as u64 + 1;
                let text = match line {
                    Ok(t) => t,
                    Err(e) => return Some(Err((line_no, format!("cannot be read: {e}")))),
                };
                if text.trim().is_empty() {
                    return None;
                }
                Some(match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(fields)) => Ok(Row {
                        line: line_no,
                        fields,
                    }),
                    Ok(_) => Err((line_no, "is not a JSON object".to_owned())),
                    Err(e) => Err((line_no, format!("is not JSON: {e}"))),
                })
            })))
        }
        FileFormat::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(reader);
            let headers: Vec<String> = csv
                .headers()
                .context("reading the CSV header")?
                .iter()
                .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
                .collect();
            Ok(Box::new(csv.into_records().map(move |record| {
                let record = record.map_err(|e| {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    (line, format!("cannot be read as CSV: {e}"))
                })?;
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                if record.len() != headers.len() {
                    return Err((
                        line,
                        format!("has {} fields, the header {}", record.len(), headers.len()),
                    ));
                }
                let fields = headers
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), Value::String(v.to_owned())))
                    .collect();
                Ok(Row { line, fields })
            })))
        }
    }
}

/// Every row of a file as a `UsageInput` (GraphQL variables) with its line number, or
/// the line number and why the row cannot be imported. Reads one row at a time; `Err`
/// only when the file has no readable CSV header.
pub fn inputs(
    format: FileFormat,
    reader: impl Read + 'static,
    project: Option<String>,
) -> anyhow::Result<impl Iterator<Item = Result<(u64, Value), (u64, String)>>> {
    Ok(rows(format, reader)?.map(move |row| {
        row.and_then(|r| {
            usage_input(&r, project.as_deref())
                .map(|v| (r.line, v))
                .map_err(|e| (r.line, e))
        })
    }))
}

/// The field under the first of `keys` that is present.
fn field<'a>(
    row: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter()
        .find_map(|k| row.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

fn text(row: &Map<String, Value>, keys: &[&'static str]) -> Option<String> {
    match field(row, keys)?.1 {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn integer(row: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<i64>, String> {
    let Some((key, value)) = field(row, keys) else {
        return Ok(None);
    };
    let n = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.map(Some)
        .ok_or_else(|| format!("{key}: `{value}` is not a whole number"))
}

fn decimal(row: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<Decimal>, String> {
    let Some((key, value)) = field(row, keys) else {
        return Ok(None);
    };
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => String::new(),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .map_err(|_| format!("{key}: `{value}` is not a decimal number"))
}

/// A row as a `UsageInput` (GraphQL variables), or why it cannot be one. Checks what
/// GraphQL would otherwise refuse for the whole batch (dates, tiers, decimals).
fn usage_input(row: &Row, project: Option<&str>) -> Result<Value, String> {
    let f = &row.fields;
    let mut errors = vec![];
    let mut input = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            input.insert(key.to_owned(), v);
        }
    };
    put(
        "projectId",
        project
            .map(str::to_owned)
            .or_else(|| text(f, &["project_id", "projectid"]))
            .map(Value::from),
    );
    put(
        "provider",
        text(f, &["provider", "api_provider"]).map(Value::from),
    );
    put(
        "model",
        Some(Value::from(text(f, &["model"]).unwrap_or_default())),
    );
    put("endpoint", text(f, &["endpoint"]).map(Value::from));
    put("user", text(f, &["user"]).map(Value::from));
    for (name, keys) in [
        ("inputTokens", &["input_tokens", "prompt_tokens"][..]),
        ("outputTokens", &["output_tokens", "completion_tokens"][..]),
        ("cacheReadTokens", &["cache_read_tokens"][..]),
        ("cacheWriteTokens", &["cache_write_tokens"][..]),
        ("cacheWrite1hTokens", &["cache_write_1h_tokens"][..]),
        ("reasoningTokens", &["reasoning_tokens"][..]),
        ("requests", &["requests"][..]),
        ("latencyMs", &["latency_ms"][..]),
    ] {
        match integer(f, keys) {
            Ok(v) => put(name, v.map(Value::from)),
            Err(e) => errors.push(e),
        }
    }
    // Units beyond text tokens (exports since migration 000012). A zero is left out,
    // so a row exported before and after they existed hashes the same and is not
    // imported twice.
    for (name, keys) in [
        ("audioInputTokens", &["audio_input_tokens"][..]),
        ("audioOutputTokens", &["audio_output_tokens"][..]),
        ("imageInputTokens", &["image_input_tokens"][..]),
        ("imageOutputTokens", &["image_output_tokens"][..]),
        ("imagesGenerated", &["images_generated"][..]),
        ("webSearchCalls", &["web_search_calls"][..]),
        ("videoSeconds", &["video_seconds"][..]),
    ] {
        match integer(f, keys) {
            Ok(v) => put(name, v.filter(|n| *n != 0).map(Value::from)),
            Err(e) => errors.push(e),
        }
    }
    if let Some(tier) = text(f, &["service_tier"]) {
        match tier.parse::<crate::domain::tokens::ServiceTier>() {
            Ok(t) => put(
                "serviceTier",
                Some(Value::from(t.as_str().to_ascii_uppercase())),
            ),
            Err(e) => errors.push(format!("service_tier: {e}")),
        }
    }
    if let Some(variant) = text(f, &["pricing_variant"]) {
        match crate::domain::price::variant::Variant::parse(&variant) {
            Ok(v) => put("pricingVariant", Some(Value::from(v.as_str()))),
            Err(e) => errors.push(format!("pricing_variant: {e}")),
        }
    }
    if let Some(at) = text(f, &["occurred_at", "timestamp"]) {
        match crate::http::rest::instant(&at) {
            Some(t) => put(
                "occurredAt",
                Some(Value::from(
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                )),
            ),
            None => errors.push(format!(
                "occurred_at: `{at}` is not an ISO 8601 date-time between 1970 and 2200"
            )),
        }
    }
    let reported = if f.contains_key("total_cost") {
        decimal(f, &["total_cost"])
    } else if text(f, &["cost_source"]).is_some_and(|s| s.eq_ignore_ascii_case("REPORTED")) {
        decimal(f, &["cost_usd"])
    } else {
        Ok(None)
    };
    match reported {
        Ok(Some(cost)) => match Usd::from_decimal(cost) {
            Some(usd) => put(
                "reportedCostUsd",
                Some(Value::from(usd.to_decimal().to_string())),
            ),
            None => errors.push(format!("cost: `{cost}` is out of range")),
        },
        Ok(None) => {}
        Err(e) => errors.push(e),
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let key = text(f, &["idempotency_key"]).unwrap_or_else(|| {
        // Sorted keys, so the same event gives the same text whatever the format.
        let mut canonical: std::collections::BTreeMap<&str, &Value> = input
            .iter()
            .filter(|(k, _)| k.as_str() != "projectId")
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let id = text(f, &["id"]).map(Value::from);
        if let Some(id) = &id {
            canonical.insert("sourceId", id);
        }
        let text = serde_json::to_string(&canonical).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes());
        format!("import:{}", hex::encode(&digest[..20]))
    });
    input.insert("idempotencyKey".to_owned(), Value::from(key));
    Ok(Value::Object(input))
}

/// Lines of a file (a cheap first pass, for the progress bar's length and ETA).
fn count_lines(path: &Path) -> u64 {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut reader = BufReader::new(file);
    let mut n = 0u64;
    while let Ok(buf) = reader.fill_buf() {
        if buf.is_empty() {
            break;
        }
        n += buf.iter().filter(|b| **b == b'\n').count() as u64;
        let len = buf.len();
        reader.consume(len);
    }
    n
}

/// Sends one batch; records what became of each row.
async fn send(
    client: &Client,
    batch: &mut Vec<(u64, Value)>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let inputs: Vec<&Value> = batch.iter().map(|(_, v)| v).collect();
    let data = client
        .execute(IMPORT, json!({ "inputs": inputs }))
        .await
        .with_context(|| {
            format!(
                "importing lines {} to {}",
                batch.first().map(|b| b.0).unwrap_or(0),
                batch.last().map(|b| b.0).unwrap_or(0)
            )
        })?;
    let payload = &data["importUsage"];
    summary.imported += payload["imported"].as_u64().unwrap_or(0);
    summary.duplicates += payload["duplicates"].as_u64().unwrap_or(0);
    let mut by_index: Vec<(usize, Vec<String>)> = vec![];
    for r in payload["rejected"].as_array().into_iter().flatten() {
        let index = r["index"].as_u64().unwrap_or(0) as usize;
        let reason = format!(
            "{}: {}",
            r["field"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        );
        match by_index.last_mut() {
            Some((i, reasons)) if *i == index => reasons.push(reason),
            _ => by_index.push((index, vec![reason])),
        }
    }
    for (index, reasons) in by_index {
        let line = batch.get(index).map(|b| b.0).unwrap_or(0);
        summary.rejected.push((line, reasons.join("; ")));
    }
    batch.clear();
    Ok(())
}

/// Runs an import. An error (the server unreachable, a refused token or project)
/// stops it; what was sent before stays imported, and running it again continues.
pub async fn run(client: &Client, options: &ImportOptions) -> anyhow::Result<Summary> {
    let path = &options.file;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut head = [0u8; 64];
    let n = file.read(&mut head).unwrap_or(0);
    let format = options
        .format
        .unwrap_or_else(|| guess_format(path, &head[..n]));
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let total = match format {
        FileFormat::Csv => count_lines(path).saturating_sub(1),
        FileFormat::Jsonl => count_lines(path),
    };
    let bar = if options.progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({rate}, ETA {eta})",
        )
        .map(|s| {
            s.with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} rows/s", state.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let batch_size = options.batch_size.clamp(1, MAX_BATCH_SIZE);
    let mut summary = Summary::default();
    let mut batch: Vec<(u64, Value)> = Vec::with_capacity(batch_size);
    for row in inputs(format, file, options.project.clone())? {
        summary.rows += 1;
        match row {
            Ok(entry) => batch.push(entry),
            Err(rejected) => summary.rejected.push(rejected),
        }
        if batch.len() >= batch_size {
            if let Err(e) = send(client, &mut batch, &mut summary).await {
                bar.abandon();
                return Err(e);
            }
            // Every row read so far is now imported, a duplicate or rejected.
            bar.set_length(total.max(summary.rows));
            bar.set_position(summary.rows);
        }
    }
    if let Err(e) = send(client, &mut batch, &mut summary).await {
        bar.abandon();
        return Err(e);
    }
    bar.set_position(summary.rows);
    bar.finish_and_clear();
    summary.rejected.sort_by_key(|r| r.0);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: FileFormat, text: &'static str) -> Vec<Result<Value, (u64, String)>> {
        inputs(format, text.as_bytes(), None)
            .unwrap()
            .map(|r| r.map(|(_, v)| v))
            .collect()
    }

    #[test]
    fn the_export_csv_maps_to_usage_inputs() {
        let got = parse(
            FileFormat::Csv,
            "id,occurred_at,project_id,provider,model,endpoint,source,user,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_1h_tokens,reasoning_tokens,service_tier,latency_ms,cost_usd,cost_source\n\
             7,2026-03-01T10:00:00.000000Z,p1,openai,gpt-4o,chat,API,,1,100,20,5,0,0,0,flex,250,0.000400,COMPUTED\n\
             8,2026-03-01T10:00:01.000000Z,p1,perplexity,sonar,,API,u,1,10,2,0,0,0,0,standard,,0.005000,REPORTED\n",
        );
        let first = got[0].as_ref().unwrap();
        assert_eq!(first["inputTokens"], 100);
        assert_eq!(first["serviceTier"], "FLEX");
        assert_eq!(first["occurredAt"], "2026-03-01T10:00:00Z");
        assert!(
            first.get("reportedCostUsd").is_none(),
            "computed costs are priced again"
        );
        assert!(
            first["idempotencyKey"]
                .as_str()
                .unwrap()
                .starts_with("import:")
        );
        let second = got[1].as_ref().unwrap();
        assert_eq!(second["reportedCostUsd"], "0.005");
        assert_ne!(first["idempotencyKey"], second["idempotencyKey"]);
    }

    /// An export written after the unit columns existed: zero units leave the input
    /// (and its idempotency key) as an older export of the same row made it, and the
    /// units a row has are carried.
    #[test]
    fn unit_columns_are_carried_and_zero_units_change_nothing() {
        let old = parse(
            FileFormat::Csv,
            "id,occurred_at,project_id,provider,model,endpoint,source,user,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_1h_tokens,reasoning_tokens,service_tier,latency_ms,cost_usd,cost_source\n\
             7,2026-03-01T10:00:00.000000Z,p1,openai,gpt-4o,chat,API,,1,100,20,5,0,0,0,flex,250,0.000400,COMPUTED\n",
        );
        let new = parse(
            FileFormat::Csv,
            "id,occurred_at,project_id,provider,model,endpoint,source,user,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_1h_tokens,reasoning_tokens,audio_input_tokens,audio_output_tokens,image_input_tokens,image_output_tokens,images_generated,web_search_calls,video_seconds,service_tier,latency_ms,cost_usd,cost_source\n\
             7,2026-03-01T10:00:00.000000Z,p1,openai,gpt-4o,chat,API,,1,100,20,5,0,0,0,0,0,0,0,0,0,0,flex,250,0.000400,COMPUTED\n\
             8,2026-03-01T10:00:00.000000Z,p1,openai,gpt-realtime,,API,,1,100,20,0,0,0,0,900,300,0,0,0,2,0,standard,,,UNPRICED\n",
        );
        assert_eq!(old[0].as_ref().unwrap(), new[0].as_ref().unwrap());
        let units = new[1].as_ref().unwrap();
        assert_eq!(
            (
                &units["audioInputTokens"],
                &units["audioOutputTokens"],
                &units["webSearchCalls"]
            ),
            (&json!(900), &json!(300), &json!(2))
        );
        assert!(units.get("imagesGenerated").is_none());
    }

    #[test]
    fn the_logs_csv_and_bad_rows_are_understood() {
        let got = parse(
            FileFormat::Csv,
            "timestamp,model,endpoint,prompt_tokens,completion_tokens,total_tokens,input_cost,output_cost,total_cost,latency_ms,api_provider\n\
             \"2024-03-01T12:34:56Z\",\"gpt-4\",\"chat-assistant\",100,50,150,0.100000,0.050000,0.150000,2100,\"OpenAI\"\n\
             \"yesterday\",\"gpt-4\",\"x\",ten,50,150,0,0,0,1,\"OpenAI\"\n",
        );
        let first = got[0].as_ref().unwrap();
        assert_eq!(
            (
                &first["provider"],
                &first["inputTokens"],
                &first["reportedCostUsd"],
                &first["latencyMs"]
            ),
            (&json!("OpenAI"), &json!(100), &json!("0.15"), &json!(2100))
        );
        let (line, reason) = got[1].as_ref().unwrap_err();
        assert_eq!(*line, 3);
        assert!(
            reason.contains("prompt_tokens: `\"ten\"` is not a whole number"),
            "{reason}"
        );
        assert!(reason.contains("occurred_at"), "{reason}");
    }

    #[test]
    fn jsonl_rows_keep_their_line_numbers() {
        let got = parse(
            FileFormat::Jsonl,
            "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"input_tokens\":1}\n\n[1]\n{\"model\":\"m\",\"idempotency_key\":\"k-1\"}\n",
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].as_ref().unwrap_err().0, 3);
        assert_eq!(got[2].as_ref().unwrap()["idempotencyKey"], "k-1");
    }

    #[test]
    fn the_same_event_has_the_same_key_in_csv_and_jsonl() {
        let csv = parse(
            FileFormat::Csv,
            "id,occurred_at,project_id,provider,model,input_tokens,cost_usd,cost_source\n\
             7,2026-03-01T10:00:00.000000Z,p1,openai,gpt-4o,100,0.0004,COMPUTED\n\
             8,2026-03-01T10:00:00.000000Z,p1,openai,gpt-4o,100,0.0004,COMPUTED\n",
        );
        let jsonl = parse(
            FileFormat::Jsonl,
            r#"{"id":"7","occurred_at":"2026-03-01T10:00:00.000000Z","project_id":"p2","provider":"openai","model":"gpt-4o","input_tokens":100,"cost_usd":"0.0004","cost_source":"COMPUTED","endpoint":null}"#,
        );
        let key = |v: &Result<Value, (u64, String)>| v.as_ref().unwrap()["idempotencyKey"].clone();
        assert_eq!(key(&csv[0]), key(&jsonl[0]));
        assert_ne!(
            key(&csv[0]),
            key(&csv[1]),
            "the export's id tells events apart"
        );
    }

    #[test]
    fn the_format_is_guessed() {
        assert_eq!(guess_format(Path::new("a.CSV"), b"{"), FileFormat::Csv);
        assert_eq!(
            guess_format(Path::new("usage"), b"  {\"a\""),
            FileFormat::Jsonl
        );
        assert_eq!(
            guess_format(Path::new("usage"), b"id,model"),
            FileFormat::Csv
        );
    }
}
