//! pydantic genai-prices documents (an array of providers with their models and
//! prices), as a price source sync reads them: every draft it accepts must be a valid
//! price.
#![no_main]

use aispend::domain::price::genai_prices::drafts_from_document;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok((drafts, _skipped)) = drafts_from_document(&document, aispend_fuzz::now()) {
        for draft in drafts {
            assert!(!draft.model.trim().is_empty(), "an empty model: {draft:?}");
            if let Err(e) = draft.card.validate() {
                panic!("an accepted draft has an invalid card ({e:?}): {draft:?}");
            }
        }
    }
});
