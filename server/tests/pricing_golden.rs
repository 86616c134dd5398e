//! The golden pricing table: real cases whose costs were worked out by hand
//! (`pricing_golden.toml`), checked against the built-in catalog and the cost function.

use aispend::domain::price::catalog::builtin_book;
use aispend::domain::price::variant::Variant;
use aispend::domain::provider::Provider;
use aispend::domain::tokens::{ServiceTier, TokenCounts};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    provider: String,
    model: String,
    occurred_at: DateTime<Utc>,
    service_tier: String,
    requests: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_write: i64,
    cache_write_1h: i64,
    reasoning: i64,
    #[serde(default)]
    audio_input: i64,
    #[serde(default)]
    audio_output: i64,
    #[serde(default)]
    image_input: i64,
    #[serde(default)]
    image_output: i64,
    #[serde(default)]
    images: i64,
    #[serde(default)]
    web_searches: i64,
    #[serde(default)]
    video_seconds: i64,
    /// The pricing variant (search context size, image size, video resolution).
    variant: Option<String>,
    expect_model: Option<String>,
    expect_cost: Option<Decimal>,
    work: Option<String>,
}

#[test]
fn every_golden_case_costs_what_was_worked_out_by_hand() {
    let golden: Golden =
        toml::from_str(include_str!("pricing_golden.toml")).expect("the golden table parses");
    assert!(
        golden.case.len() >= 40,
        "the golden table has only {} cases",
        golden.case.len()
    );
    let book = builtin_book().expect("the catalog loads");
    let mut failures = vec![];
    for case in &golden.case {
        let provider = Provider::parse(&case.provider).expect("a provider");
        let tier: ServiceTier = case.service_tier.parse().expect("a service tier");
        let tokens = TokenCounts {
            input: case.input,
            output: case.output,
            cache_read: case.cache_read,
            cache_write: case.cache_write,
            cache_write_1h: case.cache_write_1h,
            reasoning: case.reasoning,
            audio_input: case.audio_input,
            audio_output: case.audio_output,
            image_input: case.image_input,
            image_output: case.image_output,
            images: case.images,
            web_searches: case.web_searches,
            video_seconds: case.video_seconds,
        };
        let variant = case
            .variant
            .as_deref()
            .map(|v| Variant::parse(v).expect("a variant"));
        let variant = variant.as_ref();
        let found = book.find(&provider, &case.model, case.occurred_at);
        let got_model = found.as_ref().map(|m| m.price.model.clone());
        let got_cost = found
            .as_ref()
            .filter(|m| {
                m.price
                    .card
                    .missing_rate(&tokens, case.requests, tier, variant)
                    .is_none()
            })
            .and_then(|m| m.price.card.cost(&tokens, case.requests, tier, variant))
            .map(|usd| usd.to_decimal());
        if got_model != case.expect_model
            || got_cost.map(|c| c.normalize()) != case.expect_cost.map(|c| c.normalize())
        {
            failures.push(format!(
                "{}: expected {:?} at {:?}, got {:?} at {:?}\n    work: {}",
                case.name,
                case.expect_model,
                case.expect_cost,
                got_model,
                got_cost,
                case.work.as_deref().unwrap_or("-")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
