//! The `cmdb` binary: parses the command line and hands over to [`cmdb::cli::run`].

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cmdb::cli::run(cmdb::cli::Cli::parse()).await
}
