use proptest::prelude::*;
use serde_json::json;

use super::api::{AspectPattern, GriPattern, IdPattern, ENTITY_TYPES};
use super::*;

fn text(s: &str) -> Result<Caveat, CaveatError> {
    Caveat::from_text(s)
}

#[test]
fn legacy_caveats_parse_as_before() {
    for c in [
        Caveat::TokenType(TokenKind::SpaceSupport),
        Caveat::TokenType(TokenKind::SpaceCreate),
        Caveat::TokenType(TokenKind::Access),
        Caveat::TokenType(TokenKind::Provider),
        Caveat::TimeBefore(1496140144),
        Caveat::TimeBefore(0),
    ] {
        assert_eq!(Caveat::parse(c.to_predicate().as_bytes()), Some(c));
    }
    // As before: leading zeros in `time <` are read (Onedata reads them too).
    assert_eq!(
        Caveat::parse(b"time < 0001496140144"),
        Some(Caveat::TimeBefore(1496140144))
    );
    for bad in [
        "time < ",
        "time < -1",
        "time < +5",
        "time < 1e9",
        "time <  5",
        "time > 5",
        "time < 5 ",
        "tokenType = root",
        "tokentype = space_support_token",
        "ip = 127.0.0.1",
        "time < 99999999999999999999999",
        "time < 99999999999999999999",
    ] {
        assert_eq!(Caveat::parse(bad.as_bytes()), None, "{bad}");
    }
    assert_eq!(Caveat::parse(b"time < \xff"), None);
}

#[test]
fn every_kind_reads_and_writes_as_ctool() {
    let objectid = data::objectid_of_file("123", "abc").unwrap();
    let cases: Vec<(&str, Value, Caveat)> = vec![
        (
            "time < 8374891234",
            json!({"type": "time", "validUntil": 8374891234u64}),
            Caveat::TimeBefore(8374891234),
        ),
        (
            "ip = 172.98.11.23/32|10.0.0.0/8|0.0.0.0/0",
            json!({"type": "ip", "whitelist": ["172.98.11.23/32", "10.0.0.0/8", "0.0.0.0/0"]}),
            Caveat::Ip(vec![
                IpMask::new(Ipv4Addr::new(172, 98, 11, 23), 32).unwrap(),
                IpMask::new(Ipv4Addr::new(10, 0, 0, 0), 8).unwrap(),
                IpMask::new(Ipv4Addr::UNSPECIFIED, 0).unwrap(),
            ]),
        ),
        (
            "asn = 322|4294967295",
            json!({"type": "asn", "whitelist": [322, 4294967295u64]}),
            Caveat::Asn(vec![322, u32::MAX]),
        ),
        (
            "geo.country = PL|FR",
            json!({"type": "geo.country", "filter": "whitelist", "list": ["PL", "FR"]}),
            Caveat::Country {
                filter: ListFilter::Whitelist,
                list: vec!["PL".into(), "FR".into()],
            },
        ),
        (
            "geo.country != DE",
            json!({"type": "geo.country", "filter": "blacklist", "list": ["DE"]}),
            Caveat::Country {
                filter: ListFilter::Blacklist,
                list: vec!["DE".into()],
            },
        ),
        (
            "geo.region = Asia|EU",
            json!({"type": "geo.region", "filter": "whitelist", "list": ["Asia", "EU"]}),
            Caveat::Region {
                filter: ListFilter::Whitelist,
                list: vec![Region::Asia, Region::EuropeanUnion],
            },
        ),
        (
            "geo.region != Africa|Antarctica|Europe|NorthAmerica|Oceania|SouthAmerica",
            json!({"type": "geo.region", "filter": "blacklist",
                   "list": ["Africa", "Antarctica", "Europe", "NorthAmerica", "Oceania", "SouthAmerica"]}),
            Caveat::Region {
                filter: ListFilter::Blacklist,
                list: vec![
                    Region::Africa,
                    Region::Antarctica,
                    Region::Europe,
                    Region::NorthAmerica,
                    Region::Oceania,
                    Region::SouthAmerica,
                ],
            },
        ),
        (
            "authorization = none",
            json!({"scope": "identityToken"}),
            Caveat::IdentityScope,
        ),
        (
            "service = ozw-onezone|ozp-onezone|opw-*|opp-p1",
            json!({"type": "service", "whitelist": ["ozw-onezone", "ozp-onezone", "opw-*", "opp-p1"]}),
            Caveat::Service(vec![
                ServiceSpec::onezone(),
                ServiceSpec::new(Service::OzPanel, ONEZONE_CLUSTER_ID),
                ServiceSpec::new(Service::OpWorker, WILDCARD),
                ServiceSpec::new(Service::OpPanel, "p1"),
            ]),
        ),
        (
            "consumer = usr-user-id|grp-group-id|prv-*",
            json!({"type": "consumer", "whitelist": ["usr-user-id", "grp-group-id", "prv-*"]}),
            Caveat::Consumer(vec![
                ConsumerSpec::new(ConsumerKind::User, "user-id"),
                ConsumerSpec::new(ConsumerKind::Group, "group-id"),
                ConsumerSpec::new(ConsumerKind::Provider, WILDCARD),
            ]),
        ),
        (
            "interface = graphsync",
            json!({"type": "interface", "interface": "graphsync"}),
            Caveat::Interface(Interface::Graphsync),
        ),
        (
            "interface = oneclient",
            json!({"type": "interface", "interface": "oneclient"}),
            Caveat::Interface(Interface::Oneclient),
        ),
        (
            "api = all/all/*.*.*:*|ozw/get/user.*.*:auto",
            json!({"type": "api", "whitelist": ["all/all/*.*.*:*", "ozw/get/user.*.*:auto"]}),
            Caveat::Api(vec![
                MatchSpec::parse("all/all/*.*.*:*").unwrap(),
                MatchSpec::parse("ozw/get/user.*.*:auto").unwrap(),
            ]),
        ),
        (
            "data.readonly",
            json!({"type": "data.readonly"}),
            Caveat::DataReadonly,
        ),
        (
            "data.path = L3NwYWNlMS9maWxlMS50eHQ=|L3NwYWNlMi9kaXIvZmlsZTIudHh0",
            json!({"type": "data.path", "whitelist": ["L3NwYWNlMS9maWxlMS50eHQ=", "L3NwYWNlMi9kaXIvZmlsZTIudHh0"]}),
            Caveat::DataPath(vec![
                "/space1/file1.txt".into(),
                "/space2/dir/file2.txt".into(),
            ]),
        ),
        (
            "data.objectid = 00000000000CDBDA677569642331323323616263",
            json!({"type": "data.objectid", "whitelist": [objectid.clone()]}),
            Caveat::DataObjectId(vec![objectid.clone()]),
        ),
        (
            "tokenType = space_support_token",
            json!({"type": "tokenType", "tokenType": "space_support_token"}),
            Caveat::TokenType(TokenKind::SpaceSupport),
        ),
    ];
    for (t, j, c) in cases {
        assert_eq!(text(t).as_ref(), Ok(&c), "{t}");
        assert_eq!(c.to_text(), t);
        assert_eq!(c.to_json(), j, "{t}");
        assert_eq!(Caveat::from_json(&j).as_ref(), Ok(&c), "{j}");
        assert_eq!(c.validate(), Ok(()));
        // serde goes through the JSON form.
        assert_eq!(serde_json::to_value(&c).unwrap(), j);
        assert_eq!(serde_json::from_value::<Caveat>(j).unwrap(), c);
    }
    assert_eq!(objectid, "00000000000CDBDA677569642331323323616263");
}

#[test]
fn json_input_is_read_as_onezone_reads_it() {
    let ip = Caveat::from_json(&json!({"type": "ip", "whitelist": ["1.2.3.4", "5.6.7.0/24"]}));
    assert_eq!(ip.unwrap().to_text(), "ip = 1.2.3.4/32|5.6.7.0/24");
    let api = Caveat::from_json(&json!({"type": "api", "whitelist": ["ozw/all/user.*.*"]}));
    assert_eq!(api.unwrap().to_text(), "api = ozw/all/user.*.*:private");
    // ctool reads the text form the same way (one `gri:deserialize`).
    let read = text("api = ozw/all/user.*.*").unwrap();
    assert_eq!(read.to_text(), "api = ozw/all/user.*.*:private");
    // Other members are ignored.
    let t = Caveat::from_json(&json!({"type": "time", "validUntil": 5, "note": "x"}));
    assert_eq!(t, Ok(Caveat::TimeBefore(5)));
    // Lower-case hex object ids are object ids too, kept as written.
    let lower = data::objectid_of_file("f", "s")
        .unwrap()
        .to_ascii_lowercase();
    let c = Caveat::from_json(&json!({"type": "data.objectid", "whitelist": [lower]})).unwrap();
    assert_eq!(c.to_json()["whitelist"][0], json!(lower));
    assert_eq!(text(&c.to_text()), Ok(c));
}

#[test]
fn malformed_text_is_refused() {
    let objectid = data::objectid_of_file("123", "abc").unwrap();
    for bad in [
        "",
        " time < 5",
        "grant = everything",
        "ip = ",
        "ip = 1.2.3.4",
        "ip = 1.2.3.4/33",
        "ip = 1.2.3.4/024",
        "ip = 1.2.3.4/+24",
        "ip = 01.2.3.4/32",
        "ip = 1.2.3/32",
        "ip = 1.2.3.4/32|",
        "ip = 1.2.3.4/32||5.6.7.8/32",
        "ip = ::1/128",
        "ip = 1.2.3.4/32 ",
        "ip  = 1.2.3.4/32",
        "asn = ",
        "asn = 1.2",
        "asn = -5",
        "asn = 05",
        "asn = 4294967296",
        "asn = 76fb",
        "geo.country = ",
        "geo.country = POL",
        "geo.country = P",
        "geo.country = P!",
        "geo.country == PL",
        "geo.region = Atlantis",
        "geo.region = asia",
        "geo.region != ",
        "authorization = all",
        "authorization = none ",
        "service = ",
        "service = xcvsdjuhfsdfh",
        "service = ozw",
        "service = ozw-",
        "service = xyz-onezone",
        "service = OZW-onezone",
        "consumer = ",
        "consumer = nobody",
        "consumer = usr-",
        "consumer = root-x",
        "consumer = usr-a|",
        "interface = ",
        "interface = REST",
        "interface = rest|oneclient",
        "api = ",
        "api = all/user.*.*:auto",
        "data.readonly ",
        "data.readonly = true",
        "data.writeonly",
        "data.path = ",
        "data.path = L3NwYWNlMS9maWxlMS50eHQ",
        "data.path = L3NwYWNlMS9maWxlMS50eHQ=|",
        "data.path = Lw==",
        "data.path = L3NwYWNlMS8=",
        "data.path = YS9iL2M=",
        "data.path = !!!!",
        "data.path = L3NwYWNlMS9maWxlMS50eHQ=x",
        "data.objectid = ",
        "data.objectid = 1234",
        "data.objectid = abcdefabcdefabcdefabcdefabcdefab",
        "tokenType = ",
        "tokenType = invite_token",
    ] {
        assert!(
            text(bad).is_err(),
            "{bad:?} was accepted as {:?}",
            text(bad)
        );
    }
    // Non-canonical base64 of a canonical path.
    let path = STANDARD.encode("/space1/file1.txt");
    assert!(text(&format!("data.path = {path}")).is_ok());
    assert!(text(&format!("data.path = {}", path.trim_end_matches('='))).is_err());
    assert!(text(&format!("data.objectid = {objectid}|")).is_err());
}

#[test]
fn malformed_json_is_refused() {
    let objectid = data::objectid_of_file("123", "abc").unwrap();
    for bad in [
        json!("abc"),
        json!(1233454567),
        json!([]),
        json!({}),
        json!({"type": "time"}),
        json!({"type": "time", "validAfter": 1231231}),
        json!({"type": "time", "validUntil": "infinity"}),
        json!({"type": "time", "validUntil": -1}),
        json!({"type": "time", "validUntil": 1.5}),
        json!({"type": "ip", "whitelist": []}),
        json!({"type": "ip", "whitelist": "all"}),
        json!({"type": "ip", "whitelist": ["all"]}),
        json!({"type": "ip", "whitelist": ["172.98.11.23/34"]}),
        json!({"type": "ip", "whitelist": ["172.9998.11.23/30"]}),
        json!({"type": "ip", "blacklist": ["172.98.11.23/32"]}),
        json!({"type": "ip", "whitelist": [17]}),
        json!({"type": "asn", "whitelist": []}),
        json!({"type": "asn", "whitelist": "zxcvxz"}),
        json!({"type": "asn", "whitelist": ["zxcvxz"]}),
        json!({"type": "asn", "whitelist": ["45.785.112"]}),
        json!({"type": "asn", "whitelist": ["76fb"]}),
        json!({"type": "asn", "whitelist": [-3]}),
        json!({"type": "asn", "blacklist": [45, 785, 112]}),
        json!({"type": "geo.country", "filter": "blacklist", "list": []}),
        json!({"type": "geo.country", "filter": "whitelist", "list": []}),
        json!({"type": "geo.country", "filter": "badlist", "list": ["PL", "DE"]}),
        json!({"type": "geo.country", "list": ["PL", "DE"]}),
        json!({"type": "geo.country", "filter": "blacklist", "list": [1, 2, 3]}),
        json!({"type": "geo.country", "filter": "blacklist", "list": ["P|"]}),
        json!({"type": "geo.region", "filter": "blacklist", "list": []}),
        json!({"type": "geo.region", "filter": "badlist", "list": ["Asia", "EU"]}),
        json!({"type": "geo.region", "filter": "blacklist", "list": [1, 2, 3]}),
        json!({"type": "geo.region", "filter": "whitelist", "list": ["Mars"]}),
        json!({"scope": "unlimited"}),
        json!({"scope": "access_token"}),
        json!({"type": "service", "whitelist": []}),
        json!({"type": "service", "whitelist": "opp-123"}),
        json!({"type": "service", "whitelist": ["xcvsdjuhfsdfh"]}),
        json!({"type": "service", "blacklist": ["opp-123"]}),
        json!({"type": "service", "whitelist": ["opp-a|b"]}),
        json!({"type": "consumer", "whitelist": []}),
        json!({"type": "consumer", "whitelist": "opp-123"}),
        json!({"type": "consumer", "whitelist": ["xcvsdjuhfsdfh"]}),
        json!({"type": "consumer", "blacklist": ["usr-123"]}),
        json!({"type": "consumer", "whitelist": ["nobody"]}),
        json!({"type": "interface", "interface": ["graphsync", "rest"]}),
        json!({"type": "interface", "interface": 123}),
        json!({"type": "interface", "interface": {"abcd": "ghij"}}),
        json!({"type": "api", "whitelist": []}),
        json!({"type": "api", "blacklist": ["ozw/all/user.*.*:auto"]}),
        json!({"type": "api", "whitelist": ["all/user.*.*:auto"]}),
        json!({"type": "api", "whitelist": "8sdafhg72aw3r"}),
        json!({"type": "api", "whitelist": ["avbb", 343]}),
        json!({"type": "data.writeonly"}),
        json!({"type": "data.path", "whitelist": []}),
        json!({"type": "data.path", "whitelist": ["a/b/c/d/e$%#@"]}),
        json!({"type": "data.path", "blacklist": [STANDARD.encode("/space1/file1.txt")]}),
        json!({"type": "data.path", "whitelist": [STANDARD.encode("a/b/c/d/e")]}),
        json!({"type": "data.path", "whitelist": [STANDARD.encode("/a/b/"), STANDARD.encode("/s/d")]}),
        json!({"type": "data.path", "whitelist": [STANDARD.encode("/")]}),
        json!({"type": "data.path", "whitelist": ["a", STANDARD.encode("/b/c")]}),
        json!({"type": "data.path", "whitelist": [STANDARD.encode("/space1/")]}),
        json!({"type": "data.path", "whitelist": ["/"]}),
        json!({"type": "data.objectid", "whitelist": []}),
        json!({"type": "data.objectid", "whitelist": [343]}),
        json!({"type": "data.objectid", "whitelist": ["abcdef0123456789abcdef0123456789"]}),
        json!({"type": "data.objectid", "blacklist": [objectid]}),
        json!({"type": "tokenType", "tokenType": "root"}),
        json!({"type": "colour", "whitelist": ["blue"]}),
        json!({"type": 5}),
    ] {
        assert!(
            Caveat::from_json(&bad).is_err(),
            "{bad} was accepted as {:?}",
            Caveat::from_json(&bad)
        );
    }
}

#[test]
fn hand_built_caveats_are_validated() {
    for bad in [
        Caveat::Ip(vec![]),
        Caveat::Asn(vec![]),
        Caveat::Country {
            filter: ListFilter::Whitelist,
            list: vec!["PL|FR".into()],
        },
        Caveat::Region {
            filter: ListFilter::Whitelist,
            list: vec![],
        },
        Caveat::Service(vec![ServiceSpec::new(Service::OpWorker, "")]),
        Caveat::Consumer(vec![ConsumerSpec::new(ConsumerKind::User, "a|b")]),
        Caveat::Api(vec![]),
        Caveat::DataPath(vec!["/s/".into()]),
        Caveat::DataPath(vec!["/s/\0".into()]),
        Caveat::DataObjectId(vec!["00".into()]),
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn masks_match_as_cidr() {
    let m = |s: &str| IpMask::parse(s, false).unwrap();
    let ip = Ipv4Addr::new(189, 34, 15, 77);
    assert!(m("189.34.15.0/24").matches(ip));
    assert!(m("189.34.15.77/32").matches(ip));
    assert!(!m("189.34.15.78/32").matches(ip));
    assert!(m("189.34.15.200/24").matches(ip), "host bits are ignored");
    assert!(!m("189.34.16.0/24").matches(ip));
    assert!(m("0.0.0.0/0").matches(ip));
    assert!(m("128.0.0.0/1").matches(ip));
    assert!(!m("0.0.0.0/1").matches(ip));
    assert!(IpMask::new(ip, 33).is_none());
}

#[test]
fn kinds_and_data_access() {
    assert!(Caveat::DataReadonly.is_data_access());
    assert!(Caveat::DataPath(vec!["/s".into()]).is_data_access());
    assert!(Caveat::DataObjectId(vec![]).is_data_access());
    assert!(Caveat::Interface(Interface::Oneclient).is_data_access());
    assert!(!Caveat::Interface(Interface::Rest).is_data_access());
    assert!(!Caveat::TimeBefore(1).is_data_access());
    assert_eq!(Caveat::IdentityScope.kind(), CaveatKind::IdentityScope);
    assert_eq!(
        Caveat::expiration(&[
            Caveat::TimeBefore(9),
            Caveat::DataReadonly,
            Caveat::TimeBefore(3)
        ]),
        Some(3)
    );
    assert_eq!(Caveat::expiration(&[Caveat::DataReadonly]), None);
}

// ---------------------------------------------------------------------------
// Strategies, also used by the v2 tests.
// ---------------------------------------------------------------------------

/// Ids as Onedata makes them, and some with odd (but allowed) characters.
pub(crate) fn arb_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{1,40}",
        "[a-z0-9.:,*#@ ~-]{1,12}",
        "\\PC{1,8}".prop_filter("no separators", |s| !s.contains('|') && !s.contains('/')),
    ]
}

fn arb_gri_part() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        "[a-zA-Z0-9_-]{0,12}",
        "[a-z]{1,5}[#@ ~-][a-z]{0,3}"
    ]
}

fn arb_match_spec() -> impl Strategy<Value = MatchSpec> {
    let service = proptest::option::of(proptest::sample::select(Service::ALL.to_vec()));
    let operation = proptest::option::of(proptest::sample::select(Operation::ALL.to_vec()));
    let ty = proptest::option::of(proptest::sample::select(ENTITY_TYPES.to_vec()));
    let id = prop_oneof![
        Just(IdPattern::Any),
        Just(IdPattern::Null),
        arb_gri_part()
            .prop_filter("not a wildcard", |s| s != "*" && s != "null")
            .prop_map(IdPattern::Is),
    ];
    let aspect = prop_oneof![
        arb_gri_part().prop_map(AspectPattern::Single),
        (arb_gri_part(), arb_gri_part()).prop_map(|(a, b)| AspectPattern::Pair(a, b)),
    ];
    let scope = proptest::option::of(proptest::sample::select(vec![
        GriScope::Private,
        GriScope::Protected,
        GriScope::Shared,
        GriScope::Public,
        GriScope::Auto,
    ]));
    (service, operation, ty, id, aspect, scope).prop_map(
        |(service, operation, ty, id, aspect, scope)| MatchSpec {
            service,
            operation,
            gri: GriPattern {
                entity_type: ty.map(str::to_owned),
                id,
                aspect,
                scope,
            },
        },
    )
}

fn arb_path() -> impl Strategy<Value = String> {
    proptest::collection::vec("[^/\\x00]{1,10}", 1..4)
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

fn list<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<T>> {
    proptest::collection::vec(s, 1..4)
}

fn arb_filter() -> impl Strategy<Value = ListFilter> {
    prop_oneof![Just(ListFilter::Whitelist), Just(ListFilter::Blacklist)]
}

/// Any valid caveat.
pub(crate) fn arb_caveat() -> impl Strategy<Value = Caveat> {
    let mask =
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpMask::new(Ipv4Addr::from(a), l).unwrap());
    let service = (proptest::sample::select(Service::ALL.to_vec()), arb_id())
        .prop_map(|(s, id)| ServiceSpec { service: s, id });
    let consumer = (
        proptest::sample::select(vec![
            ConsumerKind::User,
            ConsumerKind::Group,
            ConsumerKind::Provider,
        ]),
        prop_oneof![Just(WILDCARD.to_owned()), arb_id()],
    )
        .prop_map(|(kind, id)| ConsumerSpec { kind, id });
    let objectid = (arb_id(), "[a-zA-Z0-9]{1,20}")
        .prop_map(|(f, s)| data::objectid_of_file(&f.replace('#', ""), &s).unwrap());
    prop_oneof![
        proptest::sample::select(TokenKind::ALL.to_vec()).prop_map(Caveat::TokenType),
        any::<u64>().prop_map(Caveat::TimeBefore),
        list(mask).prop_map(Caveat::Ip),
        list(any::<u32>()).prop_map(Caveat::Asn),
        (arb_filter(), list("[A-Z0-9]{2}"))
            .prop_map(|(filter, list)| Caveat::Country { filter, list }),
        (
            arb_filter(),
            list(proptest::sample::select(Region::ALL.to_vec()))
        )
            .prop_map(|(filter, list)| Caveat::Region { filter, list }),
        list(service).prop_map(Caveat::Service),
        list(consumer).prop_map(Caveat::Consumer),
        proptest::sample::select(Interface::ALL.to_vec()).prop_map(Caveat::Interface),
        list(arb_match_spec()).prop_map(Caveat::Api),
        Just(Caveat::DataReadonly),
        list(arb_path()).prop_map(Caveat::DataPath),
        list(objectid).prop_map(Caveat::DataObjectId),
        Just(Caveat::IdentityScope),
    ]
}

proptest! {
    #[test]
    fn text_round_trips(c in arb_caveat()) {
        let t = c.to_text();
        prop_assert_eq!(Caveat::from_text(&t), Ok(c.clone()), "{}", t);
        prop_assert_eq!(Caveat::parse(t.as_bytes()), Some(c.clone()));
        prop_assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn json_round_trips(c in arb_caveat()) {
        let j = c.to_json();
        prop_assert_eq!(Caveat::from_json(&j), Ok(c.clone()), "{}", j);
        let via_serde: Caveat = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        prop_assert_eq!(via_serde, c);
    }

    /// Whatever text is accepted is exactly the text of what it parses to
    /// (no two texts for one caveat), `time <` leading zeros aside.
    #[test]
    fn accepted_text_is_canonical(s in "(time < |ip = |asn = |geo\\.country != |geo\\.region = |service = |consumer = |interface = |api = |data\\.path = |data\\.objectid = )[ -~]{0,40}") {
        if let Ok(c) = Caveat::from_text(&s) {
            if !matches!(c, Caveat::TimeBefore(_)) {
                prop_assert_eq!(c.to_text(), s);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
        let _ = Caveat::from_text(&s);
    }

    #[test]
    fn arbitrary_json_never_panics(ty in "[a-z.]{0,14}", list in proptest::collection::vec("\\PC{0,20}", 0..3)) {
        let _ = Caveat::from_json(&json!({"type": ty, "whitelist": list, "list": list, "filter": "whitelist", "validUntil": 5, "interface": "rest"}));
    }
}
