//! The handlers: tokens, providers, consumption, root keys.
//!
//! Every handler runs after routing and authentication, in this order:
//! malformed ids (400), unknown entities (404), missing privileges (403),
//! then the operation. Store writes that may wait for a flush run on the
//! blocking pool.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::routes::Endpoint;
use super::{blocking, credentials, exists, json, parse_id, read_json, require, user_only, App};
use crate::auth::{allowed, may_manage_token, Action, AuthError, AuthFailure, Caller};
use crate::error::{Entity, Error};
use crate::model::{
    now, Id, SpacePrivileges, Subject, Support, TokenKind, TokenRecord, TokenState,
};
use crate::store::{SPACE_GROUPS, SPACE_PROVIDERS};
use crate::token::TokenError;

type Resp = Response<Full<Bytes>>;

/// Authenticates and runs the endpoint's handler.
pub(super) async fn dispatch(
    app: &Arc<App>,
    ep: Endpoint,
    req: Request<Incoming>,
    peer: std::net::IpAddr,
) -> Result<Resp, ApiError> {
    let creds = credentials(req.headers())?;
    let caller = match app.auth.authenticate(creds, peer).await {
        Ok(c) => c,
        Err(e) => {
            if let AuthFailure::Auth(a) = &e {
                app.metrics.auth_failure(match a {
                    AuthError::Missing => "missing",
                    AuthError::BadPassword => "password",
                    AuthError::BadToken(_) | AuthError::Gone => "token",
                });
            } else if let AuthFailure::Throttled(_) = &e {
                app.metrics.auth_failure("throttled");
            }
            return Err(e.into());
        }
    };
    let subject = caller.subject;
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    let body = req.into_body();
    use Endpoint::*;
    match ep {
        SpaceSupportToken(id) => {
            let space = parse_id(&id)?;
            exists(app, Entity::Space, &space)?;
            mint_if_allowed(
                app,
                subject,
                Action::CreateSupportToken(space),
                TokenKind::SpaceSupport,
                space,
            )
            .await
        }
        GroupSpaceToken(id) => {
            let group = parse_id(&id)?;
            exists(app, Entity::Group, &group)?;
            mint_if_allowed(
                app,
                subject,
                Action::CreateSpaceToken(group),
                TokenKind::SpaceCreate,
                group,
            )
            .await
        }
        ClientTokens if method == Method::POST => {
            let user = user_only(&subject)?;
            unrestricted(&caller)?;
            let minted = app
                .minter
                .mint_async(TokenKind::Access, user, subject)
                .await?;
            app.metrics.mint(TokenKind::Access);
            Ok(json(StatusCode::OK, &json!({ "token": minted.token })))
        }
        ClientTokens => {
            let user = user_only(&subject)?;
            unrestricted(&caller)?;
            let mut tokens = Vec::new();
            for (id, rec) in active_tokens(app, &user)? {
                if rec.kind == TokenKind::Access {
                    if let Some(t) = app.minter.render(&id, &rec)? {
                        tokens.push(t);
                    }
                }
            }
            Ok(json(StatusCode::OK, &json!({ "tokens": tokens })))
        }
        ClientToken(tid) => {
            let user = user_only(&subject)?;
            let id = token_id(app, &tid)?;
            match app.store.token(&id)? {
                Some(rec) if rec.kind == TokenKind::Access && rec.target == user => {}
                _ => return Err(Error::NotFound(Entity::Token).into()),
            }
            revoke(app, id).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        Providers if method == Method::POST => {
            require(app, &subject, Action::CreateProvider)?;
            let req: ProviderRequest = read_json(app, body).await?;
            let minter = app.minter.clone();
            let (pid, token) = blocking(move || {
                let pid = minter.store().create_provider(&req.name, &req.domain)?;
                let minted = minter.mint(TokenKind::Provider, pid, subject)?;
                Ok((pid, minted.token))
            })
            .await?;
            app.metrics.mint(TokenKind::Provider);
            let mut resp = json(
                StatusCode::CREATED,
                &json!({ "providerId": pid.to_string(), "providerRootToken": token }),
            );
            set_location(&mut resp, &format!("/providers/{pid}"));
            Ok(resp)
        }
        Providers => {
            require(app, &subject, Action::ListProviders)?;
            let ids: Vec<String> = app
                .store
                .providers(None, crate::store::PAGE_MAX)?
                .into_iter()
                .map(|(id, _)| id.to_string())
                .collect();
            Ok(json(StatusCode::OK, &json!({ "providers": ids })))
        }
        ProviderSpaceSupport => {
            let provider = provider_only(&subject)?;
            let body: Value = read_json(app, body).await?;
            let token = string_field(&body, "token")?;
            let size = size_field(&body)?;
            let space = app
                .minter
                .consume_async(
                    &token,
                    TokenKind::SpaceSupport,
                    provider,
                    |store, rec, batch| {
                        let space = rec.target;
                        store.require(Entity::Space, &space)?;
                        issuer_still_allowed(store, rec, Action::CreateSupportToken(space))?;
                        if store
                            .relation(&SPACE_PROVIDERS, &space, &provider)?
                            .is_some()
                        {
                            return Err(Error::AlreadyExists(Entity::Relation));
                        }
                        SPACE_PROVIDERS.put_ops(
                            batch,
                            &space,
                            &provider,
                            &Support { size, since: now() },
                        )?;
                        Ok(space)
                    },
                )
                .await?;
            app.metrics.consume(TokenKind::SpaceSupport);
            let mut resp = empty(StatusCode::CREATED);
            set_location(&mut resp, &format!("/spaces/{space}"));
            Ok(resp)
        }
        ProviderSpaces => {
            let provider = provider_only(&subject)?;
            let body: Value = read_json(app, body).await?;
            let name = string_field(&body, "name")?;
            let token = string_field(&body, "token")?;
            let size = size_field(&body)?;
            let space = app
                .minter
                .consume_async(
                    &token,
                    TokenKind::SpaceCreate,
                    provider,
                    |store, rec, batch| {
                        let group = rec.target;
                        store.require(Entity::Group, &group)?;
                        issuer_still_allowed(store, rec, Action::CreateSpaceToken(group))?;
                        let space = Id::random();
                        store.space_ops(batch, space, &name)?;
                        SPACE_GROUPS.put_ops(batch, &space, &group, &SpacePrivileges::all())?;
                        SPACE_PROVIDERS.put_ops(
                            batch,
                            &space,
                            &provider,
                            &Support { size, since: now() },
                        )?;
                        Ok(space)
                    },
                )
                .await?;
            app.metrics.consume(TokenKind::SpaceCreate);
            let mut resp = empty(StatusCode::CREATED);
            set_location(&mut resp, &format!("/spaces/{space}"));
            Ok(resp)
        }
        SpaceProviders(id) => {
            let space = parse_id(&id)?;
            exists(app, Entity::Space, &space)?;
            require(app, &subject, Action::ViewSpace(space))?;
            let supports =
                app.store
                    .members(&SPACE_PROVIDERS, &space, None, crate::store::PAGE_MAX)?;
            let ids: Vec<String> = supports.iter().map(|(p, _)| p.to_string()).collect();
            let sizes: serde_json::Map<String, Value> = supports
                .iter()
                .map(|(p, s)| (p.to_string(), json!(s.size)))
                .collect();
            Ok(json(
                StatusCode::OK,
                &json!({ "providers": ids, "providersSupports": sizes }),
            ))
        }
        SpaceTokens(id) => {
            let space = parse_id(&id)?;
            exists(app, Entity::Space, &space)?;
            list_invites(app, &subject, Action::CreateSupportToken(space), &space)
        }
        GroupTokens(id) => {
            let group = parse_id(&id)?;
            exists(app, Entity::Group, &group)?;
            list_invites(app, &subject, Action::CreateSpaceToken(group), &group)
        }
        Token(tid) => {
            let id = token_id(app, &tid)?;
            let rec = app
                .store
                .token(&id)?
                .ok_or(Error::NotFound(Entity::Token))?;
            if !may_manage_token(&app.store, &subject, &rec)? {
                return Err(ApiError::forbidden());
            }
            revoke(app, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        TokenExamine => {
            let body: Value = read_json(app, body).await?;
            let token = string_field(&body, "token")?;
            let ins = app.minter.inspect(&token);
            let Some(rec) = &ins.record else {
                return Err(Error::Token(ins.error.unwrap_or(TokenError::Unknown)).into());
            };
            if !may_manage_token(&app.store, &subject, rec)? {
                return Err(ApiError::forbidden());
            }
            let id: Id = ins
                .id
                .as_deref()
                .and_then(|s| s.parse().ok())
                .ok_or(Error::Token(TokenError::Unknown))?;
            let mut out = describe(&id, rec);
            out["location"] = json!(ins.location);
            out["caveats"] = json!(ins.caveats);
            out["valid"] = json!(ins.error.is_none());
            out["invalidReason"] = json!(ins.error.map(|e| e.to_string()));
            Ok(json(StatusCode::OK, &out))
        }
        Keys if method == Method::POST => {
            require(app, &subject, Action::ManageKeys)?;
            let minter = app.minter.clone();
            let id = blocking(move || minter.keys().rotate()).await?;
            Ok(json(StatusCode::CREATED, &json!({ "keyId": id })))
        }
        Keys => {
            require(app, &subject, Action::ManageKeys)?;
            Ok(json(
                StatusCode::OK,
                &json!({ "keys": app.minter.keys().list() }),
            ))
        }
        admin @ (Users
        | UserById(_)
        | UserPrivileges(_)
        | Me
        | MyPassword
        | MyGroups
        | MySpaces
        | Groups
        | Spaces
        | Container(..)
        | MemberList(..)
        | Member(..)
        | MemberPrivileges(..)
        | EffectiveUsers(..)
        | EffectiveUserPrivileges(..)
        | EffectiveChildren(_)
        | Backup) => super::admin::dispatch(app, admin, subject, method, query, body).await,
        KeyRetire(kid) => {
            require(app, &subject, Action::ManageKeys)?;
            let kid: u32 = kid
                .parse()
                .map_err(|_| ApiError::bad_request("A key id is a positive integer."))?;
            let minter = app.minter.clone();
            blocking(move || minter.keys().retire(kid)).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
    }
}

/// The invite tokens minted for a space or group, to whoever may mint them.
fn list_invites(
    app: &App,
    subject: &Subject,
    action: Action,
    target: &Id,
) -> Result<Resp, ApiError> {
    require(app, subject, action)?;
    let list: Vec<Value> = app
        .store
        .tokens_of(target, None, crate::store::TOKENS_PAGE_MAX)?
        .iter()
        .map(|(id, rec)| describe(id, rec))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "tokens": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderRequest {
    name: String,
    domain: String,
}

async fn mint_if_allowed(
    app: &Arc<App>,
    subject: Subject,
    action: Action,
    kind: TokenKind,
    target: Id,
) -> Result<Resp, ApiError> {
    require(app, &subject, action)?;
    let minted = app.minter.mint_async(kind, target, subject).await?;
    app.metrics.mint(kind);
    Ok(json(StatusCode::OK, &json!({ "token": minted.token })))
}

fn issuer_still_allowed(
    store: &crate::Store,
    rec: &TokenRecord,
    action: Action,
) -> Result<(), Error> {
    if allowed(store, &rec.issuer, action)? {
        Ok(())
    } else {
        Err(Error::Token(TokenError::IssuerNotAllowed))
    }
}

async fn revoke(app: &Arc<App>, id: Id) -> Result<(), ApiError> {
    let minter = app.minter.clone();
    blocking(move || minter.revoke(&id).map(|_| ())).await?;
    app.metrics.revoked.inc();
    Ok(())
}

fn active_tokens(app: &App, target: &Id) -> Result<Vec<(Id, TokenRecord)>, ApiError> {
    let t = now();
    Ok(app
        .store
        .tokens_of(target, None, crate::store::TOKENS_PAGE_MAX)?
        .into_iter()
        .filter(|(_, r)| r.state == TokenState::Active && r.expires > t)
        .collect())
}

/// A token path parameter: its identifier, or the whole token.
fn token_id(app: &App, tid: &str) -> Result<Id, ApiError> {
    if let Ok(id) = tid.parse::<Id>() {
        return Ok(id);
    }
    app.minter
        .inspect(tid)
        .id
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::bad_request("Malformed token id."))
}

fn describe(id: &Id, rec: &TokenRecord) -> Value {
    let (state, at) = match rec.state {
        TokenState::Active if rec.expires <= now() => ("expired", Some(rec.expires)),
        TokenState::Active => ("active", None),
        TokenState::Consumed { at, .. } => ("consumed", Some(at)),
        TokenState::Revoked { at } => ("revoked", Some(at)),
    };
    let (issuer_type, issuer) = match rec.issuer {
        Subject::User(u) => ("user", u),
        Subject::Provider(p) => ("provider", p),
    };
    json!({
        "id": id.to_string(),
        "type": rec.kind.wire_name(),
        "target": rec.target.to_string(),
        "issuer": { "type": issuer_type, "id": issuer.to_string() },
        "keyId": rec.key_id,
        "created": rec.created,
        "expires": rec.expires,
        "state": state,
        "stateChanged": at,
    })
}

/// Creating or listing access tokens would let an attenuated token recover
/// an unrestricted credential; it needs a password or an unattenuated token.
fn unrestricted(caller: &Caller) -> Result<(), ApiError> {
    if caller.restricted {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "An attenuated token cannot create or list access tokens; use a password or an unattenuated token.",
        ));
    }
    Ok(())
}

fn provider_only(subject: &Subject) -> Result<Id, ApiError> {
    match subject {
        Subject::Provider(p) => Ok(*p),
        Subject::User(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This operation is for providers only: authenticate with the provider's token.",
        )),
    }
}

fn string_field(body: &Value, name: &str) -> Result<String, ApiError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request(format!("The body needs a string field `{name}`.")))
}

/// `size`: a positive integer, as a JSON integer or a string of digits.
fn size_field(body: &Value) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "`size` must be a positive integer (a JSON integer or a string of digits).",
        )
    };
    let n = match body.get("size") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad)?,
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(n)
}

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn set_location(resp: &mut Resp, path: &str) {
    if let Ok(v) = HeaderValue::from_str(path) {
        resp.headers_mut().insert(LOCATION, v);
    }
}
