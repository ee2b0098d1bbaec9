//! `streamguard bank build`: a bank file (`<hash>,<id>[,<label>]` lines, the `csv` format)
//! from image files and folders, hashed on every core.
//!
//! Ids come from the file names (the path under the folder given, without the extension),
//! or from a CSV of `id,file` lines (`--ids`). A hash whose quality is below the gate is
//! reported and left out (kept with `--keep-low-quality`). With `--incremental`, the ids
//! already in `--out` are kept as they are and only new files are hashed. The file is
//! written whole, then renamed over `--out`, so that a daemon watching it never reads half.

use super::read_rgb;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use streamguard::analysis::pdq::{PdqHasher, RgbImage};

/// What `bank build` was asked (its command-line arguments).
#[derive(clap::Args)]
pub struct BuildArgs {
    /// The bank file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// A label for every entry (e.g. the bank's source or category).
    #[arg(long)]
    pub label: Option<String>,
    /// A CSV of `id,file` lines (files relative to it) instead of ids from file names.
    #[arg(long)]
    pub ids: Option<PathBuf>,
    /// PDQ quality below which an image is left out (the daemon does not match frames
    /// below analysis.min_quality either).
    #[arg(long, default_value_t = 50)]
    pub min_quality: u32,
    /// Keep images below `--min-quality` (with a line on stderr for each).
    #[arg(long)]
    pub keep_low_quality: bool,
    /// Keep the entries already in `--out` and hash only files whose id is new.
    #[arg(long)]
    pub incremental: bool,
    /// Image files and folders (not with `--ids`).
    #[arg(required_unless_present = "ids", conflicts_with = "ids")]
    pub inputs: Vec<PathBuf>,
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp"];
/// As the bank parser accepts them (`analysis/bank/parse.rs`).
const MAX_FIELD_BYTES: usize = 256;

pub fn build(args: &BuildArgs) -> ExitCode {
    match run(args) {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &BuildArgs) -> anyhow::Result<String> {
    if let Some(l) = &args.label {
        check_field("--label", l)?;
    }
    let wanted = match &args.ids {
        Some(csv) => ids_from_csv(csv)?,
        None => ids_from_inputs(&args.inputs)?,
    };
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    if args.incremental && args.out.exists() {
        kept = existing_lines(&args.out)?;
    }
    let todo: Vec<(String, PathBuf)> = wanted
        .into_iter()
        .filter(|(id, _)| !kept.contains_key(id))
        .collect();
    let results = hash_all(&todo, true);
    let (mut hashed, mut low, mut failed) = (0, 0, 0);
    for ((id, file), r) in todo.iter().zip(results) {
        match r {
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
            Ok((_, quality)) if quality < args.min_quality && !args.keep_low_quality => {
                eprintln!(
                    "skipped {}: quality {quality} is below {} (a hash that weak matches too much; --keep-low-quality keeps it)",
                    file.display(),
                    args.min_quality
                );
                low += 1;
            }
            Ok((hash, _)) => {
                let line = match &args.label {
                    Some(l) => format!("{hash},{id},{l}"),
                    None => format!("{hash},{id}"),
                };
                kept.insert(id.clone(), line);
                hashed += 1;
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} file(s) could not be hashed; {} not written",
            args.out.display()
        );
    }
    if kept.is_empty() {
        bail!("no entries: {} not written", args.out.display());
    }
    write_atomically(&args.out, &kept)?;
    Ok(format!(
        "{}: {} entries ({hashed} hashed now, {} kept from before, {low} below quality {})",
        args.out.display(),
        kept.len(),
        kept.len() - hashed,
        args.min_quality
    ))
}

/// An id or label as a bank line can hold it.
fn check_field(what: &str, v: &str) -> anyhow::Result<()> {
    if v.is_empty() || v.len() > MAX_FIELD_BYTES {
        bail!("{what} '{v}': must be 1 to {MAX_FIELD_BYTES} bytes");
    }
    if v.contains(',') || v.chars().any(char::is_control) || v.trim() != v {
        bail!("{what} '{v}': must not hold a comma, a control character or surrounding spaces");
    }
    Ok(())
}

/// Every image under the inputs, with its id: a file's stem, or its path under a folder
/// given, without the extension. Two files with the same id are an error naming both.
fn ids_from_inputs(inputs: &[PathBuf]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    for input in inputs {
        let meta = std::fs::metadata(input)
            .with_context(|| format!("{}: cannot read", input.display()))?;
        let files = if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found
                .into_iter()
                .map(|f| {
                    let rel = f.strip_prefix(input).unwrap_or(&f).with_extension("");
                    (rel.to_str().map(str::to_string), f)
                })
                .collect()
        } else {
            let stem = input
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string);
            vec![(stem, input.clone())]
        };
        for (id, file) in files {
            let Some(id) = id else {
                bail!(
                    "{}: the name is not UTF-8, so it cannot be an id (give ids with --ids)",
                    file.display()
                );
            };
            check_field("id", &id).with_context(|| format!("{}", file.display()))?;
            if let Some(first) = out.get(&id) {
                bail!(
                    "id '{id}' from both {} and {} (give ids with --ids)",
                    first.display(),
                    file.display()
                );
            }
            out.insert(id, file);
        }
    }
    if out.is_empty() {
        bail!("no image files ({}) found", IMAGE_EXTENSIONS.join(", "));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read folder", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        // Symbolic links to folders are not followed (one image under two ids, or a loop).
        if e.file_type()?.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// `id,file` lines (files relative to the CSV's folder); `#` comments and blank lines skipped.
fn ids_from_csv(csv: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("{}: cannot read", csv.display()))?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", csv.display(), n + 1);
        let Some((id, file)) = line.split_once(',') else {
            bail!("{}: expected id,file", at());
        };
        let (id, file) = (id.trim(), file.trim());
        check_field("id", id).with_context(at)?;
        if out.insert(id.to_string(), base.join(file)).is_some() {
            bail!("{}: id '{id}' given twice", at());
        }
    }
    if out.is_empty() {
        bail!("{}: no id,file lines", csv.display());
    }
    Ok(out)
}

/// The entries of an existing bank file by id (their lines as they are).
fn existing_lines(bank: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(bank)
        .with_context(|| format!("{}: cannot read", bank.display()))?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = line
            .split(',')
            .nth(1)
            .map(str::trim)
            .with_context(|| format!("{}:{}: not a <hash>,<id> line", bank.display(), n + 1))?;
        out.insert(id.to_string(), line.to_string());
    }
    Ok(out)
}

/// Hashes every file on every core; results in the order given. Progress on a terminal
/// when `show_progress`.
pub fn hash_all(
    todo: &[(String, PathBuf)],
    show_progress: bool,
) -> Vec<anyhow::Result<(String, u32)>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(todo.len().max(1));
    let progress = show_progress && std::io::stderr().is_terminal() && todo.len() > 1;
    let mut results: Vec<Option<anyhow::Result<(String, u32)>>> =
        (0..todo.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut hasher = PdqHasher::new();
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, file)) = todo.get(i) else {
                            return mine;
                        };
                        mine.push((i, hash_file(&mut hasher, file)));
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if progress && (d.is_multiple_of(64) || d == todo.len()) {
                            let _ = write!(std::io::stderr(), "\rhashed {d}/{}", todo.len());
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().expect("hashing thread panicked") {
                results[i] = Some(r);
            }
        }
    });
    if progress {
        eprintln!();
    }
    results
        .into_iter()
        .map(|r| r.expect("every file hashed"))
        .collect()
}

fn hash_file(hasher: &mut PdqHasher, file: &Path) -> anyhow::Result<(String, u32)> {
    let img = read_rgb(file)?;
    let out = hasher.hash_rgb(RgbImage::packed(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
    ));
    Ok((out.hash.to_string(), out.quality))
}

/// Writes the bank beside `out`, then renames it over `out`.
fn write_atomically(out: &Path, lines: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let tmp = out.with_extension("csv.part");
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        writeln!(
            f,
            "# built by streamguard bank build: {} entries, <hash>,<id>[,<label>]",
            lines.len()
        )?;
        for line in lines.values() {
            writeln!(f, "{line}")?;
        }
        f.into_inner()?.sync_all()?;
        std::fs::rename(&tmp, out)
    };
    write().with_context(|| format!("{}: cannot write", out.display()))
}
