//! The `cmdb` binary: reads the command line (and `--config` file) and hands over to
//! [`cmdb::cli::run`].

// glibc's allocator spends a large share of a busy server's time in malloc and free;
// mimalloc keeps that small.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cmdb::cli::run(cmdb::cli::Cli::from_env_and_config()).await
}
