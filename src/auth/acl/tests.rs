//! Unit tests of the ACL: the read/write matrix was checked against mosquitto 2.0.11 with the same
//! file (a subscriber to `#` per client, and PUBLISH to each topic, reading the broker's log of
//! denied publishes), so each expectation below is Mosquitto's answer too.

use super::*;

/// The file used against mosquitto 2.0.11.
const MOSQUITTO_CHECKED: &str = "\
# anonymous
topic read pub/#
topic deny pub/secret
topic write anon/in

user alice
topic readwrite a/#
topic deny a/secret/#
user root
topic readwrite #
pattern readwrite dev/%c/#
pattern read usr/%u/#
pattern deny dev/%c/locked
";

const TOPICS: [&str; 12] = [
    "pub/x",
    "pub/secret",
    "anon/in",
    "a/x",
    "a/secret/x",
    "b/x",
    "dev/a1/x",
    "dev/a1/locked",
    "dev/al1/x",
    "dev/b1/x",
    "usr/alice/x",
    "usr/bob/x",
];

fn acl(text: &str) -> Acl {
    Acl::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The topics of [`TOPICS`] that `client` may access.
fn allowed(acl: &Acl, client: &str, user: Option<&str>, access: Access) -> Vec<&'static str> {
    let view = acl.for_client(client, user);
    TOPICS
        .into_iter()
        .filter(|t| view.check(t, access))
        .collect()
}

/// (client id, user name, readable topics, writable topics).
type Expected = (
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn read_and_write_match_mosquitto() {
    let acl = acl(MOSQUITTO_CHECKED);
    // (client id, user name, readable, writable), as mosquitto 2.0.11 answered.
    let cases: [Expected; 5] = [
        ("a1", None, &["pub/x", "dev/a1/x"], &["anon/in", "dev/a1/x"]),
        (
            "al1",
            Some("alice"),
            &["a/x", "dev/al1/x", "usr/alice/x"],
            &["a/x", "dev/al1/x"],
        ),
        ("b1", Some("bob"), &["dev/b1/x", "usr/bob/x"], &["dev/b1/x"]),
        // CVE-2017-7650: a client id or user name with + or # gets no pattern at all.
        ("x#", Some("bob"), &[], &[]),
        ("bu1", Some("bad#"), &[], &[]),
    ];
    for (client, user, read, write) in cases {
        assert_eq!(
            allowed(&acl, client, user, Access::Read),
            read,
            "{client} read"
        );
        assert_eq!(
            allowed(&acl, client, user, Access::Write),
            write,
            "{client} write"
        );
    }
}

#[test]
fn anonymous_rules_are_for_anonymous_clients_only() {
    let acl = acl("topic readwrite open/#\nuser u\ntopic read u/#\n");
    assert!(acl.check("c", None, "open/x", Access::Write));
    assert!(!acl.check("c", Some("u"), "open/x", Access::Write));
    assert!(!acl.check("c", Some("other"), "open/x", Access::Read));
    assert!(acl.check("c", Some("u"), "u/x", Access::Read));
    assert!(!acl.check("c", Some("u"), "u/x", Access::Write));
    assert!(!acl.check("c", None, "u/x", Access::Read));
    // An empty user name is a user name, not anonymity.
    assert!(!acl.check("c", Some(""), "open/x", Access::Read));
}

#[test]
fn deny_beats_allow_within_a_section_whatever_the_order() {
    for text in [
        "topic readwrite a/#\ntopic deny a/b\n",
        "topic deny a/b\ntopic readwrite a/#\n",
    ] {
        let acl = acl(text);
        assert!(!acl.check("c", None, "a/b", Access::Read), "{text}");
        assert!(!acl.check("c", None, "a/b", Access::Write), "{text}");
        assert!(acl.check("c", None, "a/c", Access::Write), "{text}");
    }
}

#[test]
fn own_section_beats_patterns_and_pattern_deny_beats_pattern_allow() {
    let acl =
        acl("user u\ntopic read d/u1/secret\npattern deny d/%c/secret\npattern readwrite d/%c/#\n");
    // The user's own allow is decided before the pattern deny.
    assert!(acl.check("u1", Some("u"), "d/u1/secret", Access::Read));
    // Another user only has the patterns: the deny wins over the allow.
    assert!(!acl.check("u1", Some("v"), "d/u1/secret", Access::Read));
    assert!(acl.check("u1", Some("v"), "d/u1/other", Access::Write));
    // A deny in the own section beats an allowing pattern.
    let acl2 = Acl::parse("user u\ntopic deny d/#\npattern readwrite d/%c/#\n").unwrap();
    assert!(!acl2.check("u1", Some("u"), "d/u1/x", Access::Read));
    assert!(acl2.check("u1", Some("v"), "d/u1/x", Access::Read));
}

#[test]
fn patterns_substitute_client_id_and_user_name() {
    let acl = acl("pattern readwrite c/%c/u/%u\npattern read x%cy/%%u\n");
    assert!(acl.check("dev1", Some("ann"), "c/dev1/u/ann", Access::Write));
    assert!(!acl.check("dev1", Some("ann"), "c/dev2/u/ann", Access::Write));
    // %u without a user name: that pattern does not apply at all.
    assert!(!acl.check("dev1", None, "c/dev1/u/", Access::Read));
    assert!(!acl.check("dev1", None, "c/dev1/u/%u", Access::Read));
    // Substitution works inside a level, and "%%u" keeps the first '%'.
    assert!(acl.check("7", Some("ann"), "x7y/%ann", Access::Read));
    // A '/' in the client id adds levels, as in Mosquitto.
    assert!(acl.check("a/b", Some("n"), "c/a/b/u/n", Access::Read));
}

#[test]
fn wildcards_in_client_id_or_user_name_never_match_a_pattern() {
    let acl = acl("pattern readwrite dev/%c/#\npattern readwrite usr/%u/#\ntopic read pub/#\n");
    for (id, user) in [
        ("#", None),
        ("+", None),
        ("a+b", None),
        ("ok", Some("#")),
        ("ok", Some("x+")),
    ] {
        let view = acl.for_client(id, user);
        assert!(view.patterns_refused(), "{id} {user:?}");
        // Without the fix, id "#" would make dev/#/# and open everything under dev/.
        for topic in [
            "dev/other/x",
            "dev/#/x",
            "dev/+/x",
            "usr/someone/x",
            "usr/x+/y",
        ] {
            assert!(!view.check(topic, Access::Read), "{id} {user:?} {topic}");
            assert!(!view.check(topic, Access::Write), "{id} {user:?} {topic}");
        }
        assert!(!view.check("dev/#", Access::Subscribe), "{id} {user:?}");
        // The own section still applies (Mosquitto checks it before the patterns).
        assert_eq!(view.check("pub/x", Access::Read), user.is_none());
    }
    let fine = acl.for_client("ok", Some("ann"));
    assert!(!fine.patterns_refused());
    assert!(fine.check("dev/ok/x", Access::Write) && fine.check("usr/ann/x", Access::Write));
    // '/' is allowed in ids (Mosquitto 2 no longer refuses it).
    assert!(!acl.for_client("a/b", None).patterns_refused());
    // Without patterns there is nothing to refuse.
    assert!(!Acl::parse("topic read #\n")
        .unwrap()
        .for_client("#", None)
        .patterns_refused());
}

#[test]
fn dollar_topics() {
    let acl = acl("topic readwrite #\ntopic read $SYS/#\ntopic readwrite $app/#\n");
    let view = acl.for_client("c", None);
    // `#` does not reach $ topics; a rule spelling `$SYS` does.
    assert!(view.check("a/b", Access::Read));
    assert!(view.check("$SYS/broker/uptime", Access::Read));
    assert!(view.check("$app/x", Access::Write));
    // Clients never write to $SYS or $share, whatever the rules say.
    let open = acl_text_all_access();
    let open = open.for_client("c", None);
    for topic in ["$SYS/x", "$SYS", "$SYSx/y", "$share/g/t", "$shared"] {
        assert!(!open.check(topic, Access::Write), "{topic}");
    }
    assert!(open.check("$SYS/x", Access::Read));
    assert!(open.check("$other/x", Access::Write));
    // Subscriptions to $ filters need a $ rule too.
    assert!(!acl
        .for_client("c", None)
        .check("$other/#", Access::Subscribe));
    assert!(view.check("$SYS/#", Access::Subscribe));
    // Without an ACL nothing is refused (today's behaviour).
    assert!(ClientAcl::allow_all().check("$SYS/x", Access::Write));
}

fn acl_text_all_access() -> Acl {
    acl("topic readwrite #\ntopic readwrite $SYS/#\ntopic readwrite $other/#\ntopic readwrite $shared\n")
}

#[test]
fn subscribe_verdicts() {
    let acl = acl(
        "topic read sensors/#\ntopic deny sensors/private/#\ntopic write cmd/#\n\
                   pattern read dev/%c/#\npattern readwrite all/+\n",
    );
    let view = acl.for_client("d1", None);
    let cases = [
        ("sensors/+/temp", SubscribeVerdict::Partial), // overlaps the deny (sensors/private/temp)
        ("sensors/kitchen/#", SubscribeVerdict::Full),
        ("sensors/kitchen", SubscribeVerdict::Full),
        ("sensors/private/#", SubscribeVerdict::Denied),
        ("sensors/private/x", SubscribeVerdict::Denied),
        ("sensors/#", SubscribeVerdict::Partial),
        ("#", SubscribeVerdict::Partial),
        ("+/kitchen", SubscribeVerdict::Partial),
        ("cmd/#", SubscribeVerdict::Denied), // write only
        ("actuators/#", SubscribeVerdict::Denied),
        ("dev/d1/#", SubscribeVerdict::Full), // a pattern covers it, no deny shares a topic
        ("dev/d2/#", SubscribeVerdict::Denied),
        ("all/x", SubscribeVerdict::Full),
        ("all/#", SubscribeVerdict::Partial), // all/+ shares all/x but not all or all/x/y
        ("$share/g/sensors/kitchen/#", SubscribeVerdict::Full),
        ("$share/g/actuators/#", SubscribeVerdict::Denied),
        ("$SYS/#", SubscribeVerdict::Denied),
    ];
    for (filter, want) in cases {
        assert_eq!(view.check_subscribe(filter), want, "{filter}");
        assert_eq!(view.check(filter, Access::Subscribe), want.is_granted());
    }
    // With no deny rule in the way, a covering pattern gives Full.
    let simple = Acl::parse("pattern read dev/%c/#\n").unwrap();
    let view = simple.for_client("d1", None);
    assert_eq!(view.check_subscribe("dev/d1/+"), SubscribeVerdict::Full);
    assert_eq!(view.check_subscribe("dev/+/x"), SubscribeVerdict::Partial);
    assert_eq!(view.check_subscribe("dev/d2/x"), SubscribeVerdict::Denied);
    assert_eq!(
        ClientAcl::allow_all().check_subscribe("#"),
        SubscribeVerdict::Full
    );
}

#[test]
fn subscribe_refusals_are_exact() {
    // A refused filter must not match any readable topic: check against the read decision on a
    // grid of topics.
    let acl = acl(MOSQUITTO_CHECKED);
    let levels = [
        "pub", "secret", "x", "a", "dev", "a1", "locked", "usr", "alice", "$SYS",
    ];
    let mut topics: Vec<String> = levels.iter().map(|s| s.to_string()).collect();
    for _ in 0..2 {
        let deeper: Vec<String> = topics
            .iter()
            .flat_map(|t| levels.iter().map(move |l| format!("{t}/{l}")))
            .collect();
        topics.extend(deeper);
    }
    let filters = [
        "#",
        "pub/#",
        "pub/+",
        "pub/secret",
        "a/#",
        "a/secret/#",
        "+/+/x",
        "dev/+/locked",
        "dev/a1/+",
        "usr/+/x",
        "x/#",
        "$SYS/#",
        "+/secret",
    ];
    for (client, user) in [("a1", None), ("al1", Some("alice")), ("b1", Some("bob"))] {
        let view = acl.for_client(client, user);
        for filter in filters {
            let verdict = view.check_subscribe(filter);
            let readable: Vec<&String> = topics
                .iter()
                .filter(|t| matches(filter, t) && view.check(t, Access::Read))
                .collect();
            let everything = topics
                .iter()
                .filter(|t| matches(filter, t))
                .all(|t| view.check(t, Access::Read));
            match verdict {
                SubscribeVerdict::Denied => {
                    assert!(readable.is_empty(), "{client} {filter}: {readable:?}")
                }
                SubscribeVerdict::Full => assert!(everything, "{client} {filter}"),
                SubscribeVerdict::Partial => {}
            }
        }
    }
}

#[test]
fn empty_acl_denies_everything() {
    for text in ["", "# nothing\n\n", "user alice\n"] {
        let acl = acl(text);
        assert!(!acl.check("c", None, "a", Access::Read), "{text:?}");
        assert!(
            !acl.check("c", Some("alice"), "a", Access::Write),
            "{text:?}"
        );
        assert!(!acl.check("c", None, "#", Access::Subscribe), "{text:?}");
    }
}

#[test]
fn syntax_forms() {
    let acl = acl("  # indented comment\n\
         \ttopic\tread\tt/1\r\n\
         topic    t/2   \n\
         topic write topic with spaces/x\n\
         user   name with spaces  \n\
         topic deny #\n\
         user alice\n\
         topic read al/#\n\
         user bob\n\
         user alice\n\
         topic write al2/#\n");
    let anon = acl.for_client("c", None);
    assert!(anon.check("t/1", Access::Read) && !anon.check("t/1", Access::Write));
    // No access word: readwrite.
    assert!(anon.check("t/2", Access::Read) && anon.check("t/2", Access::Write));
    assert!(anon.check("topic with spaces/x", Access::Write));
    assert!(!acl.check("c", Some("name with spaces"), "t/2", Access::Read));
    // A repeated user line adds to the same section.
    let alice = acl.for_client("c", Some("alice"));
    assert!(alice.check("al/x", Access::Read) && alice.check("al2/x", Access::Write));
    assert!(!acl.check("c", Some("bob"), "al/x", Access::Read));
    assert!(acl.has_user_sections());
    assert!(!Acl::parse("topic a\npattern b/%c\n")
        .unwrap()
        .has_user_sections());
}

#[test]
fn bad_lines_are_errors_naming_the_line() {
    let cases = [
        ("topic read a\nuser\n", 2, "needs a user name"),
        ("user   \t\n", 1, "needs a user name"),
        ("topic\n", 1, "needs a topic filter"),
        ("pattern   \n", 1, "needs a topic filter"),
        ("topic read\n", 1, "after the access word"),
        ("\n\ntopic deny \n", 3, "after the access word"),
        ("topic readonly a/b\n", 1, "unknown access \"readonly\""),
        ("topic read a/#/b\n", 1, "invalid topic filter \"a/#/b\""),
        ("topic read a/b+\n", 1, "invalid topic filter"),
        (
            "topic read a/b # trailing comment\n",
            1,
            "invalid topic filter",
        ),
        ("pattern write dev/%c#\n", 1, "invalid topic filter"),
        ("usr alice\n", 1, "unknown keyword \"usr\""),
        ("topic read $share/g/a\n", 1, "inside $share/{group}/"),
        ("topic read a\nTopic read b\n", 2, "unknown keyword"),
        (
            "# ok\ntopic read a\r\nfoo\n",
            3,
            "expected topic, pattern or user",
        ),
    ];
    for (text, line, want) in cases {
        let err = Acl::parse(text).expect_err(text);
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(err.message.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn substitute_edge_cases() {
    assert_eq!(substitute("a/%c", "id", None).as_deref(), Some("a/id"));
    assert_eq!(substitute("%c%u%c", "i", Some("u")).as_deref(), Some("iui"));
    assert_eq!(substitute("a/%u", "i", None), None);
    assert_eq!(substitute("100%", "i", None).as_deref(), Some("100%"));
    assert_eq!(substitute("%x/%", "i", None).as_deref(), Some("%x/%"));
    assert_eq!(substitute("é%cé", "ü", None).as_deref(), Some("éüé"));
}
