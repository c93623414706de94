//! `make demo SCENARIO=…` with a scenario that does not exist: the answer names the variable the
//! user set (not the sandbox's own `SANDBOX_SCENARIO`) and every scenario, callback,
//! event-relay and calling-policy included. No services needed: the arguments are refused before anything starts.

use std::process::Command;

const ALL: [&str; 7] = [
    "normal",
    "no-answer",
    "outage",
    "callback",
    "event-relay",
    "calling-policy",
    "handoff",
];

fn demo(scenario_env: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfvapi-local"));
    cmd.arg("demo").args(args).env_remove("SANDBOX_SCENARIO");
    match scenario_env {
        Some(s) => cmd.env("SCENARIO", s),
        None => cmd.env_remove("SCENARIO"),
    };
    let out = cmd.output().expect("run sfvapi-local");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_scenario_names_scenario_and_lists_every_scenario() {
    let (ok, stderr) = demo(Some("noanswer"), &[]);
    assert!(!ok);
    assert!(
        stderr.starts_with("SCENARIO = \"noanswer\" is not a scenario: use one of "),
        "{stderr}"
    );
    assert!(!stderr.contains("SANDBOX_SCENARIO"), "{stderr}");
    for s in ALL {
        assert!(stderr.contains(s), "{s}: {stderr}");
    }

    let (ok, stderr) = demo(None, &["--scenario", "relay"]);
    assert!(!ok);
    assert!(
        stderr.starts_with("--scenario = \"relay\" is not a scenario"),
        "{stderr}"
    );
    assert!(stderr.contains("callback, event-relay"), "{stderr}");
}

#[test]
fn every_documented_scenario_is_accepted() {
    for s in ALL {
        assert_eq!(sfvapi_local::check_scenario("SCENARIO", s), Ok(()), "{s}");
    }
    assert!(sfvapi_local::check_scenario("SCENARIO", "noanswer").is_err());
}
