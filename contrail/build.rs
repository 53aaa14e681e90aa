//! Embeds the built dashboard (`dashboard/dist`, made by `scripts/build-dashboard`)
//! in the binary: every file with its content type, an ETag and a gzip copy
//! compressed here, once, so serving costs no CPU. When the front end has
//! not been built, nothing is embedded and the binary serves a page saying
//! how to build it: `cargo build` never runs npm.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dist = manifest.join("../dashboard/dist");
    // Watching a missing path reruns this script on every build; until the
    // dashboard is built, watch its folder for `dist` to appear instead.
    let watched = if dist.is_dir() { dist.clone() } else { manifest.join("../dashboard") };
    println!("cargo:rerun-if-changed={}", watched.display());

    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
    }
    files.sort();
    let mut code = String::from(
        "/// The built dashboard's files (empty when it was not built).\npub static ASSETS: &[Asset] = &[\n",
    );
    for (i, (route, file)) in files.iter().enumerate() {
        let bytes = std::fs::read(file).expect("reading a dashboard asset");
        let gzip = out.join(format!("asset-{i}.gz"));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&bytes).expect("compressing in memory");
        std::fs::write(&gzip, encoder.finish().expect("compressing in memory")).expect("writing to OUT_DIR");
        writeln!(
            code,
            "    Asset {{ route: {route:?}, content_type: {:?}, etag: \"{:016x}\", identity: include_bytes!({:?}), gzip: include_bytes!({:?}) }},",
            content_type(file),
            fnv1a(&bytes),
            file.display().to_string(),
            gzip.display().to_string(),
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    std::fs::write(out.join("dashboard_assets.rs"), code).expect("writing to OUT_DIR");
}

/// Every file under `dir`, with its route (`/` for `index.html`).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).expect("reading dashboard/dist") {
        let path = entry.expect("reading dashboard/dist").path();
        if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
            continue;
        }
        let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
        let route = if relative == "index.html" { "/".to_owned() } else { format!("/{relative}") };
        files.push((route, path));
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a: a content hash for ETags (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
