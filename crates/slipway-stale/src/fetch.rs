//! The registry fetch: the revision labels of published images, bounded
//! by a timeout per image, through the label cache.

use super::*;

/// How published labels are fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The most time one image's lookup may take, retries included.
    pub timeout: Duration,
    /// The cache of labels by digest, if any (e.g. [`default_cache_path`]).
    pub cache: Option<PathBuf>,
}

/// What the registry holds under each of `images`, in order: labels of
/// every platform, from manifests and config blobs only. With a cache, a
/// digest seen before costs one `HEAD` of its manifest. Each lookup is
/// bounded by [`FetchOptions::timeout`]; all run concurrently (one per
/// image of the project, a handful).
pub async fn fetch_published(
    client: &RegistryClient,
    images: &[ImageRef],
    options: &FetchOptions,
) -> Vec<Result<Published, FetchError>> {
    let cache = std::sync::Arc::new(
        options
            .cache
            .as_deref()
            .map(Cache::load)
            .unwrap_or_default(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for (index, image) in images.iter().enumerate() {
        let client = client.clone();
        let image = image.clone();
        let timeout = options.timeout;
        let cached = std::sync::Arc::clone(&cache);
        tasks.spawn(async move {
            let lookup = lookup(&client, &image, &cached);
            let result = match tokio::time::timeout(timeout, lookup).await {
                Ok(result) => result,
                Err(_) => Err(FetchError::Timeout {
                    image: image.to_string(),
                    timeout,
                }),
            };
            (index, result)
        });
    }
    let mut results: Vec<Option<Result<(Published, bool), FetchError>>> =
        (0..images.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = Some(result),
            Err(error) => tracing::error!(%error, "a label lookup panicked"),
        }
    }
    let mut cache = std::sync::Arc::unwrap_or_clone(cache);
    let mut changed = false;
    let out: Vec<Result<Published, FetchError>> = results
        .into_iter()
        .zip(images)
        .map(|(result, image)| {
            let (published, fresh_entry) = result.unwrap_or_else(|| {
                Err(FetchError::Timeout {
                    image: image.to_string(),
                    timeout: options.timeout,
                })
            })?;
            if let (true, Published::Found { digest, platforms }) = (fresh_entry, &published) {
                cache.insert(digest.clone(), platforms.clone());
                changed = true;
            }
            Ok(published)
        })
        .collect();
    if let (true, Some(path)) = (changed, &options.cache)
        && let Err(error) = cache.save(path)
    {
        tracing::warn!(path = %path.display(), %error, "cannot write the label cache");
    }
    out
}

/// One lookup: `HEAD` for the digest, then the cache or the labels.
/// Returns whether the answer is new to the cache.
pub(super) async fn lookup(
    client: &RegistryClient,
    image: &ImageRef,
    cache: &Cache,
) -> Result<(Published, bool), FetchError> {
    let registry_error = |source| FetchError::Registry {
        image: image.to_string(),
        source: Box::new(source),
    };
    let Some(digest) = client.resolve(image).await.map_err(registry_error)? else {
        return Ok((Published::Missing, false));
    };
    if let Some(platforms) = cache.get(&digest.to_string()) {
        tracing::debug!(%image, %digest, "labels from the cache");
        return Ok((
            Published::Found {
                digest: digest.to_string(),
                platforms,
            },
            false,
        ));
    }
    // By digest, so the labels are those of what HEAD answered even if the
    // tag moves meanwhile.
    let pinned = image.clone().with_digest(digest.clone());
    match client.fetch_config_labels(&pinned).await {
        Ok(labels) => Ok((Published::from_labels(digest.to_string(), &labels), true)),
        Err(error) if error.is_not_found() => Ok((Published::Missing, false)),
        Err(source) => Err(registry_error(source)),
    }
}

/// Why what is published under a reference could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The registry failed or refused.
    #[error("cannot read the labels of `{image}`")]
    Registry {
        /// The reference.
        image: String,
        /// What the registry client reported.
        #[source]
        source: Box<RegistryError>,
    },
    /// The lookup took longer than allowed.
    #[error("reading the labels of `{image}` took longer than {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// The reference.
        image: String,
        /// The limit.
        timeout: Duration,
    },
}

slipway_core::cli::exit_status!(FetchError => FAILURE);
