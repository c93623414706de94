//! `scripts/services.sh`: a SIGTERM of the wrapper stops DynamoDB Local, moto and the wrapped
//! command at once, not when the command ends. Needs `.tools` (`make tools`), as `make test` has.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The command lines of the running processes that contain `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        e.file_name().to_str()?.parse::<u32>().ok()?;
        let raw = std::fs::read(e.path().join("cmdline")).ok()?;
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        line.contains(needle).then_some(line)
    })
    .collect()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sigterm_of_the_wrapper_stops_dynamodb_local_and_moto_at_once() {
    // A command that would outlive the test by far, named so it can be found.
    let marker = format!("{}", 3000 + std::process::id() % 1000);
    let mut wrapper = Command::new(repo().join("scripts/services.sh"))
        .args(["sleep", &marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scripts/services.sh");
    let mut stderr = BufReader::new(wrapper.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("local services:") {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "services.sh ended before the services started");
    }
    // "local services: DynamoDB Local http://127.0.0.1:P1, Secrets Manager (moto) http://127.0.0.1:P2"
    let ports: Vec<&str> = line
        .split("http://127.0.0.1:")
        .skip(1)
        .map(|s| s.trim_end().trim_end_matches(','))
        .map(|s| s.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))
        .collect();
    assert_eq!(ports.len(), 2, "{line}");
    let dynamodb = format!("-port {}", ports[0]);
    let moto = format!("-p {}", ports[1]);
    let sleep = format!("sleep {marker}");
    for needle in [&dynamodb, &moto, &sleep] {
        assert!(!processes_with(needle).is_empty(), "{needle} is running");
    }

    let started = Instant::now();
    let term = Command::new("kill")
        .args(["-TERM", &wrapper.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_until("the wrapper exits", Duration::from_secs(10), || {
        wrapper.try_wait().unwrap().is_some()
    });
    for needle in [&dynamodb, &moto, &sleep] {
        wait_until(
            &format!("no {needle:?} process"),
            Duration::from_secs(10),
            || processes_with(needle).is_empty(),
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}
