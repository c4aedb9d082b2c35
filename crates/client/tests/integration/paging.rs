//! Lists: limit and continue, list_all, selectors.

use k8s_openapi::api::core::v1::ConfigMap;
use svcnet_client::{Api, ListParams, PostParams};

use crate::harness::{Server, config_map, labelled, namespace};

fn names(items: &[ConfigMap]) -> Vec<String> {
    items.iter().filter_map(|c| c.metadata.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_limit_and_continue_and_list_all_follows_every_page() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "paging").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    for i in 0..7 {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), &[])).await.expect("create");
    }

    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.expect("page");
        assert!(page.items.len() <= 3);
        assert!(!page.resource_version().is_empty());
        seen.extend(names(&page.items));
        pages += 1;
        match page.continue_token() {
            Some(token) => params = params.continue_token(token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());

    let all = api.list_all(&ListParams::default().limit(2)).await.expect("list_all");
    assert_eq!(names(&all.items), seen);
    assert!(all.continue_token().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors_filter_lists() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "selectors").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    api.create(&PostParams::default(), &labelled(config_map("web", &[]), &[("app", "web"), ("tier", "front")]))
        .await
        .expect("create");
    api.create(&PostParams::default(), &labelled(config_map("db", &[]), &[("app", "db")])).await.expect("create");
    api.create(&PostParams::default(), &config_map("plain", &[])).await.expect("create");

    let web = api.list(&ListParams::default().labels("app=web")).await.expect("label list");
    assert_eq!(names(&web.items), ["web"]);
    let not_web = api.list(&ListParams::default().labels("app,app!=web")).await.expect("label list");
    assert_eq!(names(&not_web.items), ["db"]);
    let set = api.list(&ListParams::default().labels("app in (db, web)")).await.expect("set-based selector");
    assert_eq!(names(&set.items), ["db", "web"]);
    let by_name = api.list(&ListParams::default().fields("metadata.name=plain")).await.expect("field list");
    assert_eq!(names(&by_name.items), ["plain"]);
}
