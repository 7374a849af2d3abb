//! The `cmdb` binary: parses the command line and hands over to [`cmdb::cli::run`].

use clap::Parser;

// glibc's allocator spends a large share of a busy server's time in malloc and free;
// mimalloc keeps that small.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cmdb::cli::run(cmdb::cli::Cli::parse()).await
}
