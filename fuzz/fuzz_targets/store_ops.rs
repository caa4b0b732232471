#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| testkit::fuzzing::store_ops(data));
