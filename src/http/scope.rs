//! The handlers of `GET|PATCH /provider`, `GET /providers/{id}` (a
//! provider's JSON with its version and online flag) and `POST
//! /tokens/infer_access_token_scope`.

use std::net::IpAddr;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::api::{empty, Resp};
use super::error::ApiError;
use super::routes::Endpoint;
use super::{json, parse_id, read_json, App};
use crate::error::OzError;
use crate::ops::providers::ProviderPatch;
use crate::ops::scope::ScopeConsumer;
use crate::ops::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: Option<String>,
    domain: Option<String>,
    version: Option<String>,
}

/// `GET|PATCH /provider`, `GET /providers/{id}`.
pub(super) async fn provider(
    app: &App,
    ep: Endpoint,
    caller: &Caller,
    method: &Method,
    body: &Bytes,
) -> Result<Resp, ApiError> {
    let zone = &app.zone;
    let id = match ep {
        Endpoint::ProviderById(id) => parse_id(&id)?,
        _ if *method == Method::PATCH => {
            let b: PatchBody = read_json(app, body)?;
            let patch = ProviderPatch {
                name: b.name,
                domain: b.domain,
                version: b.version,
            };
            zone.update_provider(caller, &patch).await?;
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        _ => caller.provider_id()?,
    };
    let info = zone.provider(caller, &id).await?;
    Ok(json(StatusCode::OK, &info.to_json()))
}

/// `POST /tokens/infer_access_token_scope`: the body is read already.
pub(super) async fn infer(app: &App, v: &Value, peer: IpAddr) -> Result<Resp, ApiError> {
    let token = super::modern::token_field(&app.zone, v)?;
    let serialized = v.get("token").and_then(Value::as_str).unwrap_or_default();
    let consumer = match v.get("consumerToken") {
        None => ScopeConsumer::Subject,
        Some(Value::Null) => ScopeConsumer::Nobody,
        Some(Value::String(t)) => ScopeConsumer::Token(t.clone()),
        Some(_) => return Err(crate::Error::from(OzError::BadValueString("consumerToken")).into()),
    };
    let scope = app
        .zone
        .infer_access_token_scope(&token, serialized, consumer, peer)
        .await?;
    Ok(json(StatusCode::OK, &scope.to_json()))
}
