//! The process's allocator, bounded for a long-lived server. glibc gives each thread that
//! allocates an arena of its own (up to eight per core) and keeps what is freed there for that
//! thread. tokio's blocking threads read and decode a job log's blocks in turn, so each of them
//! kept what it once held: the job-log tool's peak grew by about 3 MiB from an 8 MB log to a
//! 64 MB one. With two arenas it did not grow (`cargo bench --bench job_log_memory`).

/// Arenas glibc may create, whatever the number of threads that allocate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas, unless `MALLOC_ARENA_MAX` already says how many. Call first in
/// `main`, before any other thread starts. Elsewhere (musl, macOS) it does nothing.
pub fn bound_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets one of the allocator's tunables; it is called before any
        // other thread of the process allocates.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}
