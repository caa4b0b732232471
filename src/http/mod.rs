//! The HTTPS front end.
//!
//! - [`server`]: accept loop, TLS, HTTP/1.1 + HTTP/2, limits, graceful shutdown.
//! - [`tls`]: certificates (configured, or self-signed and kept in the data directory).
//! - [`routes`]: path decoding and the endpoint table.
//! - [`error`]: the single mapping from errors to JSON responses.
//! - `api`, `admin`, `modern`, `invites`: the handlers.
//! - this module: the request pipeline (request id, credentials, dispatch, log line)
//!   and the handlers.

mod admin;
mod api;
pub mod error;
mod invites;
mod modern;
pub mod routes;
mod scope;
pub mod server;
pub mod tls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::metrics::Metrics;
use crate::model::Id;
use crate::ops::{Credentials, Zone};
use error::ApiError;

pub use api::OPENAPI;
pub use server::{ConnInfo, Limits};

/// Shared state of the request handlers.
pub struct App {
    /// The operations (and through them the store).
    pub zone: Arc<Zone>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Deepest JSON nesting accepted in a body.
    pub max_json_depth: usize,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where `POST /backup` writes consistent copies of the store.
    pub backup_dir: std::path::PathBuf,
    /// False until the store is open and again once shutdown begins.
    pub ready: AtomicBool,
}

type Resp = Response<Full<Bytes>>;

/// Handles one request: never fails, every error becomes a JSON response.
///
/// The body is read (up to the limit) before anything is answered, errors
/// included: a client still sending when the answer comes would see its
/// stream reset (HTTP/2) instead of the answer.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, conn: ConnInfo) -> Resp {
    let started = Instant::now();
    let _in_flight = app.metrics.request_started();
    let request_id = request_id(req.headers());
    let method = req.method().clone();
    let mut template = "unmatched";
    let (parts, body) = req.into_parts();
    let body = read_body(body, app.max_body).await;
    let req = Request::from_parts(parts, ());
    let result = match req.uri().path() {
        path if routes::OUTSIDE.contains(&path) => {
            template = routes::OUTSIDE
                .into_iter()
                .find(|p| *p == path)
                .unwrap_or("unmatched");
            // The method is checked first, as on the API's routes.
            match (req.method() == hyper::Method::GET, body) {
                (true, Err(e)) => Err(e),
                _ => outside(&app, &req).await,
            }
        }
        path => match routes::endpoint(path) {
            Err(e) => Err(e),
            Ok(ep) => {
                // A wrong method on a known resource is still that resource's.
                template = ep.template();
                match (routes::allow(&ep, req.method()), body) {
                    // The 20.02+ endpoints answer these in Onezone's shape too.
                    (Err(e), _) | (Ok(()), Err(e)) if ep.is_modern() => Err(e.modern()),
                    (Err(e), _) | (Ok(()), Err(e)) => Err(e),
                    // Boxed: the handlers' future is about 6 KB, and hyper
                    // moves the request's future into its slot; unboxed, that
                    // copy was 2.4% of a temporary mint's CPU (perf) and 7%
                    // of its instructions (callgrind); boxed, this future is
                    // 1.4 KB.
                    (Ok(()), Ok(body)) => {
                        Box::pin(api::dispatch(&app, ep, req, body, conn.peer.ip())).await
                    }
                }
            }
        },
    };
    let mut resp = result.unwrap_or_else(ApiError::into_response);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let took = started.elapsed();
    app.metrics
        .request(template, method.as_str(), resp.status().as_u16(), took);
    tracing::info!(
        request_id = %request_id,
        peer = %conn.peer,
        method = %method,
        route = template,
        status = resp.status().as_u16(),
        latency_us = took.as_micros() as u64,
        "request"
    );
    resp
}

/// `GET /readyz`: ready while serving and while the store can take writes.
async fn readiness(app: &App) -> Resp {
    if !app.ready.load(Ordering::Acquire) {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "not ready", "reason": "shutting down" }),
        );
    }
    match app.zone.store().health().await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({ "status": "ready" })),
        Err(e) => {
            let reason = ApiError::from(e).description;
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "status": "not ready", "reason": reason }),
            )
        }
    }
}

/// `GET /metrics`, OpenMetrics text.
pub fn metrics(app: &App) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(app.metrics.render(app.zone.store()))));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

/// `/healthz`, `/readyz` or `/metrics` (GET only: another method is a 405
/// with `Allow: GET`), else a 404.
async fn outside<B>(app: &App, req: &Request<B>) -> Result<Resp, ApiError> {
    let path = req.uri().path();
    if !routes::OUTSIDE.contains(&path) {
        return Err(ApiError::no_route());
    }
    if req.method() != hyper::Method::GET {
        return Err(ApiError::method_not_allowed("GET".into()));
    }
    Ok(match path {
        routes::METRICS => metrics(app),
        routes::READYZ => readiness(app).await,
        _ => json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
    })
}

/// The separate metrics listener: `/metrics`, `/healthz` and `/readyz` only.
pub async fn metrics_only<B>(app: &App, req: &Request<B>) -> Resp {
    outside(app, req)
        .await
        .unwrap_or_else(ApiError::into_response)
}

/// The client's `x-request-id` if it is short and printable, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()))
}

fn parse_id(s: &str) -> Result<Id, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad_request(format!("Malformed id: {e}.")))
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// How much of an over-long body is read and thrown away before the 413
/// goes out, so that the client sees the answer rather than a reset.
const DRAIN_FACTOR: usize = 16;

/// Reads the whole request body, at most `max` bytes; a longer one is
/// drained (up to [`DRAIN_FACTOR`] times the limit) and refused with 413.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body exceeds {max} bytes."),
        )
    };
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ApiError::bad_request("The request body could not be read."))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > max.saturating_mul(DRAIN_FACTOR) {
                return Err(too_large());
            }
            if seen <= max {
                buf.extend_from_slice(&data);
            }
        }
    }
    if seen > max {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

/// Parses a JSON body (already read, within the size limit).
fn read_json<T: serde::de::DeserializeOwned>(app: &App, bytes: &[u8]) -> Result<T, ApiError> {
    if json_depth(bytes) > app.max_json_depth {
        return Err(ApiError::bad_request(format!(
            "The JSON body is nested deeper than {} levels.",
            app.max_json_depth
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON body: {e}.")))
}

/// The deepest nesting of arrays and objects in a JSON text (strings skipped).
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Extracts credentials. Exactly one credential may be presented: several
/// headers, or one header repeated, is a 400.
pub fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    let mut found: Vec<Credentials> = Vec::new();
    for v in headers.get_all(AUTHORIZATION) {
        let v = v
            .to_str()
            .map_err(|_| ApiError::bad_request("Malformed Authorization header."))?;
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad_request("Malformed Basic credentials."))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("Malformed Basic credentials."))?;
            found.push(Credentials::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            });
        } else if scheme.eq_ignore_ascii_case("bearer") {
            found.push(Credentials::Token(rest.to_owned()));
        } else {
            return Err(ApiError::bad_request("Unsupported Authorization scheme."));
        }
    }
    for name in ["x-auth-token", "macaroon"] {
        for v in headers.get_all(name) {
            let v = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Malformed token header."))?;
            found.push(Credentials::Token(v.trim().to_owned()));
        }
    }
    if found.len() > 1 {
        return Err(ApiError::bad_request(
            "Conflicting credentials: present exactly one of Authorization, X-Auth-Token or macaroon.",
        ));
    }
    Ok(found.pop())
}
