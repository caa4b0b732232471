//! Administration: users, groups, spaces, memberships, privileges, backup.
//!
//! Paths, methods, bodies and status codes follow the Onezone rc14 API:
//! create -> 201 with `Location`, PATCH -> 204, DELETE -> 202, PUT of a group
//! member -> 200, PUT of a space member -> 204. Lists are bounded: `?limit=N`
//! (1..=1000, default 1000) and `?after=<id>`; a full page carries `next`, the
//! cursor of the following page.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{created, empty};
use super::error::ApiError;
use super::routes::{Container, Endpoint, Members};
use super::{json, parse_id, read_json, App};
use crate::model::{Group, GroupType, Id, Space, Support, User, ZonePrivilege as ZP};
use crate::ops::containers::Effective;
use crate::ops::members::{NamedChange, PrivilegeChange};
use crate::ops::{Caller, Listed, PageRequest};
use crate::store::PAGE_MAX;

type Resp = Response<Full<Bytes>>;

/// Page bounds from the query string: `?limit=N&after=ID`.
fn page(query: Option<&str>) -> Result<PageRequest, ApiError> {
    {
        let mut page = PageRequest {
            after: None,
            limit: PAGE_MAX,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "limit" => {
                    page.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=PAGE_MAX).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!("`limit` must be 1 to {PAGE_MAX}."))
                        })?
                }
                "after" => page.after = Some(parse_id(v)?),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Unknown query parameter `{k}`."
                    )))
                }
            }
        }
        Ok(page)
    }
}

/// `{"<key>": [ids], "next": cursor?}`: a full page carries `next` (the
/// page after it may be empty), a shorter one does not.
fn id_list(key: &str, list: Listed<Id>, page: PageRequest) -> Resp {
    let mut body = json!({ key: list.items.iter().map(Id::to_string).collect::<Vec<_>>() });
    let full = list.items.len() == page.limit;
    if let Some(last) = list
        .next
        .or(full.then(|| list.items.last().copied()).flatten())
    {
        body["next"] = json!(last.to_string());
    }
    json(StatusCode::OK, &body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

/// Onezone's `GroupCreateRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    #[serde(default, rename = "type")]
    kind: GroupType,
}

/// Onezone's `GroupUpdateRequest`: either field, or both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupUpdate {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<GroupType>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// A privilege update: `{"operation": "set"|"grant"|"revoke", "privileges": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivUpdate {
    #[serde(default = "set_op")]
    operation: String,
    privileges: Vec<String>,
}

fn set_op() -> String {
    "set".into()
}

fn privileges(names: Vec<&'static str>) -> Resp {
    json(StatusCode::OK, &json!({ "privileges": names }))
}

/// The list key of a relation's members in responses.
fn list_key(m: Members) -> &'static str {
    match m {
        Members::GroupUsers | Members::SpaceUsers => "users",
        Members::GroupChildren => "children",
        Members::SpaceGroups => "groups",
    }
}

/// Runs an administration endpoint for an authenticated caller.
pub(super) async fn dispatch(
    app: &Arc<App>,
    ep: Endpoint,
    caller: Caller,
    method: Method,
    query: Option<String>,
    body: Bytes,
) -> Result<Resp, ApiError> {
    let zone = &app.zone;
    let page = || page(query.as_deref());
    use Endpoint::*;
    match ep {
        Users if method == Method::POST => {
            let req: NewUser = read_json(app, &body)?;
            let id = zone
                .create_user(&caller, &req.username, &req.password)
                .await?;
            Ok(created(&format!("/users/{id}")))
        }
        Users => {
            let p = page()?;
            Ok(id_list("users", zone.list_users(&caller, p).await?, p))
        }
        UserById(id) => {
            let uid = parse_id(&id)?;
            if method == Method::DELETE {
                zone.delete_user(&caller, uid).await?;
                return Ok(empty(StatusCode::ACCEPTED));
            }
            Ok(user_info(&uid, &zone.get_user(&caller, uid).await?))
        }
        UserPrivileges(id) => {
            let uid = parse_id(&id)?;
            if method == Method::PATCH {
                // 404 and 403 before the body is looked at.
                zone.require_exists(crate::Entity::User, &uid).await?;
                zone.require(&caller, crate::ops::Action::Zone(ZP::SetPrivileges))
                    .await?;
                let upd: PrivUpdate = read_json(app, &body)?;
                let change = PrivilegeChange::parse(&upd.operation, &upd.privileges)?;
                zone.update_zone_privileges(&caller, uid, change).await?;
                return Ok(empty(StatusCode::NO_CONTENT));
            }
            Ok(privileges(
                zone.zone_privileges(&caller, uid).await?.names(),
            ))
        }
        Me => {
            let (uid, user) = zone.me(&caller).await?;
            Ok(user_info(&uid, &user))
        }
        MyPassword => {
            caller.user_id()?;
            let req: PasswordChange = read_json(app, &body)?;
            zone.change_password(&caller, &req.old_password, &req.new_password)
                .await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        MyGroups if method == Method::POST => {
            caller.user_id()?;
            let req: NewGroup = read_json(app, &body)?;
            let id = zone.create_group(&caller, &req.name, req.kind).await?;
            Ok(created(&format!("/groups/{id}")))
        }
        MySpaces if method == Method::POST => {
            caller.user_id()?;
            let req: NameBody = read_json(app, &body)?;
            let id = zone.create_space(&caller, &req.name).await?;
            Ok(created(&format!("/spaces/{id}")))
        }
        MyGroups => {
            let p = page()?;
            Ok(id_list("groups", zone.my_groups(&caller, p).await?, p))
        }
        MySpaces => {
            let p = page()?;
            Ok(id_list("spaces", zone.my_spaces(&caller, p).await?, p))
        }
        Groups if method == Method::POST => {
            caller.user_id()?;
            let req: NewGroup = read_json(app, &body)?;
            let id = zone.create_group(&caller, &req.name, req.kind).await?;
            Ok(created(&format!("/groups/{id}")))
        }
        Spaces if method == Method::POST => {
            caller.user_id()?;
            let req: NameBody = read_json(app, &body)?;
            let id = zone.create_space(&caller, &req.name).await?;
            Ok(created(&format!("/spaces/{id}")))
        }
        Groups => {
            let p = page()?;
            Ok(id_list(
                "groups",
                zone.list_containers(&caller, super::routes::Container::Group, p)
                    .await?,
                p,
            ))
        }
        Spaces => {
            let p = page()?;
            Ok(id_list(
                "spaces",
                zone.list_containers(&caller, super::routes::Container::Space, p)
                    .await?,
                p,
            ))
        }
        Endpoint::Container(c, id) => container(app, &caller, c, &id, method, &body).await,
        MemberList(m, id) => {
            let cid = parse_id(&id)?;
            let p = page()?;
            Ok(id_list(
                list_key(m),
                zone.members(&caller, m, cid, p).await?,
                p,
            ))
        }
        Member(m, id, mid) => {
            let (cid, mid) = (parse_id(&id)?, parse_id(&mid)?);
            match method {
                Method::PUT => {
                    zone.add_member(&caller, m, cid, mid).await?;
                    Ok(empty(match m.container() {
                        crate::error::Entity::Group => StatusCode::OK,
                        _ => StatusCode::NO_CONTENT,
                    }))
                }
                Method::DELETE => {
                    zone.remove_member(&caller, m, cid, mid).await?;
                    Ok(empty(StatusCode::ACCEPTED))
                }
                _ => {
                    zone.member(&caller, m, cid, mid).await?;
                    match m.member() {
                        crate::error::Entity::User => {
                            let user = app
                                .zone
                                .store()
                                .user(&mid)
                                .await?
                                .ok_or(crate::Error::NotFound(crate::error::Entity::User))?;
                            Ok(user_info(&mid, &user))
                        }
                        _ => {
                            let group = app
                                .zone
                                .store()
                                .group(&mid)
                                .await?
                                .ok_or(crate::Error::NotFound(crate::error::Entity::Group))?;
                            Ok(group_info(&mid, &group))
                        }
                    }
                }
            }
        }
        MemberPrivileges(m, id, mid) => {
            let (cid, mid) = (parse_id(&id)?, parse_id(&mid)?);
            if method == Method::PATCH {
                // 404 and 403 before the body is looked at.
                zone.may_update_member_privileges(&caller, m, cid, mid)
                    .await?;
                let upd: PrivUpdate = read_json(app, &body)?;
                let change = NamedChange {
                    operation: upd.operation,
                    privileges: upd.privileges,
                };
                zone.update_member_privileges(&caller, m, cid, mid, &change)
                    .await?;
                return Ok(empty(StatusCode::NO_CONTENT));
            }
            Ok(privileges(
                zone.member_privileges(&caller, m, cid, mid).await?.names(),
            ))
        }
        EffectiveUsers(c, id) => {
            let cid = parse_id(&id)?;
            let p = page()?;
            Ok(id_list(
                "users",
                zone.effective_users(&caller, c, cid, p).await?,
                p,
            ))
        }
        EffectiveUserPrivileges(c, id, uid) => {
            let (cid, uid) = (parse_id(&id)?, parse_id(&uid)?);
            Ok(privileges(
                match zone.effective_privileges(&caller, c, cid, uid).await? {
                    Effective::Group(p) => p.names(),
                    Effective::Space(p) => p.names(),
                },
            ))
        }
        EffectiveChildren(id) => {
            let gid = parse_id(&id)?;
            let p = page()?;
            Ok(id_list(
                "children",
                zone.effective_children(&caller, gid, p).await?,
                p,
            ))
        }
        MyEffectiveGroups => {
            let p = page()?;
            Ok(id_list(
                "groups",
                zone.my_effective_groups(&caller, p).await?,
                p,
            ))
        }
        MyEffectiveGroup(id) => {
            let gid = parse_id(&id)?;
            Ok(group_info(
                &gid,
                &zone.my_effective_group(&caller, gid).await?,
            ))
        }
        MyEffectiveSpaces => {
            let p = page()?;
            Ok(id_list(
                "spaces",
                zone.my_effective_spaces(&caller, p).await?,
                p,
            ))
        }
        MyEffectiveSpace(id) => {
            let sid = parse_id(&id)?;
            let (s, supports) = zone.my_effective_space(&caller, sid).await?;
            Ok(space_info(&sid, &s, supports))
        }
        MyEffectiveProviders => {
            let p = page()?;
            Ok(id_list(
                "providers",
                zone.my_effective_providers(&caller, p).await?,
                p,
            ))
        }
        GroupParents(id) => {
            let gid = parse_id(&id)?;
            let p = page()?;
            Ok(id_list(
                "groups",
                zone.group_parents(&caller, gid, p).await?,
                p,
            ))
        }
        GroupEffectiveParents(id) => {
            let gid = parse_id(&id)?;
            let p = page()?;
            Ok(id_list(
                "groups",
                zone.group_effective_parents(&caller, gid, p).await?,
                p,
            ))
        }
        GroupEffectiveSpaces(id) => {
            let gid = parse_id(&id)?;
            let p = page()?;
            Ok(id_list(
                "spaces",
                zone.group_effective_spaces(&caller, gid, p).await?,
                p,
            ))
        }
        SpaceEffectiveGroups(id) => {
            let sid = parse_id(&id)?;
            let p = page()?;
            Ok(id_list(
                "groups",
                zone.space_effective_groups(&caller, sid, p).await?,
                p,
            ))
        }
        Backup => {
            let dir = app.backup_dir.join(format!(
                "backup-{}-{:08x}",
                crate::model::now(),
                rand::random::<u32>()
            ));
            zone.backup(&caller, &dir).await?;
            Ok(json(
                StatusCode::CREATED,
                &json!({ "path": dir.to_string_lossy() }),
            ))
        }
        other => Err(ApiError::internal(&format!("no handler for {other:?}"))),
    }
}

/// A user as Onezone renders one (keys in the order `json!` sorts them).
#[derive(serde::Serialize)]
struct UserInfo<'a> {
    login: &'a str,
    name: &'a str,
    #[serde(rename = "userId")]
    user_id: String,
    username: &'a str,
}

fn user_info(uid: &Id, u: &User) -> Resp {
    let info = UserInfo {
        login: &u.name,
        name: &u.name,
        user_id: uid.to_string(),
        username: &u.name,
    };
    json(StatusCode::OK, &info)
}

fn group_info(gid: &Id, g: &Group) -> Resp {
    json(
        StatusCode::OK,
        &json!({ "groupId": gid.to_string(), "name": g.name, "type": g.kind.as_str() }),
    )
}

fn space_info(sid: &Id, s: &Space, supports: Vec<(Id, Support)>) -> Resp {
    let supports: serde_json::Map<String, Value> = supports
        .into_iter()
        .map(|(p, s)| (p.to_string(), json!(s.size)))
        .collect();
    json(
        StatusCode::OK,
        &json!({ "spaceId": sid.to_string(), "name": s.name, "providersSupports": supports }),
    )
}

async fn container(
    app: &Arc<App>,
    caller: &Caller,
    c: Container,
    id: &str,
    method: Method,
    body: &Bytes,
) -> Result<Resp, ApiError> {
    let cid = parse_id(id)?;
    let zone = &app.zone;
    match (method, c) {
        (Method::PATCH, Container::Group) => {
            // 404 and 403 before the body is looked at.
            zone.get_group(caller, cid).await?;
            zone.require(
                caller,
                crate::ops::Action::Group(cid, crate::model::GroupPrivilege::ChangeData, None),
            )
            .await?;
            let req: GroupUpdate = read_json(app, body)?;
            zone.update_group(caller, cid, req.name.as_deref(), req.kind)
                .await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::PATCH, Container::Space) => {
            zone.get_space(caller, cid).await?;
            zone.require(
                caller,
                crate::ops::Action::Space(cid, crate::model::SpacePrivilege::ChangeData, None),
            )
            .await?;
            let req: NameBody = read_json(app, body)?;
            zone.rename_space(caller, cid, &req.name).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::DELETE, c) => {
            zone.delete_container(caller, c, cid).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        (_, Container::Group) => Ok(group_info(&cid, &zone.get_group(caller, cid).await?)),
        (_, Container::Space) => {
            let (s, supports) = zone.get_space(caller, cid).await?;
            Ok(space_info(&cid, &s, supports))
        }
    }
}
