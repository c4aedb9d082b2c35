//! What kube-apiserver's Go decoder would say: Go type names, embedded
//! struct names, `strconv.Quote`, and the parsers behind the custom
//! `UnmarshalJSON`s of Quantity, Time and `[]byte`, so errors read the same.
//!
//! The JSON schema cannot tell a named Go type (`type Protocol string`) from
//! a plain string, yet the name appears in decode errors, so the named types
//! of the served kinds are listed in [`NAMED_FIELD_TYPES`].

/// "io.k8s.api.core.v1.ServicePort" -> "ServicePort".
pub(crate) fn short_name(definition: &str) -> &str {
    definition.rsplit('.').next().unwrap_or(definition)
}

/// "io.k8s.api.core.v1.ServicePort" -> "v1.ServicePort", as Go's
/// `reflect.Type.String()` names a type: package name, dot, type name.
pub(crate) fn qualified_name(definition: &str) -> String {
    let mut segments = definition.rsplit('.');
    let name = segments.next().unwrap_or(definition);
    match segments.next() {
        Some(package) => format!("{package}.{name}"),
        None => name.to_string(),
    }
}

/// Fields whose Go type is a named type; (definition, field, Go type).
static NAMED_FIELD_TYPES: &[(&str, &str, &str)] = &[
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "uid", "types.UID"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", "uid", "types.UID"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry", "operation", "v1.ManagedFieldsOperationType"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", "operator", "v1.LabelSelectorOperator"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Condition", "status", "v1.ConditionStatus"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "reason", "v1.StatusReason"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails", "uid", "types.UID"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.StatusCause", "reason", "v1.CauseType"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", "propagationPolicy", "v1.DeletionPropagation"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Preconditions", "uid", "types.UID"),
    ("io.k8s.api.core.v1.ServiceSpec", "type", "v1.ServiceType"),
    ("io.k8s.api.core.v1.ServiceSpec", "sessionAffinity", "v1.ServiceAffinity"),
    ("io.k8s.api.core.v1.ServiceSpec", "externalTrafficPolicy", "v1.ServiceExternalTrafficPolicy"),
    ("io.k8s.api.core.v1.ServiceSpec", "internalTrafficPolicy", "v1.ServiceInternalTrafficPolicy"),
    ("io.k8s.api.core.v1.ServiceSpec", "ipFamilies", "[]v1.IPFamily"),
    ("io.k8s.api.core.v1.ServiceSpec", "ipFamilyPolicy", "v1.IPFamilyPolicy"),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "v1.Protocol"),
    ("io.k8s.api.core.v1.LoadBalancerIngress", "ipMode", "v1.LoadBalancerIPMode"),
    ("io.k8s.api.core.v1.PortStatus", "protocol", "v1.Protocol"),
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "v1.Protocol"),
    ("io.k8s.api.core.v1.EndpointPort", "protocol", "v1.Protocol"),
    ("io.k8s.api.discovery.v1.EndpointPort", "protocol", "v1.Protocol"),
    ("io.k8s.api.discovery.v1.EndpointSlice", "addressType", "v1.AddressType"),
    ("io.k8s.api.core.v1.Container", "imagePullPolicy", "v1.PullPolicy"),
    ("io.k8s.api.core.v1.Container", "terminationMessagePolicy", "v1.TerminationMessagePolicy"),
    ("io.k8s.api.core.v1.Container", "restartPolicy", "v1.ContainerRestartPolicy"),
    ("io.k8s.api.core.v1.EphemeralContainer", "imagePullPolicy", "v1.PullPolicy"),
    ("io.k8s.api.core.v1.EphemeralContainer", "terminationMessagePolicy", "v1.TerminationMessagePolicy"),
    ("io.k8s.api.core.v1.EphemeralContainer", "restartPolicy", "v1.ContainerRestartPolicy"),
    ("io.k8s.api.core.v1.ContainerResizePolicy", "resourceName", "v1.ResourceName"),
    ("io.k8s.api.core.v1.ContainerResizePolicy", "restartPolicy", "v1.ResourceResizeRestartPolicy"),
    ("io.k8s.api.core.v1.ResourceRequirements", "limits", "v1.ResourceList"),
    ("io.k8s.api.core.v1.ResourceRequirements", "requests", "v1.ResourceList"),
    ("io.k8s.api.core.v1.VolumeMount", "mountPropagation", "v1.MountPropagationMode"),
    ("io.k8s.api.core.v1.VolumeMount", "recursiveReadOnly", "v1.RecursiveReadOnlyMode"),
    ("io.k8s.api.core.v1.HTTPGetAction", "scheme", "v1.URIScheme"),
    ("io.k8s.api.core.v1.Capabilities", "add", "[]v1.Capability"),
    ("io.k8s.api.core.v1.Capabilities", "drop", "[]v1.Capability"),
    ("io.k8s.api.core.v1.SecurityContext", "procMount", "v1.ProcMountType"),
    ("io.k8s.api.core.v1.SeccompProfile", "type", "v1.SeccompProfileType"),
    ("io.k8s.api.core.v1.AppArmorProfile", "type", "v1.AppArmorProfileType"),
    ("io.k8s.api.core.v1.PodSecurityContext", "fsGroupChangePolicy", "v1.PodFSGroupChangePolicy"),
    ("io.k8s.api.core.v1.PodSecurityContext", "supplementalGroupsPolicy", "v1.SupplementalGroupsPolicy"),
    ("io.k8s.api.core.v1.PodSecurityContext", "seLinuxChangePolicy", "v1.PodSELinuxChangePolicy"),
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy", "v1.RestartPolicy"),
    ("io.k8s.api.core.v1.PodSpec", "dnsPolicy", "v1.DNSPolicy"),
    ("io.k8s.api.core.v1.PodSpec", "preemptionPolicy", "v1.PreemptionPolicy"),
    ("io.k8s.api.core.v1.PodSpec", "overhead", "v1.ResourceList"),
    ("io.k8s.api.core.v1.PodOS", "name", "v1.OSName"),
    ("io.k8s.api.core.v1.PodStatus", "phase", "v1.PodPhase"),
    ("io.k8s.api.core.v1.PodStatus", "qosClass", "v1.PodQOSClass"),
    ("io.k8s.api.core.v1.PodStatus", "resize", "v1.PodResizeStatus"),
    ("io.k8s.api.core.v1.PodCondition", "type", "v1.PodConditionType"),
    ("io.k8s.api.core.v1.PodCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.core.v1.ContainerStatus", "allocatedResources", "v1.ResourceList"),
    ("io.k8s.api.core.v1.ResourceStatus", "name", "v1.ResourceName"),
    ("io.k8s.api.core.v1.Toleration", "operator", "v1.TolerationOperator"),
    ("io.k8s.api.core.v1.Toleration", "effect", "v1.TaintEffect"),
    ("io.k8s.api.core.v1.Taint", "effect", "v1.TaintEffect"),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "whenUnsatisfiable", "v1.UnsatisfiableConstraintAction"),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "nodeAffinityPolicy", "v1.NodeInclusionPolicy"),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "nodeTaintsPolicy", "v1.NodeInclusionPolicy"),
    ("io.k8s.api.core.v1.NodeSelectorRequirement", "operator", "v1.NodeSelectorOperator"),
    ("io.k8s.api.core.v1.HostPathVolumeSource", "type", "v1.HostPathType"),
    ("io.k8s.api.core.v1.EmptyDirVolumeSource", "medium", "v1.StorageMedium"),
    ("io.k8s.api.core.v1.NodeStatus", "phase", "v1.NodePhase"),
    ("io.k8s.api.core.v1.NodeStatus", "capacity", "v1.ResourceList"),
    ("io.k8s.api.core.v1.NodeStatus", "allocatable", "v1.ResourceList"),
    ("io.k8s.api.core.v1.NodeStatus", "volumesInUse", "[]v1.UniqueVolumeName"),
    ("io.k8s.api.core.v1.AttachedVolume", "name", "v1.UniqueVolumeName"),
    ("io.k8s.api.core.v1.NodeCondition", "type", "v1.NodeConditionType"),
    ("io.k8s.api.core.v1.NodeCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.core.v1.NodeAddress", "type", "v1.NodeAddressType"),
    ("io.k8s.api.core.v1.NamespaceSpec", "finalizers", "[]v1.FinalizerName"),
    ("io.k8s.api.core.v1.NamespaceStatus", "phase", "v1.NamespacePhase"),
    ("io.k8s.api.core.v1.NamespaceCondition", "type", "v1.NamespaceConditionType"),
    ("io.k8s.api.core.v1.NamespaceCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.core.v1.Secret", "type", "v1.SecretType"),
    ("io.k8s.api.apps.v1.DeploymentStrategy", "type", "v1.DeploymentStrategyType"),
    ("io.k8s.api.apps.v1.DeploymentCondition", "type", "v1.DeploymentConditionType"),
    ("io.k8s.api.apps.v1.DeploymentCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.apps.v1.ReplicaSetCondition", "type", "v1.ReplicaSetConditionType"),
    ("io.k8s.api.apps.v1.ReplicaSetCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.networking.v1.HTTPIngressPath", "pathType", "v1.PathType"),
];

pub(crate) fn named_field_type(definition: &str, field: &str) -> Option<&'static str> {
    NAMED_FIELD_TYPES.iter().find(|(d, f, _)| *d == definition && *f == field).map(|(_, _, t)| *t)
}

/// Kinds whose `apiVersion`/`kind` come from an inlined `metav1.TypeMeta`.
fn has_type_meta(definition: &str) -> bool {
    definition.ends_with("List")
        || crate::resources::RESOURCES.iter().any(|r| r.definition == definition)
        || matches!(
            definition,
            "io.k8s.api.autoscaling.v1.Scale"
                | "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
                | "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
        )
}

/// The Go name of the inlined struct a field belongs to, if any. Go's
/// decoder puts it in the field path of type errors
/// ("Volume.spec.volumes.VolumeSource.hostPath").
pub(crate) fn embedded_struct(definition: &str, field: &str) -> Option<&'static str> {
    match (definition, field) {
        (d, "apiVersion" | "kind") if has_type_meta(d) => Some("TypeMeta"),
        ("io.k8s.api.core.v1.Volume", f) if f != "name" => Some("VolumeSource"),
        ("io.k8s.api.core.v1.EphemeralContainer", f) if f != "targetContainerName" => Some("EphemeralContainerCommon"),
        ("io.k8s.api.core.v1.Probe", "exec" | "httpGet" | "tcpSocket" | "grpc") => Some("ProbeHandler"),
        ("io.k8s.api.networking.v1.IngressRule", "http") => Some("IngressRuleValue"),
        _ => None,
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Decodes like Go's `base64.StdEncoding.Decode` would, returning the input
/// offset Go reports in "illegal base64 data at input byte N".
pub(crate) fn check_base64(input: &str) -> Result<(), usize> {
    let src = input.as_bytes();
    let is_alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let skip_newlines = |mut i: usize| {
        while i < src.len() && (src[i] == b'\n' || src[i] == b'\r') {
            i += 1;
        }
        i
    };
    let mut si = 0;
    loop {
        // One quantum of up to four symbols.
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                return match j {
                    0 => Ok(()),
                    // Go's StdEncoding requires padding, so a short final
                    // quantum points back at its start.
                    _ => Err(si - j),
                };
            }
            let b = src[si];
            si += 1;
            if is_alphabet(b) {
                j += 1;
                continue;
            }
            if b == b'\n' || b == b'\r' {
                continue;
            }
            if b != b'=' {
                return Err(si - 1);
            }
            // Padding: only after two or three symbols.
            match j {
                0 | 1 => return Err(si - 1),
                2 => {
                    si = skip_newlines(si);
                    if si == src.len() {
                        return Err(src.len());
                    }
                    if src[si] != b'=' {
                        return Err(si - 1);
                    }
                    si += 1;
                }
                _ => {}
            }
            si = skip_newlines(si);
            return if si < src.len() { Err(si) } else { Ok(()) };
        }
    }
}

/// The message of `resource.ErrFormatWrong`.
pub(crate) const QUANTITY_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// The message of `resource.ErrSuffix`.
pub(crate) const QUANTITY_BAD_SUFFIX: &str = "unable to parse quantity's suffix";

/// Checks a quantity the way `resource.ParseQuantity` splits and validates
/// it (number, optional fraction, suffix), returning its error message.
pub(crate) fn check_quantity(input: &str) -> Result<(), &'static str> {
    let s = input.trim().as_bytes();
    if s.is_empty() {
        return Err(QUANTITY_FORMAT_WRONG);
    }
    let mut pos = 0;
    if matches!(s[0], b'+' | b'-') {
        pos += 1;
    }
    let digits = |from: usize| from + s[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    pos = digits(pos);
    if pos < s.len() && s[pos] == b'.' {
        pos = digits(pos + 1);
    }
    if pos == s.len() {
        return Ok(());
    }
    let suffix_start = pos;
    while pos < s.len() && b"eEinumkKMGTP".contains(&s[pos]) {
        pos += 1;
    }
    if pos < s.len() && matches!(s[pos], b'+' | b'-') {
        pos += 1;
    }
    if digits(pos) != s.len() {
        return Err(QUANTITY_FORMAT_WRONG);
    }
    // The split is valid; now the suffix must be one Kubernetes knows.
    let suffix = &input.trim()[suffix_start..];
    let known = matches!(
        suffix,
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"
    );
    // Go: `strconv.ParseInt(suffix[1:], 10, 64)` after an `e`/`E`.
    let exponent = suffix.len() > 1 && suffix.starts_with(['e', 'E']) && suffix[1..].parse::<i64>().is_ok();
    if known || exponent { Ok(()) } else { Err(QUANTITY_BAD_SUFFIX) }
}

/// Go's `time.RFC3339` and the `metav1.RFC3339Micro` layout.
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
const RFC3339_MICRO: &str = "2006-01-02T15:04:05.000000Z07:00";

/// One element of a Go time layout.
#[derive(Clone, Copy)]
enum Element {
    Literal(&'static str),
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Micros,
    Zone,
}

impl Element {
    /// The layout text Go quotes in "cannot parse X as Y".
    fn layout(self) -> &'static str {
        match self {
            Element::Literal(l) => l,
            Element::Year => "2006",
            Element::Month => "01",
            Element::Day => "02",
            Element::Hour => "15",
            Element::Minute => "04",
            Element::Second => "05",
            Element::Micros => ".000000",
            Element::Zone => "Z07:00",
        }
    }
}

/// Go's time package quoting: non-ASCII and control bytes as `\x..`.
fn time_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Parses a `metav1.Time` (RFC 3339) or `metav1.MicroTime` string like Go's
/// `time.Parse`, returning Go's `*time.ParseError` message on failure.
pub(crate) fn check_time(value: &str, micro: bool) -> Result<(), String> {
    use Element::*;
    // RFC3339_MICRO's elements; RFC3339 has no fraction.
    const ELEMENTS: [Element; 13] = [
        Year,
        Literal("-"),
        Month,
        Literal("-"),
        Day,
        Literal("T"),
        Hour,
        Literal(":"),
        Minute,
        Literal(":"),
        Second,
        Micros,
        Zone,
    ];
    let layout = if micro { RFC3339_MICRO } else { RFC3339 };
    let elements = ELEMENTS.iter().filter(|e| micro || !matches!(e, Micros));
    let cannot_parse = |rest: &str, element: Element| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            time_quote(value),
            time_quote(layout),
            time_quote(rest),
            time_quote(element.layout())
        )
    };
    let out_of_range = |what: &str| format!("parsing time {}: {what} out of range", time_quote(value));
    // Go's getnum: one or two digits, exactly two when `fixed`.
    fn getnum(s: &str, fixed: bool) -> Option<(u32, &str)> {
        let b = s.as_bytes();
        let digit = |i: usize| b.get(i).filter(|c| c.is_ascii_digit()).map(|c| u32::from(c - b'0'));
        let first = digit(0)?;
        match digit(1) {
            Some(second) => Some((first * 10 + second, &s[2..])),
            None if fixed => None,
            None => Some((first, &s[1..])),
        }
    }

    let (mut year, mut month, mut day) = (0u32, 0u32, 0u32);
    let mut rest = value;
    for element in elements {
        let hold = rest;
        let parsed: Option<&str> = match *element {
            Literal(l) => rest.strip_prefix(l),
            Year => {
                let ok = rest.len() >= 4 && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit);
                ok.then(|| {
                    year = rest[..4].parse().unwrap_or(0);
                    &rest[4..]
                })
            }
            Month => match getnum(rest, true) {
                Some((m, r)) if (1..=12).contains(&m) => {
                    month = m;
                    Some(r)
                }
                Some(_) => return Err(out_of_range("month")),
                None => None,
            },
            Day => getnum(rest, true).map(|(d, r)| {
                day = d;
                r
            }),
            Hour => match getnum(rest, false) {
                Some((h, _)) if h >= 24 => return Err(out_of_range("hour")),
                other => other.map(|(_, r)| r),
            },
            Minute => match getnum(rest, true) {
                Some((m, _)) if m >= 60 => return Err(out_of_range("minute")),
                other => other.map(|(_, r)| r),
            },
            Second => match getnum(rest, true) {
                Some((s, _)) if s >= 60 => return Err(out_of_range("second")),
                Some((_, mut r)) => {
                    // Go accepts fractional seconds the layout does not
                    // mention, when the next element is not a fraction
                    // (Micros follows Second only in the micro layout).
                    let b = r.as_bytes();
                    if !micro && b.len() >= 2 && matches!(b[0], b'.' | b',') && b[1].is_ascii_digit() {
                        let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        r = &r[n..];
                    }
                    Some(r)
                }
                None => None,
            },
            Micros => {
                let b = rest.as_bytes();
                let ok = b.len() >= 7 && matches!(b[0], b'.' | b',') && b[1..7].iter().all(u8::is_ascii_digit);
                ok.then(|| &rest[7..])
            }
            Zone => {
                let b = rest.as_bytes();
                if b.first() == Some(&b'Z') {
                    Some(&rest[1..])
                } else if b.len() >= 6 && b[3] == b':' && matches!(b[0], b'+' | b'-') {
                    match (getnum(&rest[1..3], true), getnum(&rest[4..6], true)) {
                        (Some((h, _)), Some((m, _))) => {
                            if h > 24 {
                                return Err(out_of_range("time zone offset hour"));
                            }
                            if m > 60 {
                                return Err(out_of_range("time zone offset minute"));
                            }
                            Some(&rest[6..])
                        }
                        _ => None,
                    }
                } else {
                    None
                }
            }
        };
        match parsed {
            Some(r) => rest = r,
            None => return Err(cannot_parse(hold, *element)),
        }
    }
    if !rest.is_empty() {
        return Err(format!("parsing time {}: extra text: {}", time_quote(value), time_quote(rest)));
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > days_in_month {
        return Err(out_of_range("day"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schemas;

    #[test]
    fn every_named_type_entry_names_an_existing_field() {
        for (definition, field, _) in NAMED_FIELD_TYPES {
            let node = Schemas::get().definition(definition);
            assert!(node.is_some_and(|n| n.has_property(field)), "{definition}.{field}");
        }
    }

    #[test]
    fn quote_escapes_like_go_strconv() {
        assert_eq!(quote("spec.foo"), "\"spec.foo\"");
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(quote("é\u{1}"), "\"é\\x01\"");
    }

    #[test]
    fn base64_errors_point_where_go_points() {
        assert_eq!(check_base64("aGVsbG8="), Ok(()));
        assert_eq!(check_base64(""), Ok(()));
        assert_eq!(check_base64("aGVs\nbG8="), Ok(()));
        assert_eq!(check_base64("abc"), Err(0));
        assert_eq!(check_base64("abcdabc"), Err(4));
        assert_eq!(check_base64("ab!d"), Err(2));
        assert_eq!(check_base64("a==="), Err(1));
        assert_eq!(check_base64("ab="), Err(3));
        assert_eq!(check_base64("ab=x"), Err(2));
        assert_eq!(check_base64("abc=d"), Err(4));
    }

    #[test]
    fn quantities_are_split_like_parse_quantity() {
        for ok in ["1", "100m", "1.5Gi", "0.5", "1e3", "2E-2", "+3Ki", "-1", ".5", "1.", "5E"] {
            assert_eq!(check_quantity(ok), Ok(()), "{ok}");
        }
        for bad in ["", "abc", "1.5.5", "1 Gi", "true", "{}", "1Gb", "1KiB"] {
            assert_eq!(check_quantity(bad), Err(QUANTITY_FORMAT_WRONG), "{bad}");
        }
        for bad in ["1e", "1mk", "1Ki5", "1ee5"] {
            assert_eq!(check_quantity(bad), Err(QUANTITY_BAD_SUFFIX), "{bad}");
        }
    }

    #[test]
    fn times_fail_with_go_parse_errors() {
        assert_eq!(check_time("2024-02-29T10:00:00Z", false), Ok(()));
        assert_eq!(check_time("2024-02-29T10:00:00.123+01:00", false), Ok(()));
        assert_eq!(check_time("2024-02-29T10:00:00.123456Z", true), Ok(()));
        assert_eq!(
            check_time("abc", false).unwrap_err(),
            r#"parsing time "abc" as "2006-01-02T15:04:05Z07:00": cannot parse "abc" as "2006""#
        );
        assert_eq!(
            check_time("2024-01-01 10:00:00Z", false).unwrap_err(),
            r#"parsing time "2024-01-01 10:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 10:00:00Z" as "T""#
        );
        assert_eq!(
            check_time("2024-13-01T00:00:00Z", false).unwrap_err(),
            r#"parsing time "2024-13-01T00:00:00Z": month out of range"#
        );
        assert_eq!(
            check_time("2023-02-29T00:00:00Z", false).unwrap_err(),
            r#"parsing time "2023-02-29T00:00:00Z": day out of range"#
        );
        assert_eq!(
            check_time("2024-01-01T00:00:00Zjunk", false).unwrap_err(),
            r#"parsing time "2024-01-01T00:00:00Zjunk": extra text: "junk""#
        );
        assert_eq!(
            check_time("2024-01-01T00:00:00Z", true).unwrap_err(),
            r#"parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000""#
        );
    }
}
