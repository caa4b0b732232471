//! The values of data-access caveats: canonical paths (`data.path`) and CDMI
//! object ids (`data.objectid`), and the spaces they confine a token to.
//!
//! A canonical path starts with `/`, does not end with `/` and names at least
//! a space: `/<spaceId>[/<name>...]`. An object id is the CDMI form of a file
//! GUID: upper-case hex of `00 <enterprise number: 3 bytes> 00 <length> <CRC-16:
//! 2 bytes> <data>`, where the data is `guid#<fileUuid>#<spaceId>` (or
//! `shareGuid#<fileUuid>#<spaceId>#<shareId>`).

/// The CDMI enterprise number Onedata writes into object ids.
const ENTERPRISE_NUMBER: u32 = 0;

/// Whether `path` is canonical: `/<spaceId>[/...]`, no trailing `/`.
pub fn is_canonical_path(path: &str) -> bool {
    path.len() > 1 && path.starts_with('/') && !path.ends_with('/')
}

/// The space a canonical path is in: its first non-empty segment.
pub fn path_space_id(path: &str) -> Option<&str> {
    if !path.starts_with('/') {
        return None;
    }
    path.split('/').find(|s| !s.is_empty())
}

/// CRC-16/ARC (polynomial 0x8005 reflected, initial value 0), the CRC of the
/// CDMI object id.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The CDMI object id of raw GUID data (at most 320 bytes, as Onedata's
/// builder allows; the length byte then holds the length modulo 256, as
/// there).
pub fn objectid_of_guid_data(data: &[u8]) -> Option<String> {
    if data.len() > 320 {
        return None;
    }
    let [_, e1, e2, e3] = ENTERPRISE_NUMBER.to_be_bytes();
    // Truncation to the low byte is the format's (see above).
    let mut bin = vec![0, e1, e2, e3, 0, (data.len() % 256) as u8, 0, 0];
    bin.extend_from_slice(data);
    let [c1, c2] = crc16(&bin).to_be_bytes();
    bin[6] = c1;
    bin[7] = c2;
    Some(bin.iter().map(|b| format!("{b:02X}")).collect())
}

/// The object id of file `file_uuid` in space `space_id`.
pub fn objectid_of_file(file_uuid: &str, space_id: &str) -> Option<String> {
    objectid_of_guid_data(format!("guid#{file_uuid}#{space_id}").as_bytes())
}

/// The space of a file's object id, if `objectid` is one: hex (either case),
/// the reserved bytes zero, the data a file or share GUID with a non-empty
/// UTF-8 space id. The CRC is not checked (Onedata does not check it either).
pub fn objectid_space_id(objectid: &str) -> Option<String> {
    let hex = objectid.as_bytes();
    if hex.len() % 2 != 0 || hex.len() < 16 {
        return None;
    }
    let bin = hex
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            if !p.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            u8::from_str_radix(s, 16).ok()
        })
        .collect::<Option<Vec<u8>>>()?;
    if bin[0] != 0 || bin[4] != 0 {
        return None;
    }
    let data = std::str::from_utf8(&bin[8..]).ok()?;
    let parts: Vec<&str> = data.split('#').collect();
    let space = match parts.as_slice() {
        ["guid", _uuid, space] => *space,
        ["shareGuid", _uuid, space, _share] => *space,
        _ => return None,
    };
    (!space.is_empty()).then(|| space.to_owned())
}

/// Whether `objectid` is the object id of a file (see [`objectid_space_id`]).
pub fn is_valid_objectid(objectid: &str) -> bool {
    objectid_space_id(objectid).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        for ok in ["/s", "/space1/file1.txt", "/s/a b/c", "/s//x"] {
            assert!(is_canonical_path(ok), "{ok}");
        }
        for bad in ["", "/", "//", "s/a", "/s/", "a/b/c/d/e"] {
            assert!(!is_canonical_path(bad), "{bad}");
        }
        assert_eq!(path_space_id("/space1/file1.txt"), Some("space1"));
        assert_eq!(path_space_id("//space1/x"), Some("space1"));
        assert_eq!(path_space_id("/"), None);
        assert_eq!(path_space_id("space1/x"), None);
    }

    #[test]
    fn crc16_is_crc16_arc() {
        // The standard check value of CRC-16/ARC.
        assert_eq!(crc16(b"123456789"), 0xBB3D);
    }

    #[test]
    fn objectids_round_trip_to_their_space() {
        let id = objectid_of_file("123", "abc").unwrap();
        assert!(id.starts_with("0000000000"), "{id}");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert_eq!(objectid_space_id(&id).as_deref(), Some("abc"));
        assert_eq!(
            objectid_space_id(&id.to_ascii_lowercase()).as_deref(),
            Some("abc")
        );
        let share = objectid_of_guid_data(b"shareGuid#f#sp#sh").unwrap();
        assert_eq!(objectid_space_id(&share).as_deref(), Some("sp"));
        for bad in [
            "",
            "00",
            "zz00000000000000",
            &id[1..],
            &format!("01{}", &id[2..]),
            &objectid_of_guid_data(b"guid#only").unwrap(),
            &objectid_of_guid_data(b"guid#f#").unwrap(),
            &objectid_of_guid_data(b"file#f#s").unwrap(),
            "+0000000000000000",
        ] {
            assert!(!is_valid_objectid(bad), "{bad}");
        }
        assert!(objectid_of_guid_data(&[b'a'; 321]).is_none());
    }
}
