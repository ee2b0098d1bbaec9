//! The command line on good and bad input: every bad input names its culprit.
#[path = "support/cmd.rs"]
mod cmd;

use cmd::{repo, stdout_ok, streamguard};

/// Writes `config` (and a good bank) into a temporary folder and runs check-config on it.
fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("config/demo-bank.txt"),
        dir.path().join("bank.txt"),
    )
    .unwrap();
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let out = streamguard(&["check-config", "c.toml"], dir.path());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn embedded_default_config_checks_ok() {
    let out = stdout_ok(&streamguard(&["check-config"], &repo()));
    assert!(out.contains("1 bank(s) with 1 hash(es)"), "{out}");
}

#[test]
fn good_config_passes() {
    let (ok, text) = check("[[banks]]\nname = \"b\"\npath = \"bank.txt\"\n");
    assert!(ok, "{text}");
}

#[test]
fn unknown_key_is_named() {
    let (ok, text) = check("[analysis]\nworkerz = 2\n");
    assert!(!ok);
    assert!(
        text.contains("analysis.workerz: unknown key") && text.contains("c.toml"),
        "{text}"
    );
}

#[test]
fn wrong_type_is_named() {
    let (ok, text) = check("[analysis]\nworkers = \"many\"\n");
    assert!(!ok);
    assert!(text.contains("analysis.workers"), "{text}");
}

#[test]
fn missing_bank_file_is_named() {
    let (ok, text) = check("[[banks]]\nname = \"b\"\npath = \"absent.txt\"\n");
    assert!(!ok);
    assert!(
        text.contains("bank 'b'") && text.contains("absent.txt"),
        "{text}"
    );
}

#[test]
fn malformed_bank_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.txt"), "# comment\n0123,x\n").unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[[banks]]\nname = \"b\"\npath = \"bad.txt\"\n",
    )
    .unwrap();
    let out = streamguard(&["check-config", "c.toml"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.txt:2") && err.contains("64 hex digits"),
        "{err}"
    );
}

#[test]
fn hash_prints_reference_format_and_names_unreadable_files() {
    let out = streamguard(&["hash", "config/demo-image.png", "no-such.png"], &repo());
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bank = std::fs::read_to_string(repo().join("config/demo-bank.txt")).unwrap();
    let banked = bank
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    assert_eq!(stdout.trim(), format!("{banked} 100 config/demo-image.png"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such.png"));
}

#[test]
fn template_that_does_not_parse_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tpl")).unwrap();
    std::fs::write(
        dir.path().join("tpl/broken.pipeline"),
        "# broken\nvideotestsrc ! ! nosuchelement\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[daemon]\npipelines_dir = \"tpl\"\n[[streams]]\nid = \"cam1\"\npipeline = \"broken\"\n[[streams]]\nid = \"cam2\"\npipeline = \"nope\"\n",
    )
    .unwrap();
    let out = streamguard(&["check-config", "c.toml"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stream 'cam1'") && err.contains("does not build"),
        "{err}"
    );
    assert!(
        err.contains("stream 'cam2'") && err.contains("no pipeline template 'nope'"),
        "{err}"
    );
}

#[test]
fn every_builtin_template_builds() {
    let dir = tempfile::tempdir().unwrap();
    let img = repo().join("config/demo-image.png");
    let config = format!(
        "[[streams]]\nid = \"a\"\npipeline = \"testsrc\"\n\
         [[streams]]\nid = \"b\"\npipeline = \"testsrc-image\"\nparams = {{ image = \"{}\" }}\n\
         [[streams]]\nid = \"b2\"\npipeline = \"testsrc-image\"\nparams = {{ image = \"x.jpg\", decoder = \"jpegdec\" }}\n\
         [[streams]]\nid = \"c\"\npipeline = \"file\"\nparams = {{ location = \"/tmp/x.mp4\" }}\n\
         [[streams]]\nid = \"d\"\npipeline = \"rtmp\"\nparams = {{ url = \"rtmp://127.0.0.1:1935/live/x\" }}\n\
         [[streams]]\nid = \"e\"\npipeline = \"srt\"\nparams = {{ uri = \"srt://127.0.0.1:7001\" }}\n\
         [[streams]]\nid = \"f\"\npipeline = \"rtsp\"\nparams = {{ url = \"rtsp://127.0.0.1:8554/cam\" }}\n\
         [[streams]]\nid = \"g\"\npipeline = \"hls\"\nparams = {{ url = \"http://127.0.0.1:8080/hls/x.m3u8\" }}\n",
        img.display()
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    stdout_ok(&streamguard(&["check-config", "c.toml"], dir.path()));
}

/// Issue 21, defect 4: a parameter value that is pipeline syntax once passed check-config and
/// made `run` dump /etc/passwd into the log. As a property value it is now one quoted value
/// (which videotestsrc refuses as a pattern); as an element name it is refused outright.
#[test]
fn template_parameters_are_values_never_pipeline_syntax() {
    let hostile = "smpte ! fakesink filesrc location=/etc/passwd ! fakesink dump=true videotestsrc is-live=true";
    let img = repo().join("config/demo-image.png");
    let (ok, text) = check(&format!(
        "[[streams]]\nid = \"probe\"\npipeline = \"testsrc\"\nparams = {{ pattern = \"{hostile}\" }}\n\
         [[streams]]\nid = \"probe2\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{}\", decoder = \"pngdec ! filesrc location=/etc/passwd\" }}\n",
        img.display()
    ));
    assert!(!ok, "{text}");
    assert!(
        text.contains("stream 'probe'") && text.contains("pattern"),
        "{text}"
    );
    assert!(
        text.contains("stream 'probe2'")
            && text.contains("parameter 'decoder': must be an element name"),
        "{text}"
    );
    assert!(
        !text.contains("root:"),
        "the file's contents reached the output:\n{text}"
    );
}

#[test]
fn bad_banks_are_named_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let h = "799dd9333637619c6598c832067663b937de69f6de1a87d8e399278078601f20";
    let files = [
        ("dup.csv", format!("{h},a\n{h},b\n\n{h},a\n")),
        ("empty.csv", "# nothing here\n\n".to_string()),
        ("short.txt", format!("{}\n", &h[..60])),
        ("nonhex.csv", format!("# x\n{}z,a\n", &h[..63])),
        // Issue 21, defect 6: an id of 2 MB made an alert message no sink could take.
        ("long.csv", format!("{h},ok\n{h},{}\n", "i".repeat(2 << 20))),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(
        dir.path().join("c.toml"),
        "[[banks]]\nname = \"dup\"\npath = \"dup.csv\"\n\
         [[banks]]\nname = \"empty\"\npath = \"empty.csv\"\n\
         [[banks]]\nname = \"short\"\npath = \"short.txt\"\nformat = \"hex\"\n\
         [[banks]]\nname = \"nonhex\"\npath = \"nonhex.csv\"\n\
         [[banks]]\nname = \"long\"\npath = \"long.csv\"\n\
         [[banks]]\nname = \"gone\"\npaths = [\"missing.csv\"]\n",
    )
    .unwrap();
    let out = streamguard(&["check-config", "c.toml"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "bank 'dup': dup.csv:4: duplicate id 'a' (first used at dup.csv:1)",
        "bank 'empty': empty.csv: no entries",
        "bank 'short': short.txt:1: bad hash: a PDQ hash has 64 hex digits, this has 60",
        "bank 'nonhex': nonhex.csv:2: bad hash: 'z' is not a hex digit",
        "bank 'long': long.csv:2: id of 2097152 bytes is longer than the 256 accepted",
        "bank 'gone': cannot read missing.csv",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn bank_stats_and_match_mirrored_and_rotated_copies() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::open(repo().join("config/demo-image.png")).unwrap();
    img.fliph().save(dir.path().join("mirrored.png")).unwrap();
    img.rotate90().save(dir.path().join("rotated.png")).unwrap();
    image::open(repo().join("tests/data/pdq/images/chelsea_orig.png"))
        .unwrap()
        .save(dir.path().join("other.png"))
        .unwrap();
    std::fs::copy(
        repo().join("config/demo-bank.txt"),
        dir.path().join("bank.csv"),
    )
    .unwrap();
    let config = "[[banks]]\nname = \"demo\"\npath = \"bank.csv\"\naction = \"halt\"\n\
                  [[banks]]\nname = \"plain\"\npath = \"bank.csv\"\ndihedral = false\n";
    std::fs::write(dir.path().join("c.toml"), config).unwrap();

    let out = streamguard(&["bank", "stats", "--config", "c.toml"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(
        stats.lines().any(|l| l.starts_with("demo\t1\t1\t")),
        "{stats}"
    );
    assert!(stats.contains("peak RSS"), "{stats}");

    let out = streamguard(
        &[
            "bank",
            "match",
            "--config",
            "c.toml",
            "mirrored.png",
            "rotated.png",
            "other.png",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    let find = |img: &str, bank: &str| {
        rows.iter()
            .find(|r| r[0] == img && r[2] == bank)
            .unwrap_or_else(|| panic!("no {img} row for {bank} in:\n{text}"))
    };
    for (img, variant) in [("mirrored.png", "flipy"), ("rotated.png", "rot90")] {
        let r = find(img, "demo");
        let distance: u32 = r[5].parse().unwrap();
        assert!(distance <= 31, "{text}");
        assert_eq!(
            (r[3], r[6], r[7]),
            ("demo-coffee", variant, "halt"),
            "{text}"
        );
        // The bank without dihedral matching does not see the copy.
        assert!(
            !rows.iter().any(|r| r[0] == img && r[2] == "plain"),
            "{text}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r[0] == "other.png" && r[7] == "no match"),
        "{text}"
    );
}

#[test]
fn bad_adaptive_sampling_settings_are_named() {
    let (ok, text) = check(
        "[sampler]\nmode = \"adaptive\"\n[sampler.adaptive]\nbase_interval_ms = 9000\nmax_gap_ms = 6000\ndense_rate = 0\n",
    );
    assert!(!ok);
    assert!(
        text.contains("sampler.adaptive.base_interval_ms: must not exceed max_gap_ms")
            && text.contains("sampler.adaptive.dense_rate: must be a positive number"),
        "{text}"
    );
}

#[test]
fn models_are_checked_by_check_config() {
    let rt = repo().join(".onnxruntime/libonnxruntime.so.1.31.1");
    let model = repo().join("models/ppocr-cls");
    let cfg = |models: &str| {
        format!(
            "[classify]\nruntime = \"{}\"\nmodels = [{models}]\n",
            rt.display()
        )
    };
    let (ok, text) = check(&cfg(&format!("\"{}\"", model.display())));
    assert!(ok && text.contains("1 model(s)"), "{text}");
    // A model folder whose manifest does not fit its model: labels.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(model.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    let manifest = std::fs::read_to_string(model.join("model.toml"))
        .unwrap()
        .replace("labels = [\"0\", \"180\"]", "labels = [\"a\"]");
    std::fs::write(dir.path().join("model.toml"), manifest).unwrap();
    let (ok, text) = check(&cfg(&format!("\"{}\"", dir.path().display())));
    assert!(!ok);
    assert!(
        text.contains("classify.models[0]")
            && text.contains("the model gives 2 output values, the manifest has 1 labels"),
        "{text}"
    );
    let (ok, text) = check(&cfg("\"no-such-model\""));
    assert!(
        !ok && text.contains("classify.models[0]: no-such-model: no model.toml there"),
        "{text}"
    );
    // A runtime that is not there.
    let (ok, text) = check(&format!(
        "[classify]\nruntime = \"/nonexistent/libonnxruntime.so\"\nmodels = [\"{}\"]\n",
        model.display()
    ));
    assert!(
        !ok && text.contains(
            "classify.runtime: ONNX Runtime library /nonexistent/libonnxruntime.so (from classify.runtime): not found"
        ),
        "{text}"
    );
}

#[test]
fn a_model_that_does_not_load_stops_the_daemon_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("broken");
    std::fs::create_dir(&model).unwrap();
    std::fs::copy(
        repo().join("models/marker/model.toml"),
        model.join("model.toml"),
    )
    .unwrap();
    std::fs::write(model.join("model.onnx"), b"not an ONNX file").unwrap();
    let config = format!(
        "[classify]\nruntime = \"{}\"\nmodels = [\"{}\"]\n[http]\nlisten = \"\"\n[store]\npath = \"{}\"\n",
        repo()
            .join(".onnxruntime/libonnxruntime.so.1.31.1")
            .display(),
        model.display(),
        dir.path().join("a.db").display()
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    // `timeout` in case it started after all (it would run until stopped).
    let out = std::process::Command::new("timeout")
        .args([
            "60",
            env!("CARGO_BIN_EXE_streamguard"),
            "run",
            "--config",
            "c.toml",
        ])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("classify.models[0]") && text.contains("not a model ONNX Runtime can load"),
        "{text}"
    );
}

/// `alerts` reads, never creates: a store that is not there is an error naming its path (a
/// wrong folder once looked like "no alerts"); filters pick by state and stream.
#[test]
fn alerts_names_a_missing_store_and_filters() {
    use streamguard::domain::{Action, HashSubject, Subject};
    use streamguard::moderation::store::{AlertStore, NewAlert};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), "[store]\npath = \"var/a.db\"\n").unwrap();
    let out = streamguard(&["alerts", "--config", "c.toml"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no alert store at var/a.db") && err.contains("working directory"),
        "{err}"
    );
    assert!(!dir.path().join("var/a.db").exists(), "created by a read");

    std::fs::create_dir(dir.path().join("var")).unwrap();
    let mut store = AlertStore::open(&dir.path().join("var/a.db")).unwrap();
    for (stream, item) in [("live/a", "x"), ("live/b", "y"), ("live/a", "z")] {
        store
            .record_match(&NewAlert {
                stream: stream.into(),
                subject: Subject::Hash(HashSubject {
                    bank: "demo".into(),
                    item_id: item.into(),
                    label: None,
                    distance: 3,
                    quality: 90,
                    hash: "00".repeat(32),
                    variant: "original".into(),
                }),
                frame_pts_ms: 1000,
                action: Action::Review,
                detect_ms: None,
            })
            .unwrap();
    }
    drop(store);
    let rows = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["alerts", "--config", "c.toml"];
        all.extend_from_slice(args);
        stdout_ok(&streamguard(&all, dir.path()))
            .lines()
            .skip(1)
            .map(|l| l.split('\t').nth(4).unwrap().to_string())
            .collect()
    };
    assert_eq!(rows(&[]), ["x", "y", "z"]);
    assert_eq!(rows(&["--stream", "live/a"]), ["x", "z"]);
    assert_eq!(rows(&["--stream", "live/a", "--limit", "1"]), ["z"]);
    assert_eq!(rows(&["--state", "open"]).len(), 3);
    assert!(rows(&["--state", "dismissed"]).is_empty());
    let out = streamguard(
        &["alerts", "--config", "c.toml", "--state", "nope"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'nope' is not one of open"),
        "{out:?}"
    );
}

/// `bank build` from a folder (nested), on every core: each line's hash equals what `hash`
/// prints for that file, ids are the paths under the folder, a low-quality image is reported
/// and left out, the result loads as a bank, `--incremental` hashes only new files, `--ids`
/// names entries from a CSV, and a clash of ids is an error naming both files.
#[test]
fn bank_build_equals_hash_output_and_loads_as_a_bank() {
    let dir = tempfile::tempdir().unwrap();
    let src = repo().join("tests/data/pdq/images");
    let imgs = dir.path().join("imgs");
    std::fs::create_dir_all(imgs.join("sub")).unwrap();
    for (from, to) in [
        ("camera_64x64.png", "camera.png"),
        ("camera_lowcontrast.png", "dim.png"),
        ("brick_160x160.png", "sub/brick.png"),
    ] {
        std::fs::copy(src.join(from), imgs.join(to)).unwrap();
    }
    let build = |args: &[&str]| {
        let mut all = vec!["bank", "build", "--out", "bank.csv"];
        all.extend_from_slice(args);
        streamguard(&all, dir.path())
    };
    let out = build(&["--label", "synthetic-demo", "imgs"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("dim.png: quality 15 is below 50"), "{err}");
    assert!(
        err.contains("2 entries (2 hashed now, 0 kept from before, 1 below quality 50)"),
        "{err}"
    );
    let bank = std::fs::read_to_string(dir.path().join("bank.csv")).unwrap();
    let lines: Vec<&str> = bank.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{bank}");
    for (line, (id, file)) in lines
        .iter()
        .zip([("camera", "camera.png"), ("sub/brick", "sub/brick.png")])
    {
        let hashed = stdout_ok(&streamguard(&["hash", &format!("imgs/{file}")], dir.path()));
        let hash = hashed.split(' ').next().unwrap();
        assert_eq!(*line, format!("{hash},{id},synthetic-demo"));
    }
    std::fs::write(
        dir.path().join("c.toml"),
        "[[banks]]\nname = \"built\"\npath = \"bank.csv\"\n",
    )
    .unwrap();
    let checked = stdout_ok(&streamguard(&["check-config", "c.toml"], dir.path()));
    assert!(checked.contains("1 bank(s) with 2 hash(es)"), "{checked}");

    // A new image: only it is hashed; the old lines stay as they were.
    std::fs::copy(src.join("coffee_160x107.png"), imgs.join("coffee.png")).unwrap();
    let out = build(&["--incremental", "--label", "synthetic-demo", "imgs"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("3 entries (1 hashed now, 2 kept from before"),
        "{err}"
    );
    let again = std::fs::read_to_string(dir.path().join("bank.csv")).unwrap();
    for l in &lines {
        assert!(again.contains(l), "{again}");
    }
    assert!(again.contains(",coffee,synthetic-demo"), "{again}");

    // Ids from a CSV; the low-quality image kept when asked.
    std::fs::write(
        dir.path().join("ids.csv"),
        "# id,file\nitem-1,imgs/camera.png\nitem-2,imgs/dim.png\n",
    )
    .unwrap();
    let out = build(&["--ids", "ids.csv", "--keep-low-quality"]);
    assert!(out.status.success(), "{out:?}");
    let bank = std::fs::read_to_string(dir.path().join("bank.csv")).unwrap();
    assert!(
        bank.contains(",item-1\n") && bank.contains(",item-2\n"),
        "{bank}"
    );

    // Two files with the same id; a file that is no image.
    std::fs::copy(src.join("camera_64x64.png"), imgs.join("sub/camera.png")).unwrap();
    let out = build(&["imgs/camera.png", "imgs/sub/camera.png"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("id 'camera' from both"),
        "{err}"
    );
    std::fs::write(imgs.join("broken.png"), "not a png").unwrap();
    let out = build(&["imgs"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("broken.png: cannot read image"),
        "{err}"
    );
    assert!(err.contains("not written"), "{err}");
}
