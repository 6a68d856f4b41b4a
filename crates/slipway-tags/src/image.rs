//! metadata-action's `images:` lines: a name with optional `enable=` and
//! `name=` attributes.

use super::*;

/// One image of metadata-action's `images:` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The image name, lowercased as metadata-action does.
    pub name: String,
    /// Whether tags are emitted for it (`enable=false` turns it off).
    pub enable: bool,
}

impl ImageSpec {
    /// Parses `images:` lines: `name` or `name=…,enable=…` per line, or, as
    /// in the action's old format, one line of comma-separated names.
    pub fn parse_all<S: AsRef<str>>(lines: &[S]) -> Result<Vec<ImageSpec>, TagError> {
        if let [line] = lines {
            let fields = split_fields(line.as_ref())?;
            if fields.iter().all(|field| !field.contains('=')) {
                return Ok(fields
                    .iter()
                    .map(|field| ImageSpec {
                        name: field.trim().to_lowercase(),
                        enable: true,
                    })
                    .collect());
            }
        }
        let mut images = Vec::new();
        for line in lines {
            let line = line.as_ref();
            let mut image = ImageSpec {
                name: String::new(),
                enable: true,
            };
            for field in split_fields(line)? {
                match field.split_once('=') {
                    None => field.trim().clone_into(&mut image.name),
                    Some((key, value)) => {
                        let value = value.trim();
                        match key.trim().to_ascii_lowercase().as_str() {
                            "name" => value.clone_into(&mut image.name),
                            "enable" => {
                                image.enable = match value {
                                    "true" => true,
                                    "false" => false,
                                    _ => {
                                        return Err(invalid(
                                            line,
                                            "enable",
                                            value,
                                            "`true` or `false`",
                                        ));
                                    }
                                }
                            }
                            other => {
                                return Err(TagError::UnknownImageAttribute {
                                    line: line.to_owned(),
                                    key: other.to_owned(),
                                });
                            }
                        }
                    }
                }
            }
            if image.name.is_empty() {
                return Err(missing(line, "name"));
            }
            image.name = image.name.to_lowercase();
            images.push(image);
        }
        Ok(images)
    }
}
