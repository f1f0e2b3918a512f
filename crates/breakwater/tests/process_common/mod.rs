//! The child processes tests start: an isolated environment, a free port, a stop by signal.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this support"
)]

use std::ffi::OsStr;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, Command};

/// `program` with an empty environment, so the host's variables and `.env` cannot leak in,
/// and `RUST_LOG=warn`. A coverage run's `LLVM_PROFILE_FILE` is kept, so the child writes
/// its own profile.
pub fn isolated(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| name == "LLVM_PROFILE_FILE"))
        .env("RUST_LOG", "warn");
    command
}

/// A loopback port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port()
}

/// Sends `signal` (`"TERM"`, `"INT"`) to `child` and waits up to 10 s for it to exit: its
/// status, or `None` when it did not exit in time.
pub async fn stop(child: &mut Child, signal: &str) -> Option<ExitStatus> {
    let pid = child.id()?.to_string();
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.clone()])
        .status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .ok()?
        .ok()
}
