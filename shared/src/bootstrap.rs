//! What every function's `main` does before the runtime loop: build the app once, and when that
//! fails (a missing or invalid variable, a broken routing document), tell the Lambda Runtime API
//! through `POST /runtime/init/error` before exiting.
//!
//! `lambda_runtime` reports init errors only for SnapStart hooks; an error returned from `main`
//! before `run` just ends the process. Lambda then answers the waiting invocation with a bare
//! `Runtime.ExitError`, and `cargo lambda watch` answers nothing at all: `cargo lambda invoke`
//! waited minutes while the message sat in the watch terminal. Reported here, the invocation
//! fails at once with the message (every problem of the configuration, see
//! [`crate::config::ConfigError::Several`]) as its `errorMessage`.

use std::time::Duration;

/// The error type Lambda shows for a failed init (`errorType`).
pub const INIT_ERROR_TYPE: &str = "Runtime.InitError";

/// `app` (the function's `from_env()`), or — once the error is logged and reported to the
/// runtime API named by `AWS_LAMBDA_RUNTIME_API` — the error, for `main` to return.
pub async fn init<T, E>(
    app: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, lambda_runtime::Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match app.await {
        Ok(app) => Ok(app),
        Err(e) => {
            let message = e.to_string();
            tracing::error!(error = %message, "init failed: the function cannot start");
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                if let Err(why) = report_init_error(&api, &message).await {
                    tracing::error!(error = %why, "the init error could not be reported to the runtime API");
                }
            }
            Err(Box::new(e))
        }
    }
}

/// Why the runtime API did not take the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("POST {url}: {source}")]
    Send {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("POST {url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
}

/// Where the init error goes. Lambda sets `AWS_LAMBDA_RUNTIME_API` to `host:port`;
/// `cargo lambda watch` to a URL with a path of its own (`http://[::]:9000/.rt/<function>`).
pub fn init_error_url(runtime_api: &str) -> String {
    let base = runtime_api.trim().trim_end_matches('/');
    let scheme = if base.starts_with("http://") || base.starts_with("https://") {
        ""
    } else {
        "http://"
    };
    format!("{scheme}{base}/2018-06-01/runtime/init/error")
}

/// `POST {runtime_api}/2018-06-01/runtime/init/error` with Lambda's error document
/// (`{"errorType","errorMessage"}`) and the `Lambda-Runtime-Function-Error-Type` header, as
/// `lambda_runtime` does for its own init errors. `runtime_api` may carry a path (as
/// `cargo lambda watch` gives each function its own: `127.0.0.1:9000/.rt/<function>`).
pub async fn report_init_error(runtime_api: &str, message: &str) -> Result<(), ReportError> {
    let url = init_error_url(runtime_api);
    let body = serde_json::json!({"errorType": INIT_ERROR_TYPE, "errorMessage": message});
    let send = |source| ReportError::Send {
        url: url.clone(),
        source,
    };
    let client = crate::tls::reqwest_builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(send)?;
    let answer = client
        .post(&url)
        .header("lambda-runtime-function-error-type", INIT_ERROR_TYPE)
        .json(&body)
        .send()
        .await
        .map_err(send)?;
    if !answer.status().is_success() {
        return Err(ReportError::Status {
            url,
            status: answer.status(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::init_error_url;

    #[test]
    fn the_runtime_api_is_found_as_lambda_and_cargo_lambda_give_it() {
        assert_eq!(
            init_error_url("127.0.0.1:9001"),
            "http://127.0.0.1:9001/2018-06-01/runtime/init/error"
        );
        // cargo lambda watch: a URL with the function's own path.
        assert_eq!(
            init_error_url("http://[::]:9000/.rt/salesforce-relay"),
            "http://[::]:9000/.rt/salesforce-relay/2018-06-01/runtime/init/error"
        );
        assert_eq!(
            init_error_url("127.0.0.1:9000/.rt/job-worker/"),
            "http://127.0.0.1:9000/.rt/job-worker/2018-06-01/runtime/init/error"
        );
    }
}
