//! One classifier session: load and check a model against its manifest, turn a frame into
//! the input tensor, run it, and turn the outputs into per-label scores.

use super::manifest::{ColourOrder, Layout, Manifest, OutputKind};
use super::{ClassifyError, environment};
use crate::analysis::pdq::RgbImage;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use std::path::Path;

/// A loaded model (one ONNX Runtime session: `Session::run` needs `&mut`, so one per
/// worker thread).
pub struct Classifier {
    pub name: String,
    pub manifest: Manifest,
    session: Session,
    shape: [usize; 4],
    input: Vec<f32>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("name", &self.name)
            .field("shape", &self.shape)
            .finish()
    }
}

impl Classifier {
    /// Loads `dir/model.toml` and its ONNX file with `threads` intra-op threads, checks the
    /// model's input (name, element type, layout, size) and output (one score per label)
    /// against the manifest, and runs one inference on a blank frame.
    pub fn load(
        dir: &Path,
        runtime: Option<&Path>,
        threads: usize,
    ) -> Result<Classifier, ClassifyError> {
        let name = dir
            .file_name()
            .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
        let fail = |message: String| ClassifyError::Model {
            model: dir.display().to_string(),
            message,
        };
        let manifest = Manifest::load(dir).map_err(|e| fail(e.to_string()))?;
        let env = environment(runtime)?;
        let file = dir.join(&manifest.file);
        if !file.is_file() {
            return Err(fail(format!("{}: not found", file.display())));
        }
        let session = Session::builder(env)
            .map_err(|e| fail(e.to_string()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| fail(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| fail(e.to_string()))?
            .commit_from_file(&file)
            .map_err(|e| {
                fail(format!(
                    "{}: not a model ONNX Runtime can load: {e}",
                    file.display()
                ))
            })?;
        let inputs = session.inputs();
        if inputs.len() != 1 {
            return Err(fail(format!(
                "{}: has {} inputs; streamguard feeds one image",
                file.display(),
                inputs.len()
            )));
        }
        let input = &inputs[0];
        if input.name() != manifest.input {
            return Err(fail(format!(
                "manifest input '{}' but the model's input is named '{}'",
                manifest.input,
                input.name()
            )));
        }
        let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
            return Err(fail(format!("input '{}' is not a tensor", input.name())));
        };
        if *ty != TensorElementType::Float32 {
            return Err(fail(format!(
                "input '{}' takes {ty:?}; streamguard feeds float32",
                input.name()
            )));
        }
        let outputs = session.outputs();
        if outputs.len() != 1 {
            return Err(fail(format!(
                "{}: has {} outputs; streamguard reads one (a score per label)",
                file.display(),
                outputs.len()
            )));
        }
        if !matches!(
            outputs[0].dtype(),
            ValueType::Tensor {
                ty: TensorElementType::Float32,
                ..
            }
        ) {
            return Err(fail(format!(
                "output '{}' is not a float32 tensor",
                outputs[0].name()
            )));
        }
        let (h, w) = (manifest.height, manifest.width);
        let want: [usize; 4] = match manifest.layout {
            Layout::Nchw => [1, 3, h, w],
            Layout::Nhwc => [1, h, w, 3],
        };
        let dims: Vec<i64> = shape.iter().copied().collect();
        let fits = dims.len() == 4
            && dims
                .iter()
                .zip(want)
                .skip(1)
                .all(|(&d, w)| d < 0 || d as usize == w);
        if !fits {
            return Err(fail(format!(
                "input '{}' has shape {dims:?}; the manifest ({:?}, {w}x{h}) gives {want:?} (-1: any)",
                input.name(),
                manifest.layout
            )));
        }
        let mut c = Classifier {
            name,
            session,
            shape: want,
            input: vec![0.0; 3 * h * w],
            manifest,
        };
        // One inference now, on a grey frame through the whole preprocessing: an output
        // that does not fit the labels (or is not finite) fails at start-up.
        let grey = vec![128u8; 16 * 16 * 3];
        c.classify(RgbImage::packed(&grey, 16, 16))
            .map_err(|e| match e {
                ClassifyError::Model { message, .. } => fail(message),
                other => other,
            })?;
        Ok(c)
    }

    /// The input tensor's length (3 x height x width).
    pub fn input_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Scores (one per label, in manifest order) of a prepared input tensor, in the
    /// manifest's layout.
    pub fn run_tensor(&mut self, data: &[f32]) -> Result<Vec<f32>, ClassifyError> {
        let fail = |message: String| ClassifyError::Model {
            model: self.name.clone(),
            message,
        };
        if data.len() != self.input_len() {
            return Err(fail(format!(
                "input of {} values, the model takes {}",
                data.len(),
                self.input_len()
            )));
        }
        let tensor =
            TensorRef::from_array_view((self.shape, data)).map_err(|e| fail(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![tensor])
            .map_err(|e| fail(format!("inference failed: {e}")))?;
        let (_, raw) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(format!("output is not float32: {e}")))?;
        if raw.len() != self.manifest.labels.len() {
            return Err(fail(format!(
                "the model gives {} output values, the manifest has {} labels",
                raw.len(),
                self.manifest.labels.len()
            )));
        }
        if let Some(bad) = raw.iter().find(|v| !v.is_finite()) {
            return Err(fail(format!("the model gave a non-finite output ({bad})")));
        }
        Ok(post_process(self.manifest.output, raw))
    }

    /// Scores of a frame: resized to the model's size (bilinear), normalised, in the
    /// model's colour order and layout.
    pub fn classify(&mut self, img: RgbImage) -> Result<Vec<f32>, ClassifyError> {
        check_image(&img).map_err(|e| ClassifyError::Model {
            model: self.name.clone(),
            message: e.to_string(),
        })?;
        let resized = resize(img, self.manifest.width, self.manifest.height);
        self.classify_resized(&resized)
    }

    /// Scores of a frame already resized to the model's size by [`resize`].
    pub fn classify_resized(&mut self, resized: &Resized) -> Result<Vec<f32>, ClassifyError> {
        let (w, h) = (self.manifest.width, self.manifest.height);
        if (resized.width, resized.height) != (w, h) || resized.data.len() != w * h * 3 {
            return Err(ClassifyError::Model {
                model: self.name.clone(),
                message: format!(
                    "frame resized to {}x{}, the model takes {w}x{h}",
                    resized.width, resized.height
                ),
            });
        }
        let mut input = std::mem::take(&mut self.input);
        normalise(&self.manifest, resized, &mut input);
        let out = self.run_tensor(&input);
        self.input = input;
        out
    }
}

/// Why pixels cannot be read as an RGB image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("empty image ({width}x{height})")]
    Empty { width: usize, height: usize },
    #[error("row stride {stride} is shorter than a row of {width} RGB pixels")]
    Stride { stride: usize, width: usize },
    #[error("{len} bytes are too few for {width}x{height} RGB with stride {stride}")]
    Short {
        len: usize,
        width: usize,
        height: usize,
        stride: usize,
    },
}

/// Why `img` cannot be read as an RGB image, if it cannot.
pub fn check_image(img: &RgbImage) -> Result<(), ImageError> {
    let (w, h, s) = (img.width, img.height, img.stride);
    if w == 0 || h == 0 {
        return Err(ImageError::Empty {
            width: w,
            height: h,
        });
    }
    if s < 3 * w {
        return Err(ImageError::Stride {
            stride: s,
            width: w,
        });
    }
    if img.data.len() < (h - 1) * s + 3 * w {
        return Err(ImageError::Short {
            len: img.data.len(),
            width: w,
            height: h,
            stride: s,
        });
    }
    Ok(())
}

/// Softmax, sigmoid or nothing, as the manifest says.
pub fn post_process(kind: OutputKind, raw: &[f32]) -> Vec<f32> {
    match kind {
        OutputKind::Logits => raw.to_vec(),
        OutputKind::Sigmoid => raw.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
        OutputKind::Softmax => {
            let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = raw.iter().map(|&x| (x - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            e.into_iter().map(|x| x / sum).collect()
        }
    }
}

/// A frame resized to one model input size: RGB values (0-255, not rounded), packed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Resized {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

/// Bilinear resize of `img` to `w` x `h` with pixel centres aligned (as OpenCV's
/// `INTER_LINEAR`, no antialiasing), source positions and weights computed once per row
/// and column. Done once per frame and model size, whatever the number of models of that
/// size. `img` must pass [`check_image`].
pub fn resize(img: RgbImage, w: usize, h: usize) -> Resized {
    let axis = |n_out: usize, n_in: usize| -> Vec<(usize, usize, f32)> {
        let s = n_in as f32 / n_out as f32;
        (0..n_out)
            .map(|i| {
                let f = ((i as f32 + 0.5) * s - 0.5).clamp(0.0, (n_in - 1) as f32);
                let i0 = f as usize;
                (i0, (i0 + 1).min(n_in - 1), f - i0 as f32)
            })
            .collect()
    };
    let cols = axis(w, img.width);
    let rows = axis(h, img.height);
    let mut data = vec![0f32; w * h * 3];
    for (out_row, &(y0, y1, wy)) in data.chunks_exact_mut(w * 3).zip(&rows) {
        let r0 = &img.data[y0 * img.stride..y0 * img.stride + img.width * 3];
        let r1 = &img.data[y1 * img.stride..y1 * img.stride + img.width * 3];
        for (out, &(x0, x1, wx)) in out_row.chunks_exact_mut(3).zip(&cols) {
            let (a0, a1) = (&r0[x0 * 3..x0 * 3 + 3], &r0[x1 * 3..x1 * 3 + 3]);
            let (b0, b1) = (&r1[x0 * 3..x0 * 3 + 3], &r1[x1 * 3..x1 * 3 + 3]);
            for c in 0..3 {
                let top = a0[c] as f32 + (a1[c] as f32 - a0[c] as f32) * wx;
                let bottom = b0[c] as f32 + (b1[c] as f32 - b0[c] as f32) * wx;
                out[c] = top + (bottom - top) * wy;
            }
        }
    }
    Resized {
        width: w,
        height: h,
        data,
    }
}

/// Writes the model input for a resized frame into `out` (3 x height x width values):
/// channel order, `(v * scale - mean) / std` as one multiply-add per value, layout.
pub fn normalise(m: &Manifest, img: &Resized, out: &mut [f32]) {
    let src: [usize; 3] = match m.colour {
        ColourOrder::Rgb => [0, 1, 2],
        ColourOrder::Bgr => [2, 1, 0],
    };
    let a: [f32; 3] = std::array::from_fn(|k| m.scale / m.std[k]);
    let b: [f32; 3] = std::array::from_fn(|k| -m.mean[k] / m.std[k]);
    let plane = img.width * img.height;
    let out = &mut out[..3 * plane];
    match m.layout {
        Layout::Nchw => {
            let (p0, rest) = out.split_at_mut(plane);
            let (p1, p2) = rest.split_at_mut(plane);
            for (i, px) in img.data.chunks_exact(3).enumerate() {
                p0[i] = px[src[0]] * a[0] + b[0];
                p1[i] = px[src[1]] * a[1] + b[1];
                p2[i] = px[src[2]] * a[2] + b[2];
            }
        }
        Layout::Nhwc => {
            for (o, px) in out.chunks_exact_mut(3).zip(img.data.chunks_exact(3)) {
                for k in 0..3 {
                    o[k] = px[src[k]] * a[k] + b[k];
                }
            }
        }
    }
}

/// [`resize`] then [`normalise`]: the model input for `img` (which must pass
/// [`check_image`]) in `out` (3 x width x height values).
pub fn prepare(m: &Manifest, img: RgbImage, out: &mut [f32]) {
    normalise(m, &resize(img, m.width, m.height), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_processing() {
        let s = post_process(OutputKind::Softmax, &[1.0, 1.0]);
        assert_eq!(s, vec![0.5, 0.5]);
        let s = post_process(OutputKind::Softmax, &[1000.0, 0.0]);
        assert!((s[0] - 1.0).abs() < 1e-6 && s[1] < 1e-6, "stable: {s:?}");
        assert_eq!(post_process(OutputKind::Sigmoid, &[0.0]), vec![0.5]);
        assert_eq!(
            post_process(OutputKind::Logits, &[3.0, -1.0]),
            vec![3.0, -1.0]
        );
    }

    #[test]
    fn prepare_normalises_in_order_and_layout() {
        let m: Manifest = toml::from_str(
            "file = \"m.onnx\"\ninput = \"x\"\nlayout = \"nchw\"\nwidth = 2\nheight = 1\n\
             colour = \"bgr\"\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\noutput = \"softmax\"\nlabels = [\"a\"]\n",
        )
        .unwrap();
        // A 2x1 image: red, then blue; same size, so no interpolation.
        let data = [255u8, 0, 0, 0, 0, 255];
        let mut out = vec![0.0; 6];
        prepare(&m, RgbImage::packed(&data, 2, 1), &mut out);
        // Planes B, G, R; (v/255 - 0.5) / 0.5.
        assert_eq!(out, vec![-1.0, 1.0, -1.0, -1.0, 1.0, -1.0]);
        // Down- and upscaling, half-pixel centres, a padded stride: a 4x1 image with 2
        // bytes of padding to 2x1 samples between pixels 0-1 and 2-3; to 8x1, the first
        // and last outputs clamp to the edge pixels.
        let grey = Manifest {
            colour: ColourOrder::Rgb,
            mean: [0.0; 3],
            std: [1.0; 3],
            scale: 1.0,
            ..m.clone()
        };
        let row = [0u8, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40, 9, 9];
        let strided = RgbImage {
            data: &row,
            width: 4,
            height: 1,
            stride: 14,
        };
        assert!(check_image(&strided).is_ok());
        let mut two = vec![0.0; 6];
        prepare(&grey, strided, &mut two);
        assert_eq!(&two[..2], &[50.0, 120.0]);
        let up = Manifest {
            width: 8,
            ..grey.clone()
        };
        let mut eight = vec![0.0; 24];
        prepare(&up, strided, &mut eight);
        // Centres at -0.25 (clamped to 0), 0.25, 0.75, ... 3.25 (clamped to 3).
        assert_eq!(
            &eight[..8],
            &[0.0, 25.0, 75.0, 125.0, 175.0, 160.0, 80.0, 40.0]
        );
        for bad in [
            RgbImage {
                data: &row,
                width: 0,
                height: 1,
                stride: 14,
            },
            RgbImage {
                data: &row,
                width: 4,
                height: 1,
                stride: 9,
            },
            RgbImage {
                data: &row[..10],
                width: 4,
                height: 1,
                stride: 14,
            },
            RgbImage {
                data: &row,
                width: 4,
                height: 2,
                stride: 14,
            },
        ] {
            assert!(check_image(&bad).is_err());
        }
        let nhwc = Manifest {
            layout: Layout::Nhwc,
            colour: ColourOrder::Rgb,
            ..m
        };
        prepare(&nhwc, RgbImage::packed(&data, 2, 1), &mut out);
        assert_eq!(out, vec![1.0, -1.0, -1.0, -1.0, -1.0, 1.0]);
    }
}
