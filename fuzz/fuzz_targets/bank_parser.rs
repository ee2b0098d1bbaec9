//! Bank parser fuzz target: any bytes, either format. It must never panic; what it accepts
//! must be a consistent bank (every entry findable at distance 0, ids as parsed).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use streamguard::analysis::bank::Bank;
use streamguard::config::{BankConfig, BankFormat};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let cfg = BankConfig {
        name: "fuzz".into(),
        path: Some("fuzz.txt".into()),
        format: if mode & 1 == 0 { BankFormat::Csv } else { BankFormat::Hex },
        threshold: u32::from(mode >> 1) % 64,
        ..BankConfig::default()
    };
    let Ok(bank) = Bank::parse_bytes(&cfg, Path::new("fuzz.txt"), text) else {
        return;
    };
    assert!(!bank.is_empty());
    for i in 0..bank.len() {
        let h = bank.entry_hash(i);
        let m = bank.best_match(&[h]).expect("an entry must match itself");
        assert_eq!(m.distance, 0);
        assert!(!bank.entry_id(i).is_empty());
    }
});
