//! Administration: users, groups, spaces, memberships, privileges, backup.
//!
//! Paths, methods, bodies and status codes follow the Onezone rc14 API:
//! create -> 201 with `Location`, PATCH -> 204, DELETE -> 202, PUT of a group
//! member -> 200, PUT of a space member -> 204. Lists are bounded: `?limit=N`
//! (1..=1000, default 1000) and `?after=<id>`; a full page carries `next`, the
//! cursor of the following page.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::routes::{Container as Kind, Endpoint, Members};
use super::{blocking, exists, json, parse_id, read_json, require, user_only, App};
use crate::auth::{hash_password, verify_password, Action};
use crate::error::{Entity, Error};
use crate::model::{
    GroupPrivilege as GP, GroupPrivileges, GroupType, Id, PrivSet, Privilege, SpacePrivilege as SP,
    SpacePrivileges, Subject, ZonePrivilege as ZP, ZonePrivileges,
};
use crate::store::{
    Relation, Store, GROUP_CHILDREN, GROUP_USERS, PAGE_MAX, SPACE_GROUPS, SPACE_USERS,
};

type Resp = Response<Full<Bytes>>;

/// Page bounds from the query string.
#[derive(Clone, Copy, Debug)]
pub(super) struct Page {
    after: Option<Id>,
    limit: usize,
}

impl Page {
    pub(super) fn from_query(query: Option<&str>) -> Result<Page, ApiError> {
        let mut page = Page {
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

    /// Applies the page to a sorted set.
    fn slice(&self, all: &BTreeSet<Id>) -> Vec<Id> {
        let iter: Box<dyn Iterator<Item = &Id>> = match self.after {
            Some(a) => {
                Box::new(all.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)))
            }
            None => Box::new(all.iter()),
        };
        iter.take(self.limit).copied().collect()
    }
}

/// `{"<key>": [ids], "next": cursor?}`.
fn id_list(key: &str, ids: &[Id], page: Page) -> Resp {
    let mut body = json!({ key: ids.iter().map(Id::to_string).collect::<Vec<_>>() });
    if ids.len() == page.limit {
        if let Some(last) = ids.last() {
            body["next"] = json!(last.to_string());
        }
    }
    json(StatusCode::OK, &body)
}

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn created(path: String) -> Resp {
    let mut r = empty(StatusCode::CREATED);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&path) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r
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

impl PrivUpdate {
    fn apply<P: Privilege>(&self, old: PrivSet<P>) -> Result<PrivSet<P>, ApiError> {
        let given = PrivSet::<P>::from_names(&self.privileges)
            .map_err(|n| ApiError::bad_request(format!("Unknown privilege `{n}`.")))?;
        match self.operation.as_str() {
            "set" => Ok(given),
            "grant" => Ok(old.union(given)),
            "revoke" => Ok(old.difference(given)),
            other => Err(ApiError::bad_request(format!(
                "Unknown operation `{other}`: use set, grant or revoke."
            ))),
        }
    }
}

fn privileges<P: Privilege>(set: PrivSet<P>) -> Resp {
    json(StatusCode::OK, &json!({ "privileges": set.names() }))
}

/// What a membership relation is, seen from the HTTP API.
struct MemberKind<P: 'static> {
    relation: &'static Relation<PrivSet<P>>,
    container: Entity,
    member: Entity,
    /// Container privilege (and zone alternative) to view, add, remove, set privileges.
    view: Action2,
    add: Action2,
    remove: Action2,
    set: Action2,
    /// Status of a successful PUT.
    put_status: StatusCode,
    /// Default privileges of a new member.
    default: fn() -> PrivSet<P>,
}

/// A container privilege with its zone alternative, not yet bound to an id.
#[derive(Clone, Copy)]
enum Action2 {
    Group(GP, Option<ZP>),
    Space(SP, Option<ZP>),
}

impl Action2 {
    fn on(self, id: Id) -> Action {
        match self {
            Action2::Group(p, z) => Action::Group(id, p, z),
            Action2::Space(p, z) => Action::Space(id, p, z),
        }
    }
}

const GROUP_VIEW: Action2 = Action2::Group(GP::ViewData, Some(ZP::ListGroups));
const SPACE_VIEW: Action2 = Action2::Space(SP::ViewData, Some(ZP::ListSpaces));

const GROUP_USERS_KIND: MemberKind<GP> = MemberKind {
    relation: &GROUP_USERS,
    container: Entity::Group,
    member: Entity::User,
    view: GROUP_VIEW,
    add: Action2::Group(GP::InviteUser, Some(ZP::GroupsAddMembers)),
    remove: Action2::Group(GP::RemoveUser, Some(ZP::GroupsRemoveMembers)),
    set: Action2::Group(GP::SetPrivileges, Some(ZP::SetPrivileges)),
    put_status: StatusCode::OK,
    default: GroupPrivileges::member_default,
};

const GROUP_CHILDREN_KIND: MemberKind<GP> = MemberKind {
    relation: &GROUP_CHILDREN,
    container: Entity::Group,
    member: Entity::Group,
    view: GROUP_VIEW,
    add: Action2::Group(GP::InviteGroup, Some(ZP::GroupsAddMembers)),
    remove: Action2::Group(GP::RemoveGroup, Some(ZP::GroupsRemoveMembers)),
    set: Action2::Group(GP::SetPrivileges, Some(ZP::SetPrivileges)),
    put_status: StatusCode::OK,
    default: GroupPrivileges::member_default,
};

const SPACE_USERS_KIND: MemberKind<SP> = MemberKind {
    relation: &SPACE_USERS,
    container: Entity::Space,
    member: Entity::User,
    view: SPACE_VIEW,
    add: Action2::Space(SP::InviteUser, Some(ZP::AddMemberToSpace)),
    remove: Action2::Space(SP::RemoveUser, Some(ZP::RemoveMemberFromSpace)),
    set: Action2::Space(SP::SetPrivileges, Some(ZP::SetPrivileges)),
    put_status: StatusCode::NO_CONTENT,
    default: SpacePrivileges::member_default,
};

const SPACE_GROUPS_KIND: MemberKind<SP> = MemberKind {
    relation: &SPACE_GROUPS,
    container: Entity::Space,
    member: Entity::Group,
    view: SPACE_VIEW,
    add: Action2::Space(SP::InviteGroup, Some(ZP::AddMemberToSpace)),
    remove: Action2::Space(SP::RemoveGroup, Some(ZP::RemoveMemberFromSpace)),
    set: Action2::Space(SP::SetPrivileges, Some(ZP::SetPrivileges)),
    put_status: StatusCode::NO_CONTENT,
    default: SpacePrivileges::member_default,
};

/// The list key of a relation's members in responses.
fn list_key(m: Members) -> &'static str {
    match m {
        Members::GroupUsers | Members::SpaceUsers => "users",
        Members::GroupChildren => "children",
        Members::SpaceGroups => "groups",
    }
}

/// Runs an administration endpoint for an authenticated subject.
pub(super) async fn dispatch(
    app: &Arc<App>,
    ep: Endpoint,
    subject: Subject,
    method: Method,
    query: Option<String>,
    body: Incoming,
) -> Result<Resp, ApiError> {
    let page = || Page::from_query(query.as_deref());
    use Endpoint::*;
    match ep {
        Users if method == Method::POST => {
            require(app, &subject, Action::Zone(ZP::UsersCreate))?;
            let req: NewUser = read_json(app, body).await?;
            let store = app.store.clone();
            let id = blocking(move || {
                let hash = hash_password(&req.password)?;
                store.create_user(&req.username, hash, ZonePrivileges::empty())
            })
            .await?;
            Ok(created(format!("/users/{id}")))
        }
        Users => {
            require(app, &subject, Action::Zone(ZP::ListUsers))?;
            let p = page()?;
            let ids: Vec<Id> = app
                .store
                .users(p.after, p.limit)?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            Ok(id_list("users", &ids, p))
        }
        UserById(id) => {
            let uid = parse_id(&id)?;
            exists(app, Entity::User, &uid)?;
            if method == Method::DELETE {
                require(app, &subject, Action::Zone(ZP::UsersDelete))?;
                let store = app.store.clone();
                blocking(move || store.delete(Entity::User, &uid)).await?;
                return Ok(empty(StatusCode::ACCEPTED));
            }
            if subject != Subject::User(uid) {
                require(app, &subject, Action::Zone(ZP::ListUsers))?;
            }
            user_info(&app.store, &uid)
        }
        UserPrivileges(id) => {
            let uid = parse_id(&id)?;
            exists(app, Entity::User, &uid)?;
            if method == Method::PATCH {
                require(app, &subject, Action::Zone(ZP::SetPrivileges))?;
                let upd: PrivUpdate = read_json(app, body).await?;
                // Validate names first; then read, change and write under the
                // store's writer lock so that concurrent grants add up.
                upd.apply(ZonePrivileges::empty())?;
                let store = app.store.clone();
                blocking(move || {
                    store.update_user(&uid, |u| {
                        u.zone_privileges =
                            upd.apply(u.zone_privileges).unwrap_or(u.zone_privileges)
                    })
                })
                .await?;
                return Ok(empty(StatusCode::NO_CONTENT));
            }
            if subject != Subject::User(uid) {
                require(app, &subject, Action::Zone(ZP::ViewPrivileges))?;
            }
            Ok(privileges(
                app.store
                    .user(&uid)?
                    .map(|u| u.zone_privileges)
                    .unwrap_or_default(),
            ))
        }
        Me => user_info(&app.store, &user_only(&subject)?),
        MyPassword => {
            let uid = user_only(&subject)?;
            let req: PasswordChange = read_json(app, body).await?;
            let store = app.store.clone();
            let ok = blocking(move || {
                let user = store.user(&uid)?.ok_or(Error::NotFound(Entity::User))?;
                if !verify_password(&user.password_hash, &req.old_password) {
                    return Ok(false);
                }
                let hash = hash_password(&req.new_password)?;
                store.update_user(&uid, |u| u.password_hash = hash)?;
                Ok(true)
            })
            .await?;
            if ok {
                Ok(empty(StatusCode::NO_CONTENT))
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "invalid_credentials",
                    "The old password is wrong.",
                ))
            }
        }
        MyGroups | MySpaces if method == Method::POST => {
            create_container(app, &subject, matches!(ep, MyGroups), body).await
        }
        MyGroups => {
            let uid = user_only(&subject)?;
            let p = page()?;
            Ok(id_list(
                "groups",
                &app.store
                    .memberships(&GROUP_USERS, &uid, p.after, p.limit)?,
                p,
            ))
        }
        MySpaces => {
            let uid = user_only(&subject)?;
            let p = page()?;
            Ok(id_list(
                "spaces",
                &app.store
                    .memberships(&SPACE_USERS, &uid, p.after, p.limit)?,
                p,
            ))
        }
        Groups | Spaces if method == Method::POST => {
            create_container(app, &subject, matches!(ep, Groups), body).await
        }
        Groups => {
            require(app, &subject, Action::Zone(ZP::ListGroups))?;
            let p = page()?;
            let ids: Vec<Id> = app
                .store
                .groups(p.after, p.limit)?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            Ok(id_list("groups", &ids, p))
        }
        Spaces => {
            require(app, &subject, Action::Zone(ZP::ListSpaces))?;
            let p = page()?;
            let ids: Vec<Id> = app
                .store
                .spaces(p.after, p.limit)?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            Ok(id_list("spaces", &ids, p))
        }
        Container(c, id) => container(app, &subject, c, &id, method, body).await,
        MemberList(m, id) => {
            let p = page()?;
            match m {
                Members::GroupUsers => member_list(app, &subject, &GROUP_USERS_KIND, &id, m, p),
                Members::GroupChildren => {
                    member_list(app, &subject, &GROUP_CHILDREN_KIND, &id, m, p)
                }
                Members::SpaceUsers => member_list(app, &subject, &SPACE_USERS_KIND, &id, m, p),
                Members::SpaceGroups => member_list(app, &subject, &SPACE_GROUPS_KIND, &id, m, p),
            }
        }
        Member(m, id, mid) => match m {
            Members::GroupUsers => {
                member(app, &subject, &GROUP_USERS_KIND, &id, &mid, method).await
            }
            Members::GroupChildren => {
                member(app, &subject, &GROUP_CHILDREN_KIND, &id, &mid, method).await
            }
            Members::SpaceUsers => {
                member(app, &subject, &SPACE_USERS_KIND, &id, &mid, method).await
            }
            Members::SpaceGroups => {
                member(app, &subject, &SPACE_GROUPS_KIND, &id, &mid, method).await
            }
        },
        MemberPrivileges(m, id, mid) => match m {
            Members::GroupUsers => {
                member_privileges(app, &subject, &GROUP_USERS_KIND, &id, &mid, method, body).await
            }
            Members::GroupChildren => {
                member_privileges(app, &subject, &GROUP_CHILDREN_KIND, &id, &mid, method, body)
                    .await
            }
            Members::SpaceUsers => {
                member_privileges(app, &subject, &SPACE_USERS_KIND, &id, &mid, method, body).await
            }
            Members::SpaceGroups => {
                member_privileges(app, &subject, &SPACE_GROUPS_KIND, &id, &mid, method, body).await
            }
        },
        EffectiveUsers(c, id) => {
            let cid = parse_id(&id)?;
            let p = page()?;
            let store = app.store.clone();
            let all = match c {
                Kind::Group => {
                    exists(app, Entity::Group, &cid)?;
                    require(app, &subject, GROUP_VIEW.on(cid))?;
                    blocking(move || store.effective_group_users(&cid)).await?
                }
                Kind::Space => {
                    exists(app, Entity::Space, &cid)?;
                    require(app, &subject, SPACE_VIEW.on(cid))?;
                    blocking(move || store.effective_space_users(&cid)).await?
                }
            };
            Ok(id_list("users", &p.slice(&all), p))
        }
        EffectiveUserPrivileges(c, id, uid) => {
            let cid = parse_id(&id)?;
            let uid = parse_id(&uid)?;
            exists(app, Entity::User, &uid)?;
            match c {
                Kind::Group => {
                    exists(app, Entity::Group, &cid)?;
                    if subject != Subject::User(uid) {
                        require(app, &subject, GROUP_VIEW.on(cid))?;
                    }
                    let p = app.store.effective_group_privileges(&uid, &cid)?;
                    if p.is_empty() && !app.store.is_effective_group_member(&uid, &cid)? {
                        return Err(Error::NotFound(Entity::Relation).into());
                    }
                    Ok(privileges(p))
                }
                Kind::Space => {
                    exists(app, Entity::Space, &cid)?;
                    if subject != Subject::User(uid) {
                        require(app, &subject, SPACE_VIEW.on(cid))?;
                    }
                    let p = app.store.effective_space_privileges(&uid, &cid)?;
                    if p.is_empty() && !app.store.effective_space_users(&cid)?.contains(&uid) {
                        return Err(Error::NotFound(Entity::Relation).into());
                    }
                    Ok(privileges(p))
                }
            }
        }
        EffectiveChildren(id) => {
            let gid = parse_id(&id)?;
            exists(app, Entity::Group, &gid)?;
            require(app, &subject, GROUP_VIEW.on(gid))?;
            let p = page()?;
            let mut all: BTreeSet<Id> = app.store.descendants_of_group(&gid)?.into_iter().collect();
            all.remove(&gid);
            Ok(id_list("children", &p.slice(&all), p))
        }
        Backup => {
            require(app, &subject, Action::Zone(ZP::Backup))?;
            let store = app.store.clone();
            let dir = app.backup_dir.join(format!(
                "backup-{}-{:08x}",
                crate::model::now(),
                rand::random::<u32>()
            ));
            let out = dir.clone();
            blocking(move || store.backup_to(&out)).await?;
            Ok(json(
                StatusCode::CREATED,
                &json!({ "path": dir.to_string_lossy() }),
            ))
        }
        other => Err(ApiError::internal(&format!("no handler for {other:?}"))),
    }
}

fn user_info(store: &Store, uid: &Id) -> Result<Resp, ApiError> {
    let u = store.user(uid)?.ok_or(Error::NotFound(Entity::User))?;
    Ok(json(
        StatusCode::OK,
        &json!({ "userId": uid.to_string(), "name": u.name, "login": u.name, "username": u.name }),
    ))
}

fn group_info(store: &Store, gid: &Id) -> Result<Resp, ApiError> {
    let g = store.group(gid)?.ok_or(Error::NotFound(Entity::Group))?;
    Ok(json(
        StatusCode::OK,
        &json!({ "groupId": gid.to_string(), "name": g.name, "type": g.kind.as_str() }),
    ))
}

async fn create_container(
    app: &Arc<App>,
    subject: &Subject,
    group: bool,
    body: Incoming,
) -> Result<Resp, ApiError> {
    let uid = user_only(subject)?;
    let store = app.store.clone();
    let id = if group {
        let req: NewGroup = read_json(app, body).await?;
        blocking(move || store.create_group_of_type(&req.name, req.kind, Some(uid))).await?
    } else {
        let req: NameBody = read_json(app, body).await?;
        blocking(move || store.create_space(&req.name, Some(uid))).await?
    };
    Ok(created(format!(
        "/{}/{id}",
        if group { "groups" } else { "spaces" }
    )))
}

async fn container(
    app: &Arc<App>,
    subject: &Subject,
    c: Kind,
    id: &str,
    method: Method,
    body: Incoming,
) -> Result<Resp, ApiError> {
    let cid = parse_id(id)?;
    let (kind, view, change, remove) = match c {
        Kind::Group => (
            Entity::Group,
            GROUP_VIEW,
            Action2::Group(GP::ChangeData, None),
            Action2::Group(GP::Remove, None),
        ),
        Kind::Space => (
            Entity::Space,
            SPACE_VIEW,
            Action2::Space(SP::ChangeData, None),
            Action2::Space(SP::Remove, None),
        ),
    };
    exists(app, kind, &cid)?;
    let store = app.store.clone();
    match method {
        Method::PATCH => {
            require(app, subject, change.on(cid))?;
            match c {
                Kind::Group => {
                    let req: GroupUpdate = read_json(app, body).await?;
                    if req.name.is_none() && req.kind.is_none() {
                        return Err(ApiError::bad_request(
                            "Expected at least one of the fields name and type.",
                        ));
                    }
                    blocking(move || store.update_group(&cid, req.name.as_deref(), req.kind))
                        .await?;
                }
                Kind::Space => {
                    let req: NameBody = read_json(app, body).await?;
                    blocking(move || store.rename_space(&cid, &req.name)).await?;
                }
            }
            Ok(empty(StatusCode::NO_CONTENT))
        }
        Method::DELETE => {
            require(app, subject, remove.on(cid))?;
            blocking(move || store.delete(kind, &cid)).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => {
            require(app, subject, view.on(cid))?;
            Ok(match c {
                Kind::Group => group_info(&store, &cid)?,
                Kind::Space => {
                    let s = store.space(&cid)?.ok_or(Error::NotFound(Entity::Space))?;
                    let supports: serde_json::Map<String, Value> = store
                        .members(&crate::store::SPACE_PROVIDERS, &cid, None, PAGE_MAX)?
                        .into_iter()
                        .map(|(p, s)| (p.to_string(), json!(s.size)))
                        .collect();
                    json(
                        StatusCode::OK,
                        &json!({ "spaceId": cid.to_string(), "name": s.name, "providersSupports": supports }),
                    )
                }
            })
        }
    }
}

fn member_list<P: Privilege>(
    app: &App,
    subject: &Subject,
    k: &MemberKind<P>,
    id: &str,
    m: Members,
    p: Page,
) -> Result<Resp, ApiError> {
    let cid = parse_id(id)?;
    exists(app, k.container, &cid)?;
    require(app, subject, k.view.on(cid))?;
    let ids: Vec<Id> = app
        .store
        .members(k.relation, &cid, p.after, p.limit)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    Ok(id_list(list_key(m), &ids, p))
}

async fn member<P: Privilege + Send + Sync>(
    app: &Arc<App>,
    subject: &Subject,
    k: &'static MemberKind<P>,
    id: &str,
    mid: &str,
    method: Method,
) -> Result<Resp, ApiError> {
    let cid = parse_id(id)?;
    let mid = parse_id(mid)?;
    exists(app, k.container, &cid)?;
    exists(app, k.member, &mid)?;
    let store = app.store.clone();
    match method {
        Method::PUT => {
            require(app, subject, k.add.on(cid))?;
            let default = (k.default)();
            let rel = k.relation;
            blocking(move || {
                if store.relation(rel, &cid, &mid)?.is_none() {
                    store.put_relation(rel, &cid, &mid, &default)?;
                } else {
                    store.committed()?;
                }
                Ok(())
            })
            .await?;
            Ok(empty(k.put_status))
        }
        Method::DELETE => {
            require(app, subject, k.remove.on(cid))?;
            let rel = k.relation;
            if !blocking(move || store.remove_relation(rel, &cid, &mid)).await? {
                return Err(Error::NotFound(Entity::Relation).into());
            }
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => {
            require(app, subject, k.view.on(cid))?;
            if store.relation(k.relation, &cid, &mid)?.is_none() {
                return Err(Error::NotFound(Entity::Relation).into());
            }
            match k.member {
                Entity::User => user_info(&store, &mid),
                _ => group_info(&store, &mid),
            }
        }
    }
}

async fn member_privileges<P: Privilege + Send + Sync>(
    app: &Arc<App>,
    subject: &Subject,
    k: &'static MemberKind<P>,
    id: &str,
    mid: &str,
    method: Method,
    body: Incoming,
) -> Result<Resp, ApiError> {
    let cid = parse_id(id)?;
    let mid = parse_id(mid)?;
    exists(app, k.container, &cid)?;
    exists(app, k.member, &mid)?;
    if method == Method::PATCH {
        require(app, subject, k.set.on(cid))?;
        let upd: PrivUpdate = read_json(app, body).await?;
        // Validate names before touching the store.
        upd.apply(PrivSet::<P>::empty())?;
        let store = app.store.clone();
        let rel = k.relation;
        blocking(move || {
            store.update_relation(rel, &cid, &mid, |old| upd.apply(old).unwrap_or(old))?;
            Ok(())
        })
        .await?;
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    require(app, subject, k.view.on(cid))?;
    let p = app
        .store
        .relation(k.relation, &cid, &mid)?
        .ok_or(Error::NotFound(Entity::Relation))?;
    Ok(privileges(p))
}
