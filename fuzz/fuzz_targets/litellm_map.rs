//! LiteLLM price maps (`model_prices_and_context_window.json` shape), as a price
//! source sync or `aispend prices import` reads them: every draft it accepts must be a
//! valid price.
#![no_main]

use aispend::domain::price::litellm::drafts_from_map;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(map) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok((drafts, _report)) = drafts_from_map(&map, aispend_fuzz::now()) {
        for draft in drafts {
            assert!(!draft.model.trim().is_empty(), "an empty model: {draft:?}");
            if let Err(e) = draft.card.validate() {
                panic!("an accepted draft has an invalid card ({e:?}): {draft:?}");
            }
        }
    }
});
