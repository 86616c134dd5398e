//! Rate cards and the cost function.
//!
//! A price is a rate card: per-million-token rates for every token class on the
//! standard tier, optionally its own rates for batch, priority and flex, and optionally
//! a long-context threshold above which the whole request bills at other rates.
//!
//! How a rate is chosen for one token class (the contract the golden table checks):
//! 1. Long context applies when the prompt of one request (input + cache reads + cache
//!    writes, divided evenly over `requests`) exceeds the threshold. Then the chosen set
//!    is the long-context one (batch halves it); otherwise the tier's own set.
//! 2. The chosen set's rate for the class; else the standard rate for the class
//!    (halved for batch).
//! 3. Else the rate of the class it falls back to, in the same tier and context: cache
//!    reads and cache writes bill as input, 1-hour cache writes as 5-minute ones,
//!    reasoning as output — so reasoning on a priority call bills at priority output.
//!
//! Output includes reasoning: the cost is `(output - reasoning) * output_rate +
//! reasoning * reasoning_rate`, which equals `output * output_rate` unless a price has
//! its own reasoning rate.
//!
//! Units beyond text tokens: audio and image tokens are per million like the others;
//! generated images, web-search calls, video seconds and requests are per unit. Image
//! input falls back to input; audio, image output, images, searches and video have no
//! fallback, so an event using one under a card without its rate is unpriced
//! ([`RateCard::missing_rate`]) rather than priced as text. A card without a request
//! fee charges none.
//!
//! Variants: a card may list per-unit rates per pricing variant ([`RateCard::variants`]:
//! Perplexity's request fee by search context size, an image by quality and size, a
//! second of video by resolution). For a per-unit class that some variant prices:
//! - an event naming a listed variant pays that variant's rate (whatever the tier or
//!   context);
//! - an event naming another variant pays the card's own rate for the class (the rate
//!   for every variant not listed), and is unpriced when the card has none;
//! - an event naming no variant is unpriced: which fee applies is unknown, and no fee is
//!   guessed.

use super::variant::Variant;
use crate::domain::money::Usd;
use crate::domain::tokens::{ServiceTier, TokenCounts};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A token class (or other billed unit), as rates are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenClass {
    /// Uncached input.
    Input,
    /// Output (reasoning included).
    Output,
    /// Cache reads.
    CacheRead,
    /// 5-minute cache writes.
    CacheWrite,
    /// 1-hour cache writes.
    CacheWrite1h,
    /// Reasoning, when it has a rate of its own.
    Reasoning,
    /// Audio input tokens.
    AudioInput,
    /// Audio output tokens.
    AudioOutput,
    /// Image input tokens.
    ImageInput,
    /// Image output tokens.
    ImageOutput,
    /// A generated image (USD per image).
    Image,
    /// A web-search call (USD per call).
    WebSearch,
    /// A second of generated video (USD per second).
    VideoSecond,
    /// A request (USD per request: a fee on top of the tokens).
    Request,
}

impl TokenClass {
    /// Every class in a stable order.
    pub const ALL: [TokenClass; 14] = [
        TokenClass::Input,
        TokenClass::Output,
        TokenClass::CacheRead,
        TokenClass::CacheWrite,
        TokenClass::CacheWrite1h,
        TokenClass::Reasoning,
        TokenClass::AudioInput,
        TokenClass::AudioOutput,
        TokenClass::ImageInput,
        TokenClass::ImageOutput,
        TokenClass::Image,
        TokenClass::WebSearch,
        TokenClass::VideoSecond,
        TokenClass::Request,
    ];

    /// The class whose rate applies when this one has none: cache reads and writes
    /// bill as input, 1-hour writes as 5-minute writes, reasoning as output, image
    /// input as input. Audio, image output, images, searches and video have none: an
    /// event using them under a price without their rate is unpriced
    /// ([`RateCard::missing_rate`]); a missing request fee is no fee.
    pub fn fallback(self) -> Option<TokenClass> {
        match self {
            TokenClass::Input | TokenClass::Output => None,
            TokenClass::CacheRead | TokenClass::CacheWrite | TokenClass::ImageInput => {
                Some(TokenClass::Input)
            }
            TokenClass::CacheWrite1h => Some(TokenClass::CacheWrite),
            TokenClass::Reasoning => Some(TokenClass::Output),
            TokenClass::AudioInput
            | TokenClass::AudioOutput
            | TokenClass::ImageOutput
            | TokenClass::Image
            | TokenClass::WebSearch
            | TokenClass::VideoSecond
            | TokenClass::Request => None,
        }
    }

    /// The key used in rate cards (TOML, JSON) for this class.
    pub fn key(self) -> &'static str {
        match self {
            TokenClass::Input => "input",
            TokenClass::Output => "output",
            TokenClass::CacheRead => "cache_read",
            TokenClass::CacheWrite => "cache_write",
            TokenClass::CacheWrite1h => "cache_write_1h",
            TokenClass::Reasoning => "reasoning",
            TokenClass::AudioInput => "audio_input",
            TokenClass::AudioOutput => "audio_output",
            TokenClass::ImageInput => "image_input",
            TokenClass::ImageOutput => "image_output",
            TokenClass::Image => "image",
            TokenClass::WebSearch => "web_search",
            TokenClass::VideoSecond => "video_second",
            TokenClass::Request => "request",
        }
    }

    /// Whether the rate is per unit (an image, a call, a second, a request) rather
    /// than per million tokens.
    pub fn per_unit(self) -> bool {
        matches!(
            self,
            TokenClass::Image
                | TokenClass::WebSearch
                | TokenClass::VideoSecond
                | TokenClass::Request
        )
    }

    /// What a rate of this class is in, for messages and documentation.
    pub fn unit(self) -> &'static str {
        match self {
            TokenClass::Image => "USD per image",
            TokenClass::WebSearch => "USD per web-search call",
            TokenClass::VideoSecond => "USD per second of video",
            TokenClass::Request => "USD per request",
            _ => "USD per million tokens",
        }
    }

    /// How many of this class an event has.
    pub fn count(self, tokens: &TokenCounts, requests: i64) -> i64 {
        match self {
            TokenClass::Input => tokens.input,
            TokenClass::Output => tokens.output - tokens.reasoning,
            TokenClass::CacheRead => tokens.cache_read,
            TokenClass::CacheWrite => tokens.cache_write,
            TokenClass::CacheWrite1h => tokens.cache_write_1h,
            TokenClass::Reasoning => tokens.reasoning,
            TokenClass::AudioInput => tokens.audio_input,
            TokenClass::AudioOutput => tokens.audio_output,
            TokenClass::ImageInput => tokens.image_input,
            TokenClass::ImageOutput => tokens.image_output,
            TokenClass::Image => tokens.images,
            TokenClass::WebSearch => tokens.web_searches,
            TokenClass::VideoSecond => tokens.video_seconds,
            TokenClass::Request => requests,
        }
    }
}

/// USD per one million tokens for each token class, USD per unit for the per-unit
/// classes ([`TokenClass::per_unit`]); a missing rate falls back as described in the
/// module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSet {
    /// Uncached input.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub input: Option<Decimal>,
    /// Output.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub output: Option<Decimal>,
    /// Cache reads.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_read: Option<Decimal>,
    /// 5-minute cache writes.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_write: Option<Decimal>,
    /// 1-hour cache writes.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_write_1h: Option<Decimal>,
    /// Reasoning tokens, when billed apart from output.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning: Option<Decimal>,
    /// Audio input tokens.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub audio_input: Option<Decimal>,
    /// Audio output tokens.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub audio_output: Option<Decimal>,
    /// Image input tokens.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_input: Option<Decimal>,
    /// Image output tokens.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_output: Option<Decimal>,
    /// USD per generated image.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub image: Option<Decimal>,
    /// USD per web-search call.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub web_search: Option<Decimal>,
    /// USD per second of generated video.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub video_second: Option<Decimal>,
    /// USD per request, on top of the tokens.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub request: Option<Decimal>,
}

impl RateSet {
    /// The rate written for a class, without any fallback.
    pub fn explicit(&self, class: TokenClass) -> Option<Decimal> {
        match class {
            TokenClass::Input => self.input,
            TokenClass::Output => self.output,
            TokenClass::CacheRead => self.cache_read,
            TokenClass::CacheWrite => self.cache_write,
            TokenClass::CacheWrite1h => self.cache_write_1h,
            TokenClass::Reasoning => self.reasoning,
            TokenClass::AudioInput => self.audio_input,
            TokenClass::AudioOutput => self.audio_output,
            TokenClass::ImageInput => self.image_input,
            TokenClass::ImageOutput => self.image_output,
            TokenClass::Image => self.image,
            TokenClass::WebSearch => self.web_search,
            TokenClass::VideoSecond => self.video_second,
            TokenClass::Request => self.request,
        }
    }

    /// Sets the rate for a class.
    pub fn set(&mut self, class: TokenClass, rate: Option<Decimal>) {
        let slot = match class {
            TokenClass::Input => &mut self.input,
            TokenClass::Output => &mut self.output,
            TokenClass::CacheRead => &mut self.cache_read,
            TokenClass::CacheWrite => &mut self.cache_write,
            TokenClass::CacheWrite1h => &mut self.cache_write_1h,
            TokenClass::Reasoning => &mut self.reasoning,
            TokenClass::AudioInput => &mut self.audio_input,
            TokenClass::AudioOutput => &mut self.audio_output,
            TokenClass::ImageInput => &mut self.image_input,
            TokenClass::ImageOutput => &mut self.image_output,
            TokenClass::Image => &mut self.image,
            TokenClass::WebSearch => &mut self.web_search,
            TokenClass::VideoSecond => &mut self.video_second,
            TokenClass::Request => &mut self.request,
        };
        *slot = rate;
    }

    /// The rate for a class with the standard set's gap-filling rules; zero when even
    /// the fallback is missing (an embedding model has no output rate).
    pub fn resolved(&self, class: TokenClass) -> Decimal {
        match (self.explicit(class), class.fallback()) {
            (Some(rate), _) => rate,
            (None, Some(next)) => self.resolved(next),
            (None, None) => Decimal::ZERO,
        }
    }

    /// Whether no rate is set at all.
    pub fn is_empty(&self) -> bool {
        TokenClass::ALL.iter().all(|c| self.explicit(*c).is_none())
    }

    fn rates(&self) -> impl Iterator<Item = (TokenClass, Decimal)> + '_ {
        TokenClass::ALL
            .into_iter()
            .filter_map(|c| self.explicit(c).map(|r| (c, r)))
    }
}

/// Rates above a prompt-size threshold (Gemini 2.5 Pro above 200k tokens, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongContext {
    /// Prompt tokens per request above which these rates apply.
    pub threshold: i64,
    /// The rates that apply above the threshold.
    #[serde(flatten)]
    pub rates: RateSet,
}

/// Everything needed to price an event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateCard {
    /// Standard-tier rates.
    pub standard: RateSet,
    /// Batch API rates (default: half of standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<RateSet>,
    /// Priority rates (default: standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<RateSet>,
    /// Flex rates (default: standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<RateSet>,
    /// Above-threshold rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_context: Option<LongContext>,
    /// Per-unit rates by pricing variant, keyed by the variant's canonical spelling
    /// ([`Variant`]); see the module documentation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, RateSet>,
}

/// Why a rate card was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RateCardError {
    /// Path of the offending rate, e.g. `batch.input`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Highest rate accepted, in USD per million tokens: ten times the dearest model ever
/// sold. A larger number is a unit mistake (per token vs per million).
pub const MAX_RATE: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

impl RateCard {
    /// Checks the card can price anything: a standard input rate (or, for a model
    /// billed only per generated image or second of video, that rate), rates between
    /// zero and [`MAX_RATE`], a positive threshold.
    pub fn validate(&self) -> Result<(), RateCardError> {
        if self.standard.input.is_none() && !self.bills_images_or_video() {
            return Err(RateCardError {
                field: "standard.input".into(),
                message: "a price needs at least a standard input rate (or, for a model billed only per image or per second of video, that rate)".into(),
            });
        }
        for (key, set) in &self.variants {
            let field = format!("variants.{key}");
            match Variant::parse(key) {
                Ok(v) if v.as_str() == key => {}
                Ok(v) => {
                    return Err(RateCardError {
                        field,
                        message: format!("write the variant as `{v}`"),
                    });
                }
                Err(message) => return Err(RateCardError { field, message }),
            }
            if set.is_empty() {
                return Err(RateCardError {
                    field,
                    message: "a variant needs at least one rate".into(),
                });
            }
            if let Some((class, _)) = set.rates().find(|(class, _)| !class.per_unit()) {
                return Err(RateCardError {
                    field: format!("{field}.{}", class.key()),
                    message: "a variant sets only per-unit rates (image, web_search, video_second, request)".into(),
                });
            }
        }
        for (name, set) in self.named_sets() {
            for (class, rate) in set.rates() {
                if rate.is_sign_negative() || rate > MAX_RATE {
                    return Err(RateCardError {
                        field: format!("{name}.{}", class.key()),
                        message: format!("rate {rate} is outside 0..={MAX_RATE} {}", class.unit()),
                    });
                }
            }
        }
        if let Some(lc) = &self.long_context
            && lc.threshold <= 0
        {
            return Err(RateCardError {
                field: "longContext.threshold".into(),
                message: "the threshold must be a positive number of tokens".into(),
            });
        }
        Ok(())
    }

    /// Every rate set of the card, named as its fields are: `standard`, `batch`,
    /// `priority`, `flex`, `longContext` (those it has) and `variants.<variant>`.
    pub fn named_sets(&self) -> Vec<(String, &RateSet)> {
        let tiers = [
            ("standard", Some(&self.standard)),
            ("batch", self.batch.as_ref()),
            ("priority", self.priority.as_ref()),
            ("flex", self.flex.as_ref()),
            ("longContext", self.long_context.as_ref().map(|l| &l.rates)),
        ];
        tiers
            .into_iter()
            .filter_map(|(name, set)| set.map(|s| (name.to_owned(), s)))
            .chain(
                self.variants
                    .iter()
                    .map(|(key, set)| (format!("variants.{key}"), set)),
            )
            .collect()
    }

    /// Whether the card bills generated images or seconds of video (standard rates or
    /// a variant's): a model billed only in those needs no token rate.
    pub fn bills_images_or_video(&self) -> bool {
        std::iter::once(&self.standard)
            .chain(self.variants.values())
            .any(|set| set.image.is_some() || set.video_second.is_some())
    }

    /// Whether the long-context rates apply to this event.
    pub fn is_long_context(&self, tokens: &TokenCounts, requests: i64) -> bool {
        match &self.long_context {
            Some(lc) => {
                i128::from(tokens.prompt_total())
                    > i128::from(lc.threshold) * i128::from(requests.max(1))
            }
            None => false,
        }
    }

    /// The set a tier and context read first: the long-context rates above the
    /// threshold (whatever the tier), else the tier's own set; `None` for standard.
    fn chosen(&self, tier: ServiceTier, long_context: bool) -> Option<&RateSet> {
        match (self.long_context.as_ref().filter(|_| long_context), tier) {
            (Some(lc), _) => Some(&lc.rates),
            (None, ServiceTier::Standard) => None,
            (None, ServiceTier::Batch) => self.batch.as_ref(),
            (None, ServiceTier::Priority) => self.priority.as_ref(),
            (None, ServiceTier::Flex) => self.flex.as_ref(),
        }
    }

    /// The per-million rate for one class of this event:
    /// 1. the rate the chosen set (long-context, or the tier's own) gives this class;
    /// 2. else the standard rate of this class (halved for batch);
    /// 3. else the rate of the class it falls back to *in the same tier and context*
    ///    (reasoning bills as that tier's output, a cache read as that tier's input).
    ///
    /// A variant's own rate for a per-unit class comes before all of these.
    pub fn rate(
        &self,
        class: TokenClass,
        tier: ServiceTier,
        long_context: bool,
        variant: Option<&Variant>,
    ) -> Decimal {
        if let Some(rate) = self.variant_rate(class, variant) {
            return rate;
        }
        let half = Decimal::new(5, 1);
        let batch = tier == ServiceTier::Batch;
        let lc = self.long_context.as_ref().filter(|_| long_context);
        let chosen = self.chosen(tier, long_context);
        // Above the threshold the tier's own set is not used; batch halves the token
        // rates (a per-unit fee, such as a web search, is not a token: batch keeps it
        // unless the batch set lists its own).
        let halve = batch && !class.per_unit();
        let scale = |rate: Decimal| {
            if halve && (lc.is_some() || chosen.is_none()) {
                rate * half
            } else {
                rate
            }
        };
        if let Some(rate) = chosen.and_then(|set| set.explicit(class)) {
            return scale(rate);
        }
        if let Some(rate) = self.standard.explicit(class) {
            return if halve { rate * half } else { rate };
        }
        match class.fallback() {
            Some(parent) => self.rate(parent, tier, long_context, None),
            None => Decimal::ZERO,
        }
    }

    /// The rate the event's variant lists for this class.
    fn variant_rate(&self, class: TokenClass, variant: Option<&Variant>) -> Option<Decimal> {
        variant
            .and_then(|v| self.variants.get(v.as_str()))
            .and_then(|set| set.explicit(class))
    }

    /// Whether some variant lists a rate for this class.
    fn varies(&self, class: TokenClass) -> bool {
        self.variants
            .values()
            .any(|set| set.explicit(class).is_some())
    }

    /// Whether the card bills this class of this event: by the variant's rate; for a
    /// class that varies, by the card's own rate only when the event names a variant
    /// (an unlisted one); otherwise by a rate of its own or its fallback. A class
    /// without a rate is billed (as nothing) only for requests.
    fn bills(
        &self,
        class: TokenClass,
        tier: ServiceTier,
        long_context: bool,
        variant: Option<&Variant>,
    ) -> bool {
        if self.variant_rate(class, variant).is_some() {
            return true;
        }
        if self.varies(class) {
            return variant.is_some() && self.has_rate(class, tier, long_context);
        }
        class == TokenClass::Request || self.has_rate(class, tier, long_context)
    }

    /// Whether the card gives this class a rate (its own or one it falls back to) on
    /// this tier and context.
    pub fn has_rate(&self, class: TokenClass, tier: ServiceTier, long_context: bool) -> bool {
        self.chosen(tier, long_context)
            .and_then(|set| set.explicit(class))
            .is_some()
            || self.standard.explicit(class).is_some()
            || class
                .fallback()
                .is_some_and(|parent| self.has_rate(parent, tier, long_context))
    }

    /// The first unit this event uses that the card has no rate for (audio, image
    /// output, images, web searches, video, or a fee that depends on a variant the
    /// event does not name): such an event is unpriced rather than priced without it.
    /// `None` when the card bills everything the event used.
    pub fn missing_rate(
        &self,
        tokens: &TokenCounts,
        requests: i64,
        tier: ServiceTier,
        variant: Option<&Variant>,
    ) -> Option<TokenClass> {
        let long = self.is_long_context(tokens, requests);
        TokenClass::ALL.into_iter().find(|class| {
            class.count(tokens, requests) > 0 && !self.bills(*class, tier, long, variant)
        })
    }

    /// The exact cost in USD before rounding. Exposed for property tests: this is the
    /// function that is additive and monotonic.
    pub fn exact_cost(
        &self,
        tokens: &TokenCounts,
        requests: i64,
        tier: ServiceTier,
        variant: Option<&Variant>,
    ) -> Decimal {
        let long = self.is_long_context(tokens, requests);
        let mut per_million = Decimal::ZERO;
        let mut per_unit = Decimal::ZERO;
        for class in TokenClass::ALL {
            let count = class.count(tokens, requests);
            if count == 0 {
                continue;
            }
            let amount = Decimal::from(count) * self.rate(class, tier, long, variant);
            if class.per_unit() {
                per_unit += amount;
            } else {
                per_million += amount;
            }
        }
        per_million / Decimal::from(1_000_000) + per_unit
    }

    /// The cost rounded to nano-dollars; `None` if it does not fit (a rate and count
    /// combination no real event reaches).
    pub fn cost(
        &self,
        tokens: &TokenCounts,
        requests: i64,
        tier: ServiceTier,
        variant: Option<&Variant>,
    ) -> Option<Usd> {
        Usd::from_decimal(self.exact_cost(tokens, requests, tier, variant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn variant(s: &str) -> Variant {
        Variant::parse(s).unwrap()
    }

    /// A card with a standard video rate, a 4k variant, and request fees by size.
    fn card() -> RateCard {
        let mut variants = BTreeMap::new();
        variants.insert(
            "4k".to_owned(),
            RateSet {
                video_second: Some(dec!(0.6)),
                ..RateSet::default()
            },
        );
        variants.insert(
            "low".to_owned(),
            RateSet {
                request: Some(dec!(0.005)),
                ..RateSet::default()
            },
        );
        RateCard {
            standard: RateSet {
                input: Some(dec!(1)),
                video_second: Some(dec!(0.4)),
                ..RateSet::default()
            },
            variants,
            ..RateCard::default()
        }
    }

    #[test]
    fn a_listed_variant_pays_its_rate_an_unlisted_one_the_standard_rate() {
        let card = card();
        card.validate().unwrap();
        let video = TokenCounts {
            video_seconds: 10,
            ..TokenCounts::default()
        };
        let at = |v: Option<&str>| {
            let v = v.map(variant);
            (
                card.missing_rate(&video, 1, ServiceTier::Standard, v.as_ref()),
                card.exact_cost(&video, 1, ServiceTier::Standard, v.as_ref()),
            )
        };
        // The 4k rate; 720p is not listed, so the card's own rate; and the request fee
        // varies too, so `low` is a variant of it and `4k`/`720p` leave it unknown.
        assert_eq!(at(Some("4k")).0, Some(TokenClass::Request));
        assert_eq!(at(Some("low")), (None, dec!(4.005)));
        // Without a variant nothing that varies is billed: unpriced.
        assert_eq!(at(None).0, Some(TokenClass::VideoSecond));
    }

    #[test]
    fn a_batch_call_does_not_halve_a_variant_fee() {
        let card = card();
        let tokens = TokenCounts {
            input: 1_000_000,
            ..TokenCounts::default()
        };
        let low = variant("low");
        assert_eq!(
            card.missing_rate(&tokens, 2, ServiceTier::Batch, Some(&low)),
            None
        );
        // Half of $1 for the tokens; two requests at $0.005 each, not halved.
        assert_eq!(
            card.exact_cost(&tokens, 2, ServiceTier::Batch, Some(&low)),
            dec!(0.51)
        );
    }

    #[test]
    fn variants_are_checked_by_name_and_unit() {
        let mut card = card();
        card.variants.insert(
            "HD".to_owned(),
            RateSet {
                image: Some(dec!(1)),
                ..RateSet::default()
            },
        );
        assert_eq!(card.validate().unwrap_err().field, "variants.HD");
        let mut card = self::card();
        card.variants.insert(
            "hd".to_owned(),
            RateSet {
                input: Some(dec!(1)),
                ..RateSet::default()
            },
        );
        assert_eq!(card.validate().unwrap_err().field, "variants.hd.input");
        let mut card = self::card();
        card.variants.insert("hd".to_owned(), RateSet::default());
        assert_eq!(card.validate().unwrap_err().field, "variants.hd");
    }
}
