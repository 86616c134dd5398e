//! What a plugin returns, in host terms: usage and cost rows with typed times, exact
//! decimals and bounded strings. A plugin's output is parsed here field by field, and
//! anything malformed (an end before its start, a count beyond reason, an amount that
//! is not a decimal, a currency that is not three letters) fails the call as a plugin
//! error instead of reaching the ledger.
//!
//! Persisting rows is the sync's job (provider reports); this module only hands them
//! over clean.

use crate::domain::tokens::{MAX_COUNT, TokenCounts};
use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

/// Longest id, model name, tier, unit or line item accepted from a plugin.
pub const MAX_TEXT: usize = 256;
/// Longest cursor accepted from a plugin.
pub const MAX_CURSOR: usize = 4_096;
/// Most units on one row.
pub const MAX_UNITS: usize = 16;

/// A count of something other than tokens (`seats`, `premium-requests`,
/// `web-searches`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCount {
    /// Unit name.
    pub unit: String,
    /// Exact quantity, not negative.
    pub quantity: Decimal,
}

/// Dimensions a provider groups its reports by; `None` where it did not group (or
/// reported null, e.g. Anthropic's default workspace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dimensions {
    /// Model id as the provider names it.
    pub model: Option<String>,
    /// The provider's project id.
    pub project_id: Option<String>,
    /// The provider's workspace id.
    pub workspace_id: Option<String>,
    /// The provider's API key id.
    pub api_key_id: Option<String>,
    /// Service tier (`standard`, `batch`, `priority`, `flex`, as reported).
    pub service_tier: Option<String>,
}

/// One bucket of usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// Bucket start (inclusive).
    pub bucket_start: DateTime<Utc>,
    /// Bucket end (exclusive).
    pub bucket_end: DateTime<Utc>,
    /// Grouping.
    pub dimensions: Dimensions,
    /// Token classes (input excludes cache reads and writes; output includes reasoning).
    pub tokens: TokenCounts,
    /// Requests.
    pub requests: i64,
    /// Other units.
    pub units: Vec<UnitCount>,
}

/// One bucket of cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRow {
    /// Bucket start (inclusive).
    pub bucket_start: DateTime<Utc>,
    /// Bucket end (exclusive).
    pub bucket_end: DateTime<Utc>,
    /// Grouping.
    pub dimensions: Dimensions,
    /// The provider's line item (`Input tokens`, `Copilot Business seats`).
    pub line_item: Option<String>,
    /// Exact amount.
    pub amount: Decimal,
    /// ISO 4217 code, upper case.
    pub currency: String,
    /// Other units.
    pub units: Vec<UnitCount>,
}

/// Rows of one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// From `fetch-usage`.
    Usage(Vec<UsageRow>),
    /// From `fetch-costs`.
    Costs(Vec<CostRow>),
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Usage(r) => r.len(),
            Rows::Costs(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends another page's rows of the same kind.
    pub fn extend(&mut self, other: Rows) {
        match (self, other) {
            (Rows::Usage(a), Rows::Usage(b)) => a.extend(b),
            (Rows::Costs(a), Rows::Costs(b)) => a.extend(b),
            // The driver only combines pages of one kind.
            _ => {}
        }
    }
}

/// One page and the cursor of the next (none after the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The rows.
    pub rows: Rows,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}

impl Page {
    /// A usage page.
    pub fn usage(rows: Vec<UsageRow>, next_cursor: Option<String>) -> Page {
        Page {
            rows: Rows::Usage(rows),
            next_cursor,
        }
    }

    /// A cost page.
    pub fn costs(rows: Vec<CostRow>, next_cursor: Option<String>) -> Page {
        Page {
            rows: Rows::Costs(rows),
            next_cursor,
        }
    }
}

/// A unit as the plugin sent it.
pub struct RawUnit {
    /// Unit name.
    pub unit: String,
    /// Decimal text.
    pub quantity: String,
}

/// A usage row as the plugin sent it.
pub struct RawUsageRow {
    /// Unix seconds.
    pub bucket_start: i64,
    /// Unix seconds.
    pub bucket_end: i64,
    /// Model.
    pub model: Option<String>,
    /// Project.
    pub project_id: Option<String>,
    /// Workspace.
    pub workspace_id: Option<String>,
    /// API key.
    pub api_key_id: Option<String>,
    /// Tier.
    pub service_tier: Option<String>,
    /// input, cache read, cache write, cache write 1h, output, reasoning.
    pub tokens: [u64; 6],
    /// Requests.
    pub requests: u64,
    /// Units.
    pub units: Vec<RawUnit>,
}

/// A cost row as the plugin sent it.
pub struct RawCostRow {
    /// Unix seconds.
    pub bucket_start: i64,
    /// Unix seconds.
    pub bucket_end: i64,
    /// Model.
    pub model: Option<String>,
    /// Project.
    pub project_id: Option<String>,
    /// Workspace.
    pub workspace_id: Option<String>,
    /// API key.
    pub api_key_id: Option<String>,
    /// Tier.
    pub service_tier: Option<String>,
    /// Line item.
    pub line_item: Option<String>,
    /// Decimal text.
    pub amount: String,
    /// Currency code.
    pub currency: String,
    /// Units.
    pub units: Vec<RawUnit>,
}

fn time(secs: i64, field: &str) -> Result<DateTime<Utc>, String> {
    // Years 2000..2200: anything else is not a usage bucket.
    if !(946_684_800..=7_258_118_400).contains(&secs) {
        return Err(format!("{field} {secs} is not a plausible time"));
    }
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| format!("{field} {secs} is not a time"))
}

fn text(value: Option<String>, field: &str) -> Result<Option<String>, String> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) => Err(format!(
            "{field} is longer than {MAX_TEXT} characters or has control characters"
        )),
        other => Ok(other),
    }
}

fn count(value: u64, field: &str) -> Result<i64, String> {
    i64::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_COUNT)
        .ok_or_else(|| format!("{field} {value} exceeds {MAX_COUNT}"))
}

fn decimal(value: &str, field: &str) -> Result<Decimal, String> {
    let v = value.trim();
    if v.is_empty()
        || v.len() > 40
        || !v
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(format!(
            "{field} `{}` is not a plain decimal",
            v.chars().take(40).collect::<String>()
        ));
    }
    Decimal::from_str(v).map_err(|_| format!("{field} `{v}` is not a decimal"))
}

fn units(raw: Vec<RawUnit>) -> Result<Vec<UnitCount>, String> {
    if raw.len() > MAX_UNITS {
        return Err(format!("more than {MAX_UNITS} units"));
    }
    raw.into_iter()
        .map(|u| {
            let unit = text(Some(u.unit), "unit")?.ok_or("a unit has no name")?;
            let quantity = decimal(&u.quantity, "unit quantity")?;
            if quantity.is_sign_negative() {
                return Err(format!("unit `{unit}` has a negative quantity"));
            }
            Ok(UnitCount { unit, quantity })
        })
        .collect()
}

fn bucket(start: i64, end: i64) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let (s, e) = (time(start, "bucket start")?, time(end, "bucket end")?);
    if e <= s {
        return Err(format!("bucket end {e} is not after its start {s}"));
    }
    Ok((s, e))
}

fn dimensions(
    model: Option<String>,
    project_id: Option<String>,
    workspace_id: Option<String>,
    api_key_id: Option<String>,
    service_tier: Option<String>,
) -> Result<Dimensions, String> {
    Ok(Dimensions {
        model: text(model, "model")?,
        project_id: text(project_id, "project id")?,
        workspace_id: text(workspace_id, "workspace id")?,
        api_key_id: text(api_key_id, "API key id")?,
        service_tier: text(service_tier, "service tier")?,
    })
}

impl RawUsageRow {
    /// Validates the row.
    pub fn parse(self) -> Result<UsageRow, String> {
        let (bucket_start, bucket_end) = bucket(self.bucket_start, self.bucket_end)?;
        let [
            input,
            cache_read,
            cache_write,
            cache_write_1h,
            output,
            reasoning,
        ] = self.tokens;
        let tokens = TokenCounts {
            input: count(input, "input tokens")?,
            cache_read: count(cache_read, "cache read tokens")?,
            cache_write: count(cache_write, "cache write tokens")?,
            cache_write_1h: count(cache_write_1h, "1h cache write tokens")?,
            output: count(output, "output tokens")?,
            reasoning: count(reasoning, "reasoning tokens")?,
            ..TokenCounts::default()
        };
        if tokens.reasoning > tokens.output {
            return Err("reasoning tokens exceed output tokens (output includes reasoning)".into());
        }
        Ok(UsageRow {
            bucket_start,
            bucket_end,
            dimensions: dimensions(
                self.model,
                self.project_id,
                self.workspace_id,
                self.api_key_id,
                self.service_tier,
            )?,
            tokens,
            requests: count(self.requests, "requests")?,
            units: units(self.units)?,
        })
    }
}

impl RawCostRow {
    /// Validates the row.
    pub fn parse(self) -> Result<CostRow, String> {
        let (bucket_start, bucket_end) = bucket(self.bucket_start, self.bucket_end)?;
        let currency = self.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "currency `{}` is not an ISO 4217 code",
                currency.chars().take(10).collect::<String>()
            ));
        }
        Ok(CostRow {
            bucket_start,
            bucket_end,
            dimensions: dimensions(
                self.model,
                self.project_id,
                self.workspace_id,
                self.api_key_id,
                self.service_tier,
            )?,
            line_item: text(self.line_item, "line item")?,
            amount: decimal(&self.amount, "amount")?,
            currency,
            units: units(self.units)?,
        })
    }
}

/// Checks a cursor's size.
pub fn cursor(next: Option<String>) -> Result<Option<String>, String> {
    match next {
        Some(c) if c.len() > MAX_CURSOR => {
            Err(format!("returned a cursor longer than {MAX_CURSOR} bytes"))
        }
        Some(c) if c.is_empty() => Ok(None),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> RawUsageRow {
        RawUsageRow {
            bucket_start: 1_735_689_600,
            bucket_end: 1_735_776_000,
            model: Some(" gpt-4o ".into()),
            project_id: None,
            workspace_id: Some("".into()),
            api_key_id: None,
            service_tier: None,
            tokens: [10, 2, 0, 0, 5, 1],
            requests: 3,
            units: vec![RawUnit {
                unit: "web-searches".into(),
                quantity: "4".into(),
            }],
        }
    }

    #[test]
    fn parses_a_good_row() {
        let row = usage().parse().unwrap();
        assert_eq!(row.dimensions.model.as_deref(), Some("gpt-4o"));
        assert_eq!(row.dimensions.workspace_id, None);
        assert_eq!(row.tokens.output, 5);
        assert_eq!(row.units[0].quantity, Decimal::from(4));
    }

    #[test]
    fn refuses_garbage() {
        let mut r = usage();
        r.bucket_end = r.bucket_start;
        assert!(r.parse().is_err());
        let mut r = usage();
        r.tokens[0] = u64::MAX;
        assert!(r.parse().is_err());
        let mut r = usage();
        r.tokens[5] = 9;
        assert!(r.parse().is_err());
        let mut r = usage();
        r.model = Some("x".repeat(300));
        assert!(r.parse().is_err());
        let mut r = usage();
        r.bucket_start = 0;
        assert!(r.parse().is_err());
        let cost = |amount: &str, currency: &str| RawCostRow {
            bucket_start: 1_735_689_600,
            bucket_end: 1_735_776_000,
            model: None,
            project_id: None,
            workspace_id: None,
            api_key_id: None,
            service_tier: None,
            line_item: None,
            amount: amount.into(),
            currency: currency.into(),
            units: vec![],
        };
        assert_eq!(
            cost("12.345", "usd").parse().unwrap().amount.to_string(),
            "12.345"
        );
        assert!(cost("1e3", "usd").parse().is_err());
        assert!(cost("NaN", "usd").parse().is_err());
        assert!(cost("1", "dollars").parse().is_err());
    }
}
