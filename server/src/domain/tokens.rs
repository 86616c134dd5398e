//! Token classes and service tiers: the vocabulary every price, event and provider
//! report shares.

use std::fmt;
use std::str::FromStr;

/// The largest count accepted for any token class or request count. Anything larger is
/// a client bug (a length in bytes, a timestamp), not usage.
pub const MAX_COUNT: i64 = 1_000_000_000_000;

/// Token counts (and the other billed units) of one usage event, split into the
/// classes providers bill separately.
///
/// `input` excludes cache reads and writes and audio and image input; `output`
/// includes reasoning and excludes audio and image output; `reasoning` is the
/// reasoning part of `output` (informational unless a price has its own reasoning
/// rate). The units beyond text tokens (audio and image tokens, generated images,
/// web-search calls, generated video seconds) are priced only by a rate of their own:
/// an event that has one and a price without its rate is unpriced, never priced as
/// text (image input is the exception: it bills as input unless a rate says otherwise,
/// as every provider that lists it does).
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
    /// Audio input tokens (not part of `input`).
    pub audio_input: i64,
    /// Audio output tokens (not part of `output`).
    pub audio_output: i64,
    /// Image input tokens (not part of `input`).
    pub image_input: i64,
    /// Image output tokens (not part of `output`).
    pub image_output: i64,
    /// Images generated, billed per image.
    pub images: i64,
    /// Web-search calls, billed per call.
    pub web_searches: i64,
    /// Seconds of video generated, billed per second.
    pub video_seconds: i64,
}

impl TokenCounts {
    /// Every input-side token: what a long-context threshold is compared against.
    pub fn prompt_total(&self) -> i64 {
        self.input
            + self.cache_read
            + self.cache_write
            + self.cache_write_1h
            + self.audio_input
            + self.image_input
    }

    /// All tokens, counting reasoning once (it is part of output). Images, searches
    /// and video seconds are not tokens.
    pub fn total(&self) -> i64 {
        self.prompt_total() + self.output + self.audio_output + self.image_output
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
            audio_input: self.audio_input.saturating_add(o.audio_input),
            audio_output: self.audio_output.saturating_add(o.audio_output),
            image_input: self.image_input.saturating_add(o.image_input),
            image_output: self.image_output.saturating_add(o.image_output),
            images: self.images.saturating_add(o.images),
            web_searches: self.web_searches.saturating_add(o.web_searches),
            video_seconds: self.video_seconds.saturating_add(o.video_seconds),
        }
    }

    /// Every count negated (a delta that takes this event back out).
    pub fn negated(&self) -> TokenCounts {
        TokenCounts {
            input: -self.input,
            output: -self.output,
            cache_read: -self.cache_read,
            cache_write: -self.cache_write,
            cache_write_1h: -self.cache_write_1h,
            reasoning: -self.reasoning,
            audio_input: -self.audio_input,
            audio_output: -self.audio_output,
            image_input: -self.image_input,
            image_output: -self.image_output,
            images: -self.images,
            web_searches: -self.web_searches,
            video_seconds: -self.video_seconds,
        }
    }

    /// Named fields in API order, for validation messages and generic code.
    pub fn fields(&self) -> [(&'static str, i64); 13] {
        [
            ("inputTokens", self.input),
            ("outputTokens", self.output),
            ("cacheReadTokens", self.cache_read),
            ("cacheWriteTokens", self.cache_write),
            ("cacheWrite1hTokens", self.cache_write_1h),
            ("reasoningTokens", self.reasoning),
            ("audioInputTokens", self.audio_input),
            ("audioOutputTokens", self.audio_output),
            ("imageInputTokens", self.image_input),
            ("imageOutputTokens", self.image_output),
            ("imagesGenerated", self.images),
            ("webSearchCalls", self.web_searches),
            ("videoSeconds", self.video_seconds),
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
