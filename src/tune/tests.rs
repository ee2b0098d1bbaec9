//! Unit tests of sweep parsing, combinations and setting config keys by path.
use super::*;

#[test]
fn sweeps_parse_and_combine() {
    let a = Sweep::parse("sampler.adaptive.hold_ms=1000, 2000").unwrap();
    assert_eq!(a.values, vec!["1000", "2000"]);
    let b = Sweep::parse("sampler.mode=adaptive,all").unwrap();
    let c = combinations(&[a, b]);
    assert_eq!(c.len(), 4);
    assert_eq!(
        c[1],
        vec![
            ("sampler.adaptive.hold_ms".to_string(), "1000".to_string()),
            ("sampler.mode".to_string(), "all".to_string())
        ]
    );
    for (bad, want) in [
        ("x", "expected KEY=V1,V2"),
        ("x=", "empty value list"),
        ("x=1,,2", "an empty value"),
        ("a..b=1", "dotted config path"),
    ] {
        let e = Sweep::parse(bad).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(bad), "{e}");
    }
}

#[test]
fn values_are_typed_and_set_by_path() {
    assert_eq!(toml_value("4000"), toml::Value::Integer(4000));
    assert_eq!(toml_value("1.5"), toml::Value::Float(1.5));
    assert_eq!(toml_value("true"), toml::Value::Boolean(true));
    assert_eq!(
        toml_value("adaptive"),
        toml::Value::String("adaptive".into())
    );
    let mut t: toml::Table = "[[banks]]\nname = \"a\"\n".parse().unwrap();
    set_path(&mut t, "sampler.adaptive.hold_ms", toml_value("5")).unwrap();
    set_path(&mut t, "banks.0.threshold", toml_value("20")).unwrap();
    assert_eq!(t["sampler"]["adaptive"]["hold_ms"].as_integer(), Some(5));
    assert_eq!(t["banks"][0]["threshold"].as_integer(), Some(20));
    let e = set_path(&mut t, "banks.3.threshold", toml_value("20"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("banks.3: the config has 1 banks"), "{e}");
    let e = set_path(&mut t, "banks.threshold", toml_value("20"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("give an index"), "{e}");
}
