//! Onedata 20.02+ invite tokens over HTTPS: creation as named and temporary
//! tokens (the inviter's privileges, targets, types ozmint does not serve,
//! privileges and usage limits), consumption by the join endpoints, by a
//! provider supporting a space and by a provider registration, the legacy
//! invite endpoints; exactly `usageLimit` of many concurrent consumers
//! through two instances on one engine win.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::Engine;
use ozmint::error::OzError;
use ozmint::model::{Id, Subject, ZonePrivileges};
use ozmint::ops::invites::Joiner;
use ozmint::ops::named_tokens::NamedTokenRequest;
use ozmint::ops::Caller;

use testkit::server::*;

use super::modern::{call, create_named, oz_error, Cred};

fn invite(t: &str, key: &str, target: &str) -> Value {
    json!({ "inviteToken": { "inviteType": t, key: target } })
}

async fn named_token(s: &TestServer, id: &str) -> Value {
    let got = call(
        s,
        Method::GET,
        &format!("/tokens/named/{id}"),
        Cred::Basic(ADMIN),
        None,
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    got.1
}

async fn join(s: &TestServer, path: &str, who: (&str, &str), token: &str) -> (u16, Value, String) {
    let got = call(
        s,
        Method::POST,
        path,
        Cred::Basic(who),
        Some(json!({ "token": token })),
    )
    .await;
    let location = got
        .2
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (got.0, got.1, location)
}

async fn privileges_of(s: &TestServer, path: &str) -> Value {
    let got = call(s, Method::GET, path, Cred::Basic(ADMIN), None).await;
    assert_eq!(got.0, 200, "{path}: {}", got.1);
    got.1["privileges"].clone()
}

#[tokio::test]
async fn group_and_space_invites_are_checked_at_creation_and_consumption() {
    bounded(async {
        let s = start_demo().await;
        let dave = s.add_user("dave", "dave-pw", ZonePrivileges::empty()).await;
        let erin = s.add_user("erin", "erin-pw", ZonePrivileges::empty()).await;
        const DAVE: (&str, &str) = ("dave", "dave-pw");
        const ERIN: (&str, &str) = ("erin", "erin-pw");
        let ujg = invite("userJoinGroup", "groupId", DEMO_GROUP);
        // A plain member may not invite.
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            Some(json!({ "name": "inv", "type": ujg })),
        )
        .await;
        oz_error(&got, 400, "inviteTokenSubjectNotAuthorized");
        // The target must exist.
        let missing = Id::random().to_string();
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(ADMIN),
            Some(json!({ "name": "inv", "type": invite("userJoinSpace", "spaceId", &missing) })),
        )
        .await;
        let e = oz_error(&got, 400, "inviteTokenTargetIdInvalid");
        assert_eq!(e["details"]["id"], missing);
        // Types for entities ozmint has not are refused clearly.
        for (t, key) in [
            ("harvesterJoinSpace", "spaceId"),
            ("userJoinCluster", "clusterId"),
            ("userJoinHarvester", "harvesterId"),
            ("groupJoinAtmInventory", "atmInventoryId"),
        ] {
            let got = call(
                &s,
                Method::POST,
                "/user/tokens/named",
                Cred::Basic(ADMIN),
                Some(json!({ "name": "inv", "type": invite(t, key, DEMO_SPACE) })),
            )
            .await;
            let e = oz_error(&got, 400, "notSupported");
            assert!(e["description"].as_str().unwrap().contains(t), "{e}");
        }
        // Bad privileges and usage limits.
        for (extra, key) in [
            (json!({ "privileges": ["space_view_data"] }), "privileges"),
            (json!({ "privileges": "group_view_data" }), "privileges"),
            (json!({ "usageLimit": 0 }), "usageLimit"),
            (json!({ "usageLimit": "lots" }), "usageLimit"),
        ] {
            let mut body = json!({ "name": "inv", "type": ujg });
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let got = call(
                &s,
                Method::POST,
                "/user/tokens/named",
                Cred::Basic(ADMIN),
                Some(body),
            )
            .await;
            let e = oz_error(&got, 400, "badData");
            assert_eq!(e["details"]["key"], key);
        }
        // An access token takes neither.
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(ADMIN),
            Some(json!({ "name": "acc", "usageLimit": 1 })),
        )
        .await;
        oz_error(&got, 400, "badData");

        // One use, custom privileges: ozmint's names and Onezone's (20.02+),
        // those for features ozmint lacks granting nothing.
        let (id, token) = create_named(
            &s,
            ADMIN,
            json!({ "name": "to demo group", "type": ujg, "usageLimit": 1,
                    "privileges": ["group_view_data", "group_add_user", "group_add_harvester"] }),
        )
        .await;
        let rec = named_token(&s, &id).await;
        assert_eq!(
            rec["type"],
            json!({"inviteToken": {"inviteType": "userJoinGroup", "groupId": DEMO_GROUP,
                                   "parameters": {}}})
        );
        assert_eq!(
            rec["metadata"]["privileges"],
            json!(["group_invite_user", "group_view_data"])
        );
        assert_eq!(rec["metadata"]["usageLimit"], 1);
        assert_eq!(rec["metadata"]["usageCount"], 0);
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_invite_token",
            Cred::None,
            Some(json!({ "token": token, "expectedInviteType": "userJoinGroup" })),
        )
        .await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["subject"], json!({"type": "user", "id": ADMIN_ID}));
        // A group invite does not join a space.
        let (status, body, _) = join(&s, "/user/spaces/join", DAVE, &token).await;
        let e = oz_error(&(status, body, Default::default()), 400, "badValueToken");
        assert_eq!(e["details"]["tokenError"]["id"], "notAnInviteToken");
        let (status, body, location) = join(&s, "/user/groups/join", DAVE, &token).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(location, format!("/user/groups/{DEMO_GROUP}"));
        assert_eq!(
            privileges_of(&s, &format!("/groups/{DEMO_GROUP}/users/{dave}/privileges")).await,
            json!(["group_invite_user", "group_view_data"])
        );
        assert_eq!(named_token(&s, &id).await["metadata"]["usageCount"], 1);
        let (status, body, _) = join(&s, "/user/groups/join", ERIN, &token).await;
        oz_error(
            &(status, body, Default::default()),
            400,
            "inviteTokenUsageLimitReached",
        );
        // Verification does not look at the usage limit, as Onezone's.
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_invite_token",
            Cred::None,
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!(got.0, 200, "{}", got.1);

        // A member already: the Onezone error, and the count stays.
        let (id2, unlimited) = create_named(
            &s,
            ADMIN,
            json!({ "name": "open invite", "type": ujg, "usageLimit": "infinity" }),
        )
        .await;
        let (status, body, _) = join(&s, "/user/groups/join", CAROL, &unlimited).await;
        let e = oz_error(
            &(status, body, Default::default()),
            409,
            "relationAlreadyExists",
        );
        assert_eq!(
            e["details"],
            json!({"childType": "user", "childId": CAROL_ID,
                   "parentType": "group", "parentId": DEMO_GROUP})
        );
        let rec = named_token(&s, &id2).await;
        assert_eq!(rec["metadata"]["usageCount"], 0);
        assert_eq!(rec["metadata"]["usageLimit"], "infinity");
        assert_eq!(
            rec["metadata"]["privileges"],
            json!(["group_view_data"]),
            "the defaults"
        );

        // Dave may invite now; custom privileges need group_set_privileges.
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(DAVE),
            Some(json!({ "name": "daves", "type": ujg, "privileges": ["group_remove"] })),
        )
        .await;
        oz_error(&got, 400, "inviteTokenSubjectNotAuthorized");
        let (_, daves) = create_named(&s, DAVE, json!({ "name": "daves", "type": ujg })).await;
        // Dave loses the privilege: his invitation stops working...
        let patch = |op: &str| json!({ "operation": op, "privileges": ["group_invite_user"] });
        let dave_privs = format!("/groups/{DEMO_GROUP}/users/{dave}/privileges");
        let got = call(
            &s,
            Method::PATCH,
            &dave_privs,
            Cred::Basic(ADMIN),
            Some(patch("revoke")),
        )
        .await;
        assert_eq!(got.0, 204, "{}", got.1);
        let (status, body, _) = join(&s, "/user/groups/join", ERIN, &daves).await;
        oz_error(
            &(status, body, Default::default()),
            400,
            "inviteTokenSubjectNotAuthorized",
        );
        // ... and works again once he has it back.
        let got = call(
            &s,
            Method::PATCH,
            &dave_privs,
            Cred::Basic(ADMIN),
            Some(patch("grant")),
        )
        .await;
        assert_eq!(got.0, 204, "{}", got.1);
        let (status, body, _) = join(&s, "/user/groups/join", ERIN, &daves).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            privileges_of(&s, &format!("/groups/{DEMO_GROUP}/users/{erin}/privileges")).await,
            json!(["group_view_data"])
        );

        // A temporary invite: default privileges, no usage limit.
        let ujs = invite("userJoinSpace", "spaceId", DEMO_SPACE);
        let time = json!([{ "type": "time", "validUntil": unix_now() + 600 }]);
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/temporary",
            Cred::Basic(ADMIN),
            Some(json!({ "type": ujs, "caveats": time, "usageLimit": 2 })),
        )
        .await;
        oz_error(&got, 400, "badData");
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/temporary",
            Cred::Basic(GUEST),
            Some(json!({ "type": ujs, "caveats": time })),
        )
        .await;
        oz_error(&got, 400, "inviteTokenSubjectNotAuthorized");
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/temporary",
            Cred::Basic(ADMIN),
            Some(json!({ "type": ujs, "caveats": time })),
        )
        .await;
        assert_eq!(got.0, 201, "{}", got.1);
        let temporary = got.1["token"].as_str().unwrap().to_owned();
        for (who, uid) in [(DAVE, dave), (ERIN, erin)] {
            let (status, body, location) = join(&s, "/user/spaces/join", who, &temporary).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(location, format!("/user/spaces/{DEMO_SPACE}"));
            assert_eq!(
                privileges_of(&s, &format!("/spaces/{DEMO_SPACE}/users/{uid}/privileges")).await,
                json!(["space_view_data", "space_write_files"])
            );
        }
        // Revoking the temporary tokens revokes the invite.
        let got = call(
            &s,
            Method::DELETE,
            "/user/tokens/temporary",
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        assert_eq!(got.0, 204);
        let (status, body, _) = join(&s, "/user/spaces/join", CAROL, &temporary).await;
        oz_error(&(status, body, Default::default()), 400, "tokenRevoked");

        // Groups join as groups, if the caller may act for the group.
        let got = call(
            &s,
            Method::POST,
            "/user/groups",
            Cred::Basic(ADMIN),
            Some(json!({ "name": "lab" })),
        )
        .await;
        assert_eq!(got.0, 201, "{}", got.1);
        let lab = got.2["location"]
            .to_str()
            .unwrap()
            .trim_start_matches("/groups/")
            .to_owned();
        let (_, gjs) = create_named(
            &s,
            ADMIN,
            json!({ "name": "gjs", "type": invite("groupJoinSpace", "spaceId", DEMO_SPACE) }),
        )
        .await;
        let path = format!("/groups/{lab}/spaces/join");
        let (status, body, _) = join(&s, &path, DAVE, &gjs).await;
        oz_error(&(status, body, Default::default()), 403, "forbidden");
        let (status, body, location) = join(&s, &path, ADMIN, &gjs).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(location, format!("/groups/{lab}/spaces/{DEMO_SPACE}"));
        let (_, gjg) = create_named(
            &s,
            ADMIN,
            json!({ "name": "gjg", "type": invite("groupJoinGroup", "groupId", DEMO_GROUP) }),
        )
        .await;
        let (status, body, location) =
            join(&s, &format!("/groups/{lab}/parents/join"), ADMIN, &gjg).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(location, format!("/groups/{lab}/parents/{DEMO_GROUP}"));
        assert_eq!(
            privileges_of(
                &s,
                &format!("/groups/{DEMO_GROUP}/children/{lab}/privileges")
            )
            .await,
            json!(["group_view_data"])
        );
        // A group cannot join itself.
        let (_, into_lab) = create_named(
            &s,
            ADMIN,
            json!({ "name": "gjg lab", "type": invite("groupJoinGroup", "groupId", &lab) }),
        )
        .await;
        let (status, _, _) =
            join(&s, &format!("/groups/{lab}/parents/join"), ADMIN, &into_lab).await;
        assert_eq!(status, 409);
        // Malformed bodies.
        let got = call(
            &s,
            Method::POST,
            "/user/groups/join",
            Cred::Basic(DAVE),
            Some(json!({})),
        )
        .await;
        oz_error(&got, 400, "missingRequiredValue");
        let got = call(
            &s,
            Method::POST,
            "/user/groups/join",
            Cred::Basic(DAVE),
            Some(json!({ "token": "nope" })),
        )
        .await;
        oz_error(&got, 400, "badValueToken");
        let got = call(
            &s,
            Method::POST,
            "/user/groups/join",
            Cred::None,
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!(got.0, 401);
        assert!(s.store().check().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn providers_register_and_support_spaces_with_invite_tokens() {
    bounded(async {
        let s = start_demo().await;
        let rop = invite("registerOneprovider", "adminUserId", ADMIN_ID);
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            Some(json!({ "name": "reg", "type": invite("registerOneprovider", "adminUserId", GUEST_ID) })),
        )
        .await;
        oz_error(&got, 400, "inviteTokenSubjectNotAuthorized");
        let (rid, reg) =
            create_named(&s, ADMIN, json!({ "name": "reg", "type": rop, "usageLimit": 1 })).await;
        // Anyone may register with it, no credentials needed.
        let got = call(
            &s,
            Method::POST,
            "/providers",
            Cred::None,
            Some(json!({ "name": "p1", "domain": "p1.example.org", "token": reg })),
        )
        .await;
        assert_eq!(got.0, 201, "{}", got.1);
        let pid = got.1["providerId"].as_str().unwrap().to_owned();
        assert_eq!(
            got.2.get("location").unwrap().to_str().unwrap(),
            format!("/providers/{pid}")
        );
        let root = got.1["providerRootToken"].as_str().unwrap().to_owned();
        assert_eq!(named_token(&s, &rid).await["metadata"]["usageCount"], 1);
        let got = call(
            &s,
            Method::POST,
            "/providers",
            Cred::None,
            Some(json!({ "name": "p2", "domain": "p2.example.org", "token": reg })),
        )
        .await;
        assert_eq!(got.0, 400, "{}", got.1);
        assert!(got.1["error_description"].as_str().unwrap().contains("usage limit"), "{}", got.1);
        // Without a token, registration still needs oz_providers_create.
        let got = call(
            &s,
            Method::POST,
            "/providers",
            Cred::None,
            Some(json!({ "name": "p2", "domain": "p2.example.org" })),
        )
        .await;
        assert_eq!(got.0, 401);

        // The new provider supports the demo space with a supportSpace invite.
        let ssp = invite("supportSpace", "spaceId", DEMO_SPACE);
        let (sid, support) =
            create_named(&s, ADMIN, json!({ "name": "support", "type": ssp, "usageLimit": 2 })).await;
        assert_eq!(named_token(&s, &sid).await["metadata"]["privileges"], Value::Null);
        let body = json!({ "token": support, "size": 1_000_000 });
        let got = call(&s, Method::POST, "/provider/spaces/support", Cred::XAuth(&root), Some(body.clone())).await;
        assert_eq!(got.0, 201, "{}", got.1);
        assert_eq!(
            got.2.get("location").unwrap().to_str().unwrap(),
            format!("/spaces/{DEMO_SPACE}")
        );
        // Supported already: nothing more, the count stays.
        let got = call(&s, Method::POST, "/provider/spaces/support", Cred::XAuth(&root), Some(body.clone())).await;
        assert_eq!(got.0, 409, "{}", got.1);
        assert_eq!(named_token(&s, &sid).await["metadata"]["usageCount"], 1);
        // Users cannot support.
        let got = call(&s, Method::POST, "/provider/spaces/support", Cred::Basic(ADMIN), Some(body)).await;
        assert_eq!(got.0, 403);
        let got = call(
            &s,
            Method::GET,
            &format!("/spaces/{DEMO_SPACE}/providers"),
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        assert_eq!(got.1["providers"], json!([pid]));
        assert_eq!(got.1["providersSupports"][&pid], 1_000_000);
        // A legacy support token still works alongside.
        let legacy = expect_token(s.space_token_as(DEMO_SPACE, ADMIN).await).await;
        let got = call(&s, Method::POST, "/provider/spaces/support", Cred::XAuth(&root), Some(json!({ "token": legacy, "size": 5 }))).await;
        assert_eq!(got.0, 409, "{}", got.1);
        assert!(s.store().check().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn legacy_invite_endpoints_answer_one_use_named_invite_tokens() {
    bounded(async {
        let s = start_demo().await;
        s.add_user("dave", "dave-pw", ZonePrivileges::empty()).await;
        let cases = [
            (
                format!("/spaces/{DEMO_SPACE}/users/token"),
                "userJoinSpace",
                "user invite to space - demo space ",
            ),
            (
                format!("/spaces/{DEMO_SPACE}/groups/token"),
                "groupJoinSpace",
                "group invite to space - demo space ",
            ),
            (
                format!("/groups/{DEMO_GROUP}/users/token"),
                "userJoinGroup",
                "user invite to group - demo group ",
            ),
            (
                format!("/groups/{DEMO_GROUP}/children/token"),
                "groupJoinGroup",
                "group invite to group - demo group ",
            ),
        ];
        for (path, t, name) in &cases {
            // Routed as the invite endpoint, not as a member named `token`.
            let got = call(&s, Method::GET, path, Cred::Basic(ADMIN), None).await;
            assert_eq!(got.0, 405, "{path}");
            assert_eq!(got.2.get("allow").unwrap(), "POST");
            let got = call(&s, Method::POST, path, Cred::Basic(GUEST), None).await;
            oz_error(&got, 403, "forbidden");
            let got = call(&s, Method::POST, path, Cred::Basic(ADMIN), None).await;
            assert_eq!(got.0, 200, "{path}: {}", got.1);
            let token = got.1["token"].as_str().unwrap().to_owned();
            let got = call(
                &s,
                Method::POST,
                "/tokens/examine",
                Cred::None,
                Some(json!({ "token": token })),
            )
            .await;
            assert_eq!(got.1["type"]["inviteToken"]["inviteType"], *t, "{}", got.1);
            let id = got.1["id"].as_str().unwrap().to_owned();
            let rec = named_token(&s, &id).await;
            let n = rec["name"].as_str().unwrap();
            assert!(n.starts_with(name) && n.len() == name.len() + 6, "{n}");
            assert_eq!(rec["metadata"]["usageLimit"], 1);
            if *t == "userJoinSpace" {
                let (status, body, _) = join(&s, "/user/spaces/join", CAROL, &token).await;
                assert_eq!(status, 201, "{body}");
                let (status, body, _) =
                    join(&s, "/user/spaces/join", ("dave", "dave-pw"), &token).await;
                oz_error(
                    &(status, body, Default::default()),
                    400,
                    "inviteTokenUsageLimitReached",
                );
            }
        }
        let got = call(
            &s,
            Method::POST,
            &format!("/spaces/{}/users/token", Id::random()),
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        oz_error(&got, 404, "notFound");
        // The seed-era support token endpoint is unchanged (a V1 token).
        let legacy = expect_token(s.space_token_as(DEMO_SPACE, ADMIN).await).await;
        let got = call(
            &s,
            Method::POST,
            "/tokens/examine",
            Cred::Basic(ADMIN),
            Some(json!({ "token": legacy })),
        )
        .await;
        assert_eq!(got.1["type"], "space_support_token", "{}", got.1);
    })
    .await;
}

use testkit::server::zone_on as zone;

#[tokio::test]
async fn exactly_usage_limit_of_concurrent_consumers_join_through_two_instances() {
    const CONSUMERS: usize = 12;
    const LIMIT: u64 = 4;
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
    let (a, b) = (zone(engine.clone()).await, zone(engine).await);
    let owner = a
        .store()
        .create_user("owner", "x".into(), ZonePrivileges::empty())
        .await
        .unwrap();
    let space = a
        .create_space(&Caller::user(owner), "shared")
        .await
        .unwrap();
    let mut users = Vec::new();
    for i in 0..CONSUMERS {
        users.push(
            a.store()
                .create_user(&format!("u{i}"), "x".into(), ZonePrivileges::empty())
                .await
                .unwrap(),
        );
    }
    let req = NamedTokenRequest::from_json(&json!({
        "name": "few seats",
        "type": {"inviteToken": {"inviteType": "userJoinSpace", "spaceId": space.to_string()}},
        "usageLimit": LIMIT,
    }))
    .unwrap();
    let info = a
        .create_named_token(&Caller::user(owner), Subject::User(owner), req)
        .await
        .unwrap();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, u) in users.iter().enumerate() {
        let z = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (u, token) = (*u, info.token.clone());
        tasks.spawn(async move {
            z.join_space(&Caller::user(u), Joiner::Me, &token, None)
                .await
        });
    }
    let results = tasks.join_all().await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won as u64, LIMIT, "{results:?}");
    for r in &results {
        match r {
            Ok(s) => assert_eq!(*s, space),
            Err(ozmint::Error::Onezone(OzError::InviteUsageLimitReached)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let rec = b.store().named_token(&info.id).await.unwrap().unwrap();
    assert_eq!(rec.usage_count, LIMIT);
    let members = a.store().effective_space_users(&space).await.unwrap();
    assert_eq!(members.len() as u64, LIMIT + 1, "the owner and the winners");
    assert!(a.store().check().await.unwrap().is_empty());
}
