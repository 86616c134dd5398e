//! Model-id normalisation shared by pricing and reconciliation: the same rules decide
//! which price an event gets and which provider-reported model it is compared with.
//!
//! A name is priced only as itself, a stored alias, or itself with a date or version
//! suffix removed. Any other extra word (`-tts`, `-audio`, `-realtime`, `-search`,
//! `-preview`, `:extended`, `-cyber`, a deployment name, a word nobody has heard of)
//! makes it another model, which stays unpriced until a price for it exists: a wrong
//! number is worse than none, because nobody looks at it.

/// Lower-cases and trims a model id for matching (stored ids keep their case).
pub fn match_key(model: &str) -> String {
    model.trim().to_ascii_lowercase()
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Removes one date or version suffix, if the id ends in one:
/// `@20250929` / `@001` (Vertex), `-2024-08-06`, `-20241022`, `-0613`, `-002`,
/// `-05-20`, `-v2:0` (Bedrock revision), `-latest`, and the account and job parts of
/// an OpenAI fine-tune (`ft:gpt-4o-mini-2024-07-18:acme::abc123` ->
/// `ft:gpt-4o-mini-2024-07-18`, priced at its fine-tuning rates, never the base
/// model's). `-preview` and `-exp` are not versions: a preview is another model with
/// its own price.
pub fn strip_one_suffix(model: &str) -> Option<&str> {
    if let Some(rest) = model.strip_prefix("ft:") {
        // ft:<base>:<org>:<name>:<id>
        if let Some(end) = rest.find(':')
            && end > 0
        {
            return Some(&model[..3 + end]);
        }
        // `ft:<base>` itself strips like any other id (the base's date).
    }
    if let Some((head, tail)) = model.rsplit_once('@') {
        return (!head.is_empty() && (digits(tail) || tail == "latest")).then_some(head);
    }
    let (head, tail) = model.rsplit_once('-')?;
    if head.is_empty() {
        return None;
    }
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
            // `-05-20` (a snapshot date without the year)
            if !head2.is_empty() {
                return Some(head2);
            }
        }
        return None;
    }
    // Bedrock's `-v1:0`, `-v2:0`: a revision of the same model id.
    let bedrock_revision = tail
        .strip_prefix('v')
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(major, minor)| digits(major) && digits(minor));
    let removable =
        (digits(tail) && matches!(tail.len(), 3 | 4 | 8)) || bedrock_revision || tail == "latest";
    removable.then_some(head)
}

/// Every id a name may be priced as, in the order they are tried: the name, then the
/// name with one more suffix removed each time.
pub fn candidates(key: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(key), |current| strip_one_suffix(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_all(model: &str) -> Vec<&str> {
        candidates(model).skip(1).collect()
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
        assert_eq!(strip_all("gemini-1.5-pro@002"), vec!["gemini-1.5-pro"]);
        assert_eq!(strip_all("gpt-4-0613"), vec!["gpt-4"]);
        assert_eq!(
            strip_all("gemini-2.5-flash-preview-05-20"),
            vec!["gemini-2.5-flash-preview"]
        );
        assert_eq!(
            strip_all("anthropic.claude-3-5-sonnet-20241022-v2:0"),
            vec![
                "anthropic.claude-3-5-sonnet-20241022",
                "anthropic.claude-3-5-sonnet"
            ]
        );
        assert_eq!(strip_all("claude-3-opus-latest"), vec!["claude-3-opus"]);
        assert_eq!(
            strip_all("ft:gpt-4o-mini-2024-07-18:acme::9ab3"),
            vec!["ft:gpt-4o-mini-2024-07-18", "ft:gpt-4o-mini"]
        );
    }

    #[test]
    fn keeps_every_word_that_names_another_model() {
        for name in [
            "gpt-4o-mini",
            "o3",
            "gpt-4-32k",
            "llama-3.3-70b-versatile",
            "gpt-4o-audio-preview",
            "gemini-2.0-flash-exp",
            "gpt-4o-mini-tts",
            "claude-opus-4-1",
            "deepseek-v3",
            "gpt-5-cyber",
            "grok-4:extended",
            "gpt-4o-eu-deployment",
            "amazon.titan-embed-text-v2",
        ] {
            assert!(strip_all(name).is_empty(), "{name} was stripped");
        }
        assert_eq!(strip_all("gpt-4o@eu"), Vec::<&str>::new());
    }
}
