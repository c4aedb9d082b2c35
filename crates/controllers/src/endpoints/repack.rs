//! The canonical layout of Endpoints subsets (`endpoints.RepackSubsets`)
//! and the 1000-address cap (`truncateEndpoints`).
//!
//! Repacking expands subsets to (address, port, ready) triples and packs
//! them again so that each subset holds one distinct set of addresses and
//! every port served by exactly that set. Two controllers (or a controller
//! and a hand-written object) that agree on the triples then agree on the
//! bytes, which is what makes "skip the write when nothing changed" work.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

/// Addresses are de-duplicated by IP plus target UID: two pods may share an
/// IP (host network) and must stay apart. Ordering the key orders addresses
/// as Kubernetes' `LessEndpointAddress` does: IP bytes, then UID, with no
/// target first.
type AddressKey = (String, String);

/// An `EndpointPort` as a comparable value: name, port, protocol,
/// appProtocol. `None` marks a subset without ports (headless services may
/// have none); Kubernetes uses a `Port: -1` sentinel for the same purpose.
type PortKey = Option<(String, i32, String, String)>;

fn address_key(address: &EndpointAddress) -> AddressKey {
    let uid = address.target_ref.as_ref().and_then(|r| r.uid.clone()).unwrap_or_default();
    (address.ip.clone(), uid)
}

fn port_key(port: &EndpointPort) -> PortKey {
    Some((
        port.name.clone().unwrap_or_default(),
        port.port,
        port.protocol.clone().unwrap_or_default(),
        port.app_protocol.clone().unwrap_or_default(),
    ))
}

/// Repacks subsets into the canonical layout.
///
/// Each address keeps the first full `EndpointAddress` seen for its key; an
/// address that is not ready for a port in any input subset is not ready
/// for that port in the output ("not ready trumps ready"). Ports with the
/// same set of (address, ready) pairs share a subset. Addresses sort by IP
/// then target UID; ports by name, port, protocol; subsets by their ports,
/// then addresses. (Kubernetes orders ports and subsets by an md5 of their
/// Go dump, which is deterministic but meaningless; any fixed order serves
/// the purpose.)
pub fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut all_addresses: BTreeMap<AddressKey, &EndpointAddress> = BTreeMap::new();
    let mut all_ports: BTreeMap<PortKey, &EndpointPort> = BTreeMap::new();
    let mut ready_by_port: BTreeMap<PortKey, BTreeMap<AddressKey, bool>> = BTreeMap::new();

    for subset in subsets {
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        let addresses: Vec<(&EndpointAddress, bool)> = ready.chain(not_ready).collect();
        let ports: Vec<PortKey> = match subset.ports.as_deref() {
            None | Some([]) => vec![None],
            Some(ports) => ports
                .iter()
                .map(|p| {
                    let key = port_key(p);
                    all_ports.entry(key.clone()).or_insert(p);
                    key
                })
                .collect(),
        };
        for port in ports {
            let by_address = ready_by_port.entry(port).or_default();
            for &(address, ready) in &addresses {
                let key = address_key(address);
                all_addresses.entry(key.clone()).or_insert(address);
                by_address.entry(key).and_modify(|was_ready| *was_ready &= ready).or_insert(ready);
            }
        }
    }

    // Ports sharing one exact (address, ready) set share a subset.
    let mut ports_by_address_set: BTreeMap<Vec<(AddressKey, bool)>, Vec<PortKey>> = BTreeMap::new();
    for (port, by_address) in ready_by_port {
        ports_by_address_set.entry(by_address.into_iter().collect()).or_default().push(port);
    }

    let mut repacked: Vec<(Vec<PortKey>, EndpointSubset)> = ports_by_address_set
        .into_iter()
        .map(|(address_set, ports)| {
            let pick = |want_ready: bool| -> Vec<EndpointAddress> {
                address_set
                    .iter()
                    .filter(|(_, ready)| *ready == want_ready)
                    .filter_map(|(key, _)| all_addresses.get(key).map(|a| (*a).clone()))
                    .collect()
            };
            let endpoint_ports: Vec<EndpointPort> =
                ports.iter().filter_map(|key| all_ports.get(key).map(|p| (*p).clone())).collect();
            let subset = EndpointSubset {
                addresses: non_empty(pick(true)),
                not_ready_addresses: non_empty(pick(false)),
                ports: non_empty(endpoint_ports),
            };
            (ports, subset)
        })
        .collect();
    // Both halves of the key are unique per subset, so the order is total.
    repacked.sort_by(|(ports_a, a), (ports_b, b)| {
        ports_a.cmp(ports_b).then_with(|| subset_address_keys(a).cmp(&subset_address_keys(b)))
    });
    repacked.into_iter().map(|(_, subset)| subset).collect()
}

fn subset_address_keys(subset: &EndpointSubset) -> Vec<AddressKey> {
    subset.addresses.iter().flatten().chain(subset.not_ready_addresses.iter().flatten()).map(address_key).collect()
}

pub(crate) fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    if items.is_empty() { None } else { Some(items) }
}

/// Caps the total number of addresses across subsets at `max_capacity`,
/// as `truncateEndpoints` does; returns whether anything was cut.
///
/// Ready addresses are kept before not-ready ones: if the ready ones alone
/// exceed the cap, every not-ready address goes and the ready ones are cut;
/// otherwise only not-ready addresses are cut. The cut is spread over
/// subsets in proportion to their share (rounded up, the last subsets taking
/// what is left), and each subset keeps its first addresses in sorted order.
/// Subsets left without any address are dropped (Kubernetes would keep them
/// as port-only subsets, which carry no endpoint).
pub(crate) fn truncate_subsets(subsets: &mut Vec<EndpointSubset>, max_capacity: usize) -> bool {
    let count = |list: &Option<Vec<EndpointAddress>>| list.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= max_capacity {
        return false;
    }

    let truncate_ready = total_ready > max_capacity;
    let (budget, pool) =
        if truncate_ready { (max_capacity, total_ready) } else { (max_capacity - total_ready, total_not_ready) };
    let mut left = budget;
    for subset in subsets.iter_mut() {
        let list = if truncate_ready { &mut subset.addresses } else { &mut subset.not_ready_addresses };
        let in_subset = count(list);
        // `pool` is non-zero: it holds more than `budget` addresses here.
        let share = (in_subset * budget).div_ceil(pool).min(left);
        if let Some(addresses) = list.as_mut() {
            addresses.truncate(share);
        }
        left -= count(list);
        if count(list) == 0 {
            *list = None;
        }
        if truncate_ready {
            subset.not_ready_addresses = None;
        }
    }
    subsets.retain(|s| count(&s.addresses) + count(&s.not_ready_addresses) > 0);
    true
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;

    use super::*;

    fn addr(ip: &str, uid: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            target_ref: Some(ObjectReference { uid: Some(uid.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn port(name: &str, number: i32) -> EndpointPort {
        EndpointPort { name: Some(name.into()), port: number, protocol: Some("TCP".into()), ..Default::default() }
    }

    fn subset(ready: &[EndpointAddress], not_ready: &[EndpointAddress], ports: &[EndpointPort]) -> EndpointSubset {
        EndpointSubset {
            addresses: non_empty(ready.to_vec()),
            not_ready_addresses: non_empty(not_ready.to_vec()),
            ports: non_empty(ports.to_vec()),
        }
    }

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn single_address_subsets_with_one_port_merge_into_one_sorted_subset() {
        let input = [
            subset(&[addr("10.244.2.33", "c")], &[], &[port("", 80)]),
            subset(&[addr("10.244.1.40", "b")], &[], &[port("", 80)]),
            subset(&[addr("10.244.1.39", "a")], &[], &[port("", 80)]),
        ];
        let out = repack_subsets(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(ips(&out[0].addresses), ["10.244.1.39", "10.244.1.40", "10.244.2.33"]);
    }

    #[test]
    fn ports_served_by_the_same_addresses_share_a_subset() {
        let a = addr("10.0.0.1", "a");
        let b = addr("10.0.0.2", "b");
        let input = [
            subset(&[a.clone()], &[], &[port("http", 80)]),
            subset(&[a.clone()], &[], &[port("https", 443)]),
            subset(&[b.clone()], &[], &[port("http", 80)]),
        ];
        let out = repack_subsets(&input);
        // http is served by {a, b}, https by {a} only: two subsets, a in both.
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].ports.as_deref(), Some(&[port("http", 80)][..]));
        assert_eq!(ips(&out[0].addresses), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(out[1].ports.as_deref(), Some(&[port("https", 443)][..]));
        assert_eq!(ips(&out[1].addresses), ["10.0.0.1"]);
    }

    #[test]
    fn not_ready_trumps_ready_for_the_same_address_and_port() {
        let a = addr("10.0.0.1", "a");
        let input = [subset(&[a.clone()], &[], &[port("", 80)]), subset(&[], &[a.clone()], &[port("", 80)])];
        let out = repack_subsets(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].addresses, None);
        assert_eq!(ips(&out[0].not_ready_addresses), ["10.0.0.1"]);
    }

    #[test]
    fn subsets_without_ports_survive_repacking() {
        let input = [subset(&[addr("10.0.0.2", "b")], &[], &[]), subset(&[addr("10.0.0.1", "a")], &[], &[])];
        let out = repack_subsets(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ports, None);
        assert_eq!(ips(&out[0].addresses), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn same_ip_with_different_targets_stays_two_addresses() {
        let input = [subset(&[addr("10.0.0.1", "a"), addr("10.0.0.1", "b")], &[], &[port("", 80)])];
        let out = repack_subsets(&input);
        assert_eq!(out[0].addresses.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn repacking_is_independent_of_input_order() {
        let a = addr("10.0.0.1", "a");
        let b = addr("10.0.0.2", "b");
        let one =
            [subset(&[a.clone()], &[], &[port("x", 1), port("y", 2)]), subset(&[b.clone()], &[], &[port("y", 2)])];
        let two = [subset(&[b], &[], &[port("y", 2)]), subset(&[a], &[], &[port("y", 2), port("x", 1)])];
        assert_eq!(repack_subsets(&one), repack_subsets(&two));
    }

    fn many(prefix: &str, n: usize) -> Vec<EndpointAddress> {
        (0..n).map(|i| addr(&format!("{prefix}.{}.{}", i / 250, i % 250), &format!("{prefix}-{i}"))).collect()
    }

    #[test]
    fn truncation_cuts_not_ready_addresses_first() {
        let mut subsets = vec![subset(&many("10.1", 900), &many("10.2", 200), &[port("", 80)])];
        assert!(truncate_subsets(&mut subsets, 1000));
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(900));
        assert_eq!(subsets[0].not_ready_addresses.as_ref().map(Vec::len), Some(100));
    }

    #[test]
    fn truncation_of_ready_addresses_drops_all_not_ready_and_spreads_proportionally() {
        let mut subsets = vec![
            subset(&many("10.1", 900), &many("10.3", 5), &[port("a", 80)]),
            subset(&many("10.2", 300), &[], &[port("b", 81)]),
        ];
        assert!(truncate_subsets(&mut subsets, 1000));
        // 900/1200 of 1000 = 750, 300/1200 of 1000 = 250.
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(750));
        assert_eq!(subsets[0].not_ready_addresses, None);
        assert_eq!(subsets[1].addresses.as_ref().map(Vec::len), Some(250));
    }

    #[test]
    fn truncation_leaves_endpoints_under_capacity_alone() {
        let mut subsets = vec![subset(&many("10.1", 1000), &[], &[port("", 80)])];
        assert!(!truncate_subsets(&mut subsets, 1000));
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(1000));
    }
}
