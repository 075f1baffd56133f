//! Background threads (WAL consumers, replay) run at
//! `server.background_nice`: when the CPU is short, ingest (parse, WAL
//! append, ack) goes first.

/// Lowers the calling thread's CPU priority to `nice` (Linux; threads it
/// starts afterwards, such as tantivy's indexing and merge threads,
/// inherit it). Elsewhere, or if refused, the thread keeps its priority.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // SAFETY: plain syscalls on the calling thread's own id.
        let refused = unsafe {
            let tid = libc::gettid() as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0
        };
        if refused {
            tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower the priority of a background thread");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Starts `f` on a thread named `name` at priority `nice`.
pub fn spawn(
    name: &str,
    nice: i32,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_thread_priority(nice);
            f()
        })
}
