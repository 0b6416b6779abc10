//! Termination signals and the shutdown state shared by the agent loop and its signal thread.
//!
//! Signals are blocked in every thread and taken with `sigwait` on one dedicated thread, so no
//! work happens inside a signal handler. Children get an empty signal mask (see `exec`).

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Shutdown {
    requested: AtomicBool,
    /// True while a job is in hand (from the moment a poll returned it until it is reported).
    busy: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Marks shutdown as requested and wakes sleepers. Returns true when no job is in hand, in
    /// which case the process may exit at once.
    pub fn request(&self) -> bool {
        let busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        self.requested.store(true, Ordering::SeqCst);
        self.wake.notify_all();
        !*busy
    }

    /// Takes a job in hand. Returns false when shutdown was already requested.
    pub fn begin_job(&self) -> bool {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        *busy = true;
        !self.is_requested()
    }

    pub fn end_job(&self) {
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }

    /// Sleeps for `d` or until shutdown is requested; returns whether it was.
    pub fn sleep(&self, d: Duration) -> bool {
        let guard = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let _unused = self
            .wake
            .wait_timeout_while(guard, d, |_| !self.is_requested())
            .unwrap_or_else(|e| e.into_inner());
        self.is_requested()
    }
}

/// Blocks `signals` in the calling thread (and so in every thread it spawns later) and hands
/// each arrival to `on_signal` on a dedicated thread. Call before spawning other threads.
pub fn handle_signals<F>(signals: &[libc::c_int], on_signal: F) -> Result<()>
where
    F: Fn(libc::c_int) + Send + 'static,
{
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(Error::io(
                "cannot block signals",
                std::io::Error::from_raw_os_error(rc),
            ));
        }
        set
    };
    thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` lives in this closure; `sig` is a valid out-pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                on_signal(sig);
            }
        })
        .map_err(|e| Error::io("cannot start signal thread", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn request_reports_idle_or_busy() {
        let s = Shutdown::new();
        assert!(s.begin_job());
        assert!(!s.request(), "busy agent must not exit at once");
        s.end_job();
        assert!(s.request());
        assert!(!s.begin_job());
    }

    #[test]
    fn sleep_wakes_on_request() {
        let s = Arc::new(Shutdown::new());
        let s2 = s.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            s2.request();
        });
        let start = Instant::now();
        assert!(s.sleep(Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    }
}
