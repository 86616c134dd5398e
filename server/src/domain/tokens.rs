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
pub struct TokenCounts<N = i64> {
    /// Input billed at the base rate.
    pub input: N,
    /// Output, reasoning included.
    pub output: N,
    /// Input read from the prompt cache.
    pub cache_read: N,
    /// Input written to a 5-minute prompt cache.
    pub cache_write: N,
    /// Input written to a 1-hour prompt cache.
    pub cache_write_1h: N,
    /// The reasoning part of `output`.
    pub reasoning: N,
    /// Audio input tokens (not part of `input`).
    pub audio_input: N,
    /// Audio output tokens (not part of `output`).
    pub audio_output: N,
    /// Image input tokens (not part of `input`).
    pub image_input: N,
    /// Image output tokens (not part of `output`).
    pub image_output: N,
    /// Images generated, billed per image.
    pub images: N,
    /// Web-search calls, billed per call.
    pub web_searches: N,
    /// Seconds of video generated, billed per second.
    pub video_seconds: N,
}

/// Sums of token counts over any number of events.
pub type TokenSums = TokenCounts<i128>;

impl<N: Copy> TokenCounts<N> {
    /// Every count passed through `f`.
    pub fn map<M>(&self, f: impl Fn(N) -> M) -> TokenCounts<M> {
        TokenCounts {
            input: f(self.input),
            output: f(self.output),
            cache_read: f(self.cache_read),
            cache_write: f(self.cache_write),
            cache_write_1h: f(self.cache_write_1h),
            reasoning: f(self.reasoning),
            audio_input: f(self.audio_input),
            audio_output: f(self.audio_output),
            image_input: f(self.image_input),
            image_output: f(self.image_output),
            images: f(self.images),
            web_searches: f(self.web_searches),
            video_seconds: f(self.video_seconds),
        }
    }

    /// Every count passed through `f`, `None` when one of them gives `None`.
    pub fn try_map<M>(&self, f: impl Fn(N) -> Option<M>) -> Option<TokenCounts<M>> {
        Some(TokenCounts {
            input: f(self.input)?,
            output: f(self.output)?,
            cache_read: f(self.cache_read)?,
            cache_write: f(self.cache_write)?,
            cache_write_1h: f(self.cache_write_1h)?,
            reasoning: f(self.reasoning)?,
            audio_input: f(self.audio_input)?,
            audio_output: f(self.audio_output)?,
            image_input: f(self.image_input)?,
            image_output: f(self.image_output)?,
            images: f(self.images)?,
            web_searches: f(self.web_searches)?,
            video_seconds: f(self.video_seconds)?,
        })
    }

    /// Field-wise `f` of two counts.
    pub fn zip_with(&self, o: &TokenCounts<N>, f: impl Fn(N, N) -> N) -> TokenCounts<N> {
        TokenCounts {
            input: f(self.input, o.input),
            output: f(self.output, o.output),
            cache_read: f(self.cache_read, o.cache_read),
            cache_write: f(self.cache_write, o.cache_write),
            cache_write_1h: f(self.cache_write_1h, o.cache_write_1h),
            reasoning: f(self.reasoning, o.reasoning),
            audio_input: f(self.audio_input, o.audio_input),
            audio_output: f(self.audio_output, o.audio_output),
            image_input: f(self.image_input, o.image_input),
            image_output: f(self.image_output, o.image_output),
            images: f(self.images, o.images),
            web_searches: f(self.web_searches, o.web_searches),
            video_seconds: f(self.video_seconds, o.video_seconds),
        }
    }
}

impl<N: Copy + std::ops::Add<Output = N>> TokenCounts<N> {
    /// Every input-side token: what a long-context threshold is compared against.
    pub fn prompt_total(&self) -> N {
        self.input
            + self.cache_read
            + self.cache_write
            + self.cache_write_1h
            + self.audio_input
            + self.image_input
    }

    /// All tokens, counting reasoning once (it is part of output). Images, searches
    /// and video seconds are not tokens.
    pub fn total(&self) -> N {
        self.prompt_total() + self.output + self.audio_output + self.image_output
    }
}

impl<N: Copy + std::ops::Neg<Output = N>> TokenCounts<N> {
    /// Every count negated (a delta that takes an event back out, or a piece to
    /// subtract).
    pub fn negated(&self) -> TokenCounts<N> {
        self.map(|n| -n)
    }
}

impl TokenSums {
    /// Field-wise sum. Each count read from the ledger is below 10^28 (see
    /// `money::Wide`), so adding a handful of them stays far inside `i128`; the
    /// addition saturates all the same.
    pub fn add(&self, o: &TokenSums) -> TokenSums {
        self.zip_with(o, i128::saturating_add)
    }

    /// The counts of one event's size, `None` when one is beyond an `i64`.
    pub fn narrow(&self) -> Option<TokenCounts> {
        self.try_map(|n| i64::try_from(n).ok())
    }
}

impl TokenCounts {
    /// The counts as sums.
    pub fn wide(&self) -> TokenSums {
        self.map(i128::from)
    }

    /// Field-wise sum, saturating (sums are bounded by [`MAX_COUNT`] per event anyway).
    pub fn saturating_add(&self, o: &TokenCounts) -> TokenCounts {
        self.zip_with(o, i64::saturating_add)
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
