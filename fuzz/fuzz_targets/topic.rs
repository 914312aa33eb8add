//! Fuzz target `topic`: topic name and filter validation, `split_shared` and `matches` against
//! reference implementations written here from the spec text (MQTT 5.0 sections 4.7 and 4.8.2),
//! deliberately in a different style (split iterators, recursion) from `src/protocol/topic.rs`.
//!
//! Input: byte 0 picks the level limit; the rest is `filter 0xFF topic` (lossy UTF-8).
//! Owns: the oracle only. Must not touch: the code under test (a finding is fixed in
//! `src/protocol/topic.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use picomq::protocol::topic::{
    has_wildcard, matches, split_shared, validate_topic_filter, validate_topic_name,
};
use picomq::protocol::ReasonCode;

fn ref_name_ok(t: &str, max_levels: usize) -> bool {
    !t.is_empty() && !t.contains(['+', '#', '\0']) && t.split('/').count() <= max_levels
}

fn ref_plain_filter_ok(f: &str, max_levels: usize) -> bool {
    let levels: Vec<&str> = f.split('/').collect();
    let last = levels.len() - 1;
    !f.is_empty()
        && !f.contains('\0')
        && levels.len() <= max_levels
        && levels.iter().enumerate().all(|(i, l)| {
            (!l.contains('#') || (*l == "#" && i == last)) && (!l.contains('+') || *l == "+")
        })
}

fn ref_filter_ok(f: &str, max_levels: usize) -> bool {
    // [MQTT-4.7.3-2]: no U+0000 anywhere, share name included.
    if f.contains('\0') {
        return false;
    }
    match f.strip_prefix("$share/") {
        Some(rest) => match rest.find('/') {
            Some(i) => {
                let (group, inner) = (&rest[..i], &rest[i + 1..]);
                !group.is_empty()
                    && !group.contains(['+', '#'])
                    && ref_plain_filter_ok(inner, max_levels)
            }
            None => false,
        },
        None => ref_plain_filter_ok(f, max_levels),
    }
}

/// Level-by-level recursive matching of a valid plain filter against a valid topic name.
fn ref_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    fn go(f: &[&str], t: &[&str]) -> bool {
        match (f.first(), t.first()) {
            (Some(&"#"), _) => true,
            (None, None) => true,
            (Some(&"+"), Some(_)) => go(&f[1..], &t[1..]),
            (Some(a), Some(b)) => a == b && go(&f[1..], &t[1..]),
            _ => false,
        }
    }
    go(&f, &t)
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let max_levels = usize::from(limit % 16);
    let (f_bytes, t_bytes) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let filter = String::from_utf8_lossy(f_bytes);
    let topic = String::from_utf8_lossy(t_bytes);

    let name = validate_topic_name(&topic, max_levels);
    assert_eq!(
        name.is_ok(),
        ref_name_ok(&topic, max_levels),
        "name {topic:?}"
    );
    if let Err(e) = &name {
        assert_eq!(e.reason, ReasonCode::TOPIC_NAME_INVALID);
    }
    let valid_filter = validate_topic_filter(&filter, max_levels);
    assert_eq!(
        valid_filter.is_ok(),
        ref_filter_ok(&filter, max_levels),
        "filter {filter:?} (max {max_levels})"
    );
    if let Err(e) = &valid_filter {
        assert_eq!(e.reason, ReasonCode::TOPIC_FILTER_INVALID);
    }
    // Never panics, whatever the input.
    let _ = matches(&filter, &topic);
    let _ = split_shared(&filter);
    let _ = has_wildcard(&filter);

    if valid_filter.is_err() {
        return;
    }
    let plain = match split_shared(&filter) {
        Some((group, inner)) => {
            assert!(!group.is_empty() && !inner.is_empty());
            assert_eq!(format!("$share/{group}/{inner}"), filter);
            inner
        }
        None => {
            assert!(!filter.starts_with("$share/"));
            &filter
        }
    };
    assert_eq!(has_wildcard(plain), plain.contains(['+', '#']));
    if name.is_ok() {
        assert_eq!(
            matches(plain, &topic),
            ref_matches(plain, &topic),
            "matches({plain:?}, {topic:?})"
        );
        // A filter without wildcards matches exactly itself.
        if !has_wildcard(plain) {
            assert_eq!(matches(plain, &topic), plain == topic.as_ref());
        }
    }
});
