//! A pool of classifier workers: N OS threads, each with its own session of every model,
//! fed over two bounded channels (frames of streams under suspicion first), each frame
//! resized and normalised once per model and classified, every result sent on.

use super::{Classifier, ClassifyError};
use crate::analysis::pdq::RgbImage;
use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, select};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// One frame to classify: packed or strided RGB pixels.
#[derive(Debug, Clone)]
pub struct Job {
    /// The caller's reference (stream and frame time, say), returned with the scores.
    pub key: u64,
    pub pixels: Arc<Vec<u8>>,
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// The scores of one model on one frame (labels in manifest order).
#[derive(Debug, Clone)]
pub struct Scored {
    pub key: u64,
    pub model: usize,
    pub scores: Result<Vec<f32>, String>,
}

/// Where jobs go in: `urgent` is always served before `normal`.
#[derive(Debug, Clone)]
pub struct Inlet {
    pub urgent: Sender<Job>,
    pub normal: Sender<Job>,
}

pub struct Pool {
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `workers` threads, each loading every model in `models` (`threads` intra-op
    /// threads per session); both inlets hold up to `queue` frames. Fails, with nothing
    /// left running, if any model does not load. The workers end when both inlets are
    /// dropped.
    pub fn start(
        models: &[PathBuf],
        runtime: Option<&std::path::Path>,
        threads: usize,
        workers: usize,
        queue: usize,
        out: Sender<Scored>,
    ) -> Result<(Pool, Inlet), ClassifyError> {
        // Sessions are created here, on the caller's thread, so errors come back at once.
        let mut sets = Vec::new();
        for _ in 0..workers.max(1) {
            let set = models
                .iter()
                .map(|m| Classifier::load(m, runtime, threads))
                .collect::<Result<Vec<_>, _>>()?;
            sets.push(set);
        }
        let (urgent_tx, urgent_rx) = bounded::<Job>(queue);
        let (normal_tx, normal_rx) = bounded::<Job>(queue);
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
            Pool { workers },
            Inlet {
                urgent: urgent_tx,
                normal: normal_tx,
            },
        ))
    }

    /// Waits for every worker to end (drop the inlet first).
    pub fn join(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// The next job, urgent ones first; None once both inlets are closed and drained.
fn next(urgent: &Receiver<Job>, normal: &Receiver<Job>) -> Option<Job> {
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

fn work(
    mut set: Vec<Classifier>,
    urgent: Receiver<Job>,
    normal: Receiver<Job>,
    out: Sender<Scored>,
) {
    while let Some(job) = next(&urgent, &normal) {
        let img = RgbImage {
            data: &job.pixels[..],
            width: job.width,
            height: job.height,
            stride: job.stride,
        };
        for (model, c) in set.iter_mut().enumerate() {
            // A panic in one frame's inference must not take the worker (and the result
            // its caller waits for) with it.
            let scores = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.classify(img)))
                .unwrap_or_else(|_| {
                    Err(super::ClassifyError::Model {
                        model: c.name.clone(),
                        message: "inference panicked".into(),
                    })
                })
                .map_err(|e| e.to_string());
            if out
                .send(Scored {
                    key: job.key,
                    model,
                    scores,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: u64) -> Job {
        Job {
            key,
            pixels: Arc::new(Vec::new()),
            width: 0,
            height: 0,
            stride: 0,
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
            |n: usize| -> Vec<u64> { (0..n).map(|_| next(&u_rx, &n_rx).unwrap().key).collect() };
        assert_eq!(keys(3), [10, 11, 0]);
        drop(u_tx);
        assert_eq!(keys(2), [1, 2]);
        drop(n_tx);
        assert!(next(&u_rx, &n_rx).is_none());
    }
}
