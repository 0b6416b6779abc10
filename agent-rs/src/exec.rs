//! Running a script under limits: own process group, rlimits, cleared environment, output
//! drained on reader threads into capped tail buffers, and a timeout that kills the group.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a process group gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long output readers may take to see end-of-file after the script ended.
const READER_GRACE: Duration = Duration::from_secs(2);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Limits applied to one execution. Memory is address space (RLIMIT_AS); processes is
/// RLIMIT_NPROC, which the kernel counts per user and does not enforce for root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecLimits {
    pub timeout: Duration,
    pub cpu_seconds: u64,
    pub memory_mb: u64,
    pub open_files: u64,
    pub processes: u64,
    pub output_bytes: usize,
}

pub struct Spec<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: &'a Path,
    /// The complete environment of the script; nothing is inherited from the agent.
    pub env: &'a [(String, String)],
    pub limits: ExecLimits,
}

/// Asks a running execution to stop: once `requested()` turns true the script gets `grace`
/// to finish, then its process group is terminated.
pub struct Stop<'a> {
    pub requested: &'a dyn Fn() -> bool,
    pub grace: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration: Duration,
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub timed_out: bool,
    /// The script was stopped because the agent is shutting down.
    pub interrupted: bool,
}

/// Runs `spec` to completion, timeout or stop. Errors only when the script cannot be started.
pub fn run_limited(spec: &Spec<'_>, stop: Option<&Stop<'_>>) -> io::Result<Outcome> {
    let mut cmd = Command::new(spec.program);
    cmd.args(spec.args)
        .current_dir(spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let limits = spec.limits;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setpgid, getrlimit, setrlimit, sigprocmask); it does
    // not allocate or take locks.
    unsafe {
        cmd.pre_exec(move || child_setup(&limits));
    }

    let started = Instant::now();
    let mut child = spawn_retrying(&mut cmd)?;
    let pid = child.id() as i32;
    let (done_tx, done_rx) = mpsc::channel();
    let stdout_tail = Arc::new(Mutex::new(Tail::new(limits.output_bytes)));
    let stderr_tail = Arc::new(Mutex::new(Tail::new(limits.output_bytes)));
    let mut readers = 0;
    let streams = [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            &stdout_tail,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            &stderr_tail,
        ),
    ];
    for (stream, tail) in streams {
        let Some(stream) = stream else { continue };
        if let Err(e) = spawn_reader(stream, tail.clone(), Tee::None, done_tx.clone()) {
            signal_group(pid, libc::SIGKILL, true);
            let _ = child.wait();
            return Err(e);
        }
        readers += 1;
    }
    drop(done_tx);

    let deadline = started + limits.timeout;
    let mut timed_out = false;
    let mut interrupted = false;
    let mut stop_at: Option<Instant> = None;
    let mut term_sent_at: Option<Instant> = None;
    let mut kill_sent = false;
    let status = loop {
        if let Some(status) = wait_nonblocking(&mut child, pid)? {
            break status;
        }
        let now = Instant::now();
        match term_sent_at {
            None => {
                if now >= deadline {
                    timed_out = true;
                } else if let Some(stop) = stop {
                    if stop_at.is_none() && (stop.requested)() {
                        stop_at = Some(now + stop.grace);
                    }
                    interrupted = stop_at.is_some_and(|at| now >= at);
                }
                if timed_out || interrupted {
                    signal_group(pid, libc::SIGTERM, true);
                    term_sent_at = Some(now);
                }
            }
            Some(at) if !kill_sent && now >= at + TERM_GRACE => {
                signal_group(pid, libc::SIGKILL, true);
                kill_sent = true;
            }
            Some(_) => {}
        }
        thread::sleep(POLL_INTERVAL);
    };
    let duration = started.elapsed();
    // Whatever the script left running in its group (background jobs) goes with it.
    signal_group(pid, libc::SIGKILL, false);
    wait_readers(&done_rx, readers);

    Ok(Outcome {
        exit_code: status.code(),
        signal: status.signal(),
        duration,
        stdout_tail: take_tail(&stdout_tail),
        stderr_tail: take_tail(&stderr_tail),
        timed_out,
        interrupted,
    })
}

fn wait_nonblocking(child: &mut Child, pid: i32) -> io::Result<Option<std::process::ExitStatus>> {
    match child.try_wait() {
        Ok(status) => Ok(status),
        Err(e) => {
            signal_group(pid, libc::SIGKILL, true);
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Spawns, retrying briefly on ETXTBSY: a script file written just before may still be open
/// for writing in a child that another thread forked at that moment.
pub fn spawn_retrying(cmd: &mut Command) -> io::Result<Child> {
    let mut attempts = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 20 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

fn child_setup(limits: &ExecLimits) -> io::Result<()> {
    // SAFETY: plain system calls on this process; see the caller's note on async-signal-safety.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let cpu = limits.cpu_seconds;
        // The soft limit sends SIGXCPU; the hard limit a few seconds later sends SIGKILL.
        set_rlimit(libc::RLIMIT_CPU as Resource, cpu, cpu.saturating_add(5))?;
        let mem = limits.memory_mb.saturating_mul(1024 * 1024);
        set_rlimit(libc::RLIMIT_AS as Resource, mem, mem)?;
        set_rlimit(
            libc::RLIMIT_NOFILE as Resource,
            limits.open_files,
            limits.open_files,
        )?;
        set_rlimit(
            libc::RLIMIT_NPROC as Resource,
            limits.processes,
            limits.processes,
        )?;
        // The agent blocks its termination signals for its own signal thread; the script
        // must start with none blocked.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// Lowers a limit, never raising it above the current hard limit (which would fail for an
/// unprivileged agent).
unsafe fn set_rlimit(resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
    let mut current: libc::rlimit = std::mem::zeroed();
    if libc::getrlimit(resource, &mut current) != 0 {
        return Err(io::Error::last_os_error());
    }
    // rlim_t is not u64 on every target, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    let to_rlim = |v: u64| -> libc::rlim_t {
        if v >= libc::RLIM_INFINITY as u64 {
            libc::RLIM_INFINITY
        } else {
            v as libc::rlim_t
        }
    };
    let max = current.rlim_max;
    let hard = if max == libc::RLIM_INFINITY {
        to_rlim(hard)
    } else {
        to_rlim(hard).min(max)
    };
    let wanted = libc::rlimit {
        rlim_cur: to_rlim(soft).min(hard),
        rlim_max: hard,
    };
    if libc::setrlimit(resource, &wanted) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `sig` to the process group led by `pid`. Before the leader is reaped, `leader_alive`
/// lets it fall back to the leader alone (in case the group did not form).
fn signal_group(pid: i32, sig: libc::c_int, leader_alive: bool) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        if libc::kill(-pid, sig) != 0 && leader_alive {
            libc::kill(pid, sig);
        }
    }
}

/// A byte buffer that keeps only the last `cap` bytes written to it.
#[derive(Debug)]
pub struct Tail {
    buf: VecDeque<u8>,
    cap: usize,
    dropped: u64,
}

impl Tail {
    pub fn new(cap: usize) -> Self {
        Tail {
            buf: VecDeque::new(),
            cap,
            dropped: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if data.len() >= self.cap {
            self.dropped += (self.buf.len() + data.len() - self.cap) as u64;
            self.buf.clear();
            self.buf.extend(&data[data.len() - self.cap..]);
            return;
        }
        let over = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.dropped += over as u64;
        self.buf.drain(..over);
        self.buf.extend(data);
    }

    /// Bytes that were cut from the front.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept bytes as text of at most `cap` bytes. A character cut in half at the front is
    /// dropped; invalid UTF-8 becomes U+FFFD.
    pub fn into_string(self) -> String {
        let bytes: Vec<u8> = self.buf.into();
        let mut start = 0;
        if self.dropped > 0 {
            while start < bytes.len() && start < 3 && (bytes[start] & 0xC0) == 0x80 {
                start += 1;
            }
        }
        let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
        if text.len() <= self.cap {
            return text;
        }
        // Replacement characters are wider than the bytes they replace.
        let mut cut = text.len() - self.cap;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text[cut..].to_string()
    }
}

fn take_tail(tail: &Arc<Mutex<Tail>>) -> String {
    let mut guard = tail.lock().unwrap_or_else(|e| e.into_inner());
    let cap = guard.cap;
    std::mem::replace(&mut *guard, Tail::new(cap)).into_string()
}

/// Where a reader copies what it reads, besides its tail buffer.
#[derive(Clone, Copy, Debug)]
pub enum Tee {
    None,
    Stdout,
    Stderr,
}

/// Drains `src` on its own thread into `tail` (and `tee`), then signals `done`.
pub fn spawn_reader<R: Read + Send + 'static>(
    mut src: R,
    tail: Arc<Mutex<Tail>>,
    tee: Tee,
    done: mpsc::Sender<()>,
) -> io::Result<()> {
    thread::Builder::new()
        .name("output-reader".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let chunk = &buf[..n];
                        // The user still sees the output even if our copy cannot be written.
                        let _ = match tee {
                            Tee::None => Ok(()),
                            Tee::Stdout => {
                                let mut out = io::stdout().lock();
                                out.write_all(chunk).and_then(|_| out.flush())
                            }
                            Tee::Stderr => io::stderr().lock().write_all(chunk),
                        };
                        tail.lock().unwrap_or_else(|e| e.into_inner()).push(chunk);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = done.send(());
        })
        .map(|_| ())
}

/// Waits until `count` readers reached end-of-file, or gives up after a grace period (a
/// process that escaped the group may hold the pipe open).
pub fn wait_readers(done: &mpsc::Receiver<()>, count: usize) {
    let until = Instant::now() + READER_GRACE;
    for _ in 0..count {
        let left = until.saturating_duration_since(Instant::now());
        if done.recv_timeout(left).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end() {
        let mut t = Tail::new(5);
        t.push(b"abc");
        t.push(b"defg");
        assert_eq!(t.dropped(), 2);
        assert_eq!(t.into_string(), "cdefg");
        let mut t = Tail::new(4);
        t.push(b"0123456789");
        assert_eq!(t.into_string(), "6789");
    }

    #[test]
    fn tail_with_zero_cap_keeps_nothing() {
        let mut t = Tail::new(0);
        t.push(b"abc");
        assert_eq!(t.into_string(), "");
    }

    #[test]
    fn tail_drops_a_split_character_at_the_front() {
        let mut t = Tail::new(4);
        t.push("xé€".as_bytes()); // 1 + 2 + 3 bytes; the last 4 start inside "é"
        assert_eq!(t.into_string(), "€");
    }

    #[test]
    fn tail_text_never_exceeds_cap() {
        let mut t = Tail::new(4);
        t.push(&[0xff, 0xfe, 0xfd, 0xfc]);
        let s = t.into_string();
        assert!(s.len() <= 4, "{s:?}");
    }
}
