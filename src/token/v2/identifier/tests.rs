use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::token::caveat::tests::arb_id;

fn v2(s: &str) -> V2Identifier {
    match Identifier::parse(s) {
        Ok(Identifier::V2(v)) => v,
        other => panic!("{s}: {other:?}"),
    }
}

#[test]
fn the_documented_examples_parse() {
    let a = v2("2/tmp-7/usr-uid/act:sessId/1234567890example-id1234567890a");
    assert_eq!(a.persistence(), Persistence::Temporary { generation: 7 });
    assert_eq!(a.subject(), &TokenSubject::User("uid".into()));
    assert_eq!(
        a.token_type(),
        &TokenType::Access {
            session: Some("sessId".into())
        }
    );
    assert_eq!(a.id(), "1234567890example-id1234567890a");
    let b = v2("2/nmd/prv-pid/idn/x");
    assert_eq!(b.persistence(), Persistence::Named);
    assert_eq!(b.subject(), &TokenSubject::Provider("pid".into()));
    assert_eq!(b.token_type(), &TokenType::Identity);
    let c = v2("2/tmp-49/usr-uid/ujs:spaceId:/x");
    assert_eq!(
        c.token_type(),
        &TokenType::Invite {
            invite_type: InviteType::UserJoinSpace,
            target: "spaceId".into()
        }
    );
    let d = v2("2/nmd/usr-x/ssp:SpaceId:ge/x");
    assert!(d.token_type().is_invite(Some(InviteType::SupportSpace)));
    assert!(!d.token_type().is_invite(Some(InviteType::UserJoinSpace)));
    assert!(d.token_type().is_invite(None));
    assert!(!TokenType::Identity.is_invite(None));
    for s in [
        "2/tmp-7/usr-uid/act:sessId/1234567890example-id1234567890a",
        "2/nmd/prv-pid/idn/x",
        "2/tmp-49/usr-uid/ujs:spaceId:/x",
        "2/nmd/usr-x/ssp:SpaceId:ge/x",
        "2/tmp-0/usr-u/act/i",
        "2/nmd/usr-a:b/act:s:t/i",
    ] {
        assert_eq!(Identifier::parse(s).unwrap().to_string(), s);
    }
}

#[test]
fn legacy_identifiers_are_the_id() {
    for s in [
        "8HfHARHgklqBkZVI4l6MBTvSSvt98ppp6948s8Q7SOk",
        "abc/def",
        "/abc",
        "v2/nmd/usr-x/act/i",
        "2x/nmd/usr-x/act/i",
    ] {
        let id = Identifier::parse(s).unwrap();
        assert_eq!(id, Identifier::V1(s.into()), "{s}");
        assert_eq!(id.version(), 1);
        assert_eq!(id.id(), s);
        assert_eq!(id.persistence(), Persistence::Named);
        assert_eq!(id.token_type(), &TokenType::ACCESS);
        assert_eq!(id.subject(), None);
        assert_eq!(id.to_string(), s);
    }
    assert_eq!(
        TokenSubject::json_of(None),
        json!({"type": "nobody", "id": null})
    );
}

#[test]
fn malformed_identifiers_are_refused() {
    for bad in [
        "",
        "1/abc",
        "3/nmd/usr-x/act/i",
        "02/nmd/usr-x/act/i",
        "+2/nmd/usr-x/act/i",
        "-2/nmd/usr-x/act/i",
        "0/x",
        "2/nmd/usr-x/act",
        "2/nmd/usr-x/act/i/j",
        "2/",
        "2/nmd/usr-x/act/",
        "2/named/usr-x/act/i",
        "2/tmp/usr-x/act/i",
        "2/tmp-/usr-x/act/i",
        "2/tmp-x/usr-x/act/i",
        "2/tmp-07/usr-x/act/i",
        "2/tmp-+7/usr-x/act/i",
        "2/tmp--7/usr-x/act/i",
        "2/tmp-99999999999999999999999/usr-x/act/i",
        "2/nmd/usr-/act/i",
        "2/nmd/prv-/act/i",
        "2/nmd/grp-g/act/i",
        "2/nmd/nobody/act/i",
        "2/nmd/root/act/i",
        "2/nmd/user-x/act/i",
        "2/nmd/usr-x/act:/i",
        "2/nmd/usr-x/acc/i",
        "2/nmd/usr-x/idn:x/i",
        "2/nmd/usr-x/ujs/i",
        "2/nmd/usr-x/ujs:s/i",
        "2/nmd/usr-x/ujs::/i",
        "2/nmd/usr-x/ujs:s:x/i",
        "2/nmd/usr-x/ujs:s::/i",
        "2/nmd/usr-x/ssp:s:/i",
        "2/nmd/usr-x/ssp:s:xx/i",
        "2/nmd/usr-x/ssp:s:gee/i",
        "2/nmd/usr-x/xyz:s:/i",
        "2/nmd/usr-x/UJS:s:/i",
        "2/nmd/usr-\u{7}/act/i",
        "bad\nid",
    ] {
        assert!(
            Identifier::parse(bad).is_err(),
            "{bad:?}: {:?}",
            Identifier::parse(bad)
        );
    }
}

#[test]
fn twenty_oh_two_support_parameters_are_read_as_default() {
    for p in ["ge", "gl", "gn", "ne", "nl", "nn"] {
        let id = Identifier::parse(&format!("2/nmd/usr-x/ssp:s:{p}/i")).unwrap();
        assert_eq!(id.to_string(), "2/nmd/usr-x/ssp:s:ge/i");
    }
}

#[test]
fn every_invite_type_has_its_code_name_and_target() {
    let table = [
        (InviteType::UserJoinGroup, "ujg", "userJoinGroup", "groupId"),
        (
            InviteType::GroupJoinGroup,
            "gjg",
            "groupJoinGroup",
            "groupId",
        ),
        (InviteType::UserJoinSpace, "ujs", "userJoinSpace", "spaceId"),
        (
            InviteType::GroupJoinSpace,
            "gjs",
            "groupJoinSpace",
            "spaceId",
        ),
        (InviteType::SupportSpace, "ssp", "supportSpace", "spaceId"),
        (
            InviteType::HarvesterJoinSpace,
            "hjs",
            "harvesterJoinSpace",
            "spaceId",
        ),
        (
            InviteType::RegisterOneprovider,
            "rop",
            "registerOneprovider",
            "adminUserId",
        ),
        (
            InviteType::UserJoinCluster,
            "ujc",
            "userJoinCluster",
            "clusterId",
        ),
        (
            InviteType::GroupJoinCluster,
            "gjc",
            "groupJoinCluster",
            "clusterId",
        ),
        (
            InviteType::UserJoinHarvester,
            "ujh",
            "userJoinHarvester",
            "harvesterId",
        ),
        (
            InviteType::GroupJoinHarvester,
            "gjh",
            "groupJoinHarvester",
            "harvesterId",
        ),
        (
            InviteType::SpaceJoinHarvester,
            "sjh",
            "spaceJoinHarvester",
            "harvesterId",
        ),
        (
            InviteType::UserJoinAtmInventory,
            "uji",
            "userJoinAtmInventory",
            "atmInventoryId",
        ),
        (
            InviteType::GroupJoinAtmInventory,
            "gji",
            "groupJoinAtmInventory",
            "atmInventoryId",
        ),
    ];
    assert_eq!(table.len(), InviteType::ALL.len());
    for (t, code, name, key) in table {
        assert_eq!((t.code(), t.json_name(), t.target_key()), (code, name, key));
        assert_eq!(InviteType::from_code(code), Some(t));
        assert_eq!(InviteType::from_json_name(name), Some(t));
        let ty = TokenType::invite(t, "T1").unwrap();
        let params = if t == InviteType::SupportSpace {
            "ge"
        } else {
            ""
        };
        assert_eq!(ty.to_string(), format!("{code}:T1:{params}"));
        assert_eq!(TokenType::parse(&ty.to_string()), Ok(ty.clone()));
        let j = json!({"inviteToken": {"inviteType": name, key: "T1", "parameters": {}}});
        assert_eq!(ty.to_json(), j);
        assert_eq!(TokenType::from_json(&j), Ok(ty.clone()));
        // Parameters are optional on input.
        let j = json!({"inviteToken": {"inviteType": name, key: "T1"}});
        assert_eq!(TokenType::from_json(&j), Ok(ty));
    }
}

#[test]
fn types_and_subjects_in_json() {
    let cases = [
        (TokenType::ACCESS, json!({"accessToken": {}})),
        (
            TokenType::access_for_session("s1").unwrap(),
            json!({"accessToken": {"sessionId": "s1"}}),
        ),
        (TokenType::Identity, json!({"identityToken": {}})),
    ];
    for (t, j) in cases {
        assert_eq!(t.to_json(), j);
        assert_eq!(TokenType::from_json(&j), Ok(t.clone()));
        assert_eq!(serde_json::from_value::<TokenType>(j.clone()).unwrap(), t);
        assert_eq!(serde_json::to_value(&t).unwrap(), j);
    }
    // Onezone reads `identityToken` whatever it holds.
    assert_eq!(
        TokenType::from_json(&json!({"identityToken": {"x": 1}})),
        Ok(TokenType::Identity)
    );
    for bad in [
        json!("act"),
        json!("access"),
        json!({"accessToken": {"bad": "data"}}),
        json!({"accessToken": {"sessionId": 5}}),
        json!({"accessToken": {"sessionId": ""}}),
        json!({"accessToken": []}),
        json!({"inviteToken": {"inviteType": "groupJoinGroup"}}),
        json!({"inviteToken": {"inviteType": "groupJoinGroup", "spaceId": "id"}}),
        json!({"inviteToken": {"inviteType": "groupJoinGroup", "groupId": ""}}),
        json!({"inviteToken": {"inviteType": "groupJoinGroup", "groupId": "a:b"}}),
        json!({"inviteToken": {"inviteType": "groupJoinGroup", "groupId": 5}}),
        json!({"inviteToken": {"inviteType": "gjg", "groupId": "id"}}),
        json!({}),
    ] {
        assert!(TokenType::from_json(&bad).is_err(), "{bad}");
    }
    let u = TokenSubject::user("u1").unwrap();
    let p = TokenSubject::provider("p1").unwrap();
    assert_eq!(u.to_json(), json!({"type": "user", "id": "u1"}));
    assert_eq!(p.to_json(), json!({"type": "oneprovider", "id": "p1"}));
    assert_eq!(TokenSubject::json_of(Some(&p)), p.to_json());
    for s in [&u, &p] {
        assert_eq!(TokenSubject::from_json(&s.to_json()).as_ref(), Ok(s));
    }
    for bad in [
        json!({"type": "nobody", "id": null}),
        json!({"type": "group", "id": "g"}),
        json!({"type": "user"}),
        json!({"type": "user", "id": ""}),
        json!({"type": "user", "id": "a/b"}),
        json!({"type": "provider", "id": "p"}),
    ] {
        assert!(TokenSubject::from_json(&bad).is_err(), "{bad}");
    }
    assert!(TokenSubject::user("a/b").is_err());
    assert!(TokenType::invite(InviteType::UserJoinSpace, "a:b").is_err());
    assert!(TokenType::access_for_session("").is_err());
    assert!(V2Identifier::new(Persistence::Named, u.clone(), TokenType::ACCESS, "a/b").is_err());
    assert!(V2Identifier::new(Persistence::Named, u.clone(), TokenType::ACCESS, "").is_err());
    // Hand-built parts that would not read back are refused.
    let bad_subject = TokenSubject::User("x/y".into());
    assert!(V2Identifier::new(Persistence::Named, bad_subject, TokenType::ACCESS, "i").is_err());
    let bad_type = TokenType::Invite {
        invite_type: InviteType::UserJoinGroup,
        target: "a:b".into(),
    };
    assert!(V2Identifier::new(Persistence::Named, u, bad_type, "i").is_err());
    assert_eq!(Persistence::Named.json_name(), "named");
    assert_eq!(
        Persistence::Temporary { generation: 3 }.json_name(),
        "temporary"
    );
}

pub(crate) fn arb_identifier() -> impl Strategy<Value = V2Identifier> {
    let persistence = prop_oneof![
        Just(Persistence::Named),
        any::<u64>().prop_map(|generation| Persistence::Temporary { generation }),
    ];
    let subject = prop_oneof![
        arb_id().prop_map(TokenSubject::User),
        arb_id().prop_map(TokenSubject::Provider),
    ];
    let token_type = prop_oneof![
        Just(TokenType::ACCESS),
        arb_id().prop_map(|s| TokenType::Access { session: Some(s) }),
        Just(TokenType::Identity),
        (
            proptest::sample::select(InviteType::ALL.to_vec()),
            arb_id().prop_filter("no :", |t| !t.contains(':'))
        )
            .prop_map(|(invite_type, target)| TokenType::Invite {
                invite_type,
                target
            }),
    ];
    (persistence, subject, token_type, arb_id())
        .prop_map(|(p, s, t, id)| V2Identifier::new(p, s, t, &id).unwrap_or_else(|e| panic!("{e}")))
}

proptest! {
    #[test]
    fn v2_identifiers_round_trip(id in arb_identifier()) {
        let text = id.to_string();
        prop_assert_eq!(Identifier::parse(&text), Ok(Identifier::V2(id.clone())));
        prop_assert_eq!(TokenType::from_json(&id.token_type().to_json()), Ok(id.token_type().clone()));
        let json = id.token_type().to_json();
        prop_assert_eq!(json.as_object().map(|o| o.keys().map(String::as_str).collect::<Vec<_>>()), Some(vec![id.token_type().json_key()]));
        prop_assert_eq!(TokenSubject::from_json(&id.subject().to_json()), Ok(id.subject().clone()));
    }

    /// `new` accepts hand-built parts exactly when their identifier reads
    /// back as itself.
    #[test]
    fn new_accepts_what_reads_back(
        user in any::<bool>(),
        subject in "[a-z/:\\x00]{0,3}",
        kind in 0..4u8,
        part in "[a-z/:\\x00]{0,3}",
        id in "[a-z/]{1,3}",
    ) {
        let subject = if user { TokenSubject::User(subject) } else { TokenSubject::Provider(subject) };
        let token_type = match kind {
            0 => TokenType::ACCESS,
            1 => TokenType::Access { session: Some(part) },
            2 => TokenType::Identity,
            _ => TokenType::Invite { invite_type: InviteType::SupportSpace, target: part },
        };
        let built = V2Identifier { persistence: Persistence::Named, subject: subject.clone(), token_type: token_type.clone(), id: id.clone() };
        let reads_back = Identifier::parse(&built.to_string()) == Ok(Identifier::V2(built.clone()));
        let made = V2Identifier::new(Persistence::Named, subject, token_type, &id);
        prop_assert_eq!(made.is_ok(), reads_back, "{}", built);
        if let Ok(made) = made {
            prop_assert_eq!(made, built);
        }
    }

    #[test]
    fn legacy_identifiers_round_trip(id in "[A-Za-z0-9_-]{1,60}") {
        prop_assume!(!id.starts_with('2') || !id.contains('/'));
        let parsed = Identifier::parse(&id).unwrap();
        prop_assert_eq!(parsed.to_string(), id.clone());
        prop_assert_eq!(parsed, Identifier::V1(id));
    }

    /// Whatever is accepted prints back as itself (`ssp` 20.02 parameters aside).
    #[test]
    fn accepted_identifiers_are_canonical(s in "2/(nmd|tmp-[0-9]{1,3})/(usr|prv|grp)-[a-z:]{0,3}/(act|idn|act:[a-z:]{0,3}|ujs:[a-z]{0,2}:[a-z]{0,2}|ssp:[a-z]{0,2}:ge)/[a-z]{0,3}") {
        if let Ok(id) = Identifier::parse(&s) {
            prop_assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn arbitrary_identifiers_never_panic(s in "\\PC{0,60}") {
        let _ = Identifier::parse(&s);
    }
}
