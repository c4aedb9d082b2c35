//! The REST verbs on ConfigMaps and Services, including every patch type
//! and the status subresource.

use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use svcnet_client::{Api, DeleteParams, Deleted, Patch, PatchParams, PostParams, Preconditions};

use crate::harness::{Server, config_map, namespace};

fn service(name: &str, port: i32) -> Service {
    Service {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), name.to_string())].into()),
            ports: Some(vec![ServicePort { name: Some("http".into()), port, ..ServicePort::default() }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_maps_can_be_created_read_replaced_patched_and_deleted() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "crud").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);

    let created = api.create(&PostParams::default(), &config_map("settings", &[("a", "1")])).await.expect("create");
    assert_eq!(created.metadata.namespace.as_deref(), Some("crud"));
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());

    let mut fetched = api.get("settings").await.expect("get");
    assert_eq!(fetched.data, created.data);

    fetched.data = Some([("a".to_string(), "2".to_string())].into());
    let replaced = api.replace("settings", &PostParams::default(), &fetched).await.expect("replace");
    assert_ne!(replaced.metadata.resource_version, created.metadata.resource_version);
    assert_eq!(replaced.data.as_ref().and_then(|d| d.get("a")).map(String::as_str), Some("2"));

    let patched = api
        .patch("settings", &PatchParams::default(), &Patch::Merge(json!({"data": {"b": "3"}})))
        .await
        .expect("merge patch");
    assert_eq!(patched.data.as_ref().map(|d| d.len()), Some(2));

    let deleted = api.delete("settings", &DeleteParams::background()).await.expect("delete");
    assert!(
        matches!(deleted, Deleted::Finished(ref cm) if cm.metadata.name.as_deref() == Some("settings")),
        "{deleted:?}"
    );
    assert!(api.get_opt("settings").await.expect("get after delete").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_can_be_patched_with_every_patch_type() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "svc").await;
    let api = Api::<Service>::namespaced(client, &ns);
    api.create(&PostParams::default(), &service("web", 80)).await.expect("create");

    let merged = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})))
        .await
        .expect("merge patch");
    assert_eq!(merged.metadata.labels.as_ref().and_then(|l| l.get("tier")).map(String::as_str), Some("front"));

    // Strategic merge: ports merge by port number instead of replacing the list.
    let strategic = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [{"name": "https", "port": 443}]}})),
        )
        .await
        .expect("strategic merge patch");
    let ports: Vec<i32> =
        strategic.spec.as_ref().and_then(|s| s.ports.as_ref()).into_iter().flatten().map(|p| p.port).collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports.contains(&80) && ports.contains(&443));

    let jsonpatch = api
        .patch::<()>(
            "web",
            &PatchParams::default(),
            &Patch::Json(json!([{"op": "replace", "path": "/metadata/labels/tier", "value": "back"}])),
        )
        .await
        .expect("JSON patch");
    assert_eq!(jsonpatch.metadata.labels.as_ref().and_then(|l| l.get("tier")).map(String::as_str), Some("back"));

    let applied = api
        .patch(
            "web",
            &PatchParams::apply("svcnet-test-applier").force(),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "annotations": {"owner": "applier"}},
            })),
        )
        .await
        .expect("server-side apply");
    assert_eq!(applied.metadata.annotations.as_ref().and_then(|a| a.get("owner")).map(String::as_str), Some("applier"));
    let managers: Vec<_> = applied.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.clone()).collect();
    assert!(managers.contains(&"svcnet-test-applier".to_string()), "{managers:?}");
    assert!(
        managers.contains(&"svcnet-client-tests".to_string()),
        "the client's user agent names its field manager: {managers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_status_can_be_replaced_and_patched() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "status").await;
    let api = Api::<Service>::namespaced(client, &ns);
    let mut svc = api.create(&PostParams::default(), &service("lb", 80)).await.expect("create");

    svc.status =
        Some(serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}})).expect("status"));
    let replaced = api.replace_status("lb", &PostParams::default(), &svc).await.expect("replace status");
    let ip = |s: &Service| {
        s.status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .and_then(|i| i.first())
            .and_then(|i| i.ip.clone())
    };
    assert_eq!(ip(&replaced).as_deref(), Some("192.0.2.1"));

    let patched = api
        .patch_status(
            "lb",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.2"}]}}})),
        )
        .await
        .expect("patch status");
    assert_eq!(ip(&patched).as_deref(), Some("192.0.2.2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_recorded_under_the_user_agent_or_an_explicit_field_manager() {
    let server = Server::start().await;
    let client = server.client().with_user_agent("svcnet-controller-manager/0.1.0").expect("user agent");
    let api = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let manager = |cm: &ConfigMap| {
        cm.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.clone()).collect::<Vec<_>>()
    };

    let cm = api.create(&PostParams::default(), &config_map("by-agent", &[])).await.expect("create");
    assert_eq!(manager(&cm), ["svcnet-controller-manager"]);

    let named = PostParams { field_manager: Some("endpoints-controller".into()), ..PostParams::default() };
    let cm = api.create(&named, &config_map("by-name", &[])).await.expect("create");
    assert_eq!(manager(&cm), ["endpoints-controller"]);

    let cm = Api::<ConfigMap>::namespaced(client.with_field_manager("dns"), "default")
        .create(&PostParams::default(), &config_map("by-client", &[]))
        .await
        .expect("create");
    assert_eq!(manager(&cm), ["dns"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    let dry = PostParams { dry_run: true, ..PostParams::default() };
    let cm = api.create(&dry, &config_map("imaginary", &[("k", "v")])).await.expect("dry-run create");
    assert_eq!(cm.metadata.name.as_deref(), Some("imaginary"));
    assert!(api.get_opt("imaginary").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_whose_uid_precondition_fails_is_a_conflict_and_deletes_nothing() {
    let server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    let cm = api.create(&PostParams::default(), &config_map("guarded", &[])).await.expect("create");

    let stale = Preconditions { uid: Some("00000000-0000-0000-0000-000000000000".into()), resource_version: None };
    let err = api.delete("guarded", &DeleteParams::default().preconditions(stale)).await.expect_err("wrong uid");
    assert!(err.is_conflict(), "{err:?}");
    assert!(api.get_opt("guarded").await.expect("get").is_some());

    let current =
        Preconditions { uid: cm.metadata.uid.clone(), resource_version: cm.metadata.resource_version.clone() };
    api.delete("guarded", &DeleteParams::default().preconditions(current).grace_period(0)).await.expect("delete");
    assert!(api.get_opt("guarded").await.expect("get").is_none());
}
