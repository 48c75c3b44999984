//! "Did you mean …?" for names a user typed.

/// The candidate closest to `typed`, if it is close enough to be a plausible typo.
pub fn closest<'a, I>(typed: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let typed_lower = typed.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&typed_lower, &c.to_lowercase())))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// `" (did you mean `x`?)"` or an empty string.
pub fn did_you_mean<'a, I>(typed: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(typed, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant"), a
/// suggestion of the closest expected name; otherwise an empty string.
pub fn hint_for_serde_error(message: &str) -> String {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"));
    match rest.and_then(|r| r.split_once('`')) {
        Some((typed, expected)) => did_you_mean(typed, expected.split('`').skip(1).step_by(2)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_rejects_strangers() {
        let names = ["email", "full_name", "integer_key"];
        assert_eq!(closest("emial", names), Some("email"));
        assert_eq!(closest("integer_kye", names), Some("integer_key"));
        assert_eq!(closest("zzz", names), None);
        let msg = "unknown field `keep_domian`, expected `keep_domain` or `domain`";
        assert_eq!(hint_for_serde_error(msg), " (did you mean `keep_domain`?)");
    }
}
