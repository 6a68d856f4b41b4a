//! The on-disk cache of published labels by digest
//! (`.git/slipway/stale-cache.json`): labels under a digest never change.

use super::*;

/// Where the labels cache of the repository around `start` lives:
/// `.git/slipway/stale-cache.json`.
pub fn default_cache_path(start: &Path) -> Option<PathBuf> {
    let repo = slipway_git::Repo::discover(start).ok()?;
    Some(cache_path(&repo))
}

/// Where the labels cache of `repo` lives: `.git/slipway/stale-cache.json`.
pub fn cache_path(repo: &slipway_git::Repo) -> PathBuf {
    repo.git_dir().join("slipway").join("stale-cache.json")
}

/// The cache file: published labels by digest. Labels under a digest
/// never change, so entries never expire; the file keeps the newest
/// [`CACHE_ENTRIES`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Cache {
    #[serde(default)]
    pub(super) entries: Vec<CacheEntry>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct CacheEntry {
    pub(super) digest: String,
    pub(super) platforms: Vec<PlatformRevision>,
}

/// How many digests the cache remembers.
pub const CACHE_ENTRIES: usize = 256;

impl Cache {
    /// The cache at `path`; a missing or unreadable one is empty (it is
    /// only a cache).
    pub(super) fn load(path: &Path) -> Cache {
        match slipway_core::input::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::debug!(path = %path.display(), %error, "ignoring an unreadable cache");
                Cache::default()
            }),
            Err(_) => Cache::default(),
        }
    }

    pub(super) fn get(&self, digest: &str) -> Option<Vec<PlatformRevision>> {
        self.entries
            .iter()
            .find(|e| e.digest == digest)
            .map(|e| e.platforms.clone())
    }

    pub(super) fn insert(&mut self, digest: String, platforms: Vec<PlatformRevision>) {
        self.entries.retain(|e| e.digest != digest);
        self.entries.push(CacheEntry { digest, platforms });
        let excess = self.entries.len().saturating_sub(CACHE_ENTRIES);
        self.entries.drain(..excess);
    }

    /// Writes the cache atomically (temp file + rename in the same directory).
    pub(super) fn save(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut file, self).map_err(std::io::Error::other)?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}
