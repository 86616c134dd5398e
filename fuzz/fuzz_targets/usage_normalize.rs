//! Raw provider `usage` objects (OpenAI, Anthropic, Gemini, Perplexity shapes): the
//! normaliser, then the whole input check and pricing, for each provider that
//! disambiguates shapes.
#![no_main]

use aispend::domain::provider::Provider;
use aispend::domain::usage::UsageSource;
use aispend::domain::usage::input::RawUsage;
use aispend::domain::usage::normalize::normalize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for provider in [
        None,
        Some("openai"),
        Some("anthropic"),
        Some("google"),
        Some("perplexity"),
    ] {
        let parsed = provider.and_then(Provider::parse);
        if let Ok(n) = normalize(parsed.as_ref(), &value) {
            assert!(n.tokens.input >= 0 && n.tokens.output >= 0, "{n:?}");
        }
        aispend_fuzz::check_usage(
            RawUsage {
                provider: provider.map(str::to_owned),
                // Perplexity's own model, whose request fee depends on the variant.
                model: Some(
                    if provider == Some("perplexity") {
                        "sonar"
                    } else {
                        "gpt-4o"
                    }
                    .to_owned(),
                ),
                usage: Some(value.clone()),
                ..RawUsage::default()
            },
            UsageSource::Api,
        );
    }
});
