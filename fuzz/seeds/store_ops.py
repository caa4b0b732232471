#!/usr/bin/env python3
"""Writes the store_ops seeds of fuzz/corpus/store_ops/ from readable scripts.

The byte format is documented on `testkit::fuzzing::store_ops`; this file
only spells it. Run from the repository root after changing the format:

    python3 fuzz/seeds/store_ops.py
"""
import os

OUT = os.path.join(os.path.dirname(__file__), "..", "corpus", "store_ops")

# Zone privilege profiles (testkit::fuzzing::zone_profile).
NONE, ALL, SPACES_REL, GROUPS_REL, LIST_GC, SET_PRIVS, USER_ADMIN = 0, 1, 2, 3, 4, 5, 6
PROVIDERS_CREATE, TOKENS_MANAGE, GROUP_MEMBERS, SPACE_MEMBERS, PROVIDERS_OF_SPACE = 7, 8, 9, 10, 11
# User names (testkit::fuzzing::user_name).
ALICE, BOB, CAROL, DAVE, EVE = 0, 1, 2, 3, 4
# Membership kinds.
GROUP_USERS, GROUP_CHILDREN, SPACE_USERS, SPACE_GROUPS = 0, 1, 2, 3
# Container names (% 8): 0 blank, 1 too long, 2 control character, 6 "team".
BLANK, TEAM = 0, 6
# Space privilege bits (SpacePrivilege order) and group privilege bits.
SP_ADD_PROVIDER = 1 << 6
GP_CREATE_SPACE_TOKEN = 1 << 9


def user(i, restricted=False):
    return (i & 0x3F) | (0x40 if restricted else 0)


def provider(i):
    return 0x80 | (i & 0x3F)


class Seq:
    def __init__(self):
        self.b = bytearray()

    def op(self, code, *args, swap=False):
        self.b.append(code | (0x80 if swap else 0))
        self.b.extend(args)
        return self

    # Entities
    def create_user(self, name, profile=NONE):
        return self.op(0, name, profile)

    def create_group(self, caller, name=TEAM, kind=0):
        return self.op(1, caller, name | (kind << 6))

    def create_space(self, caller, name=TEAM):
        return self.op(2, caller, name)

    def register_provider(self, caller, blank=False, expiring=False):
        return self.op(3, caller, (1 if blank else 0) | (2 if expiring else 0))

    def delete_group(self, caller, g):
        return self.op(4, caller, 0, g)

    def delete_space(self, caller, s):
        return self.op(4, caller, 1, s)

    def delete_user(self, caller, u):
        return self.op(5, caller, u)

    def delete_provider(self, p):
        return self.op(6, p)

    # Memberships
    def add(self, caller, kind, c, x):
        return self.op(7, caller, kind, c, x)

    def remove(self, caller, kind, c, x):
        return self.op(8, caller, kind, c, x)

    def privileges(self, caller, kind, c, x):
        return self.op(9, caller, kind, c, x)

    def change(self, caller, kind, c, x, how, bits, foreign=False):
        return self.op(10, caller, kind, c, x, how | (0x80 if foreign else 0),
                       bits & 0xFF, bits >> 8)

    def members(self, caller, kind, c, page=3):
        return self.op(11, caller, kind, c, page)

    def effective_users(self, caller, space, i, page=3):
        return self.op(12, caller, 1 if space else 0, i, page)

    def effective_privileges(self, caller, space, i, u):
        return self.op(13, caller, 1 if space else 0, i, u)

    def effective_children(self, caller, g, page=3):
        return self.op(14, caller, g, page)

    def mine(self, caller, spaces=False, page=3):
        return self.op(15, caller, 1 if spaces else 0, page)

    def list_all(self, caller, which, page=3):
        return self.op(16, caller, which, page)

    def get(self, caller, which, i):
        return self.op(17, caller, which, i)

    def users(self, caller, action, u, how=0, profile=NONE):
        return self.op(19, caller, action, u, how, profile)

    # Tokens
    def support_token(self, caller, s, expiring=False):
        return self.op(20, caller, 1 if expiring else 0, s)

    def space_token(self, caller, g, expiring=False):
        return self.op(21, caller, 1 if expiring else 0, g)

    def access_token(self, caller, expiring=False):
        return self.op(22, caller, 1 if expiring else 0)

    def revoke(self, caller, t, by_id=False):
        return self.op(23, caller, 1 if by_id else 0, t)

    def revoke_access(self, caller, t, by_id=False):
        return self.op(24, caller, 1 if by_id else 0, t)

    def verify(self, t):
        return self.op(25, 0, 0, 0, t)

    def verify_kind(self, t, kind):
        return self.op(25, 1, 0, kind, t)

    def examine(self, caller, t):
        return self.op(25, 2, caller, 0, t)

    def access_tokens(self, caller):
        return self.op(25, 3, caller)

    def invite_tokens(self, caller, space, i):
        return self.op(25, 4 if space else 5, caller, i)

    def authenticate(self, t, attenuate=0):
        return self.op(26, attenuate, t)

    def support_space(self, caller, t, size=1):
        return self.op(27, caller, size, TEAM, t)

    def create_space_with_token(self, caller, t, size=1, name=TEAM):
        return self.op(28, caller, size, name, t)

    def purge(self, limit, end_of_time=False):
        return self.op(29, limit | (4 if end_of_time else 0))

    def rotate(self, caller):
        return self.op(30, caller, 0, 0)

    def retire(self, caller, key):
        return self.op(30, caller, 1, key)

    def list_keys(self, caller):
        return self.op(30, caller, 2, 0)

    def compare(self):
        return self.op(31)


def seeds():
    s = {}
    # A space supported with a support token; the provider authenticates
    # with its own token; the token cannot be used twice.
    q = Seq().create_user(ALICE).create_user(BOB, PROVIDERS_CREATE)
    q.create_space(user(0)).register_provider(user(1))            # token 0
    q.support_token(user(0), 0)                                    # token 1
    q.support_space(provider(0), 1, size=3).support_space(provider(0), 1)
    q.get(user(0), 1, 0).get(user(0), 2, 0).invite_tokens(user(0), True, 0)
    q.authenticate(0).authenticate(0, attenuate=1).compare()
    s["support_flow"] = q
    # A provider creates a space for a group with a space creation token.
    q = Seq().create_user(ALICE).create_user(BOB, PROVIDERS_CREATE)
    q.create_group(user(0)).register_provider(user(1))             # token 0
    q.space_token(user(0), 0)                                       # token 1
    q.create_space_with_token(provider(0), 1, size=2)
    q.effective_privileges(user(0), True, 0, 0)
    q.members(user(0), SPACE_GROUPS, 0).invite_tokens(user(0), False, 0)
    q.create_space_with_token(provider(0), 1).compare()
    s["space_creation_flow"] = q
    # The issuer of a support token loses the privilege before it is used.
    q = Seq().create_user(ALICE).create_user(BOB, PROVIDERS_CREATE).create_user(CAROL)
    q.create_space(user(0)).register_provider(user(1))              # token 0
    q.add(user(0), SPACE_USERS, 0, 2)
    q.change(user(0), SPACE_USERS, 0, 2, 1, SP_ADD_PROVIDER)
    q.support_token(user(2), 0)                                      # token 1
    q.change(user(0), SPACE_USERS, 0, 2, 2, SP_ADD_PROVIDER)
    q.support_space(provider(0), 1).privileges(user(0), SPACE_USERS, 0, 2)
    q.verify(1).compare()
    s["issuer_loses_privilege"] = q
    # Nested groups: privileges through children, cycles refused, cascades.
    q = Seq().create_user(ALICE).create_user(BOB)
    q.create_group(user(0)).create_group(user(0)).create_group(user(0))
    q.add(user(0), GROUP_CHILDREN, 0, 1).add(user(0), GROUP_CHILDREN, 1, 2)
    q.add(user(0), GROUP_CHILDREN, 2, 0).add(user(0), GROUP_CHILDREN, 0, 0)
    q.add(user(0), GROUP_CHILDREN, 0, 1).add(user(0), GROUP_USERS, 2, 1)
    q.change(user(0), GROUP_CHILDREN, 1, 2, 1, GP_CREATE_SPACE_TOKEN)
    q.effective_privileges(user(1), False, 1, 1).effective_privileges(user(1), False, 0, 1)
    q.effective_users(user(0), False, 0).effective_children(user(0), 0, page=0)
    q.space_token(user(1), 1).compare()
    q.delete_group(user(0), 1).effective_users(user(0), False, 0).compare()
    s["nested_groups_and_cycles"] = q
    # Root keys rotated and retired through one instance, used through the
    # other: its cached keys must follow.
    q = Seq().create_user(ALICE, ALL).access_token(user(0))          # token 0
    q.rotate(user(0)).access_token(user(0))                           # token 1
    q.retire(user(0), 1).verify(0).verify(1).access_tokens(user(0))
    q.authenticate(0).list_keys(user(0)).retire(user(0), 2).retire(user(0), 3)
    q.rotate(user(0)).verify(1).compare()
    s["keys_across_instances"] = q
    # Tokens minted expired, refused, purged; others stay.
    q = Seq().create_user(ALICE, ALL).create_space(user(0))
    q.support_token(user(0), 0, expiring=True)                        # token 0
    q.support_token(user(0), 0)                                        # token 1
    q.access_token(user(0), expiring=True)                             # token 2
    q.verify(0).authenticate(2).access_tokens(user(0))
    q.purge(0).purge(3).purge(0, end_of_time=True).compare()
    q.purge(1, end_of_time=True).verify(1).compare()
    s["expiry_and_purge"] = q
    # Mint, verify, examine, revoke by id and by token, consume.
    q = Seq().create_user(ALICE, ALL).create_user(BOB).create_space(user(0))
    q.register_provider(user(0))                                       # token 0
    q.support_token(user(0), 0).access_token(user(1))                  # tokens 1, 2
    q.verify_kind(1, 0).verify_kind(1, 2).examine(user(1), 1).examine(user(0), 1)
    q.revoke(user(1), 1).revoke_access(user(1), 2, by_id=True).verify(2)
    q.revoke(user(0), 1, by_id=True).support_space(provider(0), 1)
    q.support_token(user(0), 0).support_space(provider(0), 3)         # token 3
    q.revoke(user(0), 3).examine(user(0), 3).compare()
    s["token_lifecycle"] = q
    # Deleting users, groups, spaces and providers takes their relations
    # and tokens along; deleted callers keep failing.
    q = Seq().create_user(ALICE, ALL).create_user(BOB)
    q.create_group(user(0)).create_space(user(0))
    q.add(user(0), GROUP_USERS, 0, 1).add(user(0), SPACE_GROUPS, 0, 0)
    q.register_provider(user(0)).support_token(user(0), 0)            # tokens 0, 1
    q.support_space(provider(0), 1).access_token(user(1))              # token 2
    q.effective_privileges(user(1), True, 0, 1).compare()
    q.delete_user(user(0), 1).create_group(user(1)).access_token(user(1))  # token 3
    q.authenticate(3).authenticate(2).mine(user(1))
    q.delete_space(user(0), 0).delete_provider(0).authenticate(0)
    q.delete_group(user(0), 0).compare()
    s["delete_cascades"] = q
    # Privileges missing, ends missing, invalid input.
    q = Seq().create_user(ALICE).create_user(BOB).create_group(user(0))
    q.delete_group(user(1), 0).add(user(1), GROUP_USERS, 0, 1)
    q.list_all(user(1), 0).rotate(user(1)).create_group(user(1), BLANK)
    q.access_token(user(0, restricted=True)).create_group(provider(0))
    q.privileges(user(0), GROUP_USERS, 1, 0).privileges(user(0), GROUP_USERS, 0, 2)
    q.change(user(0), GROUP_USERS, 0, 0, 3, 0).change(user(0), GROUP_USERS, 0, 0, 0, 1, foreign=True)
    q.users(user(1), 2, 0).users(user(1), 1, 1).users(user(1), 4, 0).compare()
    s["missing_ends"] = q
    # Login names: invalid ones refused, duplicates refused, names reused
    # after a deletion.
    q = Seq()
    for n in [8, 9, 10, 11, 12, 13, 15, ALICE, ALICE, BOB, 6, 7, 14]:
        q.create_user(n, USER_ADMIN if n == ALICE else NONE)
    q.delete_user(user(0), 1).create_user(BOB).users(user(0), 3, 0, how=1).compare()
    s["user_names"] = q
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, seq in seeds().items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes(seq.b))


if __name__ == "__main__":
    main()
