//! Token classes and service tiers: the vocabulary every price, event and provider
//! report shares.

use std::fmt;
use std::str::FromStr;

/// The largest count accepted for any token class or request count. Anything larger is
/// a client bug (a length in bytes, a timestamp), not usage.
pub const MAX_COUNT: i64 = 1_000_000_000_000;

/// Token counts of one usage event, split into the classes providers bill separately.
///
/// `input` excludes cache reads and writes; `output` includes reasoning; `reasoning`
/// is the reasoning part of `output` (informational unless a price has its own
/// reasoning rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TokenCounts {
    /// Input billed at the base rate.
    pub input: i64,
    /// Output, reasoning included.
    pub output: i64,
    /// Input read from the prompt cache.
    pub cache_read: i64,
    /// Input written to a 5-minute prompt cache.
    pub cache_write: i64,
    /// Input written to a 1-hour prompt cache.
    pub cache_write_1h: i64,
    /// The reasoning part of `output`.
    pub reasoning: i64,
}

impl TokenCounts {
    /// Every input-side token: what a long-context threshold is compared against.
    pub fn prompt_total(&self) -> i64 {
        self.input + self.cache_read + self.cache_write + self.cache_write_1h
    }

    /// All tokens, counting reasoning once (it is part of output).
    pub fn total(&self) -> i64 {
        self.prompt_total() + self.output
    }

    /// Field-wise sum, saturating (sums are bounded by [`MAX_COUNT`] per event anyway).
    pub fn saturating_add(&self, o: &TokenCounts) -> TokenCounts {
        TokenCounts {
            input: self.input.saturating_add(o.input),
            output: self.output.saturating_add(o.output),
            cache_read: self.cache_read.saturating_add(o.cache_read),
            cache_write: self.cache_write.saturating_add(o.cache_write),
            cache_write_1h: self.cache_write_1h.saturating_add(o.cache_write_1h),
            reasoning: self.reasoning.saturating_add(o.reasoning),
        }
    }

    /// Named fields in API order, for validation messages and generic code.
    pub fn fields(&self) -> [(&'static str, i64); 6] {
        [
            ("inputTokens", self.input),
            ("outputTokens", self.output),
            ("cacheReadTokens", self.cache_read),
            ("cacheWriteTokens", self.cache_write),
            ("cacheWrite1hTokens", self.cache_write_1h),
            ("reasoningTokens", self.reasoning),
        ]
    }
}

/// The service tier a request ran on; each may have its own rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServiceTier {
    /// The default tier.
    #[default]
    Standard,
    /// Asynchronous batch API (half price unless a price says otherwise).
    Batch,
    /// Priority processing (OpenAI priority, Anthropic priority tier).
    Priority,
    /// OpenAI flex processing.
    Flex,
}

impl ServiceTier {
    /// Every tier, in a stable order.
    pub const ALL: [ServiceTier; 4] = [
        ServiceTier::Standard,
        ServiceTier::Batch,
        ServiceTier::Priority,
        ServiceTier::Flex,
    ];

    /// The stored (and REST) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Standard => "standard",
            ServiceTier::Batch => "batch",
            ServiceTier::Priority => "priority",
            ServiceTier::Flex => "flex",
        }
    }
}

impl fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceTier {
    type Err = String;
    /// Accepts the stored spelling in any case, and the names providers use
    /// (`default`, `auto` and `on_demand` are standard; `scale` is priority).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" | "default" | "auto" | "on_demand" | "on-demand" => Ok(Self::Standard),
            "batch" => Ok(Self::Batch),
            "priority" | "scale" => Ok(Self::Priority),
            "flex" => Ok(Self::Flex),
            other => Err(format!(
                "unknown service tier `{other}`; expected standard, batch, priority or flex"
            )),
        }
    }
}
