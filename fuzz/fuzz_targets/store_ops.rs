#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ozmint::fuzzing::store_ops(data));
