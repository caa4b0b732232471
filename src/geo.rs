//! GeoIP lookups for the `asn`, `geo.country` and `geo.region` caveats,
//! from MaxMind databases (GeoLite2-ASN and GeoLite2-Country, or any
//! database with the same record layout), read with the `maxminddb` crate.
//!
//! The token core only sees the [`GeoLookup`] trait; this module is the one
//! implementation, and the only one that reads files. Without a database of
//! a kind, the caveats that need it fail verification with
//! [`GeoError::NoDatabase`].
//!
//! Records read: ASN databases `autonomous_system_number`; country
//! databases `country.iso_code`, `country.is_in_european_union` and
//! `continent.code`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

pub use crate::token::v2::{GeoError, GeoLookup, Location};

/// Why a database could not be opened.
#[derive(Debug)]
pub struct OpenError {
    path: String,
    why: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot open GeoIP database {}: {}", self.path, self.why)
    }
}

impl std::error::Error for OpenError {}

/// GeoIP databases read into memory.
#[derive(Default)]
pub struct MaxMind {
    asn: Option<Reader<Vec<u8>>>,
    country: Option<Reader<Vec<u8>>>,
}

impl fmt::Debug for MaxMind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind =
            |r: &Option<Reader<Vec<u8>>>| r.as_ref().map(|r| r.metadata().database_type.clone());
        f.debug_struct("MaxMind")
            .field("asn", &kind(&self.asn))
            .field("country", &kind(&self.country))
            .finish()
    }
}

#[derive(Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<u32>,
}

#[derive(Deserialize)]
struct CountryPart<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    is_in_european_union: Option<bool>,
}

#[derive(Deserialize)]
struct ContinentPart<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow)]
    country: Option<CountryPart<'a>>,
    #[serde(borrow)]
    continent: Option<ContinentPart<'a>>,
}

fn open(path: &Path) -> Result<Reader<Vec<u8>>, OpenError> {
    let bytes = std::fs::read(path).map_err(|e| OpenError {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    Reader::from_source(bytes).map_err(|e| OpenError {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

impl MaxMind {
    /// Reads the databases that are given (either may be absent).
    pub fn open(asn: Option<&Path>, country: Option<&Path>) -> Result<MaxMind, OpenError> {
        Ok(MaxMind {
            asn: asn.map(open).transpose()?,
            country: country.map(open).transpose()?,
        })
    }

    /// Whether an ASN database is loaded.
    pub fn has_asn(&self) -> bool {
        self.asn.is_some()
    }

    /// Whether a country database is loaded.
    pub fn has_country(&self) -> bool {
        self.country.is_some()
    }
}

fn record<'a, T: Deserialize<'a>>(
    reader: &'a Option<Reader<Vec<u8>>>,
    ip: Ipv4Addr,
) -> Result<T, GeoError> {
    let reader = reader.as_ref().ok_or(GeoError::NoDatabase)?;
    let found = reader
        .lookup(IpAddr::V4(ip))
        .map_err(|e| GeoError::Failed(e.to_string()))?;
    found
        .decode::<T>()
        .map_err(|e| GeoError::Failed(e.to_string()))?
        .ok_or(GeoError::NotFound)
}

impl GeoLookup for MaxMind {
    fn asn(&self, ip: Ipv4Addr) -> Result<u32, GeoError> {
        record::<AsnRecord>(&self.asn, ip)?
            .autonomous_system_number
            .ok_or(GeoError::NotFound)
    }

    fn location(&self, ip: Ipv4Addr) -> Result<Location, GeoError> {
        let r = record::<CountryRecord<'_>>(&self.country, ip)?;
        let (country, in_eu) = match r.country {
            Some(c) => (
                c.iso_code.map(str::to_owned),
                c.is_in_european_union.unwrap_or(false),
            ),
            None => (None, false),
        };
        Ok(Location {
            country,
            continent: r.continent.and_then(|c| c.code).map(str::to_owned),
            in_european_union: in_eu,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_databases_every_lookup_says_so() {
        let geo = MaxMind::default();
        let ip = Ipv4Addr::new(149, 156, 16, 7);
        assert_eq!(geo.asn(ip), Err(GeoError::NoDatabase));
        assert_eq!(geo.location(ip), Err(GeoError::NoDatabase));
        assert!(!geo.has_asn() && !geo.has_country());
    }

    #[test]
    fn unreadable_databases_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.mmdb");
        let e = MaxMind::open(Some(&missing), None).unwrap_err();
        assert!(e.to_string().contains("missing.mmdb"), "{e}");
        let junk = dir.path().join("junk.mmdb");
        std::fs::write(&junk, b"not a database").unwrap();
        let e = MaxMind::open(None, Some(&junk)).unwrap_err();
        assert!(e.to_string().contains("junk.mmdb"), "{e}");
    }
}
