//! `sfvapi-sandbox`: parse flags, start the three fakes, print their URLs as one JSON line on
//! stdout, serve until Ctrl-C or SIGTERM. Everything else is in the library (`sandbox`).

use std::io::Write as _;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config =
        match sandbox::Config::from_args(std::env::args().skip(1), |k| std::env::var(k).ok()) {
            Ok(c) => c,
            Err(sandbox::ConfigError::Help) => {
                print!("{}", sandbox::config::usage());
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("sfvapi-sandbox: {e}");
                return ExitCode::from(2);
            }
        };
    // Logs go to stderr so stdout carries only the URL line a script reads.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let handles = match sandbox::serve(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("sfvapi-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", handles.urls_json())
        .and_then(|_| out.flush())
        .is_err()
    {
        eprintln!("sfvapi-sandbox: cannot write the URL line to stdout");
        return ExitCode::FAILURE;
    }
    drop(out);
    wait_for_stop().await;
    handles.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
