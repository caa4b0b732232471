//! The handlers of tokens, providers, consumption and root keys: each parses
//! the request, calls one operation of [`crate::ops::Zone`] and renders the
//! result. Order of checks: authentication (401, here), malformed input (400,
//! here), then the operation's own: unknown entities (404), missing
//! privileges (403).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::routes::Endpoint;
use super::{credentials, json, parse_id, read_json, App, Credentials};
use crate::model::{now, Id, Subject, TokenKind, TokenRecord, TokenState};
use crate::ops::token_auth::{Authenticated, RequestContext};
use crate::ops::tokens::InviteTarget;
use crate::ops::{AuthError, AuthFailure, Caller};
use crate::token::v2::InviteType;

pub(super) type Resp = Response<Full<Bytes>>;

/// A token header other than the credentials (`x-onedata-service-token`,
/// `x-onedata-consumer-token`): at most one, text.
fn token_header(req: &Request<()>, name: &str) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!("Repeated {name} header.")));
    }
    first
        .map(|v| {
            v.to_str()
                .map(|s| s.trim().to_owned())
                .map_err(|_| ApiError::bad_request(format!("Malformed {name} header.")))
        })
        .transpose()
}

/// Authenticates and runs the endpoint's handler; errors of the 20.02+
/// endpoints take Onezone's shape.
pub(super) async fn dispatch(
    app: &Arc<App>,
    ep: Endpoint,
    req: Request<()>,
    body: Bytes,
    peer: std::net::IpAddr,
) -> Result<Resp, ApiError> {
    if ep == Endpoint::OpenApi {
        return Ok(openapi());
    }
    if ep == Endpoint::TokenExamine && super::modern::is_modern_examination(&body) {
        let examine = async {
            let (creds, ctx) = credentials_and_context(&req, peer)?;
            requester(app, &ep, &req, creds, &ctx).await?;
            super::modern::examine(app, &body)
        };
        return examine.await.map_err(ApiError::modern);
    }
    let modern = ep.is_modern();
    dispatch_inner(app, ep, req, body, peer)
        .await
        .map_err(|e| if modern { e.modern() } else { e })
}

/// The request's credentials, and what its headers tell about it.
fn credentials_and_context(
    req: &Request<()>,
    peer: std::net::IpAddr,
) -> Result<(Option<Credentials>, RequestContext), ApiError> {
    let creds = credentials(req.headers())?;
    let ctx = RequestContext {
        service_token: token_header(req, "x-onedata-service-token")?,
        consumer_token: token_header(req, "x-onedata-consumer-token")?,
        ..RequestContext::rest(peer)
    };
    Ok((creds, ctx))
}

/// Who calls a public endpoint: nobody without credentials; with them, as
/// Onezone does, the authenticated subject, its token held to its caveats
/// for this operation like on any other endpoint.
async fn requester(
    app: &App,
    ep: &Endpoint,
    req: &Request<()>,
    creds: Option<Credentials>,
    ctx: &RequestContext,
) -> Result<Option<Caller>, ApiError> {
    let Some(creds) = creds else {
        return Ok(None);
    };
    let authenticated = authenticate(app, Some(creds), ctx).await?;
    held_to_caveats(app, ep, req.method(), &authenticated)?;
    Ok(Some(authenticated.caller))
}

/// Authenticates the request's credentials, counting a failure by its reason.
async fn authenticate(
    app: &App,
    creds: Option<Credentials>,
    ctx: &RequestContext,
) -> Result<Authenticated, ApiError> {
    app.zone
        .authenticate_request(creds, ctx)
        .await
        .map_err(|e| {
            match &e {
                AuthFailure::Auth(a) => app.metrics.auth_failure(match a {
                    AuthError::Missing => "missing",
                    AuthError::BadPassword => "password",
                    AuthError::BadToken(_) | AuthError::Gone | AuthError::Onezone(_) => "token",
                }),
                AuthFailure::Throttled(_) => app.metrics.auth_failure("throttled"),
                _ => {}
            }
            e.into()
        })
}

/// Refuses the request if the caller's token does not allow the endpoint's
/// operation (its `api`, `service` and data-access caveats).
fn held_to_caveats(
    app: &App,
    ep: &Endpoint,
    method: &Method,
    authenticated: &Authenticated,
) -> Result<(), ApiError> {
    let (operation, gri) = ep.operation(method, &authenticated.caller.subject);
    authenticated.check_operation(operation, &gri).map_err(|e| {
        app.metrics.auth_failure("token");
        AuthFailure::Auth(AuthError::Onezone(e)).into()
    })
}

async fn dispatch_inner(
    app: &Arc<App>,
    ep: Endpoint,
    req: Request<()>,
    body: Bytes,
    peer: std::net::IpAddr,
) -> Result<Resp, ApiError> {
    let (creds, ctx) = credentials_and_context(&req, peer)?;
    if ep.is_public() {
        let requester = requester(app, &ep, &req, creds, &ctx).await?;
        return super::modern::public(app, ep, &body, peer, requester.as_ref()).await;
    }
    if creds.is_none() && ep == Endpoint::Providers && req.method() == Method::POST {
        // A registerOneprovider invite token needs no credentials.
        let r: ProviderRequest = read_json(app, &body)?;
        if let Some(token) = &r.token {
            return super::invites::register_provider(
                app,
                None,
                token,
                &r.name,
                &r.domain,
                r.version.as_deref(),
                peer,
            )
            .await;
        }
    }
    let authenticated = authenticate(app, creds, &ctx).await?;
    let method = req.method().clone();
    held_to_caveats(app, &ep, &method, &authenticated)?;
    let caller = authenticated.caller;
    if ep.is_invite() {
        return super::invites::dispatch(app, ep, &caller, &body, peer).await;
    }
    if ep.is_modern() {
        return super::modern::dispatch(app, ep, &caller, &method, &body).await;
    }
    let zone = &app.zone;
    let query = req.uri().query().map(str::to_owned);
    use Endpoint::*;
    match ep {
        SpaceSupportToken(id) => {
            let space = parse_id(&id)?;
            let minted = zone.create_space_support_token(&caller, space).await?;
            app.metrics.mint(TokenKind::SpaceSupport);
            Ok(json(StatusCode::OK, &json!({ "token": minted.token })))
        }
        GroupSpaceToken(id) => {
            let group = parse_id(&id)?;
            let minted = zone.create_group_space_token(&caller, group).await?;
            app.metrics.mint(TokenKind::SpaceCreate);
            Ok(json(StatusCode::OK, &json!({ "token": minted.token })))
        }
        ClientTokens if method == Method::POST => {
            let minted = zone.create_access_token(&caller).await?;
            app.metrics.mint(TokenKind::Access);
            Ok(json(StatusCode::OK, &json!({ "token": minted.token })))
        }
        ClientTokens => {
            let tokens = zone.access_tokens(&caller).await?;
            Ok(json(StatusCode::OK, &json!({ "tokens": tokens })))
        }
        ClientToken(tid) => {
            zone.revoke_access_token(&caller, &tid).await?;
            app.metrics.revoked.inc();
            Ok(empty(StatusCode::ACCEPTED))
        }
        Providers if method == Method::POST => {
            let req: ProviderRequest = read_json(app, &body)?;
            if let Some(token) = &req.token {
                return super::invites::register_provider(
                    app,
                    Some(&caller),
                    token,
                    &req.name,
                    &req.domain,
                    req.version.as_deref(),
                    peer,
                )
                .await;
            }
            let (pid, minted) = zone
                .register_provider_with_version(
                    &caller,
                    &req.name,
                    &req.domain,
                    req.version.as_deref(),
                )
                .await?;
            app.metrics.mint(TokenKind::Provider);
            let mut resp = json(
                StatusCode::CREATED,
                &json!({ "providerId": pid.to_string(), "providerRootToken": minted.token }),
            );
            set_location(&mut resp, &format!("/providers/{pid}"));
            Ok(resp)
        }
        Providers => {
            let ids: Vec<String> = zone
                .list_providers(&caller)
                .await?
                .iter()
                .map(Id::to_string)
                .collect();
            Ok(json(StatusCode::OK, &json!({ "providers": ids })))
        }
        ProviderSpaceSupport => {
            caller.provider_id()?;
            let body: Value = read_json(app, &body)?;
            let token = string_field(&body, "token")?;
            let size = size_field(&body)?;
            let space = if super::invites::is_v2(&token) {
                let peer = crate::ops::token_auth::ipv4_of(peer);
                let space = zone
                    .support_space_with_invite(&caller, &token, size, peer)
                    .await?;
                app.metrics.consume_invite(InviteType::SupportSpace);
                space
            } else {
                let space = zone.support_space(&caller, &token, size).await?;
                app.metrics.consume(TokenKind::SpaceSupport);
                space
            };
            Ok(created(&format!("/spaces/{space}")))
        }
        ProviderSpaces => {
            caller.provider_id()?;
            let body: Value = read_json(app, &body)?;
            let name = string_field(&body, "name")?;
            let token = string_field(&body, "token")?;
            let size = size_field(&body)?;
            let space = zone
                .create_space_with_token(&caller, &name, &token, size)
                .await?;
            app.metrics.consume(TokenKind::SpaceCreate);
            Ok(created(&format!("/spaces/{space}")))
        }
        SpaceProviders(id) => {
            let space = parse_id(&id)?;
            let supports = zone.space_supports(&caller, space).await?;
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
        SpaceTokens(id) => list_invites(app, &caller, InviteTarget::Space(parse_id(&id)?)).await,
        GroupTokens(id) => list_invites(app, &caller, InviteTarget::Group(parse_id(&id)?)).await,
        Token(tid) => {
            zone.revoke_token(&caller, &tid).await?;
            app.metrics.revoked.inc();
            Ok(empty(StatusCode::NO_CONTENT))
        }
        TokenExamine => {
            let body: Value = read_json(app, &body)?;
            let token = string_field(&body, "token")?;
            let ex = zone.examine_token(&caller, &token).await?;
            let mut out = describe(&ex.id, &ex.record);
            out["location"] = json!(ex.location);
            out["caveats"] = json!(ex.caveats);
            out["valid"] = json!(ex.error.is_none());
            out["invalidReason"] = json!(ex.error.map(|e| e.to_string()));
            Ok(json(StatusCode::OK, &out))
        }
        Keys if method == Method::POST => {
            let id = zone.rotate_key(&caller).await?;
            Ok(json(StatusCode::CREATED, &json!({ "keyId": id })))
        }
        Keys => Ok(json(
            StatusCode::OK,
            &json!({ "keys": zone.list_keys(&caller).await? }),
        )),
        KeyRetire(kid) => {
            let kid: u32 = kid
                .parse()
                .map_err(|_| ApiError::bad_request("A key id is a positive integer."))?;
            zone.retire_key(&caller, kid).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        MyProvider | ProviderById(_) => {
            super::scope::provider(app, ep, &caller, &method, &body).await
        }
        admin => super::admin::dispatch(app, admin, caller, method, query, body).await,
    }
}

/// The OpenAPI 3 description of this API (`api/openapi.json`, written by `api/openapi.py`).
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// `GET /openapi.json`: the description, to anyone.
fn openapi() -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The invite tokens minted for a space or group, to whoever may mint them.
async fn list_invites(app: &App, caller: &Caller, target: InviteTarget) -> Result<Resp, ApiError> {
    let list: Vec<Value> = app
        .zone
        .invite_tokens(caller, target)
        .await?
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
    version: Option<String>,
    /// A `registerOneprovider` invite token (20.02+).
    token: Option<String>,
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

/// An empty answer with a status.
pub(super) fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// 201 with a JSON body and a `Location`.
pub(super) fn created_json(path: &str, body: &Value) -> Resp {
    let mut r = json(StatusCode::CREATED, body);
    set_location(&mut r, path);
    r
}

/// 201 with a `Location`.
pub(super) fn created(path: &str) -> Resp {
    let mut r = empty(StatusCode::CREATED);
    set_location(&mut r, path);
    r
}

fn set_location(resp: &mut Resp, path: &str) {
    if let Ok(v) = HeaderValue::from_str(path) {
        resp.headers_mut().insert(LOCATION, v);
    }
}
