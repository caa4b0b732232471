//! Onedata 20.02+ tokens as credentials (Onezone's `token_auth`).
//!
//! Verification of a serialized token: parse it (legacy 18.02 tokens go the
//! way they always went, [`Zone::token_caller`]); find its secret (a named
//! token's record, or the subject's temporary-token secret of the token's
//! generation) and whether its subject exists, in one engine call; refuse a
//! revoked named token (`tokenRevoked`), a deleted one (`tokenInvalid`), a
//! temporary token of an older generation (`tokenRevoked`) or a newer one
//! (`tokenInvalid`); check the signature and every caveat against the
//! request's [`Context`]; refuse a subject that is gone
//! (`tokenSubjectInvalid`) and a service that may not use the subject's
//! access tokens (`tokenServiceForbidden`). A serialized token this zone
//! verified before ([`Presented`], `token_cache`) skips its parse, and its
//! signature while its secret is the one the signature matched then; every
//! read and every other check runs on every request.
//!
//! A REST request is verified with interface `rest`, the peer's address from
//! the socket, data-access caveats disallowed, the service proven by an
//! `x-onedata-service-token` (default `ozw-onezone`) and the consumer by an
//! `x-onedata-consumer-token` (default none). `api` caveats (and the limits
//! `service` caveats put on the API) are checked per operation:
//! [`Authenticated::check_operation`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Deref;
use std::sync::Arc;

use super::auth::{AuthError, AuthFailure};
use super::cache::{Fingerprint, Slot};
use super::token_cache::{Entry, Lookup, Modern};
use super::{Caller, Zone};
use crate::error::{Entity, Error, OzError, Result};
use crate::model::{now, Id, Subject};
use crate::token::caveat::{CaveatKind, Gri, Interface, Operation, Service, ServiceSpec, WILDCARD};
use crate::token::v2::{
    self, Consumer, Context, Identifier, InviteType, OneproviderService, Persistence, Scope, Token,
    TokenSubject, TokenType, Verified,
};

/// What a request brings besides its access token.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The peer's address (from the socket).
    pub peer: IpAddr,
    /// The interface the request came through.
    pub interface: Interface,
    /// `x-onedata-service-token`: an identity token of the service using the token.
    pub service_token: Option<String>,
    /// `x-onedata-consumer-token`: an identity token of the consumer.
    pub consumer_token: Option<String>,
}

impl RequestContext {
    /// A REST request from `peer` without service or consumer token.
    pub fn rest(peer: IpAddr) -> RequestContext {
        RequestContext {
            peer,
            interface: Interface::Rest,
            service_token: None,
            consumer_token: None,
        }
    }
}

/// The peer's IPv4 address (IPv4-mapped IPv6 included), as caveats see it.
pub fn ipv4_of(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

/// An authenticated caller, with what its 20.02+ token still limits.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// Who calls.
    pub caller: Caller,
    /// The verified 20.02+ token (`None`: a password or a legacy token).
    pub grant: Option<Verified>,
}

impl Authenticated {
    /// Whether the caller's token allows an operation of Onezone's worker
    /// on `gri` (its `api` caveats, and the API its `service` caveats leave).
    pub fn check_operation(&self, operation: Operation, gri: &Gri) -> Result<(), OzError> {
        match &self.grant {
            None => Ok(()),
            Some(v) => v
                .check_operation(Service::OzWorker, operation, gri)
                .map_err(|f| OzError::Token(v2::Error::CaveatUnverified(Box::new(f)))),
        }
    }
}

/// A token subject as an entity.
pub fn subject_of(s: &TokenSubject) -> Result<Subject, OzError> {
    let id: Id = s.id().parse().map_err(|_| OzError::SubjectInvalid)?;
    Ok(match s {
        TokenSubject::User(_) => Subject::User(id),
        TokenSubject::Provider(_) => Subject::Provider(id),
    })
}

/// An entity as a token subject.
pub fn token_subject(s: &Subject) -> TokenSubject {
    match s {
        Subject::User(id) => TokenSubject::User(id.to_string()),
        Subject::Provider(id) => TokenSubject::Provider(id.to_string()),
    }
}

/// Parses a serialized token (`badToken`, `tokenTooLarge`).
pub fn parse(serialized: &str) -> Result<Token, OzError> {
    Token::parse(serialized).map_err(OzError::Token)
}

/// A 20.02+ token as a request presented it: parsed, or taken from the
/// zone's cache of verified tokens ([`Zone::present`]) with what its
/// signature matched then; verification skips the signature check while the
/// token's secret is still that one. A [`Token`] parsed elsewhere becomes
/// one with `From` and is verified in full.
#[derive(Clone)]
pub struct Presented {
    token: Arc<Token>,
    slot: Option<Slot>,
    signed_by: Option<Fingerprint>,
}

impl Presented {
    fn parsed(token: Token, slot: Slot) -> Presented {
        Presented {
            token: Arc::new(token),
            slot: Some(slot),
            signed_by: None,
        }
    }

    fn remembered(m: &Modern, slot: Slot) -> Presented {
        Presented {
            token: m.token.clone(),
            slot: Some(slot),
            signed_by: Some(m.signed_by),
        }
    }
}

impl Deref for Presented {
    type Target = Token;
    fn deref(&self) -> &Token {
        &self.token
    }
}

impl From<Token> for Presented {
    fn from(token: Token) -> Self {
        Presented {
            token: Arc::new(token),
            slot: None,
            signed_by: None,
        }
    }
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("token", &self.token)
            .field("verified_before", &self.signed_by.is_some())
            .finish()
    }
}

/// Owned parts of a [`Context`] (it borrows them).
#[derive(Clone, Debug, Default)]
pub struct ContextParts {
    /// The peer's IPv4 address.
    pub peer_ip: Option<Ipv4Addr>,
    /// The interface.
    pub interface: Option<Interface>,
    /// The service (`None`: `ozw-onezone`).
    pub service: Option<ServiceSpec>,
    /// The consumer.
    pub consumer: Option<Consumer>,
    /// Whether data-access caveats are allowed.
    pub allow_data_access: bool,
    /// Which session an access token may be bound to (REST: none).
    pub session: v2::SessionPolicy,
    /// Kinds of caveat that pass unchecked (only for inferring a scope).
    pub ignored: &'static [CaveatKind],
}

impl Zone {
    /// Parses a serialized token (`badToken`, `tokenTooLarge`), or takes it
    /// from the cache of the tokens this zone verified.
    pub fn present(&self, serialized: &str) -> Result<Presented, OzError> {
        let Lookup { slot, entry } = self.verified.lookup(serialized);
        match entry {
            Some(Entry::Modern(m)) => Ok(Presented::remembered(&m, slot)),
            _ => Ok(Presented::parsed(parse(serialized)?, slot)),
        }
    }

    /// Authenticates a request: a password as [`Zone::authenticate`] does, a
    /// token as [`Zone::authenticate_token`].
    pub async fn authenticate_request(
        &self,
        creds: Option<super::Credentials>,
        ctx: &RequestContext,
    ) -> Result<Authenticated, AuthFailure> {
        let out = match creds {
            Some(super::Credentials::Token(t)) => self.authenticate_token(&t, ctx).await?,
            other => Authenticated {
                caller: self.authenticate(other, ctx.peer).await?,
                grant: None,
            },
        };
        if let Subject::Provider(p) = out.caller.subject {
            self.note_provider_request(p).await;
        }
        Ok(out)
    }

    /// Authenticates a request's token: a legacy one as before, a 20.02+
    /// one as Onezone's REST API does (see the module docs): it must be an
    /// access token.
    pub async fn authenticate_token(
        &self,
        serialized: &str,
        ctx: &RequestContext,
    ) -> Result<Authenticated, AuthFailure> {
        let found = self.verified.lookup(serialized);
        let token = match &found.entry {
            Some(Entry::Modern(m)) => Some(Presented::remembered(m, found.slot)),
            Some(Entry::Legacy(_)) => None,
            None => Token::parse(serialized)
                .ok()
                .filter(|t| matches!(t.identifier(), Identifier::V2(_)))
                .map(|t| Presented::parsed(t, found.slot)),
        };
        let Some(token) = token else {
            // Legacy tokens (and what is no token at all) keep their path.
            return Ok(Authenticated {
                caller: self.token_caller(serialized, found).await?,
                grant: None,
            });
        };
        let oz = |e: OzError| AuthFailure::Auth(AuthError::Onezone(e));
        let service = match &ctx.service_token {
            Some(t) => Some(self.service_of(t, ctx).await.map_err(internal_or(oz))?),
            None => None,
        };
        let consumer = match &ctx.consumer_token {
            Some(t) => Some(self.consumer_of(t, ctx).await.map_err(internal_or(oz))?),
            None => None,
        };
        if !matches!(token.identifier().token_type(), TokenType::Access { .. }) {
            return Err(oz(OzError::NotAnAccessToken(
                token.identifier().token_type().clone(),
            )));
        }
        let parts = ContextParts {
            peer_ip: ipv4_of(ctx.peer),
            interface: Some(ctx.interface),
            service,
            consumer,
            allow_data_access: false,
            session: v2::SessionPolicy::None,
            ignored: &[],
        };
        let (verified, subject) = self
            .verify_v2(&token, &parts, Scope::Unlimited)
            .await
            .map_err(internal_or(oz))?;
        Ok(Authenticated {
            caller: Caller {
                subject,
                restricted: !verified.caveats.is_empty(),
            },
            grant: Some(verified),
        })
    }

    /// The service an `x-onedata-service-token` proves: a Oneprovider's
    /// worker (or panel, by the token's service indication).
    pub async fn service_of(&self, serialized: &str, ctx: &RequestContext) -> Result<ServiceSpec> {
        let bad = |e: OzError| Error::Onezone(OzError::BadServiceToken(Box::new(e)));
        let token = self.present(serialized).map_err(bad)?;
        let parts = ContextParts {
            peer_ip: ipv4_of(ctx.peer),
            interface: Some(ctx.interface),
            ..ContextParts::default()
        };
        let (_, subject) = self
            .verify_identity(&token, &parts)
            .await
            .map_err(|e| match e {
                Error::Onezone(oz) => bad(oz),
                other => other,
            })?;
        match subject {
            Subject::Provider(p) => {
                let kind = match token.service_indication() {
                    Some(OneproviderService::Panel) => Service::OpPanel,
                    _ => Service::OpWorker,
                };
                Ok(ServiceSpec::new(kind, &p.to_string()))
            }
            Subject::User(_) => Err(bad(OzError::Token(v2::Error::Invalid))),
        }
    }

    /// The consumer an `x-onedata-consumer-token` proves.
    pub async fn consumer_of(&self, serialized: &str, ctx: &RequestContext) -> Result<Consumer> {
        let bad = |e: OzError| Error::Onezone(OzError::BadConsumerToken(Box::new(e)));
        let token = self.present(serialized).map_err(bad)?;
        let parts = ContextParts {
            peer_ip: ipv4_of(ctx.peer),
            interface: Some(ctx.interface),
            ..ContextParts::default()
        };
        let (_, subject) = self
            .verify_identity(&token, &parts)
            .await
            .map_err(|e| match e {
                Error::Onezone(oz) => bad(oz),
                other => other,
            })?;
        Ok(match subject {
            Subject::User(u) => Consumer::User(u.to_string()),
            Subject::Provider(p) => Consumer::Provider(p.to_string()),
        })
    }

    /// Verifies an identity token (or, as Onezone still does, a provider's
    /// access token not bound to a session, in the identity-only scope).
    pub async fn verify_identity(
        &self,
        token: &Presented,
        parts: &ContextParts,
    ) -> Result<(Verified, Subject)> {
        let ty = token.identifier().token_type();
        match ty {
            TokenType::Identity => self.verify_v2(token, parts, Scope::IdentityOnly).await,
            TokenType::Access { session: None } => {
                let (v, s) = self.verify_v2(token, parts, Scope::IdentityOnly).await?;
                match s {
                    Subject::Provider(_) => Ok((v, s)),
                    Subject::User(_) => Err(OzError::NotAnIdentityToken(ty.clone()).into()),
                }
            }
            _ => Err(OzError::NotAnIdentityToken(ty.clone()).into()),
        }
    }

    /// Verifies a legacy (18.02) token on the 20.02+ endpoints, as Onezone
    /// 20.02+ verifies the client and provider tokens it migrated: an
    /// access token of its user or provider, checked as ever (record,
    /// signature, its `tokenType` and `time` caveats, revocation), its
    /// subject existing. Failures in Onezone's terms: an expired one is
    /// `tokenCaveatUnverified` with its `time` caveat, one with a caveat
    /// legacy tokens do not know `tokenCaveatUnknown`; a revoked one
    /// `tokenInvalid` (legacy tokens are revoked by `DELETE`, after which
    /// Onezone has no record of them), as are legacy invite tokens (which
    /// Onezone did not migrate) and everything else.
    pub async fn verify_migrated(&self, token: &Token) -> Result<(Verified, Subject)> {
        let serialized = token.serialize();
        let found = self.verified.lookup(&serialized);
        let (v, exists) = match self.verify_reading(&serialized, found, true).await {
            Ok(v) => v,
            Err(Error::Token(e)) => return Err(migrated_failure(token, e).into()),
            Err(e) => return Err(e),
        };
        let subject =
            super::tokens::legacy_subject(&v.record).ok_or(OzError::Token(v2::Error::Invalid))?;
        if exists != Some(true) {
            return Err(OzError::SubjectInvalid.into());
        }
        // Its `time` caveats (the minted one states the record's expiry);
        // `tokenType` is ozmint's own.
        let caveats: Vec<_> = v
            .caveats
            .into_iter()
            .filter(|c| matches!(c, crate::token::Caveat::TimeBefore(_)))
            .collect();
        let verified = Verified {
            subject: Some(token_subject(&subject)),
            token_type: TokenType::ACCESS,
            session: None,
            ttl: v2::verify::ttl(&caveats, now()),
            caveats,
            deferred: Vec::new(),
        };
        Ok((verified, subject))
    }

    /// Verifies an invite token of the expected type (`None`: any): its
    /// signature, caveats, revocation and subject; not its usage limit nor
    /// the inviter's privileges (checked when it is consumed).
    pub async fn verify_invite(
        &self,
        token: &Presented,
        expected: Option<InviteType>,
        parts: &ContextParts,
    ) -> Result<(Verified, Subject)> {
        let ty = token.identifier().token_type();
        if !ty.is_invite(expected) {
            return Err(OzError::NotAnInviteToken(expected, ty.clone()).into());
        }
        self.verify_v2(token, parts, Scope::Unlimited).await
    }

    /// Verifies a 20.02+ token against the context `parts` describe (see
    /// the module docs); a legacy one as [`Zone::verify_migrated`] does.
    pub async fn verify_v2(
        &self,
        token: &Presented,
        parts: &ContextParts,
        scope: Scope,
    ) -> Result<(Verified, Subject)> {
        let Identifier::V2(ident) = token.identifier() else {
            return self.verify_migrated(token).await;
        };
        let subject = subject_of(ident.subject())?;
        let (secret, subject_exists) = match ident.persistence() {
            Persistence::Named => {
                let id: Id = ident
                    .id()
                    .parse()
                    .map_err(|_| OzError::Token(v2::Error::Invalid))?;
                let (rec, exists) = self.store.named_token_and_subject(&id, &subject).await?;
                let rec = rec.ok_or(OzError::Token(v2::Error::Invalid))?;
                if rec.revoked {
                    return Err(OzError::Revoked.into());
                }
                if rec.subject != subject {
                    return Err(OzError::SubjectInvalid.into());
                }
                (rec.secret, exists)
            }
            Persistence::Temporary { generation } => {
                let (rec, exists) = self.store.temporary_secret_and_subject(&subject).await?;
                let Some(rec) = rec.filter(|_| exists) else {
                    return Err(if exists {
                        OzError::Token(v2::Error::Invalid)
                    } else {
                        OzError::SubjectInvalid
                    }
                    .into());
                };
                if rec.generation > generation {
                    return Err(OzError::Revoked.into());
                }
                if rec.generation < generation {
                    return Err(OzError::Token(v2::Error::Invalid).into());
                }
                (rec.secret, exists)
            }
        };
        let groups: Vec<String> = match &parts.consumer {
            Some(Consumer::User(u)) => match u.parse::<Id>() {
                Ok(uid) => self
                    .store
                    .user_reach(&uid)
                    .await?
                    .iter()
                    .map(Id::to_string)
                    .collect(),
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        };
        let mut ctx = Context::new(now())
            .service(Some(
                parts.service.clone().unwrap_or_else(ServiceSpec::onezone),
            ))
            .allow_data_access(parts.allow_data_access)
            .scope(scope);
        ctx.peer_ip = parts.peer_ip;
        ctx.interface = parts.interface;
        if let Some(c) = &parts.consumer {
            ctx = ctx.consumer(c.clone(), &groups);
        }
        if let Some(geo) = self.config.geo.as_deref() {
            ctx = ctx.geo(geo);
        }
        ctx.session = parts.session.clone();
        ctx.ignored = parts.ignored;
        let verified = self
            .signed_and_caveats(token, secret.as_bytes(), &ctx)
            .map_err(OzError::Token)?;
        if !subject_exists {
            return Err(OzError::SubjectInvalid.into());
        }
        if let TokenType::Access { .. } = ident.token_type() {
            let service = ctx.service.clone().unwrap_or_else(ServiceSpec::onezone);
            if !self.service_allowed(&subject, &service).await? {
                return Err(OzError::ServiceForbidden(service).into());
            }
        }
        Ok((verified, subject))
    }

    /// A token's signature with `secret` (unless it matched that very
    /// secret before) and its caveats against `ctx`; remembers a token
    /// presented in serialized form that verifies.
    fn signed_and_caveats(
        &self,
        token: &Presented,
        secret: &[u8],
        ctx: &Context<'_>,
    ) -> Result<Verified, v2::Error> {
        let Some(slot) = token.slot else {
            return token.verify(secret, ctx);
        };
        let fingerprint = self.verified.fingerprint(secret);
        if token.signed_by.is_some_and(|f| f.matches(&fingerprint)) {
            return token.verify_caveats(ctx);
        }
        let verified = token.verify(secret, ctx)?;
        self.verified.insert(
            slot,
            Entry::Modern(Arc::new(Modern {
                token: token.token.clone(),
                signed_by: fingerprint,
            })),
        );
        Ok(verified)
    }

    /// Whether a service may process the subject's access tokens: Onezone
    /// any subject's; a Oneprovider (or any service, by wildcard) a user's
    /// if the provider supports a space the user effectively belongs to.
    async fn service_allowed(&self, subject: &Subject, service: &ServiceSpec) -> Result<bool> {
        if service.service == Service::OzWorker
            && (service.id == crate::token::caveat::ONEZONE_CLUSTER_ID || service.id == WILDCARD)
        {
            return Ok(true);
        }
        let Subject::User(user) = subject else {
            return Ok(false);
        };
        if service.id == WILDCARD {
            return Ok(true);
        }
        if !matches!(service.service, Service::OpWorker | Service::OpPanel) {
            return Ok(false);
        }
        let Ok(provider) = service.id.parse::<Id>() else {
            return Ok(false);
        };
        if !self.store.exists(Entity::Provider, &provider).await? {
            return Ok(false);
        }
        for space in self.store.spaces_of_provider(&provider).await? {
            if self
                .store
                .effective_space_users(&space)
                .await?
                .contains(user)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Store failures stay internal; Onezone errors become `f`'s.
fn internal_or(f: impl Fn(OzError) -> AuthFailure) -> impl Fn(Error) -> AuthFailure {
    move |e| match e {
        Error::Onezone(oz) => f(oz),
        other => AuthFailure::Internal(other),
    }
}

/// A legacy token's verification failure in Onezone's terms (see
/// [`Zone::verify_migrated`]).
fn migrated_failure(token: &Token, e: crate::token::TokenError) -> OzError {
    use crate::token::{Caveat, TokenError};
    let now = now();
    let caveats = || token.raw().caveats.iter().map(|c| (c, Caveat::parse(c)));
    match e {
        TokenError::Expired => {
            let passed = caveats().find_map(|(_, c)| match c {
                Some(Caveat::TimeBefore(t)) if now >= t => Some(t),
                _ => None,
            });
            match passed {
                Some(t) => {
                    OzError::Token(v2::Error::CaveatUnverified(Box::new(v2::CaveatFailure {
                        caveat: Caveat::TimeBefore(t),
                        reason: v2::Unsatisfied::Expired { now },
                    })))
                }
                // The record's lifetime, which its minted `time` caveat states.
                None => OzError::Token(v2::Error::Invalid),
            }
        }
        TokenError::UnknownCaveat => {
            let unknown = caveats()
                .find(|(_, c)| !matches!(c, Some(Caveat::TimeBefore(_) | Caveat::TokenType(_))));
            match unknown {
                Some((text, _)) => OzError::Token(v2::Error::CaveatUnknown(
                    String::from_utf8_lossy(text).into_owned(),
                )),
                None => OzError::Token(v2::Error::Invalid),
            }
        }
        _ => OzError::Token(v2::Error::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ZonePrivileges;
    use crate::ops::named_tokens::NamedTokenRequest;
    use crate::ops::{Credentials, ZoneConfig};
    use crate::store::Store;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    async fn zone_with_named_token() -> (Zone, Id, String) {
        let store = Arc::new(Store::memory().await.unwrap());
        let alice = store
            .create_user("alice", "x".into(), ZonePrivileges::empty())
            .await
            .unwrap();
        let zone = Zone::new(store, ZoneConfig::default()).await.unwrap();
        let req = NamedTokenRequest::from_json(&serde_json::json!({ "name": "cached" })).unwrap();
        let named = zone
            .create_named_token(&Caller::user(alice), Subject::User(alice), req)
            .await
            .unwrap();
        (zone, named.id, named.token)
    }

    async fn authenticate(zone: &Zone, token: &str) -> Result<Authenticated, AuthFailure> {
        let creds = Some(Credentials::Token(token.to_owned()));
        zone.authenticate_request(creds, &RequestContext::rest(PEER))
            .await
    }

    #[tokio::test]
    async fn a_remembered_token_skips_its_signature_only_under_the_same_secret() {
        let (zone, id, token) = zone_with_named_token().await;
        authenticate(&zone, &token).await.expect("first");
        assert_eq!(zone.verified.len(), 1, "remembered once verified");
        authenticate(&zone, &token).await.expect("remembered");
        // The record's secret changes under the same identifier (a restore
        // from another store, say): the remembered signature no longer counts.
        zone.store()
            .update_named_token(&id, |rec| {
                rec.secret = "0".repeat(64);
                Ok(())
            })
            .await
            .unwrap();
        let err = authenticate(&zone, &token).await.expect_err("other secret");
        assert!(
            matches!(
                err,
                AuthFailure::Auth(AuthError::Onezone(OzError::Token(v2::Error::Invalid)))
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn another_string_is_verified_in_full() {
        let (zone, _, token) = zone_with_named_token().await;
        authenticate(&zone, &token).await.expect("remembered");
        // The same token with its signature altered is another slot: refused.
        let mut raw = Token::parse(&token).unwrap().raw().clone();
        raw.signature[0] ^= 1;
        let forged = crate::token::wire::encode(&raw);
        assert_ne!(forged, token);
        let err = authenticate(&zone, &forged).await.expect_err("forged");
        assert!(matches!(err, AuthFailure::Auth(_)), "{err:?}");
        assert_eq!(zone.verified.len(), 1, "a refused token is not remembered");
    }
}
