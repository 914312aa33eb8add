//! Topic names and topic filters: validation and matching (MQTT 5.0 section 4.7, MQTT 3.1.1
//! section 4.7, shared subscriptions from MQTT 5.0 section 4.8.2).
//!
//! Owns: the syntax rules for topic names (what a PUBLISH or a will may carry) and topic filters
//! (what a SUBSCRIBE/UNSUBSCRIBE may carry, including `$share/{group}/{filter}`), and the reference
//! matching function [`matches()`] that the router's data structures must agree with.
//! Must not touch: authorization (who may use which topic), the router's data structures, or any
//! byte-level decoding (the 65,535-byte limit of [MQTT-4.7.3-3] is enforced by the codec's
//! length prefix; UTF-8 validity is given by `&str`).
//!
//! Levels are the pieces between `/` separators. Empty levels are real levels: `a//b` has three
//! levels (`a`, ``, `b`), `/a` has two (``, `a`) and `a/` has two (`a`, ``). No normalisation is
//! ever done [MQTT-4.7.3-4].

use super::error::DecodeError;
use super::reason::ReasonCode;

/// The prefix that marks a shared subscription (MQTT 5.0 section 4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// Number of levels of a topic name or filter (at least 1, even for the empty string).
fn level_count(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count() + 1
}

fn name_err(what: &'static str) -> DecodeError {
    DecodeError::new(ReasonCode::TOPIC_NAME_INVALID, what)
}

fn filter_err(what: &'static str) -> DecodeError {
    DecodeError::new(ReasonCode::TOPIC_FILTER_INVALID, what)
}

/// Validates a topic name, as carried by PUBLISH or a will message.
///
/// Rules: at least one character [MQTT-4.7.3-1]; no wildcard character `+` or `#`
/// [MQTT-4.7.1-1]; no U+0000 [MQTT-4.7.3-2]; at most `max_levels` levels (a broker limit that
/// bounds the depth of the router's tries; `max_levels == 0` rejects every name).
///
/// The error always carries [`ReasonCode::TOPIC_NAME_INVALID`]; `what` names the broken rule.
pub fn validate_topic_name(topic: &str, max_levels: usize) -> Result<(), DecodeError> {
    if topic.is_empty() {
        return Err(name_err("topic name is empty"));
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(name_err("topic name contains a wildcard"));
    }
    if topic.bytes().any(|b| b == 0) {
        return Err(name_err("topic name contains U+0000"));
    }
    if level_count(topic) > max_levels {
        return Err(name_err("topic name has too many levels"));
    }
    Ok(())
}

/// Validates a topic filter, as carried by SUBSCRIBE or UNSUBSCRIBE.
///
/// Rules: at least one character [MQTT-4.7.3-1]; no U+0000 [MQTT-4.7.3-2]; `#` only as a whole
/// level and only as the last level [MQTT-4.7.1-2]; `+` only as a whole level [MQTT-4.7.1-3]; at
/// most `max_levels` levels (`max_levels == 0` rejects every filter).
///
/// A filter starting with `$share/` is a shared subscription: the share name (group) must be
/// non-empty [MQTT-4.8.2-1], contain no `/`, `+` or `#`, and be followed by `/` and a valid topic
/// filter [MQTT-4.8.2-2]. So `$share/ab`, `$share//x` and `$share/g/` are invalid. The level limit
/// applies to the inner filter only (the `$share/{group}` prefix is not part of the topic tree).
///
/// The error always carries [`ReasonCode::TOPIC_FILTER_INVALID`]; `what` names the broken rule.
pub fn validate_topic_filter(filter: &str, max_levels: usize) -> Result<(), DecodeError> {
    if filter.is_empty() {
        return Err(filter_err("topic filter is empty"));
    }
    // Checked on the whole filter, share name included (found by the `topic` fuzz target).
    if filter.bytes().any(|b| b == 0) {
        return Err(filter_err("topic filter contains U+0000"));
    }
    if let Some(rest) = filter.strip_prefix(SHARE_PREFIX) {
        let Some((group, inner)) = rest.split_once('/') else {
            return Err(filter_err("shared subscription has no topic filter"));
        };
        if group.is_empty() {
            return Err(filter_err("shared subscription has an empty share name"));
        }
        if group.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(filter_err("share name contains a wildcard"));
        }
        if inner.is_empty() {
            return Err(filter_err("shared subscription has an empty topic filter"));
        }
        return validate_plain_filter(inner, max_levels);
    }
    validate_plain_filter(filter, max_levels)
}

/// The level rules of a (non-empty) filter without the `$share/` prefix.
fn validate_plain_filter(filter: &str, max_levels: usize) -> Result<(), DecodeError> {
    let mut levels = filter.split('/').peekable();
    let mut count = 0usize;
    while let Some(level) = levels.next() {
        count += 1;
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(filter_err("'#' must be a whole level and the last level"));
        }
        if level.contains('+') && level != "+" {
            return Err(filter_err("'+' must occupy a whole level"));
        }
    }
    if count > max_levels {
        return Err(filter_err("topic filter has too many levels"));
    }
    Ok(())
}

/// Splits a shared subscription `$share/{group}/{filter}` into `(group, filter)`.
///
/// Returns `None` when `filter` does not start with `$share/` or has no `/` after the group. It
/// assumes a filter that passed [`validate_topic_filter`]; on other input it never panics, but the
/// parts returned may be empty.
pub fn split_shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix(SHARE_PREFIX)?.split_once('/')
}

/// True if the topic filter `filter` matches the topic name `topic`.
///
/// - `+` matches exactly one level, which may be empty (`sport/+` matches `sport/`).
/// - `#` matches its parent level and any number of levels below (`sport/#` matches `sport`,
///   `sport/tennis` and `sport/tennis/player1`); `#` alone matches every topic but see below.
/// - Topics whose first character is `$` are not matched by a filter whose first level is `+` or
///   `#` [MQTT-4.7.2-1]; a filter spelling the `$` level literally (`$SYS/#`) does match them.
/// - Everything else compares levels byte for byte, case sensitive, no normalisation.
///
/// `filter` must be a plain filter: pass the filter part of a shared subscription (see
/// [`split_shared`]). Both arguments are expected to be valid; on invalid input this never
/// panics, and a `#` level ends matching with `true` wherever it appears.
pub fn matches(filter: &str, topic: &str) -> bool {
    let (mut f, mut t) = (filter.as_bytes(), topic.as_bytes());
    if t.first() == Some(&b'$') {
        let first = first_level(f);
        if first == b"+" || first == b"#" {
            return false;
        }
    }
    // Byte slices instead of `split` iterators: about twice as fast, and this runs for every
    // subscription checked outside the trie (ACLs, tests, shared groups).
    loop {
        // Invariant: `f` and `t` both start at the beginning of a level.
        let level = first_level(f);
        if level == b"#" {
            return true;
        }
        let topic_level_len = if level == b"+" {
            first_level(t).len()
        } else {
            match t.strip_prefix(level) {
                Some(rest) if matches!(rest.first(), None | Some(b'/')) => level.len(),
                _ => return false,
            }
        };
        // Both prefixes were just measured on these slices, so the split points are in range.
        f = &f[level.len()..];
        t = &t[topic_level_len..];
        match (f.split_first(), t.split_first()) {
            (None, None) => return true,
            (None, Some(_)) => return false,
            // The topic ended: only a following `#` level still matches ("a/#" matches "a").
            (Some((_, f_rest)), None) => return first_level(f_rest) == b"#",
            (Some((_, f_rest)), Some((_, t_rest))) => {
                f = f_rest;
                t = t_rest;
            }
        }
    }
}

/// The bytes of `s` up to its first `/` (all of `s` when there is none).
fn first_level(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == b'/') {
        Some(end) => &s[..end],
        None => s,
    }
}

/// True if the filter contains a wildcard character (`+` or `#`).
///
/// On a validated filter these characters only ever appear as wildcard levels, so this tells
/// whether the filter can match more than one topic name. For a shared subscription the share
/// name cannot contain them, so the answer is about the inner filter.
pub fn has_wildcard(filter: &str) -> bool {
    filter.bytes().any(|b| b == b'+' || b == b'#')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64;

    fn name_ok(t: &str) -> bool {
        validate_topic_name(t, MAX).is_ok()
    }

    fn filter_ok(f: &str) -> bool {
        validate_topic_filter(f, MAX).is_ok()
    }

    #[test]
    fn mqtt_4_7_3_1_names_and_filters_must_not_be_empty() {
        assert_eq!(
            validate_topic_name("", MAX).unwrap_err().reason,
            ReasonCode::TOPIC_NAME_INVALID
        );
        assert_eq!(
            validate_topic_filter("", MAX).unwrap_err().reason,
            ReasonCode::TOPIC_FILTER_INVALID
        );
        assert!(name_ok("a"));
        assert!(filter_ok("a"));
    }

    #[test]
    fn mqtt_4_7_1_1_wildcards_not_allowed_in_topic_names() {
        for t in ["#", "+", "a/#", "a/+/b", "sport+", "a#b"] {
            let err = validate_topic_name(t, MAX).unwrap_err();
            assert_eq!(err.reason, ReasonCode::TOPIC_NAME_INVALID, "{t}");
        }
    }

    #[test]
    fn mqtt_4_7_3_2_null_character_rejected() {
        assert_eq!(
            validate_topic_name("a/\0", MAX).unwrap_err().reason,
            ReasonCode::TOPIC_NAME_INVALID
        );
        assert_eq!(
            validate_topic_filter("a/\0/#", MAX).unwrap_err().reason,
            ReasonCode::TOPIC_FILTER_INVALID
        );
        assert!(!filter_ok("$share/g/\0"));
        // In the share name too (found by fuzz/fuzz_targets/topic.rs).
        assert!(!filter_ok("$share/\u{15}\0.a/.a/#"));
        assert!(!filter_ok("$share/g\0/a"));
    }

    #[test]
    fn topic_names_with_empty_levels_and_dollar_are_valid() {
        for t in [
            "/",
            "//",
            "/finance",
            "a//b",
            "a/",
            "$SYS/uptime",
            "sport/tennis/player1",
        ] {
            assert!(name_ok(t), "{t}");
        }
        // Spaces and unusual characters are fine: no normalisation [MQTT-4.7.3-4].
        assert!(name_ok("ACCOUNTS/ a / é"));
    }

    #[test]
    fn mqtt_4_7_1_2_multi_level_wildcard_must_be_last() {
        for f in ["#", "sport/#", "sport/tennis/#", "/#", "+/#", "$SYS/#"] {
            assert!(filter_ok(f), "{f}");
        }
        for f in [
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "#/a",
            "a/#/",
            "##",
            "a/b#",
            "#a",
        ] {
            let err = validate_topic_filter(f, MAX).unwrap_err();
            assert_eq!(err.reason, ReasonCode::TOPIC_FILTER_INVALID, "{f}");
        }
    }

    #[test]
    fn mqtt_4_7_1_3_single_level_wildcard_must_occupy_whole_level() {
        for f in [
            "+",
            "+/tennis/#",
            "sport/+/player1",
            "+/+",
            "/+",
            "+/",
            "a/+/+/b",
        ] {
            assert!(filter_ok(f), "{f}");
        }
        for f in ["sport+", "sport/+tennis", "a/b+/c", "++", "+a/b"] {
            let err = validate_topic_filter(f, MAX).unwrap_err();
            assert_eq!(err.reason, ReasonCode::TOPIC_FILTER_INVALID, "{f}");
        }
    }

    #[test]
    fn level_limit_applies_to_names_and_filters() {
        assert!(validate_topic_name("a/b/c", 3).is_ok());
        assert!(validate_topic_name("a/b/c/", 3).is_err());
        assert!(validate_topic_name("a", 0).is_err());
        assert!(validate_topic_filter("a/+/#", 3).is_ok());
        assert_eq!(
            validate_topic_filter("a/+/c/#", 3).unwrap_err().reason,
            ReasonCode::TOPIC_FILTER_INVALID
        );
        // The $share/{group} prefix does not count.
        assert!(validate_topic_filter("$share/g/a/b/c", 3).is_ok());
        assert!(validate_topic_filter("$share/g/a/b/c/d", 3).is_err());
    }

    #[test]
    fn mqtt_4_8_2_shared_subscription_syntax() {
        for f in [
            "$share/g/a",
            "$share/g/#",
            "$share/group-1/+/x",
            "$share/g//",
            "$share/g/$SYS/#",
        ] {
            assert!(filter_ok(f), "{f}");
        }
        for f in [
            "$share/ab",
            "$share/",
            "$share//x",
            "$share/g/",
            "$share/+/x",
            "$share/#/x",
            "$share/g+/x",
            "$share/g/a#",
            "$share/g/#/a",
        ] {
            let err = validate_topic_filter(f, MAX).unwrap_err();
            assert_eq!(err.reason, ReasonCode::TOPIC_FILTER_INVALID, "{f}");
        }
        // Not shared subscriptions: ordinary filters.
        assert!(filter_ok("$share"));
        assert!(filter_ok("$shared/x"));
        assert!(filter_ok("$SHARE/g/x"));
    }

    #[test]
    fn split_shared_parts() {
        assert_eq!(split_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(split_shared("$share/g/#"), Some(("g", "#")));
        assert_eq!(split_shared("$share/g//"), Some(("g", "/")));
        assert_eq!(split_shared("a/b"), None);
        assert_eq!(split_shared("$share"), None);
        assert_eq!(split_shared("$share/ab"), None);
        assert_eq!(split_shared("$sharex/g/a"), None);
    }

    #[test]
    fn spec_examples_multi_level_wildcard() {
        // MQTT 5.0 section 4.7.1.2 non-normative example.
        let f = "sport/tennis/player1/#";
        assert!(matches(f, "sport/tennis/player1"));
        assert!(matches(f, "sport/tennis/player1/ranking"));
        assert!(matches(f, "sport/tennis/player1/score/wimbledon"));
        assert!(!matches(f, "sport/tennis/player2"));
        assert!(!matches(f, "sport/tennis"));
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/#", "sport/"));
        assert!(matches("#", "sport/tennis"));
        assert!(matches("#", "/"));
        assert!(!matches("sport/#", "sports"));
    }

    #[test]
    fn spec_examples_single_level_wildcard() {
        // MQTT 5.0 section 4.7.1.3 non-normative examples.
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(matches("sport/tennis/+", "sport/tennis/player2"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(matches("sport/+", "sport/"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("+", "finance"));
        assert!(matches("+/tennis/#", "sport/tennis/player1"));
        assert!(matches("+/tennis/#", "sport/tennis"));
    }

    #[test]
    fn mqtt_4_7_2_1_dollar_topics_not_matched_by_leading_wildcard() {
        // MQTT 5.0 section 4.7.2 non-normative examples.
        assert!(!matches("#", "$SYS/monitor/Clients"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(!matches("#", "$"));
        assert!(!matches("+", "$SYS"));
        assert!(matches("$SYS", "$SYS"));
        // Only a '$' at the very start of the topic counts.
        assert!(matches("#", "a/$SYS"));
        assert!(matches("+/+", "a/$b"));
        assert!(matches("a/#", "a/$b"));
    }

    #[test]
    fn empty_levels_are_real_levels() {
        assert!(matches("a//b", "a//b"));
        assert!(!matches("a/b", "a//b"));
        assert!(matches("a/+/b", "a//b"));
        assert!(matches("/a", "/a"));
        assert!(!matches("a", "/a"));
        assert!(matches("+/a", "/a"));
        assert!(matches("a/+", "a/"));
        assert!(!matches("a/+", "a"));
        assert!(matches("/#", "/"));
        assert!(matches("/#", "/a/b"));
        assert!(!matches("/#", "a"));
    }

    #[test]
    fn exact_and_case_sensitive_matching() {
        assert!(matches("a/b/c", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("ACCOUNTS", "Accounts"));
        assert!(!matches("a/b/c", "a/b/cd"));
    }

    /// The specification's rule written in the most direct way, to check the fast [`matches`].
    fn reference_matches(filter: &str, topic: &str) -> bool {
        let first = filter.split('/').next().unwrap_or("");
        if topic.starts_with('$') && (first == "+" || first == "#") {
            return false;
        }
        let (mut f, mut t) = (filter.split('/'), topic.split('/'));
        loop {
            match (f.next(), t.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(fl), Some(tl)) if fl == tl => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    #[test]
    fn fast_matches_agrees_with_reference_exhaustively() {
        // Every string of up to 6 characters over an alphabet that covers separators, both
        // wildcards, '$', and a multi-byte character, used both as filter and as topic (valid
        // or not: the two must agree on everything).
        let alphabet = ["/", "+", "#", "$", "a", "é"];
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for p in &last {
                for c in alphabet {
                    next.push(format!("{p}{c}"));
                }
            }
            all.extend(next.iter().cloned());
            last = next;
        }
        let topics: Vec<&String> = all.iter().filter(|s| s.len() <= 4).collect();
        for f in &all {
            for t in &topics {
                assert_eq!(
                    matches(f, t),
                    reference_matches(f, t),
                    "filter {f:?} topic {t:?}"
                );
            }
        }
    }

    #[test]
    fn has_wildcard_detects_both_wildcards() {
        assert!(has_wildcard("#"));
        assert!(has_wildcard("a/+/b"));
        assert!(has_wildcard("$share/g/a/#"));
        assert!(!has_wildcard("a/b"));
        assert!(!has_wildcard("$share/g/a"));
    }

    #[test]
    fn invalid_input_never_panics() {
        for s in [
            "", "/", "#/#", "++/#", "\0", "$", "$share/", "$share//", "é/+/#",
        ] {
            let _ = validate_topic_name(s, MAX);
            let _ = validate_topic_filter(s, MAX);
            let _ = split_shared(s);
            let _ = matches(s, s);
            let _ = has_wildcard(s);
        }
    }
}
