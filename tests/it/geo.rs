//! GeoIP lookups on real MaxMind databases: `tests/interop/geo_db.py`
//! writes a tiny ASN database and a tiny country database with the PyPI
//! package mmdb-writer (in a virtual environment at `target/geo-venv`, set
//! up like pymacaroons' in [`super::interop`], with the same loud skip),
//! and `ozmint::geo::MaxMind` reads them to check `asn`, `geo.country` and
//! `geo.region` caveats.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::OnceLock;

use ozmint::geo::{GeoError, GeoLookup, Location, MaxMind};
use ozmint::token::caveat::{ListFilter, Region};
use ozmint::token::v2::{
    self, Context, Identifier, Persistence, Token, TokenSubject, TokenType, Unsatisfied,
    V2Identifier,
};
use ozmint::token::Caveat;

use super::interop::{manifest_dir, run_ok, venv_python, Python, Venv, RUN_TIMEOUT};

const GEO_VENV: Venv = Venv {
    dir: "target/geo-venv",
    packages: &["mmdb-writer==0.2.7", "netaddr==1.3.0"],
    probe: "import importlib.metadata as m, mmdb_writer, netaddr; print(m.version('mmdb-writer'))",
    what: "GeoIP database test (mmdb-writer)",
};

fn python() -> Option<Python> {
    static VENV: OnceLock<Result<Python, String>> = OnceLock::new();
    venv_python(&GEO_VENV, &VENV)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn location(country: &str, continent: &str, eu: bool) -> Location {
    Location {
        country: Some(country.into()),
        continent: Some(continent.into()),
        in_european_union: eu,
    }
}

#[test]
fn maxmind_databases_answer_the_geo_caveats() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    run_ok(
        Command::new(&py.exe)
            .arg(manifest_dir().join("tests/interop/geo_db.py"))
            .arg(dir.path()),
        RUN_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("geo_db.py: {e}"));
    let asn_db = dir.path().join("asn.mmdb");
    let country_db = dir.path().join("country.mmdb");
    let geo = MaxMind::open(Some(&asn_db), Some(&country_db)).expect("open the databases");
    assert!(geo.has_asn() && geo.has_country());

    // The ASN database (an IPv6 tree, IPv4 under ::/96, as MaxMind's).
    assert_eq!(geo.asn(ip("192.0.2.55")), Ok(64500));
    assert_eq!(geo.asn(ip("198.51.100.3")), Ok(64501));
    assert_eq!(geo.asn(ip("203.0.113.7")), Ok(4_200_000_000));
    for unknown in ["203.0.113.8", "198.51.100.200", "8.8.8.8", "10.0.0.1"] {
        assert_eq!(geo.asn(ip(unknown)), Err(GeoError::NotFound), "{unknown}");
    }
    // The country database (an IPv4 tree).
    assert_eq!(
        geo.location(ip("192.0.2.1")),
        Ok(location("PL", "EU", true))
    );
    assert_eq!(
        geo.location(ip("198.51.100.127")),
        Ok(location("NO", "EU", false))
    );
    assert_eq!(
        geo.location(ip("198.51.100.128")),
        Ok(location("JP", "AS", false))
    );
    assert_eq!(
        geo.location(ip("203.0.113.200")),
        Ok(location("BR", "SA", false))
    );
    assert_eq!(geo.location(ip("10.0.0.1")), Err(GeoError::NotFound));

    // The caveats, verified with these databases.
    let secret = b"geo secret";
    let id = Identifier::V2(
        V2Identifier::new(
            Persistence::Named,
            TokenSubject::user("u1").unwrap(),
            TokenType::ACCESS,
            "geo-token",
        )
        .unwrap(),
    );
    let verify = |caveat: &Caveat, peer: &str, geo: &dyn GeoLookup| {
        let token = v2::mint(
            "zone.example.org",
            &id,
            secret,
            std::slice::from_ref(caveat),
        )
        .unwrap();
        let ctx = Context::new(1_700_000_000).peer_ip(ip(peer)).geo(geo);
        match Token::parse(&token).unwrap().verify(secret, &ctx) {
            Ok(_) => None,
            Err(v2::Error::CaveatUnverified(f)) => {
                assert_eq!(&f.caveat, caveat);
                Some(f.reason)
            }
            Err(e) => panic!("{caveat}: {e:?}"),
        }
    };
    let asn = Caveat::Asn(vec![64500, 4_200_000_000]);
    assert_eq!(verify(&asn, "192.0.2.200", &geo), None);
    assert_eq!(verify(&asn, "203.0.113.7", &geo), None);
    assert_eq!(
        verify(&asn, "198.51.100.1", &geo),
        Some(Unsatisfied::AsnNotAllowed(64501))
    );
    assert_eq!(
        verify(&asn, "8.8.4.4", &geo),
        Some(Unsatisfied::Geo(GeoError::NotFound))
    );
    let nordic = Caveat::Country {
        filter: ListFilter::Whitelist,
        list: vec!["NO".into(), "SE".into()],
    };
    assert_eq!(verify(&nordic, "198.51.100.5", &geo), None);
    assert_eq!(
        verify(&nordic, "192.0.2.5", &geo),
        Some(Unsatisfied::CountryNotAllowed(Some("PL".into())))
    );
    let not_jp = Caveat::Country {
        filter: ListFilter::Blacklist,
        list: vec!["JP".into()],
    };
    assert_eq!(verify(&not_jp, "192.0.2.5", &geo), None);
    assert!(verify(&not_jp, "198.51.100.250", &geo).is_some());
    let eu = Caveat::Region {
        filter: ListFilter::Whitelist,
        list: vec![Region::EuropeanUnion],
    };
    assert_eq!(verify(&eu, "192.0.2.5", &geo), None);
    assert_eq!(
        verify(&eu, "198.51.100.5", &geo),
        Some(Unsatisfied::RegionNotAllowed(vec![Region::Europe]))
    );
    let not_europe = Caveat::Region {
        filter: ListFilter::Blacklist,
        list: vec![Region::Europe],
    };
    assert_eq!(verify(&not_europe, "203.0.113.1", &geo), None);
    assert_eq!(
        verify(&not_europe, "192.0.2.5", &geo),
        Some(Unsatisfied::RegionNotAllowed(vec![
            Region::Europe,
            Region::EuropeanUnion
        ]))
    );
    assert_eq!(
        verify(&not_europe, "10.9.9.9", &geo),
        Some(Unsatisfied::Geo(GeoError::NotFound))
    );

    // With only one of the databases, the other's caveats fail, saying why.
    let asn_only = MaxMind::open(Some(&asn_db), None).unwrap();
    assert_eq!(verify(&asn, "192.0.2.200", &asn_only), None);
    assert_eq!(
        verify(&nordic, "198.51.100.5", &asn_only),
        Some(Unsatisfied::Geo(GeoError::NoDatabase))
    );
    let country_only = MaxMind::open(None, Some(&country_db)).unwrap();
    assert_eq!(
        verify(&asn, "192.0.2.200", &country_only),
        Some(Unsatisfied::Geo(GeoError::NoDatabase))
    );
    // A country database given as the ASN one has no ASNs to tell.
    let swapped = MaxMind::open(Some(&country_db), Some(&asn_db)).unwrap();
    assert_eq!(swapped.asn(ip("192.0.2.1")), Err(GeoError::NotFound));
}
