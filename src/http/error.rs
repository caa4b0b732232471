//! The one place where errors become HTTP responses.
//!
//! Two shapes: the seed-era endpoints answer `{"error": code,
//! "error_description": text}`; the Onedata 20.02+ endpoints answer
//! Onezone's `{"error": {"id", "description", "details"?}}`. Every error
//! carries both forms; the endpoint chooses ([`ApiError::modern`]).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use crate::engine::EngineError;
use crate::error::{Error, Forbidden, OzError};
use crate::ops::{AuthError, AuthFailure};
use crate::token::TokenError;

/// An error on its way to the client: status, stable code, human text.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `error` field: a stable machine-readable code.
    pub code: &'static str,
    /// The `error_description` field.
    pub description: String,
    /// `Allow` header value for 405.
    pub allow: Option<String>,
    /// `Retry-After` seconds for 429.
    pub retry_after: Option<u64>,
    /// Onezone's error id (20.02+ shape).
    pub oz_id: &'static str,
    /// Onezone's error details (20.02+ shape).
    pub details: Option<Box<serde_json::Value>>,
    /// Whether the answer takes the 20.02+ shape.
    pub modern: bool,
}

/// Onezone's id for the errors that are not Onezone's own.
fn oz_id_of(code: &str, status: StatusCode) -> &'static str {
    match code {
        "not_found" => "notFound",
        "forbidden" | "last_admin" => "forbidden",
        "unauthorized" | "invalid_credentials" | "invalid_token"
            if status == StatusCode::UNAUTHORIZED =>
        {
            "unauthorized"
        }
        "invalid_credentials" => "forbidden",
        "method_not_allowed" => "notSupported",
        "already_exists" => "alreadyExists",
        "store_unavailable" => "serviceUnavailable",
        "too_many_requests" => "unauthorized",
        "internal_error" | "insufficient_storage" => "internalServerError",
        "invalid_token" => "badToken",
        _ => "badMessage",
    }
}

impl ApiError {
    /// An error with status, code and description.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            description: description.into(),
            allow: None,
            retry_after: None,
            oz_id: oz_id_of(code, status),
            details: None,
            modern: false,
        }
    }

    /// An Onezone 20.02+ error (status 400 as Onezone answers, 409 for
    /// `relationAlreadyExists`).
    pub fn onezone(e: &OzError) -> Self {
        let code = match e {
            OzError::Token(_)
            | OzError::Revoked
            | OzError::SubjectInvalid
            | OzError::ServiceForbidden(_)
            | OzError::NotAnAccessToken(_)
            | OzError::NotAnIdentityToken(_)
            | OzError::NotAnInviteToken(..)
            | OzError::BadValueToken(..)
            | OzError::BadServiceToken(_)
            | OzError::BadConsumerToken(_)
            | OzError::InviteUsageLimitReached
            | OzError::InviteSubjectNotAuthorized
            | OzError::InviteConsumerInvalid(_)
            | OzError::InviteTargetIdInvalid(_) => "invalid_token",
            OzError::RelationAlreadyExists { .. } => "already_exists",
            _ => "invalid_request",
        };
        // Onezone answers 400 to all of them but this one (409).
        let status = match e {
            OzError::RelationAlreadyExists { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut out = Self::new(status, code, e.to_string());
        out.oz_id = e.id();
        out.details = e.to_json().get("details").cloned().map(Box::new);
        out
    }

    /// The same error in the 20.02+ shape.
    pub fn modern(mut self) -> Self {
        self.modern = true;
        self
    }

    /// 400 for malformed input.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 403.
    pub fn forbidden() -> Self {
        Self::from(Error::Forbidden(Forbidden::Privileges))
    }

    /// 404 for paths that match no route.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The resource could not be found.",
        )
    }

    /// 405 with the allowed methods.
    pub fn method_not_allowed(allow: String) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("This resource supports only: {allow}."),
        );
        e.allow = Some(allow);
        e
    }

    /// 503 with `Retry-After`: the store cannot serve now.
    pub fn unavailable(description: &str) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            description,
        );
        e.retry_after = Some(1);
        e
    }

    /// 500; the detail is logged here, once, and never sent.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The server encountered an internal error.",
        )
    }

    /// The JSON response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = if self.modern {
            let mut e = serde_json::json!({ "id": self.oz_id, "description": self.description });
            if let Some(d) = self.details {
                e["details"] = *d;
            }
            serde_json::json!({ "error": e })
        } else {
            serde_json::json!({ "error": self.code, "error_description": self.description })
        };
        let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            h.insert(ALLOW, allow);
        }
        if let Some(s) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ozmint\""),
            );
        }
        resp
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("The {what} could not be found."),
            ),
            Error::AlreadyExists(what) => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("The {what} already exists."),
            ),
            Error::Cycle => Self::new(
                StatusCode::CONFLICT,
                "cycle",
                "The group relation would create a cycle.",
            ),
            Error::CurrentKey => Self::new(
                StatusCode::CONFLICT,
                "current_key",
                "The current root key cannot be retired; rotate first.",
            ),
            Error::Invalid(why) => Self::bad_request(why),
            Error::Token(t) => token_error(t),
            Error::Forbidden(why) => {
                let code = match why {
                    Forbidden::WrongPassword => "invalid_credentials",
                    _ => "forbidden",
                };
                Self::new(StatusCode::FORBIDDEN, code, why.to_string())
            }
            Error::LastAdmin => Self::new(
                StatusCode::CONFLICT,
                "last_admin",
                "Refused: no other user holds the zone privilege `set_privileges`, so the zone would be left without an administrator. Grant it to another user first (or use `ozmint restore-admin` on a stopped server).",
            ),
            Error::Contended => Self::unavailable(
                "The store is busy with concurrent changes to the same data; retry.",
            ),
            Error::Engine(engine) => Self::from(engine),
            Error::Onezone(oz) => Self::onezone(&oz),
            Error::Corrupt { .. } => Self::internal(&e),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Unavailable(_) | EngineError::Timeout => {
                tracing::warn!(error = %e, "store unavailable");
                Self::unavailable("The store is unavailable; retry later.")
            }
            EngineError::OutcomeUnknown(_) => {
                tracing::warn!(error = %e, "store unavailable; a write's outcome is unknown");
                Self::unavailable(
                    "The store became unavailable during the change, which may or may not have been made; retry later and check.",
                )
            }
            EngineError::Full(_) => {
                tracing::warn!(error = %e, "store out of space");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    "The store is out of space: nothing was written. Reads still work; writes work again once space is freed.",
                )
            }
            EngineError::Conflict
            | EngineError::TooLarge { .. }
            | EngineError::Corrupt(_)
            | EngineError::Invalid(_)
            | EngineError::Io(_) => Self::internal(&e),
        }
    }
}

/// A token presented in a request body (consumption, examination) that fails.
fn token_error(t: TokenError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_token",
        format!("Provided token could not be validated: {t}."),
    )
}

impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Internal(e) => Self::from(e),
            AuthFailure::Throttled(wait) => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "Too many failed logins; try again later.",
                );
                e.retry_after = Some(wait);
                e
            }
            AuthFailure::Auth(a) => {
                let (code, text) = match &a {
                    AuthError::Missing => ("unauthorized", "Authentication required.".to_string()),
                    AuthError::BadPassword => (
                        "invalid_credentials",
                        "Invalid username or password.".to_string(),
                    ),
                    AuthError::BadToken(t) => (
                        "invalid_token",
                        format!("Provided token could not be validated: {t}."),
                    ),
                    AuthError::Gone => (
                        "invalid_token",
                        "Provided token could not be validated: its subject no longer exists."
                            .to_string(),
                    ),
                    AuthError::Onezone(oz) => (
                        "invalid_token",
                        format!("Provided token could not be validated: {oz}"),
                    ),
                };
                let mut e = Self::new(StatusCode::UNAUTHORIZED, code, text);
                // Onezone: `unauthorized`, with the token's error as `authError`.
                if let AuthError::Onezone(oz) = a {
                    e.details = Some(Box::new(serde_json::json!({ "authError": oz.to_json() })));
                }
                e
            }
        }
    }
}
