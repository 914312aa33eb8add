//! Test helpers shared by the trie and retained-store tests: a deterministic PRNG and generators
//! of topics and filters over a small alphabet (with `$SYS` and empty levels, the corner cases).
//!
//! Owns: test input generation only; compiled for tests alone.

/// Deterministic xorshift64 PRNG so failures reproduce.
pub struct XorShift(pub u64);

impl XorShift {
    /// Next pseudo-random value.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Levels random topics are made of.
pub const ALPHABET: [&str; 5] = ["", "$SYS", "a", "b", "c"];

/// A topic of 1 to 4 levels over [`ALPHABET`] (never the empty string).
pub fn random_topic(rng: &mut XorShift) -> String {
    let n = 1 + rng.below(4);
    let levels: Vec<&str> = (0..n)
        .map(|_| ALPHABET[rng.below(ALPHABET.len())])
        .collect();
    let topic = levels.join("/");
    if topic.is_empty() {
        "/".to_string()
    } else {
        topic
    }
}

/// Every filter of up to 3 levels over `inner` (which should include `+`), each prefix also
/// followed by `#`.
pub fn all_filters(inner: &[&str]) -> Vec<String> {
    let mut prefixes: Vec<String> = vec![String::new()];
    let mut out = Vec::new();
    for depth in 0..3 {
        let sep = if depth == 0 { "" } else { "/" };
        let mut next = Vec::new();
        for p in &prefixes {
            out.push(format!("{p}{sep}#"));
            for l in inner {
                out.push(format!("{p}{sep}{l}"));
                next.push(format!("{p}{sep}{l}"));
            }
        }
        prefixes = next;
    }
    out.retain(|f| !f.is_empty());
    out
}
