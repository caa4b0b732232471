//! `POST /tokens/infer_access_token_scope` (Onezone 21.02.4+): what an
//! access token lets its bearer reach, for data clients to ask first.
//!
//! The token is verified as Onezone does it: an access token, with
//! `service` and `interface` caveats ignored, data-access caveats allowed,
//! `api` caveats lazy (they restrict operations, not the scope), and the
//! consumer the token's own subject unless a consumer token says otherwise.
//! A user's scope: their effective spaces, narrowed by the `data.path` and
//! `data.objectid` caveats (each caveat's list is a union, several caveats
//! intersect), each space with its supporting providers, and those
//! providers, narrowed by the `service` caveats naming Oneprovider workers.
//!
//! ozmint's supports carry no storages, so no support is read-only: every
//! support's `readonly` is `false` (a token's own `data.readonly` shows in
//! the scope's `readonly`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::providers::ProviderInfo;
use super::token_auth::{ipv4_of, ContextParts, Presented, RequestContext};
use super::tokens::legacy_subject;
use super::Zone;
use crate::error::{Error, OzError, Result};
use crate::model::{Id, Subject};
use crate::store::{PAGE_MAX, SPACE_PROVIDERS_REL};
use crate::token::caveat::{data, Caveat, CaveatKind, Service, WILDCARD};
use crate::token::v2::{self, Consumer, Identifier, SessionPolicy, TokenType};

/// The caveats `infer_access_token_scope` does not check.
const IGNORED: &[CaveatKind] = &[CaveatKind::Service, CaveatKind::Interface];

/// The consumer of the verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeConsumer {
    /// The token's own subject (no `consumerToken`).
    Subject,
    /// Nobody (`"consumerToken": null`).
    Nobody,
    /// Whoever this identity token proves.
    Token(String),
}

/// One space of a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSpace {
    /// Its name.
    pub name: String,
    /// The providers supporting it that the token may use.
    pub supports: BTreeSet<Id>,
}

/// What a user's access token lets its bearer reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataAccessScope {
    /// The token carries `data.readonly`.
    pub readonly: bool,
    /// The spaces, by id.
    pub spaces: BTreeMap<Id, ScopeSpace>,
    /// The providers, by id.
    pub providers: BTreeMap<Id, ProviderInfo>,
}

/// The answer of `infer_access_token_scope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessScope {
    /// The earliest `time` caveat (unix seconds), if any.
    pub valid_until: Option<u64>,
    /// `None` for a provider's token.
    pub data_access: Option<DataAccessScope>,
}

impl AccessScope {
    /// Onezone's JSON.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let data = self.data_access.as_ref().map(|d| {
            let spaces: Map<String, Value> = d
                .spaces
                .iter()
                .map(|(id, s)| {
                    let supports: Map<String, Value> = s
                        .supports
                        .iter()
                        .map(|p| (p.to_string(), json!({ "readonly": false })))
                        .collect();
                    (
                        id.to_string(),
                        json!({ "name": s.name, "supports": supports }),
                    )
                })
                .collect();
            let providers: Map<String, Value> = d
                .providers
                .iter()
                .map(|(id, p)| {
                    (
                        id.to_string(),
                        json!({
                            "name": p.provider.name,
                            "domain": p.provider.domain,
                            "version": p.version,
                            "online": p.online,
                        }),
                    )
                })
                .collect();
            json!({ "readonly": d.readonly, "spaces": spaces, "providers": providers })
        });
        json!({ "validUntil": self.valid_until, "dataAccessScope": data })
    }
}

/// The spaces the data caveats allow: `None` when none restricts them.
fn allowed_spaces(caveats: &[Caveat]) -> Option<BTreeSet<String>> {
    let mut out: Option<BTreeSet<String>> = None;
    for c in caveats {
        let these: BTreeSet<String> = match c {
            Caveat::DataPath(paths) => paths
                .iter()
                .filter_map(|p| data::path_space_id(p).map(str::to_owned))
                .collect(),
            Caveat::DataObjectId(ids) => ids
                .iter()
                .filter_map(|o| data::objectid_space_id(o))
                .collect(),
            _ => continue,
        };
        out = Some(match out {
            None => these,
            Some(prev) => prev.intersection(&these).cloned().collect(),
        });
    }
    out
}

/// Whether the `service` caveats let the token be used by provider `p`'s
/// worker (`opw-*` or `opw-<p>` in every one of them).
fn provider_allowed(caveats: &[Caveat], p: &Id) -> bool {
    let p = p.to_string();
    caveats.iter().all(|c| match c {
        Caveat::Service(list) => list
            .iter()
            .any(|s| s.service == Service::OpWorker && (s.id == WILDCARD || s.id == p)),
        _ => true,
    })
}

impl Zone {
    /// Infers the scope of an access token (see the module docs). `token`
    /// is parsed already; `serialized` is its text (legacy tokens verify
    /// from it); `peer` is the requester's address.
    pub async fn infer_access_token_scope(
        &self,
        token: &Presented,
        serialized: &str,
        consumer: ScopeConsumer,
        peer: IpAddr,
    ) -> Result<AccessScope> {
        let (subject, caveats) = match token.identifier() {
            Identifier::V2(ident) => {
                let ty = ident.token_type();
                if !matches!(ty, TokenType::Access { .. }) {
                    return Err(OzError::NotAnAccessToken(ty.clone()).into());
                }
                let ctx = RequestContext::rest(peer);
                let consumer = match consumer {
                    ScopeConsumer::Subject => Some(match ident.subject() {
                        v2::TokenSubject::User(u) => Consumer::User(u.clone()),
                        v2::TokenSubject::Provider(p) => Consumer::Provider(p.clone()),
                    }),
                    ScopeConsumer::Nobody => None,
                    ScopeConsumer::Token(t) => Some(self.consumer_of(&t, &ctx).await?),
                };
                let parts = ContextParts {
                    peer_ip: ipv4_of(peer),
                    interface: None,
                    service: None,
                    consumer,
                    allow_data_access: true,
                    session: SessionPolicy::Any,
                    ignored: IGNORED,
                };
                let (_, subject) = self.verify_v2(token, &parts, v2::Scope::Unlimited).await?;
                let caveats = token.caveats().map_err(OzError::Token)?;
                (subject, caveats)
            }
            Identifier::V1(_) => {
                // ozmint's legacy tokens: access and provider tokens are
                // access tokens; invite tokens are not (Onezone never
                // migrated them: `tokenInvalid`).
                let found = self.verified.lookup(serialized);
                let (v, exists) =
                    self.verify_reading(serialized, found, true)
                        .await
                        .map_err(|e| match e {
                            Error::Token(_) => Error::from(OzError::Token(v2::Error::Invalid)),
                            other => other,
                        })?;
                let (Some(subject), Some(exists)) = (legacy_subject(&v.record), exists) else {
                    return Err(OzError::Token(v2::Error::Invalid).into());
                };
                if !exists {
                    return Err(OzError::SubjectInvalid.into());
                }
                let mut caveats = v.caveats;
                caveats.push(Caveat::TimeBefore(v.record.expires));
                (subject, caveats)
            }
        };
        let valid_until = Caveat::expiration(&caveats);
        let Subject::User(user) = subject else {
            return Ok(AccessScope {
                valid_until,
                data_access: None,
            });
        };
        let allowed = allowed_spaces(&caveats);
        let mut spaces = BTreeMap::new();
        let mut providers = BTreeMap::new();
        for sid in self.store.effective_user_spaces(&user).await? {
            if allowed
                .as_ref()
                .is_some_and(|a| !a.contains(&sid.to_string()))
            {
                continue;
            }
            let Some(space) = self.store.space(&sid).await? else {
                continue;
            };
            let (supports, _) = self
                .store
                .members(&SPACE_PROVIDERS_REL, &sid, None, PAGE_MAX)
                .await?;
            let mut ids = BTreeSet::new();
            for (pid, _) in supports {
                if !provider_allowed(&caveats, &pid) {
                    continue;
                }
                if let std::collections::btree_map::Entry::Vacant(slot) = providers.entry(pid) {
                    match self.provider_info(&pid).await? {
                        Some(info) => {
                            slot.insert(info);
                        }
                        None => continue,
                    }
                }
                ids.insert(pid);
            }
            spaces.insert(
                sid,
                ScopeSpace {
                    name: space.name,
                    supports: ids,
                },
            );
        }
        Ok(AccessScope {
            valid_until,
            data_access: Some(DataAccessScope {
                readonly: caveats.iter().any(|c| matches!(c, Caveat::DataReadonly)),
                spaces,
                providers,
            }),
        })
    }
}
