//! Test support shared by the workspace's integration tests: the Python venv
//! the test setup creates, the real S3-compatible server (moto) started from
//! it on 127.0.0.1, the edge Worker under `wrangler dev` ([`wrangler`]), and
//! an object store that fails on purpose ([`faulty_store`]), and ClickHouse
//! (chDB) as the oracle of the funnel and retention tests ([`clickhouse`]).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use url::Url;

pub mod clickhouse;
pub mod faulty_store;
pub mod wrangler;

/// The test venv (`CONTRAIL_VENV`, else `~/.cache/contrail/venv`), made by
/// `scripts/setup-test-deps`.
pub fn venv() -> PathBuf {
    std::env::var_os("CONTRAIL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/contrail/venv"))
}

/// The venv's Python, asserted present.
pub fn python() -> PathBuf {
    let python = venv().join("bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup-test-deps", python.display());
    python
}

struct Moto {
    endpoint: String,
    _child: Option<Child>,
}

/// The S3 server's endpoint: `CONTRAIL_TEST_S3_ENDPOINT` if set, else a moto
/// server this process starts once and that stops when this process exits.
pub fn s3_endpoint() -> &'static str {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    &MOTO
        .get_or_init(|| {
            if let Ok(endpoint) = std::env::var("CONTRAIL_TEST_S3_ENDPOINT") {
                return Moto { endpoint, _child: None };
            }
            let server = venv().join("bin/moto_server");
            assert!(server.exists(), "{} is missing: run scripts/setup-test-deps (it installs moto)", server.display());
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            // A static's child is never dropped, so a shell watches this
            // process and stops moto when it exits (leftover servers were
            // seen using a third of a core long after their tests ended,
            // slowing whatever ran next), or when it is interrupted with
            // its process group; `timeout` bounds its life anyway.
            let watchdog = r#"timeout 1800 "$0" "$@" & moto=$!
trap 'kill "$moto" 2>/dev/null; exit' INT TERM HUP
while kill -0 "$CONTRAIL_TEST_PID" 2>/dev/null && kill -0 "$moto" 2>/dev/null; do sleep 1; done
kill "$moto" 2>/dev/null"#;
            let child = Command::new("sh")
                .args(["-c", watchdog])
                .arg(server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("CONTRAIL_TEST_PID", std::process::id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server starts");
            let deadline = Instant::now() + Duration::from_secs(30);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "moto did not start within 30 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            Moto { endpoint: format!("http://127.0.0.1:{port}"), _child: Some(child) }
        })
        .endpoint
}

/// Credentials and region the S3 server accepts (moto takes any).
pub const S3_REGION: &str = "us-east-1";
/// Access key id for the test server.
pub const S3_ACCESS_KEY_ID: &str = "testing";
/// Secret access key for the test server.
pub const S3_SECRET_ACCESS_KEY: &str = "testing";

/// A fresh, uniquely named bucket on the S3 server.
pub fn new_bucket(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    create_bucket(&name);
    name
}

/// Creates a bucket with a plain (unsigned) HTTP PUT, which moto accepts.
pub fn create_bucket(name: &str) {
    let endpoint = Url::parse(s3_endpoint()).unwrap();
    let mut stream = TcpStream::connect((endpoint.host_str().unwrap(), endpoint.port().unwrap())).unwrap();
    write!(
        stream,
        "PUT /{name} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        endpoint.authority()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "bucket creation failed: {response}");
}
