//! A small client of the ozmint REST API (used by `ozmint admin`).

use std::time::Duration;

use reqwest::header::LOCATION;
use serde_json::Value;

/// How the client authenticates.
#[derive(Clone)]
pub enum ClientAuth {
    /// Basic user and password.
    Basic(String, String),
    /// An access token (sent in `X-Auth-Token`).
    Token(String),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Basic(u, _) => write!(f, "Basic({u}, <redacted>)"),
            ClientAuth::Token(_) => write!(f, "Token(<redacted>)"),
        }
    }
}

/// What the server answered.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Location` header, if any.
    pub location: Option<String>,
    /// JSON body (`Null` when empty).
    pub body: Value,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body, with the `Location` (if any) added as `location` and the
    /// id it names as `id`.
    pub fn output(&self) -> Value {
        let mut out = match &self.body {
            Value::Null => serde_json::json!({}),
            Value::Object(_) => self.body.clone(),
            other => serde_json::json!({ "body": other }),
        };
        if let Some(loc) = &self.location {
            out["location"] = Value::String(loc.clone());
            if let Some(id) = loc.rsplit('/').next() {
                out["id"] = Value::String(id.to_owned());
            }
        }
        out
    }
}

/// A REST client bound to one server and one identity.
pub struct Client {
    base: String,
    http: reqwest::Client,
    auth: ClientAuth,
}

impl Client {
    /// A client for `base` (e.g. `https://127.0.0.1:8443`). `insecure` accepts
    /// any certificate (self-signed servers); `ca` adds a PEM CA to trust.
    pub fn new(
        base: &str,
        auth: ClientAuth,
        insecure: bool,
        ca: Option<&[u8]>,
    ) -> Result<Self, String> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .danger_accept_invalid_certs(insecure);
        if let Some(pem) = ca {
            let cert =
                reqwest::Certificate::from_pem(pem).map_err(|e| format!("CA certificate: {e}"))?;
            b = b.add_root_certificate(cert);
        }
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            http: b.build().map_err(|e| e.to_string())?,
            auth,
        })
    }

    /// Calls `METHOD /api/v3/onezone<path>` with an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let url = format!("{}/api/v3/onezone{}", self.base, path);
        let mut req = self.http.request(method, &url);
        req = match &self.auth {
            ClientAuth::Basic(u, p) => req.basic_auth(u, Some(p)),
            ClientAuth::Token(t) => req.header("x-auth-token", t),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Answer {
            status,
            location,
            body,
        })
    }
}
