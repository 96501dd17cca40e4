#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| natter::fuzz_targets::ticket(data));
