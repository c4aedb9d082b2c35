//! Watches, lists with paging, and their resourceVersion semantics.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::harness::{Cluster, KUBECTL, json};

#[test]
fn kubectl_get_watch_prints_rows_as_objects_change() {
    let c = Cluster::start();
    let mut child = Command::new(KUBECTL)
        .args(["--kubeconfig", c.kubeconfig().to_str().expect("path"), "get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    c.ok(&["create", "configmap", "watched", "--from-literal=a=b"]);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push(line);
            if seen.iter().any(|l| l.starts_with("watched")) {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.iter().any(|l| l.starts_with("watched ")), "{seen:?}");
    assert_eq!(seen.iter().filter(|l| l.starts_with("NAME")).count(), 1, "{seen:?}");
}

#[test]
fn watch_from_a_resource_version_replays_later_events_and_too_old_is_gone() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "a", "--from-literal=x=1"]);
    let list = json(&c.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]));
    let rv = list["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    c.ok(&["create", "configmap", "b", "--from-literal=x=1"]);
    c.ok(&["delete", "configmap", "a"]);
    let (code, body) = c.curl(
        true,
        &[&c.url(&format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1"))],
    );
    assert_eq!(code, 200);
    let events: Vec<serde_json::Value> = body.lines().map(json).collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (e["type"].as_str().unwrap_or("").into(), e["object"]["metadata"]["name"].as_str().unwrap_or("").into())
        })
        .collect();
    assert_eq!(summary, [("ADDED".into(), "b".into()), ("DELETED".into(), "a".into())], "{body}");

    // After a restart the history starts afresh: a resourceVersion from
    // before it is gone, reported as 410 in an ERROR event.
    let c = Cluster::start_in(c.kill9());
    let (code, body) = c.curl(
        true,
        &[&c.url(&format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1"))],
    );
    assert_eq!(code, 200);
    let first = json(body.lines().next().expect("an event"));
    assert_eq!(first["type"], "ERROR", "{body}");
    assert_eq!(first["object"]["code"], 410);
    assert_eq!(first["object"]["reason"], "Expired");
}

#[test]
fn lists_page_with_limit_and_continue() {
    let c = Cluster::start();
    for i in 0..7 {
        c.ok(&["create", "configmap", &format!("cm-{i}"), "--from-literal=a=b"]);
    }
    let mut names = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let path = if token.is_empty() {
            "/api/v1/namespaces/default/configmaps?limit=3".to_string()
        } else {
            format!("/api/v1/namespaces/default/configmaps?limit=3&continue={token}")
        };
        let page = json(&c.ok(&["get", "--raw", &path]));
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        names.extend(items.iter().filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string)));
        match page["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    // kube-root-ca.crt style extras are not created by svcnet, so exactly ours.
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    // kubectl pages transparently with --chunk-size.
    let out = c.ok(&["get", "configmaps", "--chunk-size=2", "-o", "name"]);
    assert_eq!(out.lines().count(), 7, "{out}");
}

#[test]
fn field_selectors_filter_lists_and_watches() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "one", "--from-literal=a=b"]);
    c.ok(&["create", "configmap", "two", "--from-literal=a=b"]);
    let out = c.ok(&["get", "configmaps", "--field-selector", "metadata.name=two", "-o", "name"]);
    assert_eq!(out.trim(), "configmap/two");
}

#[test]
fn watch_lists_send_initial_events_then_a_bookmark() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "first", "--from-literal=a=b"]);
    let (code, body) = c.curl(
        true,
        &[&c.url("/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")],
    );
    assert_eq!(code, 200);
    let events: Vec<serde_json::Value> = body.lines().map(json).collect();
    assert_eq!(events[0]["type"], "ADDED", "{body}");
    assert_eq!(events[0]["object"]["metadata"]["name"], "first");
    let bookmark = events.iter().find(|e| e["type"] == "BOOKMARK").expect("a bookmark");
    assert_eq!(bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true", "{body}");
}
