//! What the fuzz targets share: the checks a parsed usage input must pass all the way
//! to its price, exactly as the ledger runs them before storing anything.

use aispend::domain::ids::ProjectId;
use aispend::domain::price::book::PriceBook;
use aispend::domain::price::catalog;
use aispend::domain::tokens::MAX_COUNT;
use aispend::domain::usage::UsageSource;
use aispend::domain::usage::ingest;
use aispend::domain::usage::input::{ParseContext, RawUsage};
use chrono::{DateTime, TimeZone, Utc};
use std::sync::OnceLock;

/// The clock the targets run at (the end-to-end tests' pinned instant).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 9, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The built-in catalog, parsed once per process.
fn book() -> &'static PriceBook {
    static BOOK: OnceLock<PriceBook> = OnceLock::new();
    BOOK.get_or_init(|| catalog::builtin_book().expect("the built-in catalog parses"))
}

/// Parses `raw` as the ledger does (for a caller bound to one project) and, when it is
/// valid, prices it with the built-in catalog. Panics, and so reports a crash, when an
/// accepted input breaks an invariant the ledger relies on.
pub fn check_usage(raw: RawUsage, source: UsageSource) {
    let project: ProjectId = "00000000-0000-7000-8000-000000000001"
        .parse()
        .expect("a valid project id");
    let ctx = ParseContext {
        default_project: Some(project),
        now: now(),
        source,
    };
    let Ok(usage) = raw.parse(&ctx) else {
        return;
    };
    let t = &usage.tokens;
    for (class, n) in t.fields() {
        assert!(
            (0..=MAX_COUNT).contains(&n),
            "accepted {class} out of range: {n}"
        );
    }
    assert!(t.reasoning <= t.output, "reasoning exceeds output: {t:?}");
    assert!(usage.requests >= 0, "negative requests accepted");
    assert!(!usage.model.is_empty(), "an empty model accepted");
    assert!(
        !usage.model.chars().any(char::is_control),
        "a control character accepted in the model"
    );
    let tokens = usage.tokens;
    let (requests, tier, variant) = (usage.requests, usage.service_tier, usage.variant.clone());
    let card = book()
        .find(&usage.provider, &usage.model, usage.occurred_at)
        .map(|m| m.price.card.clone());
    if let Ok(priced) = ingest::price(usage, book())
        && let Some(cost) = priced.cost
    {
        assert!(cost.nanos() >= 0, "a negative cost: {cost:?}");
        // A computed cost never leaves out a unit its price has no rate for.
        if priced.price_id.is_some() {
            let card = card.expect("a computed cost has a price");
            assert_eq!(
                card.missing_rate(&tokens, requests, tier, variant.as_ref()),
                None
            );
        }
    }
}
