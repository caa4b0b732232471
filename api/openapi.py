#!/usr/bin/env python3
"""Writes api/openapi.json, the OpenAPI 3.0 description of ozmint's REST API.

This script is the source of the document; the JSON beside it is generated
(`python3 api/openapi.py`), checked in, embedded in the binary with
include_str! and served at GET /api/v3/onezone/openapi.json. CI regenerates
it and fails on a difference. Standard library only.

Shapes and wording follow Onezone's rc14 swagger where ozmint follows Onezone;
paths marked (ozmint) are extensions. tests/it/openapi.rs checks that the
document names exactly the routes of src/http/routes.rs, validates it with
openapi-spec-validator and runs schemathesis against a live demo server.
"""

import json
import os
import sys

PREFIX = "/api/v3/onezone"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.json")

# The demo data set's entities (data/demo.json), as examples of path
# parameters, so that generated requests also reach existing entities.
DEMO_SPACE = "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc"
DEMO_GROUP = "HwUpk8jrwxKOe45uzLFX2GVC8lKEasj4q253sptVqF8"
GUEST_ID = "Gm4CMqtAjFgTyY1xLXFqjmbzTMF1E3IGbEXDBDKHz9I"
CAROL_ID = "c0Axi7YxZr9PlLmpBhH7bWoE1sQQ6ZAGiiEzq5T0hXw"

GROUP_PRIVILEGES = [
    "group_change_data", "group_invite_user", "group_remove_user",
    "group_join_space", "group_create_space", "group_set_privileges",
    "group_remove", "group_leave_space", "group_view_data",
    "group_create_space_token", "group_join_group", "group_invite_group",
    "group_remove_group",
]
SPACE_PRIVILEGES = [
    "space_invite_user", "space_remove_user", "space_invite_group",
    "space_remove_group", "space_set_privileges", "space_remove",
    "space_add_provider", "space_remove_provider", "space_change_data",
    "space_view_data", "space_manage_shares", "space_write_files",
]
# Onezone's names (20.02 and later) that requests may use as well; each
# means ozmint privileges (src/model.rs, `Privilege::ONEZONE`).
GROUP_PRIVILEGES_ONEZONE = [
    "group_view", "group_update", "group_delete", "group_view_privileges",
    "group_add_parent", "group_leave_parent", "group_add_child",
    "group_remove_child", "group_add_user", "group_add_space",
    "group_add_cluster", "group_leave_cluster", "group_create_handle_service",
    "group_leave_handle_service", "group_create_handle", "group_leave_handle",
    "group_add_harvester", "group_remove_harvester", "group_add_atm_inventory",
    "group_remove_atm_inventory",
]
SPACE_PRIVILEGES_ONEZONE = [
    "space_view", "space_update", "space_delete", "space_view_privileges",
    "space_manage_in_marketplace", "space_read_data", "space_write_data",
    "space_register_files", "space_view_views", "space_manage_views",
    "space_query_views", "space_view_indices", "space_manage_indices",
    "space_query_indices", "space_view_statistics", "space_view_changes_stream",
    "space_view_transfers", "space_schedule_replication",
    "space_cancel_replication", "space_schedule_eviction",
    "space_cancel_eviction", "space_view_qos", "space_manage_qos",
    "space_add_user", "space_add_group", "space_add_support",
    "space_remove_support", "space_invite_provider", "space_add_harvester",
    "space_remove_harvester", "space_manage_datasets", "space_view_archives",
    "space_create_archives", "space_manage_archives", "space_remove_archives",
    "space_recall_archives", "space_view_atm_workflow_executions",
    "space_schedule_atm_workflow_executions",
    "space_manage_atm_workflow_executions",
]
ZONE_PRIVILEGES = [
    "add_member_to_space", "list_groups", "list_groups_of_provider",
    "list_providers", "list_providers_of_space", "list_spaces",
    "list_spaces_of_provider", "list_users", "list_users_of_provider",
    "oz_groups_add_members", "oz_groups_list_groups", "oz_groups_list_users",
    "oz_groups_remove_members", "oz_handle_services_create",
    "oz_handle_services_list", "oz_handles_list", "oz_providers_delete",
    "oz_shares_list", "oz_spaces_list_groups", "oz_spaces_list_users",
    "oz_users_delete", "remove_member_from_space", "set_privileges",
    "view_privileges", "oz_spaces_add_relationships",
    "oz_groups_add_relationships", "oz_users_create", "oz_providers_create",
    "oz_tokens_manage", "oz_backup",
]
ERROR_CODES = [
    "invalid_request", "unauthorized", "invalid_credentials", "invalid_token",
    "forbidden", "not_found", "method_not_allowed", "already_exists", "cycle",
    "current_key", "last_admin", "too_many_requests", "payload_too_large",
    "store_unavailable", "insufficient_storage", "internal_error", "timeout",
]
PAGE_MAX = 1000
# Control characters (Unicode Cc), which no name may hold.
CONTROL = r"\u0000-\u001f\u007f-\u009f"
NAME_CHAR = f"[^{CONTROL}]"


def ref(kind, name):
    return {"$ref": f"#/components/{kind}/{name}"}


def schema(name):
    return ref("schemas", name)


def obj(props, required=None, **extra):
    out = {"type": "object", "properties": props, "additionalProperties": False}
    required = list(props) if required is None else required
    if required:
        out["required"] = required
    out.update(extra)
    return out


def id_list(key, paged=True, what="ids"):
    props = {key: {"type": "array", "items": schema("Id"), "description": what}}
    if paged:
        props["next"] = {
            "allOf": [schema("Id")],
            "description": "Present on a full page: pass as `after` for the next one (which may be empty).",
        }
    return obj(props, required=[key])


SCHEMAS = {
    "Error": obj(
        {
            "error": {"type": "string", "enum": ERROR_CODES,
                      "description": "A stable machine-readable code."},
            "error_description": {"type": "string",
                                  "description": "Human-readable text (never a secret)."},
        },
        description="Every error answer: a JSON object with a code and a description.",
    ),
    "Id": {
        "type": "string", "pattern": "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$",
        "minLength": 43, "maxLength": 43,
        "description": "An entity id: 32 bytes in unpadded base64url, canonical (the last "
                       "character carries 4 bits, so its 2 low bits are zero).",
        "example": DEMO_SPACE,
    },
    "Token": {
        "type": "string", "minLength": 1,
        "description": "A token in Onedata's serialized form (base64url macaroon).",
    },
    "TokenResponse": obj({"token": schema("Token")}),
    "ClientTokens": obj({"tokens": {"type": "array", "items": schema("Token")}}),
    "User": obj({
        "userId": schema("Id"),
        "name": {"type": "string"},
        "login": {"type": "string"},
        "username": {"type": "string"},
    }, description="A user (`name`, `login` and `username` all carry the user name)."),
    "Group": obj({
        "groupId": schema("Id"),
        "name": {"type": "string"},
        "type": schema("GroupType"),
    }),
    "GroupType": {"type": "string", "enum": ["organization", "unit", "team", "role"]},
    "Space": obj({
        "spaceId": schema("Id"),
        "name": {"type": "string"},
        "providersSupports": {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 1},
            "description": "Support size in bytes by provider id.",
        },
    }),
    "Users": id_list("users"),
    "Groups": id_list("groups"),
    "Spaces": id_list("spaces"),
    "ChildGroups": id_list("children"),
    "ProviderIds": id_list("providers"),
    "Providers": id_list("providers", paged=False),
    "SpaceProviders": obj({
        "providers": {"type": "array", "items": schema("Id")},
        "providersSupports": {
            "type": "object", "additionalProperties": {"type": "integer", "minimum": 1},
        },
    }),
    "GroupPrivileges": obj({"privileges": {
        "type": "array", "items": {"type": "string", "enum": GROUP_PRIVILEGES}, "uniqueItems": True}}),
    "SpacePrivileges": obj({"privileges": {
        "type": "array", "items": {"type": "string", "enum": SPACE_PRIVILEGES}, "uniqueItems": True}}),
    "ZonePrivileges": obj({"privileges": {
        "type": "array", "items": {"type": "string", "enum": ZONE_PRIVILEGES}, "uniqueItems": True}}),
    "GroupPrivilegesUpdate": obj({
        "operation": {"type": "string", "enum": ["set", "grant", "revoke"], "default": "set"},
        "privileges": {"type": "array", "items": {
            "type": "string", "enum": GROUP_PRIVILEGES + GROUP_PRIVILEGES_ONEZONE}},
    }, required=["privileges"]),
    "SpacePrivilegesUpdate": obj({
        "operation": {"type": "string", "enum": ["set", "grant", "revoke"], "default": "set"},
        "privileges": {"type": "array", "items": {
            "type": "string", "enum": SPACE_PRIVILEGES + SPACE_PRIVILEGES_ONEZONE}},
    }, required=["privileges"]),
    "ZonePrivilegesUpdate": obj({
        "operation": {"type": "string", "enum": ["set", "grant", "revoke"], "default": "set"},
        "privileges": {"type": "array", "items": {"type": "string", "enum": ZONE_PRIVILEGES}},
    }, required=["privileges"]),
    "Name": {"type": "string", "minLength": 1, "maxLength": 256,
             "pattern": f"^{NAME_CHAR}*[^\\s{CONTROL}]{NAME_CHAR}*$",
             "description": "A name: 1 to 256 bytes (UTF-8), no control characters, "
                            "not only white space."},
    "NameRequest": obj({"name": schema("Name")}),
    "GroupCreateRequest": obj({"name": schema("Name"), "type": schema("GroupType")},
                              required=["name"]),
    "GroupUpdateRequest": obj({"name": schema("Name"), "type": schema("GroupType")},
                              required=[], minProperties=1),
    "UserCreateRequest": obj({
        "username": {"type": "string", "minLength": 1, "maxLength": 64,
                     "pattern": f"^[^\\s:{CONTROL}]+$",
                     "description": "1 to 64 bytes (UTF-8), no white space, ':' or control characters."},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
    }),
    "PasswordChangeRequest": obj({
        "oldPassword": {"type": "string"},
        "newPassword": {"type": "string", "minLength": 1, "maxLength": 1024},
    }),
    "ProviderVersion": {
        "type": "string", "maxLength": 32,
        "pattern": "^[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}(-(alpha|beta|rc)[0-9]{1,4})?$",
        "description": "A Onedata release version: MAJOR.MINOR.PATCH, optionally -alphaN, -betaN "
                       "or -rcN (e.g. `21.02.7`, `20.02.0-beta3`).",
        "example": "21.02.7",
    },
    "ProviderRegistrationRequest": obj(
        {"name": schema("Name"), "domain": schema("Name"), "version": schema("ProviderVersion"),
         "token": {"allOf": [schema("Token")],
                   "description": "A `registerOneprovider` invite token (20.02+): then no "
                                  "credentials are needed."}},
        required=["name", "domain"]),
    "ProviderUpdateRequest": obj({"name": schema("Name"), "domain": schema("Name"),
                                  "version": schema("ProviderVersion")},
                                 required=[], minProperties=1),
    "ProviderDetails": obj({
        "providerId": schema("Id"), "clusterId": schema("Id"),
        "name": {"type": "string"}, "domain": {"type": "string"},
        "version": {"allOf": [schema("ProviderVersion")], "nullable": True,
                    "description": "The release it declared; `null` if it never did."},
        "online": {"type": "boolean",
                   "description": "It made an authenticated request within the online window."},
        "creationTime": {"type": "integer", "minimum": 0},
    }),
    "ProviderRegistrationResponse": obj({
        "providerId": schema("Id"), "providerRootToken": schema("Token"),
    }),
    "Size": {
        "oneOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": "^[0-9]{1,20}$"},
        ],
        "description": "Support size in bytes: a positive integer, as a JSON integer or a string of digits.",
    },
    "SpaceSupportRequest": obj({"token": schema("Token"), "size": schema("Size")}),
    "SpaceCreateWithTokenRequest": obj({
        "name": schema("Name"), "token": schema("Token"), "size": schema("Size"),
    }),
    "TokenExamineRequest": obj({"token": schema("Token")}),
    "TokenInfo": obj({
        "id": schema("Id"),
        "type": {"type": "string", "enum": [
            "space_support_token", "space_create_token", "access_token", "provider_token"]},
        "target": schema("Id"),
        "issuer": obj({"type": {"type": "string", "enum": ["user", "provider"]},
                       "id": schema("Id")}),
        "keyId": {"type": "integer", "minimum": 0},
        "created": {"type": "integer", "minimum": 0, "description": "Unix seconds."},
        "expires": {"type": "integer", "minimum": 0, "description": "Unix seconds."},
        "state": {"type": "string", "enum": ["active", "expired", "consumed", "revoked"]},
        "stateChanged": {"type": "integer", "minimum": 0, "nullable": True,
                         "description": "When the token stopped being active (unix seconds)."},
    }),
    "TokenInfos": obj({"tokens": {"type": "array", "items": schema("TokenInfo")}}),
    "KeyInfo": obj({
        "id": {"type": "integer", "minimum": 0},
        "created": {"type": "integer", "minimum": 0},
        "retired": {"type": "integer", "minimum": 0, "nullable": True},
        "current": {"type": "boolean"},
    }),
    "Keys": obj({"keys": {"type": "array", "items": schema("KeyInfo")}}),
    "KeyRotated": obj({"keyId": {"type": "integer", "minimum": 0}}),
    "Backup": obj({"path": {"type": "string", "description": "The new backup's directory."}}),
    "Health": obj({"status": {"type": "string", "enum": ["ok"]}}),
    "Ready": obj({"status": {"type": "string", "enum": ["ready"]}}),
    "NotReady": obj({"status": {"type": "string", "enum": ["not ready"]},
                     "reason": {"type": "string"}}),
}
# An examination is a TokenInfo with four more fields.
_exam = json.loads(json.dumps(SCHEMAS["TokenInfo"]))
_exam["properties"].update({
    "location": {"type": "string", "nullable": True},
    "caveats": {"type": "array", "items": {"type": "string"}},
    "valid": {"type": "boolean"},
    "invalidReason": {"type": "string", "nullable": True},
})
_exam["required"] = list(_exam["properties"])
SCHEMAS["TokenExamination"] = _exam

# --- Onedata 20.02+ tokens (Onezone's shapes, ONEZONE-MODERN.md 1.2-1.4) -----

MAX_CAVEATS = 64
MAX_CUSTOM_METADATA = 4096
CAVEAT_TYPES = [
    "time", "ip", "asn", "geo.country", "geo.region", "service", "consumer", "interface",
    "api", "data.readonly", "data.path", "data.objectid",
]


def open_obj(props, required=None, **extra):
    """An object whose other members the server ignores (as Onezone does)."""
    out = obj(props, required, **extra)
    out["additionalProperties"] = True
    return out


SCHEMAS.update({
    "ModernError": obj({
        "error": obj({
            "id": {"type": "string", "description": "Onezone's error id, e.g. `badValueToken`."},
            "description": {"type": "string", "description": "Human-readable text (never a secret)."},
            "details": {"type": "object", "description": "The error's parameters, as Onezone gives them."},
        }, required=["id", "description"]),
    }, description="An error of the 20.02+ endpoints, in Onezone's shape."),
    "TokenSubject": obj({
        "type": {"type": "string", "enum": ["user", "oneprovider", "nobody"]},
        "id": {"type": "string", "nullable": True,
               "description": "`null` for `nobody` (a legacy token carries no subject)."},
    }),
    "TokenType": {
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "description": "`{\"accessToken\": {}}`, `{\"identityToken\": {}}` or "
                       "`{\"inviteToken\": {\"inviteType\", \"<targetKey>\", \"parameters\"}}`.",
        "properties": {
            "accessToken": {"type": "object"},
            "identityToken": {"type": "object"},
            "inviteToken": {"type": "object"},
        },
    },
    "Caveat": {
        "type": "object",
        "description": "A caveat in Onezone's JSON form, e.g. `{\"type\": \"time\", \"validUntil\": N}`. "
                       "Types: " + ", ".join(f"`{t}`" for t in CAVEAT_TYPES) + ".",
        "properties": {"type": {"type": "string"}},
    },
    "Caveats": {"type": "array", "items": schema("Caveat"), "maxItems": MAX_CAVEATS},
    "NamedTokenCreateRequest": open_obj({
        "name": {"type": "string", "minLength": 2, "maxLength": 512,
                 "description": "2 to 128 characters: letters, digits, `()` and `_`; `-`, space and "
                                "`.` in the middle. Unique among the subject's named tokens."},
        "type": schema("TokenType"),
        "caveats": schema("Caveats"),
        "customMetadata": {"type": "object",
                           "description": f"At most {MAX_CUSTOM_METADATA} bytes of JSON."},
        "revoked": {"type": "boolean", "default": False},
    }, required=["name"]),
    "NamedTokenCreated": obj({"tokenId": schema("Id"), "token": schema("Token")}),
    "NamedTokenUpdateRequest": open_obj({
        "name": {"type": "string"},
        "customMetadata": {"type": "object"},
        "revoked": {"type": "boolean"},
    }, required=[], description="At least one of `name`, `customMetadata`, `revoked`."),
    "NamedToken": obj({
        "id": schema("Id"),
        "name": {"type": "string"},
        "subject": schema("TokenSubject"),
        "type": schema("TokenType"),
        "caveats": {"type": "array", "items": schema("Caveat")},
        "metadata": open_obj({
            "creationTime": {"type": "integer", "minimum": 0, "description": "Unix seconds."},
            "custom": {"type": "object"},
        }),
        "revoked": {"type": "boolean"},
        "token": schema("Token"),
    }),
    "TokenIds": obj({"tokens": {"type": "array", "items": schema("Id")}}),
    "NamedTokenStatus": obj({"revoked": {"type": "boolean"}}),
    "TemporaryTokenCreateRequest": open_obj({
        "type": schema("TokenType"),
        "caveats": schema("Caveats"),
    }, required=["caveats"], description="A `time` caveat within the largest ttl is required."),
    "TemporaryTokenGeneration": obj({"generation": {"type": "integer", "minimum": 1}}),
    "TokenConfineRequest": open_obj({"token": schema("Token"), "caveats": schema("Caveats")}),
    "ModernTokenExamination": obj({
        "onezoneDomain": {"type": "string"},
        "id": {"type": "string"},
        "persistence": {"type": "string", "enum": ["named", "temporary"]},
        "subject": schema("TokenSubject"),
        "type": schema("TokenType"),
        "caveats": {"type": "array", "items": schema("Caveat")},
    }, description="A 20.02+ token's examination: what it says, without verification."),
    "VerificationResult": obj({
        "subject": schema("TokenSubject"),
        "ttl": {"type": "integer", "nullable": True,
                "description": "Seconds left (the earliest `time` caveat), `null` without one."},
    }),
    "CurrentTime": obj({"timeMillis": {"type": "integer", "minimum": 0}}),
})
_peer = {"type": "string", "description": "An IPv4 address (default: the requester's)."}
_iface = {"type": "string", "enum": ["rest", "oneclient", "graphsync"]}
_consumer = {"type": "string", "nullable": True,
             "description": "The consumer's identity token; absent: the requester; `null`: nobody."}
SCHEMAS["InferScopeRequest"] = open_obj({"token": schema("Token"), "consumerToken": _consumer},
                                         required=["token"])
SCHEMAS["AccessTokenScope"] = obj({
    "validUntil": {"type": "integer", "nullable": True,
                   "description": "The earliest `time` caveat (unix seconds), `null` without one."},
    "dataAccessScope": {
        "type": "object", "nullable": True, "additionalProperties": False,
        "description": "`null` for a provider's token.",
        "required": ["readonly", "spaces", "providers"],
        "properties": {
            "readonly": {"type": "boolean", "description": "The token carries `data.readonly`."},
            "spaces": {"type": "object", "additionalProperties": obj({
                "name": {"type": "string"},
                "supports": {"type": "object", "additionalProperties": obj(
                    {"readonly": {"type": "boolean", "description":
                                  "Always false: ozmint's supports have no read-only storages."}})},
            })},
            "providers": {"type": "object", "additionalProperties": obj({
                "name": {"type": "string"}, "domain": {"type": "string"},
                "version": {"type": "string", "nullable": True}, "online": {"type": "boolean"},
            })},
        },
    },
})
SCHEMAS["VerifyAccessTokenRequest"] = open_obj({
    "token": schema("Token"), "peerIp": _peer, "interface": _iface,
    "serviceToken": {"type": "string", "description": "The service's identity token."},
    "consumerToken": _consumer,
    "allowDataAccessCaveats": {"type": "boolean", "default": False},
}, required=["token"])
SCHEMAS["VerifyIdentityTokenRequest"] = open_obj({
    "token": schema("Token"), "peerIp": _peer, "interface": _iface,
    "serviceToken": {"type": "string"}, "consumerToken": _consumer,
}, required=["token"])
SCHEMAS["VerifyInviteTokenRequest"] = open_obj({
    "token": schema("Token"), "peerIp": _peer, "consumerToken": _consumer,
    "expectedInviteType": {"type": "string", "description": "An invite type, or `any` (default)."},
}, required=["token"])


def error_response(description, headers=None):
    out = {"description": description,
           "content": {"application/json": {"schema": schema("Error")}}}
    if headers:
        out["headers"] = headers
    return out


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0},
                               "description": "Seconds to wait before retrying."}}
RESPONSES = {
    "BadRequest": error_response(
        "Malformed input: a malformed id, body, query parameter or credential header, "
        "several credentials, or an invalid token in the body."),
    "Unauthorized": error_response(
        "No credentials, or credentials that are not valid.",
        {"WWW-Authenticate": {"schema": {"type": "string"}}}),
    "Forbidden": error_response(
        "The caller may not do this (a missing privilege, a provider where a user is "
        "needed or the reverse, an attenuated token, or a wrong old password)."),
    "NotFound": error_response("An entity or relation in the path does not exist."),
    "Conflict": error_response(
        "The change conflicts with the state: a taken name, a group cycle, the current root "
        "key, or the zone's last administrator."),
    "PayloadTooLarge": error_response("The request body exceeds the limit."),
    "TooManyRequests": error_response("Too many failed logins; retry later.", RETRY_AFTER),
    "HeadersTooLarge": error_response("The request has too many headers."),
    "Internal": error_response("An internal error (the detail is logged, never sent)."),
    "Unavailable": error_response(
        "The store is unavailable or busy, or the request took too long; retry.", RETRY_AFTER),
    "InsufficientStorage": error_response("The store is out of space: nothing was written."),
}
# The 20.02+ endpoints answer errors in Onezone's shape, with the same statuses.
for _name, _resp in list(RESPONSES.items()):
    _m = json.loads(json.dumps(_resp))
    _m["content"]["application/json"]["schema"] = schema("ModernError")
    RESPONSES["Modern" + _name] = _m
RESPONSES["ModernBadRequest"]["description"] = (
    "Malformed or invalid input, or a token that does not verify: Onezone's error id "
    "(`badValueToken`, `badValueJSON`, `missingRequiredValue`, `badValueName`, "
    "`badValueIdentifierOccupied`, `tokenTimeCaveatRequired`, `notAnAccessToken`, "
    "`tokenRevoked`, `tokenCaveatUnverified`, ...) with its details.")
RESPONSES["ModernUnauthorized"]["description"] = (
    "No credentials, or credentials that are not valid (`unauthorized`, the token's error "
    "as `details.authError`).")
STATUS_REF = {
    "400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
    "409": "Conflict", "413": "PayloadTooLarge", "429": "TooManyRequests",
    "431": "HeadersTooLarge", "500": "Internal", "503": "Unavailable",
    "507": "InsufficientStorage",
}

PAGE_PARAMS = [
    {"name": "limit", "in": "query", "required": False,
     "description": f"Most entries in the page (1 to {PAGE_MAX}, default {PAGE_MAX}).",
     "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}},
    {"name": "after", "in": "query", "required": False,
     "description": "Start after this id (the `next` of the previous page).",
     "schema": schema("Id")},
]

# Path parameters by template name, with the demo entity each path kind
# names as its example.
PARAM_TEXT = {
    "id": "The id of the group, space or user the path names.",
    "uid": "A user id.",
    "gid": "A group id.",
    "cid": "A child group id.",
    "sid": "A space id.",
    "tid": "A token id (or, for client tokens, the whole token).",
    "kid": "A root key id (a non-negative integer).",
    "name": "A named token's name.",
}


def example_for(path, name):
    if name == "kid":
        return None
    if name == "tid":
        return None
    if name in ("uid",):
        return GUEST_ID
    if name in ("gid", "cid"):
        return DEMO_GROUP
    if name == "sid":
        return DEMO_SPACE
    # {id}: the first segment says which kind.
    first = path.strip("/").split("/")[0]
    return {"groups": DEMO_GROUP, "spaces": DEMO_SPACE, "users": CAROL_ID}.get(first)


def path_params(path):
    out = []
    for seg in path.strip("/").split("/"):
        if seg.startswith("{"):
            name = seg[1:-1]
            s = schema("Id")
            if name in ("tid", "name"):
                s = {"type": "string", "minLength": 1}
            if name == "id" and path.startswith("/tokens/named/"):
                s = schema("Id")
            if name == "kid":
                s = {"type": "string", "pattern": "^[0-9]{1,10}$"}
            p = {"name": name, "in": "path", "required": True,
                 "description": PARAM_TEXT[name], "schema": s}
            ex = example_for(path, name)
            if ex:
                p["example"] = ex
            out.append(p)
    return out


def json_body(name, description=None):
    out = {"required": True, "content": {"application/json": {"schema": schema(name)}}}
    if description:
        out["description"] = description
    return out


def ok(name, description="OK.", status="200"):
    return {status: {"description": description,
                     "content": {"application/json": {"schema": schema(name)}}}}


def created(description):
    return {"201": {"description": description,
                    "headers": {"Location": {"schema": {"type": "string"},
                                             "description": "The new entity's path below the API prefix."}}}}


def empty(status, description):
    return {status: {"description": description}}


PATHS = {}
DOC_SECURITY = [{"basic": []}, {"bearer": []}, {"xAuthToken": []}, {"macaroon": []}]


def op(method, path, summary, responses, errors, description="", body=None,
       paged=False, tag=None, auth=True, op_id=None, modern=False,
       optional_auth=False):
    """One operation. `errors`: the statuses beyond those every authenticated
    operation can answer (400, 401, 403, 413, 429, 431, 500, 503)."""
    full = PREFIX + path if not path.startswith("!") else path[1:]
    statuses = set(errors)
    if auth:
        statuses |= {"400", "401", "403", "413", "429", "431", "500", "503"}
    else:
        statuses |= {"413", "431", "500"}
    if method in ("post", "put", "patch", "delete"):
        statuses.add("507")
    resp = dict(responses)
    for st in sorted(statuses):
        resp[st] = ref("responses", ("Modern" if modern else "") + STATUS_REF[st])
    o = {
        "operationId": op_id or (method + path.replace("/", "_").replace("{", "").replace("}", "").replace(".", "_").replace("!", "")),
        "summary": summary,
        "responses": dict(sorted(resp.items())),
    }
    if description:
        o["description"] = description
    if tag:
        o["tags"] = [tag]
    params = path_params(path.lstrip("!"))
    if paged:
        params += PAGE_PARAMS
    if params:
        o["parameters"] = params
    if body:
        o["requestBody"] = body
    if not auth:
        o["security"] = []
    if optional_auth:
        o["security"] = [{}] + DOC_SECURITY
    PATHS.setdefault(full, {})[method] = o


# --- Not under the prefix, without authentication ---------------------------

op("get", "!/healthz", "Liveness", ok("Health", "The process serves requests."), [],
   tag="service", auth=False)
op("get", "!/readyz", "Readiness",
   {**ok("Ready", "Serving, and the store takes writes."),
    "503": {"description": "Shutting down, or the store cannot take writes.",
            "content": {"application/json": {"schema": schema("NotReady")}}}},
   [], tag="service", auth=False)
op("get", "!/metrics", "Metrics",
   {"200": {"description": "Prometheus/OpenMetrics text.",
            "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}},
   [], tag="service", auth=False)
op("get", "/openapi.json", "This document (ozmint)",
   {"200": {"description": "The OpenAPI description of this API.",
            "content": {"application/json": {"schema": {"type": "object"}}}}},
   [], tag="service", auth=False)

# --- Tokens and providers ---------------------------------------------------

op("post", "/spaces/{id}/providers/token", "Create a space support token",
   ok("TokenResponse", "A single-use token a provider consumes to support the space."), ["404"],
   "Needs `space_add_provider` in the space, or the zone privilege `oz_spaces_add_relationships`.",
   tag="tokens")
op("get", "/groups/{id}/spaces/token", "Create a space creation token",
   ok("TokenResponse", "A single-use token a provider consumes to create a space for the group."),
   ["404"],
   "Needs `group_create_space_token` in the group, or the zone privilege `oz_groups_add_relationships`.",
   tag="tokens")
op("get", "/user/client_tokens", "List the caller's access tokens",
   ok("ClientTokens"), [], "Users only; not with an attenuated token.", tag="tokens")
op("post", "/user/client_tokens", "Create an access token",
   ok("TokenResponse", "A new access token of the caller."), [],
   "Users only; not with an attenuated token.", tag="tokens")
op("delete", "/user/client_tokens/{tid}", "Revoke one of the caller's access tokens",
   empty("202", "Revoked."), ["404"], tag="tokens")
op("get", "/providers", "List providers", ok("Providers"), [],
   "Needs the zone privilege `list_providers`.", tag="providers")
op("post", "/providers", "Register a provider",
   {"201": {"description": "Registered; the provider authenticates with its root token.",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": schema("ProviderRegistrationResponse")}}}},
   ["409"], "Needs the zone privilege `oz_providers_create`, or a `registerOneprovider` invite "
   "token in `token` (then no credentials are needed; its issuer must still hold "
   "`oz_providers_create`).",
   body=json_body("ProviderRegistrationRequest"), tag="providers")
op("get", "/provider", "Get the calling provider", ok("ProviderDetails"), [],
   "Providers only.", tag="providers")
op("patch", "/provider", "Change the calling provider's name, domain or version",
   empty("204", "Changed."), [], "Providers only.", body=json_body("ProviderUpdateRequest"),
   tag="providers")
op("get", "/providers/{id}", "Get a provider", ok("ProviderDetails"), ["404"],
   "The provider itself, or the zone privilege `list_providers`.", tag="providers")
op("post", "/provider/spaces/support", "Support a space with a support token",
   created("The space is supported; `Location: /spaces/{id}`."), ["404", "409"],
   "Providers only. A legacy support token (single-use) or a 20.02+ `supportSpace` invite "
   "token (up to its `usageLimit`); its issuer must still hold the privilege.",
   body=json_body("SpaceSupportRequest"), tag="providers")
op("post", "/provider/spaces", "Create a space with a space creation token",
   created("The space is created for the token's group and supported; `Location: /spaces/{id}`."),
   ["404", "409"], "Providers only. The token is single-use; its issuer must still hold the privilege.",
   body=json_body("SpaceCreateWithTokenRequest"), tag="providers")
op("get", "/spaces/{id}/providers", "List the providers supporting a space",
   ok("SpaceProviders"), ["404"],
   "Needs `space_view_data` in the space or the zone privilege `list_providers_of_space`.",
   tag="providers")
op("get", "/spaces/{id}/tokens", "List a space's support tokens (ozmint)",
   ok("TokenInfos"), ["404"], "To whoever may mint them.", tag="tokens")
op("get", "/groups/{id}/tokens", "List a group's space creation tokens (ozmint)",
   ok("TokenInfos"), ["404"], "To whoever may mint them.", tag="tokens")
op("delete", "/tokens/{tid}", "Revoke a token (ozmint)",
   empty("204", "Revoked."), ["404"],
   "To whoever may mint such a token, the subject it authenticates, or `oz_tokens_manage`.",
   tag="tokens")
op("post", "/tokens/examine", "Describe a token",
   {"200": {"description": "A 20.02+ token: what it says, without verification and without "
                           "credentials (Onezone's answer). A legacy token (ozmint): the record "
                           "of a token this zone minted and whether it verifies now.",
            "content": {"application/json": {"schema": {"oneOf": [
                schema("ModernTokenExamination"), schema("TokenExamination")]}}}}},
   ["404"],
   "A 20.02+ token is examined as Onezone does, publicly, with errors in Onezone's shape; "
   "any other token needs credentials and answers the legacy shape.",
   body=json_body("TokenExamineRequest"), tag="tokens", optional_auth=True)
_examine = PATHS[PREFIX + "/tokens/examine"]["post"]["responses"]
_examine["400"] = {
    "description": "Malformed input or credentials (the legacy shape), or a 20.02+ token that "
                   "does not parse (Onezone's shape, `badValueToken`).",
    "content": {"application/json": {"schema": {"oneOf": [
        schema("Error"), schema("ModernError")]}}}}

# --- Onedata 20.02+ tokens ----------------------------------------------------

OWNERS = [
    # (path prefix, whose, who may)
    ("/user", "the calling user's", "The calling user."),
    ("/users/{id}", "a user's", "The user, or the zone privilege `oz_tokens_manage`."),
    ("/provider", "the calling provider's", "The calling provider."),
    ("/providers/{id}", "a provider's", "The provider, or the zone privilege `oz_tokens_manage`."),
]
for prefix, whose, who in OWNERS:
    op("post", f"{prefix}/tokens/named", f"Create one of {whose} named tokens",
       {"201": {"description": "Created; `Location: /tokens/named/{tokenId}`.",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": schema("NamedTokenCreated")}}}},
       ["404"], who + " Not with an attenuated token.",
       body=json_body("NamedTokenCreateRequest"), tag="tokens", modern=True)
    op("get", f"{prefix}/tokens/named", f"List {whose} named tokens", ok("TokenIds"), ["404"],
       who, tag="tokens", modern=True)
    op("delete", f"{prefix}/tokens/named", f"Delete all {whose} named tokens",
       empty("204", "Deleted."), ["404"], who, tag="tokens", modern=True)
    op("get", f"{prefix}/tokens/named/name/{{name}}", f"Get one of {whose} named tokens by name",
       ok("NamedToken"), ["404"], who, tag="tokens", modern=True)
    op("post", f"{prefix}/tokens/temporary", f"Create one of {whose} temporary tokens",
       ok("TokenResponse", "Created (not stored: it verifies against the subject's shared "
                           "secret of the current generation).", "201"),
       ["404"], who + " Not with an attenuated token. A `time` caveat within "
       "`tokens.max_temporary_ttl` is required (`tokenTimeCaveatRequired`).",
       body=json_body("TemporaryTokenCreateRequest"), tag="tokens", modern=True)
    op("get", f"{prefix}/tokens/temporary", f"Get the generation of {whose} temporary tokens",
       ok("TemporaryTokenGeneration"), ["404"], who, tag="tokens", modern=True)
    op("delete", f"{prefix}/tokens/temporary", f"Revoke all {whose} temporary tokens",
       empty("204", "Revoked: a new secret, the next generation."), ["404"], who,
       tag="tokens", modern=True)
op("get", "/tokens/named", "List every named token", ok("TokenIds"), [],
   "Needs the zone privilege `oz_tokens_manage`.", tag="tokens", modern=True)
op("get", "/tokens/named/{id}", "Get a named token", ok("NamedToken"), ["404"],
   "Its subject, or the zone privilege `oz_tokens_manage`.", tag="tokens", modern=True)
op("patch", "/tokens/named/{id}", "Rename, revoke or unrevoke a named token, or set its metadata",
   empty("204", "Changed."), ["404"],
   "Its subject, or the zone privilege `oz_tokens_manage`.",
   body=json_body("NamedTokenUpdateRequest"), tag="tokens", modern=True)
op("delete", "/tokens/named/{id}", "Delete a named token", empty("204", "Deleted."), ["404"],
   "Its subject, or the zone privilege `oz_tokens_manage`.", tag="tokens", modern=True)
op("get", "/tokens/named/{id}/status", "Whether a named token is revoked",
   ok("NamedTokenStatus"), ["404"],
   "Its subject, or the zone privilege `oz_tokens_manage`.", tag="tokens", modern=True)

PUBLIC_ERRORS = ["400", "401", "429", "503"]
op("post", "/tokens/infer_access_token_scope", "Infer what an access token reaches",
   ok("AccessTokenScope"), PUBLIC_ERRORS,
   "Public (21.02.4+). The token is verified with `service` and `interface` caveats ignored, "
   "data access caveats allowed and `api` caveats lazy; the consumer is the token's subject "
   "unless `consumerToken` says otherwise (`null`: nobody).",
   body=json_body("InferScopeRequest"), tag="tokens", auth=False, optional_auth=True,
   modern=True)
op("post", "/tokens/confine", "Add caveats to a token", ok("TokenResponse", "The confined token."),
   PUBLIC_ERRORS, "Public. The token is not verified; the caveats are appended in order.",
   body=json_body("TokenConfineRequest"), tag="tokens", auth=False, optional_auth=True,
   modern=True)
for kind, what, extra in [
    ("access", "an access token", "Data access caveats only with `allowDataAccessCaveats`."),
    ("identity", "an identity token", ""),
    ("invite", "an invite token", "Not its usage limit nor its issuer's privileges."),
]:
    op("post", f"/tokens/verify_{kind}_token", f"Verify {what}",
       ok("VerificationResult", "It verifies: its subject and ttl."), PUBLIC_ERRORS,
       "Public. Credentials, if any, name the default consumer. A token that does not verify "
       "is a 400 with the token's error. " + extra,
       body=json_body(f"Verify{kind.capitalize()}TokenRequest"), tag="tokens", auth=False,
       optional_auth=True, modern=True)
op("get", "/provider/public/get_current_time", "The zone's clock",
   ok("CurrentTime", "Milliseconds since the Unix epoch."), PUBLIC_ERRORS,
   "Public (for computing `time` caveats).", tag="tokens", auth=False, optional_auth=True,
   modern=True)
op("get", "/keys", "List root keys (ozmint)", ok("Keys"), [],
   "Needs the zone privilege `oz_tokens_manage`. Secrets are never shown.", tag="keys")
op("post", "/keys", "Rotate the root key (ozmint)",
   ok("KeyRotated", "The new current key.", "201"), [],
   "Needs the zone privilege `oz_tokens_manage`.", tag="keys")
op("post", "/keys/{kid}/retire", "Retire a root key (ozmint)",
   empty("204", "Retired: tokens signed with it no longer verify."), ["404", "409"],
   "Needs the zone privilege `oz_tokens_manage`; the current key cannot be retired.", tag="keys")

# --- Users ------------------------------------------------------------------

op("get", "/users", "List users", ok("Users"), [],
   "Needs the zone privilege `list_users`.", paged=True, tag="users")
op("post", "/users", "Create a user (ozmint)", created("`Location: /users/{id}`."), ["409"],
   "Needs the zone privilege `oz_users_create`.", body=json_body("UserCreateRequest"), tag="users")
op("get", "/users/{id}", "Get a user", ok("User"), ["404"],
   "Needs the zone privilege `list_users` (or be that user).", tag="users")
op("delete", "/users/{id}", "Delete a user", empty("202", "Deleted."), ["404", "409"],
   "Needs the zone privilege `oz_users_delete`; the zone's last administrator cannot be deleted.",
   tag="users")
op("get", "/users/{id}/privileges", "Get a user's zone privileges", ok("ZonePrivileges"), ["404"],
   "Needs the zone privilege `view_privileges` (or be that user).", tag="users")
op("patch", "/users/{id}/privileges", "Change a user's zone privileges",
   empty("204", "Changed."), ["404", "409"],
   "Needs the zone privilege `set_privileges`; no change may leave the zone without a holder of it.",
   body=json_body("ZonePrivilegesUpdate"), tag="users")
op("get", "/user", "Get the calling user", ok("User"), [], "Users only.", tag="user")
op("patch", "/user/password", "Change the caller's password", empty("204", "Changed."), [],
   "Users only; a wrong old password is a 403.", body=json_body("PasswordChangeRequest"), tag="user")
op("get", "/user/groups", "List the caller's groups", ok("Groups"), [],
   "Direct memberships of the calling user.", paged=True, tag="user")
op("post", "/user/groups", "Create a group as the caller", created("`Location: /groups/{id}`."),
   ["409"], "The caller becomes a member with every group privilege.",
   body=json_body("GroupCreateRequest"), tag="user")
op("get", "/user/spaces", "List the caller's spaces", ok("Spaces"), [],
   "Direct memberships of the calling user.", paged=True, tag="user")
op("post", "/user/spaces", "Create a space as the caller", created("`Location: /spaces/{id}`."),
   ["409"], "The caller becomes a member with every space privilege.",
   body=json_body("NameRequest"), tag="user")
op("get", "/user/effective_groups", "List the caller's effective groups", ok("Groups"), [],
   "The groups the calling user belongs to, directly or through nested groups.",
   paged=True, tag="user")
op("get", "/user/effective_groups/{gid}", "Get one of the caller's effective groups",
   ok("Group"), ["404"],
   "Any effective member may see it; a group the caller does not belong to is a 404.", tag="user")
op("get", "/user/effective_spaces", "List the caller's effective spaces", ok("Spaces"), [],
   "The spaces the calling user belongs to, directly or through groups.", paged=True, tag="user")
op("get", "/user/effective_spaces/{sid}", "Get one of the caller's effective spaces",
   ok("Space"), ["404"],
   "Any effective member may see it; a space the caller does not belong to is a 404.", tag="user")
op("get", "/user/effective_providers", "List the caller's effective providers",
   ok("ProviderIds"), [], "The providers supporting the caller's effective spaces.",
   paged=True, tag="user")

# --- Groups and spaces ------------------------------------------------------

GROUP_VIEW = "Needs `group_view_data` in the group or the zone privilege `list_groups`."
SPACE_VIEW = "Needs `space_view_data` in the space or the zone privilege `list_spaces`."
op("get", "/groups", "List groups", ok("Groups"), [],
   "Needs the zone privilege `list_groups`.", paged=True, tag="groups")
op("post", "/groups", "Create a group", created("`Location: /groups/{id}`."), ["409"],
   "The caller becomes a member with every group privilege.",
   body=json_body("GroupCreateRequest"), tag="groups")
op("get", "/spaces", "List spaces", ok("Spaces"), [],
   "Needs the zone privilege `list_spaces`.", paged=True, tag="spaces")
op("post", "/spaces", "Create a space", created("`Location: /spaces/{id}`."), ["409"],
   "The caller becomes a member with every space privilege.",
   body=json_body("NameRequest"), tag="spaces")
op("get", "/groups/{id}", "Get a group", ok("Group"), ["404"], GROUP_VIEW, tag="groups")
op("patch", "/groups/{id}", "Change a group's name or type", empty("204", "Changed."),
   ["404", "409"], "Needs `group_change_data`.", body=json_body("GroupUpdateRequest"), tag="groups")
op("delete", "/groups/{id}", "Delete a group", empty("202", "Deleted with its relations and tokens."),
   ["404"], "Needs `group_remove`.", tag="groups")
op("get", "/spaces/{id}", "Get a space", ok("Space"), ["404"], SPACE_VIEW, tag="spaces")
op("patch", "/spaces/{id}", "Rename a space", empty("204", "Renamed."), ["404", "409"],
   "Needs `space_change_data`.", body=json_body("NameRequest"), tag="spaces")
op("delete", "/spaces/{id}", "Delete a space", empty("202", "Deleted with its relations and tokens."),
   ["404"], "Needs `space_remove`.", tag="spaces")

MEMBERS = [
    # (container, members, member param, list schema, member schema, privileges, kind,
    #  add, remove, PUT status)
    ("groups", "users", "uid", "Users", "User", "Group", "group",
     "`group_invite_user` or `oz_groups_add_members`",
     "`group_remove_user` or `oz_groups_remove_members`", "200"),
    ("groups", "children", "cid", "ChildGroups", "Group", "Group", "group",
     "`group_invite_group` or `oz_groups_add_members`",
     "`group_remove_group` or `oz_groups_remove_members`", "200"),
    ("spaces", "users", "uid", "Users", "User", "Space", "space",
     "`space_invite_user` or `add_member_to_space`",
     "`space_remove_user` or `remove_member_from_space`", "204"),
    ("spaces", "groups", "gid", "Groups", "Group", "Space", "space",
     "`space_invite_group` or `add_member_to_space`",
     "`space_remove_group` or `remove_member_from_space`", "204"),
]
for c, m, p, lst, one, priv, kind, add, remove, put in MEMBERS:
    view = GROUP_VIEW if c == "groups" else SPACE_VIEW
    tag = c
    op("get", f"/{c}/{{id}}/{m}", f"List the {m} of a {kind}", ok(lst), ["404"], view,
       paged=True, tag=tag)
    op("get", f"/{c}/{{id}}/{m}/{{{p}}}", f"Get a member ({m}) of a {kind}", ok(one), ["404"],
       view + " A non-member is a 404.", tag=tag)
    op("put", f"/{c}/{{id}}/{m}/{{{p}}}", f"Add a member ({m}) to a {kind}",
       empty(put, "Added (or already a member)."), ["404", "409"],
       f"Needs {add}. The member gets the default privileges.", tag=tag)
    op("delete", f"/{c}/{{id}}/{m}/{{{p}}}", f"Remove a member ({m}) from a {kind}",
       empty("202", "Removed."), ["404"], f"Needs {remove}.", tag=tag)
    op("get", f"/{c}/{{id}}/{m}/{{{p}}}/privileges", f"Get a member's ({m}) privileges in a {kind}",
       ok(f"{priv}Privileges"), ["404"], view, tag=tag)
    op("patch", f"/{c}/{{id}}/{m}/{{{p}}}/privileges",
       f"Change a member's ({m}) privileges in a {kind}", empty("204", "Changed."), ["404"],
       f"Needs `{kind}_set_privileges` or the zone privilege `set_privileges`.",
       body=json_body(f"{priv}PrivilegesUpdate"), tag=tag)

op("get", "/groups/{id}/effective_users", "List a group's effective users", ok("Users"), ["404"],
   GROUP_VIEW + " Users of the group and of every group below it.", paged=True, tag="groups")
op("get", "/spaces/{id}/effective_users", "List a space's effective users", ok("Users"), ["404"],
   SPACE_VIEW + " Users of the space and of its groups, nested included.", paged=True, tag="spaces")
op("get", "/groups/{id}/effective_users/{uid}/privileges",
   "Get a user's effective privileges in a group", ok("GroupPrivileges"), ["404"],
   "The user themselves, or " + GROUP_VIEW[0].lower() + GROUP_VIEW[1:] +
   " A user who is no effective member is a 404.", tag="groups")
op("get", "/spaces/{id}/effective_users/{uid}/privileges",
   "Get a user's effective privileges in a space", ok("SpacePrivileges"), ["404"],
   "The user themselves, or " + SPACE_VIEW[0].lower() + SPACE_VIEW[1:] +
   " A user who is no effective member is a 404.", tag="spaces")
op("get", "/groups/{id}/effective_children", "List a group's effective children",
   ok("ChildGroups"), ["404"], GROUP_VIEW + " Children, their children, and so on.",
   paged=True, tag="groups")
op("get", "/groups/{id}/parents", "List a group's parent groups", ok("Groups"), ["404"],
   GROUP_VIEW, paged=True, tag="groups")
op("get", "/groups/{id}/effective_parents", "List a group's effective parent groups",
   ok("Groups"), ["404"], GROUP_VIEW + " Parents, their parents, and so on.",
   paged=True, tag="groups")
op("get", "/groups/{id}/effective_spaces", "List a group's effective spaces", ok("Spaces"),
   ["404"], GROUP_VIEW + " Spaces of the group and of every group above it.",
   paged=True, tag="groups")
op("get", "/spaces/{id}/effective_groups", "List a space's effective groups", ok("Groups"),
   ["404"], SPACE_VIEW + " Groups of the space and every group below them.",
   paged=True, tag="spaces")
op("post", "/backup", "Back up the store (ozmint)",
   ok("Backup", "A consistent copy of the store was written on the server.", "201"), [],
   "Needs the zone privilege `oz_backup`.", tag="service")

# --- Invite tokens (Onedata 20.02+) ------------------------------------------

SCHEMAS.update({
    "OnezoneError": obj({
        "error": obj({
            "id": {"type": "string", "description": "Onezone's error id, e.g. "
                   "`inviteTokenUsageLimitReached`."},
            "description": {"type": "string", "description": "Human-readable text."},
            "details": {"type": "object", "description": "Onezone's details of the error."},
        }, required=["id", "description"]),
    }, description="An error of the 20.02+ endpoints, in Onezone's shape."),
    "AnyError": {"oneOf": [schema("Error"), schema("OnezoneError")],
                 "description": "Onezone's shape, or ozmint's for errors found before the "
                                "endpoint (a body over the limit, too many headers)."},
    "InviteJoinRequest": obj({"token": schema("Token")}),
    "OnezoneTokenExamination": obj({
        "onezoneDomain": {"type": "string"},
        "id": {"type": "string"},
        "persistence": {"type": "string", "enum": ["named", "temporary"]},
        "subject": {"type": "object"},
        "type": {"type": "object", "description": "Onezone's token type, e.g. "
                 "`{\"inviteToken\": {\"inviteType\": \"userJoinSpace\", \"spaceId\": ...}}`."},
        "caveats": {"type": "array", "items": {"type": "object"}},
    }, description="The examination of a 20.02+ token (no verification), as Onezone's."),
})
# The invite endpoints answer 20.02+ tokens, which /tokens/examine describes
# in Onezone's shape.
_examined = PATHS[PREFIX + "/tokens/examine"]["post"]["responses"]["200"]["content"]["application/json"]
_examined["schema"] = {"anyOf": [_examined["schema"], schema("OnezoneTokenExamination")]}


def onezone_errors(path, method):
    """The errors of a 20.02+ endpoint take Onezone's shape."""
    responses = PATHS[PREFIX + path][method]["responses"]
    for status, r in responses.items():
        if "$ref" in r:
            base = RESPONSES[r["$ref"].rsplit("/", 1)[1]]
            out = {"description": base["description"],
                   "content": {"application/json": {"schema": schema("AnyError")}}}
            if "headers" in base:
                out["headers"] = base["headers"]
            responses[status] = out


INVITE_ERRORS = (
    " A token that is no invite of the right type is `badValueToken`; Onezone's errors of "
    "invites are 400s: `inviteTokenUsageLimitReached`, `inviteTokenSubjectNotAuthorized` (the "
    "issuer no longer holds the privilege), `inviteTokenTargetIdInvalid`, `tokenRevoked`; "
    "a member already is a 409 `relationAlreadyExists`.")
JOINS = [
    ("/user/groups/join", "Join a group with an invite token",
     "A `userJoinGroup` token; `Location: /user/groups/{id}`. The membership gets the "
     "token's privileges.", ["409"]),
    ("/user/spaces/join", "Join a space with an invite token",
     "A `userJoinSpace` token; `Location: /user/spaces/{id}`. The membership gets the "
     "token's privileges.", ["409"]),
    ("/groups/{id}/parents/join", "Make a group join a parent group with an invite token",
     "A `groupJoinGroup` token; needs `group_join_group` in group `{id}` (or the zone "
     "privilege `oz_groups_add_relationships`); `Location: /groups/{id}/parents/{parent}`.",
     ["404", "409"]),
    ("/groups/{id}/spaces/join", "Make a group join a space with an invite token",
     "A `groupJoinSpace` token; needs `group_join_space` in group `{id}` (or the zone "
     "privilege `oz_groups_add_relationships`); `Location: /groups/{id}/spaces/{space}`.",
     ["404", "409"]),
]
for path, summary, text, errors in JOINS:
    op("post", path, summary, created("Joined."), errors, text + INVITE_ERRORS,
       body=json_body("InviteJoinRequest"), tag="tokens")
    onezone_errors(path, "post")
LEGACY_INVITES = [
    ("/spaces/{id}/users/token", "userJoinSpace", "`space_invite_user`"),
    ("/spaces/{id}/groups/token", "groupJoinSpace", "`space_invite_group`"),
    ("/groups/{id}/users/token", "userJoinGroup", "`group_invite_user`"),
    ("/groups/{id}/children/token", "groupJoinGroup", "`group_invite_group`"),
]
for path, t, privilege in LEGACY_INVITES:
    zone = ("oz_spaces_add_relationships" if path.startswith("/spaces")
            else "oz_groups_add_relationships")
    op("post", path, f"Create a one-use `{t}` invite token (deprecated in Onezone)",
       ok("TokenResponse", "A named invite token of the caller's with `usageLimit` 1 and "
          "Onezone's auto name."), ["404"],
       f"Needs {privilege} (or the zone privilege `{zone}`).", tag="tokens")
    onezone_errors(path, "post")

# Links, for schemathesis' stateful phase (and readers): the ids a list
# answers feed the operations on one of them.
LINKS = [
    # (list path, list key, prefix of the target paths, {param: source})
    ("/groups", "groups", "/groups/{id}", {"id": "$response.body#/groups/0"}),
    ("/spaces", "spaces", "/spaces/{id}", {"id": "$response.body#/spaces/0"}),
    ("/users", "users", "/users/{id}", {"id": "$response.body#/users/0"}),
    ("/user/effective_groups", "groups", "/user/effective_groups/{gid}",
     {"gid": "$response.body#/groups/0"}),
    ("/user/effective_spaces", "spaces", "/user/effective_spaces/{sid}",
     {"sid": "$response.body#/spaces/0"}),
    ("/keys", "keys", "/keys/{kid}", {"kid": "$response.body#/keys/0/id"}),
]
for c, m, p, *_ in MEMBERS:
    LINKS.append((f"/{c}/{{id}}/{m}", m, f"/{c}/{{id}}/{m}/{{{p}}}",
                  {"id": "$request.path.id", p: f"$response.body#/{m}/0"}))
for c in ("groups", "spaces"):
    LINKS.append((f"/{c}/{{id}}/effective_users", "users", f"/{c}/{{id}}/effective_users/{{uid}}",
                  {"id": "$request.path.id", "uid": "$response.body#/users/0"}))


def add_links():
    for source, _key, prefix, params in LINKS:
        src = PATHS[PREFIX + source]["get"]["responses"]["200"]
        links = src.setdefault("links", {})
        for path, item in PATHS.items():
            rest = path[len(PREFIX):] if path.startswith(PREFIX) else None
            if rest is None or not (rest == prefix or rest.startswith(prefix + "/")):
                continue
            names = [seg[1:-1] for seg in rest.split("/") if seg.startswith("{")]
            if set(names) != set(params):
                continue
            for method, o in item.items():
                links[o["operationId"]] = {
                    "operationId": o["operationId"],
                    "parameters": {n: params[n] for n in names},
                }


add_links()

DOC = {
    "openapi": "3.0.3",
    "info": {
        "title": "ozmint",
        "version": "1",
        "description": (
            "An embeddable Onezone-compatible token authority. Paths under "
            f"`{PREFIX}` follow Onezone's REST API where Onezone has them; those "
            "marked (ozmint) are extensions. Exactly one credential per request: "
            "HTTP Basic, or a token in `X-Auth-Token`, `Authorization: Bearer` or the "
            "deprecated `macaroon` header. Lists are paged with `limit` and `after`; a "
            "full page carries `next`. Errors are `{\"error\", \"error_description\"}`."
        ),
    },
    "servers": [{"url": "/", "description": "The server itself (paths carry the API prefix)."}],
    "security": DOC_SECURITY,
    "tags": [{"name": t} for t in
             ["tokens", "providers", "keys", "users", "user", "groups", "spaces", "service"]],
    "paths": dict(sorted(PATHS.items())),
    "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic",
                      "description": "User name and password."},
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "An access or provider token."},
            "xAuthToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
                           "description": "An access or provider token."},
            "macaroon": {"type": "apiKey", "in": "header", "name": "macaroon",
                         "description": "An access or provider token (deprecated header)."},
        },
        "schemas": dict(sorted(SCHEMAS.items())),
        "responses": RESPONSES,
    },
}

if __name__ == "__main__":
    text = json.dumps(DOC, indent=2, ensure_ascii=False) + "\n"
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                sys.exit(f"{OUT} is stale: run python3 api/openapi.py")
    else:
        with open(OUT, "w", encoding="utf-8") as f:
            f.write(text)
