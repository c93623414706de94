//! The built-in routing document (the repository's `routing.yaml`) turned into JSON at build
//! time: every cold start of the ingest and the relay parses it, and JSON takes a fraction of
//! the YAML parser's instructions (`make bench`, init instructions), while admins keep editing
//! YAML with comments. A `routing.yaml` that is not YAML stops the build here, with the line.
//! The rules themselves are checked by `Routing::built_in` on both texts (`make test`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=../routing.yaml");
    let yaml = std::fs::read_to_string("../routing.yaml")
        .unwrap_or_else(|e| panic!("routing.yaml cannot be read: {e}"));
    let value: serde_json::Value = serde_norway::from_str(&yaml)
        .unwrap_or_else(|e| panic!("routing.yaml is not a valid YAML document: {e}"));
    let json = serde_json::to_string(&value)
        .unwrap_or_else(|e| panic!("routing.yaml cannot be written as JSON: {e}"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("routing.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
