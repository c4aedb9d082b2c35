//! Deployments driven end to end through a small simulated cluster: the
//! Deployment and ReplicaSet controllers' actions are applied to an
//! in-memory world, a fake kubelet schedules created pods and marks them
//! Ready, and the loop runs until both controllers have nothing left to do.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, ReplicaSetSpec, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use svcnet_controllers::deployment::{
    CHANGE_CAUSE_ANNOTATION, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION, RolloutStatus, pod_template_hash, reconcile_deployment,
    reconcile_replicaset, rollout_complete, rollout_status,
};

mod sim {
    use super::*;

    /// Images whose containers never become ready.
    pub const BROKEN_IMAGE: &str = "broken:latest";

    pub struct World {
        pub now: Timestamp,
        pub deployments: Vec<Deployment>,
        pub rss: Vec<ReplicaSet>,
        pub pods: Vec<Pod>,
        next_id: u64,
    }

    fn bump_generation(meta: &mut ObjectMeta) {
        meta.generation = Some(meta.generation.unwrap_or(0) + 1);
    }

    impl World {
        pub fn new() -> Self {
            Self {
                now: Timestamp::from_second(1_700_000_000).expect("in range"),
                deployments: Vec::new(),
                rss: Vec::new(),
                pods: Vec::new(),
                next_id: 0,
            }
        }

        fn id(&mut self) -> u64 {
            self.next_id += 1;
            self.next_id
        }

        /// What the API server does on create: uid, generation, creation time.
        fn admit(&mut self, meta: &mut ObjectMeta) {
            let id = self.id();
            meta.uid = Some(format!("uid-{id:04}"));
            meta.generation = Some(1);
            meta.creation_timestamp = Some(Time(self.now));
            meta.namespace.get_or_insert_with(|| "default".into());
        }

        pub fn create_deployment(&mut self, mut d: Deployment) {
            self.admit(&mut d.metadata);
            self.deployments.push(d);
        }

        pub fn deployment(&self, name: &str) -> &Deployment {
            self.deployments.iter().find(|d| d.metadata.name.as_deref() == Some(name)).expect("deployment exists")
        }

        /// A spec edit, as `kubectl apply`/`scale`/`set image` makes one.
        pub fn edit_deployment(&mut self, name: &str, edit: impl FnOnce(&mut Deployment)) {
            let d = self.deployments.iter_mut().find(|d| d.metadata.name.as_deref() == Some(name)).expect("exists");
            let before = d.spec.clone();
            edit(d);
            if d.spec != before {
                bump_generation(&mut d.metadata);
            }
        }

        /// ReplicaSets owned by `d`, oldest first.
        pub fn replicasets_of(&self, d: &str) -> Vec<&ReplicaSet> {
            let uid = self.deployment(d).metadata.uid.clone();
            let mut out: Vec<&ReplicaSet> = self
                .rss
                .iter()
                .filter(|rs| rs.metadata.owner_references.iter().flatten().any(|o| Some(&o.uid) == uid.as_ref()))
                .collect();
            out.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
            out
        }

        /// Pods (including terminating ones) of `d`'s ReplicaSets.
        pub fn pods_of(&self, d: &str) -> Vec<&Pod> {
            let rs_uids: Vec<String> = self.replicasets_of(d).iter().filter_map(|rs| rs.metadata.uid.clone()).collect();
            self.pods
                .iter()
                .filter(|p| p.metadata.owner_references.iter().flatten().any(|o| rs_uids.contains(&o.uid)))
                .collect()
        }

        /// The fake kubelet: terminating pods go away, new pods get a node,
        /// start running and become Ready (unless their image is broken).
        fn kubelet(&mut self) -> bool {
            let before = self.pods.len();
            self.pods.retain(|p| p.metadata.deletion_timestamp.is_none());
            let mut changed = self.pods.len() != before;
            let now = self.now;
            for (n, pod) in self.pods.iter_mut().enumerate() {
                let spec = pod.spec.get_or_insert_with(PodSpec::default);
                if spec.node_name.is_some() {
                    continue;
                }
                spec.node_name = Some(format!("node-{}", n % 3));
                let broken = spec.containers.iter().any(|c| c.image.as_deref() == Some(BROKEN_IMAGE));
                pod.status = Some(PodStatus {
                    phase: Some("Running".into()),
                    conditions: Some(vec![PodCondition {
                        type_: "Ready".into(),
                        status: if broken { "False" } else { "True" }.into(),
                        last_transition_time: Some(Time(now)),
                        ..Default::default()
                    }]),
                    ..Default::default()
                });
                changed = true;
            }
            changed
        }

        fn run_replicasets(&mut self, check: &mut dyn FnMut(&World)) -> bool {
            let mut changed = false;
            for i in 0..self.rss.len() {
                let rs = self.rss[i].clone();
                let actions = {
                    let pods: Vec<&Pod> = self.pods.iter().collect();
                    reconcile_replicaset(&rs, &pods, self.now).expect("valid replicaset")
                };
                changed |= !actions.is_empty();
                // A requeue means time alone will change something.
                changed |= actions.requeue_after.is_some();
                for mut pod in actions.create_pods {
                    self.admit(&mut pod.metadata);
                    let suffix = format!("{:05}", self.next_id);
                    let prefix = pod.metadata.generate_name.clone().unwrap_or_default();
                    pod.metadata.name = Some(format!("{prefix}{suffix}"));
                    self.pods.push(pod);
                    check(self);
                }
                for victim in actions.delete_pods {
                    let now = self.now;
                    let p = self.pods.iter_mut().find(|p| p.metadata.name.as_ref() == Some(&victim.name));
                    p.expect("victim exists").metadata.deletion_timestamp = Some(Time(now));
                    check(self);
                }
                for adopted in actions.adopt {
                    let owner = svcnet_controllers::deployment::replicaset_controller_ref(&rs);
                    let p = self.pods.iter_mut().find(|p| p.metadata.name.as_ref() == Some(&adopted.name));
                    p.expect("exists").metadata.owner_references.get_or_insert_with(Vec::new).push(owner);
                }
                for released in actions.release {
                    let p = self.pods.iter_mut().find(|p| p.metadata.name.as_ref() == Some(&released.name));
                    let refs = p.expect("exists").metadata.owner_references.get_or_insert_with(Vec::new);
                    refs.retain(|r| Some(&r.uid) != rs.metadata.uid.as_ref());
                }
                if let Some(status) = actions.status {
                    self.rss[i].status = Some(status);
                    check(self);
                }
            }
            changed
        }

        fn find_rs(&mut self, name: &str) -> &mut ReplicaSet {
            self.rss.iter_mut().find(|rs| rs.metadata.name.as_deref() == Some(name)).expect("replicaset exists")
        }

        fn run_deployments(&mut self, check: &mut dyn FnMut(&World)) -> bool {
            let mut changed = false;
            for i in 0..self.deployments.len() {
                let d = self.deployments[i].clone();
                let actions = {
                    let rss: Vec<&ReplicaSet> = self.rss.iter().collect();
                    let pods: Vec<&Pod> = self.pods.iter().collect();
                    reconcile_deployment(&d, &rss, &pods, self.now).expect("valid deployment")
                };
                changed |= !actions.is_empty();
                for name in &actions.adopt_rs {
                    let owner = svcnet_controllers::deployment::deployment_controller_ref(&d);
                    self.find_rs(name).metadata.owner_references.get_or_insert_with(Vec::new).push(owner);
                }
                for name in &actions.release_rs {
                    let uid = d.metadata.uid.clone();
                    let rs = self.find_rs(name);
                    rs.metadata.owner_references.get_or_insert_with(Vec::new).retain(|r| Some(&r.uid) != uid.as_ref());
                }
                if let Some(mut rs) = actions.create_rs {
                    let name = rs.metadata.name.clone().unwrap_or_default();
                    assert!(
                        !self.rss.iter().any(|r| r.metadata.name.as_ref() == Some(&name)),
                        "create of an existing name {name}"
                    );
                    self.admit(&mut rs.metadata);
                    self.rss.push(rs);
                    check(self);
                }
                for updated in actions.update_rs {
                    let rs = self.find_rs(updated.metadata.name.as_deref().unwrap_or_default());
                    let spec_changed = rs.spec != updated.spec;
                    rs.metadata.annotations = updated.metadata.annotations.clone();
                    rs.spec = updated.spec.clone();
                    if spec_changed {
                        bump_generation(&mut rs.metadata);
                    }
                }
                for (name, replicas) in &actions.scale {
                    let rs = self.find_rs(name);
                    let spec = rs.spec.get_or_insert_with(ReplicaSetSpec::default);
                    if spec.replicas != Some(*replicas) {
                        spec.replicas = Some(*replicas);
                        bump_generation(&mut rs.metadata);
                    }
                    check(self);
                }
                for name in &actions.delete_rs {
                    let uid = self.find_rs(name).metadata.uid.clone();
                    self.rss.retain(|rs| rs.metadata.name.as_ref() != Some(name));
                    // The garbage collector takes the ReplicaSet's pods with it.
                    let now = self.now;
                    for p in self.pods.iter_mut() {
                        if p.metadata.owner_references.iter().flatten().any(|o| Some(&o.uid) == uid.as_ref()) {
                            p.metadata.deletion_timestamp.get_or_insert(Time(now));
                        }
                    }
                }
                let d = &mut self.deployments[i];
                if let Some(revision) = actions.set_revision {
                    d.metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new)
                        .insert(REVISION_ANNOTATION.into(), revision);
                }
                if actions.status_changed {
                    d.status = Some(actions.status);
                }
                check(self);
            }
            changed
        }

        /// One round: kubelet, ReplicaSet controller, Deployment controller,
        /// then a second passes. `check` runs after every write.
        pub fn step(&mut self, check: &mut dyn FnMut(&World)) -> bool {
            let mut changed = self.kubelet();
            check(self);
            changed |= self.run_replicasets(check);
            changed |= self.run_deployments(check);
            self.now = self.now.checked_add(jiff::SignedDuration::from_secs(1)).expect("in range");
            changed
        }

        /// Steps until a round changes nothing; returns the rounds taken.
        pub fn converge_checked(&mut self, check: &mut dyn FnMut(&World)) -> usize {
            for round in 1..=200 {
                if !self.step(check) {
                    return round;
                }
            }
            panic!("no convergence after 200 rounds");
        }

        pub fn converge(&mut self) -> usize {
            self.converge_checked(&mut |_| {})
        }

        /// Runs `rounds` rounds whatever happens (for rollouts that never
        /// finish).
        pub fn run_for(&mut self, rounds: usize) {
            for _ in 0..rounds {
                self.step(&mut |_| {});
            }
        }
    }
}

use sim::{BROKEN_IMAGE, World};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn template(app: &str, image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels(&[("app", app)])), ..Default::default() }),
        spec: Some(PodSpec {
            containers: vec![Container { name: "web".into(), image: Some(image.into()), ..Default::default() }],
            ..Default::default()
        }),
    }
}

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels(&[("app", name)])), match_expressions: None },
            template: template(name, image),
            ..Default::default()
        }),
        status: None,
    }
}

fn rolling(mut d: Deployment, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    d.spec.as_mut().expect("spec").strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment { max_surge: Some(surge), max_unavailable: Some(unavailable) }),
    });
    d
}

fn set_image(w: &mut World, name: &str, image: &str) {
    w.edit_deployment(name, |d| {
        d.spec.as_mut().expect("spec").template.spec.as_mut().expect("pod spec").containers[0].image =
            Some(image.into());
    });
}

fn set_replicas(w: &mut World, name: &str, replicas: i32) {
    w.edit_deployment(name, |d| d.spec.as_mut().expect("spec").replicas = Some(replicas));
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

fn image_of(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.containers[0].image.as_deref()).unwrap_or_default()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "Ready" && c.status == "True")
}

fn condition(d: &Deployment, type_: &str) -> (String, String) {
    let c = d
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone().unwrap_or_default())
}

fn counts(d: &Deployment) -> [i32; 5] {
    let s = d.status.clone().unwrap_or_default();
    [
        s.replicas.unwrap_or(0),
        s.updated_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
        s.unavailable_replicas.unwrap_or(0),
    ]
}

/// Asserts that once `w` has converged, a further pass of every controller
/// wants to write nothing.
fn assert_idempotent(w: &World) {
    let rss: Vec<&ReplicaSet> = w.rss.iter().collect();
    let pods: Vec<&Pod> = w.pods.iter().collect();
    for d in &w.deployments {
        let actions = reconcile_deployment(d, &rss, &pods, w.now).expect("valid");
        assert!(actions.is_empty(), "deployment pass after convergence: {actions:#?}");
    }
    for rs in &w.rss {
        let actions = reconcile_replicaset(rs, &pods, w.now).expect("valid");
        assert!(actions.is_empty(), "replicaset pass after convergence: {actions:#?}");
    }
}

mod creating {
    use super::*;

    #[test]
    fn a_deployment_with_three_replicas_gets_one_replicaset_and_three_ready_pods() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 3, "nginx:1.25"));
        w.converge();

        let d = w.deployment("web");
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 1);
        let rs = rss[0];
        let hash = pod_template_hash(&template("web", "nginx:1.25"), None);
        assert_eq!(rs.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
        assert_eq!(rs.metadata.labels, Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, &hash)])));
        let rs_spec = rs.spec.as_ref().expect("spec");
        assert_eq!(rs_spec.selector.match_labels, Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, &hash)])));
        assert_eq!(replicas(rs), 3);
        assert_eq!(annotation(&rs.metadata, REVISION_ANNOTATION), Some("1"));
        assert_eq!(annotation(&rs.metadata, DESIRED_REPLICAS_ANNOTATION), Some("3"));
        // maxSurge defaults to 25%, which rounds up to one of three.
        assert_eq!(annotation(&rs.metadata, MAX_REPLICAS_ANNOTATION), Some("4"));
        assert_eq!(annotation(&d.metadata, REVISION_ANNOTATION), Some("1"));

        let pods = w.pods_of("web");
        assert_eq!(pods.len(), 3);
        for p in &pods {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            assert!(name.starts_with(&format!("web-{hash}-")), "{name}");
            assert_eq!(p.metadata.labels, Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, &hash)])));
            assert!(is_ready(p));
        }

        assert_eq!(counts(d), [3, 3, 3, 3, 0]);
        assert_eq!(d.status.as_ref().and_then(|s| s.observed_generation), Some(1));
        assert_eq!(condition(d, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
        assert_eq!(condition(d, "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
        assert!(rollout_complete(d));
        assert_idempotent(&w);
    }

    #[test]
    fn status_reports_progress_before_the_pods_are_ready() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 3, "nginx:1.25"));
        // Round 1: the ReplicaSet is created; round 2: its pods.
        w.step(&mut |_| {});
        let d = w.deployment("web");
        assert_eq!(condition(d, "Progressing"), ("True".into(), "NewReplicaSetCreated".into()));
        assert_eq!(condition(d, "Available"), ("False".into(), "MinimumReplicasUnavailable".into()));
        assert_eq!(
            rollout_status(d),
            RolloutStatus::UpdatingReplicas { updated: 0, desired: 3 },
            "kubectl rollout status waits"
        );
        w.converge();
        assert!(rollout_complete(w.deployment("web")));
    }

    #[test]
    fn the_seed_pc_deployment_runs_three_nginx_pods_in_dev() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "pc-deployment", "namespace": "dev"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx-pod"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx-pod"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.17.1", "ports": [{"containerPort": 80}]}]}
                }
            }
        }))
        .expect("valid deployment");
        let hash = pod_template_hash(&d.spec.as_ref().expect("spec").template, None);
        let mut w = World::new();
        w.create_deployment(d);
        w.converge();

        let pods = w.pods_of("pc-deployment");
        assert_eq!(pods.len(), 3);
        for p in pods {
            assert_eq!(p.metadata.namespace.as_deref(), Some("dev"));
            assert!(p.metadata.name.as_deref().unwrap_or_default().starts_with(&format!("pc-deployment-{hash}-")));
            assert_eq!(p.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("nginx-pod"));
            assert_eq!(image_of(p), "nginx:1.17.1");
            assert!(is_ready(p));
        }
        assert_eq!(counts(w.deployment("pc-deployment")), [3, 3, 3, 3, 0]);
        assert_idempotent(&w);
    }

    #[test]
    fn a_deployment_selecting_everything_is_left_alone() {
        let mut d = deployment("web", 3, "nginx");
        d.spec.as_mut().expect("spec").selector = LabelSelector::default();
        let mut w = World::new();
        w.create_deployment(d);
        w.converge();
        assert!(w.rss.is_empty());
        assert_eq!(w.deployment("web").status.as_ref().and_then(|s| s.observed_generation), Some(1));
    }
}

mod hashing {
    use super::*;

    #[test]
    fn the_same_template_always_hashes_the_same() {
        let a = pod_template_hash(&template("web", "nginx:1.25"), None);
        let b = pod_template_hash(&template("web", "nginx:1.25"), None);
        assert_eq!(a, b);
        // serde round trips (and map key order) do not matter.
        let round_tripped: PodTemplateSpec =
            serde_json::from_str(&serde_json::to_string(&template("web", "nginx:1.25")).expect("json")).expect("json");
        assert_eq!(pod_template_hash(&round_tripped, None), a);
    }

    #[test]
    fn different_templates_and_collision_counts_hash_differently() {
        let base = pod_template_hash(&template("web", "nginx:1.25"), None);
        assert_ne!(pod_template_hash(&template("web", "nginx:1.26"), None), base);
        assert_ne!(pod_template_hash(&template("api", "nginx:1.25"), None), base);
        assert_ne!(pod_template_hash(&template("web", "nginx:1.25"), Some(1)), base);
        assert_ne!(
            pod_template_hash(&template("web", "nginx:1.25"), Some(1)),
            pod_template_hash(&template("web", "nginx:1.25"), Some(2))
        );
    }

    #[test]
    fn hashes_use_only_the_safe_alphabet() {
        for i in 0..200 {
            let h = pod_template_hash(&template("web", &format!("nginx:1.{i}")), None);
            assert!((1..=10).contains(&h.len()), "{h}");
            assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)), "{h}");
        }
    }

    #[test]
    fn a_name_taken_by_a_foreign_replicaset_bumps_the_collision_count() {
        let mut w = World::new();
        let hash = pod_template_hash(&template("web", "nginx"), None);
        // Someone else's ReplicaSet already has the name the new one wants.
        w.rss.push(ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("web-{hash}")),
                namespace: Some("default".into()),
                uid: Some("squatter".into()),
                labels: Some(labels(&[("app", "other")])),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                selector: LabelSelector { match_labels: Some(labels(&[("app", "other")])), match_expressions: None },
                template: Some(template("other", "busybox")),
                ..Default::default()
            }),
            status: None,
        });
        w.create_deployment(deployment("web", 2, "nginx"));
        w.converge();
        let d = w.deployment("web");
        assert_eq!(d.status.as_ref().and_then(|s| s.collision_count), Some(1));
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 1);
        let new_hash = pod_template_hash(&template("web", "nginx"), Some(1));
        assert_eq!(rss[0].metadata.name, Some(format!("web-{new_hash}")));
        assert_eq!(counts(d), [2, 2, 2, 2, 0]);
        assert_idempotent(&w);
    }
}

mod scaling {
    use super::*;

    #[test]
    fn scaling_three_to_five_to_two_resizes_the_one_replicaset() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 3, "nginx"));
        w.converge();

        set_replicas(&mut w, "web", 5);
        w.converge();
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 1);
        assert_eq!(replicas(rss[0]), 5);
        assert_eq!(annotation(&rss[0].metadata, DESIRED_REPLICAS_ANNOTATION), Some("5"));
        assert_eq!(annotation(&rss[0].metadata, MAX_REPLICAS_ANNOTATION), Some("7"));
        assert_eq!(w.pods_of("web").len(), 5);
        assert_eq!(counts(w.deployment("web")), [5, 5, 5, 5, 0]);
        assert_idempotent(&w);

        set_replicas(&mut w, "web", 2);
        w.converge();
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 1);
        assert_eq!(replicas(rss[0]), 2);
        assert_eq!(w.pods_of("web").len(), 2);
        assert_eq!(counts(w.deployment("web")), [2, 2, 2, 2, 0]);
        assert!(rollout_complete(w.deployment("web")));
        assert_eq!(annotation(&w.deployment("web").metadata, REVISION_ANNOTATION), Some("1"));
        assert_idempotent(&w);
    }

    #[test]
    fn scaling_to_zero_removes_every_pod_and_back_up_restores_them() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 3, "nginx"));
        w.converge();
        set_replicas(&mut w, "web", 0);
        w.converge();
        assert!(w.pods_of("web").is_empty());
        assert_eq!(counts(w.deployment("web")), [0, 0, 0, 0, 0]);
        assert!(rollout_complete(w.deployment("web")));
        set_replicas(&mut w, "web", 2);
        w.converge();
        assert_eq!(w.pods_of("web").len(), 2);
        assert_idempotent(&w);
    }

    #[test]
    fn scaling_during_a_stuck_rollout_is_proportional() {
        let mut w = World::new();
        w.create_deployment(rolling(deployment("web", 10, "nginx"), IntOrString::Int(3), IntOrString::Int(2)));
        w.converge();
        set_image(&mut w, "web", BROKEN_IMAGE);
        w.run_for(10);
        // The new pods never become ready: old 10 -> 8, new 0 -> 5, stuck.
        let sizes: Vec<i32> = w.replicasets_of("web").iter().map(|rs| replicas(rs)).collect();
        assert_eq!(sizes, [8, 5]);

        set_replicas(&mut w, "web", 20);
        w.run_for(1);
        // 23 allowed (20 + 3 surge) spread over 8:5 of the old 13: 14 and 9.
        let sizes: Vec<i32> = w.replicasets_of("web").iter().map(|rs| replicas(rs)).collect();
        assert_eq!(sizes, [14, 9]);
        for rs in w.replicasets_of("web") {
            assert_eq!(annotation(&rs.metadata, DESIRED_REPLICAS_ANNOTATION), Some("20"));
            assert_eq!(annotation(&rs.metadata, MAX_REPLICAS_ANNOTATION), Some("23"));
        }

        // Scaling back down is proportional too, oldest first on ties.
        set_replicas(&mut w, "web", 10);
        w.run_for(1);
        let sizes: Vec<i32> = w.replicasets_of("web").iter().map(|rs| replicas(rs)).collect();
        assert_eq!(sizes.iter().sum::<i32>(), 13);
        assert_eq!(sizes, [8, 5]);
    }
}

mod rolling_update {
    use super::*;

    #[test]
    fn a_template_change_rolls_out_within_max_surge_one_and_max_unavailable_zero() {
        let mut w = World::new();
        w.create_deployment(rolling(deployment("web", 3, "nginx:1.25"), IntOrString::Int(1), IntOrString::Int(0)));
        w.converge();
        let old_rs = w.replicasets_of("web")[0].metadata.name.clone();

        set_image(&mut w, "web", "nginx:1.26");
        let mut max_pods = 0;
        let mut min_available = usize::MAX;
        w.converge_checked(&mut |w| {
            let pods = w.pods_of("web");
            let active = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
            let available = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p)).count();
            max_pods = max_pods.max(active);
            min_available = min_available.min(available);
            assert!(active <= 4, "{active} pods exceed replicas + maxSurge");
            assert!(available >= 3, "only {available} available with maxUnavailable 0");
        });
        assert_eq!(max_pods, 4, "the surge was used");
        assert_eq!(min_available, 3);

        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 2, "the old ReplicaSet is kept as history");
        assert_eq!(rss[0].metadata.name, old_rs);
        assert_eq!(replicas(rss[0]), 0);
        assert_eq!(replicas(rss[1]), 3);
        assert_eq!(annotation(&rss[0].metadata, REVISION_ANNOTATION), Some("1"));
        assert_eq!(annotation(&rss[1].metadata, REVISION_ANNOTATION), Some("2"));
        let d = w.deployment("web");
        assert_eq!(annotation(&d.metadata, REVISION_ANNOTATION), Some("2"));
        let pods = w.pods_of("web");
        assert_eq!(pods.len(), 3);
        assert!(pods.iter().all(|p| image_of(p) == "nginx:1.26"));
        assert_eq!(counts(d), [3, 3, 3, 3, 0]);
        assert_eq!(d.status.as_ref().and_then(|s| s.observed_generation), Some(2));
        assert_eq!(condition(d, "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
        assert!(rollout_complete(d));
        assert_idempotent(&w);
    }

    #[test]
    fn a_rollout_with_max_unavailable_only_never_exceeds_replicas() {
        let mut w = World::new();
        w.create_deployment(rolling(
            deployment("web", 4, "v1"),
            IntOrString::Int(0),
            IntOrString::String("50%".into()),
        ));
        w.converge();
        set_image(&mut w, "web", "v2");
        w.converge_checked(&mut |w| {
            let pods = w.pods_of("web");
            let active = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
            let available = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p)).count();
            assert!(active <= 4, "{active} pods with maxSurge 0");
            assert!(available >= 2, "{available} available with maxUnavailable 50% of 4");
        });
        assert!(w.pods_of("web").iter().all(|p| image_of(p) == "v2"));
        assert!(rollout_complete(w.deployment("web")));
        assert_idempotent(&w);
    }

    #[test]
    fn rolling_back_reuses_the_old_replicaset_with_a_new_revision() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 2, "v1"));
        w.converge();
        set_image(&mut w, "web", "v2");
        w.converge();
        set_image(&mut w, "web", "v1");
        w.converge();
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 2);
        let v1 = rss[0];
        assert_eq!(replicas(v1), 2);
        assert_eq!(annotation(&v1.metadata, REVISION_ANNOTATION), Some("3"));
        assert_eq!(annotation(&v1.metadata, REVISION_HISTORY_ANNOTATION), Some("1"));
        assert_eq!(annotation(&w.deployment("web").metadata, REVISION_ANNOTATION), Some("3"));
        assert!(w.pods_of("web").iter().all(|p| image_of(p) == "v1"));
        assert_idempotent(&w);
    }

    #[test]
    fn the_change_cause_is_copied_to_the_new_replicaset() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 1, "v1"));
        w.converge();
        w.edit_deployment("web", |d| {
            d.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(CHANGE_CAUSE_ANNOTATION.into(), "set image v2".into());
            d.spec.as_mut().expect("spec").template.spec.as_mut().expect("pod spec").containers[0].image =
                Some("v2".into());
        });
        w.converge();
        let rss = w.replicasets_of("web");
        assert_eq!(annotation(&rss[1].metadata, CHANGE_CAUSE_ANNOTATION), Some("set image v2"));
        assert_idempotent(&w);
    }

    #[test]
    fn revision_history_limit_one_deletes_older_replicasets() {
        let mut d = deployment("web", 2, "v1");
        d.spec.as_mut().expect("spec").revision_history_limit = Some(1);
        let mut w = World::new();
        w.create_deployment(d);
        w.converge();
        for image in ["v2", "v3", "v4"] {
            set_image(&mut w, "web", image);
            w.converge();
        }
        let rss = w.replicasets_of("web");
        let revisions: Vec<Option<&str>> = rss.iter().map(|rs| annotation(&rs.metadata, REVISION_ANNOTATION)).collect();
        assert_eq!(revisions, [Some("3"), Some("4")], "one old ReplicaSet kept besides the new one");
        assert_eq!(replicas(rss[0]), 0);
        assert!(w.pods_of("web").iter().all(|p| image_of(p) == "v4"));
        assert_idempotent(&w);
    }

    #[test]
    fn a_rollout_that_makes_no_progress_exceeds_its_deadline() {
        let mut d = deployment("web", 2, "v1");
        d.spec.as_mut().expect("spec").progress_deadline_seconds = Some(30);
        let mut w = World::new();
        w.create_deployment(d);
        w.converge();
        set_image(&mut w, "web", BROKEN_IMAGE);
        w.run_for(10);
        let d = w.deployment("web");
        assert_eq!(condition(d, "Progressing").0, "True");
        assert!(!rollout_complete(d));
        w.run_for(40);
        let d = w.deployment("web");
        assert_eq!(condition(d, "Progressing"), ("False".into(), "ProgressDeadlineExceeded".into()));
        assert_eq!(rollout_status(d), RolloutStatus::DeadlineExceeded);
        // The old pods keep serving.
        assert_eq!(condition(d, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));

        // Fixing the template recovers.
        set_image(&mut w, "web", "v3");
        w.converge();
        let d = w.deployment("web");
        assert_eq!(condition(d, "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
        assert!(rollout_complete(d));
        assert_idempotent(&w);
    }

    #[test]
    fn a_stuck_rollout_asks_to_be_requeued_for_its_deadline() {
        let mut d = deployment("web", 1, "v1");
        d.spec.as_mut().expect("spec").progress_deadline_seconds = Some(60);
        let mut w = World::new();
        w.create_deployment(d);
        w.converge();
        set_image(&mut w, "web", BROKEN_IMAGE);
        w.run_for(5);
        let rss: Vec<&ReplicaSet> = w.rss.iter().collect();
        let pods: Vec<&Pod> = w.pods.iter().collect();
        let actions = reconcile_deployment(w.deployment("web"), &rss, &pods, w.now).expect("valid");
        let after = actions.requeue_after.expect("requeue for the deadline");
        assert!(after > std::time::Duration::from_secs(50) && after <= std::time::Duration::from_secs(61), "{after:?}");
    }
}

mod recreate {
    use super::*;

    #[test]
    fn recreate_never_runs_old_and_new_pods_at_once() {
        let mut d = deployment("web", 3, "v1");
        d.spec.as_mut().expect("spec").strategy =
            Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None });
        let mut w = World::new();
        w.create_deployment(d);
        w.converge();

        set_image(&mut w, "web", "v2");
        let mut saw_zero_pods = false;
        w.converge_checked(&mut |w| {
            let pods = w.pods_of("web");
            let images: std::collections::BTreeSet<&str> = pods.iter().map(|p| image_of(p)).collect();
            assert!(images.len() <= 1, "old and new pods at once: {images:?}");
            saw_zero_pods |= pods.is_empty();
        });
        assert!(saw_zero_pods, "all old pods were gone before new ones started");
        let rss = w.replicasets_of("web");
        assert_eq!(rss.iter().map(|rs| replicas(rs)).collect::<Vec<_>>(), [0, 3]);
        let pods = w.pods_of("web");
        assert_eq!(pods.len(), 3);
        assert!(pods.iter().all(|p| image_of(p) == "v2"));
        let d = w.deployment("web");
        assert!(rollout_complete(d));
        // With Recreate nothing may be unavailable, so the rollout dipped
        // availability and recovered.
        assert_eq!(condition(d, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
        assert_idempotent(&w);
    }
}

mod pausing {
    use super::*;

    #[test]
    fn a_paused_deployment_scales_but_does_not_roll_out_until_resumed() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 2, "v1"));
        w.converge();
        w.edit_deployment("web", |d| d.spec.as_mut().expect("spec").paused = Some(true));
        set_image(&mut w, "web", "v2");
        set_replicas(&mut w, "web", 4);
        w.converge();
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 1, "no new ReplicaSet while paused");
        assert_eq!(replicas(rss[0]), 4);
        assert!(w.pods_of("web").iter().all(|p| image_of(p) == "v1"));
        let d = w.deployment("web");
        assert_eq!(condition(d, "Progressing"), ("Unknown".into(), "DeploymentPaused".into()));
        assert_eq!(
            rollout_status(d),
            RolloutStatus::UpdatingReplicas { updated: 0, desired: 4 },
            "the paused template is not rolled out"
        );
        assert_idempotent(&w);

        w.edit_deployment("web", |d| d.spec.as_mut().expect("spec").paused = Some(false));
        w.converge();
        let pods = w.pods_of("web");
        assert_eq!(pods.len(), 4);
        assert!(pods.iter().all(|p| image_of(p) == "v2"));
        let d = w.deployment("web");
        assert_eq!(condition(d, "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
        assert!(rollout_complete(d));
        assert_idempotent(&w);
    }
}

mod ownership {
    use super::*;

    #[test]
    fn an_orphan_replicaset_with_the_template_is_adopted_as_the_new_one() {
        let mut w = World::new();
        let hash = "orphanhash";
        let mut t = template("web", "v1");
        t.metadata
            .as_mut()
            .and_then(|m| m.labels.as_mut())
            .expect("labels")
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.into());
        w.rss.push(ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-orphan".into()),
                namespace: Some("default".into()),
                uid: Some("orphan-uid".into()),
                generation: Some(1),
                labels: Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, hash)])),
                creation_timestamp: Some(Time(w.now)),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(2),
                selector: LabelSelector {
                    match_labels: Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, hash)])),
                    match_expressions: None,
                },
                template: Some(t),
                ..Default::default()
            }),
            status: None,
        });
        w.converge();
        assert_eq!(w.pods.len(), 2);

        w.create_deployment(deployment("web", 3, "v1"));
        w.converge();
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 1, "adopted instead of creating another");
        assert_eq!(rss[0].metadata.name.as_deref(), Some("web-orphan"));
        assert_eq!(replicas(rss[0]), 3);
        assert_eq!(w.pods_of("web").len(), 3);
        assert_eq!(counts(w.deployment("web")), [3, 3, 3, 3, 0]);
        assert_idempotent(&w);
    }

    #[test]
    fn a_replicaset_relabeled_out_of_the_selector_is_released() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 2, "v1"));
        w.converge();
        let name = w.replicasets_of("web")[0].metadata.name.clone().expect("name");
        let rs = w.rss.iter_mut().find(|rs| rs.metadata.name.as_ref() == Some(&name)).expect("exists");
        rs.metadata.labels = Some(labels(&[("app", "quarantine")]));
        let rss: Vec<&ReplicaSet> = w.rss.iter().collect();
        let pods: Vec<&Pod> = w.pods.iter().collect();
        let actions = reconcile_deployment(w.deployment("web"), &rss, &pods, w.now).expect("valid");
        assert_eq!(actions.release_rs, [name.clone()]);
        // The replacement wants the released ReplicaSet's name: a collision.
        assert!(actions.create_rs.is_none());
        assert_eq!(actions.status.collision_count, Some(1));

        w.converge();
        let rss = w.replicasets_of("web");
        assert_eq!(rss.len(), 1);
        assert_ne!(rss[0].metadata.name.as_ref(), Some(&name));
        assert_eq!(w.pods_of("web").len(), 2);
        let released = w.rss.iter().find(|rs| rs.metadata.name.as_ref() == Some(&name)).expect("kept");
        assert!(released.metadata.owner_references.iter().flatten().all(|o| o.kind != "Deployment"));
        assert_eq!(counts(w.deployment("web")), [2, 2, 2, 2, 0]);
        assert_idempotent(&w);
    }

    #[test]
    fn a_deployment_being_deleted_only_updates_its_status() {
        let mut w = World::new();
        w.create_deployment(deployment("web", 2, "v1"));
        w.converge();
        w.edit_deployment("web", |d| d.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH)));
        set_replicas(&mut w, "web", 5);
        let rss: Vec<&ReplicaSet> = w.rss.iter().collect();
        let pods: Vec<&Pod> = w.pods.iter().collect();
        let actions = reconcile_deployment(w.deployment("web"), &rss, &pods, w.now).expect("valid");
        assert!(actions.scale.is_empty() && actions.create_rs.is_none() && actions.delete_rs.is_empty());
        assert_eq!(actions.status.observed_generation, Some(2));
    }
}

mod availability {
    use super::*;

    #[test]
    fn a_rollout_away_from_a_broken_template_removes_unhealthy_pods_first() {
        let mut w = World::new();
        w.create_deployment(rolling(deployment("web", 3, BROKEN_IMAGE), IntOrString::Int(1), IntOrString::Int(0)));
        w.run_for(10);
        assert_eq!(counts(w.deployment("web")), [3, 3, 0, 0, 3]);

        set_image(&mut w, "web", "v2");
        w.converge_checked(&mut |w| {
            let active = w.pods_of("web").iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
            assert!(active <= 4, "{active} pods");
        });
        let d = w.deployment("web");
        assert!(w.pods_of("web").iter().all(|p| image_of(p) == "v2"));
        assert_eq!(counts(d), [3, 3, 3, 3, 0]);
        assert!(rollout_complete(d));
        assert_idempotent(&w);
    }

    #[test]
    fn min_ready_seconds_delays_availability_and_paces_the_rollout() {
        let mut d = rolling(deployment("web", 2, "v1"), IntOrString::Int(1), IntOrString::Int(0));
        d.spec.as_mut().expect("spec").min_ready_seconds = Some(5);
        let mut w = World::new();
        w.create_deployment(d);
        w.run_for(3);
        let rs = w.replicasets_of("web")[0];
        assert_eq!(rs.spec.as_ref().and_then(|s| s.min_ready_seconds), Some(5));
        assert_eq!(counts(w.deployment("web"))[2..4], [2, 0], "ready but not yet available");
        w.converge();
        assert_eq!(counts(w.deployment("web")), [2, 2, 2, 2, 0]);

        set_image(&mut w, "web", "v2");
        w.converge_checked(&mut |w| {
            // Available = ready for more than 5s, on the pods still serving.
            let now = w.now;
            let available = w
                .pods_of("web")
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| {
                    p.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| {
                        c.type_ == "Ready"
                            && c.status == "True"
                            && c.last_transition_time.as_ref().is_some_and(|t| {
                                t.0.checked_add(jiff::SignedDuration::from_secs(5)).expect("in range") < now
                            })
                    })
                })
                .count();
            assert!(available >= 2, "only {available} available");
        });
        assert!(rollout_complete(w.deployment("web")));
        assert_idempotent(&w);
    }

    #[test]
    fn an_invalid_max_surge_is_an_error() {
        let d = rolling(deployment("web", 2, "v1"), IntOrString::String("lots".into()), IntOrString::Int(0));
        let err = reconcile_deployment(&d, &[], &[], Timestamp::UNIX_EPOCH).expect_err("invalid");
        assert!(err.to_string().contains("lots"), "{err}");
    }
}
