//! `ozmint admin`: every administration operation against a running server,
//! as a client of the REST API.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use ozmint::client::{Client, ClientAuth};

/// Where the server is and who we are.
#[derive(Args)]
pub struct Conn {
    /// Server URL.
    #[arg(long, env = "OZMINT_URL", default_value = "https://127.0.0.1:8443")]
    pub url: String,
    /// User name (Basic authentication).
    #[arg(long, env = "OZMINT_USER", default_value = "admin")]
    pub user: String,
    /// Password (Basic authentication).
    #[arg(long, env = "OZMINT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Access token instead of user and password.
    #[arg(long, env = "OZMINT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Accept any server certificate (self-signed servers).
    #[arg(long, short = 'k', env = "OZMINT_INSECURE")]
    pub insecure: bool,
    /// PEM file of a CA to trust.
    #[arg(long)]
    pub ca: Option<std::path::PathBuf>,
}

/// Privilege changes: exactly one of set, grant, revoke (comma-separated names).
#[derive(Args)]
#[group(multiple = false)]
pub struct PrivChange {
    /// Replace the privileges with these.
    #[arg(long, value_delimiter = ',')]
    set: Option<Vec<String>>,
    /// Add these privileges.
    #[arg(long, value_delimiter = ',')]
    grant: Option<Vec<String>>,
    /// Remove these privileges.
    #[arg(long, value_delimiter = ',')]
    revoke: Option<Vec<String>>,
}

impl PrivChange {
    fn body(&self) -> Option<Value> {
        let (op, list) = match (&self.set, &self.grant, &self.revoke) {
            (Some(l), _, _) => ("set", l),
            (_, Some(l), _) => ("grant", l),
            (_, _, Some(l)) => ("revoke", l),
            _ => return None,
        };
        Some(json!({ "operation": op, "privileges": list }))
    }
}

/// Administration commands.
#[derive(Subcommand)]
pub enum Admin {
    /// Show the authenticated user.
    Whoami,
    /// Change your own password.
    Passwd {
        /// Current password.
        #[arg(long)]
        old: String,
        /// New password.
        #[arg(long)]
        new: String,
    },
    /// Users.
    #[command(subcommand)]
    Users(Users),
    /// Groups.
    #[command(subcommand)]
    Groups(Groups),
    /// Spaces.
    #[command(subcommand)]
    Spaces(Spaces),
    /// Providers.
    #[command(subcommand)]
    Providers(Providers),
    /// Tokens.
    #[command(subcommand)]
    Tokens(Tokens),
    /// Root keys.
    #[command(subcommand)]
    Keys(Keys),
    /// Take a consistent copy of the store on the server (written under its data directory).
    Backup,
    /// Any API call: METHOD PATH [JSON], PATH relative to /api/v3/onezone.
    Request {
        /// HTTP method.
        method: String,
        /// Path, e.g. /user.
        path: String,
        /// JSON body.
        body: Option<String>,
    },
}

/// User commands.
#[derive(Subcommand)]
pub enum Users {
    /// List user ids.
    List,
    /// Create a user.
    Create {
        /// Login name.
        name: String,
        /// Password.
        #[arg(long)]
        password: String,
    },
    /// Show a user.
    Show {
        /// User id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete a user and all their memberships.
    Delete {
        /// User id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Show or change a user's zone privileges.
    Privileges {
        /// User id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        change: PrivChange,
    },
}

/// Group commands.
#[derive(Subcommand)]
pub enum Groups {
    /// List group ids (needs list_groups).
    List,
    /// Create a group (you get all group privileges).
    Create {
        /// Name.
        name: String,
        /// Onezone group type.
        #[arg(long = "type", value_name = "TYPE", default_value = "role")]
        kind: ozmint::model::GroupType,
    },
    /// Show a group.
    Show {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Rename a group.
    Rename {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// New name.
        name: String,
    },
    /// Delete a group and all its relations.
    Delete {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List direct users.
    Users {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List direct child groups.
    Children {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List users who belong directly or through child groups.
    EffectiveUsers {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Add a user (default member privileges).
    AddUser {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// User id.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Remove a user.
    RemoveUser {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// User id.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Add a child group (cycles are refused).
    AddChild {
        /// Parent group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Child group id.
        #[arg(allow_hyphen_values = true)]
        child: String,
    },
    /// Remove a child group.
    RemoveChild {
        /// Parent group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Child group id.
        #[arg(allow_hyphen_values = true)]
        child: String,
    },
    /// Show or change the privileges of a user or child group in the group.
    Privileges {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Of this user.
        #[arg(
            long,
            allow_hyphen_values = true,
            conflicts_with = "child",
            required_unless_present = "child"
        )]
        user: Option<String>,
        /// Of this child group.
        #[arg(long, allow_hyphen_values = true)]
        child: Option<String>,
        #[command(flatten)]
        change: PrivChange,
    },
}

/// Space commands.
#[derive(Subcommand)]
pub enum Spaces {
    /// List space ids (needs list_spaces).
    List,
    /// Create a space (you get all space privileges).
    Create {
        /// Name.
        name: String,
    },
    /// Show a space.
    Show {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Rename a space.
    Rename {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// New name.
        name: String,
    },
    /// Delete a space and all its relations.
    Delete {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List direct users.
    Users {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List groups.
    Groups {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List users who belong directly or through groups.
    EffectiveUsers {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List supporting providers.
    Providers {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Add a user (default member privileges).
    AddUser {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// User id.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Remove a user.
    RemoveUser {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// User id.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Add a group (default member privileges).
    AddGroup {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        group: String,
    },
    /// Remove a group.
    RemoveGroup {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        group: String,
    },
    /// Show or change the privileges of a user or group in the space.
    Privileges {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Of this user.
        #[arg(
            long,
            allow_hyphen_values = true,
            conflicts_with = "group",
            required_unless_present = "group"
        )]
        user: Option<String>,
        /// Of this group.
        #[arg(long, allow_hyphen_values = true)]
        group: Option<String>,
        #[command(flatten)]
        change: PrivChange,
    },
}

/// Provider commands.
#[derive(Subcommand)]
pub enum Providers {
    /// Register a provider; prints its id and root token.
    Register {
        /// Name.
        name: String,
        /// Domain.
        domain: String,
    },
    /// List provider ids.
    List,
}

/// Token commands.
#[derive(Subcommand)]
pub enum Tokens {
    /// Mint a space support token.
    Support {
        /// Space id.
        #[arg(allow_hyphen_values = true)]
        space: String,
    },
    /// Mint a space creation token for a group.
    CreateSpace {
        /// Group id.
        #[arg(allow_hyphen_values = true)]
        group: String,
    },
    /// Mint an access token for yourself.
    Access,
    /// List the invite tokens of a space or group.
    List {
        /// Of this space.
        #[arg(
            long,
            allow_hyphen_values = true,
            conflicts_with = "group",
            required_unless_present = "group"
        )]
        space: Option<String>,
        /// Of this group.
        #[arg(long, allow_hyphen_values = true)]
        group: Option<String>,
    },
    /// Revoke a token by identifier.
    Revoke {
        /// Token identifier (43 characters) or the token itself.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Describe a token.
    Examine {
        /// The token.
        token: String,
    },
}

/// Root key commands.
#[derive(Subcommand)]
pub enum Keys {
    /// List root keys.
    List,
    /// Add a new current root key.
    Rotate,
    /// Retire a key: tokens signed with it stop verifying.
    Retire {
        /// Key id.
        id: u32,
    },
}

/// One API call.
struct Call(Method, String, Option<Value>);

fn get(path: String) -> Call {
    Call(Method::GET, path, None)
}

fn privileges(base: String, change: &PrivChange) -> Call {
    match change.body() {
        Some(b) => Call(Method::PATCH, base, Some(b)),
        None => get(base),
    }
}

fn call_for(cmd: Admin) -> Result<Call, String> {
    use Method as M;
    Ok(match cmd {
        Admin::Whoami => get("/user".into()),
        Admin::Passwd { old, new } => Call(
            M::PATCH,
            "/user/password".into(),
            Some(json!({ "oldPassword": old, "newPassword": new })),
        ),
        Admin::Users(c) => match c {
            Users::List => get("/users".into()),
            Users::Create { name, password } => Call(
                M::POST,
                "/users".into(),
                Some(json!({ "username": name, "password": password })),
            ),
            Users::Show { id } => get(format!("/users/{id}")),
            Users::Delete { id } => Call(M::DELETE, format!("/users/{id}"), None),
            Users::Privileges { id, change } => {
                privileges(format!("/users/{id}/privileges"), &change)
            }
        },
        Admin::Groups(c) => match c {
            Groups::List => get("/groups".into()),
            Groups::Create { name, kind } => Call(
                M::POST,
                "/user/groups".into(),
                Some(json!({ "name": name, "type": kind.as_str() })),
            ),
            Groups::Show { id } => get(format!("/groups/{id}")),
            Groups::Rename { id, name } => Call(
                M::PATCH,
                format!("/groups/{id}"),
                Some(json!({ "name": name })),
            ),
            Groups::Delete { id } => Call(M::DELETE, format!("/groups/{id}"), None),
            Groups::Users { id } => get(format!("/groups/{id}/users")),
            Groups::Children { id } => get(format!("/groups/{id}/children")),
            Groups::EffectiveUsers { id } => get(format!("/groups/{id}/effective_users")),
            Groups::AddUser { id, user } => {
                Call(M::PUT, format!("/groups/{id}/users/{user}"), None)
            }
            Groups::RemoveUser { id, user } => {
                Call(M::DELETE, format!("/groups/{id}/users/{user}"), None)
            }
            Groups::AddChild { id, child } => {
                Call(M::PUT, format!("/groups/{id}/children/{child}"), None)
            }
            Groups::RemoveChild { id, child } => {
                Call(M::DELETE, format!("/groups/{id}/children/{child}"), None)
            }
            Groups::Privileges {
                id,
                user,
                child,
                change,
            } => {
                let path = match (user, child) {
                    (Some(u), _) => format!("/groups/{id}/users/{u}/privileges"),
                    (_, Some(c)) => format!("/groups/{id}/children/{c}/privileges"),
                    _ => return Err("give --user or --child".into()),
                };
                privileges(path, &change)
            }
        },
        Admin::Spaces(c) => match c {
            Spaces::List => get("/spaces".into()),
            Spaces::Create { name } => Call(
                M::POST,
                "/user/spaces".into(),
                Some(json!({ "name": name })),
            ),
            Spaces::Show { id } => get(format!("/spaces/{id}")),
            Spaces::Rename { id, name } => Call(
                M::PATCH,
                format!("/spaces/{id}"),
                Some(json!({ "name": name })),
            ),
            Spaces::Delete { id } => Call(M::DELETE, format!("/spaces/{id}"), None),
            Spaces::Users { id } => get(format!("/spaces/{id}/users")),
            Spaces::Groups { id } => get(format!("/spaces/{id}/groups")),
            Spaces::EffectiveUsers { id } => get(format!("/spaces/{id}/effective_users")),
            Spaces::Providers { id } => get(format!("/spaces/{id}/providers")),
            Spaces::AddUser { id, user } => {
                Call(M::PUT, format!("/spaces/{id}/users/{user}"), None)
            }
            Spaces::RemoveUser { id, user } => {
                Call(M::DELETE, format!("/spaces/{id}/users/{user}"), None)
            }
            Spaces::AddGroup { id, group } => {
                Call(M::PUT, format!("/spaces/{id}/groups/{group}"), None)
            }
            Spaces::RemoveGroup { id, group } => {
                Call(M::DELETE, format!("/spaces/{id}/groups/{group}"), None)
            }
            Spaces::Privileges {
                id,
                user,
                group,
                change,
            } => {
                let path = match (user, group) {
                    (Some(u), _) => format!("/spaces/{id}/users/{u}/privileges"),
                    (_, Some(g)) => format!("/spaces/{id}/groups/{g}/privileges"),
                    _ => return Err("give --user or --group".into()),
                };
                privileges(path, &change)
            }
        },
        Admin::Providers(c) => match c {
            Providers::Register { name, domain } => Call(
                M::POST,
                "/providers".into(),
                Some(json!({ "name": name, "domain": domain })),
            ),
            Providers::List => get("/providers".into()),
        },
        Admin::Tokens(c) => match c {
            Tokens::Support { space } => {
                Call(M::POST, format!("/spaces/{space}/providers/token"), None)
            }
            Tokens::CreateSpace { group } => get(format!("/groups/{group}/spaces/token")),
            Tokens::Access => Call(M::POST, "/user/client_tokens".into(), None),
            Tokens::List { space, group } => match (space, group) {
                (Some(s), _) => get(format!("/spaces/{s}/tokens")),
                (_, Some(g)) => get(format!("/groups/{g}/tokens")),
                _ => return Err("give --space or --group".into()),
            },
            Tokens::Revoke { id } => Call(M::DELETE, format!("/tokens/{id}"), None),
            Tokens::Examine { token } => Call(
                M::POST,
                "/tokens/examine".into(),
                Some(json!({ "token": token })),
            ),
        },
        Admin::Keys(c) => match c {
            Keys::List => get("/keys".into()),
            Keys::Rotate => Call(M::POST, "/keys".into(), None),
            Keys::Retire { id } => Call(M::POST, format!("/keys/{id}/retire"), None),
        },
        Admin::Backup => Call(M::POST, "/backup".into(), None),
        Admin::Request { method, path, body } => {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("bad method {method}"))?;
            let body = match body {
                Some(b) => {
                    Some(serde_json::from_str(&b).map_err(|e| format!("body is not JSON: {e}"))?)
                }
                None => None,
            };
            Call(m, path, body)
        }
    })
}

/// Runs one admin command; prints the answer as JSON on stdout (errors on
/// stderr) and returns whether it succeeded.
pub async fn run(conn: Conn, cmd: Admin) -> Result<(), String> {
    let auth = match (conn.token, conn.password) {
        (Some(t), _) => ClientAuth::Token(t),
        (None, Some(p)) => ClientAuth::Basic(conn.user, p),
        (None, None) => {
            return Err("give --password (or OZMINT_PASSWORD) or --token (or OZMINT_TOKEN)".into())
        }
    };
    let ca = match &conn.ca {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?),
        None => None,
    };
    let client = Client::new(&conn.url, auth, conn.insecure, ca.as_deref())?;
    let Call(method, path, body) = call_for(cmd)?;
    let answer = client.call(method, &path, body).await?;
    let text = serde_json::to_string_pretty(&answer.output()).unwrap_or_default();
    if answer.ok() {
        crate::out(&text);
        Ok(())
    } else {
        Err(format!("HTTP {}: {text}", answer.status))
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    /// Identifiers are base64url: one in 32 starts with `-`, and parses as a
    /// value wherever an identifier goes, positional or after an option.
    #[test]
    fn identifiers_may_start_with_a_hyphen() {
        crate::Cli::command().debug_assert();
        for args in [
            &[
                "groups",
                "privileges",
                "-g1",
                "--child",
                "-g2",
                "--grant",
                "group_view_data",
            ][..],
            &["groups", "privileges", "-g1", "--user", "-u1"],
            &["spaces", "privileges", "-s1", "--group", "-g1"],
            &["spaces", "privileges", "-s1", "--user", "-u1"],
            &["tokens", "list", "--space", "-s1"],
            &["tokens", "list", "--group", "-g1"],
            &["groups", "add-child", "-g1", "-g2"],
        ] {
            let argv = ["ozmint", "admin"].into_iter().chain(args.iter().copied());
            if let Err(e) = crate::Cli::try_parse_from(argv) {
                panic!("{args:?}: {e}");
            }
        }
    }
}
