//! ONNX classifiers through the real ONNX Runtime (the library scripts/setup.sh unpacks):
//! outputs equal onnxruntime's Python API on the same inputs, and bad models, manifests and
//! runtimes are clear errors.
use std::path::{Path, PathBuf};
use std::process::Command;
use streamguard::classify::Classifier;
use streamguard::classify::model::post_process;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Deterministic values in [-1, 1) (a 64-bit LCG).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The model's raw first output for `input`, from onnxruntime's Python API.
fn python_outputs(model: &Path, input: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.f32");
    let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&f, bytes).unwrap();
    let shape = shape.map(|d| d.to_string()).join(",");
    let out = Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("scripts/onnx_reference.py"))
        .arg(model)
        .arg(&f)
        .arg(shape)
        .output()
        .expect(".venv (scripts/setup.sh) with onnxruntime");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Largest difference between the scores of `c` (run from Rust) and onnxruntime's Python
/// API on the same five random input tensors of `shape`.
fn largest_difference_from_python(c: &mut Classifier, dir: &Path, shape: [usize; 4]) -> f32 {
    let n = c.input_len();
    assert_eq!(n, shape.iter().product::<usize>());
    let mut worst = 0f32;
    for seed in 0..5 {
        let x = noise(seed, n);
        let ours = c.run_tensor(&x).unwrap();
        let theirs = post_process(
            c.manifest.output,
            &python_outputs(&dir.join(&c.manifest.file), &x, shape),
        );
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!(
        "{}: largest difference from onnxruntime (Python): {worst:e}",
        dir.display()
    );
    worst
}

fn scores_of(c: &mut Classifier, image: &str) -> Vec<f32> {
    let img = image::open(repo().join(image)).unwrap().into_rgb8();
    c.classify(streamguard::analysis::pdq::RgbImage::packed(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
    ))
    .unwrap()
}

#[test]
fn mobilenet_class_model_equals_onnxruntime_python() {
    let dir = repo().join("models/ppocr-cls");
    let mut c = Classifier::load(&dir, None, 1).unwrap();
    assert_eq!(c.manifest.labels, ["0", "180"]);
    let worst = largest_difference_from_python(&mut c, &dir, [1, 3, 48, 192]);
    assert!(worst <= 1e-5, "largest difference {worst}");
    // A real image through the whole path: two scores that sum to one.
    let s = scores_of(&mut c, "config/demo-image.png");
    assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{s:?}");
}

#[test]
fn marker_model_equals_onnxruntime_python_and_sees_the_marker() {
    let dir = repo().join("models/marker");
    let size = std::fs::metadata(dir.join("model.onnx")).unwrap().len();
    assert!(
        size < 1 << 20,
        "the marker model is under 1 MB: {size} bytes"
    );
    let mut c = Classifier::load(&dir, None, 1).unwrap();
    assert_eq!(c.manifest.labels, ["marker"]);
    let worst = largest_difference_from_python(&mut c, &dir, [1, 3, 90, 160]);
    assert!(worst <= 1e-5, "largest difference {worst}");
    let t = c.manifest.thresholds["marker"];
    // The demo still (the synthetic marker on a benign photo) is over the halt threshold;
    // the demo bank's photo and a cat photo, without the marker, under review.
    let marked = scores_of(&mut c, "config/demo-marker.png")[0];
    assert!(
        marked >= t.halt,
        "marker scored {marked}, halt at {}",
        t.halt
    );
    for benign in [
        "config/demo-image.png",
        "tests/data/pdq/images/chelsea_333x222.png",
    ] {
        let s = scores_of(&mut c, benign)[0];
        assert!(s < t.review, "{benign} scored {s}, review at {}", t.review);
    }
}

/// A copy of the shipped model's folder with `model.toml` (and optionally the ONNX file)
/// replaced.
fn variant(toml_edit: impl Fn(String) -> String, onnx: Option<&[u8]>) -> tempfile::TempDir {
    let src = repo().join("models/ppocr-cls");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(src.join("model.toml")).unwrap();
    std::fs::write(dir.path().join("model.toml"), toml_edit(text)).unwrap();
    match onnx {
        Some(bytes) => std::fs::write(dir.path().join("model.onnx"), bytes).unwrap(),
        None => {
            std::fs::copy(src.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
        }
    }
    dir
}

#[test]
fn models_that_do_not_fit_their_manifest_are_refused() {
    let cases: Vec<(tempfile::TempDir, &str)> = vec![
        (
            variant(|t| t, Some(b"this is not an onnx model")),
            "not a model ONNX Runtime can load",
        ),
        (
            variant(
                |t| {
                    t.replace(
                        "labels = [\"0\", \"180\"]",
                        "labels = [\"0\", \"90\", \"180\"]",
                    )
                },
                None,
            ),
            "the model gives 2 output values, the manifest has 3 labels",
        ),
        (
            variant(
                |t| t.replace("layout = \"nchw\"", "layout = \"nhwc\""),
                None,
            ),
            "the manifest (Nhwc, 192x48) gives [1, 48, 192, 3]",
        ),
        (
            variant(|t| t.replace("input = \"x\"", "input = \"image\""), None),
            "manifest input 'image' but the model's input is named 'x'",
        ),
        (
            variant(
                |t| t.replace("file = \"model.onnx\"", "file = \"gone.onnx\""),
                None,
            ),
            "gone.onnx: not found",
        ),
        (
            variant(|t| t.replace("width = 192", "width = 0"), None),
            "width, height: must be between 1 and 4096",
        ),
    ];
    for (dir, want) in cases {
        let e = Classifier::load(dir.path(), None, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "want {want:?}, got: {e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
}

#[test]
fn a_missing_or_wrong_runtime_is_a_clear_error() {
    let run = |lib: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_streamguard"))
            .args([
                "classify",
                "--model",
                "models/ppocr-cls",
                "config/demo-image.png",
            ])
            .current_dir(repo())
            .env("ORT_DYLIB_PATH", lib)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run("/nonexistent/libonnxruntime.so");
    assert!(
        e.contains(
            "ONNX Runtime library /nonexistent/libonnxruntime.so (from ORT_DYLIB_PATH): not found"
        ),
        "{e}"
    );
    // Some other shared library: not ONNX Runtime at all.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("libc");
    let e = run(libc);
    assert!(e.contains("does not export `OrtGetApiBase`"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn pool_scores_every_frame_like_a_direct_run() {
    use streamguard::classify::pool::{Pool, Scored};
    let model = repo().join("models/ppocr-cls");
    let img = image::open(repo().join("config/demo-image.png"))
        .unwrap()
        .into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let pixels = img.into_raw();
    let mut direct = Classifier::load(&model, None, 1).unwrap();
    let want = direct
        .classify(streamguard::analysis::pdq::RgbImage::packed(&pixels, w, h))
        .unwrap();

    let (out_tx, out_rx) = crossbeam_channel::unbounded::<Scored<u64>>();
    // One worker; ten normal jobs and one urgent (the order urgent jobs are served in is
    // unit-tested in classify::pool, deterministically).
    let (pool, inlet) = Pool::start(std::slice::from_ref(&model), None, 1, 1, 16, out_tx).unwrap();
    let frame = streamguard::analysis::pdq::RgbImage::packed(&pixels, w, h);
    let job = |key| inlet.job(key, frame).unwrap();
    for key in 0..10 {
        inlet.normal.send(job(key)).unwrap();
    }
    inlet.urgent.send(job(99)).unwrap();
    drop(inlet);
    let got: Vec<_> = out_rx.iter().collect();
    pool.join();
    assert_eq!(got.len(), 11);
    assert!(got.iter().any(|s| s.tag == 99));
    for s in &got {
        assert_eq!(s.scores.len(), 1, "one model");
        assert_eq!(
            s.scores[0].as_ref().unwrap(),
            &want,
            "same scores as a direct run"
        );
    }
    // A model that does not load: nothing starts.
    let bad = variant(|t| t, Some(b"garbage"));
    let (tx, _rx) = crossbeam_channel::unbounded::<Scored<u64>>();
    let e = Pool::start(&[bad.path().to_path_buf()], None, 1, 2, 4, tx)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a model ONNX Runtime can load"), "{e}");
}
