//! The `cmdb` binary as a benchmark's server: its own process (so its memory and CPU are
//! its own), on a free port, with a token made by `cmdb token create`.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server, stopped when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/<pid>/status` in kB (`VmRSS:`, `VmHWM:`).
pub fn vm_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Creates a token of `role` with the `cmdb token` command (which also applies the
/// migrations); returns it.
pub fn token(database_url: &str, role: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_cmdb"))
        .args([
            "token",
            "create",
            "--name",
            &format!("bench-{role}"),
            "--role",
            role,
            "--database-url",
            database_url,
        ])
        .output()
        .expect("the token command runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Starts `cmdb serve` on `database_url` with a token of `role`, and waits until it is
/// healthy. `CMDB_BENCH_SERVER_LOG` sets the server's log filter and shows its log;
/// `CMDB_BENCH_SERVER_WRAPPER` runs it under a profiler (e.g. `valgrind --tool=callgrind`).
pub async fn start(database_url: &str, role: &str) -> Server {
    let token = token(database_url, role);
    serve(database_url, token, &[]).await
}

/// Starts `cmdb serve` on `database_url` with extra options, for a caller that already has
/// `token` (a second instance on the same database), and waits until it is healthy.
pub async fn serve(database_url: &str, token: String, options: &[&str]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let binary = env!("CARGO_BIN_EXE_cmdb");
    let wrapper = std::env::var("CMDB_BENCH_SERVER_WRAPPER").unwrap_or_default();
    let mut words: Vec<String> = wrapper.split_whitespace().map(str::to_owned).collect();
    words.push(binary.to_owned());
    let mut command = Command::new(&words[0]);
    command
        .args(&words[1..])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(options)
        .env("CMDB_DATABASE_URL", database_url)
        .env(
            "RUST_LOG",
            std::env::var("CMDB_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(if std::env::var_os("CMDB_BENCH_SERVER_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit());
    let server = Server {
        child: command.spawn().expect("the server starts"),
        url: format!("http://127.0.0.1:{port}"),
        token,
    };
    let client = cmdb::http_client();
    for _ in 0..1200 {
        if let Ok(response) = client.get(format!("{}/healthz", server.url)).send().await
            && response.status().is_success()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become healthy");
}
