//! Path routing: percent-decoding rules and the table of endpoints.
//!
//! Paths live under `/api/v3/onezone`. Each segment is percent-decoded; a
//! segment that decodes to invalid UTF-8, contains `/`, or is `.`/`..` makes
//! the request a 400. An unknown path is a 404; a known path with another
//! method is a 405 with `Allow`.

use hyper::Method;
use percent_encoding::percent_decode_str;

use super::error::ApiError;

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
            | EffectiveChildren(_) => GET,
            ClientToken(_) | Token(_) => DELETE,
            ClientTokens | Providers | Keys | Users | MyGroups | MySpaces | Groups | Spaces => {
                GET_POST
            }
            UserById(_) => GET_DELETE,
            UserPrivileges(_) | MemberPrivileges(..) => GET_PATCH,
            MyPassword => PATCH,
            Container(..) => GET_PATCH_DELETE,
            Member(..) => GET_PUT_DELETE,
        }
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
        }
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

/// Finds the endpoint for decoded segments.
pub fn resolve(segs: &[String]) -> Option<Endpoint> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    use Endpoint::*;
    let own = |x: &&str| x.to_string();
    Some(match s.as_slice() {
        ["spaces", id, "providers", "token"] => SpaceSupportToken(own(id)),
        ["groups", id, "spaces", "token"] => GroupSpaceToken(own(id)),
        ["user", "client_tokens"] => ClientTokens,
        ["user", "client_tokens", tid] => ClientToken(own(tid)),
        ["providers"] => Providers,
        ["provider", "spaces", "support"] => ProviderSpaceSupport,
        ["provider", "spaces"] => ProviderSpaces,
        ["spaces", id, "providers"] => SpaceProviders(own(id)),
        ["spaces", id, "tokens"] => SpaceTokens(own(id)),
        ["groups", id, "tokens"] => GroupTokens(own(id)),
        ["tokens", "examine"] => TokenExamine,
        ["tokens", tid] => Token(own(tid)),
        ["keys"] => Keys,
        ["keys", kid, "retire"] => KeyRetire(own(kid)),
        ["users"] => Users,
        ["users", id] => UserById(own(id)),
        ["users", id, "privileges"] => UserPrivileges(own(id)),
        ["user"] => Me,
        ["user", "password"] => MyPassword,
        ["user", "groups"] => MyGroups,
        ["user", "spaces"] => MySpaces,
        ["groups"] => Groups,
        ["spaces"] => Spaces,
        ["groups", id] => Container(self::Container::Group, own(id)),
        ["spaces", id] => Container(self::Container::Space, own(id)),
        ["groups", id, "effective_users"] => EffectiveUsers(self::Container::Group, own(id)),
        ["spaces", id, "effective_users"] => EffectiveUsers(self::Container::Space, own(id)),
        ["groups", id, "effective_users", uid, "privileges"] => {
            EffectiveUserPrivileges(self::Container::Group, own(id), own(uid))
        }
        ["spaces", id, "effective_users", uid, "privileges"] => {
            EffectiveUserPrivileges(self::Container::Space, own(id), own(uid))
        }
        ["groups", id, "effective_children"] => EffectiveChildren(own(id)),
        ["backup"] => Backup,
        [c, id, m] => MemberList(members(c, m)?, own(id)),
        [c, id, m, mid] => Member(members(c, m)?, own(id), own(mid)),
        [c, id, m, mid, "privileges"] => MemberPrivileges(members(c, m)?, own(id), own(mid)),
        _ => return None,
    })
}

fn members(container: &str, member: &str) -> Option<Members> {
    Some(match (container, member) {
        ("groups", "users") => Members::GroupUsers,
        ("groups", "children") => Members::GroupChildren,
        ("spaces", "users") => Members::SpaceUsers,
        ("spaces", "groups") => Members::SpaceGroups,
        _ => return None,
    })
}

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
