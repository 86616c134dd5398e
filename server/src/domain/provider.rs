//! Provider names: normalised once at the edge so `OpenAI `, `openai` and `OPENAI` are
//! one provider everywhere (ingest, prices, analytics, plugins).

use std::fmt;

/// A normalised provider id: trimmed, lower case, known aliases folded
/// (`gemini` and `vertex_ai` are `google`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Provider(String);

/// Providers aispend knows by name. Any other non-empty name is accepted as-is: a team
/// may track a provider we have never heard of, it just has no built-in prices.
pub const KNOWN: &[&str] = &[
    "openai",
    "anthropic",
    "google",
    "groq",
    "mistral",
    "perplexity",
    "deepseek",
    "github-copilot",
    "xai",
    "cohere",
    "together",
    "fireworks",
    "azure",
    "bedrock",
    "openrouter",
];

const ALIASES: &[(&str, &str)] = &[
    ("gemini", "google"),
    ("google-ai", "google"),
    ("vertex", "google"),
    ("vertex_ai", "google"),
    ("vertex-ai", "google"),
    ("copilot", "github-copilot"),
    ("github_copilot", "github-copilot"),
    ("mistralai", "mistral"),
    ("mistral-ai", "mistral"),
    ("pplx", "perplexity"),
    ("x-ai", "xai"),
    ("together_ai", "together"),
    ("together-ai", "together"),
    ("togetherai", "together"),
    ("fireworks_ai", "fireworks"),
    ("fireworks-ai", "fireworks"),
    ("azure_openai", "azure"),
    ("azure-openai", "azure"),
    ("aws-bedrock", "bedrock"),
    ("amazon-bedrock", "bedrock"),
    ("bedrock_converse", "bedrock"),
    ("cohere_chat", "cohere"),
];

/// Longest provider name we accept; longer input is a client bug, not a provider.
pub const MAX_LEN: usize = 64;

impl Provider {
    /// Normalises a provider name; `None` when it is empty, too long, or has characters
    /// no provider id has.
    pub fn parse(raw: &str) -> Option<Provider> {
        let lower = raw.trim().to_ascii_lowercase();
        if lower.is_empty()
            || lower.len() > MAX_LEN
            || !lower
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return None;
        }
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map(|(_, canonical)| (*canonical).to_owned())
            .unwrap_or(lower);
        Some(Provider(canonical))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether aispend ships knowledge (prices, plugins) about this provider.
    pub fn is_known(&self) -> bool {
        KNOWN.contains(&self.0.as_str())
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits a provider prefix off a model id (`openai/gpt-4o` gives `openai` and
/// `gpt-4o`). Only a known provider (or alias) counts as a prefix, so model ids that
/// contain a slash (`meta-llama/llama-4-scout`) are left alone.
pub fn split_model_prefix(model: &str) -> Option<(Provider, &str)> {
    let (head, rest) = model.split_once('/')?;
    let provider = Provider::parse(head)?;
    if provider.is_known() && !rest.trim().is_empty() {
        Some((provider, rest))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_space_and_aliases() {
        assert_eq!(Provider::parse("  OpenAI ").unwrap().as_str(), "openai");
        assert_eq!(Provider::parse("Gemini").unwrap().as_str(), "google");
        assert_eq!(Provider::parse("acme-llm").unwrap().as_str(), "acme-llm");
        assert!(Provider::parse("   ").is_none());
        assert!(Provider::parse("open ai").is_none());
    }

    #[test]
    fn understands_a_known_provider_prefix_only() {
        let (p, m) = split_model_prefix("openai/gpt-4o").unwrap();
        assert_eq!((p.as_str(), m), ("openai", "gpt-4o"));
        assert!(split_model_prefix("meta-llama/llama-4-scout").is_none());
        assert!(split_model_prefix("openai/").is_none());
        let (p, m) = split_model_prefix("bedrock/anthropic.claude-3-haiku-20240307-v1:0").unwrap();
        assert_eq!(
            (p.as_str(), m),
            ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0")
        );
        let (p, m) = split_model_prefix("openrouter/anthropic/claude-sonnet-4.5").unwrap();
        assert_eq!(
            (p.as_str(), m),
            ("openrouter", "anthropic/claude-sonnet-4.5")
        );
        let (p, m) = split_model_prefix("vertex_ai/claude-sonnet-4-5@20250929").unwrap();
        assert_eq!((p.as_str(), m), ("google", "claude-sonnet-4-5@20250929"));
        let (p, m) =
            split_model_prefix("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo").unwrap();
        assert_eq!(
            (p.as_str(), m),
            ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
        );
    }
}
