//! Normalises a provider's raw `usage` object into aispend's token classes and billed
//! units.
//!
//! | shape | recognised by | input | cache read | cache write | output | reasoning |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | OpenAI chat completions | `prompt_tokens` | `prompt_tokens - cached_tokens - audio` | `prompt_tokens_details.cached_tokens` | - | `completion_tokens - audio` | `completion_tokens_details.reasoning_tokens` |
//! | OpenAI Responses / Realtime | `input_tokens` + `output_tokens_details`/`input_tokens_details`/`input_token_details`/`total_tokens` | `input_tokens - cached - cache_write - audio - image` | `input_tokens_details.cached_tokens` | `input_tokens_details.cache_write_tokens` | `output_tokens - audio - image` | `output_tokens_details.reasoning_tokens` |
//! | Anthropic messages | `input_tokens` + `cache_*` fields, or provider `anthropic` | `input_tokens` | `cache_read_input_tokens` | `cache_creation.ephemeral_5m/1h_input_tokens` (else `cache_creation_input_tokens` as 5m) | `output_tokens` | `output_tokens_details.thinking_tokens` |
//! | Gemini `usageMetadata` | `promptTokenCount` | `promptTokenCount - cachedContentTokenCount - audio - image + toolUsePromptTokenCount` | `cachedContentTokenCount` | - | `candidatesTokenCount - audio - image + thoughtsTokenCount` | `thoughtsTokenCount` |
//! | Perplexity | `prompt_tokens` + `cost` | `prompt_tokens + citation_tokens` | - | - | `completion_tokens + reasoning_tokens` | `reasoning_tokens` |
//!
//! Units beyond text tokens:
//!
//! | shape | audio in / out | image in / out | web searches |
//! | --- | --- | --- | --- |
//! | OpenAI chat | `prompt_tokens_details.audio_tokens` / `completion_tokens_details.audio_tokens` | - | - |
//! | OpenAI Responses / Realtime | `input_tokens_details.audio_tokens` (uncached) / `output_tokens_details.audio_tokens` | `input_tokens_details.image_tokens` (uncached) / `output_tokens_details.image_tokens` | - |
//! | Anthropic | - | - | `server_tool_use.web_search_requests` |
//! | Gemini | `promptTokensDetails` `AUDIO` (uncached) / `candidatesTokensDetails` `AUDIO` | `IMAGE` likewise | - |
//! | Perplexity | - | - | `num_search_queries` |
//!
//! Cached audio and image tokens stay cache reads (the `cached_tokens_details` /
//! `cacheTokensDetails` breakdown is subtracted from the audio and image counts, so no
//! token is billed twice). OpenAI's cache-write TTL breakdown is not modelled: every
//! written token is a (5-minute) cache write.
//!
//! Perplexity's `cost.total_cost` becomes the reported cost, which wins over our price.
//! Anthropic's `service_tier` (`standard`, `priority`, `batch`) becomes the event's
//! service tier; a tier aispend does not know is left unstated (standard) rather than
//! refusing the object. Perplexity's `search_context_size` becomes the event's pricing
//! variant: its per-request search fee depends on it. Fields of no class
//! (`inference_geo`, `speed`, Anthropic's `web_fetch_requests`, which are free, ...) are
//! ignored: the object is accepted as the SDK returns it.

use crate::domain::error::FieldError;
use crate::domain::price::variant::Variant;
use crate::domain::provider::Provider;
use crate::domain::tokens::{ServiceTier, TokenCounts};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::str::FromStr;

/// Token classes (and a cost, when the provider reports one) read from a raw object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The token classes.
    pub tokens: TokenCounts,
    /// The cost the provider itself reported.
    pub reported_cost: Option<Decimal>,
    /// The service tier the object states (Anthropic's `service_tier`).
    pub service_tier: Option<ServiceTier>,
    /// The pricing variant the object states (Perplexity's `search_context_size`).
    pub variant: Option<Variant>,
    /// Which shape was recognised, for diagnostics.
    pub shape: &'static str,
}

type Obj = Map<String, Value>;

fn err(message: impl Into<String>) -> FieldError {
    FieldError::new("usage", message)
}

/// A non-negative integer field; absent or null is zero.
fn count(obj: &Obj, path: &[&str]) -> Result<i64, FieldError> {
    let mut current = obj;
    for (i, key) in path.iter().enumerate() {
        match current.get(*key) {
            None | Some(Value::Null) => return Ok(0),
            Some(Value::Object(inner)) if i + 1 < path.len() => current = inner,
            Some(value) if i + 1 == path.len() => {
                return value.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                    err(format!(
                        "`{}` must be a non-negative integer",
                        path.join(".")
                    ))
                });
            }
            Some(_) => return Err(err(format!("`{}` must be an object", path[..=i].join(".")))),
        }
    }
    Ok(0)
}

fn minus(total: i64, part: i64, what: &str) -> Result<i64, FieldError> {
    total
        .checked_sub(part)
        .filter(|n| *n >= 0)
        .ok_or_else(|| err(format!("{what} is larger than the total it is part of")))
}

/// A count of `modality` in a Gemini `*TokensDetails` list (`[{modality, tokenCount}]`).
fn modality(u: &Obj, list: &str, modality: &str) -> Result<i64, FieldError> {
    let items = match u.get(list) {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(err(format!("`{list}` must be a list"))),
    };
    let mut total: i64 = 0;
    for item in items {
        let Value::Object(entry) = item else {
            return Err(err(format!("`{list}` must hold objects")));
        };
        if entry.get("modality").and_then(Value::as_str) == Some(modality) {
            total = total
                .checked_add(count(entry, &["tokenCount"])?)
                .ok_or_else(|| err(format!("`{list}` counts are too large")))?;
        }
    }
    Ok(total)
}

fn openai_chat(u: &Obj) -> Result<TokenCounts, FieldError> {
    let prompt = count(u, &["prompt_tokens"])?;
    let cached = count(u, &["prompt_tokens_details", "cached_tokens"])?;
    let audio_in = count(u, &["prompt_tokens_details", "audio_tokens"])?;
    let completion = count(u, &["completion_tokens"])?;
    let audio_out = count(u, &["completion_tokens_details", "audio_tokens"])?;
    let text_in = minus(prompt, cached, "`prompt_tokens_details.cached_tokens`")?;
    Ok(TokenCounts {
        input: minus(text_in, audio_in, "`prompt_tokens_details.audio_tokens`")?,
        cache_read: cached,
        output: minus(
            completion,
            audio_out,
            "`completion_tokens_details.audio_tokens`",
        )?,
        reasoning: count(u, &["completion_tokens_details", "reasoning_tokens"])?,
        audio_input: audio_in,
        audio_output: audio_out,
        ..Default::default()
    })
}

fn openai_responses(u: &Obj) -> Result<TokenCounts, FieldError> {
    // The Realtime API spells the details `input_token_details`.
    let details = if u.contains_key("input_tokens_details") {
        "input_tokens_details"
    } else {
        "input_token_details"
    };
    let out_details = if u.contains_key("output_tokens_details") {
        "output_tokens_details"
    } else {
        "output_token_details"
    };
    let input = count(u, &["input_tokens"])?;
    let cached = count(u, &[details, "cached_tokens"])?;
    let cache_write = count(u, &[details, "cache_write_tokens"])?;
    // Cached audio and image tokens are cache reads already.
    let uncached = |kind: &str| -> Result<i64, FieldError> {
        let all = count(u, &[details, kind])?;
        let in_cache = count(u, &[details, "cached_tokens_details", kind])?;
        minus(
            all,
            in_cache,
            &format!("`{details}.cached_tokens_details.{kind}`"),
        )
    };
    let audio_in = uncached("audio_tokens")?;
    let image_in = uncached("image_tokens")?;
    let output = count(u, &["output_tokens"])?;
    let audio_out = count(u, &[out_details, "audio_tokens"])?;
    let image_out = count(u, &[out_details, "image_tokens"])?;
    let mut text_in = minus(input, cached, &format!("`{details}.cached_tokens`"))?;
    text_in = minus(
        text_in,
        cache_write,
        &format!("`{details}.cache_write_tokens`"),
    )?;
    text_in = minus(text_in, audio_in, &format!("`{details}.audio_tokens`"))?;
    text_in = minus(text_in, image_in, &format!("`{details}.image_tokens`"))?;
    let text_out = minus(output, audio_out, &format!("`{out_details}.audio_tokens`"))?;
    Ok(TokenCounts {
        input: text_in,
        cache_read: cached,
        cache_write,
        output: minus(
            text_out,
            image_out,
            &format!("`{out_details}.image_tokens`"),
        )?,
        reasoning: count(u, &[out_details, "reasoning_tokens"])?,
        audio_input: audio_in,
        audio_output: audio_out,
        image_input: image_in,
        image_output: image_out,
        ..Default::default()
    })
}

fn anthropic(u: &Obj) -> Result<TokenCounts, FieldError> {
    let (write_5m, write_1h) = match u.get("cache_creation") {
        Some(Value::Object(_)) => (
            count(u, &["cache_creation", "ephemeral_5m_input_tokens"])?,
            count(u, &["cache_creation", "ephemeral_1h_input_tokens"])?,
        ),
        _ => (count(u, &["cache_creation_input_tokens"])?, 0),
    };
    Ok(TokenCounts {
        input: count(u, &["input_tokens"])?,
        cache_read: count(u, &["cache_read_input_tokens"])?,
        cache_write: write_5m,
        cache_write_1h: write_1h,
        output: count(u, &["output_tokens"])?,
        reasoning: count(u, &["output_tokens_details", "thinking_tokens"])?,
        web_searches: count(u, &["server_tool_use", "web_search_requests"])?,
        ..Default::default()
    })
}

/// Anthropic's `service_tier`, when it names a tier aispend knows.
fn anthropic_tier(u: &Obj) -> Option<ServiceTier> {
    u.get("service_tier")?.as_str()?.parse().ok()
}

fn gemini(u: &Obj) -> Result<TokenCounts, FieldError> {
    let prompt = count(u, &["promptTokenCount"])?;
    let cached = count(u, &["cachedContentTokenCount"])?;
    let tool_prompt = count(u, &["toolUsePromptTokenCount"])?;
    let candidates = count(u, &["candidatesTokenCount"])?;
    let thoughts = count(u, &["thoughtsTokenCount"])?;
    // Cached audio and image tokens are cache reads already.
    let uncached = |kind: &str| -> Result<i64, FieldError> {
        let all = modality(u, "promptTokensDetails", kind)?;
        let in_cache = modality(u, "cacheTokensDetails", kind)?;
        minus(all, in_cache, &format!("`cacheTokensDetails` {kind}"))
    };
    let audio_in = uncached("AUDIO")?;
    let image_in = uncached("IMAGE")?;
    let audio_out = modality(u, "candidatesTokensDetails", "AUDIO")?;
    let image_out = modality(u, "candidatesTokensDetails", "IMAGE")?;
    let mut text_in = minus(prompt, cached, "`cachedContentTokenCount`")?;
    text_in = minus(text_in, audio_in, "`promptTokensDetails` AUDIO")?;
    text_in = minus(text_in, image_in, "`promptTokensDetails` IMAGE")?;
    let text_out = minus(candidates, audio_out, "`candidatesTokensDetails` AUDIO")?;
    let text_out = minus(text_out, image_out, "`candidatesTokensDetails` IMAGE")?;
    Ok(TokenCounts {
        input: text_in
            .checked_add(tool_prompt)
            .ok_or_else(|| err("`toolUsePromptTokenCount` is too large"))?,
        cache_read: cached,
        output: text_out
            .checked_add(thoughts)
            .ok_or_else(|| err("`thoughtsTokenCount` is too large"))?,
        reasoning: thoughts,
        audio_input: audio_in,
        audio_output: audio_out,
        image_input: image_in,
        image_output: image_out,
        ..Default::default()
    })
}

fn perplexity(u: &Obj) -> Result<(TokenCounts, Option<Decimal>), FieldError> {
    let reasoning = count(u, &["reasoning_tokens"])?;
    let too_large = || err("token counts are too large");
    let tokens = TokenCounts {
        // Citation tokens (deep research) bill at the input rate.
        input: count(u, &["prompt_tokens"])?
            .checked_add(count(u, &["citation_tokens"])?)
            .ok_or_else(too_large)?,
        output: count(u, &["completion_tokens"])?
            .checked_add(reasoning)
            .ok_or_else(too_large)?,
        reasoning,
        web_searches: count(u, &["num_search_queries"])?,
        ..Default::default()
    };
    let cost = match u.get("cost") {
        Some(Value::Object(c)) => match c.get("total_cost") {
            Some(Value::Number(n)) => Some(
                Decimal::from_str(&n.to_string())
                    .or_else(|_| Decimal::from_scientific(&n.to_string()))
                    .map_err(|_| err("`cost.total_cost` is not a decimal number"))?,
            ),
            Some(Value::String(s)) => Some(
                Decimal::from_str(s.trim())
                    .map_err(|_| err("`cost.total_cost` is not a decimal number"))?,
            ),
            None | Some(Value::Null) => None,
            Some(_) => return Err(err("`cost.total_cost` must be a number")),
        },
        Some(Value::Number(n)) => Some(
            Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .map_err(|_| err("`cost` is not a decimal number"))?,
        ),
        _ => None,
    };
    Ok((tokens, cost))
}

/// Reads a raw usage object. `provider` disambiguates shapes that look alike
/// (Anthropic and the Responses API both use `input_tokens`).
pub fn normalize(provider: Option<&Provider>, raw: &Value) -> Result<Normalized, FieldError> {
    let Value::Object(outer) = raw else {
        return Err(err(
            "must be a JSON object (the provider's `usage` or `usageMetadata`)",
        ));
    };
    // Accept a whole response or wrapper too: {"usage": {...}} / {"usageMetadata": {...}}.
    let u = match (outer.get("usageMetadata"), outer.get("usage")) {
        (Some(Value::Object(inner)), _) | (None, Some(Value::Object(inner))) => inner,
        _ => outer,
    };
    let provider = provider.map(Provider::as_str);
    let has = |k: &str| u.contains_key(k);
    let mut service_tier = None;
    let mut variant = None;
    let (tokens, reported_cost, shape) = if has("promptTokenCount") || has("candidatesTokenCount") {
        (gemini(u)?, None, "gemini")
    } else if has("prompt_tokens") || has("completion_tokens") {
        if has("cost") || provider == Some("perplexity") {
            let (t, c) = perplexity(u)?;
            variant = search_context_size(u)?;
            (t, c, "perplexity")
        } else {
            (openai_chat(u)?, None, "openai-chat")
        }
    } else if has("input_tokens") || has("output_tokens") {
        let anthropic_like = has("cache_read_input_tokens")
            || has("cache_creation_input_tokens")
            || has("cache_creation")
            || provider == Some("anthropic");
        if anthropic_like {
            service_tier = anthropic_tier(u);
            (anthropic(u)?, None, "anthropic")
        } else {
            (openai_responses(u)?, None, "openai-responses")
        }
    } else {
        return Err(err(
            "unrecognised usage object: expected OpenAI (prompt_tokens / input_tokens), Anthropic (input_tokens, cache_*), Gemini (promptTokenCount) or Perplexity (usage.cost)",
        ));
    };
    if tokens.reasoning > tokens.output {
        return Err(err("reasoning tokens exceed output tokens"));
    }
    Ok(Normalized {
        tokens,
        reported_cost,
        service_tier,
        variant,
        shape,
    })
}

/// Perplexity's `search_context_size` (`low`, `medium`, `high`): the variant its
/// per-request search fee depends on.
fn search_context_size(u: &Obj) -> Result<Option<Variant>, FieldError> {
    match u.get("search_context_size") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Variant::parse(s)
            .map(Some)
            .map_err(|e| err(format!("`search_context_size`: {e}"))),
        Some(_) => Err(err("`search_context_size` must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tokens(provider: Option<&str>, raw: Value) -> TokenCounts {
        let p = provider.and_then(Provider::parse);
        normalize(p.as_ref(), &raw).unwrap().tokens
    }

    #[test]
    fn openai_chat_cached_prompt_is_not_billed_twice() {
        let t = tokens(
            None,
            json!({
                "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0}
            }),
        );
        assert_eq!(
            t,
            TokenCounts {
                input: 86,
                cache_read: 1920,
                output: 300,
                reasoning: 192,
                ..Default::default()
            }
        );
    }

    #[test]
    fn openai_responses_api() {
        let t = tokens(
            Some("openai"),
            json!({
                "input_tokens": 328, "input_tokens_details": {"cached_tokens": 128},
                "output_tokens": 52, "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 380
            }),
        );
        assert_eq!(
            t,
            TokenCounts {
                input: 200,
                cache_read: 128,
                output: 52,
                reasoning: 20,
                ..Default::default()
            }
        );
    }

    #[test]
    fn anthropic_splits_five_minute_and_one_hour_cache_writes() {
        let t = tokens(
            Some("anthropic"),
            json!({
                "input_tokens": 50, "cache_read_input_tokens": 10000, "cache_creation_input_tokens": 2500,
                "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 2000},
                "output_tokens": 400, "service_tier": "standard"
            }),
        );
        assert_eq!(
            t,
            TokenCounts {
                input: 50,
                cache_read: 10000,
                cache_write: 500,
                cache_write_1h: 2000,
                output: 400,
                ..Default::default()
            }
        );
    }

    /// The `usage` of an SDK `Message` dumped as it is (anthropic 2.x / @anthropic-ai/sdk
    /// 1.x): nulls, the thinking breakdown, server tools, geography, speed and tier.
    #[test]
    fn anthropic_sdk_usage_as_dumped_keeps_thinking_and_the_batch_tier() {
        let n = normalize(
            None,
            &json!({
                "cache_creation": null, "cache_creation_input_tokens": null,
                "cache_read_input_tokens": 4000, "inference_geo": "global",
                "input_tokens": 900, "output_tokens": 600,
                "output_tokens_details": {"thinking_tokens": 450},
                "server_tool_use": {"web_fetch_requests": 0, "web_search_requests": 1},
                "service_tier": "batch", "speed": "standard"
            }),
        )
        .unwrap();
        assert_eq!(n.shape, "anthropic");
        assert_eq!(n.service_tier, Some(ServiceTier::Batch));
        assert_eq!(
            n.tokens,
            TokenCounts {
                input: 900,
                cache_read: 4000,
                output: 600,
                reasoning: 450,
                web_searches: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn an_unknown_anthropic_tier_is_left_unstated_and_thinking_cannot_exceed_output() {
        let n = normalize(
            Some(&Provider::parse("anthropic").unwrap()),
            &json!({"input_tokens": 1, "output_tokens": 2, "service_tier": "someday"}),
        )
        .unwrap();
        assert_eq!(n.service_tier, None);
        assert!(
            normalize(
                None,
                &json!({"input_tokens": 1, "cache_read_input_tokens": 0, "output_tokens": 2,
                        "output_tokens_details": {"thinking_tokens": 3}})
            )
            .is_err()
        );
    }

    /// OpenAI's current usage objects carry cache-write counts (with a TTL breakdown)
    /// inside the input details: the written tokens are cache writes, not input.
    #[test]
    fn openai_usage_with_cache_write_details_is_accepted() {
        let t = tokens(
            Some("openai"),
            json!({
                "input_tokens": 1328,
                "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 300,
                    "cache_write_tokens_details": {"ttl_30m_tokens": 300, "ttl_12h_tokens": 0}},
                "output_tokens": 452, "output_tokens_details": {"reasoning_tokens": 384},
                "total_tokens": 1780
            }),
        );
        assert_eq!((t.input, t.cache_read, t.cache_write), (4, 1024, 300));
    }

    #[test]
    fn anthropic_without_the_cache_creation_object_bills_five_minute_writes() {
        let t = tokens(
            None,
            json!({"input_tokens": 10, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 0, "output_tokens": 5}),
        );
        assert_eq!((t.cache_write, t.cache_write_1h), (300, 0));
    }

    #[test]
    fn gemini_thoughts_are_output_and_cached_content_is_not_input() {
        let t = tokens(
            Some("google"),
            json!({"usageMetadata": {
                "promptTokenCount": 1200, "cachedContentTokenCount": 1000,
                "candidatesTokenCount": 80, "thoughtsTokenCount": 420, "totalTokenCount": 1700
            }}),
        );
        assert_eq!(
            t,
            TokenCounts {
                input: 200,
                cache_read: 1000,
                output: 500,
                reasoning: 420,
                ..Default::default()
            }
        );
    }

    #[test]
    fn perplexity_reports_its_own_cost() {
        let n = normalize(None, &json!({
            "prompt_tokens": 12, "completion_tokens": 300, "total_tokens": 312, "search_context_size": "low",
            "cost": {"input_tokens_cost": 0.0, "output_tokens_cost": 0.0003, "request_cost": 0.005, "total_cost": 0.0053}
        })).unwrap();
        assert_eq!(n.reported_cost, Some(Decimal::from_str("0.0053").unwrap()));
        assert_eq!((n.tokens.input, n.tokens.output), (12, 300));
    }

    /// gpt-4o-audio-preview through chat completions: audio in the prompt and the
    /// answer is counted apart from text.
    #[test]
    fn openai_chat_audio_is_its_own_unit() {
        let t = tokens(
            Some("openai"),
            json!({
                "prompt_tokens": 1047, "completion_tokens": 412, "total_tokens": 1459,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 1000},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 346,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
            }),
        );
        assert_eq!(
            t,
            TokenCounts {
                input: 47,
                output: 66,
                audio_input: 1000,
                audio_output: 346,
                ..Default::default()
            }
        );
    }

    /// A Realtime `response.done` usage: `input_token_details` (singular), cached audio
    /// stays a cache read and is not billed again as audio.
    #[test]
    fn openai_realtime_cached_audio_is_a_cache_read_once() {
        let t = tokens(
            Some("openai"),
            json!({
                "total_tokens": 1900, "input_tokens": 1500, "output_tokens": 400,
                "input_token_details": {"text_tokens": 300, "audio_tokens": 1200, "image_tokens": 0,
                    "cached_tokens": 640,
                    "cached_tokens_details": {"text_tokens": 128, "audio_tokens": 512}},
                "output_token_details": {"text_tokens": 100, "audio_tokens": 300}
            }),
        );
        assert_eq!(
            t,
            TokenCounts {
                input: 172,
                cache_read: 640,
                output: 100,
                audio_input: 688,
                audio_output: 300,
                ..Default::default()
            }
        );
        assert_eq!(t.prompt_total(), 1500);
    }

    /// gpt-image-1 through the Responses shape: image tokens in and out.
    #[test]
    fn openai_image_tokens_are_their_own_unit() {
        let t = tokens(
            Some("openai"),
            json!({
                "input_tokens": 350, "input_tokens_details": {"text_tokens": 50, "image_tokens": 300},
                "output_tokens": 4160, "output_tokens_details": {"image_tokens": 4160},
                "total_tokens": 4510
            }),
        );
        assert_eq!(
            (t.input, t.image_input, t.output, t.image_output),
            (50, 300, 0, 4160)
        );
    }

    #[test]
    fn gemini_modalities_split_audio_and_image() {
        let t = tokens(
            Some("google"),
            json!({"usageMetadata": {
                "promptTokenCount": 2000, "cachedContentTokenCount": 500,
                "candidatesTokenCount": 1390, "thoughtsTokenCount": 10,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 200},
                    {"modality": "AUDIO", "tokenCount": 1500}, {"modality": "IMAGE", "tokenCount": 300}],
                "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 500}],
                "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 100},
                    {"modality": "IMAGE", "tokenCount": 1290}]
            }}),
        );
        assert_eq!(
            t,
            TokenCounts {
                input: 200,
                cache_read: 500,
                output: 110,
                reasoning: 10,
                audio_input: 1000,
                image_input: 300,
                image_output: 1290,
                ..Default::default()
            }
        );
        assert!(
            normalize(
                None,
                &json!({"promptTokenCount": 5, "promptTokensDetails": {"modality": "AUDIO"}})
            )
            .is_err()
        );
    }

    #[test]
    fn perplexity_deep_research_bills_citations_and_searches() {
        let n = normalize(
            Some(&Provider::parse("perplexity").unwrap()),
            &json!({"prompt_tokens": 20, "completion_tokens": 3000, "citation_tokens": 9000,
                    "num_search_queries": 18, "reasoning_tokens": 70000, "total_tokens": 82020}),
        )
        .unwrap();
        assert_eq!(n.reported_cost, None);
        assert_eq!(
            (
                n.tokens.input,
                n.tokens.output,
                n.tokens.reasoning,
                n.tokens.web_searches
            ),
            (9020, 73000, 70000, 18)
        );
    }

    #[test]
    fn audio_larger_than_its_total_is_refused() {
        assert!(
            normalize(
                None,
                &json!({"prompt_tokens": 10, "prompt_tokens_details": {"audio_tokens": 11}})
            )
            .is_err()
        );
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(normalize(None, &json!({"foo": 1})).is_err());
        assert!(normalize(None, &json!([1, 2])).is_err());
        assert!(normalize(None, &json!({"prompt_tokens": -5})).is_err());
        assert!(
            normalize(
                None,
                &json!({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 20}})
            )
            .is_err()
        );
        assert!(normalize(None, &json!({"prompt_tokens": "ten"})).is_err());
    }
}
