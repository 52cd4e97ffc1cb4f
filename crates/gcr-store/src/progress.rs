//! Progress reporting for long operations; the CLI renders it.

/// Receives progress of a long operation (load, save, import).
pub trait Progress {
    /// Work begins; `total_bytes` is 0 when unknown.
    fn start(&self, total_bytes: u64);
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// A line of information (e.g. "Loaded image: busybox:latest").
    fn message(&self, msg: &str);
    /// Work ended.
    fn finish(&self);
}

/// Ignores all progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}

/// A reader that reports bytes read to a [`Progress`].
pub(crate) struct ProgressReader<'a, R> {
    pub inner: R,
    pub progress: &'a dyn Progress,
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
