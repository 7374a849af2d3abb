//! `cmdb backup` while the server writes, and `cmdb restore` of that backup (SQLite).

use std::process::Command;

use serde_json::json;

use crate::helpers::TestApp;

fn cmdb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cmdb"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_to_the_same_estate() {
    let app = TestApp::spawn().await;
    let url = app.database_url();
    if !url.starts_with("sqlite:") {
        // PostgreSQL: the commands name pg_dump and pg_restore instead.
        let output = cmdb(&["backup", "--database-url", &url, "--to", "/tmp/never"]);
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
        return;
    }
    for name in ["bk-01", "bk-02", "bk-03"] {
        app.create_ci("server", name, json!({})).await;
    }
    let dir = tempfile::tempdir().expect("a directory");
    let backup = dir.path().join("cmdb.backup");
    let backup_path = backup.to_str().expect("UTF-8");

    // Online: the server keeps serving (and writing) during the backup.
    let backing_up = {
        let (url, to) = (url.clone(), backup_path.to_owned());
        tokio::task::spawn_blocking(move || cmdb(&["backup", "--database-url", &url, "--to", &to]))
    };
    for name in ["bk-04", "bk-05"] {
        app.create_ci("server", name, json!({})).await;
    }
    let output = backing_up.await.expect("the backup ran");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("checked"));
    let again = cmdb(&["backup", "--database-url", &url, "--to", backup_path]);
    assert!(!again.status.success(), "a backup never overwrites");

    // Restore into a new place and serve it: the CIs of the backup are there.
    let restored = format!("sqlite://{}/restored.db?mode=rwc", dir.path().display());
    let output = cmdb(&[
        "restore",
        "--database-url",
        &restored,
        "--from",
        backup_path,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let refused = cmdb(&[
        "restore",
        "--database-url",
        &restored,
        "--from",
        backup_path,
    ]);
    assert!(
        !refused.status.success(),
        "an existing database needs --force"
    );
    let forced = cmdb(&[
        "restore",
        "--database-url",
        &restored,
        "--from",
        backup_path,
        "--force",
    ]);
    assert!(forced.status.success());

    let db = sea_orm::Database::connect(restored.as_str())
        .await
        .expect("the restored database opens");
    use sea_orm::{EntityTrait, PaginatorTrait};
    let count = entity::configuration_item::Entity::find()
        .count(&db)
        .await
        .expect("a count");
    assert!(count >= 3, "{count}");

    // A file that is not a cmdb database is refused, and nothing is replaced.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a database").expect("written");
    let junk_restore = cmdb(&[
        "restore",
        "--database-url",
        &restored,
        "--from",
        junk.to_str().expect("UTF-8"),
        "--force",
    ]);
    assert!(!junk_restore.status.success());
    let still = entity::configuration_item::Entity::find()
        .count(&db)
        .await
        .expect("a count");
    assert_eq!(still, count);
}
