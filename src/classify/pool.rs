//! A pool of classifier workers: N OS threads, each with its own session of every model,
//! fed over two bounded channels (frames of streams under suspicion first).
//!
//! A frame is resized once per model input size by whoever submits it ([`Inlet::job`]: the
//! analysis thread that already holds the decoded frame, so the frame itself is never
//! copied); a worker normalises it for each model (one multiply-add per value), runs the
//! model and sends one [`Scored`] per frame with every model's scores.

use super::model::{ImageError, Resized, check_image, resize};
use super::{Classifier, ClassifyError};
use crate::analysis::pdq::RgbImage;
use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, select};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// One frame to classify, resized to each input size the models need.
#[derive(Debug, Clone)]
pub struct Job<T> {
    /// The caller's reference (stream and frame time, say), returned with the scores.
    pub tag: T,
    /// One image per entry of [`Inlet::sizes`].
    pub images: Vec<Resized>,
}

/// Every model's scores on one frame (models in pool order, labels in manifest order).
#[derive(Debug, Clone)]
pub struct Scored<T> {
    pub tag: T,
    pub scores: Vec<Result<Vec<f32>, ClassifyError>>,
}

/// Where jobs go in: `urgent` is always served before `normal`.
#[derive(Debug)]
pub struct Inlet<T> {
    pub urgent: Sender<Job<T>>,
    pub normal: Sender<Job<T>>,
    /// The distinct input sizes (width, height) of the pool's models.
    pub sizes: Arc<[(usize, usize)]>,
}

impl<T> Clone for Inlet<T> {
    fn clone(&self) -> Self {
        Inlet {
            urgent: self.urgent.clone(),
            normal: self.normal.clone(),
            sizes: self.sizes.clone(),
        }
    }
}

impl<T> Inlet<T> {
    /// A job for `img`: resized once per input size. Fails if `img` is not a readable RGB
    /// image.
    pub fn job(&self, tag: T, img: RgbImage) -> Result<Job<T>, ImageError> {
        check_image(&img)?;
        Ok(Job {
            tag,
            images: self.sizes.iter().map(|&(w, h)| resize(img, w, h)).collect(),
        })
    }
}

pub struct Pool {
    workers: Vec<JoinHandle<()>>,
    /// Each model's name (its folder's) and manifest, in the order of [`Scored::scores`].
    pub models: Vec<(String, super::Manifest)>,
}

/// A worker's models, each with the index of its input size in [`Inlet::sizes`].
type ModelSet = Vec<(Classifier, usize)>;

impl Pool {
    /// Starts `workers` threads, each loading every model in `models` (`threads` intra-op
    /// threads per session); both inlets hold up to `queue` frames. Fails, with nothing
    /// left running, if any model does not load. The workers end when every inlet is
    /// dropped (after the jobs already queued).
    pub fn start<T: Send + 'static>(
        models: &[PathBuf],
        runtime: Option<&std::path::Path>,
        threads: usize,
        workers: usize,
        queue: usize,
        out: Sender<Scored<T>>,
    ) -> Result<(Pool, Inlet<T>), ClassifyError> {
        // Sessions are created here, on the caller's thread, so errors come back at once.
        let mut sizes: Vec<(usize, usize)> = Vec::new();
        let mut sets: Vec<ModelSet> = Vec::new();
        for _ in 0..workers.max(1) {
            let mut set = Vec::new();
            for m in models {
                let c = Classifier::load(m, runtime, threads)?;
                let size = (c.manifest.width, c.manifest.height);
                let idx = match sizes.iter().position(|&s| s == size) {
                    Some(i) => i,
                    None => {
                        sizes.push(size);
                        sizes.len() - 1
                    }
                };
                set.push((c, idx));
            }
            sets.push(set);
        }
        let names = sets
            .first()
            .map(|set| {
                set.iter()
                    .map(|(c, _)| (c.name.clone(), c.manifest.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let (urgent_tx, urgent_rx) = bounded::<Job<T>>(queue);
        let (normal_tx, normal_rx) = bounded::<Job<T>>(queue);
        let workers = sets
            .into_iter()
            .enumerate()
            .map(|(i, set)| {
                let (urgent, normal, out) = (urgent_rx.clone(), normal_rx.clone(), out.clone());
                std::thread::Builder::new()
                    .name(format!("classify-{i}"))
                    .spawn(move || work(set, urgent, normal, out))
                    .expect("spawn classifier thread")
            })
            .collect();
        Ok((
            Pool {
                workers,
                models: names,
            },
            Inlet {
                urgent: urgent_tx,
                normal: normal_tx,
                sizes: sizes.into(),
            },
        ))
    }

    /// Waits for every worker to end (drop the inlets first).
    pub fn join(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// The next job, urgent ones first; None once both inlets are closed and drained.
fn next<T>(urgent: &Receiver<Job<T>>, normal: &Receiver<Job<T>>) -> Option<Job<T>> {
    match urgent.try_recv() {
        Ok(j) => return Some(j),
        Err(TryRecvError::Disconnected) => return normal.recv().ok(),
        Err(TryRecvError::Empty) => {}
    }
    select! {
        recv(urgent) -> j => match j {
            Ok(j) => Some(j),
            Err(_) => normal.recv().ok(),
        },
        recv(normal) -> j => match j {
            Ok(j) => Some(j),
            Err(_) => urgent.recv().ok(),
        },
    }
}

fn work<T>(
    mut set: ModelSet,
    urgent: Receiver<Job<T>>,
    normal: Receiver<Job<T>>,
    out: Sender<Scored<T>>,
) {
    while let Some(job) = next(&urgent, &normal) {
        let scores = set
            .iter_mut()
            .map(|(c, size)| {
                let Some(img) = job.images.get(*size) else {
                    return Err(ClassifyError::Model {
                        model: c.name.clone(),
                        message: "the job has no image of its input size".into(),
                    });
                };
                // A panic in one frame's inference must not take the worker (and the
                // result its caller waits for) with it.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.classify_resized(img)))
                    .unwrap_or_else(|_| {
                        Err(ClassifyError::Model {
                            model: c.name.clone(),
                            message: "inference panicked".into(),
                        })
                    })
            })
            .collect();
        if out
            .send(Scored {
                tag: job.tag,
                scores,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: u64) -> Job<u64> {
        Job {
            tag: key,
            images: Vec::new(),
        }
    }

    #[test]
    fn urgent_jobs_first_then_normal_until_both_close() {
        let (u_tx, u_rx) = bounded(8);
        let (n_tx, n_rx) = bounded(8);
        for k in 0..3 {
            n_tx.send(job(k)).unwrap();
        }
        u_tx.send(job(10)).unwrap();
        u_tx.send(job(11)).unwrap();
        let keys =
            |n: usize| -> Vec<u64> { (0..n).map(|_| next(&u_rx, &n_rx).unwrap().tag).collect() };
        assert_eq!(keys(3), [10, 11, 0]);
        drop(u_tx);
        assert_eq!(keys(2), [1, 2]);
        drop(n_tx);
        assert!(next(&u_rx, &n_rx).is_none());
    }
}
