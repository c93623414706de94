//! A call's recording kept in the stack's own bucket (`RECORDINGS_BUCKET`), so the Task's link
//! outlives Vapi's retention of it.
//!
//! The report job hands this module the `recordingUrl` of Vapi's end-of-call report
//! (`Artifact.recordingUrl`, Vapi OpenAPI `Artifact`); the body is streamed from Vapi into S3 in
//! parts of [`PART_BYTES`], never held whole: a body that ends inside the first part is one
//! `PutObject`, a longer one (or one of unknown length) a multipart upload. Every object is
//! written with SSE-S3 (`x-amz-server-side-encryption: AES256`) under
//! `recordings/<yyyy>/<mm>/<call id>.<ext>`.
//!
//! Why a copy rather than Vapi's own upload (`artifactPlan.recordingUseCustomStorageEnabled` with
//! a `CreateS3CredentialDTO`): that needs an IAM user's long-lived access keys stored at Vapi,
//! able to write the bucket from anywhere until someone rotates them; the copy runs under the
//! worker's role, whose credentials live minutes, and can write only `recordings/*`.
//!
//! The recording URL comes from a signed webhook, yet it is still a URL someone else chose: it
//! must be `https` on a DNS name (not an IP address, not `localhost`), and so must every
//! redirect; `RECORDING_SOURCE_HOSTS` narrows it to named hosts (a loopback host named there may
//! be plain `http`: the local stack's sandbox).

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::ids::VapiCallId;

/// The part size of the copy, and so the most of a recording held in memory at once. S3's
/// multipart minimum is 5 MiB for every part but the last (Amazon S3 User Guide, "Amazon S3
/// multipart upload limits").
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// A recording larger than this is not copied (a 12-hour stereo WAV at 16 kHz is about 2.8 GB;
/// anything beyond is not a call recording).
pub const MAX_RECORDING_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Prefix of every object (the worker's role may write only under it).
pub const KEY_PREFIX: &str = "recordings/";

/// Where recordings are kept and where they may come from (`RECORDINGS_BUCKET`,
/// `RECORDING_SOURCE_HOSTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSettings {
    pub bucket: String,
    pub sources: Sources,
}

/// Which recording URLs may be fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Empty: any `https` DNS name. Otherwise only these hosts (lower case).
    hosts: Vec<String>,
}

impl Sources {
    pub fn new(hosts: Vec<String>) -> Self {
        Self {
            hosts: hosts
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// `Ok` when `url` may be fetched; else why not.
    pub fn check(&self, url: &url::Url) -> Result<(), String> {
        let host = match url.host() {
            Some(h) => h,
            None => return Err("the URL has no host".into()),
        };
        let loopback = match &host {
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        };
        let name = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.hosts.is_empty() {
            if !self.hosts.contains(&name) {
                return Err(format!(
                    "host {name} is not one of RECORDING_SOURCE_HOSTS ({})",
                    self.hosts.join(", ")
                ));
            }
            return match url.scheme() {
                "https" => Ok(()),
                "http" if loopback => Ok(()),
                other => Err(format!("scheme {other} (https only)")),
            };
        }
        if url.scheme() != "https" {
            return Err(format!("scheme {} (https only)", url.scheme()));
        }
        match host {
            url::Host::Domain(d) if !loopback && !d.to_ascii_lowercase().ends_with(".localhost") => {
                Ok(())
            }
            _ => Err(format!(
                "host {name} is an IP address or localhost (a DNS name only, unless listed in RECORDING_SOURCE_HOSTS)"
            )),
        }
    }
}

/// Where a recording was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
}

impl Stored {
    /// The object's S3 URI, as the S3 console shows it (`s3://<bucket>/<key>`).
    pub fn s3_uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// The object's page in the S3 console, for someone signed in to the account (no access of
    /// its own: the console asks who is opening it).
    pub fn console_url(&self, region: &str) -> String {
        format!(
            "https://console.aws.amazon.com/s3/object/{}?region={}&prefix={}",
            self.bucket,
            url::form_urlencoded::byte_serialize(region.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(self.key.as_bytes()).collect::<String>()
        )
    }
}

/// Why a recording was not copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Vapi answered that it does not have it (404), no longer (410) or not for us (403): the
    /// recording is gone (Vapi's retention, or recording off); nothing to retry.
    #[error("the recording is gone at its source (HTTP {status}); nothing was stored")]
    Gone { status: u16 },
    /// Another answer that retrying will not change.
    #[error("the recording's source answered HTTP {status}; nothing was stored")]
    Refused { status: u16 },
    /// The URL is not one this deployment fetches (see [`Sources`]).
    #[error("recording URL not fetched: {0}")]
    NotAllowed(String),
    #[error("the recording is larger than {MAX_RECORDING_BYTES} bytes; not copied")]
    TooLarge,
    /// A 5xx, 429 or a network failure while reading it: the job retries.
    #[error("fetching the recording failed: {0} (retried with the job)")]
    Fetch(String),
    /// S3 refused or did not answer: the job retries (an AccessDenied here means the worker's
    /// role lacks s3:PutObject on the bucket's recordings/ prefix).
    #[error("storing the recording in S3 failed: {0} (retried with the job)")]
    Store(String),
}

impl CopyError {
    /// Retrying cannot help: the job records why and is done.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Gone { .. } | Self::Refused { .. } | Self::NotAllowed(_) | Self::TooLarge
        )
    }
}

/// The copier: one download client and one S3 client per cold start (the S3 client is built
/// at the first copy, from the same SDK configuration as DynamoDB's).
pub struct Recordings {
    settings: RecordingSettings,
    http: reqwest::Client,
    s3: OnceCell<(aws_sdk_s3::Client, String)>,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// S3 timeouts: a part of [`PART_BYTES`] gets half a minute.
fn s3_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(45))
        .build()
}

impl Recordings {
    pub fn new(settings: RecordingSettings) -> Result<Self, String> {
        let sources = settings.sources.clone();
        // Every redirect is checked like the URL itself (at most 5).
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("more than 5 redirects");
            }
            match sources.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(format!("redirect refused: {why}")),
            }
        });
        let http = crate::tls::reqwest_builder()
            .connect_timeout(Duration::from_secs(5))
            // Between two reads of the body, not for the whole copy.
            .read_timeout(Duration::from_secs(30))
            .redirect(redirects)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            settings,
            http,
            s3: OnceCell::new(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// The S3 client and the region, built once.
    async fn s3(&self) -> &(aws_sdk_s3::Client, String) {
        self.s3
            .get_or_init(|| async {
                let sdk = crate::config::aws_sdk_config().await;
                let region = sdk
                    .region()
                    .map(|r| r.as_ref().to_owned())
                    .unwrap_or_else(|| "us-east-1".into());
                let conf = aws_sdk_s3::config::Builder::from(&sdk)
                    .timeout_config(s3_timeouts())
                    .build();
                (aws_sdk_s3::Client::from_conf(conf), region)
            })
            .await
    }

    /// The region of the bucket (for the console link).
    pub async fn region(&self) -> String {
        self.s3().await.1.clone()
    }

    /// Stream the recording at `url` into `recordings/<yyyy>/<mm>/<call>.<ext>`, the month
    /// being `at_ms`'s (UTC).
    pub async fn copy(
        &self,
        call: &VapiCallId,
        at_ms: i64,
        url: &str,
    ) -> Result<Stored, CopyError> {
        let parsed = url::Url::parse(url).map_err(|e| CopyError::NotAllowed(e.to_string()))?;
        self.settings
            .sources
            .check(&parsed)
            .map_err(CopyError::NotAllowed)?;
        let mut resp = self.http.get(parsed.clone()).send().await.map_err(|e| {
            if e.is_redirect() {
                CopyError::NotAllowed(e.to_string())
            } else {
                CopyError::Fetch(e.without_url().to_string())
            }
        })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            403 | 404 | 410 => return Err(CopyError::Gone { status }),
            408 | 429 | 500..=599 => {
                return Err(CopyError::Fetch(format!(
                    "the source answered HTTP {status}"
                )))
            }
            _ => return Err(CopyError::Refused { status }),
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RECORDING_BYTES)
        {
            return Err(CopyError::TooLarge);
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|v| (v.starts_with("audio/") || v.starts_with("video/")) && v.len() <= 64);
        let ext = extension(&parsed, content_type.as_deref());
        let key = object_key(call, at_ms, ext);
        let content_type = content_type.unwrap_or_else(|| content_type_of(ext).to_owned());
        let (s3, _) = self.s3().await;
        let bucket = self.settings.bucket.as_str();

        // The first part decides: a body that ends inside it is one PutObject.
        let mut part = Vec::with_capacity(64 * 1024);
        let mut total: u64 = 0;
        let mut ended = fill(&mut resp, &mut part, &mut total).await?;
        if ended {
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .content_type(&content_type)
                .server_side_encryption(ServerSideEncryption::Aes256)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| CopyError::Store(describe(&e)))?;
            info!(key, bytes = total, "recording stored");
            return Ok(Stored {
                bucket: bucket.to_owned(),
                key,
                bytes: total,
            });
        }
        let upload = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .content_type(&content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| CopyError::Store(describe(&e)))?;
        let Some(upload_id) = upload.upload_id().map(str::to_owned) else {
            return Err(CopyError::Store(
                "CreateMultipartUpload answered no UploadId".into(),
            ));
        };
        let result: Result<Vec<CompletedPart>, CopyError> = async {
            let mut parts = Vec::new();
            let mut number: i32 = 1;
            loop {
                let body = std::mem::take(&mut part);
                let done = s3
                    .upload_part()
                    .bucket(bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(|e| CopyError::Store(describe(&e)))?;
                parts.push(
                    CompletedPart::builder()
                        .set_e_tag(done.e_tag().map(str::to_owned))
                        .part_number(number)
                        .build(),
                );
                if ended {
                    return Ok(parts);
                }
                number += 1;
                ended = fill(&mut resp, &mut part, &mut total).await?;
                if part.is_empty() {
                    return Ok(parts);
                }
            }
        }
        .await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                // Best effort: the bucket's lifecycle rule removes what an abort leaves behind.
                if let Err(abort) = s3
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    warn!(error = %describe(&abort), "multipart upload not aborted; the lifecycle rule removes its parts");
                }
                return Err(e);
            }
        };
        s3.complete_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| CopyError::Store(describe(&e)))?;
        info!(key, bytes = total, "recording stored (multipart)");
        Ok(Stored {
            bucket: bucket.to_owned(),
            key,
            bytes: total,
        })
    }
}

/// Read the body into `part` until it holds [`PART_BYTES`] or the body ends (`Ok(true)`).
async fn fill(
    resp: &mut reqwest::Response,
    part: &mut Vec<u8>,
    total: &mut u64,
) -> Result<bool, CopyError> {
    while part.len() < PART_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                *total += chunk.len() as u64;
                if *total > MAX_RECORDING_BYTES {
                    return Err(CopyError::TooLarge);
                }
                part.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(true),
            Err(e) => return Err(CopyError::Fetch(e.without_url().to_string())),
        }
    }
    Ok(false)
}

/// An SDK error in one line: the service's code and message when it answered.
fn describe<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("no message")
        ),
        other => aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
    }
}

/// `recordings/<yyyy>/<mm>/<call id>.<ext>`, the month of `at_ms` in UTC.
pub fn object_key(call: &VapiCallId, at_ms: i64, ext: &str) -> String {
    let month = chrono::DateTime::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .format("%Y/%m");
    format!("{KEY_PREFIX}{month}/{}.{ext}", call.as_str())
}

/// Audio formats Vapi records (`ArtifactPlan.recordingFormat`: `wav;l16`, `mp3`) and a few more.
const EXTENSIONS: [(&str, &str); 7] = [
    ("wav", "audio/wav"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("flac", "audio/flac"),
    ("m4a", "audio/mp4"),
    ("webm", "audio/webm"),
    ("mp4", "video/mp4"),
];

/// The object's extension: the URL's when it is a known audio one, else the content type's,
/// else `audio`.
fn extension(url: &url::Url, content_type: Option<&str>) -> &'static str {
    let from_url = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    if let Some((ext, _)) = from_url
        .as_deref()
        .and_then(|e| EXTENSIONS.iter().find(|(x, _)| *x == e))
    {
        return ext;
    }
    let from_type = content_type.and_then(|ct| match ct {
        "audio/wav" | "audio/x-wav" | "audio/wave" => Some("wav"),
        "audio/mpeg" | "audio/mp3" => Some("mp3"),
        other => EXTENSIONS
            .iter()
            .find(|(_, t)| *t == other)
            .map(|(e, _)| *e),
    });
    from_type.unwrap_or("audio")
}

fn content_type_of(ext: &str) -> &'static str {
    EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, t)| *t)
        .unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn only_https_dns_names_unless_hosts_are_listed() {
        let any = Sources::default();
        assert!(any
            .check(&url("https://storage.vapi.ai/a-mono.wav"))
            .is_ok());
        for bad in [
            "http://storage.vapi.ai/a.wav",
            "https://127.0.0.1/a.wav",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/a.wav",
            "https://localhost:9001/2018-06-01/runtime/invocation/next",
            "https://x.localhost/a.wav",
            "file:///etc/passwd",
        ] {
            assert!(any.check(&url(bad)).is_err(), "{bad}");
        }
        let listed = Sources::new(vec!["127.0.0.1".into(), "Storage.Vapi.ai".into()]);
        assert!(listed.check(&url("http://127.0.0.1:4010/r/a.wav")).is_ok());
        assert!(listed.check(&url("https://storage.vapi.ai/a.wav")).is_ok());
        assert!(listed.check(&url("http://storage.vapi.ai/a.wav")).is_err());
        assert!(listed.check(&url("https://other.example/a.wav")).is_err());
    }

    #[test]
    fn the_key_is_the_calls_month_and_id_with_the_recordings_extension() {
        let call = VapiCallId::parse("callId", "c0ffee00-1111").unwrap();
        // 2026-11-26T10:00:05Z
        assert_eq!(
            object_key(&call, 1_795_687_205_000, "wav"),
            "recordings/2026/11/c0ffee00-1111.wav"
        );
        assert_eq!(
            extension(&url("https://s.example/x/abc-mono.MP3?sig=1"), None),
            "mp3"
        );
        assert_eq!(
            extension(&url("https://s.example/x/abc"), Some("audio/x-wav")),
            "wav"
        );
        assert_eq!(extension(&url("https://s.example/x/a.exe"), None), "audio");
    }

    #[test]
    fn the_console_link_names_bucket_region_and_key() {
        let s = Stored {
            bucket: "stack-recordingsbucket-1".into(),
            key: "recordings/2026/11/c.wav".into(),
            bytes: 1,
        };
        assert_eq!(
            s.s3_uri(),
            "s3://stack-recordingsbucket-1/recordings/2026/11/c.wav"
        );
        assert_eq!(
            s.console_url("eu-west-1"),
            "https://console.aws.amazon.com/s3/object/stack-recordingsbucket-1?region=eu-west-1&prefix=recordings%2F2026%2F11%2Fc.wav"
        );
    }
}
