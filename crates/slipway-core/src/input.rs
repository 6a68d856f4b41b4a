//! Reading what users point a tool at (`--config`, `--files-from`,
//! `--filters`, `--targets-from`, `--cacert`, `--password-stdin`, a
//! Dockerfile, the CI event file, the docker config) with a size limit, so
//! `--config /dev/zero` or a runaway pipe fails with a message naming the
//! file and the limit instead of growing memory without bound.
//!
//! The errors are `std::io::Error`s whose message names the file, so each
//! caller keeps its own error type (and exit code) for "cannot read".

use std::io::Read as _;
use std::path::Path;

/// The most Slipway reads from one input file or stream: 16 MiB, far
/// above any real slipway.toml, file list, report or certificate bundle.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// The limit as people read it.
pub const MAX_INPUT_SHOWN: &str = "16 MiB";

fn too_large(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "`{what}` is larger than {MAX_INPUT_SHOWN}, the most Slipway reads from one input; \
             is it the right file?"
        ),
    )
}

/// Reads `reader` (named `what` in errors) up to [`MAX_INPUT_BYTES`].
pub fn read_capped(reader: impl std::io::Read, what: &str) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large(what));
    }
    Ok(bytes)
}

/// The bytes of the file at `path`, at most [`MAX_INPUT_BYTES`].
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = fs_err::File::open(path)?;
    read_capped(file, &path.display().to_string())
}

/// The text of the file at `path`, at most [`MAX_INPUT_BYTES`] of UTF-8.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    utf8(read(path)?, &path.display().to_string())
}

/// All of stdin as text, at most [`MAX_INPUT_BYTES`] of UTF-8.
pub fn read_stdin_to_string() -> std::io::Result<String> {
    utf8(read_capped(std::io::stdin().lock(), "stdin")?, "stdin")
}

fn utf8(bytes: Vec<u8>, what: &str) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|error| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("`{what}` is not UTF-8 text: {}", error.utf8_error()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_naming_it_and_the_limit() {
        let error = read_to_string(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`/dev/zero` is larger than 16 MiB, the most Slipway reads from one input; is it the right file?"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.txt");
        fs_err::write(&path, "small").unwrap();
        assert_eq!(read_to_string(&path).unwrap(), "small");
        fs_err::write(&path, b"\xff").unwrap();
        assert!(
            read_to_string(&path)
                .unwrap_err()
                .to_string()
                .contains("is not UTF-8 text")
        );
    }
}
