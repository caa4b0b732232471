//! The handlers of Onedata 20.02+ invite tokens: the join endpoints
//! (`POST /user/groups/join` and the like, body `{"token"}`, 201 with the
//! new membership's `Location`), the deprecated invite endpoints
//! (`POST /spaces/{id}/users/token` and the like, 200 `{"token"}`), and the
//! registration of a provider with a `registerOneprovider` token, which
//! needs no credentials. Errors in Onezone's shape (see [`super::error`]).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use super::api::{created, Resp};
use super::error::ApiError;
use super::routes::{Endpoint, Members};
use super::{json, parse_id, read_json, App};
use crate::error::OzError;
use crate::ops::invites::Joiner;
use crate::ops::token_auth::ipv4_of;
use crate::ops::Caller;
use crate::token::v2::InviteType;

/// The `token` string of a body (`missingRequiredValue`, `badValueString`).
pub(super) fn token_string(body: &Value) -> Result<String, ApiError> {
    match body.get("token") {
        None => Err(crate::Error::from(OzError::MissingRequiredValue("token")).into()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(crate::Error::from(OzError::BadValueString("token")).into()),
    }
}

/// The invite endpoints (authenticated).
pub(super) async fn dispatch(
    app: &App,
    ep: Endpoint,
    caller: &Caller,
    body: &Bytes,
    peer: IpAddr,
) -> Result<Resp, ApiError> {
    let zone = &app.zone;
    let peer = ipv4_of(peer);
    match ep {
        Endpoint::JoinGroup(child) => {
            let joiner = joiner(child.as_deref())?;
            let v: Value = read_json(app, body)?;
            let token = token_string(&v)?;
            let group = zone.join_group(caller, joiner, &token, peer).await?;
            app.metrics.consume_invite(match joiner {
                Joiner::Me => InviteType::UserJoinGroup,
                Joiner::Group(_) => InviteType::GroupJoinGroup,
            });
            Ok(created(&match joiner {
                Joiner::Me => format!("/user/groups/{group}"),
                Joiner::Group(c) => format!("/groups/{c}/parents/{group}"),
            }))
        }
        Endpoint::JoinSpace(group) => {
            let joiner = joiner(group.as_deref())?;
            let v: Value = read_json(app, body)?;
            let token = token_string(&v)?;
            let space = zone.join_space(caller, joiner, &token, peer).await?;
            app.metrics.consume_invite(match joiner {
                Joiner::Me => InviteType::UserJoinSpace,
                Joiner::Group(_) => InviteType::GroupJoinSpace,
            });
            Ok(created(&match joiner {
                Joiner::Me => format!("/user/spaces/{space}"),
                Joiner::Group(g) => format!("/groups/{g}/spaces/{space}"),
            }))
        }
        Endpoint::LegacyInviteToken(m, id) => {
            let target = parse_id(&id)?;
            let t = match m {
                Members::GroupUsers => InviteType::UserJoinGroup,
                Members::GroupChildren => InviteType::GroupJoinGroup,
                Members::SpaceUsers => InviteType::UserJoinSpace,
                Members::SpaceGroups => InviteType::GroupJoinSpace,
            };
            let info = zone.create_legacy_invite(caller, t, target).await?;
            // The record was just written from a valid type: it reads back.
            if let Ok(token_type) = info.token_type() {
                app.metrics
                    .mint_v2(crate::token::v2::Persistence::Named, &token_type);
            }
            Ok(json(StatusCode::OK, &json!({ "token": info.token })))
        }
        _ => Err(ApiError::no_route()),
    }
}

fn joiner(group: Option<&str>) -> Result<Joiner, ApiError> {
    Ok(match group {
        None => Joiner::Me,
        Some(g) => Joiner::Group(parse_id(g)?),
    })
}

/// `POST /providers` with a `registerOneprovider` invite token: by anyone
/// (`caller` `None`: no credentials). 201 `{"providerId",
/// "providerRootToken"}` with its `Location`.
pub(super) async fn register_provider(
    app: &Arc<App>,
    caller: Option<&Caller>,
    token: &str,
    name: &str,
    domain: &str,
    version: Option<&str>,
    peer: IpAddr,
) -> Result<Resp, ApiError> {
    let (pid, minted) = app
        .zone
        .register_provider_with_invite(caller, token, name, domain, version, ipv4_of(peer))
        .await?;
    app.metrics.consume_invite(InviteType::RegisterOneprovider);
    app.metrics.mint(crate::model::TokenKind::Provider);
    Ok(super::api::created_json(
        &format!("/providers/{pid}"),
        &json!({ "providerId": pid.to_string(), "providerRootToken": minted.token }),
    ))
}

/// Whether a token is a 20.02+ one (its consumption goes through the
/// invite path; a legacy one through the legacy path).
pub(super) fn is_v2(token: &str) -> bool {
    crate::token::v2::Token::parse(token).is_ok_and(|t| t.identifier().version() == 2)
}
