//! Whole data sets in and out of a store (the format of `data/demo.json`).
//!
//! A data set is JSON: users (with a plain `password`, hashed on import, or an
//! exported `password_hash`), groups with their users and child groups, spaces
//! with their users, groups and supporting providers, and providers. Privilege
//! lists are arrays of names, or `"all"`, or `"member"` (the member defaults).
//! Token records and root keys are not part of a data set.

use serde::{Deserialize, Serialize};

use super::relations::{GROUP_CHILDREN, GROUP_USERS, SPACE_GROUPS, SPACE_PROVIDERS, SPACE_USERS};
use super::{Store, PAGE_MAX};
use crate::error::{Error, Result};
use crate::model::{
    now, GroupPrivileges, GroupType, Id, PrivSet, Privilege, SpacePrivileges, Support, User,
    ZonePrivileges,
};

/// A whole data set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Users.
    #[serde(default)]
    pub users: Vec<DatasetUser>,
    /// Groups with their members.
    #[serde(default)]
    pub groups: Vec<DatasetGroup>,
    /// Spaces with their members and supports.
    #[serde(default)]
    pub spaces: Vec<DatasetSpace>,
    /// Providers.
    #[serde(default)]
    pub providers: Vec<DatasetProvider>,
}

/// A user of a data set.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetUser {
    /// Id (43 characters).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Plain password (demo and hand-written sets only; hashed on import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Argon2id PHC hash (exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Zone privileges.
    #[serde(default)]
    pub zone_privileges: Privs,
}

impl std::fmt::Debug for DatasetUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A member (user, group or provider) of a group or space, with its privileges.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetMember {
    /// Member id.
    pub id: String,
    /// Privileges of the member.
    #[serde(default)]
    pub privileges: Privs,
}

/// A group of a data set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetGroup {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Onezone's group type; `role` when absent.
    #[serde(default, rename = "type")]
    pub kind: GroupType,
    /// Direct users.
    #[serde(default)]
    pub users: Vec<DatasetMember>,
    /// Direct child groups.
    #[serde(default)]
    pub children: Vec<DatasetMember>,
}

/// A space of a data set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpace {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Direct users.
    #[serde(default)]
    pub users: Vec<DatasetMember>,
    /// Direct groups.
    #[serde(default)]
    pub groups: Vec<DatasetMember>,
    /// Supporting providers.
    #[serde(default)]
    pub providers: Vec<DatasetSupport>,
}

/// A support of a space by a provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSupport {
    /// Provider id.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
}

/// A provider of a data set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetProvider {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Domain.
    pub domain: String,
}

/// A privilege list: names, `"all"` or `"member"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Privs {
    /// `"all"` or `"member"`.
    Preset(String),
    /// Explicit names.
    List(Vec<String>),
}

impl Default for Privs {
    fn default() -> Self {
        Privs::List(Vec::new())
    }
}

impl Privs {
    fn resolve<P: Privilege>(&self, member: PrivSet<P>) -> Result<PrivSet<P>> {
        match self {
            Privs::Preset(p) if p == "all" => Ok(PrivSet::all()),
            Privs::Preset(p) if p == "member" => Ok(member),
            Privs::Preset(p) => Err(Error::Invalid(format!("unknown privilege preset {p:?}"))),
            Privs::List(names) => PrivSet::from_names(names)
                .map_err(|n| Error::Invalid(format!("unknown privilege {n:?}"))),
        }
    }

    fn of<P: Privilege>(set: PrivSet<P>) -> Self {
        Privs::List(set.names().into_iter().map(String::from).collect())
    }
}

fn id(s: &str) -> Result<Id> {
    s.parse()
        .map_err(|_| Error::Invalid(format!("bad id {s:?} in data set")))
}

impl Dataset {
    /// Parses a data set from JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("data set: {e}")))
    }

    /// The data set as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl Store {
    /// Loads a data set. Plain passwords are hashed with `hash`. Entities are
    /// created before relations so the file order does not matter.
    pub fn import(&self, set: &Dataset, hash: impl Fn(&str) -> Result<String>) -> Result<()> {
        for u in &set.users {
            let password_hash = match (&u.password, &u.password_hash) {
                (Some(p), None) => hash(p)?,
                (None, Some(h)) => h.clone(),
                _ => {
                    return Err(Error::Invalid(format!(
                        "user {:?} needs exactly one of password and password_hash",
                        u.username
                    )))
                }
            };
            let user = User {
                name: u.username.clone(),
                password_hash,
                zone_privileges: u.zone_privileges.resolve(ZonePrivileges::empty())?,
                created: now(),
            };
            self.insert_user(id(&u.id)?, &user)?;
        }
        for g in &set.groups {
            self.insert_group(id(&g.id)?, &g.name, g.kind, None)?;
        }
        for s in &set.spaces {
            self.insert_space(id(&s.id)?, &s.name, None)?;
        }
        for p in &set.providers {
            self.insert_provider(id(&p.id)?, &p.name, &p.domain)?;
        }
        for g in &set.groups {
            let gid = id(&g.id)?;
            for m in &g.users {
                let p = m.privileges.resolve(GroupPrivileges::member_default())?;
                self.put_relation(&GROUP_USERS, &gid, &id(&m.id)?, &p)?;
            }
            for m in &g.children {
                let p = m.privileges.resolve(GroupPrivileges::member_default())?;
                self.put_relation(&GROUP_CHILDREN, &gid, &id(&m.id)?, &p)?;
            }
        }
        for s in &set.spaces {
            let sid = id(&s.id)?;
            for m in &s.users {
                let p = m.privileges.resolve(SpacePrivileges::member_default())?;
                self.put_relation(&SPACE_USERS, &sid, &id(&m.id)?, &p)?;
            }
            for m in &s.groups {
                let p = m.privileges.resolve(SpacePrivileges::member_default())?;
                self.put_relation(&SPACE_GROUPS, &sid, &id(&m.id)?, &p)?;
            }
            for m in &s.providers {
                let support = Support {
                    size: m.size,
                    since: now(),
                };
                self.put_relation(&SPACE_PROVIDERS, &sid, &id(&m.id)?, &support)?;
            }
        }
        Ok(())
    }

    /// Writes the whole store (but tokens and keys) as a data set.
    pub fn export(&self) -> Result<Dataset> {
        let mut set = Dataset::default();
        for (uid, u) in all(|after| self.users(after, PAGE_MAX))? {
            set.users.push(DatasetUser {
                id: uid.to_string(),
                username: u.name,
                password: None,
                password_hash: Some(u.password_hash),
                zone_privileges: Privs::of(u.zone_privileges),
            });
        }
        for (gid, g) in all(|after| self.groups(after, PAGE_MAX))? {
            set.groups.push(DatasetGroup {
                id: gid.to_string(),
                name: g.name,
                kind: g.kind,
                users: members(all(|a| self.members(&GROUP_USERS, &gid, a, PAGE_MAX))?),
                children: members(all(|a| self.members(&GROUP_CHILDREN, &gid, a, PAGE_MAX))?),
            });
        }
        for (sid, s) in all(|after| self.spaces(after, PAGE_MAX))? {
            set.spaces.push(DatasetSpace {
                id: sid.to_string(),
                name: s.name,
                users: members(all(|a| self.members(&SPACE_USERS, &sid, a, PAGE_MAX))?),
                groups: members(all(|a| self.members(&SPACE_GROUPS, &sid, a, PAGE_MAX))?),
                providers: all(|a| self.members(&SPACE_PROVIDERS, &sid, a, PAGE_MAX))?
                    .into_iter()
                    .map(|(p, s)| DatasetSupport {
                        id: p.to_string(),
                        size: s.size,
                    })
                    .collect(),
            });
        }
        for (pid, p) in all(|after| self.providers(after, PAGE_MAX))? {
            set.providers.push(DatasetProvider {
                id: pid.to_string(),
                name: p.name,
                domain: p.domain,
            });
        }
        Ok(set)
    }
}

fn members<P: Privilege>(list: Vec<(Id, PrivSet<P>)>) -> Vec<DatasetMember> {
    list.into_iter()
        .map(|(id, p)| DatasetMember {
            id: id.to_string(),
            privileges: Privs::of(p),
        })
        .collect()
}

/// Collects every page of a paged listing.
fn all<T>(mut page: impl FnMut(Option<Id>) -> Result<Vec<(Id, T)>>) -> Result<Vec<(Id, T)>> {
    let mut out: Vec<(Id, T)> = Vec::new();
    loop {
        let next = page(out.last().map(|(id, _)| *id))?;
        if next.is_empty() {
            return Ok(out);
        }
        out.extend(next);
    }
}
