//! Instructions per library mint, for callgrind (instruction counts are
//! stable on a noisy machine where timings are not): mints `OZMINT_MINTS`
//! (default 1000) tokens on a relaxed sled store, after one warm-up mint, on
//! the calling thread. `OZMINT_MINT_KIND` picks what is minted: `access`
//! (the default: `Zone::mint` of an 18.02-era access token, a store write)
//! or `temporary` (`Zone::create_temporary_token` from Onezone's JSON body
//! with a time caveat: no write).
//!
//! ```sh
//! cargo bench --bench instructions --no-run
//! for n in 0 1000; do OZMINT_MINTS=$n valgrind --tool=callgrind --separate-threads=yes \
//!   --callgrind-out-file=/tmp/cg-$n.out target/release/deps/instructions-<hash>; done
//! # (totals of /tmp/cg-1000.out-01 - /tmp/cg-0.out-01) / 1000 = instructions per mint
//! ```

mod common;

use ozmint::ops::Caller;
use ozmint::{DurabilityMode, Subject, TokenKind};

fn main() {
    let n: usize = std::env::var("OZMINT_MINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let fx = common::MintFixture::on_disk(DurabilityMode::Relaxed).await;
        let Subject::User(user) = fx.issuer else {
            unreachable!("the fixture's issuer is a user")
        };
        let temporary = match std::env::var("OZMINT_MINT_KIND").as_deref() {
            Err(_) | Ok("access") => false,
            Ok("temporary") => true,
            Ok(other) => panic!("OZMINT_MINT_KIND: access or temporary, not {other:?}"),
        };
        let caller = Caller::user(user);
        let body = serde_json::json!({
            "caveats": [{ "type": "time", "validUntil": ozmint::model::now() + 3600 }]
        });
        let mint = || async {
            if temporary {
                let t = fx.zone.create_temporary_token(&caller, fx.issuer, &body);
                t.await.expect("temporary mint").token
            } else {
                let m = fx.zone.mint(TokenKind::Access, user, fx.issuer);
                m.await.expect("mint").token
            }
        };
        mint().await;
        for _ in 0..n {
            std::hint::black_box(mint().await);
        }
    });
}
