#[test]
fn print_fixtures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protobuf");
    for name in ["configmap", "secret-generic", "secret-tls", "namespace", "deployment", "service-nodeport", "ingress"] {
        let bytes = std::fs::read(format!("{dir}/{name}.pb")).unwrap();
        let v = svcnet_api::protobuf::decode(&bytes);
        println!("{name}: {}", match v { Ok(v) => serde_json::to_string(&v).unwrap(), Err(e) => e.to_string() });
    }
}
