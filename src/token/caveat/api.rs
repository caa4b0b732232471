//! The `api` caveat's match specifications, and the operation check every
//! component that accepts a token makes before each operation.
//!
//! A match specification is `<service>/<operation>/<gri pattern>`:
//! - service: `all`, `ozw` (Onezone worker), `ozp` (Onezone panel), `opw`
//!   (Oneprovider worker), `opp` (Oneprovider panel);
//! - operation: `all`, `create`, `get`, `update`, `delete`;
//! - GRI pattern: `<type>.<id>.<aspect>:<scope>`, where the type is `*` or a
//!   graph entity type (`user`, `group`, `space`, `file`, ...), the id `*`,
//!   `null` (no id) or an id, the aspect `*`, a name, or a pair `a,b` (either
//!   half may be `*`), the scope `*`, `private`, `protected`, `shared`,
//!   `public` or `auto`.
//!
//! The text form always carries the scope; the JSON input of a caveat may
//! omit it (`user.*.*` means `user.*.*:private`), as Onezone's does.
//!
//! API caveats are lazy: verification lets them pass, and [`check_operation`]
//! checks them (with the limits that `service` and data-access caveats imply)
//! when the token is used for a specific operation.

use std::fmt;

use super::{Caveat, CaveatError, Service};

/// The graph entity types a GRI pattern may name (as Onedata serializes them).
pub const ENTITY_TYPES: &[&str] = &[
    "oz_worker",
    "user",
    "group",
    "space",
    "share",
    "provider",
    "handleService",
    "handle",
    "cluster",
    "harvester",
    "storage",
    "token",
    "space_stats",
    "temporary_token_secret",
    "atm_inventory",
    "atm_lambda",
    "atm_workflow_schema",
    "onp_cluster",
    "onp_host",
    "onp_panel",
    "onp_provider",
    "onp_service",
    "onp_space",
    "onp_storage",
    "onp_user",
    "onp_zone",
    "op_archive",
    "op_atm_inventory",
    "op_atm_lambda_snapshot",
    "op_atm_store",
    "op_atm_task_execution",
    "op_atm_workflow_execution",
    "op_atm_workflow_schema",
    "op_atm_workflow_schema_snapshot",
    "op_dataset",
    "file",
    "op_group",
    "op_handle",
    "op_handle_service",
    "op_metrics",
    "op_provider",
    "op_qos",
    "op_share",
    "op_space",
    "op_storage",
    "op_transfer",
    "op_user",
];

/// An operation on a graph resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `create`.
    Create,
    /// `get`.
    Get,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Get,
        Operation::Update,
        Operation::Delete,
    ];

    /// Its name in match specifications.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// The operation of a name.
    pub fn from_name(s: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// The scope of a GRI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GriScope {
    /// `private`.
    Private,
    /// `protected`.
    Protected,
    /// `shared`.
    Shared,
    /// `public`.
    Public,
    /// `auto`: the widest scope the client may see.
    Auto,
}

impl GriScope {
    const ALL: [GriScope; 5] = [
        GriScope::Private,
        GriScope::Protected,
        GriScope::Shared,
        GriScope::Public,
        GriScope::Auto,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            GriScope::Private => "private",
            GriScope::Protected => "protected",
            GriScope::Shared => "shared",
            GriScope::Public => "public",
            GriScope::Auto => "auto",
        }
    }

    /// The scope of a name.
    pub fn from_name(s: &str) -> Option<GriScope> {
        GriScope::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// The aspect of a GRI: a name, or a pair such as `group,<groupId>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Aspect {
    /// `instance`, `users`, ...
    Single(String),
    /// `group,<id>`, `idp_access_token,<idp>`, ...
    Pair(String, String),
}

/// A graph resource identifier: what an operation acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gri {
    /// Entity type, as Onedata serializes it (`user`, `space`, `file`, ...).
    pub entity_type: String,
    /// Entity id; `None` for resources without one (e.g. `op_space.null.list`).
    pub id: Option<String>,
    /// Aspect.
    pub aspect: Aspect,
    /// Scope.
    pub scope: GriScope,
}

impl Gri {
    /// A GRI with scope `private`.
    pub fn new(entity_type: &str, id: Option<&str>, aspect: Aspect) -> Gri {
        Gri {
            entity_type: entity_type.to_owned(),
            id: id.map(str::to_owned),
            aspect,
            scope: GriScope::Private,
        }
    }

    /// The same GRI with another scope.
    pub fn with_scope(mut self, scope: GriScope) -> Gri {
        self.scope = scope;
        self
    }
}

/// The id part of a GRI pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdPattern {
    /// `*`: any id, or none.
    Any,
    /// `null`: resources without an id.
    Null,
    /// This id.
    Is(String),
}

/// The aspect part of a GRI pattern; `*` in a part matches anything there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AspectPattern {
    /// A name, or `*` (any aspect, single or pair).
    Single(String),
    /// A pair; either half may be `*`.
    Pair(String, String),
}

/// A GRI pattern: `<type>.<id>.<aspect>:<scope>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GriPattern {
    /// Entity type; `None` is `*`.
    pub entity_type: Option<String>,
    /// Id.
    pub id: IdPattern,
    /// Aspect.
    pub aspect: AspectPattern,
    /// Scope; `None` is `*`.
    pub scope: Option<GriScope>,
}

/// A match specification of an `api` caveat.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatchSpec {
    /// Service; `None` is `all`.
    pub service: Option<Service>,
    /// Operation; `None` is `all`.
    pub operation: Option<Operation>,
    /// Resources.
    pub gri: GriPattern,
}

/// Whether `s` may stand in a part of a match specification: no separator
/// of the caveat language in it, no control character.
fn plain(s: &str, extra: &[char]) -> bool {
    !s.chars()
        .any(|c| c.is_control() || matches!(c, '|' | '/' | '.') || extra.contains(&c))
}

impl GriPattern {
    /// Parses a pattern; `<type>.<id>.<aspect>` without a scope means scope
    /// `private`.
    fn parse(s: &str) -> Result<GriPattern, CaveatError> {
        let bad = || CaveatError::new(format!("bad GRI pattern {s:?}"));
        let parts: Vec<&str> = s.split('.').collect();
        let [ty, id, aspect_and_scope] = parts.as_slice() else {
            return Err(bad());
        };
        let entity_type = match *ty {
            "*" => None,
            t if ENTITY_TYPES.contains(&t) => Some(t.to_owned()),
            _ => return Err(bad()),
        };
        if !plain(id, &[]) {
            return Err(bad());
        }
        let id = match *id {
            "*" => IdPattern::Any,
            "null" => IdPattern::Null,
            other => IdPattern::Is(other.to_owned()),
        };
        let (aspect, scope) = match aspect_and_scope.split(':').collect::<Vec<_>>().as_slice() {
            [a, s] => (*a, *s),
            [a] => (*a, "private"),
            _ => return Err(bad()),
        };
        if !plain(aspect, &[':']) {
            return Err(bad());
        }
        let aspect = match aspect.split(',').collect::<Vec<_>>().as_slice() {
            [a] => AspectPattern::Single((*a).to_owned()),
            [a, b] => AspectPattern::Pair((*a).to_owned(), (*b).to_owned()),
            _ => return Err(bad()),
        };
        let scope = match scope {
            "*" => None,
            s => Some(GriScope::from_name(s).ok_or_else(bad)?),
        };
        Ok(GriPattern {
            entity_type,
            id,
            aspect,
            scope,
        })
    }

    /// Whether `gri` matches.
    pub fn matches(&self, gri: &Gri) -> bool {
        let ty = self
            .entity_type
            .as_ref()
            .is_none_or(|t| *t == gri.entity_type);
        let id = match &self.id {
            IdPattern::Any => true,
            IdPattern::Null => gri.id.is_none(),
            IdPattern::Is(p) => gri.id.as_ref() == Some(p),
        };
        let aspect = match (&self.aspect, &gri.aspect) {
            (AspectPattern::Single(p), _) if p == "*" => true,
            (AspectPattern::Single(p), Aspect::Single(a)) => p == a,
            (AspectPattern::Pair(pa, pb), Aspect::Pair(a, b)) => {
                (pa == "*" || pa == a) && (pb == "*" || pb == b)
            }
            _ => false,
        };
        let scope = self.scope.is_none_or(|s| s == gri.scope);
        ty && id && aspect && scope
    }
}

impl fmt::Display for GriPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.entity_type.as_deref().unwrap_or("*"))?;
        match &self.id {
            IdPattern::Any => f.write_str(".*.")?,
            IdPattern::Null => f.write_str(".null.")?,
            IdPattern::Is(id) => write!(f, ".{id}.")?,
        }
        match &self.aspect {
            AspectPattern::Single(a) => f.write_str(a)?,
            AspectPattern::Pair(a, b) => write!(f, "{a},{b}")?,
        }
        write!(f, ":{}", self.scope.map_or("*", GriScope::name))
    }
}

impl MatchSpec {
    /// Parses a specification, of a caveat's text or of its JSON form alike:
    /// a GRI pattern without a scope means scope `private` (ctool's one
    /// `gri:deserialize`).
    pub fn parse(s: &str) -> Result<MatchSpec, CaveatError> {
        let bad = || CaveatError::new(format!("bad API match specification {s:?}"));
        let parts: Vec<&str> = s.split('/').collect();
        let [service, operation, gri] = parts.as_slice() else {
            return Err(bad());
        };
        let service = match *service {
            "all" => None,
            s => Some(Service::from_shortname(s).ok_or_else(bad)?),
        };
        let operation = match *operation {
            "all" => None,
            o => Some(Operation::from_name(o).ok_or_else(bad)?),
        };
        Ok(MatchSpec {
            service,
            operation,
            gri: GriPattern::parse(gri)?,
        })
    }

    /// Parses a specification written in Rust code (for the tables below).
    fn known(s: &str) -> MatchSpec {
        Self::parse(s).unwrap_or_else(|e| unreachable!("a built-in match specification: {e}"))
    }

    /// Whether an operation matches.
    pub fn matches(&self, service: Service, operation: Operation, gri: &Gri) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.operation.is_none_or(|o| o == operation)
            && self.gri.matches(gri)
    }
}

impl fmt::Display for MatchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.service.map_or("all", Service::shortname),
            self.operation.map_or("all", Operation::name),
            self.gri
        )
    }
}

/// The API a `service` caveat leaves: for each type of service it
/// whitelists, that service's own API and what it needs of Onezone's.
/// Whitelisting `ozw` leaves the whole Onezone API.
pub fn service_allowed_api(whitelist: &[super::ServiceSpec]) -> Vec<MatchSpec> {
    let mut types: Vec<Service> = whitelist.iter().map(|s| s.service).collect();
    types.sort_by_key(|s| s.shortname());
    types.dedup();
    let mut out = Vec::new();
    for service in types {
        let specs: &[&str] = match service {
            Service::OzWorker => &["ozw/all/*.*.*:*"],
            Service::OzPanel => &[
                "ozp/all/*.*.*:*",
                "ozw/get/user.*.*:*",
                "ozw/get/cluster.*.*:*",
                "ozw/get/provider.*.*:*",
            ],
            Service::OpWorker => &[
                "opw/all/*.*.*:*",
                "ozw/get/user.*.*:*",
                "ozw/create/user.*.idp_access_token,*:*",
                "ozw/get/group.*.*:*",
                "ozw/get/space.*.*:*",
                "ozw/create/space.*.infer_accessible_eff_groups:*",
                "ozw/all/share.*.*:*",
                "ozw/get/provider.*.*:*",
                "ozw/all/handle.*.*:*",
                "ozw/get/handleService.*.*:*",
                "ozw/get/atm_inventory.*.*:*",
                "ozw/get/atm_lambda.*.*:*",
                "ozw/get/atm_workflow_schema.*.*:*",
            ],
            Service::OpPanel => &[
                "opp/all/*.*.*:*",
                "ozw/get/user.*.*:*",
                "ozw/get/cluster.*.*:*",
                "ozw/get/provider.*.*:*",
            ],
        };
        out.extend(specs.iter().map(|s| MatchSpec::known(s)));
    }
    out
}

/// The spaces a data-access caveat confines a token to; `None` if it does
/// not confine it to spaces (`data.readonly`, `interface = oneclient`).
/// Entries that name no space (which valid caveats do not have) are skipped.
pub fn data_access_spaces(caveat: &Caveat) -> Option<Vec<String>> {
    match caveat {
        Caveat::DataPath(paths) => Some(
            paths
                .iter()
                .filter_map(|p| super::data::path_space_id(p).map(str::to_owned))
                .collect(),
        ),
        Caveat::DataObjectId(ids) => Some(
            ids.iter()
                .filter_map(|id| super::data::objectid_space_id(id))
                .collect(),
        ),
        _ => None,
    }
}

/// The API a data-access caveat leaves in `service`: in Onezone, reading
/// users, shares and the allowed spaces; in Oneprovider, files, the space
/// list and the allowed spaces; nothing in either panel.
pub fn data_access_allowed_api(service: Service, caveat: &Caveat) -> Vec<MatchSpec> {
    let spaces = data_access_spaces(caveat);
    let space_ids = || -> Vec<IdPattern> {
        match &spaces {
            None => vec![IdPattern::Any],
            Some(ids) => ids.iter().map(|s| IdPattern::Is(s.clone())).collect(),
        }
    };
    let space = |svc: &str, ty: &str, scope: Option<GriScope>, id: IdPattern| MatchSpec {
        service: Service::from_shortname(svc),
        operation: Some(Operation::Get),
        gri: GriPattern {
            entity_type: Some(ty.to_owned()),
            id,
            aspect: AspectPattern::Single("instance".to_owned()),
            scope,
        },
    };
    match service {
        Service::OzPanel | Service::OpPanel => Vec::new(),
        Service::OpWorker => {
            let mut out = vec![
                MatchSpec::known("opw/all/file.*.*:*"),
                MatchSpec::known("opw/get/op_space.null.list:private"),
            ];
            out.extend(
                space_ids()
                    .into_iter()
                    .map(|id| space("opw", "op_space", Some(GriScope::Private), id)),
            );
            out
        }
        Service::OzWorker => {
            let mut out = vec![
                MatchSpec::known("ozw/get/user.*.instance:*"),
                MatchSpec::known("ozw/get/share.*.instance:*"),
            ];
            out.extend(
                space_ids()
                    .into_iter()
                    .map(|id| space("ozw", "space", None, id)),
            );
            out
        }
    }
}

/// Whether the caveats of a verified token allow an operation (Onedata's
/// per-operation check): every `api` caveat must whitelist it, and it must
/// be within the API every `service` caveat and every data-access caveat
/// leaves. Other caveats are not looked at. The error names the first
/// caveat that forbids it.
pub fn check_operation(
    caveats: &[Caveat],
    service: Service,
    operation: Operation,
    gri: &Gri,
) -> Result<(), Caveat> {
    let allowed = |specs: &[MatchSpec]| specs.iter().any(|m| m.matches(service, operation, gri));
    for c in caveats {
        if let Caveat::Api(specs) = c {
            if !allowed(specs) {
                return Err(c.clone());
            }
        }
    }
    for c in caveats {
        if let Caveat::Service(whitelist) = c {
            if !allowed(&service_allowed_api(whitelist)) {
                return Err(c.clone());
            }
        }
    }
    for c in caveats {
        if c.is_data_access() && !allowed(&data_access_allowed_api(service, c)) {
            return Err(c.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::caveat::{Interface, ServiceSpec};

    fn gri(ty: &str, id: Option<&str>, aspect: &str) -> Gri {
        let aspect = match aspect.split_once(',') {
            Some((a, b)) => Aspect::Pair(a.into(), b.into()),
            None => Aspect::Single(aspect.into()),
        };
        Gri::new(ty, id, aspect)
    }

    #[test]
    fn match_specifications_parse_and_print() {
        for s in [
            "all/all/*.*.*:*",
            "ozw/get/user.*.*:auto",
            "opw/all/user.abc.group,xyz:private",
            "opp/update/group.*.*,*:private",
            "ozp/delete/*.*.users:*",
            "all/create/space.*.*:private",
            "ozw/get/op_space.null.list:private",
            "ozw/get/user.self.instance:shared",
            "ozw/get/user..:public",
        ] {
            let m = MatchSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(m.to_string(), s);
        }
        assert_eq!(
            MatchSpec::parse("ozw/all/user.*.*").unwrap().to_string(),
            "ozw/all/user.*.*:private"
        );
        for bad in [
            "",
            "all/user.*.*:auto",
            "xyz/all/user.*.*:*",
            "ozw/read/user.*.*:*",
            "ozw/all/nonsense.*.*:*",
            "ozw/all/user.*:*",
            "ozw/all/user.*.*.*:*",
            "ozw/all/user.*.a,b,c:*",
            "ozw/all/user.*.a:b:c",
            "ozw/all/user.*.*:everything",
            "ozw/all/user.a/b.*:*",
            "ozw/all/user.a|b.*:*",
            "ALL/all/*.*.*:*",
        ] {
            assert!(MatchSpec::parse(bad).is_err(), "{bad}");
        }
        assert!(MatchSpec::parse("all/user.*.*").is_err());
    }

    #[test]
    fn matching_follows_onedata() {
        let m = |s: &str| MatchSpec::parse(s).unwrap();
        let u = gri("user", Some("u1"), "instance");
        assert!(m("all/all/*.*.*:*").matches(Service::OpPanel, Operation::Delete, &u));
        assert!(m("ozw/get/user.u1.instance:private").matches(
            Service::OzWorker,
            Operation::Get,
            &u
        ));
        assert!(!m("ozw/get/user.u1.instance:private").matches(
            Service::OpWorker,
            Operation::Get,
            &u
        ));
        assert!(!m("ozw/get/user.u1.instance:private").matches(
            Service::OzWorker,
            Operation::Update,
            &u
        ));
        assert!(!m("ozw/get/user.u2.instance:private").matches(
            Service::OzWorker,
            Operation::Get,
            &u
        ));
        assert!(!m("ozw/get/user.u1.instance:shared").matches(
            Service::OzWorker,
            Operation::Get,
            &u
        ));
        assert!(m("ozw/get/user.u1.instance:*").matches(
            Service::OzWorker,
            Operation::Get,
            &u.clone().with_scope(GriScope::Shared)
        ));
        assert!(!m("ozw/get/group.*.*:*").matches(Service::OzWorker, Operation::Get, &u));
        // Aspects: `*` alone matches pairs too; pairs only match pairs.
        let pair = gri("user", Some("u1"), "group,g1");
        for (p, want) in [
            ("*", true),
            ("*,*", true),
            ("group,*", true),
            ("*,g1", true),
            ("group,g1", true),
            ("group,g2", false),
            ("space,*", false),
            ("group", false),
        ] {
            let spec = m(&format!("all/all/user.*.{p}:*"));
            assert_eq!(
                spec.matches(Service::OzWorker, Operation::Get, &pair),
                want,
                "{p}"
            );
        }
        assert!(!m("all/all/user.*.*,*:*").matches(Service::OzWorker, Operation::Get, &u));
        // `null` is the absence of an id.
        let list = gri("op_space", None, "list");
        assert!(m("opw/get/op_space.null.list:private").matches(
            Service::OpWorker,
            Operation::Get,
            &list
        ));
        assert!(m("opw/get/op_space.*.list:private").matches(
            Service::OpWorker,
            Operation::Get,
            &list
        ));
        assert!(!m("opw/get/op_space.null.list:private").matches(
            Service::OpWorker,
            Operation::Get,
            &u
        ));
    }

    #[test]
    fn operations_are_checked_against_every_limiting_caveat() {
        let get_user = gri("user", Some("u1"), "instance");
        let get_space = |s: &str| gri("space", Some(s), "instance");
        let op = |caveats: &[Caveat], svc, o, g: &Gri| check_operation(caveats, svc, o, g);
        // No limiting caveat: anything goes.
        assert!(op(
            &[Caveat::TimeBefore(5)],
            Service::OzWorker,
            Operation::Delete,
            &get_user
        )
        .is_ok());
        // Every api caveat must allow it.
        let api = |s: &str| Caveat::Api(vec![MatchSpec::parse(s).unwrap()]);
        let two = [api("all/get/*.*.*:*"), api("ozw/all/user.*.*:*")];
        assert!(op(&two, Service::OzWorker, Operation::Get, &get_user).is_ok());
        assert_eq!(
            op(&two, Service::OzWorker, Operation::Get, &get_space("s")),
            Err(two[1].clone())
        );
        assert_eq!(
            op(&two, Service::OzWorker, Operation::Update, &get_user),
            Err(two[0].clone())
        );
        // A service caveat for a provider's worker leaves part of Onezone's API.
        let opw = Caveat::Service(vec![ServiceSpec::new(Service::OpWorker, "*")]);
        assert!(op(
            std::slice::from_ref(&opw),
            Service::OzWorker,
            Operation::Get,
            &get_user
        )
        .is_ok());
        assert!(op(
            std::slice::from_ref(&opw),
            Service::OpWorker,
            Operation::Delete,
            &get_space("s")
        )
        .is_ok());
        assert_eq!(
            op(
                std::slice::from_ref(&opw),
                Service::OzWorker,
                Operation::Delete,
                &get_user
            ),
            Err(opw.clone())
        );
        let idp = gri("user", Some("u1"), "idp_access_token,egi");
        assert!(op(
            std::slice::from_ref(&opw),
            Service::OzWorker,
            Operation::Create,
            &idp
        )
        .is_ok());
        // ... and whitelisting Onezone as well leaves all of Onezone's.
        let both = Caveat::Service(vec![
            ServiceSpec::new(Service::OpWorker, "*"),
            ServiceSpec::onezone(),
        ]);
        assert!(op(&[both], Service::OzWorker, Operation::Delete, &get_user).is_ok());
        // Data-access caveats: in Onezone, read users, shares, allowed spaces.
        let path = Caveat::DataPath(vec!["/s1/dir".into(), "/s2".into()]);
        assert!(op(
            std::slice::from_ref(&path),
            Service::OzWorker,
            Operation::Get,
            &get_user
        )
        .is_ok());
        assert!(op(
            std::slice::from_ref(&path),
            Service::OzWorker,
            Operation::Get,
            &get_space("s2")
        )
        .is_ok());
        assert_eq!(
            op(
                std::slice::from_ref(&path),
                Service::OzWorker,
                Operation::Get,
                &get_space("s3")
            ),
            Err(path.clone())
        );
        assert_eq!(
            op(
                std::slice::from_ref(&path),
                Service::OzWorker,
                Operation::Update,
                &get_user
            ),
            Err(path.clone())
        );
        assert_eq!(
            op(
                std::slice::from_ref(&path),
                Service::OzPanel,
                Operation::Get,
                &get_user
            ),
            Err(path.clone())
        );
        let ro = Caveat::DataReadonly;
        assert!(op(
            std::slice::from_ref(&ro),
            Service::OzWorker,
            Operation::Get,
            &get_space("any")
        )
        .is_ok());
        let oneclient = Caveat::Interface(Interface::Oneclient);
        let file = gri("file", Some("f"), "content");
        assert!(op(
            std::slice::from_ref(&oneclient),
            Service::OpWorker,
            Operation::Update,
            &file
        )
        .is_ok());
        assert!(op(
            &[Caveat::Interface(Interface::Rest)],
            Service::OzPanel,
            Operation::Update,
            &file
        )
        .is_ok());
        let objectid = crate::token::caveat::data::objectid_of_file("f", "s9").unwrap();
        let oid = Caveat::DataObjectId(vec![objectid]);
        let sp = gri("op_space", Some("s9"), "instance");
        assert!(op(
            std::slice::from_ref(&oid),
            Service::OpWorker,
            Operation::Get,
            &sp
        )
        .is_ok());
        let other = gri("op_space", Some("s8"), "instance");
        assert_eq!(
            op(
                std::slice::from_ref(&oid),
                Service::OpWorker,
                Operation::Get,
                &other
            ),
            Err(oid)
        );
    }
}
