//! One JSON schema for every backend: `show --json` of a held lock on lock
//! files, ZooKeeper and PostgreSQL has the same keys, at the top and in each
//! contender (what a backend cannot tell is `null`).

use std::collections::BTreeSet;

use lockutils_core::LockOptions;
use serde_json::Value;

mod common;
use common::*;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `show --json NAME` on `backend` while this process holds the lock.
fn shown_held(backend: &str, lock_path: Option<&std::path::Path>, name: &str) -> Value {
    let mut opts = LockOptions::new(name);
    opts = match lock_path {
        Some(dir) => opts.external(true).lock_path(dir),
        None => opts.backend_url(backend),
    };
    let guard = opts.lock().unwrap();
    let mut args = vec!["show", "--json", "--backend", backend, name];
    let dir;
    if let Some(p) = lock_path {
        dir = p.to_str().unwrap().to_owned();
        args.extend(["--lock-path", dir.as_str()]);
    }
    let out = lockutils(&args);
    assert_eq!(code(&out), 0, "{backend}: {}", stderr(&out));
    drop(guard);
    json(&out)
}

#[test]
#[ignore = "needs ZooKeeper (LOCKUTILS_TEST_ZK, scripts/zookeeper.sh start) and PostgreSQL \
            (LOCKUTILS_TEST_POSTGRES_URL, scripts/postgres.sh start); bash .ci/run runs it"]
fn show_json_has_one_schema_for_file_zookeeper_and_postgresql() {
    lockutils_zookeeper::register();
    lockutils_postgres::register();
    let name = format!("schema-{}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let file = shown_held("file", Some(tmp.path()), &name);
    let zk_server = std::env::var("LOCKUTILS_TEST_ZK").unwrap_or("127.0.0.1:2181".into());
    let zk = shown_held(
        &format!("zookeeper://{zk_server}/lockutils-cli-schema"),
        None,
        &name,
    );
    let pg_url = std::env::var("LOCKUTILS_TEST_POSTGRES_URL")
        .expect("LOCKUTILS_TEST_POSTGRES_URL is not set: run scripts/postgres.sh start");
    let pg = shown_held(&pg_url, None, &name);

    for (backend, v) in [("file", &file), ("zookeeper", &zk), ("postgresql", &pg)] {
        assert_eq!(v["backend"], backend, "{v}");
        assert_eq!(v["state"], "held_exclusive", "{v}");
        assert_eq!(v["name"], name.as_str(), "{v}");
        assert_eq!(keys(v), keys(&file), "{backend} top-level keys differ");
        assert_eq!(
            keys(&v["holders"][0]),
            keys(&file["holders"][0]),
            "{backend} contender keys differ"
        );
    }
    // What each backend knows, in the one shape.
    assert_eq!(file["holders"][0]["kind"], "ofd");
    assert_eq!(zk["holders"][0]["kind"], "native");
    assert_eq!(pg["holders"][0]["kind"], "advisory");
    assert!(file["file"].is_object() && zk["file"].is_null() && pg["file"].is_null());
    assert!(zk["holders"][0]["fencing_token"].is_u64());
    assert!(pg["key"].is_string() && file["key"].is_null());
}
