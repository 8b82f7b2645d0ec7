//! The test harness itself: a throw-away PostgreSQL starts, answers queries and is removed.

mod support;

use support::EmbeddedPostgres;

#[tokio::test]
async fn throwaway_postgres_starts_answers_and_is_removed() {
    let mut pg = EmbeddedPostgres::start().expect("start postgres");
    pg.create_database("harness_db").unwrap();
    let (client, conn) =
        tokio_postgres::connect(&pg.connection_string("harness_db"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT 1 + $1::int", &[&41i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(client);
    // survives a restart on the same port (outage tests rely on it)
    pg.restart().unwrap();
    let (client, conn) =
        tokio_postgres::connect(&pg.connection_string("harness_db"), tokio_postgres::NoTls)
            .await
            .expect("reconnect");
    tokio::spawn(conn);
    client.query_one("SELECT 1", &[]).await.unwrap();
    let port = pg.port();
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server still up after drop"
    );
}
