//! `make reliability`: the full reliability suite against DynamoDB Local, moto and loopback fakes.
//! Prints the tally table, writes target/bench/reliability.json, exits non-zero on any failure.
//! `--short` runs the sizes `make test` uses.

use sfvapi_bench::reliability::{run, Size};

fn main() -> std::process::ExitCode {
    // EMF metric lines would bury the table; set before any thread exists.
    std::env::set_var("SFVAPI_NO_METRICS", "1");
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(suite()),
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn suite() -> std::process::ExitCode {
    if let Err(e) = sfvapi_bench::harness::require_local_services() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let size = if std::env::args().any(|a| a == "--short") {
        Size::short()
    } else {
        Size::full()
    };
    eprintln!("reliability suite, sizes {size:?}");
    let suite = run(size).await;
    println!("{}", suite.table());
    let dir = std::path::Path::new("target/bench");
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join("reliability.json");
    match serde_json::to_string_pretty(&suite.to_json()) {
        Ok(s) => match std::fs::write(&path, s) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        },
        Err(e) => eprintln!("could not encode the results: {e}"),
    }
    if suite.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
