//! How two topic filters relate as sets of topic names: does one cover the other, do they share
//! any topic. The ACL needs this to judge a SUBSCRIBE, whose filter is itself a set of topics.
//!
//! Owns: [`covers`] and [`intersects`], exact with respect to [`crate::protocol::topic::matches`]
//! (including the rule that a filter starting with a wildcard never matches a `$` topic).
//! Must not touch: ACL policy (which relation means what is `acl.rs`'s business).
//!
//! Both take valid plain filters (no `$share/` prefix). On other input they never panic.

/// True if every topic name matched by `inner` is also matched by `outer`.
///
/// `a/#` covers `a`, `a/b/+` and `a/#`; `a/+` covers `a/b` but not `a/#` (which also matches `a`
/// and `a/b/c`); `#` covers `+/x` but not `$SYS/x`.
pub fn covers(outer: &str, inner: &str) -> bool {
    if dollar_mismatch(outer, inner) {
        // `outer` starts with a wildcard and `inner` only matches `$` topics: disjoint, and inner
        // is never empty (a literal level matches at least one topic).
        return false;
    }
    // The one case the level walk below misses: `+/#` matches every topic with at least one
    // level (the `#` matches the parent too), which is every topic `#` matches.
    if inner == "#" && outer == "+/#" {
        return true;
    }
    let mut o = outer.split('/');
    let mut i = inner.split('/');
    loop {
        match (o.next(), i.next()) {
            // `#` matches the parent level and everything below it.
            (Some("#"), _) => return true,
            (None, None) => return true,
            // inner goes on (or ends in `#`, which also matches deeper topics): outer ended.
            (None, Some(_)) => return false,
            // inner ended, outer needs more levels (a trailing `#` was handled above).
            (Some(_), None) => return false,
            (Some("+"), Some(level)) => {
                if level == "#" {
                    return false;
                }
            }
            (Some(want), Some(level)) => {
                if want != level {
                    return false;
                }
            }
        }
    }
}

/// True if at least one topic name is matched by both filters.
///
/// `a/+` and `+/b` intersect (`a/b`); `a` and `a/#` intersect (`a`); `a/+` and `a` do not; `#`
/// and `$SYS/#` do not.
pub fn intersects(a: &str, b: &str) -> bool {
    if dollar_mismatch(a, b) || dollar_mismatch(b, a) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            // One ended: only a `#` next in the other could still match this topic.
            (None, Some(_)) | (Some(_), None) => return false,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(l), Some(r)) => {
                if l != r {
                    return false;
                }
            }
        }
    }
}

/// True if `wild` starts with a wildcard level and `dollar` starts with a literal `$` level: the
/// first matches no `$` topic [MQTT-4.7.2-1] and the second matches only `$` topics.
fn dollar_mismatch(wild: &str, dollar: &str) -> bool {
    let first = wild.split('/').next().unwrap_or("");
    (first == "+" || first == "#") && dollar.starts_with('$')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches;

    #[test]
    fn covers_examples() {
        let yes = [
            ("#", "#"),
            ("#", "a"),
            ("#", "+/+"),
            ("a/#", "a"),
            ("a/#", "a/#"),
            ("a/#", "a/+/c"),
            ("a/+", "a/b"),
            ("a/+", "a/+"),
            ("+/+", "a/+"),
            ("a", "a"),
            ("$SYS/#", "$SYS/x/#"),
            ("+", ""),
            ("+/#", "#"),
            ("+/#", "+"),
        ];
        let no = [
            ("a/+", "a/#"),
            ("a/+", "a"),
            ("a", "a/#"),
            ("a/b", "a/+"),
            ("a/#", "#"),
            ("a/#", "b"),
            ("#", "$SYS/x"),
            ("+/#", "$SYS"),
            ("+", "+/+"),
            ("a", "b"),
            ("a/+/#", "a/#"),
            ("+/+/#", "#"),
        ];
        for (outer, inner) in yes {
            assert!(covers(outer, inner), "{outer} should cover {inner}");
        }
        for (outer, inner) in no {
            assert!(!covers(outer, inner), "{outer} should not cover {inner}");
        }
    }

    #[test]
    fn intersects_examples() {
        let yes = [
            ("a/+", "+/b"),
            ("a", "a/#"),
            ("#", "a/b/c"),
            ("+/+", "a/#"),
            ("$SYS/#", "$SYS/+"),
            ("+", "a"),
        ];
        let no = [
            ("a/+", "a"),
            ("a/b", "a/c"),
            ("#", "$SYS/#"),
            ("+/x", "$SYS/x"),
            ("a/+/c", "a/b"),
            ("+", "+/+"),
        ];
        for (a, b) in yes {
            assert!(intersects(a, b) && intersects(b, a), "{a} / {b}");
        }
        for (a, b) in no {
            assert!(!intersects(a, b) && !intersects(b, a), "{a} / {b}");
        }
    }

    /// Every path of 1 to `depth` levels; filters stop extending after a `#` level.
    fn paths(levels: &[&str], depth: usize) -> Vec<String> {
        let mut all: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
        let mut frontier = all.clone();
        for _ in 1..depth {
            frontier = frontier
                .iter()
                .filter(|p| !p.ends_with('#'))
                .flat_map(|p| levels.iter().map(move |l| format!("{p}/{l}")))
                .collect();
            all.extend(frontier.iter().cloned());
        }
        all
    }

    #[test]
    fn agrees_with_matching_on_every_small_case() {
        // Topics one level deeper than filters, and a level ("z") no filter spells, so that a
        // wildcard is never mistaken for the few literals the filters use.
        let filters = paths(&["a", "b", "$s", "", "+", "#"], 3);
        let topics = paths(&["a", "b", "$s", "", "z"], 4);
        assert_eq!((filters.len(), topics.len()), (186, 780));
        let sets: Vec<Vec<bool>> = filters
            .iter()
            .map(|f| topics.iter().map(|t| matches(f, t)).collect())
            .collect();
        for (i, a) in filters.iter().enumerate() {
            for (j, b) in filters.iter().enumerate() {
                let subset = sets[j]
                    .iter()
                    .zip(&sets[i])
                    .all(|(&in_b, &in_a)| !in_b || in_a);
                let shared = sets[j].iter().zip(&sets[i]).any(|(&x, &y)| x && y);
                assert_eq!(covers(a, b), subset, "covers({a:?}, {b:?})");
                assert_eq!(intersects(a, b), shared, "intersects({a:?}, {b:?})");
            }
        }
    }
}
