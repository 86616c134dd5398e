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

use crate::domain::money::Usd;
use crate::domain::tokens::{ServiceTier, TokenCounts};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A token class, as rates are looked up.
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
}

impl TokenClass {
    /// Every class in a stable order.
    pub const ALL: [TokenClass; 6] = [
        TokenClass::Input,
        TokenClass::Output,
        TokenClass::CacheRead,
        TokenClass::CacheWrite,
        TokenClass::CacheWrite1h,
        TokenClass::Reasoning,
    ];

    /// The class whose rate applies when this one has none: cache reads and writes
    /// bill as input, 1-hour writes as 5-minute writes, reasoning as output.
    pub fn fallback(self) -> Option<TokenClass> {
        match self {
            TokenClass::Input | TokenClass::Output => None,
            TokenClass::CacheRead | TokenClass::CacheWrite => Some(TokenClass::Input),
            TokenClass::CacheWrite1h => Some(TokenClass::CacheWrite),
            TokenClass::Reasoning => Some(TokenClass::Output),
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
        }
    }
}

/// USD per one million tokens for each class; a missing rate falls back as described
/// in the module documentation.
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
    /// Checks the card can price anything: a standard input rate, rates between zero
    /// and [`MAX_RATE`], a positive threshold.
    pub fn validate(&self) -> Result<(), RateCardError> {
        if self.standard.input.is_none() {
            return Err(RateCardError {
                field: "standard.input".into(),
                message: "a price needs at least a standard input rate".into(),
            });
        }
        let sets = [
            ("standard", Some(&self.standard)),
            ("batch", self.batch.as_ref()),
            ("priority", self.priority.as_ref()),
            ("flex", self.flex.as_ref()),
            ("longContext", self.long_context.as_ref().map(|l| &l.rates)),
        ];
        for (name, set) in sets {
            for (class, rate) in set.into_iter().flat_map(RateSet::rates) {
                if rate.is_sign_negative() || rate > MAX_RATE {
                    return Err(RateCardError {
                        field: format!("{name}.{}", class.key()),
                        message: format!(
                            "rate {rate} is outside 0..={MAX_RATE} USD per million tokens"
                        ),
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

    /// The per-million rate for one class of this event:
    /// 1. the rate the chosen set (long-context, or the tier's own) gives this class;
    /// 2. else the standard rate of this class (halved for batch);
    /// 3. else the rate of the class it falls back to *in the same tier and context*
    ///    (reasoning bills as that tier's output, a cache read as that tier's input).
    pub fn rate(&self, class: TokenClass, tier: ServiceTier, long_context: bool) -> Decimal {
        let half = Decimal::new(5, 1);
        let batch = tier == ServiceTier::Batch;
        let lc = self.long_context.as_ref().filter(|_| long_context);
        let chosen = match (lc, tier) {
            (Some(lc), _) => Some(&lc.rates),
            (None, ServiceTier::Standard) => None,
            (None, ServiceTier::Batch) => self.batch.as_ref(),
            (None, ServiceTier::Priority) => self.priority.as_ref(),
            (None, ServiceTier::Flex) => self.flex.as_ref(),
        };
        // Above the threshold the tier's own set is not used; batch halves the rates.
        let scale = |rate: Decimal| {
            if batch && (lc.is_some() || chosen.is_none()) {
                rate * half
            } else {
                rate
            }
        };
        if let Some(rate) = chosen.and_then(|set| set.explicit(class)) {
            return scale(rate);
        }
        if let Some(rate) = self.standard.explicit(class) {
            return if batch { rate * half } else { rate };
        }
        match class.fallback() {
            Some(parent) => self.rate(parent, tier, long_context),
            None => Decimal::ZERO,
        }
    }

    /// The exact cost in USD before rounding. Exposed for property tests: this is the
    /// function that is additive and monotonic.
    pub fn exact_cost(&self, tokens: &TokenCounts, requests: i64, tier: ServiceTier) -> Decimal {
        let long = self.is_long_context(tokens, requests);
        let rate = |class| self.rate(class, tier, long);
        let billed_output = tokens.output - tokens.reasoning;
        let per_million = Decimal::from(tokens.input) * rate(TokenClass::Input)
            + Decimal::from(billed_output) * rate(TokenClass::Output)
            + Decimal::from(tokens.reasoning) * rate(TokenClass::Reasoning)
            + Decimal::from(tokens.cache_read) * rate(TokenClass::CacheRead)
            + Decimal::from(tokens.cache_write) * rate(TokenClass::CacheWrite)
            + Decimal::from(tokens.cache_write_1h) * rate(TokenClass::CacheWrite1h);
        per_million / Decimal::from(1_000_000)
    }

    /// The cost rounded to nano-dollars; `None` if it does not fit (a rate and count
    /// combination no real event reaches).
    pub fn cost(&self, tokens: &TokenCounts, requests: i64, tier: ServiceTier) -> Option<Usd> {
        Usd::from_decimal(self.exact_cost(tokens, requests, tier))
    }
}
