//! Matching is never silently wrong: a table of real model names (from LiteLLM's and
//! genai-prices' data, and names applications send) with the model each must be
//! priced as, or UNPRICED; and a property: a name is only ever priced as itself, a
//! stored alias, or itself without a date/version suffix — so never as a model whose
//! name it does not contain (aliases aside).

use aispend::domain::price::book::PriceBook;
use aispend::domain::price::catalog::{CATALOG_TOML, builtin_book, parse};
use aispend::domain::price::model_name::{candidates, match_key};
use aispend::domain::provider::{Provider, split_model_prefix};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::LazyLock;

static BOOK: LazyLock<PriceBook> = LazyLock::new(|| builtin_book().expect("the catalog loads"));

/// `(provider, alias)` -> the model it names.
type Aliases = HashMap<(String, String), String>;

/// Every catalog model, and every alias with the model it names, per provider.
static NAMES: LazyLock<(Vec<(String, String)>, Aliases)> = LazyLock::new(|| {
    let catalog = parse(CATALOG_TOML).expect("the catalog parses");
    let mut models = vec![];
    let mut aliases = HashMap::new();
    for row in &catalog.prices {
        models.push((row.provider.clone(), row.model.clone()));
        for alias in &row.aliases {
            aliases.insert(
                (row.provider.clone(), match_key(alias)),
                match_key(&row.model),
            );
        }
    }
    models.sort();
    models.dedup();
    (models, aliases)
});

#[test]
fn every_real_name_is_priced_as_its_own_model_or_unpriced() {
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let table = include_str!("pricing_matching.txt");
    let mut rows = 0;
    let mut unpriced = 0;
    let mut failures = vec![];
    for line in table.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let [provider, name, expected] = parts[..] else {
            panic!("bad table line: {line}");
        };
        rows += 1;
        let (provider, model) = if provider == "-" {
            split_model_prefix(name).unwrap_or_else(|| panic!("{name} names no provider"))
        } else {
            (Provider::parse(provider).expect("a provider"), name)
        };
        let got = BOOK
            .find(&provider, model, at)
            .map(|m| m.price.model.clone());
        let want = (expected != "UNPRICED").then(|| expected.to_owned());
        if want.is_none() {
            unpriced += 1;
        }
        if got != want {
            failures.push(format!(
                "{provider} {name}: expected {expected}, got {}",
                got.as_deref().unwrap_or("UNPRICED")
            ));
        }
    }
    assert!(rows >= 150, "the table has only {rows} names");
    assert!(
        unpriced >= 50,
        "the table has only {unpriced} unpriced names"
    );
    assert!(
        failures.is_empty(),
        "{} of {rows} names are priced wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Words applications and providers put after a model id.
fn extra_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "tts",
            "audio",
            "realtime",
            "transcribe",
            "image",
            "search",
            "live",
            "computer-use",
            "vision",
            "embed",
            "cyber",
            "mini",
            "pro",
            "preview",
            "exp",
            "eu",
            "deployment",
            "fine-tuned",
            "latest",
            "2024-08-06",
            "20250929",
            "0613",
            "002",
            "v2:0",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,8}",
        "[0-9]{1,9}",
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["-", "-", "-", ":", "@", "_", ".", "/"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_name_is_priced_only_as_itself_an_alias_or_itself_without_a_date(
        index in any::<prop::sample::Index>(),
        extras in prop::collection::vec((separator(), extra_word()), 0..3),
        fine_tune in any::<bool>(),
        lead in prop::option::of("[a-z]{1,6}-"),
    ) {
        let (models, aliases) = &*NAMES;
        let (provider, base) = &models[index.index(models.len())];
        let mut name = String::new();
        if fine_tune {
            name.push_str("ft:");
        }
        if let Some(lead) = &lead {
            name.push_str(lead);
        }
        name.push_str(base);
        for (sep, word) in &extras {
            name.push_str(sep);
            name.push_str(word);
        }
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let provider = Provider::parse(provider).unwrap();
        if let Some(found) = BOOK.find(&provider, &name, at) {
            let key = match_key(&name);
            let priced = match_key(&found.price.model);
            let by_rule = candidates(&key).any(|c| {
                c == priced
                    || aliases.get(&(provider.as_str().to_owned(), c.to_owned())) == Some(&priced)
            });
            prop_assert!(
                by_rule,
                "{name} is priced as {priced}, which is neither the name, an alias of it, nor the name without a date/version suffix"
            );
            let via_alias = candidates(&key)
                .any(|c| aliases.get(&(provider.as_str().to_owned(), c.to_owned())) == Some(&priced));
            prop_assert!(
                via_alias || key.contains(&priced),
                "{name} is priced as {priced}, a model whose name it does not contain"
            );
        }
    }
}
