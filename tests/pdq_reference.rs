//! Cross-check against the live reference: images generated here (random sizes, smooth and
//! noisy content, the 64x64 and smallest-hashable special cases) are hashed by `streamguard
//! hash` and by Meta's C++ reference (scripts/pdq_reference.py in the .venv that
//! scripts/setup.sh creates); every line must be identical.
use std::path::Path;
use std::process::Command;

/// A small deterministic generator, so failures can be reproduced.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

fn make_image(rng: &mut Lcg, w: u32, h: u32) -> image::RgbImage {
    let (fx, fy, phase) = (1 + rng.next() % 9, 1 + rng.next() % 7, rng.next() % 100);
    let noise = rng.next() % 4; // 0: none .. 3: heavy
    let contrast = [1.0f32, 0.5, 0.08][(rng.next() % 3) as usize];
    image::RgbImage::from_fn(w, h, |x, y| {
        let u = x as f32 / w as f32;
        let v = y as f32 / h as f32;
        let base = ((u * fx as f32 * 6.3 + phase as f32).sin() + (v * fy as f32 * 6.3).cos())
            * 60.0
            * contrast
            + 128.0;
        let mut px = [0u8; 3];
        for (c, p) in px.iter_mut().enumerate() {
            let n = if noise == 0 {
                0.0
            } else {
                (rng.next() % (noise * 40)) as f32 - (noise * 20) as f32
            };
            *p = (base + n + c as f32 * 17.0 * u).clamp(0.0, 255.0) as u8;
        }
        image::Rgb(px)
    })
}

#[test]
fn streamguard_hash_equals_reference_on_generated_images() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (make test does)",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(0x5eed);
    let mut sizes = vec![(64, 64), (5, 5), (5, 300), (1280, 720), (129, 257)];
    for _ in 0..25 {
        sizes.push((5 + rng.next() % 900, 5 + rng.next() % 900));
    }
    let mut files = Vec::new();
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let path = dir.path().join(format!("gen{i:02}_{w}x{h}.png"));
        make_image(&mut rng, w, h).save(&path).unwrap();
        files.push(path);
    }
    let run = |cmd: &mut Command| {
        let out = cmd.args(&files).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let ours = run(Command::new(env!("CARGO_BIN_EXE_streamguard")).arg("hash"));
    let reference = run(Command::new(&python).arg(root.join("scripts/pdq_reference.py")));
    let mut differ = Vec::new();
    for (a, b) in ours.lines().zip(reference.lines()) {
        if a != b {
            differ.push(format!("ours: {a}\nref:  {b}"));
        }
    }
    assert_eq!(ours.lines().count(), files.len());
    assert!(
        differ.is_empty(),
        "{} of {} differ:\n{}",
        differ.len(),
        files.len(),
        differ.join("\n")
    );
}
