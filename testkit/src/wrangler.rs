//! `wrangler dev`: the edge Worker inside the real Workers runtime (workerd),
//! with local R2 and Durable Objects persisted under a directory the test
//! owns, so that a restart keeps state and a fresh directory starts empty.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The repository root: the parent of the package under test (every
/// workspace member sits one level below the root). Read at run time, as
/// cargo sets it for tests, so that a test binary reused from another clone
/// sharing the target directory still points at this one.
pub fn repo_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let package = package.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package.parent().unwrap_or(Path::new(".")).to_path_buf()
}

fn toolchain(name: &str) -> PathBuf {
    let path = repo_root().join("tests/worker/node_modules/.bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/setup-worker-toolchain", path.display());
    path
}

/// One `wrangler dev` at a time per test process: each instance starts a
/// workerd and bundles into the repository's `.wrangler/`, and two cores do
/// not run several well.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running `wrangler dev`, killed (with its workerd) on drop.
pub struct Wrangler {
    child: Option<Child>,
    port: u16,
    state: PathBuf,
    log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Wrangler {
    /// Starts the Worker with local state under `state` (created if absent),
    /// `secrets` in an env file (as `wrangler secret put` would hold them) and
    /// `vars` overriding `wrangler.toml`'s `[vars]`, and waits until it answers.
    pub fn start(state: &Path, secrets: &[(&str, &str)], vars: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(state).unwrap();
        let env_file = state.with_extension("env");
        let text: String = secrets.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&env_file, text).unwrap();
        let log = state.with_extension("log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let port = free_port();
        let mut command = Command::new(toolchain("wrangler"));
        command
            .current_dir(repo_root())
            .args(["dev", "--config", "wrangler.toml", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &free_port().to_string(), "--show-interactive-dev-session=false"])
            .arg("--persist-to")
            .arg(state)
            .arg("--env-file")
            .arg(&env_file)
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("CI", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        for (name, value) in vars {
            command.arg("--var").arg(format!("{name}:{value}"));
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("wrangler starts");
        let wrangler = Self { child: Some(child), port, state: state.to_path_buf(), log };
        wrangler.wait_ready(Duration::from_secs(90));
        wrangler
    }

    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let request =
                    format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "wrangler dev did not answer within {within:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything wrangler and the Worker printed so far (all runs on this state).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Copies every object of the Worker's local R2 bucket to `out/<key>`
    /// (the layout of a `file://` object store); returns how many.
    pub fn export_r2(&self, out: &Path) -> usize {
        export_r2(&self.state, out)
    }

    /// Kills wrangler and workerd at once (SIGKILL to the process group), as a
    /// crash would: nothing gets to flush or shut down.
    pub fn kill(mut self) {
        self.kill_group();
    }

    fn kill_group(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Wrangler {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Copies the local R2 bucket persisted under `state` to `out/<key>`.
pub fn export_r2(state: &Path, out: &Path) -> usize {
    let script = repo_root().join("tests/worker/r2-export.mjs");
    let output = Command::new("node")
        .current_dir(repo_root().join("tests/worker"))
        .arg(script)
        .arg(state)
        .arg(out)
        .output()
        .expect("node runs");
    assert!(output.status.success(), "r2-export failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    line.trim_start_matches("{\"exported\":").trim_end_matches('}').parse().unwrap_or_else(|_| panic!("{text}"))
}
