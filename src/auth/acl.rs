//! Topic access control in Mosquitto's `acl_file` syntax: parsing, and the allow/deny decision for
//! PUBLISH, delivery and SUBSCRIBE.
//!
//! Owns: the file syntax, the rule order, `%c`/`%u` pattern substitution, and the per-client view
//! ([`ClientAcl`]) the session keeps. Must not touch: file I/O, what a denial answers on the wire
//! (SUBACK 0x87/0x80, PUBACK 0x87, silent drop), or logging.
//!
//! # Syntax (as Mosquitto 2.0 reads it)
//! ```text
//! # comment
//! topic [read|write|readwrite|deny] <filter>   rule for the current section
//! user <username>                              starts that user's section
//! pattern [read|write|readwrite|deny] <filter> rule for every client, %c = client id, %u = user
//! ```
//! Rules before the first `user` line form the *anonymous* section: they apply to clients that
//! connected without a user name, and only to them. A user's section applies to clients that
//! gave that user name (a `user` line may repeat; its rules add up). Patterns apply to every
//! client. The access word is optional (`readwrite`); the filter is the rest of the line, so it
//! may contain spaces. A pattern using `%u` does not apply to a client without a user name.
//!
//! # Decision (Mosquitto 2.0's order, checked against mosquitto 2.0.11)
//! For a topic name and read (delivery) or write (PUBLISH), first match wins:
//! 1. the client's own section (user or anonymous): any `deny` rule matching → denied; then any
//!    rule matching that grants the access → allowed;
//! 2. if the client id or user name contains `+` or `#`, patterns are skipped (a client id such
//!    as `#` would otherwise turn `pattern read dev/%c/#` into `dev/#/#`, CVE-2017-7650);
//! 3. the patterns, the same way: `deny` first, then granting rules;
//! 4. otherwise denied. An ACL file with no rules denies everything.
//!
//! A rule matches as a SUBSCRIBE filter would ([`matches`]): `#` and `+` in the first level do
//! not match `$` topics, so `topic read #` does not open `$SYS`. Whatever the rules say, when an
//! ACL is loaded a client may never write to `$SYS…` or `$share…` topics (Mosquitto's rule; the
//! broker owns `$SYS`, and `$share` is not a topic one publishes to).
//!
//! # SUBSCRIBE (picomq's rule; Mosquitto's `acl_file` grants every subscription)
//! Mosquitto 2.0 accepts every SUBSCRIBE and filters each message at delivery with the read
//! check. picomq refuses, with 0x87 / 0x80, a subscription that could never deliver anything,
//! and otherwise grants it and still filters at delivery. [`ClientAcl::check_subscribe`] walks the
//! same order as above with the filter `F` (for `$share/{group}/F`, the inner `F`):
//! - a `deny` rule that covers `F` (matches every topic `F` matches) → [`SubscribeVerdict::Denied`];
//! - a rule granting read that shares at least one topic with `F` → granted:
//!   [`SubscribeVerdict::Full`] when that rule covers `F` and no `deny` rule seen before shares
//!   a topic with `F` (every message the subscription can match is readable), else
//!   [`SubscribeVerdict::Partial`];
//! - nothing → denied.
//!
//! A refusal is exact: a refused filter matches no readable topic. A grant can be generous in a
//! corner case (when earlier `deny` rules together cover the part an allowing rule shares), which
//! is why deliveries on a `Partial` subscription, and retained messages on any, must be checked
//! with [`Access::Read`]. With `topic read sensors/#`, `sensors/+/temp` is `Full`, `#` is
//! `Partial` (it gets `sensors/…` only) and `actuators/#` is `Denied`.

use std::collections::HashMap;
use std::sync::Arc;

use super::overlap::{covers, intersects};
use super::LineError;
use crate::protocol::topic::{matches, split_shared, validate_topic_filter};

/// What a client asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Receive a message published to this topic name (delivery, retained messages included).
    Read,
    /// Publish to this topic name (PUBLISH, and a will when it is sent).
    Write,
    /// Subscribe with this topic filter; see [`ClientAcl::check_subscribe`].
    Subscribe,
}

/// What one rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// `deny`: refuses read and write, before any allowing rule of the same section.
    Deny,
    /// `read`
    Read,
    /// `write`
    Write,
    /// `readwrite`, also what a rule without an access word grants.
    ReadWrite,
}

impl Grant {
    /// The grant named by an access word, if it is one.
    fn from_word(word: &str) -> Option<Grant> {
        Some(match word {
            "deny" => Grant::Deny,
            "read" => Grant::Read,
            "write" => Grant::Write,
            "readwrite" => Grant::ReadWrite,
            _ => return None,
        })
    }

    /// True if this grant allows `write` (PUBLISH) or, when false, read.
    fn allows(self, write: bool) -> bool {
        match self {
            Grant::Deny => false,
            Grant::Read => !write,
            Grant::Write => write,
            Grant::ReadWrite => true,
        }
    }
}

/// The outcome of a SUBSCRIBE check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeVerdict {
    /// No topic the filter matches is readable: refuse (v5 0x87, 3.1.1 0x80).
    Denied,
    /// Granted, but some matching topics may not be readable: check each delivery with
    /// [`Access::Read`].
    Partial,
    /// Granted, and every topic the filter matches is readable under this ACL.
    Full,
}

impl SubscribeVerdict {
    /// True unless [`SubscribeVerdict::Denied`].
    pub fn is_granted(self) -> bool {
        self != SubscribeVerdict::Denied
    }
}

/// One section's rules. Denials are kept apart because they are checked first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RuleList {
    /// Filters of `deny` rules.
    deny: Vec<String>,
    /// Every other rule, in file order.
    allow: Vec<(String, Grant)>,
}

impl RuleList {
    fn push(&mut self, filter: String, grant: Grant) {
        match grant {
            Grant::Deny => self.deny.push(filter),
            _ => self.allow.push((filter, grant)),
        }
    }

    fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty()
    }

    /// `Some(decision)` if a rule of this list decides for `topic`, `None` to go on.
    fn decide(&self, topic: &str, write: bool) -> Option<bool> {
        if self.deny.iter().any(|f| matches(f, topic)) {
            return Some(false);
        }
        let granted = self
            .allow
            .iter()
            .any(|(f, grant)| grant.allows(write) && matches(f, topic));
        granted.then_some(true)
    }

    /// `Some(verdict)` if a rule of this list decides for the subscription filter, `None` to go
    /// on; `deny_overlap` records that a deny rule shares topics with the filter.
    fn decide_subscribe(&self, filter: &str, deny_overlap: &mut bool) -> Option<SubscribeVerdict> {
        for deny in &self.deny {
            if covers(deny, filter) {
                return Some(SubscribeVerdict::Denied);
            }
            *deny_overlap |= intersects(deny, filter);
        }
        let mut verdict = None;
        for (allow, grant) in &self.allow {
            if grant.allows(false) && intersects(allow, filter) {
                if covers(allow, filter) && !*deny_overlap {
                    return Some(SubscribeVerdict::Full);
                }
                verdict = Some(SubscribeVerdict::Partial);
            }
        }
        verdict
    }
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    /// Rules before the first `user` line: for clients without a user name.
    anonymous: Arc<RuleList>,
    /// Each user's rules.
    users: HashMap<String, Arc<RuleList>>,
    /// `pattern` rules with `%c`/`%u` still in them.
    patterns: RuleList,
}

impl Acl {
    /// Parses the text of an ACL file. The error names the first bad line (1-based).
    ///
    /// Errors: an unknown keyword, `user` without a name, `topic`/`pattern` without a filter, an
    /// unknown access word, an invalid filter. Comment lines (first non-blank character `#`) and
    /// blank lines are skipped. Tabs separate words like spaces.
    pub fn parse(text: &str) -> Result<Acl, LineError> {
        let mut anonymous = RuleList::default();
        let mut users: HashMap<String, RuleList> = HashMap::new();
        let mut patterns = RuleList::default();
        let mut current_user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let error = |message: String| LineError {
                line: index + 1,
                message,
            };
            let line = raw.trim_matches(is_blank);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(line);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(error("`user` needs a user name".into()));
                    }
                    current_user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let (filter, grant) = parse_rule(keyword, rest).map_err(error)?;
                    if keyword == "pattern" {
                        patterns.push(filter, grant);
                    } else if let Some(user) = &current_user {
                        users.entry(user.clone()).or_default().push(filter, grant);
                    } else {
                        anonymous.push(filter, grant);
                    }
                }
                other => {
                    return Err(error(format!(
                        "unknown keyword {other:?}; expected topic, pattern or user"
                    )))
                }
            }
        }
        Ok(Acl {
            anonymous: Arc::new(anonymous),
            users: users.into_iter().map(|(u, l)| (u, Arc::new(l))).collect(),
            patterns,
        })
    }

    /// The rules that apply to one connected client, with its patterns resolved: build it once
    /// per connection (after the client id is final) and keep it for the session's checks.
    pub fn for_client(&self, client_id: &str, username: Option<&str>) -> ClientAcl {
        let own = match username {
            None => Arc::clone(&self.anonymous),
            Some(user) => self.users.get(user).cloned().unwrap_or_default(),
        };
        let dangerous = |s: &str| s.contains(['+', '#']);
        let patterns_refused =
            !self.patterns.is_empty() && (dangerous(client_id) || username.is_some_and(dangerous));
        let mut patterns = RuleList::default();
        if !patterns_refused {
            for (template, grant) in self
                .patterns
                .deny
                .iter()
                .map(|f| (f, Grant::Deny))
                .chain(self.patterns.allow.iter().map(|(f, g)| (f, *g)))
            {
                if let Some(filter) = substitute(template, client_id, username) {
                    patterns.push(filter, grant);
                }
            }
        }
        ClientAcl {
            rules: Some(Box::new(ClientRules {
                own,
                patterns,
                patterns_refused,
            })),
        }
    }

    /// One-off check; for repeated checks of one client use [`Acl::for_client`].
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        self.for_client(client_id, username).check(topic, access)
    }

    /// True if the file gives some user its own section (a hint for start-up warnings: without a
    /// password file, user names are not verified).
    pub fn has_user_sections(&self) -> bool {
        !self.users.is_empty()
    }
}

/// Spaces and tabs separate words; Mosquitto only splits on spaces, so this accepts more.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The first word of `line` and the rest with surrounding blanks removed.
fn split_word(line: &str) -> (&str, &str) {
    match line.split_once(is_blank) {
        Some((word, rest)) => (word, rest.trim_matches(is_blank)),
        None => (line, ""),
    }
}

/// Parses what follows `topic` or `pattern`: `[access] filter`.
///
/// A single word is the filter with `readwrite`, as in Mosquitto, except that a lone access word
/// (`topic read`) is an error here: Mosquitto would read it as the topic "read".
fn parse_rule(keyword: &str, rest: &str) -> Result<(String, Grant), String> {
    let (first, remainder) = split_word(rest);
    let (grant, filter) = match (Grant::from_word(first), remainder.is_empty()) {
        (_, _) if first.is_empty() => return Err(format!("`{keyword}` needs a topic filter")),
        (Some(_), true) => {
            return Err(format!(
                "`{keyword} {first}` needs a topic filter after the access word"
            ))
        }
        (None, true) => (Grant::ReadWrite, first),
        (Some(grant), false) => (grant, remainder),
        (None, false) => {
            return Err(format!(
                "unknown access {first:?}; expected read, write, readwrite or deny"
            ))
        }
    };
    if filter.starts_with("$share/") {
        return Err(format!(
            "{filter:?}: rules name the filter inside $share/{{group}}/, which is what \
             a shared subscription is checked against"
        ));
    }
    validate_topic_filter(filter, usize::MAX)
        .map_err(|e| format!("invalid topic filter {filter:?}: {}", e.what))?;
    Ok((filter.to_owned(), grant))
}

/// Replaces `%c` by the client id and `%u` by the user name, anywhere in the text (as Mosquitto
/// does). `None` if the template uses `%u` and there is no user name.
fn substitute(template: &str, client_id: &str, username: Option<&str>) -> Option<String> {
    let mut out = String::with_capacity(template.len() + client_id.len());
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('c') {
            out.push_str(client_id);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('u') {
            out.push_str(username?);
            rest = tail;
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// The rules for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientRules {
    /// The user's section, or the anonymous one (shared with the [`Acl`]).
    own: Arc<RuleList>,
    /// Patterns with this client's id and user name filled in.
    patterns: RuleList,
    /// Patterns exist but were skipped because of `+`/`#` in the client id or user name.
    patterns_refused: bool,
}

/// The ACL as one connected client sees it: cheap checks, no allocation per check.
///
/// Built by [`Acl::for_client`] (or [`ClientAcl::allow_all`] when no ACL is configured) and
/// rebuilt after an ACL reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAcl {
    /// `None`: no ACL configured, everything is allowed. Boxed: every session holds a view, and
    /// without an ACL file it costs one word.
    rules: Option<Box<ClientRules>>,
}

impl ClientAcl {
    /// The view when no ACL file is configured: every check passes (today's behaviour, `$SYS`
    /// writes included).
    pub fn allow_all() -> ClientAcl {
        ClientAcl { rules: None }
    }

    /// True if `access` to `topic` is allowed. For [`Access::Subscribe`], `topic` is the filter
    /// as subscribed (a `$share/{group}/` prefix is looked through) and the answer is
    /// [`ClientAcl::check_subscribe`]`.is_granted()`.
    pub fn check(&self, topic: &str, access: Access) -> bool {
        match access {
            Access::Read => self.decide(topic, false),
            Access::Write => self.decide(topic, true),
            Access::Subscribe => self.check_subscribe(topic).is_granted(),
        }
    }

    /// Judges a SUBSCRIBE filter; see the module documentation for the rule.
    pub fn check_subscribe(&self, filter: &str) -> SubscribeVerdict {
        let Some(rules) = &self.rules else {
            return SubscribeVerdict::Full;
        };
        let inner = split_shared(filter).map_or(filter, |(_, inner)| inner);
        let mut deny_overlap = false;
        if let Some(verdict) = rules.own.decide_subscribe(inner, &mut deny_overlap) {
            return verdict;
        }
        rules
            .patterns
            .decide_subscribe(inner, &mut deny_overlap)
            .unwrap_or(SubscribeVerdict::Denied)
    }

    /// True if the ACL has patterns that this client does not get because its client id or user
    /// name contains `+` or `#` (worth a log line: the client will likely be refused a lot).
    pub fn patterns_refused(&self) -> bool {
        self.rules.as_ref().is_some_and(|r| r.patterns_refused)
    }

    /// Read or write decision for a topic name.
    fn decide(&self, topic: &str, write: bool) -> bool {
        let Some(rules) = &self.rules else {
            return true;
        };
        if write && (topic.starts_with("$SYS") || topic.starts_with("$share")) {
            return false;
        }
        rules
            .own
            .decide(topic, write)
            .or_else(|| rules.patterns.decide(topic, write))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests;
