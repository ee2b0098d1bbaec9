//! Unit tests of bank parsing and matching: formats, errors naming file and line, thresholds, variants.
use super::*;
use crate::config::BankFormat;

const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

fn cfg(format: BankFormat, threshold: u32) -> BankConfig {
    BankConfig {
        name: "b".into(),
        path: Some("b.txt".into()),
        format,
        threshold,
        ..BankConfig::default()
    }
}

fn err(c: &BankConfig, text: &str) -> String {
    match Bank::parse(c, Path::new("/banks/b.txt"), text) {
        Ok(_) => panic!("accepted {text:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_csv_and_hex() {
    let text = format!("# demo\n\n{H},item-7\n{H}, item-8 , synthetic-demo\r\n");
    let bank = Bank::parse(&cfg(BankFormat::Csv, 31), Path::new("b.txt"), &text).unwrap();
    assert_eq!(bank.len(), 2);
    assert_eq!((bank.id(0), bank.id(1)), ("item-7", "item-8"));
    assert_eq!(
        (bank.label(0), bank.label(1)),
        (None, Some("synthetic-demo"))
    );
    let hex = Bank::parse(
        &cfg(BankFormat::Hex, 31),
        Path::new("/x/list.txt"),
        &format!("{H}\n\n{H}\n"),
    )
    .unwrap();
    assert_eq!((hex.id(0), hex.id(1)), ("/x/list.txt:1", "/x/list.txt:3"));
}

#[test]
fn bad_lines_name_file_and_line() {
    let csv = cfg(BankFormat::Csv, 31);
    let cases = [
        (format!("{H},a\n# ok\nnot-a-hash,x\n"), "b.txt:3: bad hash"),
        (
            format!("{}0,a\n", H),
            "b.txt:1: bad hash: a PDQ hash has 64 hex digits, this has 65",
        ),
        (
            format!("{}g,a\n", &H[..63]),
            "b.txt:1: bad hash: 'g' is not a hex digit",
        ),
        (format!("{H},a,b,c\n"), "b.txt:1: too many fields"),
        (format!("{H}\n"), "b.txt:1: missing id"),
        (format!("{H},\n"), "b.txt:1: empty id"),
        (
            format!("{H},a\n{H},b\n{H},a\n"),
            "b.txt:3: duplicate id 'a' (first used at /banks/b.txt:1)",
        ),
        (
            "# only comments\n\n".to_string(),
            "/banks/b.txt: no entries",
        ),
        // Issue 21, defect 6: a 2 MB id once made an alert message no sink could take.
        (
            format!("{H},a\n{H},{}\n", "x".repeat(2 << 20)),
            "b.txt:2: id of 2097152 bytes is longer than the 256 accepted",
        ),
        (
            format!("{H},a,{}\n", "L".repeat(257)),
            "b.txt:1: label of 257 bytes is longer than the 256 accepted",
        ),
        (
            format!("{H},a\u{7}b\n"),
            "b.txt:1: id contains a control character",
        ),
    ];
    for (text, want) in cases {
        let msg = err(&csv, &text);
        assert!(
            msg.contains(want) && msg.contains("bank 'b'"),
            "{msg} / {want}"
        );
    }
    let msg = err(&cfg(BankFormat::Hex, 31), &format!("{H},x\n"));
    assert!(
        msg.contains("b.txt:1: a hex bank has one hash per line"),
        "{msg}"
    );
}

#[test]
fn match_respects_threshold_picks_closest_and_reports_variant() {
    let base: PdqHash = H.parse().unwrap();
    let mut far = base;
    far.0[0] ^= (1u64 << 40) - 1; // 40 bits away
    let mut near = base;
    near.0[1] ^= 0b111; // 3 bits away
    let text = format!("{far},far\n{near},near\n");
    let path = Path::new("b");
    let bank = Bank::parse(&cfg(BankFormat::Csv, 31), path, &text).unwrap();
    let m = bank.best_match(&[base]).unwrap();
    assert_eq!(
        (m.id.as_str(), m.distance, m.variant),
        ("near", 3, Dihedral::Original)
    );
    let strict = Bank::parse(&cfg(BankFormat::Csv, 2), path, &text).unwrap();
    assert_eq!(strict.best_match(&[base]), None);
    // A mirrored copy: the bank entry equals the frame's third variant exactly.
    let other = synth_hash(5);
    let variants = [other, other, base, other, other, other, other, other];
    let m = bank.best_match(&variants).unwrap();
    assert_eq!((m.distance, m.variant), (3, Dihedral::Rotate180));
    let mut plain = cfg(BankFormat::Csv, 31);
    plain.dihedral = false;
    let plain = Bank::parse(&plain, path, &text).unwrap();
    assert_eq!(plain.best_match(&variants), None);
}

fn synth_hash(seed: u64) -> PdqHash {
    super::super::index::synth::SplitMix64(seed).hash()
}

#[test]
fn hex_files_with_the_same_name_in_two_folders_load() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a/h.txt"), dir.path().join("b/h.txt"));
    for p in [&a, &b] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{H}\n")).unwrap();
    }
    let mut c = cfg(BankFormat::Hex, 31);
    c.path = Some(a.clone());
    c.paths = vec![b.clone()];
    let bank = Bank::load(&c).unwrap();
    assert_eq!(bank.len(), 2);
    assert_eq!(bank.id(1), format!("{}:1", b.display()));
}

#[test]
fn missing_file_is_named() {
    let mut c = cfg(BankFormat::Csv, 31);
    c.name = "x".into();
    c.path = Some("/no/such/bank.txt".into());
    let msg = Bank::load(&c).err().unwrap().to_string();
    assert!(
        msg.contains("/no/such/bank.txt") && msg.contains("bank 'x'"),
        "{msg}"
    );
}
