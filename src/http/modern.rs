//! The handlers of Onedata 20.02+ token endpoints: named and temporary
//! tokens, and the public examine, confine and verify endpoints. Shapes as
//! Onezone's REST API (`token_rest_translator.erl`); errors in Onezone's
//! shape (see [`super::error`]).

use std::net::IpAddr;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::api::{created_json, empty, Resp};
use super::error::ApiError;
use super::routes::{Endpoint, TokenOwner};
use super::{json, parse_id, read_json, App};
use crate::error::OzError;
use crate::model::Subject;
use crate::ops::named_tokens::{NamedTokenPatch, NamedTokenRequest, MAX_CAVEATS};
use crate::ops::token_auth::{ipv4_of, ContextParts, Presented, RequestContext};
use crate::ops::Caller;
use crate::ops::Zone;
use crate::token::caveat::{Caveat, Interface};
use crate::token::v2::{self, Consumer, InviteType, Persistence, SessionPolicy, TokenType};

fn subject_of(caller: &Caller, owner: &TokenOwner) -> Result<Subject, ApiError> {
    Ok(match owner {
        TokenOwner::Me => Subject::User(caller.user_id()?),
        TokenOwner::MyProvider => Subject::Provider(caller.provider_id()?),
        TokenOwner::User(id) => Subject::User(parse_id(id)?),
        TokenOwner::Provider(id) => Subject::Provider(parse_id(id)?),
    })
}

fn ids(list: Vec<crate::model::Id>) -> Value {
    json!({ "tokens": list.iter().map(ToString::to_string).collect::<Vec<_>>() })
}

/// The authenticated 20.02+ endpoints.
pub(super) async fn dispatch(
    app: &App,
    ep: Endpoint,
    caller: &Caller,
    method: &Method,
    body: &Bytes,
) -> Result<Resp, ApiError> {
    let zone = &app.zone;
    use Endpoint::*;
    match ep {
        NamedTokens(owner) => {
            let subject = subject_of(caller, &owner)?;
            match *method {
                Method::POST => {
                    let v: Value = read_json(app, body)?;
                    let req = NamedTokenRequest::from_json(&v).map_err(crate::Error::from)?;
                    let token_type = req.token_type.clone();
                    let info = zone.create_named_token(caller, subject, req).await?;
                    app.metrics.mint_v2(Persistence::Named, &token_type);
                    let id = info.id.to_string();
                    Ok(created_json(
                        &format!("/tokens/named/{id}"),
                        &json!({ "tokenId": id, "token": info.token }),
                    ))
                }
                Method::DELETE => {
                    zone.delete_all_named_tokens(caller, subject).await?;
                    Ok(empty(StatusCode::NO_CONTENT))
                }
                _ => Ok(json(
                    StatusCode::OK,
                    &ids(zone.list_named_tokens(caller, subject).await?),
                )),
            }
        }
        NamedTokenByName(owner, name) => {
            let subject = subject_of(caller, &owner)?;
            let info = zone.named_token_by_name(caller, subject, &name).await?;
            Ok(json(StatusCode::OK, &info.to_json()?))
        }
        AllNamedTokens => Ok(json(
            StatusCode::OK,
            &ids(zone.list_all_named_tokens(caller).await?),
        )),
        NamedToken(id) => {
            let id = parse_id(&id)?;
            match *method {
                Method::PATCH => {
                    let v: Value = read_json(app, body)?;
                    let patch = NamedTokenPatch::from_json(&v).map_err(crate::Error::from)?;
                    zone.update_named_token(caller, &id, patch).await?;
                    Ok(empty(StatusCode::NO_CONTENT))
                }
                Method::DELETE => {
                    zone.delete_named_token(caller, &id).await?;
                    Ok(empty(StatusCode::NO_CONTENT))
                }
                _ => Ok(json(
                    StatusCode::OK,
                    &zone.named_token(caller, &id).await?.to_json()?,
                )),
            }
        }
        NamedTokenStatus(id) => {
            let revoked = zone.named_token_revoked(caller, &parse_id(&id)?).await?;
            Ok(json(StatusCode::OK, &json!({ "revoked": revoked })))
        }
        TemporaryTokens(owner) => {
            let subject = subject_of(caller, &owner)?;
            match *method {
                Method::POST => {
                    let v: Value = read_json(app, body)?;
                    let minted = zone.create_temporary_token(caller, subject, &v).await?;
                    let persistence = Persistence::Temporary {
                        generation: minted.generation,
                    };
                    app.metrics.mint_v2(persistence, &minted.token_type);
                    Ok(json(StatusCode::CREATED, &json!({ "token": minted.token })))
                }
                Method::DELETE => {
                    zone.revoke_temporary_tokens(caller, subject).await?;
                    Ok(empty(StatusCode::NO_CONTENT))
                }
                _ => {
                    let generation = zone.temporary_token_generation(caller, subject).await?;
                    Ok(json(StatusCode::OK, &json!({ "generation": generation })))
                }
            }
        }
        _ => Err(ApiError::no_route()),
    }
}

/// The `token` field of a public endpoint's body, parsed
/// (`missingRequiredValue`, `badValueToken` with the token's error).
pub(super) fn token_field(zone: &Zone, body: &Value) -> Result<Presented, crate::Error> {
    let s = match body.get("token") {
        None => return Err(OzError::MissingRequiredValue("token").into()),
        Some(Value::String(s)) => s,
        Some(_) => return Err(OzError::BadValueString("token").into()),
    };
    zone.present(s)
        .map_err(|e| OzError::BadValueToken("token", Box::new(e)).into())
}

fn optional_str<'a>(body: &'a Value, key: &'static str) -> Result<Option<&'a str>, crate::Error> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(OzError::BadValueString(key).into()),
    }
}

/// Whether a body may be for the 20.02+ examination: a `token` that is a
/// version 2 token.
pub(super) fn is_modern_examination(body: &Bytes) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .and_then(|t| v2::Token::parse(&t).ok())
        .is_some_and(|t| t.identifier().version() == 2)
}

/// `POST /tokens/examine` for a 20.02+ token: no verification.
pub(super) fn examine(app: &App, body: &Bytes) -> Result<Resp, ApiError> {
    let v: Value = read_json(app, body)?;
    let token = token_field(&app.zone, &v)?;
    let ex = token.examine().map_err(|e| {
        crate::Error::from(OzError::BadValueToken("token", Box::new(OzError::Token(e))))
    })?;
    Ok(json(StatusCode::OK, &ex.to_json()))
}

/// The public 20.02+ endpoints. `requester`: the authenticated client, if
/// the request carried credentials (the default consumer).
pub(super) async fn public(
    app: &App,
    ep: Endpoint,
    body: &Bytes,
    peer: IpAddr,
    requester: Option<&Caller>,
) -> Result<Resp, ApiError> {
    use Endpoint::*;
    if ep == CurrentTime {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        return Ok(json(StatusCode::OK, &json!({ "timeMillis": millis })));
    }
    let v: Value = read_json(app, body)?;
    if ep == InferScope {
        return super::scope::infer(app, &v, peer).await;
    }
    if ep == TokenConfine {
        let token = token_field(&app.zone, &v)?;
        let caveats = match v.get("caveats") {
            None => return Err(crate::Error::from(OzError::MissingRequiredValue("caveats")).into()),
            Some(Value::Array(list)) if list.len() <= MAX_CAVEATS => list
                .iter()
                .map(|c| {
                    Caveat::from_json(c).map_err(|e| OzError::BadData("caveats", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(crate::Error::from)?,
            Some(Value::Array(_)) => {
                return Err(crate::Error::from(OzError::TooLarge("caveats", MAX_CAVEATS)).into())
            }
            Some(_) => {
                return Err(crate::Error::from(OzError::BadData(
                    "caveats",
                    "must be a list".into(),
                ))
                .into())
            }
        };
        let confined = token.confine(&caveats).map_err(crate::Error::from)?;
        let mut out = confined.serialize();
        if let Some(s) = token.service_indication() {
            out = v2::add_service_indication(s, &out);
        }
        return Ok(json(StatusCode::OK, &json!({ "token": out })));
    }
    let zone = &app.zone;
    let token = token_field(&app.zone, &v)?;
    let peer_ip = match optional_str(&v, "peerIp")? {
        None => ipv4_of(peer),
        Some(s) => Some(
            s.parse()
                .map_err(|_| crate::Error::from(OzError::BadValueIpv4("peerIp")))?,
        ),
    };
    let interface = match optional_str(&v, "interface")? {
        None => None,
        Some(s) => Some(Interface::from_name(s).ok_or_else(|| {
            crate::Error::from(OzError::BadData(
                "interface",
                "one of rest, oneclient, graphsync".into(),
            ))
        })?),
    };
    let ctx = RequestContext::rest(peer);
    let service = match optional_str(&v, "serviceToken")? {
        Some(t) if ep != VerifyInviteToken => Some(zone.service_of(t, &ctx).await?),
        _ => None,
    };
    // No key: the requesting client; `null`: nobody.
    let consumer = match v.get("consumerToken") {
        None => requester.map(|c| match c.subject {
            Subject::User(u) => Consumer::User(u.to_string()),
            Subject::Provider(p) => Consumer::Provider(p.to_string()),
        }),
        Some(Value::Null) => None,
        Some(Value::String(t)) => Some(zone.consumer_of(t, &ctx).await?),
        Some(_) => return Err(crate::Error::from(OzError::BadValueString("consumerToken")).into()),
    };
    let allow_data_access = match v.get("allowDataAccessCaveats") {
        None => false,
        Some(Value::Bool(b)) if ep == VerifyAccessToken => *b,
        Some(_) => {
            return Err(
                crate::Error::from(OzError::BadValueBoolean("allowDataAccessCaveats")).into(),
            )
        }
    };
    let parts = ContextParts {
        peer_ip,
        interface,
        service,
        consumer,
        allow_data_access,
        session: SessionPolicy::Any,
        ignored: &[],
    };
    let (verified, _) = match ep {
        VerifyAccessToken => {
            let ty = token.identifier().token_type();
            if !matches!(ty, TokenType::Access { .. }) {
                return Err(crate::Error::from(OzError::NotAnAccessToken(ty.clone())).into());
            }
            zone.verify_v2(&token, &parts, v2::Scope::Unlimited).await?
        }
        VerifyIdentityToken => zone.verify_identity(&token, &parts).await?,
        _ => {
            let expected = match optional_str(&v, "expectedInviteType")? {
                None | Some("any") => None,
                Some(s) => Some(InviteType::from_json_name(s).ok_or_else(|| {
                    crate::Error::from(OzError::BadData(
                        "expectedInviteType",
                        "not an invite type".into(),
                    ))
                })?),
            };
            zone.verify_invite(&token, expected, &parts).await?
        }
    };
    let subject = v2::TokenSubject::json_of(verified.subject.as_ref());
    Ok(json(
        StatusCode::OK,
        &json!({ "subject": subject, "ttl": verified.ttl }),
    ))
}
