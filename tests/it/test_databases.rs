//! The tests' own housekeeping: a PostgreSQL test database is dropped when
//! its test ends, passed or failed.

use crate::common::*;

async fn exists(name: &str) -> bool {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_database_is_dropped_when_its_test_fails() {
    if !postgres_available().await {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // A test that creates its database, then fails.
    let failed = tokio::spawn(async move {
        let db = TestDb::new(Backend::Postgres).await;
        tx.send(db.url.rsplit('/').next().unwrap().to_string()).unwrap();
        panic!("the test fails");
    })
    .await;
    assert!(failed.is_err());
    let name = rx.recv().unwrap();
    assert!(name.starts_with(&std::env::var("TEST_DB_PREFIX").unwrap_or_else(|_| "t_".into())));
    assert!(!exists(&name).await, "{name} outlived its failed test");
}
