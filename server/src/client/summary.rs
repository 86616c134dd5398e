//! `aispend usage summary`: `costSummary` and `costBreakdown` of a filter, printed as
//! a table (cost, tokens, events, share of the cost) or, with `--json`, as one JSON
//! object with the server's exact values.

use super::Client;
use super::filter::Filter;
use anyhow::{Context, anyhow};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::str::FromStr;

const SUMMARY: &str = "query($filter: UsageFilter, $groupBy: [BreakdownDimension!]!) { \
    costSummary(filter: $filter) { totals { costUsd totalTokens requests events unpricedEvents } basis } \
    costBreakdown(filter: $filter, groupBy: $groupBy) { provider model endpoint projectId sharePct \
      totals { costUsd totalTokens requests events unpricedEvents } } }";

/// The dimension rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GroupBy {
    /// Model as recorded.
    #[default]
    Model,
    /// Provider.
    Provider,
    /// Endpoint.
    Endpoint,
    /// Project.
    Project,
}

impl GroupBy {
    /// The GraphQL `Dimension` value.
    fn dimension(self) -> &'static str {
        match self {
            GroupBy::Model => "MODEL",
            GroupBy::Provider => "PROVIDER",
            GroupBy::Endpoint => "ENDPOINT",
            GroupBy::Project => "PROJECT",
        }
    }

    /// The `CostGroup` field holding the group's name.
    fn field(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
            GroupBy::Endpoint => "endpoint",
            GroupBy::Project => "projectId",
        }
    }

    fn heading(self) -> &'static str {
        match self {
            GroupBy::Model => "MODEL",
            GroupBy::Provider => "PROVIDER",
            GroupBy::Endpoint => "ENDPOINT",
            GroupBy::Project => "PROJECT",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The group's name (`(none)` for events without one, e.g. no endpoint).
    pub name: String,
    /// Cost in USD, exact.
    pub cost_usd: Decimal,
    /// All tokens.
    pub tokens: i64,
    /// Events.
    pub events: i64,
    /// Of which without a price.
    pub unpriced: i64,
    /// Share of the total cost, in percent.
    pub share_pct: Decimal,
}

/// A summary as the server answered it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Grouped by.
    pub group_by: GroupBy,
    /// The whole filter.
    pub total: Line,
    /// Dearest first.
    pub groups: Vec<Line>,
    /// The raw answer (`--json`).
    pub raw: Value,
}

fn decimal(v: &Value, what: &str) -> anyhow::Result<Decimal> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    Decimal::from_str(&text).map_err(|_| anyhow!("the server answered a {what} of `{v}`"))
}

fn line(name: String, totals: &Value, share: Decimal) -> anyhow::Result<Line> {
    Ok(Line {
        name,
        cost_usd: decimal(&totals["costUsd"], "cost")?,
        tokens: totals["totalTokens"].as_i64().unwrap_or(0),
        events: totals["events"].as_i64().unwrap_or(0),
        unpriced: totals["unpricedEvents"].as_i64().unwrap_or(0),
        share_pct: share,
    })
}

/// Asks the server.
pub async fn fetch(client: &Client, filter: &Filter, group_by: GroupBy) -> anyhow::Result<Summary> {
    let data = client
        .execute(
            SUMMARY,
            json!({"filter": filter.graphql(), "groupBy": [group_by.dimension()]}),
        )
        .await
        .context("asking for the cost summary")?;
    let total = line(
        "TOTAL".to_owned(),
        &data["costSummary"]["totals"],
        Decimal::ONE_HUNDRED,
    )?;
    let mut groups = vec![];
    for g in data["costBreakdown"].as_array().into_iter().flatten() {
        let name = g[group_by.field()].as_str().unwrap_or("(none)").to_owned();
        groups.push(line(name, &g["totals"], decimal(&g["sharePct"], "share")?)?);
    }
    Ok(Summary {
        group_by,
        total,
        groups,
        raw: json!({
            "groupBy": group_by.dimension(),
            "totals": data["costSummary"]["totals"],
            "basis": data["costSummary"]["basis"],
            "groups": data["costBreakdown"],
        }),
    })
}

/// `1234567` as `1,234,567`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The table: a header, one line per group, a rule and the total.
pub fn table(s: &Summary) -> String {
    let row = |l: &Line| {
        [
            l.name.clone(),
            format!("{:.6}", l.cost_usd),
            thousands(l.tokens),
            thousands(l.events),
            format!("{:.2}%", l.share_pct),
        ]
    };
    let header = [
        s.group_by.heading().to_owned(),
        "COST (USD)".to_owned(),
        "TOKENS".to_owned(),
        "EVENTS".to_owned(),
        "SHARE".to_owned(),
    ];
    let body: Vec<[String; 5]> = s.groups.iter().map(row).collect();
    let total = row(&s.total);
    let mut widths = [0usize; 5];
    for r in std::iter::once(&header).chain(&body).chain([&total]) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let render = |r: &[String; 5]| {
        let mut text = format!("{:<w$}", r[0], w = widths[0]);
        for (cell, w) in r.iter().zip(widths).skip(1) {
            text.push_str(&format!("  {cell:>w$}"));
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = render(&header);
    for r in &body {
        out.push_str(&render(r));
    }
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    out.push('\n');
    out.push_str(&render(&total));
    if s.total.unpriced > 0 {
        out.push_str(&format!(
            "{} events have no price and count at zero cost\n",
            thousands(s.total.unpriced)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_columns_and_counts_with_separators() {
        let l = |name: &str, cost: &str, tokens, events, share: &str| Line {
            name: name.into(),
            cost_usd: Decimal::from_str(cost).unwrap(),
            tokens,
            events,
            unpriced: 0,
            share_pct: Decimal::from_str(share).unwrap(),
        };
        let s = Summary {
            group_by: GroupBy::Model,
            total: l("TOTAL", "0.0125", 1_234_567, 3, "100"),
            groups: vec![
                l("gpt-4o", "0.01", 1_000_000, 2, "80"),
                l("o3", "0.0025", 234_567, 1, "20"),
            ],
            raw: Value::Null,
        };
        assert_eq!(
            table(&s),
            "MODEL   COST (USD)     TOKENS  EVENTS    SHARE\n\
             gpt-4o    0.010000  1,000,000       2   80.00%\n\
             o3        0.002500    234,567       1   20.00%\n\
             ----------------------------------------------\n\
             TOTAL     0.012500  1,234,567       3  100.00%\n"
        );
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(thousands(999), "999");
    }
}
