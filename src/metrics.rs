//! Prometheus metrics (OpenMetrics text), served at `GET /metrics`.
//!
//! Labels carry route templates, never concrete ids or tokens.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::TokenKind;
use crate::store::Store;
use crate::token::v2::{InviteType, Persistence, TokenType};

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route template.
    pub route: &'static str,
    /// HTTP method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Labels of per-route histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: &'static str,
}

/// Labels naming a token type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    /// `tokenType` value.
    pub r#type: &'static str,
}

/// Labels naming a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why.
    pub reason: &'static str,
}

/// Labels of a 20.02+ token minted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct V2TokenLabels {
    /// `named` or `temporary`.
    pub persistence: &'static str,
    /// `accessToken`, `identityToken` or `inviteToken`.
    pub r#type: &'static str,
}

/// Labels naming a 20.02+ invite type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InviteLabels {
    /// The invite type (`userJoinGroup`, `supportSpace`, ...).
    pub invite_type: &'static str,
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by route.
    pub latency: Family<RouteLabels, Histogram>,
    /// Tokens minted by type.
    pub minted: Family<TypeLabels, Counter>,
    /// Tokens consumed by type.
    pub consumed: Family<TypeLabels, Counter>,
    /// 20.02+ tokens minted by persistence and type.
    pub v2_minted: Family<V2TokenLabels, Counter>,
    /// 20.02+ invite tokens consumed by invite type.
    pub invites_consumed: Family<InviteLabels, Counter>,
    /// Tokens revoked.
    pub revoked: Counter,
    /// Authentication failures by reason.
    pub auth_failures: Family<ReasonLabels, Counter>,
    /// Durable commit latency.
    pub flush: Histogram,
    store_bytes: Gauge<u64, AtomicU64>,
    in_flight: Gauge,
}

/// One request being handled: counted in `http_requests_in_flight` from
/// [`Metrics::request_started`] until dropped (answered or cancelled).
#[must_use = "the request counts as in flight until this is dropped"]
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ozmint");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        let minted = Family::<TypeLabels, Counter>::default();
        let consumed = Family::<TypeLabels, Counter>::default();
        let v2_minted = Family::<V2TokenLabels, Counter>::default();
        let invites_consumed = Family::<InviteLabels, Counter>::default();
        let revoked = Counter::default();
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        let flush = Histogram::new(exponential_buckets(0.000_05, 2.0, 18));
        let store_bytes = Gauge::<u64, AtomicU64>::default();
        let in_flight = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("tokens_minted", "Tokens minted by type", minted.clone());
        registry.register(
            "tokens_consumed",
            "Invite tokens consumed by type",
            consumed.clone(),
        );
        registry.register(
            "v2_tokens_minted",
            "Onedata 20.02+ tokens minted by persistence and type",
            v2_minted.clone(),
        );
        registry.register(
            "invites_consumed",
            "Onedata 20.02+ invite tokens consumed by invite type",
            invites_consumed.clone(),
        );
        registry.register("tokens_revoked", "Tokens revoked", revoked.clone());
        registry.register(
            "auth_failures",
            "Failed authentications by reason",
            auth_failures.clone(),
        );
        registry.register(
            "store_flush_duration_seconds",
            "Duration of durable store commits (write and flush; concurrent commits share flushes)",
            flush.clone(),
        );
        registry.register(
            "store_size_bytes",
            "Bytes used by the store on disk",
            store_bytes.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled (a scrape on the API listener counts itself)",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            minted,
            consumed,
            v2_minted,
            invites_consumed,
            revoked,
            auth_failures,
            flush,
            store_bytes,
            in_flight,
        }
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn request_started(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records one answered request.
    pub fn request(&self, route: &'static str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// Counts a minted token.
    pub fn mint(&self, kind: TokenKind) {
        self.minted
            .get_or_create(&TypeLabels {
                r#type: kind.wire_name(),
            })
            .inc();
    }

    /// Counts a consumed invite token.
    pub fn consume(&self, kind: TokenKind) {
        self.consumed
            .get_or_create(&TypeLabels {
                r#type: kind.wire_name(),
            })
            .inc();
    }

    /// Counts a minted 20.02+ token.
    pub fn mint_v2(&self, persistence: Persistence, token_type: &TokenType) {
        self.v2_minted
            .get_or_create(&V2TokenLabels {
                persistence: persistence.json_name(),
                r#type: token_type.json_key(),
            })
            .inc();
    }

    /// Counts a consumed 20.02+ invite token.
    pub fn consume_invite(&self, invite_type: InviteType) {
        self.invites_consumed
            .get_or_create(&InviteLabels {
                invite_type: invite_type.json_name(),
            })
            .inc();
    }

    /// Counts a failed authentication.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The metrics as OpenMetrics text, with store gauges read now.
    pub fn render(&self, store: &Store) -> String {
        self.store_bytes.set(store.stats().bytes_on_disk);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
