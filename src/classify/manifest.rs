//! A model's manifest, `models/<name>/model.toml`: what the ONNX file expects and what its
//! outputs mean. Every key is documented on [`Manifest`]; `models/README.md` has an example.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Memory layout of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[batch, channel, height, width]` (PyTorch, PaddlePaddle exports).
    Nchw,
    /// `[batch, height, width, channel]` (TensorFlow exports).
    Nhwc,
}

/// Channel order the model was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColourOrder {
    Rgb,
    /// OpenCV-trained models.
    Bgr,
}

/// What the model's output values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Logits of mutually exclusive labels: softmax turns them into scores.
    Softmax,
    /// Independent logits per label: a sigmoid each.
    Sigmoid,
    /// Used unchanged (a model that ends in its own softmax, or thresholds set on raw
    /// values).
    Logits,
}

/// Score thresholds of one label.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// A frame scoring at least this raises a review alert.
    pub review: f32,
    /// At least this counts towards a halt (the policy may want several such frames).
    pub halt: f32,
}

/// `model.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The ONNX file, relative to the manifest's folder.
    pub file: PathBuf,
    /// The input tensor's name (the model has exactly one input).
    pub input: String,
    /// `nchw` or `nhwc`.
    pub layout: Layout,
    /// Input width and height in pixels; frames are resized to this (bilinear).
    pub width: usize,
    pub height: usize,
    /// `rgb` or `bgr`. Default: `rgb`.
    #[serde(default = "rgb")]
    pub colour: ColourOrder,
    /// Each 8-bit value is multiplied by this, then `(v - mean) / std` per channel (in the
    /// model's channel order). Defaults: 1/255, mean 0, std 1 (values in 0..1).
    #[serde(default = "scale")]
    pub scale: f32,
    #[serde(default)]
    pub mean: [f32; 3],
    #[serde(default = "ones")]
    pub std: [f32; 3],
    /// `softmax`, `sigmoid` or `logits`.
    pub output: OutputKind,
    /// One name per output value, in order.
    pub labels: Vec<String>,
    /// Per-label thresholds; labels without an entry never alert (a "benign" class).
    #[serde(default)]
    pub thresholds: BTreeMap<String, Thresholds>,
}

fn rgb() -> ColourOrder {
    ColourOrder::Rgb
}
fn scale() -> f32 {
    1.0 / 255.0
}
fn ones() -> [f32; 3] {
    [1.0; 3]
}

/// Why a manifest cannot be used; the message starts with the manifest's path.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or a key missing, unknown or of the wrong type.
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// Values that do not fit together, each as `key: problem`.
    #[error("{}: {}", path.display(), problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl Manifest {
    /// Reads and checks `dir/model.toml`; every problem names the file and key.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join("model.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        let m: Manifest = toml::from_str(&text).map_err(|source| ManifestError::Parse {
            path: path.clone(),
            source,
        })?;
        let problems = m.problems();
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(ManifestError::Invalid { path, problems })
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.width == 0 || self.height == 0 || self.width > 4096 || self.height > 4096 {
            p.push("width, height: must be between 1 and 4096".to_string());
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            p.push("scale: must be a positive number".into());
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s != 0.0)) {
            p.push("std: must be non-zero numbers".into());
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            p.push("mean: must be numbers".into());
        }
        if self.file.is_absolute()
            || self
                .file
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            p.push("file: must be a path inside the model's folder".into());
        }
        if self.labels.is_empty() {
            p.push("labels: at least one".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for l in &self.labels {
            if !seen.insert(l) {
                p.push(format!("labels: '{l}' twice"));
            }
        }
        for (label, t) in &self.thresholds {
            if !self.labels.contains(label) {
                p.push(format!("thresholds.{label}: not one of the labels"));
            }
            for (k, v) in [("review", t.review), ("halt", t.halt)] {
                if !v.is_finite() {
                    p.push(format!("thresholds.{label}.{k}: must be a number"));
                }
            }
            if t.review > t.halt {
                p.push(format!("thresholds.{label}: review must not exceed halt"));
            }
            if self.output != OutputKind::Logits
                && [t.review, t.halt].iter().any(|v| !(0.0..=1.0).contains(v))
            {
                p.push(format!(
                    "thresholds.{label}: {:?} scores lie in 0..1, so must the thresholds",
                    self.output
                ));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Manifest, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.toml"), text).unwrap();
        Manifest::load(dir.path()).map_err(|e| e.to_string())
    }

    const GOOD: &str = "file = \"m.onnx\"\ninput = \"x\"\nlayout = \"nchw\"\nwidth = 64\nheight = 64\n\
        output = \"softmax\"\nlabels = [\"clean\", \"marker\"]\n\
        [thresholds.marker]\nreview = 0.5\nhalt = 0.9\n";

    #[test]
    fn good_manifest_with_defaults() {
        let m = load(GOOD).unwrap();
        assert_eq!(m.colour, ColourOrder::Rgb);
        assert!((m.scale - 1.0 / 255.0).abs() < 1e-9);
        assert_eq!(m.std, [1.0; 3]);
        assert_eq!(m.thresholds["marker"].halt, 0.9);
    }

    #[test]
    fn bad_manifests_name_the_key() {
        for (text, want) in [
            (GOOD.replace("width = 64", "width = 0"), "width, height"),
            (
                GOOD.replace("[thresholds.marker]", "[thresholds.other]"),
                "thresholds.other: not one of the labels",
            ),
            (
                GOOD.replace("review = 0.5", "review = 0.95"),
                "review must not exceed halt",
            ),
            (
                GOOD.replace("\"clean\", \"marker\"", "\"marker\", \"marker\""),
                "'marker' twice",
            ),
            (GOOD.replace("nchw", "chwn"), "unknown variant"),
            (
                GOOD.to_string() + "colour_space = \"srgb\"\n",
                "unknown field",
            ),
            (GOOD.replace("input = \"x\"\n", ""), "missing field `input`"),
            (
                GOOD.replace("halt = 0.9", "halt = 1.5"),
                "scores lie in 0..1",
            ),
            (
                GOOD.replace("\"m.onnx\"", "\"../m.onnx\""),
                "file: must be a path inside",
            ),
            (
                GOOD.replace(
                    "output = \"softmax\"",
                    "output = \"softmax\"\nmean = [0.0, nan, 0.0]",
                ),
                "mean: must be numbers",
            ),
        ] {
            let e = load(&text).unwrap_err();
            assert!(e.contains(want) && e.contains("model.toml"), "{want}: {e}");
        }
    }
}
