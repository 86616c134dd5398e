//! Model-id normalisation shared by pricing and reconciliation: the same rules decide
//! which price an event gets and which provider-reported model it is compared with.

/// Lower-cases and trims a model id for matching (stored ids keep their case).
pub fn match_key(model: &str) -> String {
    model.trim().to_ascii_lowercase()
}

/// Removes one date or version suffix, if the id ends in one:
/// `@20250929`, `-2024-08-06`, `-20241022`, `-0613`, `-002`, `-05-20`, `-v2:0`,
/// `-latest`, `-preview`, `-exp`.
pub fn strip_one_suffix(model: &str) -> Option<&str> {
    if let Some((head, _)) = model.rsplit_once('@')
        && !head.is_empty()
    {
        return Some(head);
    }
    let (head, tail) = model.rsplit_once('-')?;
    if head.is_empty() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // `-2024-08-06`: strip all three parts at once.
    if tail.len() == 2 && digits(tail) {
        if let Some((head2, mm)) = head.rsplit_once('-')
            && mm.len() == 2
            && digits(mm)
        {
            if let Some((head3, yyyy)) = head2.rsplit_once('-')
                && yyyy.len() == 4
                && digits(yyyy)
                && !head3.is_empty()
            {
                return Some(head3);
            }
            // `-05-20` (a preview date without the year)
            if !head2.is_empty() {
                return Some(head2);
            }
        }
        return None;
    }
    let is_version = |s: &str| {
        s.strip_prefix('v').is_some_and(|rest| {
            let rest = rest.split(':').next().unwrap_or("");
            digits(rest)
        })
    };
    let removable = (digits(tail) && matches!(tail.len(), 3 | 4 | 8))
        || is_version(tail)
        || matches!(tail, "latest" | "preview" | "exp" | "experimental");
    removable.then_some(head)
}

/// Words that, right after a known model id, name a different model: `gpt-4o-mini`
/// is not `gpt-4o`, `gpt-4-32k` is not `gpt-4`. A prefix match never crosses them.
const VARIANT_WORDS: &[&str] = &[
    "mini",
    "nano",
    "pro",
    "max",
    "plus",
    "ultra",
    "lite",
    "flash",
    "turbo",
    "instruct",
    "audio",
    "realtime",
    "search",
    "transcribe",
    "tts",
    "vision",
    "image",
    "codex",
    "deep",
    "research",
    "large",
    "medium",
    "small",
    "tiny",
    "opus",
    "sonnet",
    "haiku",
    "embedding",
    "embed",
    "moderation",
    "thinking",
    "reasoning",
    "reasoner",
    "high",
    "low",
    "fast",
    "16k",
    "32k",
    "8k",
    "128k",
    "1m",
    "oss",
    "vl",
    "coder",
    "chat",
    "distill",
    "huge",
    "giant",
    "xl",
    "xxl",
    "online",
    "omni",
];

/// Characters that separate the parts of a model id.
fn is_boundary(c: char) -> bool {
    matches!(c, '-' | '_' | ':' | '@' | '/')
}

/// Whether `model` may be priced as `prefix` by the longest-prefix rule: `prefix` must
/// end at a boundary and the next part must not be a variant word, a short number
/// (`llama-3` is not `llama-3-1`) or a parameter size (`8b`).
pub fn is_safe_prefix(model: &str, prefix: &str) -> bool {
    let Some(rest) = model.strip_prefix(prefix) else {
        return false;
    };
    let mut chars = rest.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !is_boundary(first) {
        return false;
    }
    let next = chars.as_str().split(is_boundary).next().unwrap_or_default();
    if next.is_empty() || VARIANT_WORDS.contains(&next) {
        return false;
    }
    let numeric = next.bytes().all(|b| b.is_ascii_digit());
    if numeric && next.len() <= 3 {
        return false;
    }
    let size = next
        .strip_suffix(['b', 'm', 'k'])
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    !size
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_all(model: &str) -> Vec<&str> {
        let mut out = vec![];
        let mut cur = model;
        while let Some(next) = strip_one_suffix(cur) {
            out.push(next);
            cur = next;
        }
        out
    }

    #[test]
    fn strips_dates_and_versions() {
        assert_eq!(strip_all("gpt-4o-2024-08-06"), vec!["gpt-4o"]);
        assert_eq!(
            strip_all("claude-3-5-sonnet-20241022"),
            vec!["claude-3-5-sonnet"]
        );
        assert_eq!(
            strip_all("claude-sonnet-4-5@20250929"),
            vec!["claude-sonnet-4-5"]
        );
        assert_eq!(strip_all("gemini-1.5-pro-002"), vec!["gemini-1.5-pro"]);
        assert_eq!(strip_all("gpt-4-0613"), vec!["gpt-4"]);
        assert_eq!(
            strip_all("gemini-2.5-flash-preview-05-20"),
            vec!["gemini-2.5-flash-preview", "gemini-2.5-flash"]
        );
        assert_eq!(
            strip_all("claude-3-5-sonnet-20241022-v2:0"),
            vec!["claude-3-5-sonnet-20241022", "claude-3-5-sonnet"]
        );
        assert_eq!(strip_all("claude-3-opus-latest"), vec!["claude-3-opus"]);
    }

    #[test]
    fn keeps_ids_that_end_in_a_family_name() {
        assert!(strip_all("gpt-4o-mini").is_empty());
        assert!(strip_all("o3").is_empty());
        assert!(strip_all("gpt-4-32k").is_empty());
        assert!(strip_all("llama-3.3-70b-versatile").is_empty());
    }

    #[test]
    fn a_prefix_never_crosses_into_another_family() {
        assert!(!is_safe_prefix("gpt-4o-mini-2024-07-18", "gpt-4o"));
        assert!(!is_safe_prefix("o3-mini", "o3"));
        assert!(!is_safe_prefix("o3-pro", "o3"));
        assert!(!is_safe_prefix("gpt-4-32k-0314", "gpt-4"));
        assert!(!is_safe_prefix("gpt-4o-audio-preview", "gpt-4o"));
        assert!(!is_safe_prefix("llama-3-1-8b", "llama-3"));
        assert!(!is_safe_prefix("gpt-4.1", "gpt-4"));
        assert!(!is_safe_prefix("gpt-4o", "gpt-4"));
        assert!(!is_safe_prefix("sonar-huge", "sonar"));
    }

    #[test]
    fn a_prefix_covers_deployment_names() {
        assert!(is_safe_prefix("gpt-4o-eu-deployment", "gpt-4o"));
        assert!(is_safe_prefix(
            "claude-sonnet-4-5-20250929-custom",
            "claude-sonnet-4-5"
        ));
    }
}
