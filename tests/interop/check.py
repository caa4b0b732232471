#!/usr/bin/env python3
"""Checks ozmint's tokens with pymacaroons, an independent implementation.

Run with a Python that has pymacaroons installed (tests/interop.rs sets up a
virtual environment for it). Two modes:

  check.py vectors PATH/TO/vectors.json
      For every golden vector: un-escape by Onedata's rule, deserialize with
      pymacaroons, compare location, identifier and caveats with the JSON,
      verify the signature with the token secret (pymacaroons derives the
      libmacaroons key from it itself), check that a wrong secret and a
      dropped caveat fail, and that pymacaroons serializes the macaroon back
      to the same bytes. Prints one summary line; exits 1 on any mismatch.

  check.py attenuate TOKEN CAVEAT
      Appends the first-party CAVEAT to TOKEN (escaped or plain) with
      pymacaroons and prints the result as pymacaroons serializes it: plain
      base64url without padding.

  check.py verify TOKEN SECRET_HEX
      Verifies TOKEN's signature chain with pymacaroons and the secret (any
      length, as Onedata's 20.02+ tokens have), accepting every caveat, and
      prints one JSON line: location, identifier, caveats, and "valid".
"""

import base64
import json
import re
import sys

from pymacaroons import Macaroon, Verifier
from pymacaroons.exceptions import MacaroonException

UNESCAPE = {"0": "0", "1": "_", "2": "-", "3": "/", "4": "+", "5": "="}
ESCAPE = {v: "0" + k for k, v in UNESCAPE.items()}

TOKEN_TYPES = {
    "space_support_token",
    "space_create_token",
    "access_token",
    "provider_token",
}


def unescape(token):
    """Reverses Onedata's escaping; None if the text is not validly escaped."""
    out = []
    i = 0
    while i < len(token):
        c = token[i]
        if c != "0":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(token) or token[i + 1] not in UNESCAPE:
            return None
        out.append(UNESCAPE[token[i + 1]])
        i += 2
    return "".join(out)


def escape(b64):
    return "".join(ESCAPE.get(c, c) for c in b64)


def pad(b64):
    return b64 + "=" * (-len(b64) % 4)


def deserialize(token):
    """A macaroon from the escaped form, falling back to plain base64."""
    token = token.strip()
    candidates = []
    plain = unescape(token)
    if plain is not None:
        candidates.append(plain)
    candidates.append(token)
    last = None
    for text in candidates:
        try:
            return Macaroon.deserialize(pad(text))
        except Exception as e:  # pymacaroons raises several types here
            last = e
    raise ValueError("not a macaroon: %r" % (last,))


def known_caveat(predicate):
    """The caveats ozmint's verifier understands (syntax only: the golden
    vectors must keep verifying after their `time <` has passed)."""
    if isinstance(predicate, bytes):
        predicate = predicate.decode("utf-8")
    if predicate.startswith("tokenType = "):
        return predicate[len("tokenType = "):] in TOKEN_TYPES
    m = re.fullmatch(r"time < ([0-9]{1,20})", predicate)
    return m is not None


def verifies(macaroon, secret, general=True):
    v = Verifier()
    if general:
        v.satisfy_general(known_caveat)
    try:
        return v.verify(macaroon, secret) is True
    except MacaroonException:
        return False


def check_vector(vec, by_name):
    """A list of problems with one vector (empty if none)."""
    name = vec["name"]
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append("%s: %s" % (name, what))

    plain = unescape(vec["token"])
    expect(plain == vec["token_plain"], "un-escaped token differs from token_plain")
    expect(escape(vec["token_plain"]) == vec["token"], "escaping token_plain differs")
    expect("=" not in vec["token_plain"], "token_plain is padded")
    if plain is None:
        return problems

    m = Macaroon.deserialize(pad(plain))
    expect(m.version == 1, "not a V1 macaroon (version %r)" % m.version)
    expect(m.location == vec["location"],
           "location %r != %r" % (m.location, vec["location"]))
    expect(m.identifier == vec["identifier"],
           "identifier %r != %r" % (m.identifier, vec["identifier"]))
    caveats = [c.caveat_id for c in m.caveats]
    expect(caveats == vec["caveats"], "caveats %r != %r" % (caveats, vec["caveats"]))
    expect(all(c.first_party() for c in m.caveats), "a caveat is not first-party")
    expect(m.signature == vec["signature_hex"],
           "signature %s != %s" % (m.signature, vec["signature_hex"]))
    # The unpadded base64url pymacaroons prints is exactly token_plain.
    expect(m.serialize() == vec["token_plain"],
           "pymacaroons re-serializes to different bytes")

    secret = bytes.fromhex(vec["token_secret_hex"])
    expect(len(secret) == 32, "token secret is not 32 bytes")
    expect(verifies(m, secret), "signature does not verify with the token secret")

    wrong = bytes([secret[0] ^ 1]) + secret[1:]
    expect(not verifies(m, wrong), "verifies with a wrong secret")
    root = bytes.fromhex(vec["root_key_hex"])
    expect(not verifies(m, root), "verifies with the root key instead of the token secret")
    expect(not verifies(m, secret, general=False),
           "verifies without anything satisfying its caveats")
    if m.caveats:
        dropped = Macaroon.deserialize(pad(plain))
        dropped.caveats.pop()
        expect(not verifies(dropped, secret), "verifies with its last caveat dropped")

    parent = vec.get("attenuates")
    if parent is not None:
        p = by_name.get(parent)
        expect(p is not None, "attenuates unknown vector %r" % parent)
        if p is not None:
            pm = Macaroon.deserialize(pad(p["token_plain"]))
            extra = vec["caveats"][len(p["caveats"]):]
            expect(vec["caveats"][:len(p["caveats"])] == p["caveats"] and len(extra) == 1,
                   "caveats are not the parent's plus one")
            if len(extra) == 1:
                att = pm.add_first_party_caveat(extra[0])
                expect(att.serialize() == vec["token_plain"],
                       "pymacaroons' attenuation of %s differs" % parent)
    return problems


def vectors_mode(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    vectors = data["vectors"]
    by_name = {v["name"]: v for v in vectors}
    problems = []
    for vec in vectors:
        try:
            found = check_vector(vec, by_name)
        except Exception as e:
            found = ["%s: %s: %s" % (vec.get("name"), type(e).__name__, e)]
        status = "ok" if not found else "FAILED"
        print("  %-26s %s" % (vec.get("name"), status))
        problems.extend(found)
    for p in problems:
        print("MISMATCH " + p)
    if not vectors:
        problems.append("no vectors")
    print("pymacaroons: %d vectors, %d checked ok, %d problems"
          % (len(vectors), len(vectors) - len({p.split(":")[0] for p in problems}),
             len(problems)))
    return 1 if problems else 0


def attenuate_mode(token, caveat):
    m = deserialize(token)
    print(m.add_first_party_caveat(caveat).serialize())
    return 0


def verify_mode(token, secret_hex):
    m = deserialize(token)
    v = Verifier()
    v.satisfy_general(lambda predicate: True)
    try:
        valid = v.verify(m, bytes.fromhex(secret_hex)) is True
    except MacaroonException:
        valid = False
    print(json.dumps({
        "location": m.location,
        "identifier": m.identifier,
        "caveats": [c.caveat_id for c in m.caveats],
        "valid": valid,
    }))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "vectors":
        return vectors_mode(argv[2])
    if len(argv) == 4 and argv[1] == "attenuate":
        return attenuate_mode(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "verify":
        return verify_mode(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
