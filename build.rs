//! Embeds the web console (`console/`) in the binary: one table of every file under it, so
//! that a `cargo build` with nothing but the Rust toolchain yields a server that serves the
//! whole console offline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let console = root.join("console");
    // Cargo scans a watched directory whole: an edited, added or removed file rebuilds.
    println!("cargo:rerun-if-changed=console");
    let mut files = Vec::new();
    collect(&console, &mut files);
    // Sorted by the name served, so that the server can search the table.
    let mut named: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|file| {
            let name = file
                .strip_prefix(&console)
                .expect("under console/")
                .to_str()
                .expect("console file names are UTF-8")
                .replace('\\', "/");
            (name, file)
        })
        .collect();
    named.sort();
    let mut table = String::from("&[\n");
    for (name, file) in &named {
        writeln!(
            table,
            "    ({name:?}, include_bytes!({path:?}) as &[u8]),",
            path = file.display().to_string()
        )
        .expect("writing to a string");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("console_assets.rs"), table).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("console/ is readable");
    for entry in entries {
        let path = entry.expect("console/ is readable").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}
