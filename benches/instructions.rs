//! Instructions per library mint, for callgrind (instruction counts are
//! stable on a noisy machine where timings are not): mints `OZMINT_MINTS`
//! (default 1000) access tokens with `Zone::mint` on a relaxed sled store,
//! after one warm-up mint, on the calling thread.
//!
//! ```sh
//! cargo bench --bench instructions --no-run
//! for n in 0 1000; do OZMINT_MINTS=$n valgrind --tool=callgrind --separate-threads=yes \
//!   --callgrind-out-file=/tmp/cg-$n.out target/release/deps/instructions-<hash>; done
//! # (totals of /tmp/cg-1000.out-01 - /tmp/cg-0.out-01) / 1000 = instructions per mint
//! ```

mod common;

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
        let mint = || fx.zone.mint(TokenKind::Access, user, fx.issuer);
        mint().await.expect("warm-up mint");
        for _ in 0..n {
            std::hint::black_box(mint().await.expect("mint"));
        }
    });
}
