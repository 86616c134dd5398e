//! Why an event has no price: every event stored `UNPRICED` says why, derived from
//! the current price book by the same matching that priced it. Because prices that
//! arrive re-price the unpriced events at once (`reprice_unpriced`), the reason an
//! event shows is the reason it is unpriced now.

use super::book::PriceBook;
use super::model_name::match_key;
use crate::domain::usage::UsageEvent;

/// Why an event is unpriced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnpricedReason {
    /// No price of the provider names this model, an alias of it, or a model it is a
    /// variant of.
    NoSuchModel,
    /// The name is a known model with an extra word (`gpt-4o-audio-x`, `ft:gpt-4o:…`):
    /// a different product that has no price of its own, so it is not priced as its
    /// base model.
    VariantWithoutPrice,
    /// The model has prices, but none in effect when the event happened.
    NoPriceAtThatTime,
    /// The model has a price, but not for a unit the event used (audio, image
    /// output, generated images, web searches, video), or the fee for a unit depends
    /// on a pricing variant the event did not name or the price does not list: it is
    /// not priced as text, and no fee is guessed.
    UnitWithoutRate,
    /// A price for it arrived after it was stored; it is being re-priced.
    PriceArrived,
}

super::text_enum!(UnpricedReason {
    NoSuchModel => "NO_SUCH_MODEL",
    VariantWithoutPrice => "VARIANT_WITHOUT_PRICE",
    NoPriceAtThatTime => "NO_PRICE_AT_THAT_TIME",
    UnitWithoutRate => "UNIT_WITHOUT_RATE",
    PriceArrived => "PRICE_ARRIVED",
});

/// Characters that separate the words of a model id.
fn separator(c: char) -> bool {
    matches!(c, '-' | ':' | '/' | '.' | '@' | '_' | ' ')
}

/// Whether `name` contains `known` as whole words (bounded by separators or the
/// ends), and is longer than it.
fn contains_as_words(name: &str, known: &str) -> bool {
    if known.len() < 2 || name.len() <= known.len() {
        return false;
    }
    name.match_indices(known).any(|(i, _)| {
        let before = name[..i].chars().next_back().is_none_or(separator);
        let after = name[i + known.len()..].chars().next().is_none_or(separator);
        before && after
    })
}

/// Why the book cannot price this stored event.
pub fn reason(book: &PriceBook, event: &UsageEvent) -> UnpricedReason {
    let (provider, model) = (&event.provider, event.model.as_str());
    if let Some(found) = book.find(provider, model, event.occurred_at) {
        return match found.price.card.missing_rate(
            &event.tokens,
            event.requests,
            event.service_tier,
            event.variant.as_ref(),
        ) {
            Some(_) => UnpricedReason::UnitWithoutRate,
            None => UnpricedReason::PriceArrived,
        };
    }
    if book.knows_model(provider, model) {
        return UnpricedReason::NoPriceAtThatTime;
    }
    let key = match_key(model);
    if book
        .model_keys(provider)
        .any(|known| contains_as_words(&key, known))
    {
        return UnpricedReason::VariantWithoutPrice;
    }
    UnpricedReason::NoSuchModel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        assert!(contains_as_words("gpt-4o-audio-preview-x", "gpt-4o"));
        assert!(contains_as_words("ft:gpt-4o-mini:acme::abc", "gpt-4o-mini"));
        assert!(!contains_as_words("gpt-4o", "gpt-4o"));
        assert!(!contains_as_words("gpt-4oo", "gpt-4o"));
        assert!(!contains_as_words("xgpt-4o-y", "gpt-4o"));
    }
}
