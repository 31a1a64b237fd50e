//! An object store wrapper for deterministic races: it stamps `last_modified` from the
//! tests' [`ManualClock`] (as if the server's clock were the test's), and runs a hook
//! before chosen requests so a test can make another writer act at an exact point of
//! an upload or a retention pass.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use snapshot_object_store::object_store::path::Path;
use snapshot_object_store::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use snapshot_object_store::{Clock, ManualClock};

/// The kind of request a hook sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A PUT, or the start of a multipart upload.
    Put,
    /// A GET.
    Get,
    /// A HEAD.
    Head,
    /// A DELETE.
    Delete,
    /// A listing.
    List,
}

/// Decides, per request, whether to run something first (returns it) or not.
pub type Hook = Box<dyn FnMut(Op, &Path) -> Option<BoxFuture<'static, ()>> + Send>;

/// See the module docs.
pub struct SimStore {
    inner: Arc<dyn ObjectStore>,
    clock: ManualClock,
    written: Arc<Mutex<HashMap<Path, u64>>>,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl SimStore {
    pub fn new(inner: Arc<dyn ObjectStore>, clock: ManualClock) -> Self {
        Self {
            inner,
            clock,
            written: Arc::default(),
            hook: Arc::default(),
        }
    }

    /// Runs `hook` before every later request until [`clear_hook`](Self::clear_hook).
    pub fn set_hook(&self, hook: Hook) {
        *self.hook.lock().unwrap() = Some(hook);
    }

    /// No hook any more.
    pub fn clear_hook(&self) {
        *self.hook.lock().unwrap() = None;
    }

    fn stamp(&self, path: &Path) {
        let now = self.clock.now_millis();
        self.written.lock().unwrap().insert(path.clone(), now);
    }
}

/// Runs the hook's work for `op` on `path`, if it has any.
async fn run_hook(hook: &Mutex<Option<Hook>>, op: Op, path: &Path) {
    let work = hook
        .lock()
        .unwrap()
        .as_mut()
        .and_then(|hook| hook(op, path));
    if let Some(work) = work {
        work.await;
    }
}

/// `meta` with the time the simulation wrote it, if it did.
fn restamp(written: &Mutex<HashMap<Path, u64>>, mut meta: ObjectMeta) -> ObjectMeta {
    if let Some(millis) = written.lock().unwrap().get(&meta.location) {
        meta.last_modified = DateTime::<Utc>::from_timestamp_millis(*millis as i64).unwrap();
    }
    meta
}

impl fmt::Debug for SimStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimStore({})", self.inner)
    }
}

impl fmt::Display for SimStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait]
impl ObjectStore for SimStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        run_hook(&self.hook, Op::Put, location).await;
        let put = self.inner.put_opts(location, payload, opts).await?;
        self.stamp(location);
        Ok(put)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        run_hook(&self.hook, Op::Put, location).await;
        // As on S3, a multipart object's last_modified is when its upload started.
        self.stamp(location);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        run_hook(&self.hook, op, location).await;
        let mut got = self.inner.get_opts(location, options).await?;
        got.meta = restamp(&self.written, got.meta);
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = self.inner.clone();
        let hook = self.hook.clone();
        locations
            .then(move |location| {
                let (inner, hook) = (inner.clone(), hook.clone());
                async move {
                    let location = location?;
                    run_hook(&hook, Op::Delete, &location).await;
                    let once = futures::stream::once(futures::future::ready(Ok(location.clone())));
                    inner.delete_stream(once.boxed()).try_next().await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (inner, hook, written) = (self.inner.clone(), self.hook.clone(), self.written.clone());
        let prefix = prefix.cloned();
        futures::stream::once(async move {
            run_hook(&hook, Op::List, &prefix.clone().unwrap_or_default()).await;
            let metas: Vec<Result<ObjectMeta>> = inner.list(prefix.as_ref()).collect().await;
            futures::stream::iter(
                metas
                    .into_iter()
                    .map(move |meta| meta.map(|meta| restamp(&written, meta))),
            )
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed.objects = listed
            .objects
            .into_iter()
            .map(|meta| restamp(&self.written, meta))
            .collect();
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        run_hook(&self.hook, Op::Put, to).await;
        self.inner.copy_opts(from, to, options).await?;
        self.stamp(to);
        Ok(())
    }
}
