//! Pipeline templates (`pipelines/*.pipeline`): parsing, and rendering with a stream's
//! parameters. The format is documented in `pipelines/README.md`.

use std::collections::BTreeMap;
use std::path::Path;

/// What streamguard appends to every rendered template: access units to the sampler.
pub const AU_SINK_NAME: &str = "streamguard_au_sink";

const BUILTIN: &[(&str, &str)] = &[
    ("testsrc", include_str!("../../pipelines/testsrc.pipeline")),
    (
        "testsrc-image",
        include_str!("../../pipelines/testsrc-image.pipeline"),
    ),
    ("file", include_str!("../../pipelines/file.pipeline")),
    ("rtmp", include_str!("../../pipelines/rtmp.pipeline")),
    ("srt", include_str!("../../pipelines/srt.pipeline")),
    ("rtsp", include_str!("../../pipelines/rtsp.pipeline")),
    ("hls", include_str!("../../pipelines/hls.pipeline")),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("cannot read pipeline templates in {dir}: {message}")]
    Dir { dir: String, message: String },
    #[error("pipeline template {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("no pipeline template '{name}' (known: {known})")]
    Unknown { name: String, known: String },
    #[error("pipeline template '{name}' ({origin}): {message}")]
    Render {
        name: String,
        origin: String,
        message: String,
    },
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    default: Option<String>,
}

/// One parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// Where it came from: `built-in` or a file path.
    pub origin: String,
    params: Vec<Param>,
    body: String,
}

impl Template {
    pub fn parse(name: &str, origin: &str, text: &str) -> Result<Template, TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let mut params = Vec::new();
        let mut body = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix('#') {
                if let Some(decl) = comment.trim().strip_prefix("@param") {
                    let spec = decl
                        .split_whitespace()
                        .next()
                        .ok_or_else(|| invalid(format!("line {}: @param without a name", i + 1)))?;
                    let (pname, default) = match spec.split_once('=') {
                        Some((n, d)) => (n, Some(d.to_string())),
                        None => (spec, None),
                    };
                    params.push(Param {
                        name: pname.to_string(),
                        default,
                    });
                }
            } else if !line.is_empty() {
                body.push(line);
            }
        }
        let body = body.join(" ");
        if body.is_empty() {
            return Err(invalid("has no pipeline description".into()));
        }
        let t = Template {
            name: name.to_string(),
            origin: origin.to_string(),
            params,
            body,
        };
        // Every placeholder as render will find it must be declared.
        for piece in pieces(&t.body) {
            if let Piece::Slot(p, _) = piece
                && !t.params.iter().any(|d| d.name == p)
            {
                return Err(invalid(format!(
                    "placeholder {{{p}}} is not declared with '# @param {p}'"
                )));
            }
        }
        Ok(t)
    }

    /// The pipeline description with every placeholder replaced, plus the access-unit sink.
    ///
    /// A value is always a value, never pipeline syntax ([`Slot`]): inside a quoted string
    /// it is escaped; as a whole property value (`key={p}`) it is quoted; anywhere else (an
    /// element name, a caps field, part of a word) it must be a plain word.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, TemplateError> {
        let err = |message: String| TemplateError::Render {
            name: self.name.clone(),
            origin: self.origin.clone(),
            message,
        };
        if let Some(k) = values
            .keys()
            .find(|k| !self.params.iter().any(|p| &p.name == *k))
        {
            let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
            return Err(err(format!(
                "no parameter '{k}' (parameters: {})",
                known.join(", ")
            )));
        }
        let mut out = String::with_capacity(self.body.len());
        for piece in pieces(&self.body) {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot(name, slot) => {
                    let value = values
                        .get(name)
                        .or(self
                            .params
                            .iter()
                            .find(|p| p.name == name)
                            .and_then(|p| p.default.as_ref()))
                        .ok_or_else(|| err(format!("parameter '{name}' is required")))?;
                    let v = slot.render(value).map_err(|why| {
                        err(format!("parameter '{name}': {why} (given {value:?})"))
                    })?;
                    out.push_str(&v);
                }
            }
        }
        Ok(format!(
            "{out} ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name={AU_SINK_NAME} sync=false"
        ))
    }
}

/// Where a placeholder stands in a description, which decides how its value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Inside a double-quoted string: `location="{p}"`. `\` and `"` are escaped.
    Quoted,
    /// A whole property value outside quotes: `timeout={p}`. Written as a quoted string, so
    /// spaces, `!` or `=` in it stay part of the value.
    Property,
    /// A whole word: an element's name (`! {demux} !`). Letters, digits, `_`, `-`, `+`.
    Element,
    /// Part of a word, such as a caps field (`width={w}`, `{fps}/1`), or a value inside a
    /// quoted caps string (`caps="video/x-raw,width={w}"`): the same, and `.` after a `=`
    /// (a field's value, never a pad reference such as `name.`).
    Word { dots: bool },
}

impl Slot {
    fn render(self, value: &str) -> Result<String, &'static str> {
        if value.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        let escape = || value.replace('\\', "\\\\").replace('"', "\\\"");
        let plain = |c: char, dot: bool| {
            c.is_ascii_alphanumeric() || "_-+".contains(c) || (dot && c == '.')
        };
        match self {
            Slot::Quoted => Ok(escape()),
            Slot::Property => Ok(format!("\"{}\"", escape())),
            Slot::Element | Slot::Word { .. } if value.is_empty() => Err("must not be empty"),
            Slot::Element if !value.chars().all(|c| plain(c, false)) => {
                Err("must be an element name (letters, digits, '_', '-', '+')")
            }
            Slot::Word { dots: false } if !value.chars().all(|c| plain(c, false)) => {
                Err("must be a plain word here (letters, digits, '_', '-', '+')")
            }
            Slot::Word { dots: true } if !value.chars().all(|c| plain(c, true)) => {
                Err("must be a plain word here (letters, digits, '_', '-', '+', '.')")
            }
            Slot::Element | Slot::Word { .. } => Ok(value.to_string()),
        }
    }
}

enum Piece<'a> {
    Text(&'a str),
    Slot(&'a str, Slot),
}

/// Splits a description into literal text and placeholders, each with its [`Slot`].
fn pieces(body: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let bytes = body.as_bytes();
    let (mut quoted, mut escaped) = (false, false);
    let (mut text_start, mut word_start, mut quote_start) = (0, 0, 0);
    // Words end at spaces and at links (`!`) outside quotes.
    let separator = |c: u8| c.is_ascii_whitespace() || c == b'!';
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if quoted {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if c == b'"' {
            quoted = true;
            quote_start = i + 1;
        } else if separator(c) {
            word_start = i + 1;
        }
        if c == b'{'
            && !escaped
            && let Some(len) = body[i + 1..].find('}')
        {
            let name = &body[i + 1..i + 1 + len];
            let end = i + len + 2;
            let word_end = end == bytes.len() || separator(bytes[end]);
            let before = &body[word_start..i];
            let slot = if quoted {
                // In a quoted caps or structure string, a `,` or `;` in the value would be
                // syntax: such a value is a plain word.
                let so_far = &body[quote_start..i];
                if so_far.contains(',') {
                    Slot::Word {
                        dots: so_far.contains('='),
                    }
                } else {
                    Slot::Quoted
                }
            } else if word_end && before.is_empty() {
                Slot::Element
            } else if word_end
                && let Some(key) = before.strip_suffix('=')
                && !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                Slot::Property
            } else {
                Slot::Word {
                    dots: before.contains('='),
                }
            };
            out.push(Piece::Text(&body[text_start..i]));
            out.push(Piece::Slot(name, slot));
            text_start = end;
            i = end;
            continue;
        }
        i += 1;
    }
    out.push(Piece::Text(&body[text_start..]));
    out
}

/// All known templates: the built-in ones, then those of `daemon.pipelines_dir`.
#[derive(Debug, Clone)]
pub struct Templates {
    map: BTreeMap<String, Template>,
}

impl Templates {
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut map = BTreeMap::new();
        for (name, text) in BUILTIN {
            map.insert(name.to_string(), Template::parse(name, "built-in", text)?);
        }
        if let Some(dir) = dir {
            let derr = |e: std::io::Error| TemplateError::Dir {
                dir: dir.display().to_string(),
                message: e.to_string(),
            };
            for entry in std::fs::read_dir(dir).map_err(derr)? {
                let path = entry.map_err(derr)?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("pipeline") {
                    continue;
                }
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                let text = std::fs::read_to_string(&path).map_err(derr)?;
                map.insert(
                    name.clone(),
                    Template::parse(&name, &path.display().to_string(), &text)?,
                );
            }
        }
        Ok(Templates { map })
    }

    pub fn get(&self, name: &str) -> Result<&Template, TemplateError> {
        self.map.get(name).ok_or_else(|| TemplateError::Unknown {
            name: name.to_string(),
            known: self.map.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_defaults_overrides_and_escapes() {
        let t = Template::parse(
            "t",
            "x",
            "# @param a=1 first\n# @param p path\nsrc a={a} location=\"{p}\"\n ! h264parse",
        )
        .unwrap();
        let out = t.render(&params(&[("p", "my \"file\".mp4")])).unwrap();
        assert!(
            out.starts_with(
                "src a=\"1\" location=\"my \\\"file\\\".mp4\" ! h264parse ! video/x-h264"
            ),
            "{out}"
        );
        assert!(out.ends_with(&format!("appsink name={AU_SINK_NAME} sync=false")));
    }

    #[test]
    fn render_errors_name_template_and_parameter() {
        let t = Template::parse("t", "x", "# @param p path\nsrc location={p}").unwrap();
        assert!(
            t.render(&params(&[]))
                .unwrap_err()
                .to_string()
                .contains("parameter 'p' is required")
        );
        let e = t
            .render(&params(&[("p", "a"), ("q", "b")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'t'") && e.contains("no parameter 'q'"), "{e}");
    }

    /// The probe value that once made `run` dump /etc/passwd into the log.
    const HOSTILE: &str = "smpte ! fakesink filesrc location=/etc/passwd ! fakesink dump=true videotestsrc is-live=true";

    #[test]
    fn a_value_is_never_pipeline_syntax() {
        let t = Template::parse(
            "t",
            "x",
            "# @param pattern=smpte\n# @param demux=qtdemux\n# @param w=640\n# @param p=a\n\
             src pattern={pattern} location=\"/x/{p}.mp4\" ! {demux} ! video/x-raw,width={w}",
        )
        .unwrap();
        // As a property value it is quoted: one value, however many '!' it holds.
        let out = t.render(&params(&[("pattern", HOSTILE)])).unwrap();
        assert!(
            out.starts_with(&format!(
                "src pattern=\"{HOSTILE}\" location=\"/x/a.mp4\" ! qtdemux !"
            )),
            "{out}"
        );
        // A quote cannot close the string early.
        let out = t
            .render(&params(&[("pattern", "a\" ! filesrc \"")]))
            .unwrap();
        assert!(
            out.starts_with("src pattern=\"a\\\" ! filesrc \\\"\" "),
            "{out}"
        );
        let out = t.render(&params(&[("p", "b\" ! fakesink \"")])).unwrap();
        assert!(
            out.contains("location=\"/x/b\\\" ! fakesink \\\".mp4\""),
            "{out}"
        );
        // Element names and caps fields must be plain words.
        for (k, v) in [
            ("demux", "qtdemux ! filesrc location=/etc/passwd"),
            ("demux", "parts."),
            ("demux", ""),
            ("w", "640,format=I420 ! fakesink"),
            ("w", "1 2"),
            ("pattern", "a\nb"),
        ] {
            let e = t.render(&params(&[(k, v)])).unwrap_err().to_string();
            assert!(
                e.contains(&format!("parameter '{k}'")) && e.contains("'t'"),
                "{k}={v:?}: {e}"
            );
        }
        assert!(
            t.render(&params(&[("demux", "matroskademux"), ("w", "1280")]))
                .is_ok()
        );
        // Words end at links too; a value inside quoted caps is a plain word; a dot only in
        // a field's value, never as a pad reference.
        let t = Template::parse(
            "t",
            "x",
            "# @param e=queue\n# @param w=640\n# @param f=30\n# @param n=x\n\
             src ! {e}! capsfilter caps=\"video/x-raw,width={w}\" ! v{n} ! video/x-raw,framerate={f}/1",
        )
        .unwrap();
        for (k, v) in [
            ("e", "t."),
            ("w", "640,format=I420"),
            ("w", "640;video/x-bayer"),
            ("n", "t.src"),
        ] {
            let e = t.render(&params(&[(k, v)])).unwrap_err().to_string();
            assert!(e.contains(&format!("parameter '{k}'")), "{k}={v:?}: {e}");
        }
        let out = t.render(&params(&[("f", "29.97"), ("w", "1280")])).unwrap();
        assert!(
            out.contains("caps=\"video/x-raw,width=1280\"") && out.contains("framerate=29.97/1"),
            "{out}"
        );
    }

    #[test]
    fn every_builtin_renders_its_defaults_as_values() {
        let t = Templates::load(None).unwrap();
        let out = t
            .get("testsrc-image")
            .unwrap()
            .render(&params(&[("image", "/tmp/a b.png")]))
            .unwrap();
        assert!(out.contains("location=\"/tmp/a b.png\""), "{out}");
        assert!(out.contains("num-buffers=\"300\""), "{out}");
        assert!(out.contains("! pngdec !"), "{out}");
        assert!(out.contains("width=640,height=360,framerate=30/1"), "{out}");
    }

    #[test]
    fn undeclared_placeholder_is_rejected() {
        let e = Template::parse("t", "/x/t.pipeline", "src a={nope}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/t.pipeline") && e.contains("{nope}"), "{e}");
    }

    #[test]
    fn builtins_load_and_unknown_name_lists_known() {
        let t = Templates::load(None).unwrap();
        assert_eq!(
            t.names().collect::<Vec<_>>(),
            vec![
                "file",
                "hls",
                "rtmp",
                "rtsp",
                "srt",
                "testsrc",
                "testsrc-image"
            ]
        );
        let e = t.get("srtx").unwrap_err().to_string();
        assert!(e.contains("'srtx'") && e.contains("testsrc"), "{e}");
    }
}
