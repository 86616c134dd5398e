//! The usage filter of `aispend export` and `aispend usage summary`, parsed once from
//! the command line and then written as the export's query parameters or as the
//! GraphQL `UsageFilterInput`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// `--from`, `--to`, `--project`, `--provider`, `--model`, `--endpoint`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filter {
    /// Start, inclusive (RFC 3339 or `YYYY-MM-DD`, UTC).
    #[arg(long, value_parser = instant)]
    pub from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339 or `YYYY-MM-DD`, UTC).
    #[arg(long, value_parser = instant)]
    pub to: Option<DateTime<Utc>>,
    /// Only these projects (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub project: Vec<String>,
    /// Only these providers (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub provider: Vec<String>,
    /// Only these models, exactly as recorded (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Only these endpoints (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub endpoint: Vec<String>,
}

/// A `--from`/`--to` value: what the server's REST parameters accept.
fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    crate::http::rest::instant(text.trim()).ok_or_else(|| {
        format!("`{text}` is not an RFC 3339 date-time or a YYYY-MM-DD date between 1970 and 2200")
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl Filter {
    fn lists(&self) -> [(&'static str, &'static str, &Vec<String>); 4] {
        [
            ("project", "projects", &self.project),
            ("provider", "providers", &self.provider),
            ("model", "models", &self.model),
            ("endpoint", "endpoints", &self.endpoint),
        ]
    }

    /// The export's query parameters (`project=…&from=…`, lists repeated).
    pub fn query(&self) -> Vec<(String, String)> {
        let mut q = vec![];
        for (param, _, values) in self.lists() {
            q.extend(values.iter().map(|v| (param.to_owned(), v.clone())));
        }
        if let Some(t) = self.from {
            q.push(("from".to_owned(), rfc3339(t)));
        }
        if let Some(t) = self.to {
            q.push(("to".to_owned(), rfc3339(t)));
        }
        q
    }

    /// The GraphQL `UsageFilterInput`.
    pub fn graphql(&self) -> Value {
        let mut f = Map::new();
        for (_, field, values) in self.lists() {
            if !values.is_empty() {
                f.insert(field.to_owned(), Value::from(values.clone()));
            }
        }
        if let Some(t) = self.from {
            f.insert("from".to_owned(), Value::from(rfc3339(t)));
        }
        if let Some(t) = self.to {
            f.insert("to".to_owned(), Value::from(rfc3339(t)));
        }
        Value::Object(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_written_for_both_transports() {
        let f = Filter {
            from: instant("2026-03-01").ok(),
            to: instant("2026-03-02T12:00:00Z").ok(),
            project: vec!["a".into(), "b".into()],
            model: vec!["gpt-4o".into()],
            ..Filter::default()
        };
        assert_eq!(
            f.query(),
            [
                ("project", "a"),
                ("project", "b"),
                ("model", "gpt-4o"),
                ("from", "2026-03-01T00:00:00Z"),
                ("to", "2026-03-02T12:00:00Z")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            f.graphql(),
            serde_json::json!({"projects": ["a", "b"], "models": ["gpt-4o"], "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T12:00:00Z"})
        );
        assert!(instant("yesterday").unwrap_err().contains("`yesterday`"));
    }
}
