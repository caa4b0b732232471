//! Onedata's token escaping, written independently of `ozmint::token::wire`
//! so that the tests check the crate against a second reading of the rule:
//! `0`->`00`, `_`->`01`, `-`->`02`, `/`->`03`, `+`->`04`, `=`->`05`.

/// Escapes base64 text.
pub fn escape(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() * 2);
    for c in b64.chars() {
        match c {
            '0' => out.push_str("00"),
            '_' => out.push_str("01"),
            '-' => out.push_str("02"),
            '/' => out.push_str("03"),
            '+' => out.push_str("04"),
            '=' => out.push_str("05"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`]; panics on an invalid escape.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '0' {
            out.push(c);
            continue;
        }
        out.push(
            match chars.next().expect("a `0` is followed by an escape digit") {
                '0' => '0',
                '1' => '_',
                '2' => '-',
                '3' => '/',
                '4' => '+',
                '5' => '=',
                other => panic!("invalid escape 0{other} in {s}"),
            },
        );
    }
    out
}
