//! Text hygiene shared by every parser: what a name, an id or a note may contain.
//!
//! Identifier-like fields (model ids, endpoints, users, idempotency keys, names,
//! labels, metadata keys) refuse every control character — NUL, the C0 range
//! (U+0000–U+001F), DEL and the C1 range (U+007F–U+009F) — because they end up in
//! keys, logs, CSV cells and PostgreSQL text (which cannot hold NUL at all). Free-form
//! fields (notes, metadata values) may also hold tabs and line breaks, nothing else
//! from those ranges.

/// How much of the control ranges a field tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// No control character at all.
    Identifier,
    /// Tab, line feed and carriage return allowed.
    FreeForm,
}

/// Whether `c` is refused in a field of this kind.
pub fn refused(c: char, kind: TextKind) -> bool {
    let control = matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}');
    control && !(kind == TextKind::FreeForm && matches!(c, '\t' | '\n' | '\r'))
}

/// The sentence for a field holding a refused character, if it holds one.
pub fn problem(value: &str, kind: TextKind) -> Option<String> {
    let c = value.chars().find(|c| refused(*c, kind))?;
    Some(match kind {
        TextKind::Identifier => format!(
            "must not contain control characters (found U+{:04X})",
            u32::from(c)
        ),
        TextKind::FreeForm => format!(
            "must not contain control characters other than tabs and line breaks (found U+{:04X})",
            u32::from(c)
        ),
    })
}

/// The first refused character anywhere in a JSON value's keys (as identifiers) and
/// string values (as free-form text), with the path to it (`metadata.a.b`). A refused
/// key is reported at the object that holds it, so the path never carries the
/// character it refuses.
pub fn json_problem(value: &serde_json::Value, path: &str) -> Option<(String, String)> {
    match value {
        serde_json::Value::String(s) => {
            problem(s, TextKind::FreeForm).map(|m| (path.to_owned(), m))
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| json_problem(v, &format!("{path}.{i}"))),
        serde_json::Value::Object(map) => {
            map.iter()
                .find_map(|(k, v)| match problem(k, TextKind::Identifier) {
                    Some(m) => Some((path.to_owned(), format!("a key {m}"))),
                    None => json_problem(v, &format!("{path}.{k}")),
                })
        }
        _ => None,
    }
}

/// The name of a thing being created or updated: the trimmed new name, checked (1 to
/// `max_len` characters, an identifier's characters), else the current one; required
/// on create. Problems go to `errors` under `name`.
pub fn merged_name(
    new: Option<String>,
    current: Option<&str>,
    max_len: usize,
    errors: &mut Vec<crate::domain::error::FieldError>,
) -> String {
    use crate::domain::error::FieldError;
    match (new, current) {
        (Some(n), _) => {
            let n = n.trim().to_owned();
            if n.is_empty() || n.chars().count() > max_len {
                errors.push(FieldError::new(
                    "name",
                    format!("must be 1 to {max_len} characters"),
                ));
            } else if let Some(p) = problem(&n, TextKind::Identifier) {
                errors.push(FieldError::new("name", p));
            }
            n
        }
        (None, Some(c)) => c.to_owned(),
        (None, None) => {
            errors.push(FieldError::new("name", "is required"));
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_characters_are_refused_in_identifiers() {
        for bad in [
            "gpt\u{0}4o",
            "a\tb",
            "a\nb",
            "x\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(problem(bad, TextKind::Identifier).is_some(), "{bad:?}");
        }
        assert!(problem("gpt-4o/ü-é 😀", TextKind::Identifier).is_none());
        assert!(problem("line one\nline\ttwo\r\n", TextKind::FreeForm).is_none());
        assert!(problem("bell\u{7}", TextKind::FreeForm).is_some());
        assert_eq!(
            problem("a\u{0}", TextKind::Identifier).unwrap(),
            "must not contain control characters (found U+0000)"
        );
    }

    #[test]
    fn json_is_checked_keys_and_values_with_the_path() {
        let v = serde_json::json!({"ok": "fine\n", "nested": {"k\u{0}": 1}});
        assert_eq!(
            json_problem(&v, "metadata").unwrap(),
            (
                "metadata.nested".to_owned(),
                "a key must not contain control characters (found U+0000)".to_owned()
            )
        );
        let v = serde_json::json!({"list": ["a", "b\u{1}"]});
        assert_eq!(json_problem(&v, "metadata").unwrap().0, "metadata.list.1");
        assert!(json_problem(&serde_json::json!({"a": [1, "x\ty"]}), "m").is_none());
    }

    proptest! {
        #[test]
        fn printable_text_always_passes(s in "[^\\p{Cc}]{0,50}") {
            prop_assert!(problem(&s, TextKind::Identifier).is_none());
        }

        #[test]
        fn any_control_character_is_found(prefix in "[a-z]{0,5}", c in prop_oneof![0u32..0x20, 0x7fu32..0xa0], suffix in "[a-z]{0,5}") {
            let c = char::from_u32(c).unwrap();
            let s = format!("{prefix}{c}{suffix}");
            prop_assert!(problem(&s, TextKind::Identifier).is_some());
        }
    }
}
