//! Path routing: percent-decoding rules and the table of endpoints.
//!
//! Paths live under `/api/v3/onezone`. Each segment is percent-decoded; a
//! segment that decodes to invalid UTF-8, contains `/`, or is `.`/`..` makes
//! the request a 400. An unknown path is a 404; a known path with another
//! method is a 405 with `Allow`.

use hyper::Method;
use percent_encoding::percent_decode_str;

use super::error::ApiError;
use crate::model::Subject;
use crate::token::caveat::{Aspect, Gri, GriScope, Operation};

/// The API prefix.
pub const PREFIX: &str = "/api/v3/onezone";

/// Most path segments accepted.
const MAX_SEGMENTS: usize = 16;

/// Every endpoint shape; path parameters are carried in the variant.
/// Paths marked (ozmint) are extensions of the Onezone API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /spaces/{id}/providers/token`.
    SpaceSupportToken(String),
    /// `GET /groups/{id}/spaces/token`.
    GroupSpaceToken(String),
    /// `GET|POST /user/client_tokens`.
    ClientTokens,
    /// `DELETE /user/client_tokens/{tid}`.
    ClientToken(String),
    /// `GET|POST /providers`.
    Providers,
    /// `POST /provider/spaces/support`.
    ProviderSpaceSupport,
    /// `POST /provider/spaces`.
    ProviderSpaces,
    /// `GET /spaces/{id}/providers`.
    SpaceProviders(String),
    /// `GET /spaces/{id}/tokens` (ozmint): invite tokens of a space.
    SpaceTokens(String),
    /// `GET /groups/{id}/tokens` (ozmint): invite tokens of a group.
    GroupTokens(String),
    /// `DELETE /tokens/{tid}` (ozmint): revoke a token.
    Token(String),
    /// `POST /tokens/examine` (ozmint): describe a token.
    TokenExamine,
    /// `GET|POST /keys` (ozmint): list or rotate root keys.
    Keys,
    /// `POST /keys/{kid}/retire` (ozmint).
    KeyRetire(String),
    /// `GET|POST /users` (POST: ozmint).
    Users,
    /// `GET|DELETE /users/{id}`.
    UserById(String),
    /// `GET|PATCH /users/{id}/privileges` (zone privileges).
    UserPrivileges(String),
    /// `GET /user`.
    Me,
    /// `PATCH /user/password`.
    MyPassword,
    /// `GET|POST /user/groups`.
    MyGroups,
    /// `GET|POST /user/spaces`.
    MySpaces,
    /// `GET|POST /groups`.
    Groups,
    /// `GET|POST /spaces`.
    Spaces,
    /// `GET|PATCH|DELETE /groups/{id}` or `/spaces/{id}`.
    Container(Container, String),
    /// `GET /groups/{id}/users` and the like.
    MemberList(Members, String),
    /// `GET|PUT|DELETE /groups/{id}/users/{uid}` and the like.
    Member(Members, String, String),
    /// `GET|PATCH /groups/{id}/users/{uid}/privileges` and the like.
    MemberPrivileges(Members, String, String),
    /// `GET /groups/{id}/effective_users` or `/spaces/{id}/effective_users`.
    EffectiveUsers(Container, String),
    /// `GET /groups/{id}/effective_users/{uid}/privileges` and the space one.
    EffectiveUserPrivileges(Container, String, String),
    /// `GET /groups/{id}/effective_children`.
    EffectiveChildren(String),
    /// `POST /backup` (ozmint): a consistent copy of the store.
    Backup,
    /// `GET /user/effective_groups`.
    MyEffectiveGroups,
    /// `GET /user/effective_groups/{gid}`.
    MyEffectiveGroup(String),
    /// `GET /user/effective_spaces`.
    MyEffectiveSpaces,
    /// `GET /user/effective_spaces/{sid}`.
    MyEffectiveSpace(String),
    /// `GET /user/effective_providers`.
    MyEffectiveProviders,
    /// `GET /groups/{id}/parents`.
    GroupParents(String),
    /// `GET /groups/{id}/effective_parents`.
    GroupEffectiveParents(String),
    /// `GET /groups/{id}/effective_spaces`.
    GroupEffectiveSpaces(String),
    /// `GET /spaces/{id}/effective_groups`.
    SpaceEffectiveGroups(String),
    /// `GET /openapi.json` (ozmint): this API's OpenAPI description, without
    /// authentication.
    OpenApi,
    /// `GET|POST|DELETE /user/tokens/named` and the `/users/{id}`,
    /// `/provider`, `/providers/{id}` variants (20.02+).
    NamedTokens(TokenOwner),
    /// `GET .../tokens/named/name/{name}` (20.02+).
    NamedTokenByName(TokenOwner, String),
    /// `GET /tokens/named` (20.02+, `oz_tokens_manage`).
    AllNamedTokens,
    /// `GET|PATCH|DELETE /tokens/named/{id}` (20.02+).
    NamedToken(String),
    /// `GET /tokens/named/{id}/status` (20.02+).
    NamedTokenStatus(String),
    /// `GET|POST|DELETE /user/tokens/temporary` and the variants (20.02+).
    TemporaryTokens(TokenOwner),
    /// `POST /tokens/confine` (20.02+, public).
    TokenConfine,
    /// `POST /tokens/verify_access_token` (20.02+, public).
    VerifyAccessToken,
    /// `POST /tokens/verify_identity_token` (20.02+, public).
    VerifyIdentityToken,
    /// `POST /tokens/verify_invite_token` (20.02+, public).
    VerifyInviteToken,
    /// `GET /provider/public/get_current_time` (public).
    CurrentTime,
    /// `GET|PATCH /provider`: the calling provider.
    MyProvider,
    /// `GET /providers/{id}`.
    ProviderById(String),
    /// `POST /tokens/infer_access_token_scope` (21.02.4+, public).
    InferScope,
    /// `POST /user/groups/join` (`None`) or `/groups/{id}/parents/join`
    /// (the child group): consume a group invite token (20.02+).
    JoinGroup(Option<String>),
    /// `POST /user/spaces/join` (`None`) or `/groups/{id}/spaces/join`:
    /// consume a space invite token (20.02+).
    JoinSpace(Option<String>),
    /// `POST /spaces/{id}/users/token`, `/spaces/{id}/groups/token`,
    /// `/groups/{id}/users/token`, `/groups/{id}/children/token`: a named
    /// invite token for one use (deprecated in 20.02+, still served).
    LegacyInviteToken(Members, String),
}

/// Whose tokens a 20.02+ token path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOwner {
    /// `/user/...`: the calling user.
    Me,
    /// `/users/{id}/...`.
    User(String),
    /// `/provider/...`: the calling provider.
    MyProvider,
    /// `/providers/{id}/...`.
    Provider(String),
}

impl TokenOwner {
    fn template(&self, tail: &'static str) -> &'static str {
        macro_rules! t {
            ($($tail:literal),*) => {
                match (self, tail) {
                    $(
                        (TokenOwner::Me, $tail) => concat!("/user", $tail),
                        (TokenOwner::User(_), $tail) => concat!("/users/{id}", $tail),
                        (TokenOwner::MyProvider, $tail) => concat!("/provider", $tail),
                        (TokenOwner::Provider(_), $tail) => concat!("/providers/{id}", $tail),
                    )*
                    _ => "unmatched",
                }
            };
        }
        t!(
            "/tokens/named",
            "/tokens/named/name/{name}",
            "/tokens/temporary"
        )
    }
}

pub use crate::ops::containers::Container;
pub use crate::ops::members::Members;

impl Endpoint {
    /// The methods the endpoint answers.
    pub fn methods(&self) -> &'static [Method] {
        use Endpoint::*;
        const GET: &[Method] = &[Method::GET];
        const POST: &[Method] = &[Method::POST];
        const DELETE: &[Method] = &[Method::DELETE];
        const GET_POST: &[Method] = &[Method::GET, Method::POST];
        const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
        const GET_PATCH: &[Method] = &[Method::GET, Method::PATCH];
        const GET_PATCH_DELETE: &[Method] = &[Method::GET, Method::PATCH, Method::DELETE];
        const GET_PUT_DELETE: &[Method] = &[Method::GET, Method::PUT, Method::DELETE];
        const PATCH: &[Method] = &[Method::PATCH];
        const GET_POST_DELETE: &[Method] = &[Method::GET, Method::POST, Method::DELETE];
        match self {
            NamedTokens(_) | TemporaryTokens(_) => return GET_POST_DELETE,
            NamedTokenByName(..) | AllNamedTokens | NamedTokenStatus(_) | CurrentTime => {
                return GET
            }
            NamedToken(_) => return GET_PATCH_DELETE,
            TokenConfine
            | VerifyAccessToken
            | VerifyIdentityToken
            | VerifyInviteToken
            | InferScope
            | JoinGroup(_)
            | JoinSpace(_)
            | LegacyInviteToken(..) => return POST,
            MyProvider => return GET_PATCH,
            ProviderById(_) => return GET,
            _ => {}
        }
        match self {
            SpaceSupportToken(_) | ProviderSpaceSupport | ProviderSpaces | TokenExamine
            | KeyRetire(_) | Backup => POST,
            GroupSpaceToken(_)
            | SpaceProviders(_)
            | SpaceTokens(_)
            | GroupTokens(_)
            | Me
            | MemberList(..)
            | EffectiveUsers(..)
            | EffectiveUserPrivileges(..)
            | EffectiveChildren(_)
            | MyEffectiveGroups
            | MyEffectiveGroup(_)
            | MyEffectiveSpaces
            | MyEffectiveSpace(_)
            | MyEffectiveProviders
            | GroupParents(_)
            | GroupEffectiveParents(_)
            | GroupEffectiveSpaces(_)
            | SpaceEffectiveGroups(_)
            | OpenApi => GET,
            ClientToken(_) | Token(_) => DELETE,
            ClientTokens | Providers | Keys | Users | MyGroups | MySpaces | Groups | Spaces => {
                GET_POST
            }
            UserById(_) => GET_DELETE,
            UserPrivileges(_) | MemberPrivileges(..) => GET_PATCH,
            MyPassword => PATCH,
            Container(..) => GET_PATCH_DELETE,
            Member(..) => GET_PUT_DELETE,
            NamedTokens(_)
            | TemporaryTokens(_)
            | NamedTokenByName(..)
            | AllNamedTokens
            | NamedTokenStatus(_)
            | CurrentTime
            | NamedToken(_)
            | TokenConfine
            | VerifyAccessToken
            | VerifyIdentityToken
            | VerifyInviteToken
            | InferScope
            | MyProvider
            | ProviderById(_)
            | JoinGroup(_)
            | JoinSpace(_)
            | LegacyInviteToken(..) => &[],
        }
    }

    /// Whether errors take Onezone's 20.02+ shape here.
    pub fn is_modern(&self) -> bool {
        use Endpoint::*;
        matches!(
            self,
            NamedTokens(_)
                | NamedTokenByName(..)
                | AllNamedTokens
                | NamedToken(_)
                | NamedTokenStatus(_)
                | TemporaryTokens(_)
                | TokenConfine
                | VerifyAccessToken
                | VerifyIdentityToken
                | VerifyInviteToken
                | CurrentTime
                | InferScope
                | JoinGroup(_)
                | JoinSpace(_)
                | LegacyInviteToken(..)
        )
    }

    /// Whether the endpoint consumes or makes invite tokens (handled in
    /// `invites`).
    pub fn is_invite(&self) -> bool {
        use Endpoint::*;
        matches!(self, JoinGroup(_) | JoinSpace(_) | LegacyInviteToken(..))
    }

    /// Whether the endpoint answers without authentication.
    pub fn is_public(&self) -> bool {
        use Endpoint::*;
        matches!(
            self,
            TokenConfine
                | VerifyAccessToken
                | VerifyIdentityToken
                | VerifyInviteToken
                | CurrentTime
                | InferScope
        )
    }

    /// The path template, for logs and metrics (never the concrete ids).
    pub fn template(&self) -> &'static str {
        use Endpoint::*;
        match self {
            SpaceSupportToken(_) => "/spaces/{id}/providers/token",
            GroupSpaceToken(_) => "/groups/{id}/spaces/token",
            ClientTokens => "/user/client_tokens",
            ClientToken(_) => "/user/client_tokens/{tid}",
            Providers => "/providers",
            ProviderSpaceSupport => "/provider/spaces/support",
            ProviderSpaces => "/provider/spaces",
            SpaceProviders(_) => "/spaces/{id}/providers",
            SpaceTokens(_) => "/spaces/{id}/tokens",
            GroupTokens(_) => "/groups/{id}/tokens",
            Token(_) => "/tokens/{tid}",
            TokenExamine => "/tokens/examine",
            Keys => "/keys",
            KeyRetire(_) => "/keys/{kid}/retire",
            Users => "/users",
            UserById(_) => "/users/{id}",
            UserPrivileges(_) => "/users/{id}/privileges",
            Me => "/user",
            MyPassword => "/user/password",
            MyGroups => "/user/groups",
            MySpaces => "/user/spaces",
            Groups => "/groups",
            Spaces => "/spaces",
            Container(self::Container::Group, _) => "/groups/{id}",
            Container(self::Container::Space, _) => "/spaces/{id}",
            MemberList(m, _) => match m {
                Members::GroupUsers => "/groups/{id}/users",
                Members::GroupChildren => "/groups/{id}/children",
                Members::SpaceUsers => "/spaces/{id}/users",
                Members::SpaceGroups => "/spaces/{id}/groups",
            },
            Member(m, ..) => match m {
                Members::GroupUsers => "/groups/{id}/users/{uid}",
                Members::GroupChildren => "/groups/{id}/children/{cid}",
                Members::SpaceUsers => "/spaces/{id}/users/{uid}",
                Members::SpaceGroups => "/spaces/{id}/groups/{gid}",
            },
            MemberPrivileges(m, ..) => match m {
                Members::GroupUsers => "/groups/{id}/users/{uid}/privileges",
                Members::GroupChildren => "/groups/{id}/children/{cid}/privileges",
                Members::SpaceUsers => "/spaces/{id}/users/{uid}/privileges",
                Members::SpaceGroups => "/spaces/{id}/groups/{gid}/privileges",
            },
            EffectiveUsers(self::Container::Group, _) => "/groups/{id}/effective_users",
            EffectiveUsers(self::Container::Space, _) => "/spaces/{id}/effective_users",
            EffectiveUserPrivileges(self::Container::Group, ..) => {
                "/groups/{id}/effective_users/{uid}/privileges"
            }
            EffectiveUserPrivileges(self::Container::Space, ..) => {
                "/spaces/{id}/effective_users/{uid}/privileges"
            }
            EffectiveChildren(_) => "/groups/{id}/effective_children",
            Backup => "/backup",
            MyEffectiveGroups => "/user/effective_groups",
            MyEffectiveGroup(_) => "/user/effective_groups/{gid}",
            MyEffectiveSpaces => "/user/effective_spaces",
            MyEffectiveSpace(_) => "/user/effective_spaces/{sid}",
            MyEffectiveProviders => "/user/effective_providers",
            GroupParents(_) => "/groups/{id}/parents",
            GroupEffectiveParents(_) => "/groups/{id}/effective_parents",
            GroupEffectiveSpaces(_) => "/groups/{id}/effective_spaces",
            SpaceEffectiveGroups(_) => "/spaces/{id}/effective_groups",
            OpenApi => "/openapi.json",
            NamedTokens(o) => o.template("/tokens/named"),
            NamedTokenByName(o, _) => o.template("/tokens/named/name/{name}"),
            TemporaryTokens(o) => o.template("/tokens/temporary"),
            AllNamedTokens => "/tokens/named",
            NamedToken(_) => "/tokens/named/{id}",
            NamedTokenStatus(_) => "/tokens/named/{id}/status",
            TokenConfine => "/tokens/confine",
            VerifyAccessToken => "/tokens/verify_access_token",
            VerifyIdentityToken => "/tokens/verify_identity_token",
            VerifyInviteToken => "/tokens/verify_invite_token",
            CurrentTime => "/provider/public/get_current_time",
            MyProvider => "/provider",
            ProviderById(_) => "/providers/{id}",
            InferScope => "/tokens/infer_access_token_scope",
            JoinGroup(None) => "/user/groups/join",
            JoinGroup(Some(_)) => "/groups/{id}/parents/join",
            JoinSpace(None) => "/user/spaces/join",
            JoinSpace(Some(_)) => "/groups/{id}/spaces/join",
            LegacyInviteToken(m, _) => match m {
                Members::GroupUsers => "/groups/{id}/users/token",
                Members::GroupChildren => "/groups/{id}/children/token",
                Members::SpaceUsers => "/spaces/{id}/users/token",
                Members::SpaceGroups => "/spaces/{id}/groups/token",
            },
        }
    }
}

impl Endpoint {
    /// The Onezone operation a request performs, for `api` caveats: the
    /// operation and the GRI (entity type, id, aspect, scope), as Onezone's
    /// REST routes (oz-worker's `src/http/rest/routes/*.erl`, 20.02 to 21.02)
    /// bind it where Onezone has the endpoint. `caller` stands for
    /// the `/user` and `/provider` paths. Every endpoint has one, so a token
    /// with `api` caveats is held to them everywhere.
    pub fn operation(&self, method: &Method, caller: &Subject) -> (Operation, Gri) {
        use Endpoint::*;
        let op = match *method {
            Method::POST => Operation::Create,
            Method::PUT => Operation::Create,
            Method::PATCH => Operation::Update,
            Method::DELETE => Operation::Delete,
            _ => Operation::Get,
        };
        let one = |a: &str| Aspect::Single(a.to_owned());
        let pair = |a: &str, b: &str| Aspect::Pair(a.to_owned(), b.to_owned());
        let gri = |t: &str, id: Option<&str>, a: Aspect| Gri::new(t, id, a);
        // Onezone reads an entity itself in scope `protected`.
        let read = |g: Gri| match op {
            Operation::Get => g.with_scope(GriScope::Protected),
            _ => g,
        };
        let me = match caller {
            Subject::User(id) | Subject::Provider(id) => id.to_string(),
        };
        let owner = |o: &TokenOwner| -> (&'static str, String) {
            match o {
                TokenOwner::Me => ("user", me.clone()),
                TokenOwner::User(id) => ("user", id.clone()),
                TokenOwner::MyProvider => ("provider", me.clone()),
                TokenOwner::Provider(id) => ("provider", id.clone()),
            }
        };
        let container = |c: &self::Container| match c {
            self::Container::Group => "group",
            self::Container::Space => "space",
        };
        // Container type, member aspect and its plural, member type.
        let members = |m: &Members| match m {
            Members::GroupUsers => ("group", "user", "users", "user"),
            Members::GroupChildren => ("group", "child", "children", "group"),
            Members::SpaceUsers => ("space", "user", "users", "user"),
            Members::SpaceGroups => ("space", "group", "groups", "group"),
        };
        let g = match self {
            SpaceSupportToken(id) => gri("space", Some(id), one("space_support_token")),
            GroupSpaceToken(id) => gri("group", Some(id), one("space_create_token")),
            ClientTokens => gri("user", Some(&me), one("client_tokens")),
            ClientToken(tid) => gri("user", Some(&me), pair("client_token", tid)),
            Providers if op == Operation::Create => gri("provider", None, one("instance")),
            Providers => gri("provider", None, one("list")),
            // Onezone 19.02's route (20.02 dropped the path).
            ProviderSpaceSupport => gri("provider", Some(&me), one("support")),
            ProviderSpaces => gri("space", None, one("instance")),
            SpaceProviders(id) => gri("space", Some(id), one("eff_providers")),
            SpaceTokens(id) => gri("space", Some(id), one("tokens")),
            GroupTokens(id) => gri("group", Some(id), one("tokens")),
            Token(id) => gri("token", Some(id), one("instance")),
            TokenExamine => gri("token", None, one("examine")).with_scope(GriScope::Public),
            Keys => gri("oz_worker", None, one("root_keys")),
            KeyRetire(id) => gri("oz_worker", None, pair("root_key", id)),
            Users if op == Operation::Create => gri("user", None, one("instance")),
            Users => gri("user", None, one("list")),
            UserById(id) => read(gri("user", Some(id), one("instance"))),
            UserPrivileges(id) => gri("user", Some(id), one("oz_privileges")),
            Me => read(gri("user", Some(&me), one("instance"))),
            MyPassword => gri("user", Some(&me), one("password")),
            MyGroups if op == Operation::Create => gri("group", None, one("instance")),
            MyGroups => gri("user", Some(&me), one("groups")),
            MySpaces if op == Operation::Create => gri("space", None, one("instance")),
            MySpaces => gri("user", Some(&me), one("spaces")),
            Groups if op == Operation::Create => gri("group", None, one("instance")),
            Groups => gri("group", None, one("list")),
            Spaces if op == Operation::Create => gri("space", None, one("instance")),
            Spaces => gri("space", None, one("list")),
            Container(c, id) => read(gri(container(c), Some(id), one("instance"))),
            MemberList(m, id) => {
                let (t, _, all, _) = members(m);
                gri(t, Some(id), one(all))
            }
            // Reading a member is reading the member's shared data.
            Member(m, _, mid) if op == Operation::Get => {
                let (_, _, _, t) = members(m);
                gri(t, Some(mid), one("instance")).with_scope(GriScope::Shared)
            }
            Member(m, id, mid) => {
                let (t, a, _, _) = members(m);
                gri(t, Some(id), pair(a, mid))
            }
            MemberPrivileges(m, id, mid) => {
                let (t, a, _, _) = members(m);
                gri(t, Some(id), pair(&format!("{a}_privileges"), mid))
            }
            EffectiveUsers(c, id) => gri(container(c), Some(id), one("eff_users")),
            EffectiveUserPrivileges(c, id, uid) => {
                gri(container(c), Some(id), pair("eff_user_privileges", uid))
            }
            EffectiveChildren(id) => gri("group", Some(id), one("eff_children")),
            Backup => gri("oz_worker", None, one("backup")),
            MyEffectiveGroups => gri("user", Some(&me), one("eff_groups")),
            MyEffectiveGroup(gid) => {
                gri("group", Some(gid), one("instance")).with_scope(GriScope::Protected)
            }
            MyEffectiveSpaces => gri("user", Some(&me), one("eff_spaces")),
            MyEffectiveSpace(sid) => {
                gri("space", Some(sid), one("instance")).with_scope(GriScope::Protected)
            }
            MyEffectiveProviders => gri("user", Some(&me), one("eff_providers")),
            GroupParents(id) => gri("group", Some(id), one("parents")),
            GroupEffectiveParents(id) => gri("group", Some(id), one("eff_parents")),
            GroupEffectiveSpaces(id) => gri("group", Some(id), one("eff_spaces")),
            SpaceEffectiveGroups(id) => gri("space", Some(id), one("eff_groups")),
            OpenApi => gri("oz_worker", None, one("openapi")).with_scope(GriScope::Public),
            NamedTokens(o) => {
                let (t, id) = owner(o);
                match op {
                    Operation::Create => gri("token", None, pair(&format!("{t}_named_token"), &id)),
                    _ => gri("token", None, pair(&format!("{t}_named_tokens"), &id)),
                }
            }
            // Onezone's GRI has the token's name as its id.
            NamedTokenByName(o, name) => {
                let (t, id) = owner(o);
                gri("token", Some(name), pair(&format!("{t}_named_token"), &id))
            }
            AllNamedTokens => gri("token", None, one("list")),
            NamedToken(id) => gri("token", Some(id), one("instance")),
            NamedTokenStatus(id) => {
                gri("token", Some(id), one("instance")).with_scope(GriScope::Shared)
            }
            TemporaryTokens(o) => {
                let (t, id) = owner(o);
                match op {
                    Operation::Create => {
                        gri("token", None, pair(&format!("{t}_temporary_token"), &id))
                    }
                    Operation::Delete => {
                        gri("token", None, pair(&format!("{t}_temporary_tokens"), &id))
                    }
                    _ => gri("temporary_token_secret", Some(&id), one(t))
                        .with_scope(GriScope::Shared),
                }
            }
            TokenConfine => gri("token", None, one("confine")).with_scope(GriScope::Public),
            VerifyAccessToken => {
                gri("token", None, one("verify_access_token")).with_scope(GriScope::Public)
            }
            VerifyIdentityToken => {
                gri("token", None, one("verify_identity_token")).with_scope(GriScope::Public)
            }
            VerifyInviteToken => {
                gri("token", None, one("verify_invite_token")).with_scope(GriScope::Public)
            }
            CurrentTime => gri("provider", None, one("current_time")),
            MyProvider => read(gri("provider", Some(&me), one("instance"))),
            ProviderById(id) => read(gri("provider", Some(id), one("instance"))),
            InferScope => {
                gri("token", None, one("infer_access_token_scope")).with_scope(GriScope::Public)
            }
            JoinGroup(_) => gri("group", None, one("join")),
            JoinSpace(_) => gri("space", None, one("join")),
            LegacyInviteToken(m, id) => {
                let (t, _, _, kind) = members(m);
                gri(t, Some(id), one(&format!("invite_{kind}_token")))
            }
        };
        (op, g)
    }
}

/// Splits and decodes a request path. `Ok(None)`: not an API path.
pub fn segments(path: &str) -> Result<Option<Vec<String>>, ApiError> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Ok(None);
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut out = Vec::new();
    for raw in rest.split('/') {
        if out.len() == MAX_SEGMENTS {
            return Err(ApiError::bad_request(
                "The request path has too many segments.",
            ));
        }
        let seg = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request("The request path is not valid UTF-8."))?;
        if seg.contains('/') || seg == "." || seg == ".." || seg.is_empty() {
            return Err(ApiError::bad_request(
                "The request path has an empty, dot or encoded-slash segment.",
            ));
        }
        out.push(seg.into_owned());
    }
    Ok(Some(out))
}

/// One row of the routing table: a path template and how to build its
/// endpoint from the parameters.
pub struct Route {
    /// The path below [`PREFIX`]; a `{name}` segment is a parameter.
    pub template: &'static str,
    make: fn(&[String]) -> Endpoint,
}

impl Route {
    /// The template's segments: a literal, or `None` for a parameter.
    fn parts(&self) -> Vec<Option<&'static str>> {
        let t = self.template.strip_prefix('/').unwrap_or(self.template);
        t.split('/')
            .map(|p| (!p.starts_with('{')).then_some(p))
            .collect()
    }

    /// The endpoint with placeholder parameters.
    fn sample(&self) -> Endpoint {
        let n = self.template.matches('{').count();
        (self.make)(&vec!["x".to_owned(); n])
    }

    /// The methods the route answers.
    pub fn methods(&self) -> &'static [Method] {
        self.sample().methods()
    }
}

macro_rules! routes {
    ($($template:literal => |$p:ident| $make:expr,)*) => {
        /// The routing table, tried in order: the first template that
        /// matches names the endpoint (literal routes come before the
        /// parameter routes they would otherwise fall under).
        pub static ROUTES: &[Route] = &[$(Route {
            template: $template,
            make: |$p: &[String]| $make,
        }),*];
    };
}

pub use table::ROUTES;

mod table {
    use super::{
        Container::Group as G, Container::Space as S, Endpoint, Endpoint::*, Members::*, Route,
        TokenOwner as O,
    };

    routes! {
        "/user/groups/join" => |_p| JoinGroup(None),
        "/user/spaces/join" => |_p| JoinSpace(None),
        "/groups/{id}/parents/join" => |p| JoinGroup(Some(p[0].clone())),
        "/groups/{id}/spaces/join" => |p| JoinSpace(Some(p[0].clone())),
        "/spaces/{id}/users/token" => |p| LegacyInviteToken(SpaceUsers, p[0].clone()),
        "/spaces/{id}/groups/token" => |p| LegacyInviteToken(SpaceGroups, p[0].clone()),
        "/groups/{id}/users/token" => |p| LegacyInviteToken(GroupUsers, p[0].clone()),
        "/groups/{id}/children/token" => |p| LegacyInviteToken(GroupChildren, p[0].clone()),
        "/tokens/named" => |_p| AllNamedTokens,
        "/tokens/named/{id}" => |p| NamedToken(p[0].clone()),
        "/tokens/named/{id}/status" => |p| NamedTokenStatus(p[0].clone()),
        "/tokens/confine" => |_p| TokenConfine,
        "/tokens/verify_access_token" => |_p| VerifyAccessToken,
        "/tokens/verify_identity_token" => |_p| VerifyIdentityToken,
        "/tokens/verify_invite_token" => |_p| VerifyInviteToken,
        "/provider/public/get_current_time" => |_p| CurrentTime,
        "/tokens/infer_access_token_scope" => |_p| InferScope,
        "/provider" => |_p| MyProvider,
        "/providers/{id}" => |p| ProviderById(p[0].clone()),
        "/user/tokens/named" => |_p| NamedTokens(O::Me),
        "/users/{id}/tokens/named" => |p| NamedTokens(O::User(p[0].clone())),
        "/provider/tokens/named" => |_p| NamedTokens(O::MyProvider),
        "/providers/{id}/tokens/named" => |p| NamedTokens(O::Provider(p[0].clone())),
        "/user/tokens/named/name/{name}" => |p| NamedTokenByName(O::Me, p[0].clone()),
        "/users/{id}/tokens/named/name/{name}" => |p| NamedTokenByName(O::User(p[0].clone()), p[1].clone()),
        "/provider/tokens/named/name/{name}" => |p| NamedTokenByName(O::MyProvider, p[0].clone()),
        "/providers/{id}/tokens/named/name/{name}" => |p| NamedTokenByName(O::Provider(p[0].clone()), p[1].clone()),
        "/user/tokens/temporary" => |_p| TemporaryTokens(O::Me),
        "/users/{id}/tokens/temporary" => |p| TemporaryTokens(O::User(p[0].clone())),
        "/provider/tokens/temporary" => |_p| TemporaryTokens(O::MyProvider),
        "/providers/{id}/tokens/temporary" => |p| TemporaryTokens(O::Provider(p[0].clone())),
        "/spaces/{id}/providers/token" => |p| SpaceSupportToken(p[0].clone()),
        "/groups/{id}/spaces/token" => |p| GroupSpaceToken(p[0].clone()),
        "/user/client_tokens" => |_p| ClientTokens,
        "/user/client_tokens/{tid}" => |p| ClientToken(p[0].clone()),
        "/providers" => |_p| Providers,
        "/provider/spaces/support" => |_p| ProviderSpaceSupport,
        "/provider/spaces" => |_p| ProviderSpaces,
        "/spaces/{id}/providers" => |p| SpaceProviders(p[0].clone()),
        "/spaces/{id}/tokens" => |p| SpaceTokens(p[0].clone()),
        "/groups/{id}/tokens" => |p| GroupTokens(p[0].clone()),
        "/tokens/examine" => |_p| TokenExamine,
        "/tokens/{tid}" => |p| Token(p[0].clone()),
        "/keys" => |_p| Keys,
        "/keys/{kid}/retire" => |p| KeyRetire(p[0].clone()),
        "/users" => |_p| Users,
        "/users/{id}" => |p| UserById(p[0].clone()),
        "/users/{id}/privileges" => |p| UserPrivileges(p[0].clone()),
        "/user" => |_p| Me,
        "/user/password" => |_p| MyPassword,
        "/user/groups" => |_p| MyGroups,
        "/user/spaces" => |_p| MySpaces,
        "/user/effective_groups" => |_p| MyEffectiveGroups,
        "/user/effective_groups/{gid}" => |p| MyEffectiveGroup(p[0].clone()),
        "/user/effective_spaces" => |_p| MyEffectiveSpaces,
        "/user/effective_spaces/{sid}" => |p| MyEffectiveSpace(p[0].clone()),
        "/user/effective_providers" => |_p| MyEffectiveProviders,
        "/groups" => |_p| Groups,
        "/spaces" => |_p| Spaces,
        "/groups/{id}" => |p| Endpoint::Container(G, p[0].clone()),
        "/spaces/{id}" => |p| Endpoint::Container(S, p[0].clone()),
        "/groups/{id}/effective_users" => |p| EffectiveUsers(G, p[0].clone()),
        "/spaces/{id}/effective_users" => |p| EffectiveUsers(S, p[0].clone()),
        "/groups/{id}/effective_users/{uid}/privileges" => |p| EffectiveUserPrivileges(G, p[0].clone(), p[1].clone()),
        "/spaces/{id}/effective_users/{uid}/privileges" => |p| EffectiveUserPrivileges(S, p[0].clone(), p[1].clone()),
        "/groups/{id}/effective_children" => |p| EffectiveChildren(p[0].clone()),
        "/groups/{id}/parents" => |p| GroupParents(p[0].clone()),
        "/groups/{id}/effective_parents" => |p| GroupEffectiveParents(p[0].clone()),
        "/groups/{id}/effective_spaces" => |p| GroupEffectiveSpaces(p[0].clone()),
        "/spaces/{id}/effective_groups" => |p| SpaceEffectiveGroups(p[0].clone()),
        "/backup" => |_p| Backup,
        "/openapi.json" => |_p| OpenApi,
        "/groups/{id}/users" => |p| MemberList(GroupUsers, p[0].clone()),
        "/groups/{id}/children" => |p| MemberList(GroupChildren, p[0].clone()),
        "/spaces/{id}/users" => |p| MemberList(SpaceUsers, p[0].clone()),
        "/spaces/{id}/groups" => |p| MemberList(SpaceGroups, p[0].clone()),
        "/groups/{id}/users/{uid}" => |p| Member(GroupUsers, p[0].clone(), p[1].clone()),
        "/groups/{id}/children/{cid}" => |p| Member(GroupChildren, p[0].clone(), p[1].clone()),
        "/spaces/{id}/users/{uid}" => |p| Member(SpaceUsers, p[0].clone(), p[1].clone()),
        "/spaces/{id}/groups/{gid}" => |p| Member(SpaceGroups, p[0].clone(), p[1].clone()),
        "/groups/{id}/users/{uid}/privileges" => |p| MemberPrivileges(GroupUsers, p[0].clone(), p[1].clone()),
        "/groups/{id}/children/{cid}/privileges" => |p| MemberPrivileges(GroupChildren, p[0].clone(), p[1].clone()),
        "/spaces/{id}/users/{uid}/privileges" => |p| MemberPrivileges(SpaceUsers, p[0].clone(), p[1].clone()),
        "/spaces/{id}/groups/{gid}/privileges" => |p| MemberPrivileges(SpaceGroups, p[0].clone(), p[1].clone()),
    }
}

/// The routes of [`ROUTES`] by their number of segments, in order, each
/// with its template's segments (split once, on first use).
type ByLength = Vec<Vec<(&'static Route, Vec<Option<&'static str>>)>>;

fn by_length() -> &'static ByLength {
    static INDEX: std::sync::OnceLock<ByLength> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: ByLength = Vec::new();
        for r in ROUTES {
            let parts = r.parts();
            if index.len() <= parts.len() {
                index.resize_with(parts.len() + 1, Vec::new);
            }
            index[parts.len()].push((r, parts));
        }
        index
    })
}

/// Finds the endpoint for decoded segments: the first route of [`ROUTES`]
/// whose template matches (only those with as many segments are tried).
pub fn resolve(segs: &[String]) -> Option<Endpoint> {
    by_length().get(segs.len())?.iter().find_map(|(r, parts)| {
        let matches = parts
            .iter()
            .zip(segs)
            .all(|(t, seg)| t.is_none_or(|t| t == seg));
        matches.then(|| {
            let params: Vec<String> = parts
                .iter()
                .zip(segs)
                .filter(|(t, _)| t.is_none())
                .map(|(_, seg)| seg.clone())
                .collect();
            (r.make)(&params)
        })
    })
}

/// `GET /healthz`: liveness (outside [`PREFIX`]).
pub const HEALTHZ: &str = "/healthz";
/// `GET /readyz`: readiness (outside [`PREFIX`]).
pub const READYZ: &str = "/readyz";
/// `GET /metrics`: OpenMetrics text (outside [`PREFIX`]).
pub const METRICS: &str = "/metrics";
/// The paths served outside [`PREFIX`], each answering `GET`.
pub const OUTSIDE: [&str; 3] = [HEALTHZ, READYZ, METRICS];

/// Routes a method and path to an endpoint, or the 400/404/405 error.
pub fn route(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    let ep = endpoint(path)?;
    allow(&ep, method)?;
    Ok(ep)
}

/// The endpoint a path names, whatever the method, or the 400/404 error.
pub fn endpoint(path: &str) -> Result<Endpoint, ApiError> {
    let segs = segments(path)?.ok_or_else(ApiError::no_route)?;
    resolve(&segs).ok_or_else(ApiError::no_route)
}

/// The 405 error (with the `Allow` list) when `ep` does not take `method`.
pub fn allow(ep: &Endpoint, method: &Method) -> Result<(), ApiError> {
    if ep.methods().contains(method) {
        return Ok(());
    }
    let allow: Vec<&str> = ep.methods().iter().map(Method::as_str).collect();
    Err(ApiError::method_not_allowed(allow.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc";

    /// Every route is reachable: no earlier template shadows it, and its
    /// endpoint names it back.
    #[test]
    fn every_route_resolves_to_itself() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert(r.template), "{} twice", r.template);
            let ep = r.sample();
            assert_eq!(ep.template(), r.template);
            let segs: Vec<String> = r
                .template
                .trim_start_matches('/')
                .split('/')
                .map(|t| if t.starts_with('{') { "x" } else { t }.to_owned())
                .collect();
            assert_eq!(resolve(&segs), Some(ep), "{} is shadowed", r.template);
        }
    }

    /// The (operation, GRI) `api` caveats see, as oz-worker's REST routes
    /// bind them (`src/http/rest/routes/*.erl`, 21.02.7; the same in 20.02):
    /// scopes, token-typed listings, members read as themselves.
    #[test]
    fn operations_are_onezones() {
        const U: &str = "Gm4CMqtAjFgTyY1xLXFqjmbzTMF1E3IGbEXDBDKHz9I";
        let me = Subject::User(U.parse().unwrap());
        let text = |m: Method, path: &str| {
            let (op, g) = endpoint(&format!("{PREFIX}{path}"))
                .unwrap()
                .operation(&m, &me);
            let aspect = match g.aspect {
                Aspect::Single(a) => a,
                Aspect::Pair(a, b) => format!("{a},{b}"),
            };
            let id = g.id.unwrap_or_else(|| "null".into());
            let (ty, scope) = (g.entity_type, g.scope.name());
            format!("{} {ty}.{id}.{aspect}:{scope}", op.name())
        };
        for row in [
            // user_routes.erl, provider_routes.erl, group_routes.erl, space_routes.erl
            "GET /user => get user.{U}.instance:protected",
            "PATCH /user => update user.{U}.instance:private",
            "GET /users/{S} => get user.{S}.instance:protected",
            "DELETE /users/{S} => delete user.{S}.instance:private",
            "GET /groups/{S} => get group.{S}.instance:protected",
            "GET /spaces/{S} => get space.{S}.instance:protected",
            "PATCH /spaces/{S} => update space.{S}.instance:private",
            "GET /providers/{S} => get provider.{S}.instance:protected",
            "GET /groups/{S}/children => get group.{S}.children:private",
            "GET /groups/{S}/users/{U} => get user.{U}.instance:shared",
            "PUT /groups/{S}/users/{U} => create group.{S}.user,{U}:private",
            "GET /groups/{S}/children/{U} => get group.{U}.instance:shared",
            "GET /groups/{S}/children/{U}/privileges => get group.{S}.child_privileges,{U}:private",
            "POST /groups/{S}/children/token => create group.{S}.invite_group_token:private",
            "POST /spaces/{S}/users/token => create space.{S}.invite_user_token:private",
            "GET /spaces/{S}/users => get space.{S}.users:private",
            "GET /spaces/{S}/groups/{U} => get group.{U}.instance:shared",
            "GET /spaces/{S}/providers => get space.{S}.eff_providers:private",
            "GET /user/effective_groups/{S} => get group.{S}.instance:protected",
            "GET /user/effective_spaces/{S} => get space.{S}.instance:protected",
            "DELETE /user/client_tokens/{S} => delete user.{U}.client_token,{S}:private",
            "GET /provider/public/get_current_time => get provider.null.current_time:private",
            // token_routes.erl
            "GET /user/tokens/named => get token.null.user_named_tokens,{U}:private",
            "POST /user/tokens/named => create token.null.user_named_token,{U}:private",
            "GET /providers/{S}/tokens/named => get token.null.provider_named_tokens,{S}:private",
            "GET /user/tokens/named/name/mine => get token.mine.user_named_token,{U}:private",
            "GET /user/tokens/temporary => get temporary_token_secret.{U}.user:shared",
            "DELETE /user/tokens/temporary => delete token.null.user_temporary_tokens,{U}:private",
            "GET /tokens/named/{S}/status => get token.{S}.instance:shared",
        ] {
            let fill = |t: &str| t.replace("{U}", U).replace("{S}", S);
            let (request, want) = row.split_once(" => ").unwrap();
            let (m, path) = request.split_once(' ').unwrap();
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(text(m, &fill(path)), fill(want), "{request}");
        }
    }

    #[test]
    fn routes_and_errors() {
        let p = format!("{PREFIX}/spaces/{S}/providers/token");
        assert_eq!(
            route(&Method::POST, &p).unwrap(),
            Endpoint::SpaceSupportToken(S.into())
        );
        let e = route(&Method::GET, &p).unwrap_err();
        assert_eq!(e.status, 405);
        assert_eq!(e.allow.as_deref(), Some("POST"));
        assert_eq!(route(&Method::GET, "/nope").unwrap_err().status, 404);
        assert_eq!(
            route(&Method::GET, &format!("{PREFIX}/spaces/a/b/c/d/e"))
                .unwrap_err()
                .status,
            404
        );
        for bad in ["a%2Fb", "..", ".", "%ff", "a//b"] {
            let p = format!("{PREFIX}/spaces/{bad}/providers/token");
            assert_eq!(route(&Method::POST, &p).unwrap_err().status, 400, "{bad}");
        }
        // Percent-encoded ordinary characters decode.
        let p = format!("{PREFIX}/groups/{}/spaces/token", S.replace('_', "%5F"));
        assert_eq!(
            route(&Method::GET, &p).unwrap(),
            Endpoint::GroupSpaceToken(S.into())
        );
    }
}
