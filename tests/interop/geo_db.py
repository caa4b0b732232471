#!/usr/bin/env python3
"""Writes two tiny GeoLite2-style MaxMind databases for ozmint's geo tests.

Run with a Python that has mmdb-writer and netaddr installed (tests/it/geo.rs
sets up a virtual environment for them):

  geo_db.py DIR

writes DIR/asn.mmdb (GeoLite2-ASN layout: autonomous_system_number,
autonomous_system_organization; an IPv6 tree holding IPv4 as ::/96, as
MaxMind's own databases do) and DIR/country.mmdb (GeoLite2-Country layout:
continent.code, country.iso_code, country.is_in_european_union; an IPv4
tree). The networks are documentation and test ranges, with made-up data.
"""

import os
import sys

from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPSet

ASN = [
    ("192.0.2.0/24", 64500, "Example Net A"),
    ("198.51.100.0/25", 64501, "Example Net B"),
    ("203.0.113.7/32", 4200000000, "Example Net C (a 32-bit ASN)"),
]

COUNTRY = [
    # network, continent, country, in the EU
    ("192.0.2.0/24", "EU", "PL", True),
    ("198.51.100.0/25", "EU", "NO", False),
    ("198.51.100.128/25", "AS", "JP", False),
    ("203.0.113.0/24", "SA", "BR", False),
]


def write_asn(path):
    w = MMDBWriter(ip_version=6, ipv4_compatible=True,
                   database_type="GeoLite2-ASN", languages=["en"],
                   description="ozmint test ASN database")
    for net, asn, org in ASN:
        w.insert_network(IPSet([net]), {
            "autonomous_system_number": MmdbU32(asn),
            "autonomous_system_organization": org,
        })
    w.to_db_file(path)


def write_country(path):
    w = MMDBWriter(ip_version=4, database_type="GeoLite2-Country",
                   languages=["en"], description="ozmint test country database")
    for net, continent, country, eu in COUNTRY:
        record = {
            "continent": {"code": continent, "names": {"en": continent}},
            "country": {"iso_code": country, "names": {"en": country}},
        }
        if eu:
            record["country"]["is_in_european_union"] = True
        w.insert_network(IPSet([net]), record)
    w.to_db_file(path)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    write_asn(os.path.join(out, "asn.mmdb"))
    write_country(os.path.join(out, "country.mmdb"))
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
